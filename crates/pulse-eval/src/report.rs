//! The JSON result of `pulse eval` and the per-user rank file written beside it.
use crate::{write_atomic, EvalError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Deterministic for a seed: no timings or host facts (those go to the `.meta.json` beside it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    pub dataset: String,
    pub model: String,
    pub protocol: String,
    pub seed: u64,
    pub n_users: usize,
    pub metrics: BTreeMap<String, f64>,
    /// Bootstrap 95% CI per metric.
    #[serde(default)]
    pub ci95: BTreeMap<String, [f64; 2]>,
    /// The fully resolved configuration (data options, protocol, model hyper-parameters).
    pub config: serde_json::Value,
}

impl EvalReport {
    pub fn write(&self, path: &Path) -> Result<(), EvalError> {
        let mut s = serde_json::to_string_pretty(self).expect("serialisable");
        s.push('\n');
        write_atomic(path, s.as_bytes()).map_err(|e| EvalError::io(path, e))
    }
    pub fn read(path: &Path) -> Result<Self, EvalError> {
        let s = std::fs::read_to_string(path).map_err(|e| EvalError::io(path, e))?;
        serde_json::from_str(&s).map_err(|e| EvalError::line(path, e.line(), format!("invalid report: {e}")))
    }
}

/// Per-user ranks (`user_id<TAB>rank`, `-` for a miss), for paired comparisons.
#[derive(Clone, Debug, PartialEq)]
pub struct RankFile {
    pub users: Vec<String>,
    pub ranks: Vec<Option<u32>>,
}

impl RankFile {
    /// The ranks of the users both files hold, in this file's order: (this file's, `other`'s).
    pub fn paired(&self, other: &RankFile) -> Vec<(Option<u32>, Option<u32>)> {
        let of_other: std::collections::HashMap<&str, Option<u32>> = other.users.iter().map(String::as_str).zip(other.ranks.iter().copied()).collect();
        self.users.iter().zip(&self.ranks).filter_map(|(u, &r)| of_other.get(u.as_str()).map(|&q| (r, q))).collect()
    }

    /// `results/x.json` → `results/x.ranks.tsv`.
    pub fn path_for(report: &Path) -> PathBuf {
        report.with_extension("ranks.tsv")
    }
    pub fn write(&self, path: &Path) -> Result<(), EvalError> {
        let mut s = String::from("user_id\trank\n");
        for (u, r) in self.users.iter().zip(&self.ranks) {
            s.push_str(u);
            s.push('\t');
            match r {
                Some(r) => s.push_str(&r.to_string()),
                None => s.push('-'),
            }
            s.push('\n');
        }
        write_atomic(path, s.as_bytes()).map_err(|e| EvalError::io(path, e))
    }
    pub fn read(path: &Path) -> Result<Self, EvalError> {
        let s = std::fs::read_to_string(path).map_err(|e| EvalError::io(path, e))?;
        let mut lines = s.lines().enumerate();
        match lines.next() {
            Some((_, "user_id\trank")) => {}
            _ => return Err(EvalError::line(path, 1, "missing header 'user_id<TAB>rank'")),
        }
        let (mut users, mut ranks) = (Vec::new(), Vec::new());
        for (i, l) in lines {
            let (u, r) = l.split_once('\t').ok_or_else(|| EvalError::line(path, i + 1, "expected 2 fields"))?;
            users.push(u.to_string());
            ranks.push(match r {
                "-" => None,
                r => Some(r.parse().map_err(|_| EvalError::line(path, i + 1, format!("bad rank '{r}'")))?),
            });
        }
        Ok(RankFile { users, ranks })
    }
}

#[cfg(test)]
mod tests {
    use super::RankFile;

    #[test]
    fn paired_keeps_the_users_both_files_rank_in_the_first_files_order() {
        let f = |u: &[&str], r: &[Option<u32>]| RankFile { users: u.iter().map(|s| s.to_string()).collect(), ranks: r.to_vec() };
        let a = f(&["u3", "u1", "u2"], &[Some(1), None, Some(4)]);
        let b = f(&["u1", "u2", "u9"], &[Some(2), Some(5), Some(1)]);
        assert_eq!(a.paired(&b), vec![(None, Some(2)), (Some(4), Some(5))]);
        assert_eq!(b.paired(&a), vec![(Some(2), None), (Some(5), Some(4))]);
        assert!(a.paired(&f(&["x"], &[Some(1)])).is_empty());
    }
}
