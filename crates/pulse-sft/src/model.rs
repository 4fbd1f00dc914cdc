//! A trainable forward of a Llama-family decoder (SmolLM2 is one) or of Gemma 3 (270M): the GGUF weights
//! dequantised to f32 and frozen, LoRA adapters (see [`crate::lora`]) as the only variables.
//!
//! Gemma 3 differs from Llama as llama.cpp computes it: embeddings scaled by √hidden; RMSNorm of each
//! query and key head before the rotation, which pairs `(x[i], x[i + dh/2])` (NeoX order); RMSNorm of the
//! attention and feed-forward outputs before each residual add; a tanh-GELU gate; a head width of its own
//! (`key_length`); five sliding-window layers (rotary base 10,000) to each global one (the file's base).
//! The GGUF's norm gains already hold Gemma's `1 + w`. Rows longer than the sliding window are refused
//! rather than masked (the SFT prompts are far shorter).
//!
//! candle's fused `rms_norm`, `rope_i` and `softmax_last_dim` return no gradient, so RMSNorm, the
//! interleaved rotary embedding (GGUF's Llama convention: pairs `(x[2i], x[2i+1])`) and the causal
//! attention softmax are fused ops of our own with hand-written backward passes ([`crate::ops`], each
//! checked against its plain-op composition), and a finite-difference test checks every adapter's
//! gradient through the whole model.
//!
//! Batches are right-padded: with a causal mask, padding after a row's last token cannot change any of
//! its real positions, so no padding mask is needed.
pub use crate::config::{Family, LlamaConfig, Proj, GEMMA3_GLOBAL_EVERY, GEMMA3_LOCAL_ROPE_BASE};
use crate::lora::Lora;
use crate::{Result, SftError};
use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use crate::ops::{causal_softmax, rms_norm, rope, RopeTables};
use pulse_baselines::nn::{dropout, log_softmax, softmax_cross_entropy};
use pulse_data::Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

struct Block {
    attn_norm: Tensor,
    ffn_norm: Tensor,
    /// Gemma 3 only: per-head query / key norms, and the norms of the attention and feed-forward outputs.
    gemma: Option<GemmaNorms>,
    /// Projection weights as (input, output), contiguous.
    w: HashMap<Proj, Tensor>,
}

struct GemmaNorms {
    q: Tensor,
    k: Tensor,
    post_attn: Tensor,
    post_ffn: Tensor,
}

/// A frozen, f32 Llama-family (or Gemma 3) model.
pub struct Llama {
    pub cfg: LlamaConfig,
    embed: Tensor,
    blocks: Vec<Block>,
    norm: Tensor,
    /// Output projection (hidden, vocab): the tied embedding's transpose when the file has no `output.weight`.
    head: Tensor,
    dev: Device,
}

/// One training / scoring sequence: `tokens[answer_start..]` is the answer (the only part with a loss).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Example {
    pub tokens: Vec<u32>,
    pub answer_start: usize,
}

impl Example {
    pub fn answer_tokens(&self) -> usize {
        self.tokens.len() - self.answer_start
    }
}

