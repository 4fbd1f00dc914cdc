//! Content similarity: an item's score is the cosine between its text embedding and a recency-weighted
//! sum of the (unit) embeddings of the user's last items. Nothing is trained, so it ranks any catalogue
//! whose items have texts: the zero-shot reference for cross-domain rows.
use crate::Result;
use candle_core::{Device, Tensor};
use pulse_eval::{BoxError, Recommender};

#[derive(Clone, Debug)]
pub struct Content {
    /// n_items × dim, unit rows.
    emb: Tensor,
    /// The same rows, flat (the profiles are summed from them).
    rows: Vec<f32>,
    last: usize,
    decay: f32,
}

impl Content {
    /// `text`: the item-text matrix (n_items × dim); `last`: how many recent items form the user's
    /// profile; `decay`: the weight of each older item relative to the next newer one.
    pub fn new(text: &Tensor, last: usize, decay: f32) -> Result<Self> {
        if last == 0 || !(decay > 0.0 && decay <= 1.0) {
            return Err(crate::BaselineError::Invalid(format!("content: last must be ≥ 1 and decay in (0, 1], got {last}, {decay}")));
        }
        let emb = crate::nn::unit_rows(&text.to_dtype(candle_core::DType::F32)?.to_device(&Device::Cpu)?)?.contiguous()?;
        let rows = emb.flatten_all()?.to_vec1()?;
        Ok(Content { emb, rows, last, decay })
    }

    fn profiles(&self, histories: &[&[u32]]) -> Result<Tensor> {
        let (n, d) = self.emb.dims2()?;
        let rows = &self.rows;
        let mut p = vec![0f32; histories.len() * d];
        for (u, h) in histories.iter().enumerate() {
            let mut w = 1.0f32;
            for &i in h.iter().rev().take(self.last) {
                let i = i as usize;
                if i < n {
                    for (a, &x) in p[u * d..(u + 1) * d].iter_mut().zip(&rows[i * d..(i + 1) * d]) {
                        *a += w * x;
                    }
                }
                w *= self.decay;
            }
        }
        Ok(Tensor::from_vec(p, (histories.len(), d), &Device::Cpu)?)
    }
}

impl Recommender for Content {
    fn name(&self) -> &str {
        "content"
    }

    fn score_all(&self, histories: &[&[u32]]) -> std::result::Result<Vec<Vec<f32>>, BoxError> {
        // cosine up to the profile's norm, which does not change a user's ranking; normalise anyway so
        // scores are comparable across users
        let p = crate::nn::unit_rows(&self.profiles(histories)?)?;
        Ok(p.matmul(&self.emb.t()?)?.to_vec2()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_are_cosines_to_the_recency_weighted_profile() {
        // items: x, y, x+y, -x
        let text = Tensor::from_vec(vec![1f32, 0., 0., 2., 1., 1., -3., 0.], (4, 2), &Device::Cpu).unwrap();
        let c = Content::new(&text, 2, 0.5).unwrap();
        // history [.., 2, 0, 1]: last 2 = item 1 (weight 1) and item 0 (weight .5) → profile (.5, 1)/|.|
        let s = c.score_all(&[&[2u32, 0, 1][..]]).unwrap();
        let p = [0.5f32 / 1.25f32.sqrt(), 1.0 / 1.25f32.sqrt()];
        let want = [p[0], p[1], (p[0] + p[1]) / 2f32.sqrt(), -p[0]];
        for j in 0..4 {
            assert!((s[0][j] - want[j]).abs() < 1e-5, "{:?} vs {want:?}", s[0]);
        }
        // the most similar item to a history of y's is y
        let s = c.score_all(&[&[1u32, 1][..]]).unwrap();
        let best = (0..4).max_by(|&a, &b| s[0][a].total_cmp(&s[0][b])).unwrap();
        assert_eq!(best, 1);
        assert!(Content::new(&text, 0, 0.5).is_err());
        assert!(Content::new(&text, 3, 0.0).is_err());
    }
}
