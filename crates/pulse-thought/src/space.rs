//! The Thought Space on frozen encoders (the CPU default): two linear projection heads, R for rationales
//! and B for behaviours, on top of fixed sentence embeddings, trained with InfoNCE on cosine similarity —
//! each behaviour's own rationale is the positive, the other rationales of the batch are the negatives (and
//! symmetrically for rationales). Heads start as the identity, so the untrained space *is* the frozen
//! encoder's cosine: "trained vs untrained" compares against that.

use candle_core::{DType, Device, Tensor, Var, D};
use pulse_baselines::{adam::Adam, nn::log_softmax};
use pulse_data::Rng;
use serde::{Deserialize, Serialize};

use crate::error::Result;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpaceConfig {
    /// InfoNCE temperature on cosine similarity (the paper's 1 is far too flat for cosines in [-1, 1]).
    pub temperature: f64,
    /// Pairs per batch (each pair's negatives are the other batch - 1).
    pub batch: usize,
    pub epochs: usize,
    pub lr: f64,
    pub weight_decay: f64,
    /// Share of the training pairs held back for validation: the heads of the epoch with the best
    /// validation MRR are kept (0 = keep the last epoch).
    pub valid_fraction: f64,
    /// Same-history negatives per pair: B(history, n) for k items n the user never touched, added to the
    /// rationale's side of the loss beside the batch's other behaviours. In-batch negatives differ in the
    /// history too, so a rationale that copies its history's titles already wins among them; these differ
    /// only in the chosen item. 0 (in-batch only, the method) by default, and then absent from the saved
    /// config.
    #[serde(skip_serializing_if = "is_zero")]
    pub history_negatives: usize,
}

fn is_zero(x: &usize) -> bool {
    *x == 0
}

impl Default for SpaceConfig {
    fn default() -> Self {
        SpaceConfig { temperature: 0.05, batch: 64, epochs: 60, lr: 1e-4, weight_decay: 1.0, valid_fraction: 0.1, history_negatives: 0 }
    }
}

/// Heads are `W = I + Δ`: the trainable Δ starts at zero and weight decay pulls it back toward zero, i.e.
/// the space toward the frozen encoder's cosine — with ~1,000 pairs, free 384² heads overfit (measured:
/// train loss 3.75 → 0.17 while held-out retrieval fell).
pub struct ThoughtSpace {
    pub dr: Var,
    pub db: Var,
}

fn unit_rows(x: &Tensor) -> candle_core::Result<Tensor> {
    x.broadcast_div(&x.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.clamp(1e-12, f64::MAX)?)
}

impl ThoughtSpace {
    /// Identity heads (d → d).
    pub fn identity(d: usize, dtype: DType) -> Result<Self> {
        let z = Tensor::zeros((d, d), dtype, &Device::Cpu)?;
        Ok(ThoughtSpace { dr: Var::from_tensor(&z)?, db: Var::from_tensor(&z)? })
    }

    /// Heads from full matrices `W` (as saved).
    pub fn from_weights(wr: &Tensor, wb: &Tensor) -> Result<Self> {
        let eye = Tensor::eye(wr.dim(0)?, wr.dtype(), wr.device())?;
        Ok(ThoughtSpace { dr: Var::from_tensor(&(wr - &eye)?)?, db: Var::from_tensor(&(wb - &eye)?)? })
    }

    /// The full head matrices `W = I + Δ` (rationale, behaviour).
    pub fn weights(&self) -> Result<(Tensor, Tensor)> {
        let d = self.dr.as_tensor();
        let eye = Tensor::eye(d.dim(0)?, d.dtype(), d.device())?;
        Ok(((d + &eye)?, (self.db.as_tensor() + &eye)?))
    }

    fn project(e: &Tensor, delta: &Tensor) -> Result<Tensor> {
        Ok(unit_rows(&(e + e.matmul(delta)?)?)?)
    }
    pub fn project_r(&self, e: &Tensor) -> Result<Tensor> {
        Self::project(e, self.dr.as_tensor())
    }
    pub fn project_b(&self, e: &Tensor) -> Result<Tensor> {
        Self::project(e, self.db.as_tensor())
    }

    /// Symmetric InfoNCE over a batch of aligned (rationale, behaviour) embedding rows.
    pub fn loss(&self, er: &Tensor, eb: &Tensor, temperature: f64) -> Result<Tensor> {
        self.loss_with(er, eb, None, temperature)
    }