impl Llama {
    /// Reads a GGUF file of architecture `llama` or `gemma3` and dequantises every weight to f32.
    pub fn load_gguf(path: &Path) -> Result<Self> {
        let bad = |msg: String| SftError::Gguf { path: path.to_path_buf(), msg };
        let mut f = std::fs::File::open(path).map_err(|e| SftError::Io { path: path.to_path_buf(), source: e })?;
        let ct = gguf_file::Content::read(&mut f).map_err(|e| bad(e.to_string()))?;
        let md = |k: &str| ct.metadata.get(k).ok_or_else(|| bad(format!("metadata {k} missing")));
        let arch = md("general.architecture")?.to_string().map_err(|e| bad(e.to_string()))?.clone();
        let family = match arch.as_str() {
            "llama" => Family::Llama,
            "gemma3" => Family::Gemma3,
            _ => return Err(bad(format!("architecture {arch:?} is not supported (llama or gemma3)"))),
        };
        let key = |k: &str| format!("{arch}.{k}");
        let u = |k: &str| -> Result<usize> { Ok(md(k)?.to_u32().map_err(|e| bad(format!("{k}: {e}")))? as usize) };
        let dev = Device::Cpu;
        let mut t = |name: &str| -> Result<Tensor> {
            let q = ct.tensor(&mut f, name, &dev).map_err(|e| bad(format!("{name}: {e}")))?;
            Ok(q.dequantize(&dev)?)
        };
        let embed = t("token_embd.weight")?;
        let (vocab, hidden) = embed.dims2()?;
        let gemma = family == Family::Gemma3;
        let cfg = LlamaConfig {
            vocab,
            hidden,
            layers: u(&key("block_count"))?,
            heads: u(&key("attention.head_count"))?,
            kv_heads: u(&key("attention.head_count_kv"))?,
            ffn: u(&key("feed_forward_length"))?,
            rope_base: ct.metadata.get(&key("rope.freq_base")).and_then(|v| v.to_f32().ok()).unwrap_or(10_000.0),
            rms_eps: md(&key("attention.layer_norm_rms_epsilon"))?.to_f32().map_err(|e| bad(e.to_string()))? as f64,
            family,
            head_dim: if gemma { Some(u(&key("attention.key_length"))?) } else { None },
            sliding_window: if gemma { Some(u(&key("attention.sliding_window"))?) } else { None },
        };
        if gemma && ct.metadata.contains_key(&key("rope.scaling.type")) {
            return Err(bad("gemma3 with rope scaling is not supported".into()));
        }
        cfg.validate()?;
        let mut blocks = Vec::with_capacity(cfg.layers);
        for i in 0..cfg.layers {
            let mut w = HashMap::new();
            for p in Proj::ALL {
                let m = t(&format!("blk.{i}.{}.weight", p.gguf()))?;
                let (o, inp) = m.dims2()?;
                if (inp, o) != cfg.dims(p) {
                    return Err(bad(format!("blk.{i}.{}: shape ({o}, {inp}), expected {:?} transposed", p.gguf(), cfg.dims(p))));
                }
                w.insert(p, m.t()?.contiguous()?);
            }
            let gemma = match gemma {
                false => None,
                true => Some(GemmaNorms {
                    q: t(&format!("blk.{i}.attn_q_norm.weight"))?,
                    k: t(&format!("blk.{i}.attn_k_norm.weight"))?,
                    post_attn: t(&format!("blk.{i}.post_attention_norm.weight"))?,
                    post_ffn: t(&format!("blk.{i}.post_ffw_norm.weight"))?,
                }),
            };
            blocks.push(Block { attn_norm: t(&format!("blk.{i}.attn_norm.weight"))?, ffn_norm: t(&format!("blk.{i}.ffn_norm.weight"))?, gemma, w });
        }
        let norm = t("output_norm.weight")?;
        let head = match ct.tensor_infos.contains_key("output.weight") {
            true => t("output.weight")?.t()?.contiguous()?,
            false => embed.t()?.contiguous()?,
        };
        Ok(Llama { cfg, embed, blocks, norm, head, dev })
    }

    /// Random weights of the given shape (tests): N(0, 0.02²) projections, norms near 1, tied head.
    pub fn random(cfg: LlamaConfig, rng: &mut Rng) -> Result<Self> {
        cfg.validate()?;
        let dev = Device::Cpu;
        let mut normal = |shape: (usize, usize), std: f32| -> Result<Tensor> {
            let v: Vec<f32> = (0..shape.0 * shape.1).map(|_| rng.normal() * std).collect();
            Ok(Tensor::from_vec(v, shape, &dev)?)
        };
        let embed = normal((cfg.vocab, cfg.hidden), 0.5)?;
        let mut blocks = Vec::new();
        for _ in 0..cfg.layers {
            let mut w = HashMap::new();
            for p in Proj::ALL {
                w.insert(p, normal(cfg.dims(p), 0.2)?);
            }
            let mut gain = |n: usize| -> Result<Tensor> { Ok((normal((1, n), 0.1)? + 1.0)?.squeeze(0)?) };
            let (attn_norm, ffn_norm) = (gain(cfg.hidden)?, gain(cfg.hidden)?);
            let gemma = match cfg.family {
                Family::Llama => None,
                Family::Gemma3 => Some(GemmaNorms { q: gain(cfg.head_dim())?, k: gain(cfg.head_dim())?, post_attn: gain(cfg.hidden)?, post_ffn: gain(cfg.hidden)? }),
            };
            blocks.push(Block { attn_norm, ffn_norm, gemma, w });
        }
        let norm = (normal((1, cfg.hidden), 0.1)? + 1.0)?.squeeze(0)?;
        let head = embed.t()?.contiguous()?;
        Ok(Llama { cfg, embed, blocks, norm, head, dev })
    }

