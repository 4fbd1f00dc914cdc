//! Popularity: an item's score is its number of interactions in the training split (train prefixes
//! only; validation and test targets are never counted).
use pulse_data::Split;
use pulse_eval::{BoxError, Recommender};

#[derive(Clone, Debug)]
pub struct Pop {
    counts: Vec<f32>,
}

impl Pop {
    pub fn fit(split: &Split) -> Self {
        let mut counts = vec![0f32; split.n_items];
        for u in &split.users {
            for &i in &u.train {
                counts[i as usize] += 1.0;
            }
        }
        Pop { counts }
    }
    pub fn counts(&self) -> &[f32] {
        &self.counts
    }
    /// Scores ln(1 + count) instead of the count: the same ranking, a scale on which standardised
    /// scores can be mixed with other models' (a [`pulse_eval::Hybrid`] part).
    pub fn log_scaled(mut self) -> Self {
        self.counts.iter_mut().for_each(|c| *c = c.ln_1p());
        self
    }
}

impl Recommender for Pop {
    fn name(&self) -> &str {
        "pop"
    }
    fn score_all(&self, histories: &[&[u32]]) -> Result<Vec<Vec<f32>>, BoxError> {
        Ok(vec![self.counts.clone(); histories.len()])
    }
    fn score_candidates(&self, _h: &[&[u32]], c: &[&[u32]]) -> Result<Vec<Vec<f32>>, BoxError> {
        Ok(c.iter().map(|c| c.iter().map(|&i| self.counts[i as usize]).collect()).collect())
    }
    fn batch_size(&self) -> usize {
        4096
    }
}
