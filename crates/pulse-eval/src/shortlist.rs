//! Two-stage ranking of a whole catalogue: a retriever scores every item, and a reranker that scores
//! candidate lists only (an SLM) orders the retriever's top `k`. This is how a list scorer gets a
//! full-catalogue rank: the true item's rank is the reranker's within the shortlist when the retriever put it
//! there, and the retriever's own rank (> k) when it did not.
use crate::{BoxError, EvalError, Recommender};
use std::collections::HashSet;

pub struct Shortlist {
    name: String,
    retriever: Box<dyn Recommender>,
    reranker: Box<dyn Recommender>,
    k: usize,
    skip_history: bool,
}

impl Shortlist {
    /// `k` ≥ 1 items per user go to the reranker. With `skip_history`, the shortlist is drawn from the items
    /// outside the user's history (the `full` protocol with history masked ranks nothing else).
    pub fn new(name: &str, retriever: Box<dyn Recommender>, reranker: Box<dyn Recommender>, k: usize, skip_history: bool) -> Result<Self, EvalError> {
        if k == 0 {
            return Err(EvalError::Invalid(format!("{name}: a shortlist needs at least 1 item")));
        }
        Ok(Shortlist { name: name.to_string(), retriever, reranker, k, skip_history })
    }
}

/// The `k` best-scored items of `row` outside `skip`, best first; equal scores in item order.
pub fn top_k(row: &[f32], k: usize, skip: &HashSet<u32>) -> Vec<u32> {
    let mut idx: Vec<u32> = (0..row.len() as u32).filter(|j| !skip.contains(j)).collect();
    let by_score = |a: &u32, b: &u32| row[*b as usize].total_cmp(&row[*a as usize]).then(a.cmp(b));
    if idx.len() > k {
        idx.select_nth_unstable_by(k - 1, by_score);
        idx.truncate(k);
    }
    idx.sort_by(by_score);
    idx
}

impl Recommender for Shortlist {
    fn name(&self) -> &str {
        &self.name
    }

    /// The retriever's row, with the shortlist lifted above every other item in the reranker's order.
    /// Shortlisted items the reranker scores equally get equal scores (a tie counts against the true item,
    /// as everywhere); the other items keep the retriever's scores and order.
    fn score_all(&self, histories: &[&[u32]]) -> Result<Vec<Vec<f32>>, BoxError> {
        let mut rows = self.retriever.score_all(histories)?;
        let lists: Vec<Vec<u32>> = rows
            .iter()
            .zip(histories)
            .map(|(row, h)| {
                let skip: HashSet<u32> = if self.skip_history { h.iter().copied().collect() } else { HashSet::new() };
                top_k(row, self.k, &skip)
            })
            .collect();
        let refs: Vec<&[u32]> = lists.iter().map(Vec::as_slice).collect();
        let scores = self.reranker.score_candidates(histories, &refs)?;
        for ((row, list), s) in rows.iter_mut().zip(&lists).zip(&scores) {
            if s.len() != list.len() {
                return Err(format!("reranker {} gave {} scores for {} candidates", self.reranker.name(), s.len(), list.len()).into());
            }
            if let Some(x) = s.iter().find(|x| x.is_nan()) {
                return Err(format!("reranker {} gave a score of {x}", self.reranker.name()).into());
            }
            // dense ranks of the reranker's scores, 1 = lowest, placed above the row's highest score
            let mut distinct: Vec<f32> = s.clone();
            distinct.sort_by(f32::total_cmp);
            distinct.dedup();
            // (steps of at least 2^-20 of the top score, so f32 keeps them apart)
            let top = row.iter().copied().filter(|x| x.is_finite()).fold(0.0f32, f32::max);
            let step = (top.abs() / 1_048_576.0).max(1.0);
            for (&j, &x) in list.iter().zip(s) {
                let r = distinct.partition_point(|&d| d < x) + 1;
                row[j as usize] = top + step * r as f32;
            }
        }
        Ok(rows)
    }

