//! Lexical similarity: TF-IDF over the words and adjacent word pairs of item titles, an item's score the
//! cosine between its vector and a recency-weighted sum of the user's last items' vectors. Brand names,
//! product lines and platforms ("playstation 4") are rare tokens a sentence encoder blurs; here they
//! weigh by their rarity in the catalogue. Nothing is trained (document frequencies are a statistic of the
//! catalogue's titles), so it ranks any catalogue, as [`crate::Content`] does.
//!
//! The scoring core is pulse-recommend's candle-free [`pulse_recommend::parts::Lexical`], the same code a
//! served bundle runs; this is its `Recommender` face.
use crate::Result;
use pulse_eval::{BoxError, Recommender};

#[derive(Clone, Debug)]
pub struct Lexical {
    inner: pulse_recommend::parts::Lexical,
}

pub use pulse_recommend::parts::terms;

impl Lexical {
    /// `titles`: one per item (row i = item i); `last` / `decay` as for [`crate::Content`].
    pub fn new(titles: &[&str], last: usize, decay: f32) -> Result<Self> {
        if last == 0 || !(decay > 0.0 && decay <= 1.0) {
            return Err(crate::BaselineError::Invalid(format!("lexical: last must be ≥ 1 and decay in (0, 1], got {last}, {decay}")));
        }
        Ok(Lexical { inner: pulse_recommend::parts::Lexical::new(titles, last, decay) })
    }

    /// Size of the vocabulary (words and word pairs).
    pub fn n_terms(&self) -> usize {
        self.inner.terms.len()
    }
}

impl Recommender for Lexical {
    fn name(&self) -> &str {
        "lexical"
    }

    fn score_all(&self, histories: &[&[u32]]) -> std::result::Result<Vec<Vec<f32>>, BoxError> {
        Ok(histories.iter().map(|h| self.inner.scores(h)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_are_lowercased_words_and_adjacent_pairs() {
        assert_eq!(terms("Crabtree & Evelyn - Hand"), ["crabtree", "evelyn", "hand", "crabtree evelyn", "evelyn hand"]);
        assert_eq!(terms("PlayStation 4"), ["playstation", "4", "playstation 4"]);
        assert!(terms(" - ").is_empty());
        // accented words stay whole; "GT" is a word like any other
        assert_eq!(terms("Crème 'GT' R&D"), ["crème", "gt", "r", "d", "crème gt", "gt r", "r d"]);
    }

    #[test]
    fn scores_are_tfidf_cosines_to_the_recency_weighted_profile() {
        let titles = ["red lipstick", "red nail polish", "blue nail polish", "shampoo", ""];
        let m = Lexical::new(&titles, 2, 0.5).unwrap();
        // red lipstick: 3 terms; red nail polish: 4 new; blue nail polish: 2 new; shampoo: 1
        assert_eq!(m.n_terms(), 10);
        // a history of one item: every score is a cosine, the item itself 1, disjoint titles 0
        let s = m.score_all(&[&[0u32][..]]).unwrap();
        assert!((s[0][0] - 1.0).abs() < 1e-5, "{:?}", s[0]);
        assert!(s[0][1] > 0.0 && s[0][1] < 1.0);
        assert_eq!((s[0][2], s[0][3], s[0][4]), (0.0, 0.0, 0.0));
        // by hand: idf = ln(6 / (1 + df)) + 1; "red" (df 2) is shared by items 0 and 1
        let idf = |df: f32| (6.0f32 / (1.0 + df)).ln() + 1.0;
        let v0 = [idf(2.0), idf(1.0), idf(1.0)]; // red, lipstick, "red lipstick"
        let v1 = [idf(2.0), idf(2.0), idf(2.0), idf(1.0), idf(2.0)]; // red, nail, polish, "red nail", "nail polish"
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        let want = v0[0] * v1[0] / (norm(&v0) * norm(&v1));
        assert!((s[0][1] - want).abs() < 1e-5, "{} vs {want}", s[0][1]);
        // the most recent item weighs most: after [2, 1] item 1 outranks item 2, after [1, 2] the reverse
        let a = m.score_all(&[&[2u32, 1][..], &[1u32, 2][..]]).unwrap();
        assert!(a[0][1] > a[0][2] && a[1][2] > a[1][1]);
        // an empty title and an empty history score nothing
        let e = m.score_all(&[&[4u32][..], &[][..]]).unwrap();
        assert!(e.iter().flatten().all(|&x| x == 0.0));
        assert!(Lexical::new(&titles, 0, 0.5).is_err());
        assert!(Lexical::new(&titles, 2, 1.5).is_err());
    }
}
