//! Ranking metrics from per-user ranks. A rank is 1-based; `None` means the target could not be
//! ranked (e.g. a repeat purchase under history masking) and counts as a miss everywhere.
use crate::protocol_kind::Protocol;
use std::collections::BTreeMap;

/// Metric names reported for a protocol, in report order.
pub fn metric_names(p: &Protocol) -> Vec<String> {
    let v: &[&str] = match p {
        Protocol::Full { .. } => &["hr@1", "hr@5", "hr@10", "hr@20", "ndcg@5", "ndcg@10", "ndcg@20", "mrr"],
        Protocol::Cand { n } if *n >= 20 => &["hr@1", "hr@5", "hr@10", "ndcg@5", "ndcg@10", "mrr"],
        Protocol::Cand { n } if *n > 3 => &["hr@1", "hr@3", "ndcg@3", "mrr"],
        Protocol::Cand { .. } => &["hr@1", "mrr"],
    };
    v.iter().map(|s| s.to_string()).collect()
}

/// The per-user value of a metric (`hr@K`, `ndcg@K`, `mrr`) for one rank.
pub fn per_user_value(metric: &str, rank: Option<u32>) -> Option<f64> {
    let value = |r: u32| -> Option<f64> {
        if metric == "mrr" {
            return Some(1.0 / r as f64);
        }
        let (kind, k) = metric.split_once('@')?;
        let k: u32 = k.parse().ok()?;
        match kind {
            "hr" => Some(if r <= k { 1.0 } else { 0.0 }),
            "ndcg" => Some(if r <= k { 1.0 / ((r as f64) + 1.0).log2() } else { 0.0 }),
            _ => None,
        }
    };
    match rank {
        Some(r) => value(r),
        None => value(1).map(|_| 0.0), // a miss, for any valid metric name
    }
}

/// Mean of each metric over users.
pub fn metrics_from_ranks(ranks: &[Option<u32>], names: &[String]) -> BTreeMap<String, f64> {
    names
        .iter()
        .map(|m| {
            let sum: f64 = ranks.iter().map(|&r| per_user_value(m, r).expect("known metric")).sum();
            (m.clone(), if ranks.is_empty() { 0.0 } else { sum / ranks.len() as f64 })
        })
        .collect()
}

/// 1-based rank of `target` among `scores`, skipping `excluded` items. Ties count against the
/// target (pessimistic), so a constant scorer gets no credit. NaN target → `None`.
pub fn rank_of(scores: &[f32], target: usize, excluded: impl Fn(usize) -> bool) -> Option<u32> {
    let t = scores[target];
    if t.is_nan() {
        return None;
    }
    let mut ahead = 0u32;
    for (j, &s) in scores.iter().enumerate() {
        if j != target && s >= t && !excluded(j) {
            ahead += 1;
        }
    }
    Some(ahead + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    /// Golden values computed by hand:
    /// ranks 1, 2, miss, 11, 3
    /// hr@1 = 1/5; hr@5 = 3/5; hr@10 = 3/5; hr@20 = 4/5
    /// ndcg@5 = (1 + 1/log2(3) + 1/log2(4)) / 5 = (1 + 0.6309297535714575 + 0.5) / 5
    /// ndcg@20 adds 1/log2(12) = 0.2789429456511298
    /// mrr = (1 + 1/2 + 0 + 1/11 + 1/3) / 5
    #[test]
    fn golden_full_metrics() {
        let ranks = [Some(1), Some(2), None, Some(11), Some(3)];
        let m = metrics_from_ranks(&ranks, &metric_names(&Protocol::Full { mask_history: true }));
        assert!(close(m["hr@1"], 0.2));
        assert!(close(m["hr@5"], 0.6));
        assert!(close(m["hr@10"], 0.6));
        assert!(close(m["hr@20"], 0.8));
        assert!(close(m["ndcg@5"], (1.0 + 0.630_929_753_571_457_5 + 0.5) / 5.0));
        assert!(close(m["ndcg@10"], m["ndcg@5"]));
        assert!(close(m["ndcg@20"], (1.0 + 0.630_929_753_571_457_5 + 0.5 + 0.278_942_945_651_129_8) / 5.0));
        assert!(close(m["mrr"], (1.0 + 0.5 + 0.0 + 1.0 / 11.0 + 1.0 / 3.0) / 5.0));
    }

    #[test]
    fn golden_candidate_metrics() {
        let ranks = [Some(1), Some(4), Some(2), Some(5)];
        let m = metrics_from_ranks(&ranks, &metric_names(&Protocol::Cand { n: 5 }));
        assert_eq!(m.keys().cloned().collect::<Vec<_>>(), ["hr@1", "hr@3", "mrr", "ndcg@3"]);
        assert!(close(m["hr@1"], 0.25));
        assert!(close(m["hr@3"], 0.5));
        assert!(close(m["ndcg@3"], (1.0 + 0.630_929_753_571_457_5) / 4.0));
        assert!(close(m["mrr"], (1.0 + 0.25 + 0.5 + 0.2) / 4.0));
        // NDCG@1 is HR@1
        assert_eq!(per_user_value("ndcg@1", Some(1)), Some(1.0));
        assert_eq!(per_user_value("ndcg@1", Some(2)), Some(0.0));
        assert_eq!(per_user_value("recall@3", Some(2)), None);
        assert_eq!(per_user_value("bogus", None), None);
    }

    #[test]
    fn rank_ties_are_pessimistic_and_exclusions_skipped() {
        let s = [0.5, 0.9, 0.5, 0.1, 0.7];
        assert_eq!(rank_of(&s, 0, |_| false), Some(4)); // 0.9, 0.7 and the tie 0.5 ahead
        assert_eq!(rank_of(&s, 0, |j| j == 1), Some(3));
        assert_eq!(rank_of(&s, 1, |_| false), Some(1));
        assert_eq!(rank_of(&[1.0; 4], 2, |_| false), Some(4));
        assert_eq!(rank_of(&[f32::NAN, 1.0], 0, |_| false), None);
        // NaN competitors never outrank
        assert_eq!(rank_of(&[0.3, f32::NAN], 0, |_| false), Some(1));
    }
}
