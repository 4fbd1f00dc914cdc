//! Differentiable building blocks. candle's fused ops (`softmax_last_dim`, `layer_norm`, …) silently
//! return no gradient, so everything trained here is composed of plain ops, and every model keeps a
//! finite-difference gradient test.
use candle_core::{DType, Device, Result, Tensor, Var, D};
use pulse_data::Rng;

/// Softmax over the last dimension from plain ops (max detached: it only stabilises).
pub fn softmax(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&max)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
}

/// log-softmax over the last dimension from plain ops.
pub fn log_softmax(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let d = x.broadcast_sub(&max)?;
    d.broadcast_sub(&d.exp()?.sum_keepdim(D::Minus1)?.log()?)
}

/// Layer norm over the last dimension from plain ops.
pub fn layer_norm(x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f64) -> Result<Tensor> {
    let mean = x.mean_keepdim(D::Minus1)?;
    let xc = x.broadcast_sub(&mean)?;
    let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
    let xh = xc.broadcast_div(&(var + eps)?.sqrt()?)?;
    xh.broadcast_mul(gamma)?.broadcast_add(beta)
}

/// softplus(x) = log(1 + e^x), stable for large |x|.
pub fn softplus(x: &Tensor) -> Result<Tensor> {
    let pos = x.relu()?;
    let tail = (x.abs()?.neg()?.exp()? + 1.0)?.log()?;
    pos + tail
}

/// Inverted dropout with a mask from our seeded RNG (candle's CPU RNG cannot be seeded).
pub fn dropout(x: &Tensor, p: f32, rng: &mut Rng) -> Result<Tensor> {
    if p <= 0.0 {
        return Ok(x.clone());
    }
    let n = x.elem_count();
    let keep = 1.0 / (1.0 - p);
    let mask: Vec<f32> = (0..n).map(|_| if rng.next_f32() < p { 0.0 } else { keep }).collect();
    x.mul(&Tensor::from_vec(mask, x.shape(), x.device())?)
}

/// A trainable tensor initialised N(0, std²) from our RNG.
pub fn normal_var(shape: &[usize], std: f32, rng: &mut Rng, dev: &Device) -> Result<Var> {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.normal() * std).collect();
    Var::from_tensor(&Tensor::from_vec(v, shape, dev)?)
}

/// Xavier/Glorot-uniform `(fan_in, fan_out)` weight.
pub fn xavier_var(fan_in: usize, fan_out: usize, rng: &mut Rng, dev: &Device) -> Result<Var> {
    let a = (6.0 / (fan_in + fan_out) as f32).sqrt();
    let v: Vec<f32> = (0..fan_in * fan_out).map(|_| (rng.next_f32() * 2.0 - 1.0) * a).collect();
    Var::from_tensor(&Tensor::from_vec(v, (fan_in, fan_out), dev)?)
}

pub fn const_var(shape: &[usize], value: f32, dev: &Device) -> Result<Var> {
    Var::from_tensor(&(Tensor::ones(shape, DType::F32, dev)? * value as f64)?)
}

/// Mean softmax cross-entropy of `logits` (N, V) against `targets` (N), as one op with a hand-written
/// backward (softmax − one-hot)/N. The composed version (log-softmax + gather) allocates about ten
/// N×V temporaries per step; with V = a whole catalogue that dominated SASRec's training time.
pub fn softmax_cross_entropy(logits: &Tensor, targets: &[u32]) -> Result<Tensor> {
    let (n, v) = logits.dims2()?;
    if n != targets.len() || targets.iter().any(|&t| t as usize >= v) {
        candle_core::bail!("softmax_cross_entropy: {} targets for {n} rows of {v} classes, or a target out of range", targets.len());
    }
    logits.contiguous()?.apply_op1(SoftmaxXent { targets: targets.to_vec() })
}

struct SoftmaxXent {
    targets: Vec<u32>,
}

fn f32_rows<'a>(s: &'a candle_core::CpuStorage, l: &candle_core::Layout) -> Result<&'a [f32]> {
    let candle_core::CpuStorage::F32(data) = s else { candle_core::bail!("softmax_cross_entropy needs f32") };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("softmax_cross_entropy needs a contiguous input"),
    }
}

/// Runs `f(first_row, rows)` over `out` split into contiguous row blocks (`width` values per row), one
/// block per available core.
fn par_rows<T: Send>(out: &mut [T], width: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    let n = out.len() / width;
    let threads = std::thread::available_parallelism().map(|t| t.get()).unwrap_or(1).min(n.max(1));
    if threads <= 1 || out.len() < 1 << 16 {
        f(0, out);
        return;
    }
    let per = n.div_ceil(threads);
    std::thread::scope(|sc| {
        for (i, chunk) in out.chunks_mut(per * width).enumerate() {
            let f = &f;
            sc.spawn(move || f(i * per, chunk));
        }
    });
}

/// Per-row log-sum-exp.
fn lse(row: &[f32]) -> f32 {
    let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    m + row.iter().map(|x| (x - m).exp()).sum::<f32>().ln()
}

