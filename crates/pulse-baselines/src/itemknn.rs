//! Item-to-item co-occurrence (item-KNN): two items are similar when they appear close together in the
//! training sequences (within `window` positions, either order); similarity is the cosine of their
//! co-occurrence counts, c(i, j) / sqrt(n(i) · n(j)). A user's score for an item is the sum of its
//! similarities to the user's last items, each older one weighted `decay` times the next newer one.
//! Counts come from train prefixes only (validation and test targets are never counted).
use pulse_data::Split;
use pulse_eval::{BoxError, Recommender};
use std::collections::HashMap;

#[derive(Clone, Debug)]
pub struct ItemKnn {
    n_items: usize,
    /// For each item, its neighbours and similarities.
    neighbours: Vec<Vec<(u32, f32)>>,
    last: usize,
    decay: f32,
}

impl ItemKnn {
    pub fn fit(split: &Split, window: usize, last: usize, decay: f32) -> Self {
        let n = split.n_items;
        let mut occ = vec![0f64; n];
        let mut co: Vec<HashMap<u32, f64>> = vec![HashMap::new(); n];
        for u in &split.users {
            let s = &u.train;
            for (a, &i) in s.iter().enumerate() {
                occ[i as usize] += 1.0;
                for &j in s.iter().skip(a + 1).take(window) {
                    if i != j {
                        *co[i as usize].entry(j).or_default() += 1.0;
                        *co[j as usize].entry(i).or_default() += 1.0;
                    }
                }
            }
        }
        let neighbours = co
            .into_iter()
            .enumerate()
            .map(|(i, m)| {
                let mut v: Vec<(u32, f32)> = m.into_iter().map(|(j, c)| (j, (c / (occ[i] * occ[j as usize]).sqrt()) as f32)).collect();
                v.sort_unstable_by_key(|&(j, _)| j);
                v
            })
            .collect();
        ItemKnn { n_items: n, neighbours, last, decay }
    }

    pub fn similarity(&self, i: u32, j: u32) -> f32 {
        let v = &self.neighbours[i as usize];
        v.binary_search_by_key(&j, |&(k, _)| k).map_or(0.0, |p| v[p].1)
    }
}

impl Recommender for ItemKnn {
    fn name(&self) -> &str {
        "itemknn"
    }

    fn score_all(&self, histories: &[&[u32]]) -> Result<Vec<Vec<f32>>, BoxError> {
        Ok(histories
            .iter()
            .map(|h| {
                let mut row = vec![0f32; self.n_items];
                let mut w = 1.0f32;
                for &i in h.iter().rev().take(self.last) {
                    if let Some(nb) = self.neighbours.get(i as usize) {
                        for &(j, s) in nb {
                            row[j as usize] += w * s;
                        }
                    }
                    w *= self.decay;
                }
                row
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulse_data::SplitUser;

    fn split(seqs: &[&[u32]], n_items: usize) -> Split {
        let users = seqs
            .iter()
            .enumerate()
            .map(|(u, s)| SplitUser { user: u as u32, train: s.to_vec(), valid: 0, test: 0 })
            .collect();
        Split { n_items, users, dropped_short: 0, fingerprint: "t".into() }
    }

    #[test]
    fn similarity_is_the_cosine_of_co_occurrence_within_the_window() {
        // item 0 occurs 3 times, 1 twice, 2 once, 3 once
        let s = split(&[&[0, 1], &[0, 1, 2], &[0, 3]], 5);
        let k = ItemKnn::fit(&s, 1, 3, 0.5);
        assert!((k.similarity(0, 1) - 2.0 / (3.0f32 * 2.0).sqrt()).abs() < 1e-6);
        assert_eq!(k.similarity(0, 1), k.similarity(1, 0));
        assert_eq!(k.similarity(0, 2), 0.0, "0 and 2 are 2 apart, outside a window of 1");
        assert!((k.similarity(1, 2) - 1.0 / 2.0f32.sqrt()).abs() < 1e-6);
        assert_eq!(k.similarity(0, 4), 0.0);
        // with a window of 2, 0 and 2 co-occur
        assert!(ItemKnn::fit(&s, 2, 3, 0.5).similarity(0, 2) > 0.0);
        // scores: last item 1 (weight 1), then 3 (weight 0.5)
        let r = k.score_all(&[&[3u32, 1][..]]).unwrap();
        assert!((r[0][0] - (k.similarity(1, 0) + 0.5 * k.similarity(3, 0))).abs() < 1e-6);
        assert!((r[0][2] - k.similarity(1, 2)).abs() < 1e-6);
        assert_eq!(r[0][4], 0.0);
    }
}