    /// Final hidden states (B, L, H) of right-padded rows. With `rng`, LoRA dropout is on (training).
    pub fn hidden(&self, rows: &[&[u32]], lora: Option<&Lora>, mut rng: Option<&mut Rng>) -> Result<Tensor> {
        let c = &self.cfg;
        let (b, h, nh, nkv, dh) = (rows.len(), c.hidden, c.heads, c.kv_heads, c.head_dim());
        let l = rows.iter().map(|r| r.len()).max().unwrap_or(0);
        if b == 0 || l == 0 {
            return Err(SftError::Invalid("empty batch".into()));
        }
        let mut ids = vec![0u32; b * l];
        for (r, row) in rows.iter().enumerate() {
            if let Some(&t) = row.iter().find(|&&t| t as usize >= c.vocab) {
                return Err(SftError::Invalid(format!("token {t} outside the vocabulary ({})", c.vocab)));
            }
            ids[r * l..r * l + row.len()].copy_from_slice(row);
        }
        if let Some(w) = c.sliding_window.filter(|&w| l > w) {
            return Err(SftError::Invalid(format!("rows of {l} tokens exceed the model's sliding window of {w}")));
        }
        let dev = &self.dev;
        let mut x = self.embed.index_select(&Tensor::from_vec(ids, b * l, dev)?, 0)?; // (b*l, h)
        let (rot, rot_local) = match c.family {
            Family::Llama => (RopeTables::new(l, dh, c.rope_base), None),
            Family::Gemma3 => {
                x = (x * (h as f64).sqrt())?;
                (RopeTables::neox(l, dh, c.rope_base), Some(RopeTables::neox(l, dh, GEMMA3_LOCAL_ROPE_BASE)))
            }
        };
        let scale = 1.0 / (dh as f64).sqrt();
        // Gemma's per-head norms: over each head's dh values
        let head_norm = |t: Tensor, n: usize, g: Option<&Tensor>| -> Result<Tensor> {
            Ok(match g {
                None => t,
                Some(g) => rms_norm(&t.reshape((b * l * n, dh))?, g, c.rms_eps)?.reshape((b * l, n * dh))?,
            })
        };
        let out_norm = |t: Tensor, g: Option<&Tensor>| -> Result<Tensor> {
            Ok(match g {
                None => t,
                Some(g) => rms_norm(&t, g, c.rms_eps)?,
            })
        };
        for (i, blk) in self.blocks.iter().enumerate() {
            let rot = match (&rot_local, c.global_layer(i)) {
                (Some(local), false) => local,
                _ => &rot,
            };
            let gn = blk.gemma.as_ref();
            let xn = rms_norm(&x, &blk.attn_norm, c.rms_eps)?;
            let mut proj = |p: Proj, x: &Tensor| self.project(i, p, x, lora, rng.as_deref_mut());
            let q = head_norm(proj(Proj::Q, &xn)?, nh, gn.map(|g| &g.q))?;
            let k = head_norm(proj(Proj::K, &xn)?, nkv, gn.map(|g| &g.k))?;
            let q = rope(&q.reshape((b, l, nh, dh))?.transpose(1, 2)?, rot)?;
            let k = rope(&k.reshape((b, l, nkv, dh))?.transpose(1, 2)?, rot)?;
            let v = proj(Proj::V, &xn)?.reshape((b, l, nkv, dh))?.transpose(1, 2)?;
            let (k, v) = (repeat_kv(&k, nh / nkv)?, repeat_kv(&v, nh / nkv)?);
            let att = causal_softmax(&q.matmul(&k.t()?.contiguous()?)?, scale)?;
            let o = att.matmul(&v.contiguous()?)?.transpose(1, 2)?.contiguous()?.reshape((b * l, nh * dh))?;
            x = (x + out_norm(proj(Proj::O, &o)?, gn.map(|g| &g.post_attn))?)?;
            let xn = rms_norm(&x, &blk.ffn_norm, c.rms_eps)?;
            let gate = proj(Proj::Gate, &xn)?;
            let gate = if gn.is_some() { gate.gelu()? } else { gate.silu()? };
            let ff = (gate * proj(Proj::Up, &xn)?)?;
            x = (x + out_norm(proj(Proj::Down, &ff)?, gn.map(|g| &g.post_ffn))?)?;
        }
        Ok(rms_norm(&x, &self.norm, c.rms_eps)?.reshape((b, l, h))?)
    }

    /// `x · W` (+ the adapter's `scale · dropout(x) · A · B` where it has one), `x` as (rows, in).
    fn project(&self, layer: usize, p: Proj, x: &Tensor, lora: Option<&Lora>, rng: Option<&mut Rng>) -> Result<Tensor> {
        let base = frozen_matmul(x, &self.blocks[layer].w[&p])?;
        match lora.and_then(|a| a.pair(layer, p).map(|ab| (a, ab))) {
            None => Ok(base),
            Some((a, (wa, wb))) => {
                let xd = match rng {
                    Some(r) => dropout(x, a.cfg.dropout, r)?,
                    None => x.clone(),
                };
                Ok((base + (xd.matmul(wa)?.matmul(wb)? * a.scale())?)?)
            }
        }
    }