impl candle_core::CustomOp1 for SoftmaxXent {
    fn name(&self) -> &'static str {
        "softmax-cross-entropy"
    }
    fn cpu_fwd(&self, s: &candle_core::CpuStorage, l: &candle_core::Layout) -> Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let data = f32_rows(s, l)?;
        let (n, v) = l.shape().dims2()?;
        let mut per_row = vec![0f64; n];
        par_rows(&mut per_row, 1, |r0, out| {
            for (k, o) in out.iter_mut().enumerate() {
                let r = r0 + k;
                let row = &data[r * v..(r + 1) * v];
                *o = (lse(row) - row[self.targets[r] as usize]) as f64;
            }
        });
        let total: f64 = per_row.iter().sum();
        Ok((candle_core::CpuStorage::F32(vec![(total / n as f64) as f32]), candle_core::Shape::from(())))
    }
    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let g = grad_res.to_dtype(DType::F32)?.to_scalar::<f32>()?;
        let (n, v) = arg.dims2()?;
        let (storage, layout) = arg.storage_and_layout();
        let candle_core::Storage::Cpu(cpu) = &*storage else { candle_core::bail!("softmax_cross_entropy: CPU only") };
        let data = f32_rows(cpu, layout)?;
        let scale = g / n as f32;
        let mut grad = vec![0f32; n * v];
        par_rows(&mut grad, v, |r0, out| {
            for (k, out) in out.chunks_mut(v).enumerate() {
                let r = r0 + k;
                let row = &data[r * v..(r + 1) * v];
                let l = lse(row);
                for (o, x) in out.iter_mut().zip(row) {
                    *o = (x - l).exp() * scale;
                }
                out[self.targets[r] as usize] -= scale;
            }
        });
        Ok(Some(Tensor::from_vec(grad, (n, v), arg.device())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Central finite differences of a scalar function of one tensor.
    fn numeric_grad(x: &[f32], shape: &[usize], f: &dyn Fn(&Tensor) -> f32) -> Vec<f32> {
        let h = 1e-2f32;
        (0..x.len())
            .map(|i| {
                let mut a = x.to_vec();
                a[i] += h;
                let mut b = x.to_vec();
                b[i] -= h;
                let fa = f(&Tensor::from_vec(a, shape, &Device::Cpu).unwrap());
                let fb = f(&Tensor::from_vec(b, shape, &Device::Cpu).unwrap());
                (fa - fb) / (2.0 * h)
            })
            .collect()
    }

    fn check(name: &str, x: Vec<f32>, shape: &[usize], f: &dyn Fn(&Tensor) -> Result<Tensor>) {
        let var = Var::from_tensor(&Tensor::from_vec(x.clone(), shape, &Device::Cpu).unwrap()).unwrap();
        let y = f(var.as_tensor()).unwrap();
        let g = y.backward().unwrap();
        let analytic = g.get(&var).unwrap_or_else(|| panic!("{name}: no gradient")).flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let numeric = numeric_grad(&x, shape, &|t| f(t).unwrap().to_scalar::<f32>().unwrap());
        for (a, n) in analytic.iter().zip(&numeric) {
            assert!((a - n).abs() < 2e-3 + 2e-2 * n.abs(), "{name}: analytic {a} vs numeric {n}");
        }
        assert!(analytic.iter().any(|a| a.abs() > 1e-4), "{name}: all-zero gradient");
    }

    fn data(n: usize, seed: u64) -> Vec<f32> {
        let mut r = Rng::new(seed);
        (0..n).map(|_| r.normal()).collect()
    }

    #[test]
    fn gradients_match_finite_differences() {
        let w = Tensor::from_vec(data(12, 9), (3, 4), &Device::Cpu).unwrap();
        check("softmax", data(12, 1), &[3, 4], &|x| softmax(x)?.mul(&w)?.sum_all());
        check("log_softmax", data(12, 2), &[3, 4], &|x| log_softmax(x)?.mul(&w)?.sum_all());
        let g = Tensor::from_vec(vec![1.5f32, 0.5, 2.0, 1.0], 4, &Device::Cpu).unwrap();
        let b = Tensor::from_vec(vec![0.1f32, -0.2, 0.3, 0.0], 4, &Device::Cpu).unwrap();
        check("layer_norm", data(12, 3), &[3, 4], &|x| layer_norm(x, &g, &b, 1e-5)?.mul(&w)?.sum_all());
        check("softplus", data(12, 4), &[3, 4], &|x| softplus(x)?.mul(&w)?.sum_all());
        check("xent", data(12, 5), &[3, 4], &|x| softmax_cross_entropy(x, &[0, 3, 2]));
    }

    #[test]
    fn fused_xent_equals_composed() {
        let x = Tensor::from_vec(data(20, 6), (4, 5), &Device::Cpu).unwrap();
        let t = [1u32, 0, 4, 2];
        let fused = softmax_cross_entropy(&x, &t).unwrap().to_scalar::<f32>().unwrap();
        let tt = Tensor::from_vec(t.to_vec(), (4, 1), &Device::Cpu).unwrap();
        let composed = log_softmax(&x).unwrap().gather(&tt, 1).unwrap().mean_all().unwrap().neg().unwrap();
        assert!((fused - composed.to_scalar::<f32>().unwrap()).abs() < 1e-5);
        assert!(softmax_cross_entropy(&x, &[0, 0, 9, 0]).is_err());
    }
}

/// Rows scaled to unit L2 norm (differentiable; plain ops only).
pub fn unit_rows(x: &Tensor) -> Result<Tensor> {
    x.broadcast_div(&x.sqr()?.sum_keepdim(candle_core::D::Minus1)?.sqrt()?.clamp(1e-12, f64::MAX)?)
}
