//! Running a protocol: score, rank the target, collect per-user ranks.
use crate::candidates::CandidateSet;
use crate::metrics::rank_of;
pub use crate::protocol_kind::Protocol;
use crate::{EvalError, Recommender};
use pulse_data::{Split, Stage};
use std::collections::HashSet;

/// Evaluates `rec` on `split` at `stage`, for the split users at `users` (indices into
/// `split.users`; all when `None`). Returns one rank per evaluated user. `progress(done, total)` is
/// called after each batch.
pub fn evaluate(
    rec: &dyn Recommender,
    split: &Split,
    stage: Stage,
    protocol: Protocol,
    candidates: Option<&CandidateSet>,
    users: Option<&[usize]>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<Option<u32>>, EvalError> {
    let all: Vec<usize>;
    let users = match users {
        Some(u) => u,
        None => {
            all = (0..split.users.len()).collect();
            &all
        }
    };
    if let Protocol::Cand { n } = protocol {
        let c = candidates.ok_or_else(|| EvalError::Invalid("candidate protocol without a candidate set".into()))?;
        if stage != Stage::Test {
            return Err(EvalError::Invalid("candidate lists are drawn for the test stage only".into()));
        }
        if c.n != n || c.fingerprint != split.fingerprint {
            return Err(EvalError::Invalid(format!(
                "candidate set (n={}, split {}) does not fit {} on split {}",
                c.n,
                c.fingerprint,
                protocol.name(),
                split.fingerprint
            )));
        }
    }
    let model_err = |e| EvalError::Model { model: rec.name().to_string(), source: e };
    let mut ranks = Vec::with_capacity(users.len());
    let bs = rec.batch_size().max(1);
    for chunk in users.chunks(bs) {
        let queries: Vec<(Vec<u32>, u32)> = chunk.iter().map(|&u| split.users[u].query(stage)).collect();
        let hist: Vec<&[u32]> = queries.iter().map(|(h, _)| h.as_slice()).collect();
        match protocol {
            Protocol::Full { mask_history } => {
                let scores = rec.score_all(&hist).map_err(model_err)?;
                for ((h, target), row) in queries.iter().zip(&scores) {
                    if row.len() != split.n_items {
                        return Err(EvalError::Invalid(format!(
                            "model {} returned {} scores for {} items",
                            rec.name(),
                            row.len(),
                            split.n_items
                        )));
                    }
                    if mask_history {
                        let seen: HashSet<u32> = h.iter().copied().collect();
                        if seen.contains(target) {
                            ranks.push(None);
                        } else {
                            ranks.push(rank_of(row, *target as usize, |j| seen.contains(&(j as u32))));
                        }
                    } else {
                        ranks.push(rank_of(row, *target as usize, |_| false));
                    }
                }
            }
            Protocol::Cand { .. } => {
                let c = candidates.expect("checked above");
                let lists: Vec<&[u32]> = chunk.iter().map(|&u| c.lists[u].as_slice()).collect();
                let scores = rec.score_candidates(&hist, &lists).map_err(model_err)?;
                for row in &scores {
                    ranks.push(rank_of(row, 0, |_| false));
                }
            }
        }
        progress(ranks.len(), users.len());
    }
    Ok(ranks)
}
