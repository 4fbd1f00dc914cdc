//! Fused CPU ops with hand-written backward passes for the trainable forward.
//!
//! candle's own fused `rms_norm`, `rope_i` and `softmax_last_dim` return no gradient; composing them from
//! plain ops does, but keeps every intermediate (≈ 6 attention-sized tensors per layer for the softmax
//! alone) alive until the backward pass, which made LoRA training memory- and page-fault-bound (9 GB
//! peak for two 330-token rows). Each op here stores only its input or output. The tests compare
//! values and gradients with the plain-op compositions.
use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};

/// The f32 data of a contiguous CPU storage (custom ops' forward input).
pub(crate) fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(d) = s else { candle_core::bail!("{op} needs f32") };
    let Some((a, b)) = l.contiguous_offsets() else { candle_core::bail!("{op} needs a contiguous input") };
    Ok(&d[a..b])
}

fn values(t: &Tensor) -> candle_core::Result<Vec<f32>> {
    t.contiguous()?.flatten_all()?.to_vec1::<f32>()
}

/// Causal attention weights: `softmax(scale · s)` over the last dimension of scores `s` (…, L, L), with
/// key positions after the query's set to zero.
pub fn causal_softmax(scores: &Tensor, scale: f64) -> candle_core::Result<Tensor> {
    let d = scores.dims();
    if d.len() < 2 || d[d.len() - 1] != d[d.len() - 2] {
        candle_core::bail!("causal-softmax: scores must be (…, L, L), got {d:?}");
    }
    scores.contiguous()?.apply_op1(CausalSoftmax { scale: scale as f32 })
}

struct CausalSoftmax {
    scale: f32,
}

impl CustomOp1 for CausalSoftmax {
    fn name(&self) -> &'static str {
        "causal-softmax"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_slice(s, l, self.name())?;
        let n = l.dims()[l.dims().len() - 1];
        let mut y = vec![0f32; x.len()];
        for (r, (xr, yr)) in x.chunks_exact(n).zip(y.chunks_exact_mut(n)).enumerate() {
            let q = r % n; // query position: keys 0..=q are visible
            let vis = &xr[..=q];
            let max = vis.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) * self.scale;
            let mut sum = 0f32;
            for (o, &v) in yr[..=q].iter_mut().zip(vis) {
                *o = (v * self.scale - max).exp();
                sum += *o;
            }
            let inv = 1.0 / sum;
            yr[..=q].iter_mut().for_each(|o| *o *= inv);
        }
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let n = res.dims()[res.dims().len() - 1];
        let (y, g) = (values(res)?, values(grad)?);
        let mut dx = vec![0f32; y.len()];
        for ((yr, gr), dr) in y.chunks_exact(n).zip(g.chunks_exact(n)).zip(dx.chunks_exact_mut(n)) {
            let dot: f32 = yr.iter().zip(gr).map(|(a, b)| a * b).sum();
            for ((d, &a), &b) in dr.iter_mut().zip(yr).zip(gr) {
                *d = self.scale * a * (b - dot);
            }
        }
        Ok(Some(Tensor::from_vec(dx, res.shape(), res.device())?))
    }
}

/// RMSNorm over the last dimension with a frozen gain `g`: `x / sqrt(mean(x²) + eps) · g`.
pub fn rms_norm(x: &Tensor, g: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
    let gain = values(g)?;
    if x.dims()[x.dims().len() - 1] != gain.len() {
        candle_core::bail!("rms-norm: gain of {} for rows of {}", gain.len(), x.dims()[x.dims().len() - 1]);
    }
    x.contiguous()?.apply_op1(RmsNorm { gain, eps: eps as f32 })
}

struct RmsNorm {
    gain: Vec<f32>,
    eps: f32,
}

impl RmsNorm {
    fn inv_rms(&self, row: &[f32]) -> f32 {
        let ms = row.iter().map(|v| v * v).sum::<f32>() / row.len() as f32;
        1.0 / (ms + self.eps).sqrt()
    }
}

impl CustomOp1 for RmsNorm {
    fn name(&self) -> &'static str {
        "rms-norm"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_slice(s, l, self.name())?;
        let n = self.gain.len();
        let mut y = vec![0f32; x.len()];
        for (xr, yr) in x.chunks_exact(n).zip(y.chunks_exact_mut(n)) {
            let r = self.inv_rms(xr);
            for ((o, &v), &g) in yr.iter_mut().zip(xr).zip(&self.gain) {
                *o = v * r * g;
            }
        }
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    /// With `u = dy · g` and `r = 1/rms(x)`: `dx = r · (u − x · r² · mean(u · x))`.
    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let n = self.gain.len();
        let (x, dy) = (values(arg)?, values(grad)?);
        let mut dx = vec![0f32; x.len()];
        for ((xr, gr), dr) in x.chunks_exact(n).zip(dy.chunks_exact(n)).zip(dx.chunks_exact_mut(n)) {
            let r = self.inv_rms(xr);
            let m = xr.iter().zip(gr).zip(&self.gain).map(|((&v, &d), &g)| v * d * g).sum::<f32>() / n as f32;
            for (((o, &v), &d), &g) in dr.iter_mut().zip(xr).zip(gr).zip(&self.gain) {
                *o = r * (d * g - v * r * r * m);
            }
        }
        Ok(Some(Tensor::from_vec(dx, arg.shape(), arg.device())?))
    }
}