    /// [`Self::loss`], with each rationale's softmax also over its own same-history negative behaviours
    /// `neg` (n × k × d) when given.
    pub fn loss_with(&self, er: &Tensor, eb: &Tensor, neg: Option<&Tensor>, temperature: f64) -> Result<Tensor> {
        let r = self.project_r(er)?;
        let b = self.project_b(eb)?;
        let logits = (b.matmul(&r.t()?)? / temperature)?; // (n, n): row i = behaviour i vs all rationales
        let n = logits.dim(0)?;
        let eye = Tensor::eye(n, logits.dtype(), logits.device())?;
        let lb = (log_softmax(&logits)? * &eye)?.sum_all()?;
        let rl = logits.t()?.contiguous()?; // row i = rationale i vs all behaviours
        let lr = match neg {
            None => (log_softmax(&rl)? * &eye)?.sum_all()?,
            Some(nb) => {
                let (_, k, d) = nb.dims3()?;
                let pn = self.project_b(&nb.reshape((n * k, d))?)?.reshape((n, k, d))?;
                let nl = (pn.broadcast_mul(&r.unsqueeze(1)?)?.sum(D::Minus1)? / temperature)?; // (n, k)
                let all = Tensor::cat(&[&rl, &nl], 1)?;
                (log_softmax(&all)?.narrow(1, 0, n)? * &eye)?.sum_all()?
            }
        };
        Ok(((lb + lr)? / (-2.0 * n as f64))?)
    }

    /// Train on aligned embedding rows (f32, n × d). Returns the mean loss of each epoch.
    pub fn train(er: &[Vec<f32>], eb: &[Vec<f32>], cfg: &SpaceConfig, seed: u64) -> Result<(Self, Vec<f64>)> {
        Self::train_with(er, eb, None, cfg, seed)
    }

    /// [`Self::train`] with `neg[i]`, pair i's same-history negative behaviours (k rows each, the same k for
    /// every pair), in its rationale's softmax ([`Self::loss_with`]). The epoch kept is still the one with
    /// the best validation MRR among the other pairs' rationales.
    pub fn train_with(er: &[Vec<f32>], eb: &[Vec<f32>], neg: Option<&[Vec<Vec<f32>>]>, cfg: &SpaceConfig, seed: u64) -> Result<(Self, Vec<f64>)> {
        let n_valid = ((er.len() as f64) * cfg.valid_fraction).round() as usize;
        let n_valid = if n_valid >= 2 && n_valid + 2 <= er.len() { n_valid } else { 0 };
        let (vr, er) = er.split_at(n_valid);
        let (vb, eb) = eb.split_at(n_valid);
        let (n, d) = (er.len(), er.first().map_or(0, |v| v.len()));
        let space = ThoughtSpace::identity(d, DType::F32)?;
        let mut best: Option<(f64, Tensor, Tensor)> = None;
        let to_t = |rows: &[Vec<f32>]| Tensor::from_vec(rows.concat(), (rows.len(), d), &Device::Cpu);
        let (er, eb) = (to_t(er)?, to_t(eb)?);
        let en = match neg {
            Some(neg) => {
                let neg = &neg[n_valid..];
                let k = neg.first().map_or(0, Vec::len);
                let flat: Vec<f32> = neg.iter().flat_map(|rows| rows.iter().flatten().copied()).collect();
                (k > 0).then(|| Tensor::from_vec(flat, (n, k, d), &Device::Cpu)).transpose()?
            }
            None => None,
        };
        let vars = [space.dr.clone(), space.db.clone()];
        let mut opt = Adam::new(&vars, cfg.lr, 0.9, 0.999, cfg.weight_decay)?;
        let mut rng = Rng::derive(seed, "thought-space");
        let mut losses = Vec::new();
        let mut order: Vec<u32> = (0..n as u32).collect();
        for _ in 0..cfg.epochs {
            rng.shuffle(&mut order);
            let (mut total, mut batches) = (0.0, 0);
            for chunk in order.chunks(cfg.batch.max(2)) {
                if chunk.len() < 2 {
                    continue;
                }
                let idx = Tensor::from_vec(chunk.to_vec(), chunk.len(), &Device::Cpu)?;
                let nb = en.as_ref().map(|t| t.index_select(&idx, 0)).transpose()?;
                let loss = space.loss_with(&er.index_select(&idx, 0)?, &eb.index_select(&idx, 0)?, nb.as_ref(), cfg.temperature)?;
                total += loss.to_scalar::<f32>()? as f64;
                batches += 1;
                let grads = loss.backward()?;
                opt.step(&vars, &grads)?;
            }
            losses.push(total / batches.max(1) as f64);
            if n_valid > 0 {
                let v = retrieval(&space.apply(vr, true)?, &space.apply(vb, false)?, 100, seed);
                if best.as_ref().is_none_or(|b| v.mrr > b.0) {
                    best = Some((v.mrr, space.dr.as_tensor().copy()?, space.db.as_tensor().copy()?));
                }
            }
        }
        if let Some((_, dr, db)) = best {
            space.dr.set(&dr)?;
            space.db.set(&db)?;
        }
        Ok((space, losses))
    }

