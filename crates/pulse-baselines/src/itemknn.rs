//! Item-to-item co-occurrence (item-KNN): two items are similar when they appear close together in the
//! training sequences (within `window` positions, either order); similarity is the cosine of their
//! co-occurrence counts, c(i, j) / sqrt(n(i) · n(j)). A user's score for an item is the sum of its
//! similarities to the user's last items, each older one weighted `decay` times the next newer one.
//! Counts come from train prefixes only (validation and test targets are never counted).
//!
//! The counting and scoring core is pulse-recommend's candle-free [`pulse_recommend::parts::Knn`], the
//! same code a served bundle runs (its neighbour lists are what a bundle stores); this is its
//! `Recommender` face.
use pulse_data::Split;
use pulse_eval::{BoxError, Recommender};

#[derive(Clone, Debug)]
pub struct ItemKnn {
    inner: pulse_recommend::parts::Knn,
}

impl ItemKnn {
    pub fn fit(split: &Split, window: usize, last: usize, decay: f32) -> Self {
        let seqs: Vec<&[u32]> = split.users.iter().map(|u| u.train.as_slice()).collect();
        ItemKnn { inner: pulse_recommend::parts::Knn::fit(&seqs, split.n_items, window, last, decay) }
    }

    pub fn similarity(&self, i: u32, j: u32) -> f32 {
        self.inner.similarity(i, j)
    }

    /// The co-occurrence lists (what a bundle stores).
    pub fn core(&self) -> &pulse_recommend::parts::Knn {
        &self.inner
    }
}

impl Recommender for ItemKnn {
    fn name(&self) -> &str {
        "itemknn"
    }

    fn score_all(&self, histories: &[&[u32]]) -> Result<Vec<Vec<f32>>, BoxError> {
        Ok(histories.iter().map(|h| self.inner.scores(h)).collect())
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
