//! The counterfactual check of the evidence: remove a recommendation's cited history items from the
//! history and re-rank. If the evidence is what produced the score, the item should fall — out of the
//! top k for most users (the *probability of necessity*). Beside it, the same number of history items
//! chosen at random from the items the evidence could have cited (the parts' window of recent items,
//! or the sequence model's for leave-one-out), so the evidence has to beat chance. The candidate set stays the original one (items
//! of the full history stay excluded), so only the scores change.
use crate::engine::{Engine, Mode, Request};
use pulse_data::Rng;
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct Necessity {
    pub mode: Mode,
    pub leave_one_out: bool,
    pub k: usize,
    /// Users measured (a history of ≥ 1 item and ≥ 1 cited item for their top-1).
    pub users: usize,
    /// Users whose top-1 cites nothing (a popularity-only reason): not measured.
    pub no_evidence: usize,
    pub mean_cited: f64,
    /// Share whose top-1 leaves the top k when the cited items are removed.
    pub pn_cited: f64,
    pub pn_random: f64,
    /// Mean rank after removal minus 1 (the rank before).
    pub rank_drop_cited: f64,
    pub rank_drop_random: f64,
    /// Median of the same.
    pub median_drop_cited: f64,
    pub median_drop_random: f64,
    /// Users whose cited set is every item the evidence could cite (random removal then removes the same).
    pub whole_history: usize,
    /// How many recent history items the random draw chooses from.
    pub window: usize,
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// Users (bundle indices) with at least two items, `n` of them drawn with `seed` (all if fewer); their
/// history is everything before their last item (the leave-one-out test target is not shown).
pub fn sample_users(e: &Engine, n: usize, seed: u64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..e.users.len()).filter(|&u| e.users[u].items.len() >= 2).collect();
    Rng::derive(seed, "necessity-users").shuffle(&mut idx);
    idx.truncate(n);
    idx.sort_unstable();
    idx
}

pub fn measure(e: &Engine, users: &[usize], mode: Mode, leave_one_out: bool, k: usize, seed: u64) -> Necessity {
    let mut r = Rng::derive(seed, "necessity-random");
    let parts_window = e.content.last.max(e.knn.last).max(e.lexical.last);
    let window = match (leave_one_out, mode) {
        (false, _) => parts_window,
        (true, Mode::PulseTs) => e.seq.max_len,
        (true, Mode::Hybrid) => e.seq.max_len.max(parts_window),
    };
    let (mut n, mut none, mut whole) = (0usize, 0usize, 0usize);
    let (mut out_c, mut out_r, mut cited_sum) = (0usize, 0usize, 0usize);
    let (mut drops_c, mut drops_r) = (vec![], vec![]);
    for &u in users {
        let items = &e.users[u].items;
        let h: Vec<u32> = crate::query::clip_history(&items[..items.len() - 1]).to_vec();
        let Ok(recs) = e.recommend(&Request { history: h.clone(), k: 1, exclude_history: true, mode, leave_one_out }) else { continue };
        let Some(top) = recs.first() else { continue };
        let cited: Vec<u32> = top.evidence.cited.iter().map(|c| c.item).collect();
        if cited.is_empty() {
            none += 1;
            continue;
        }
        let mut distinct = h.clone();
        distinct.sort_unstable();
        distinct.dedup();
        // random: as many distinct items as were cited, from the window the evidence draws on
        let mut pool = h[h.len().saturating_sub(window)..].to_vec();
        pool.sort_unstable();
        pool.dedup();
        r.shuffle(&mut pool);
        let random: Vec<u32> = pool[..cited.len().min(pool.len())].to_vec();
        if cited.len() >= pool.len() {
            whole += 1;
        }
        let rank_without = |removed: &[u32]| {
            let rest: Vec<u32> = h.iter().copied().filter(|i| !removed.contains(i)).collect();
            let scores = e.scores(&rest, mode);
            Engine::rank_of(&scores, top.item, &distinct)
        };
        let rc = rank_without(&cited);
        let rr = rank_without(&random);
        n += 1;
        cited_sum += cited.len();
        out_c += (rc > k) as usize;
        out_r += (rr > k) as usize;
        drops_c.push(rc as f64 - 1.0);
        drops_r.push(rr as f64 - 1.0);
    }
    let mean = |v: &[f64]| if v.is_empty() { f64::NAN } else { v.iter().sum::<f64>() / v.len() as f64 };
    let nf = n.max(1) as f64;
    Necessity {
        mode,
        leave_one_out,
        k,
        users: n,
        no_evidence: none,
        mean_cited: cited_sum as f64 / nf,
        pn_cited: out_c as f64 / nf,
        pn_random: out_r as f64 / nf,
        rank_drop_cited: mean(&drops_c),
        rank_drop_random: mean(&drops_r),
        median_drop_cited: median(&mut drops_c),
        median_drop_random: median(&mut drops_r),
        whole_history: whole,
        window,
    }
}