    /// Project f32 embedding rows through a head (unit rows out).
    pub fn apply(&self, rows: &[Vec<f32>], rationale: bool) -> Result<Vec<Vec<f32>>> {
        let d = rows.first().map_or(0, |v| v.len());
        let t = Tensor::from_vec(rows.concat(), (rows.len(), d), &Device::Cpu)?;
        let p = if rationale { self.project_r(&t)? } else { self.project_b(&t)? };
        Ok(p.to_vec2::<f32>()?)
    }
}

/// Rationale ↔ behaviour retrieval among `pool` candidates: for each behaviour, its own rationale and
/// `pool - 1` other rationales drawn with the seed; rank by cosine (ties against the true one).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Retrieval {
    pub r_at_1: f64,
    pub mrr: f64,
    pub n: usize,
    pub pool: usize,
}

/// Which item: each rationale ranks its own behaviour among its same-history negatives `neg[i]` (the same
/// history with other items chosen) by cosine, ties against the true one; pool = k + 1.
pub fn item_retrieval(r: &[Vec<f32>], b: &[Vec<f32>], neg: &[Vec<Vec<f32>>]) -> Retrieval {
    let dot = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(a, c)| a * c).sum::<f32>();
    let (mut hits, mut rr) = (0usize, 0.0f64);
    for i in 0..r.len() {
        let s_true = dot(&b[i], &r[i]);
        let rank = 1 + neg[i].iter().filter(|v| dot(v, &r[i]) >= s_true).count();
        hits += usize::from(rank == 1);
        rr += 1.0 / rank as f64;
    }
    let n = r.len();
    Retrieval { r_at_1: hits as f64 / n.max(1) as f64, mrr: rr / n.max(1) as f64, n, pool: 1 + neg.first().map_or(0, Vec::len) }
}

