//! The sequence model (SASRec / PULSE-TS) at inference, in plain Rust: one history at a time, no padding,
//! the last block computing only the last position (all a recommendation needs). The item table holds
//! each item's input embedding (learned ID embedding plus the mapped text embedding for PULSE-TS), which
//! is also its output embedding: a score is the dot product with the final hidden state. Equal to
//! `pulse_baselines::SasRec::scores` up to float rounding (pulse-pipeline's bundle tests check it).
use crate::bundle::{take_f32, Array};
use crate::{RecError, Result};
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
struct Block {
    ln1_g: Vec<f32>,
    ln1_b: Vec<f32>,
    wq: Vec<f32>,
    bq: Vec<f32>,
    wk: Vec<f32>,
    bk: Vec<f32>,
    wv: Vec<f32>,
    bv: Vec<f32>,
    wo: Vec<f32>,
    bo: Vec<f32>,
    ln2_g: Vec<f32>,
    ln2_b: Vec<f32>,
    w1: Vec<f32>,
    c1: Vec<f32>,
    w2: Vec<f32>,
    c2: Vec<f32>,
}

#[derive(Clone, Debug)]
pub struct SeqModel {
    pub n_items: usize,
    pub d: usize,
    pub heads: usize,
    pub max_len: usize,
    pub gelu: bool,
    /// n_items × d.
    items: Vec<f32>,
    /// The same table transposed (d × n_items), for scoring every item with contiguous, vectorised
    /// multiply-adds.
    items_t: Vec<f32>,
    /// max_len × d.
    pos: Vec<f32>,
    blocks: Vec<Block>,
    lnf_g: Vec<f32>,
    lnf_b: Vec<f32>,
}

const EPS: f32 = 1e-8;

fn layer_norm(x: &mut [f32], g: &[f32], b: &[f32]) {
    let n = x.len() as f32;
    let mean = x.iter().sum::<f32>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    let inv = 1.0 / (var + EPS).sqrt();
    for ((v, &g), &b) in x.iter_mut().zip(g).zip(b) {
        *v = (*v - mean) * inv * g + b;
    }
}

/// out = x · W + b, W stored (d_in × d_out) row-major.
fn linear(x: &[f32], w: &[f32], b: &[f32], out: &mut [f32]) {
    out.copy_from_slice(b);
    let d_out = b.len();
    for (i, &xi) in x.iter().enumerate() {
        let row = &w[i * d_out..(i + 1) * d_out];
        for (o, &wv) in out.iter_mut().zip(row) {
            *o += xi * wv;
        }
    }
}

fn gelu_erf(x: f32) -> f32 {
    // Abramowitz–Stegun 7.1.26 erf (|error| < 1.5e-7), as precise as f32 needs here
    let z = x / std::f32::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z.abs());
    let y = 1.0 - (((((1.061_405_4 * t - 1.453_152_1) * t) + 1.421_413_7) * t - 0.284_496_74) * t + 0.254_829_6) * t * (-z * z).exp();
    let erf = if z >= 0.0 { y } else { -y };
    0.5 * x * (1.0 + erf)
}

impl SeqModel {
    /// From the arrays of `pulse_ts.safetensors` and the settings recorded in the manifest.
    pub fn from_arrays(mut m: BTreeMap<String, Array>, file: &str, heads: usize, blocks: usize, gelu: bool) -> Result<SeqModel> {
        let (s, items) = take_f32(&mut m, file, "items", 2)?;
        let (n_items, d) = (s[0], s[1]);
        let (s, pos) = take_f32(&mut m, file, "pos_emb", 2)?;
        if s[1] != d {
            return Err(RecError::Invalid(format!("{file}: pos_emb has width {}, items {d}", s[1])));
        }
        if d == 0 || n_items == 0 {
            return Err(RecError::Invalid(format!("{file}: items table of shape [{n_items}, {d}]")));
        }
        if heads == 0 || d % heads != 0 {
            return Err(RecError::Invalid(format!("{file}: {heads} heads do not divide hidden size {d}")));
        }
        let max_len = s[0];
        let mut v = |name: String, len: usize| -> Result<Vec<f32>> {
            let (_, x) = match m.remove(&name) {
                Some(Array::F32 { shape, data }) => (shape, data),
                _ => return Err(RecError::Invalid(format!("{file}: no f32 array {name}"))),
            };
            if x.len() != len {
                return Err(RecError::Invalid(format!("{file}: {name} has {} values, expected {len}", x.len())));
            }
            Ok(x)
        };
        let mut bl = Vec::with_capacity(blocks);
        for b in 0..blocks {
            let p = |n: &str| format!("b{b}.{n}");
            bl.push(Block {
                ln1_g: v(p("ln1.g"), d)?,
                ln1_b: v(p("ln1.b"), d)?,
                wq: v(p("wq"), d * d)?,
                bq: v(p("bq"), d)?,
                wk: v(p("wk"), d * d)?,
                bk: v(p("bk"), d)?,
                wv: v(p("wv"), d * d)?,
                bv: v(p("bv"), d)?,
                wo: v(p("wo"), d * d)?,
                bo: v(p("bo"), d)?,
                ln2_g: v(p("ln2.g"), d)?,
                ln2_b: v(p("ln2.b"), d)?,
                w1: v(p("w1"), d * d)?,
                c1: v(p("c1"), d)?,
                w2: v(p("w2"), d * d)?,
                c2: v(p("c2"), d)?,
            });
        }
        let lnf_g = v("lnf.g".into(), d)?;
        let lnf_b = v("lnf.b".into(), d)?;
        if let Some(extra) = m.keys().next() {
            return Err(RecError::Invalid(format!("{file}: array {extra} is not part of a {blocks}-block model")));
        }
        let mut items_t = vec![0f32; items.len()];
        for (i, row) in items.chunks_exact(d).enumerate() {
            for (j, &x) in row.iter().enumerate() {
                items_t[j * n_items + i] = x;
            }
        }
        Ok(SeqModel { n_items, d, heads, max_len, gelu, items, items_t, pos, blocks: bl, lnf_g, lnf_b })
    }