/// Rotation tables for [`rope`]: cos and sin of position × base^(−2i/dh), each (L · dh/2) row-major.
#[derive(Clone, Debug)]
pub struct RopeTables {
    cos: Vec<f32>,
    sin: Vec<f32>,
    len: usize,
    half: usize,
    /// NeoX order: pairs `(x[i], x[i + dh/2])` instead of `(x[2i], x[2i + 1])`.
    neox: bool,
}

impl RopeTables {
    pub fn new(len: usize, dh: usize, base: f32) -> Self {
        let half = dh / 2;
        let (mut cos, mut sin) = (Vec::with_capacity(len * half), Vec::with_capacity(len * half));
        for p in 0..len {
            for i in 0..half {
                let theta = p as f32 * base.powf(-((2 * i) as f32) / dh as f32);
                cos.push(theta.cos());
                sin.push(theta.sin());
            }
        }
        RopeTables { cos, sin, len, half, neox: false }
    }

    /// The same rotation with NeoX's pairing `(x[i], x[i + dh/2])` (Gemma, as llama.cpp runs it).
    pub fn neox(len: usize, dh: usize, base: f32) -> Self {
        RopeTables { neox: true, ..Self::new(len, dh, base) }
    }
}

/// Interleaved rotary embedding of (B, heads, L, dh) (GGUF's Llama convention): each pair
/// `(x[2i], x[2i+1])` at position p rotated by p · base^(−2i/dh). Its gradient is the inverse rotation.
pub fn rope(x: &Tensor, t: &RopeTables) -> candle_core::Result<Tensor> {
    let (_, _, l, dh) = x.dims4()?;
    if l != t.len || dh != 2 * t.half {
        candle_core::bail!("rope: tables for ({}, {}) applied to ({l}, {dh})", t.len, 2 * t.half);
    }
    x.contiguous()?.apply_op1(Rope { t: t.clone(), inverse: false })
}

struct Rope {
    t: RopeTables,
    inverse: bool,
}

impl CustomOp1 for Rope {
    fn name(&self) -> &'static str {
        "rope"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_slice(s, l, self.name())?;
        let (half, len) = (self.t.half, self.t.len);
        let sign = if self.inverse { -1.0 } else { 1.0 };
        let mut y = vec![0f32; x.len()];
        for (r, (xr, yr)) in x.chunks_exact(2 * half).zip(y.chunks_exact_mut(2 * half)).enumerate() {
            let p = r % len;
            for i in 0..half {
                let (c, sn) = (self.t.cos[p * half + i], sign * self.t.sin[p * half + i]);
                let (j0, j1) = if self.t.neox { (i, i + half) } else { (2 * i, 2 * i + 1) };
                let (a, b) = (xr[j0], xr[j1]);
                yr[j0] = a * c - b * sn;
                yr[j1] = a * sn + b * c;
            }
        }
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(grad.contiguous()?.apply_op1(Rope { t: self.t.clone(), inverse: !self.inverse })?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var, D};