    fn batch_size(&self) -> usize {
        self.reranker.batch_size().min(self.retriever.batch_size()).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::rank_of;

    /// Scores every item by a fixed vector, whatever the history.
    struct Fixed(Vec<f32>);
    impl Recommender for Fixed {
        fn name(&self) -> &str {
            "fixed"
        }
        fn score_all(&self, h: &[&[u32]]) -> Result<Vec<Vec<f32>>, BoxError> {
            Ok(vec![self.0.clone(); h.len()])
        }
    }

    /// A list scorer: scores a candidate by minus its item index (so it prefers low indices), and refuses
    /// to score a catalogue, as an SLM does. Records every list it was given.
    struct LowFirst(std::cell::RefCell<Vec<Vec<u32>>>);
    impl Recommender for LowFirst {
        fn name(&self) -> &str {
            "low-first"
        }
        fn score_all(&self, _: &[&[u32]]) -> Result<Vec<Vec<f32>>, BoxError> {
            Err("lists only".into())
        }
        fn score_candidates(&self, _: &[&[u32]], c: &[&[u32]]) -> Result<Vec<Vec<f32>>, BoxError> {
            self.0.borrow_mut().extend(c.iter().map(|l| l.to_vec()));
            Ok(c.iter().map(|l| l.iter().map(|&i| -(i as f32)).collect()).collect())
        }
    }

    fn order(row: &[f32]) -> Vec<u32> {
        top_k(row, row.len(), &HashSet::new())
    }

    #[test]
    fn top_k_skips_the_history_and_breaks_ties_by_item() {
        let row = [0.5, 0.9, 0.1, 0.9, 0.7, 0.2];
        assert_eq!(top_k(&row, 3, &HashSet::new()), vec![1, 3, 4]);
        assert_eq!(top_k(&row, 3, &[3u32].into_iter().collect()), vec![1, 4, 0]);
        assert_eq!(top_k(&row, 10, &[1u32, 3].into_iter().collect()), vec![4, 0, 5, 2]);
    }

    #[test]
    fn the_reranker_orders_the_shortlist_above_the_rest_in_retriever_order() {
        // retriever order: 5, 1, 3, 4, 0, 2, 6 (descending score); history {1}
        let retr = Fixed(vec![0.3, 0.9, 0.1, 0.7, 0.5, 1.0, -2.0]);
        let rr = LowFirst(Default::default());
        let s = Shortlist::new("two-stage", Box::new(retr), Box::new(rr), 3, true).unwrap();
        let hist: &[u32] = &[1];
        let row = &s.score_all(&[hist]).unwrap()[0];
        // the shortlist (history skipped) is {5, 3, 4}; the reranker puts low indices first: 3, 4, 5;
        // then the retriever's order of the rest (history item 1 keeps its score, below the shortlist)
        assert_eq!(order(row), vec![3, 4, 5, 1, 0, 2, 6]);
        // full ranks with the history masked: inside the shortlist the reranker's, outside the retriever's
        let masked = |j: usize| j == 1;
        let ranks: Vec<Option<u32>> = [0, 2, 3, 4, 5, 6].into_iter().map(|t| rank_of(row, t, masked)).collect();
        assert_eq!(ranks, vec![Some(4), Some(5), Some(1), Some(2), Some(3), Some(6)]);
        // without skipping the history, the history item takes a shortlist place
        let s = Shortlist::new("two-stage", Box::new(Fixed(vec![0.3, 0.9, 0.1, 0.7, 0.5, 1.0, -2.0])), Box::new(LowFirst(Default::default())), 3, false).unwrap();
        assert_eq!(order(&s.score_all(&[hist]).unwrap()[0]), vec![1, 3, 5, 4, 0, 2, 6]);
    }

    #[test]
    fn equal_reranker_scores_stay_tied_and_a_shortlist_of_everything_is_the_reranker_alone() {
        // a reranker that scores everything equally: the shortlist is one tie (against the true item)
        let flat = || Box::new(Fixed(vec![0.0; 5]));
        let s = Shortlist::new("t", Box::new(Fixed(vec![5.0, 4.0, 3.0, 2.0, 1.0])), flat(), 2, true).unwrap();
        let row = &s.score_all(&[&[][..]]).unwrap()[0];
        assert_eq!((rank_of(row, 0, |_| false), rank_of(row, 1, |_| false), rank_of(row, 2, |_| false)), (Some(2), Some(2), Some(3)));
        // k ≥ the catalogue: the order is the reranker's alone
        let rr = LowFirst(Default::default());
        let s = Shortlist::new("t", Box::new(Fixed(vec![0.1, 0.9, 0.5, 0.3])), Box::new(rr), 10, true).unwrap();
        assert_eq!(order(&s.score_all(&[&[][..]]).unwrap()[0]), vec![0, 1, 2, 3]);
        assert!(Shortlist::new("t", flat(), flat(), 0, true).is_err());
    }

    #[test]
    fn the_reranker_sees_each_users_own_shortlist() {
        // "next item" retriever: item (last + 1) first, then by index descending
        struct Next;
        impl Recommender for Next {
            fn name(&self) -> &str {
                "next"
            }
            fn score_all(&self, h: &[&[u32]]) -> Result<Vec<Vec<f32>>, BoxError> {
                Ok(h.iter().map(|h| (0..6u32).map(|j| if j == h.last().unwrap() + 1 { 100.0 } else { j as f32 }).collect()).collect())
            }
        }
        let rr = std::rc::Rc::new(LowFirst(Default::default()));
        let s = Shortlist::new("t", Box::new(Next), Box::new(crate::Shared(rr.clone())), 2, true).unwrap();
        let (a, b): (&[u32], &[u32]) = (&[0], &[5, 2]);
        s.score_all(&[a, b]).unwrap();
        assert_eq!(*rr.0.borrow(), vec![vec![1, 5], vec![3, 4]]);
    }
}