    /// The user state after `history` (item indices, oldest first; the last `max_len` are read). An empty
    /// history has no state: `None`.
    pub fn state(&self, history: &[u32]) -> Option<Vec<f32>> {
        let h = &history[history.len().saturating_sub(self.max_len)..];
        let l = h.len();
        if l == 0 {
            return None;
        }
        let d = self.d;
        let (nh, dh) = (self.heads, d / self.heads);
        let scale = (d as f32).sqrt();
        let mut x = vec![0f32; l * d];
        for (t, &it) in h.iter().enumerate() {
            let e = &self.items[it as usize * d..(it as usize + 1) * d];
            let p = &self.pos[(self.max_len - l + t) * d..(self.max_len - l + t + 1) * d];
            for ((o, &e), &p) in x[t * d..(t + 1) * d].iter_mut().zip(e).zip(p) {
                *o = e * scale + p;
            }
        }
        let mut k = vec![0f32; l * d];
        let mut v = vec![0f32; l * d];
        let mut q = vec![0f32; d];
        let mut q_in = vec![0f32; d];
        let mut o = vec![0f32; d];
        let mut t1 = vec![0f32; d];
        let mut att = vec![0f32; l];
        let nb = self.blocks.len();
        for (bi, b) in self.blocks.iter().enumerate() {
            for t in 0..l {
                linear(&x[t * d..(t + 1) * d], &b.wk, &b.bk, &mut k[t * d..(t + 1) * d]);
                linear(&x[t * d..(t + 1) * d], &b.wv, &b.bv, &mut v[t * d..(t + 1) * d]);
            }
            // the last block: only the last position's output is read
            let first = if bi + 1 == nb { l - 1 } else { 0 };
            let mut y = vec![0f32; (l - first) * d];
            for t in first..l {
                q_in.copy_from_slice(&x[t * d..(t + 1) * d]);
                layer_norm(&mut q_in, &b.ln1_g, &b.ln1_b);
                linear(&q_in, &b.wq, &b.bq, &mut q);
                o.fill(0.0);
                for hd in 0..nh {
                    let r = hd * dh..(hd + 1) * dh;
                    let mut max = f32::NEG_INFINITY;
                    for s in 0..=t {
                        let a = q[r.clone()].iter().zip(&k[s * d + r.start..s * d + r.end]).map(|(a, b)| a * b).sum::<f32>() / (dh as f32).sqrt();
                        att[s] = a;
                        max = max.max(a);
                    }
                    let mut z = 0.0;
                    for a in att[..=t].iter_mut() {
                        *a = (*a - max).exp();
                        z += *a;
                    }
                    for s in 0..=t {
                        let w = att[s] / z;
                        for (oo, &vv) in o[r.clone()].iter_mut().zip(&v[s * d + r.start..s * d + r.end]) {
                            *oo += w * vv;
                        }
                    }
                }
                let yt = &mut y[(t - first) * d..(t - first + 1) * d];
                linear(&o, &b.wo, &b.bo, yt);
                for (a, &qv) in yt.iter_mut().zip(&q_in) {
                    *a += qv;
                }
                layer_norm(yt, &b.ln2_g, &b.ln2_b);
                linear(yt, &b.w1, &b.c1, &mut t1);
                for a in t1.iter_mut() {
                    *a = if self.gelu { gelu_erf(*a) } else { a.max(0.0) };
                }
                linear(&t1, &b.w2, &b.c2, &mut o);
                for (a, &f) in yt.iter_mut().zip(&o) {
                    *a += f;
                }
            }
            if bi + 1 == nb {
                let mut last = y[..d].to_vec();
                layer_norm(&mut last, &self.lnf_g, &self.lnf_b);
                return Some(last);
            }
            x = y;
        }
        unreachable!("at least one block")
    }

    /// Scores of every item for a user state.
    pub fn scores(&self, state: &[f32]) -> Vec<f32> {
        let n = self.n_items;
        let mut out = vec![0f32; n];
        for (j, &s) in state.iter().enumerate().take(self.d) {
            for (o, &c) in out.iter_mut().zip(&self.items_t[j * n..(j + 1) * n]) {
                *o += s * c;
            }
        }
        out
    }

    /// Score of one item.
    pub fn score(&self, state: &[f32], item: u32) -> f32 {
        crate::simd::dot(&self.items[item as usize * self.d..(item as usize + 1) * self.d], state)
    }

    pub fn weight_bytes(&self) -> usize {
        4 * (2 * self.items.len() + self.pos.len() + self.blocks.len() * (6 * self.d * self.d + 10 * self.d))
    }
}