    /// Positions whose next token is an answer token, and those tokens, for rows padded to `l`.
    fn answer_positions(batch: &[&Example], l: usize) -> Result<(Vec<u32>, Vec<u32>)> {
        let (mut pos, mut tgt) = (Vec::new(), Vec::new());
        for (r, ex) in batch.iter().enumerate() {
            if ex.answer_start == 0 || ex.answer_start >= ex.tokens.len() {
                return Err(SftError::Invalid(format!(
                    "example {r}: answer starts at {} of {} tokens (needs a prompt and an answer)",
                    ex.answer_start,
                    ex.tokens.len()
                )));
            }
            for t in ex.answer_start..ex.tokens.len() {
                pos.push((r * l + t - 1) as u32);
                tgt.push(ex.tokens[t]);
            }
        }
        Ok((pos, tgt))
    }

    /// Summed cross-entropy of the answer tokens (a scalar) and how many there are: the loss of
    /// supervised fine-tuning, prompt tokens excluded. The output projection only runs on the positions
    /// that predict an answer token.
    pub fn answer_loss(&self, batch: &[&Example], lora: Option<&Lora>, rng: Option<&mut Rng>) -> Result<(Tensor, usize)> {
        let (sel, tgt) = self.answer_states(batch, lora, rng)?;
        let logits = frozen_matmul(&sel, &self.head)?;
        Ok(((softmax_cross_entropy(&logits, &tgt)? * tgt.len() as f64)?, tgt.len()))
    }

    /// Final hidden states of the positions that predict an answer token (n, H), and those tokens.
    fn answer_states(&self, batch: &[&Example], lora: Option<&Lora>, rng: Option<&mut Rng>) -> Result<(Tensor, Vec<u32>)> {
        let rows: Vec<&[u32]> = batch.iter().map(|e| e.tokens.as_slice()).collect();
        let hs = self.hidden(&rows, lora, rng)?;
        let (b, l, h) = hs.dims3()?;
        let (pos, tgt) = Self::answer_positions(batch, l)?;
        let n = pos.len();
        Ok((hs.reshape((b * l, h))?.index_select(&Tensor::from_vec(pos, n, &self.dev)?, 0)?, tgt))
    }

    /// Log-probability of every answer token of each example (inference: no dropout).
    pub fn answer_logprobs(&self, batch: &[&Example], lora: Option<&Lora>) -> Result<Vec<Vec<f32>>> {
        let (sel, tgt) = self.answer_states(batch, lora, None)?;
        let lp = log_softmax(&sel.matmul(&self.head)?)?.to_vec2::<f32>()?;
        let mut out = Vec::with_capacity(batch.len());
        let mut k = 0;
        for ex in batch {
            out.push((0..ex.answer_tokens()).map(|j| lp[k + j][tgt[k + j] as usize]).collect());
            k += ex.answer_tokens();
        }
        Ok(out)
    }
}

/// `x · w` for a frozen `w`, with a backward that only computes `x`'s gradient. (candle's matmul backward
/// always computes both operands' gradients: for frozen weights that is a third of the training FLOPs
/// and a weight-sized allocation per projection per step, all thrown away.)
fn frozen_matmul(x: &Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
    let y = x.detach().matmul(w)?;
    x.apply_op2(&y, GradToInput { w: w.clone() })
}

/// Passes its second argument (the product computed without a graph) through; the backward sends
/// `grad · wᵀ` to the first (the input) and nothing to the second.
struct GradToInput {
    w: Tensor,
}

impl candle_core::CustomOp2 for GradToInput {
    fn name(&self) -> &'static str {
        "frozen-matmul"
    }

    fn cpu_fwd(
        &self,
        _: &candle_core::CpuStorage,
        _: &candle_core::Layout,
        s: &candle_core::CpuStorage,
        l: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        Ok((candle_core::CpuStorage::F32(crate::ops::f32_slice(s, l, self.name())?.to_vec()), l.shape().clone()))
    }

    fn bwd(&self, _: &Tensor, _: &Tensor, _: &Tensor, grad: &Tensor) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        Ok((Some(grad.matmul(&self.w.t()?)?), None))
    }
}

/// Grouped-query attention: kv head `j` serves query heads `j·rep .. (j+1)·rep`.
fn repeat_kv(x: &Tensor, rep: usize) -> candle_core::Result<Tensor> {
    if rep == 1 {
        return Ok(x.clone());
    }
    let (b, n, l, dh) = x.dims4()?;
    x.unsqueeze(2)?.broadcast_as((b, n, rep, l, dh))?.contiguous()?.reshape((b, n * rep, l, dh))
}