pub fn retrieval(r: &[Vec<f32>], b: &[Vec<f32>], pool: usize, seed: u64) -> Retrieval {
    let n = r.len();
    let pool = pool.min(n);
    let dot = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(a, c)| a * c).sum::<f32>();
    let mut rng = Rng::derive(seed, "retrieval");
    let (mut hits, mut rr) = (0usize, 0.0f64);
    for i in 0..n {
        let mut others: Vec<usize> = (0..n).filter(|&j| j != i).collect();
        rng.shuffle(&mut others);
        let s_true = dot(&b[i], &r[i]);
        let rank = 1 + others[..pool - 1].iter().filter(|&&j| dot(&b[i], &r[j]) >= s_true).count();
        hits += usize::from(rank == 1);
        rr += 1.0 / rank as f64;
    }
    Retrieval { r_at_1: hits as f64 / n as f64, mrr: rr / n as f64, n, pool }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rand_t(rng: &mut Rng, n: usize, d: usize, dtype: DType) -> Tensor {
        let v: Vec<f64> = (0..n * d).map(|_| rng.normal() as f64).collect();
        Tensor::from_vec(v, (n, d), &Device::Cpu).unwrap().to_dtype(dtype).unwrap()
    }

    /// Every head weight's gradient against central finite differences, in f64.
    #[test]
    fn gradients_match_finite_differences() {
        let mut rng = Rng::new(5);
        let (n, d) = (5, 4);
        let er = rand_t(&mut rng, n, d, DType::F64);
        let eb = rand_t(&mut rng, n, d, DType::F64);
        let s = ThoughtSpace { dr: Var::from_tensor(&rand_t(&mut rng, d, d, DType::F64)).unwrap(), db: Var::from_tensor(&rand_t(&mut rng, d, d, DType::F64)).unwrap() };
        assert_head_gradients(&s, &|s| s.loss(&er, &eb, 0.3).unwrap());
    }

    /// Every head weight's gradient of `loss` against central finite differences (f64 heads).
    fn assert_head_gradients(s: &ThoughtSpace, loss: &dyn Fn(&ThoughtSpace) -> Tensor) {
        let grads = loss(s).backward().unwrap();
        for var in [&s.dr, &s.db] {
            let g = grads.get(var).expect("a gradient for every head").to_vec2::<f64>().unwrap();
            let w0 = var.as_tensor().to_vec2::<f64>().unwrap();
            for i in 0..w0.len() {
                for j in 0..w0[i].len() {
                    let at = |delta: f64| {
                        let mut w = w0.clone();
                        w[i][j] += delta;
                        var.set(&Tensor::new(w, &Device::Cpu).unwrap()).unwrap();
                        loss(s).to_scalar::<f64>().unwrap()
                    };
                    let fd = (at(1e-5) - at(-1e-5)) / 2e-5;
                    var.set(&Tensor::new(w0.clone(), &Device::Cpu).unwrap()).unwrap();
                    assert!((fd - g[i][j]).abs() < 1e-6 + 1e-4 * fd.abs(), "w[{i}][{j}]: fd {fd} vs grad {}", g[i][j]);
                }
            }
        }
    }

    /// Same-history negatives: every gradient against finite differences, and the loss's exact value when
    /// a batch of one has k copies of its own behaviour as negatives: behaviour side log 1, rationale side
    /// log 1/(k+1).
    #[test]
    fn negatives_enter_the_rationale_softmax() {
        let mut rng = Rng::new(6);
        let (n, k, d) = (4, 3, 4);
        let er = rand_t(&mut rng, n, d, DType::F64);
        let eb = rand_t(&mut rng, n, d, DType::F64);
        let en = rand_t(&mut rng, n * k, d, DType::F64).reshape((n, k, d)).unwrap();
        let s = ThoughtSpace { dr: Var::from_tensor(&rand_t(&mut rng, d, d, DType::F64)).unwrap(), db: Var::from_tensor(&rand_t(&mut rng, d, d, DType::F64)).unwrap() };
        let plain = s.loss(&er, &eb, 0.3).unwrap().to_scalar::<f64>().unwrap();
        let with = s.loss_with(&er, &eb, Some(&en), 0.3).unwrap().to_scalar::<f64>().unwrap();
        assert!(with > plain, "more negatives, a larger loss");
        assert_head_gradients(&s, &|s| s.loss_with(&er, &eb, Some(&en), 0.3).unwrap());
        let one_b = eb.narrow(0, 0, 1).unwrap();
        let copies = one_b.unsqueeze(1).unwrap().repeat((1, k, 1)).unwrap();
        let l = s.loss_with(&er.narrow(0, 0, 1).unwrap(), &one_b, Some(&copies), 0.3).unwrap().to_scalar::<f64>().unwrap();
        assert!((l - ((k + 1) as f64).ln() / 2.0).abs() < 1e-9, "{l}");
    }

    #[test]
    fn item_retrieval_ranks_each_behaviour_among_its_own_negatives() {
        let r = vec![vec![1.0f32, 0.0], vec![0.0, 1.0]];
        let b = vec![vec![1.0f32, 0.0], vec![1.0, 0.0]];
        // pair 0: its behaviour beats both negatives; pair 1: one negative beats it, one ties (ties count against)
        let neg = vec![vec![vec![0.0f32, 1.0], vec![0.6, 0.8]], vec![vec![0.0f32, 1.0], vec![1.0, 0.0]]];
        let m = item_retrieval(&r, &b, &neg);
        assert_eq!((m.n, m.pool), (2, 3));
        assert!((m.r_at_1 - 0.5).abs() < 1e-12 && (m.mrr - (1.0 + 1.0 / 3.0) / 2.0).abs() < 1e-12, "{m:?}");
    }

    /// Behaviours are a fixed linear distortion of their rationales plus noise: identity heads retrieve
    /// poorly, trained heads learn to undo the distortion.
    #[test]
    fn training_aligns_a_distorted_space() {
        let mut rng = Rng::new(9);
        let (n, d) = (400, 16);
        let r: Vec<Vec<f32>> = (0..n).map(|_| (0..d).map(|_| rng.normal()).collect()).collect();
        let m: Vec<Vec<f32>> = (0..d).map(|_| (0..d).map(|_| rng.normal()).collect()).collect();
        let b: Vec<Vec<f32>> = r
            .iter()
            .map(|x| (0..d).map(|j| (0..d).map(|k| x[k] * m[k][j]).sum::<f32>() + 0.3 * rng.normal()).collect())
            .collect();
        let (tr, te) = (300, 100);
        let untrained = ThoughtSpace::identity(d, DType::F32).unwrap();
        let before = retrieval(&untrained.apply(&r[tr..], true).unwrap(), &untrained.apply(&b[tr..], false).unwrap(), te, 1);
        let cfg = SpaceConfig { temperature: 0.1, batch: 32, epochs: 60, lr: 1e-2, weight_decay: 0.0, valid_fraction: 0.1, history_negatives: 0 };
        let (s, losses) = ThoughtSpace::train(&r[..tr], &b[..tr], &cfg, 1).unwrap();
        assert!(losses.last().unwrap() < &(losses[0] * 0.5), "{losses:?}");
        let after = retrieval(&s.apply(&r[tr..], true).unwrap(), &s.apply(&b[tr..], false).unwrap(), te, 1);
        assert!(after.r_at_1 > before.r_at_1 + 0.3 && after.r_at_1 > 0.6, "before {before:?} after {after:?}");
    }
}