    fn randn(shape: &[usize], seed: u64) -> Var {
        let mut rng = pulse_data::Rng::new(seed);
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| rng.normal()).collect();
        Var::from_tensor(&Tensor::from_vec(v, shape, &Device::Cpu).unwrap()).unwrap()
    }

    /// Value and gradient (of a random linear functional) of `fused` and `plain` agree.
    fn same(x: &Var, fused: impl Fn(&Tensor) -> Tensor, plain: impl Fn(&Tensor) -> Tensor) {
        let w = randn(x.dims(), 99).as_tensor().detach();
        let (yf, yp) = (fused(x.as_tensor()), plain(x.as_tensor()));
        let dv = (&yf - &yp).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(dv < 1e-5, "values differ by {dv}");
        let gf = (yf * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let gp = (yp * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let (gf, gp) = (gf.get(x).expect("fused grad"), gp.get(x).expect("plain grad"));
        let scale = gp.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        let dg = (gf - gp).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(scale > 1e-3 && dg < 1e-4 * scale.max(1.0), "gradients differ by {dg} (scale {scale})");
    }

    #[test]
    fn causal_softmax_matches_masked_plain_softmax() {
        let (l, scale) = (7, 0.3);
        let x = randn(&[2, 3, l, l], 1);
        let mut m = vec![0f32; l * l];
        for i in 0..l {
            m[i * l + i + 1..(i + 1) * l].fill(-1e9);
        }
        let mask = Tensor::from_vec(m, (1, 1, l, l), &Device::Cpu).unwrap();
        same(&x, |x| causal_softmax(x, scale).unwrap(), |x| {
            pulse_baselines::nn::softmax(&(x * scale).unwrap().broadcast_add(&mask).unwrap()).unwrap()
        });
        // masked keys get exactly zero weight, rows sum to one
        let y = causal_softmax(x.as_tensor(), scale).unwrap().flatten_to(2).unwrap().to_vec2::<f32>().unwrap();
        for (r, row) in y.iter().enumerate() {
            let q = r % l;
            assert!(row[q + 1..].iter().all(|&v| v == 0.0));
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
        assert!(causal_softmax(&randn(&[2, l, l + 1], 6).as_tensor().detach(), scale).is_err());
    }

    #[test]
    fn rms_norm_matches_plain_ops() {
        let x = randn(&[5, 16], 2);
        let g = randn(&[16], 3).as_tensor().detach();
        let eps = 1e-5;
        same(&x, |x| rms_norm(x, &g, eps).unwrap(), |x| {
            let ms = x.sqr().unwrap().mean_keepdim(D::Minus1).unwrap();
            x.broadcast_div(&(ms + eps).unwrap().sqrt().unwrap()).unwrap().broadcast_mul(&g).unwrap()
        });
        assert!(rms_norm(x.as_tensor(), &randn(&[8], 4).as_tensor().detach(), eps).is_err());
    }

    #[test]
    fn rope_matches_plain_rotation_in_value_and_gradient() {
        let (l, dh, base) = (6, 8, 10_000f32);
        let x = randn(&[2, 3, l, dh], 5);
        let t = RopeTables::new(l, dh, base);
        let cos = Tensor::from_vec(t.cos.clone(), (l, dh / 2, 1), &Device::Cpu).unwrap();
        let sin = Tensor::from_vec(t.sin.clone(), (l, dh / 2, 1), &Device::Cpu).unwrap();
        same(&x, |x| rope(x, &t).unwrap(), |x| {
            let x = x.reshape((2, 3, l, dh / 2, 2)).unwrap();
            let (x0, x1) = (x.narrow(4, 0, 1).unwrap(), x.narrow(4, 1, 1).unwrap());
            let r0 = (x0.broadcast_mul(&cos).unwrap() - x1.broadcast_mul(&sin).unwrap()).unwrap();
            let r1 = (x0.broadcast_mul(&sin).unwrap() + x1.broadcast_mul(&cos).unwrap()).unwrap();
            Tensor::cat(&[r0, r1], 4).unwrap().reshape((2, 3, l, dh)).unwrap()
        });
        assert!(rope(x.as_tensor(), &RopeTables::new(l + 1, dh, base)).is_err());
    }

    #[test]
    fn neox_rope_rotates_the_two_halves_in_value_and_gradient() {
        let (l, dh, base) = (5, 8, 10_000f32);
        let x = randn(&[2, 3, l, dh], 7);
        let t = RopeTables::neox(l, dh, base);
        let cos = Tensor::from_vec(t.cos.clone(), (l, dh / 2), &Device::Cpu).unwrap();
        let sin = Tensor::from_vec(t.sin.clone(), (l, dh / 2), &Device::Cpu).unwrap();
        same(&x, |x| rope(x, &t).unwrap(), |x| {
            let (x0, x1) = (x.narrow(3, 0, dh / 2).unwrap(), x.narrow(3, dh / 2, dh / 2).unwrap());
            let r0 = (x0.broadcast_mul(&cos).unwrap() - x1.broadcast_mul(&sin).unwrap()).unwrap();
            let r1 = (x0.broadcast_mul(&sin).unwrap() + x1.broadcast_mul(&cos).unwrap()).unwrap();
            Tensor::cat(&[r0, r1], 3).unwrap()
        });
        // position 0 is the identity; the interleaved order gives another result from position 1 on
        let y = rope(x.as_tensor(), &t).unwrap();
        let d0 = (y.narrow(2, 0, 1).unwrap() - x.as_tensor().narrow(2, 0, 1).unwrap()).unwrap().abs().unwrap().max_all().unwrap();
        assert!(d0.to_scalar::<f32>().unwrap() < 1e-6);
        let yi = rope(x.as_tensor(), &RopeTables::new(l, dh, base)).unwrap();
        let d = (y - yi).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(d > 1e-2, "{d}");
    }
}
