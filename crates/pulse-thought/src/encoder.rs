//! Sentence encoder: a BERT-family model (all-MiniLM-L6-v2 by default) in candle, pooled as the model's
//! sentence-transformers folder says (`1_Pooling/config.json`: mean over the attention mask, as
//! all-MiniLM-L6-v2, or the [CLS] token, as the bge models; mean when the file is absent), L2-normalised.
//! Texts are encoded in length-sorted batches padded to their longest text (the shipped tokenizer.json would
//! pad to a fixed 128), so little compute goes to padding.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use sha2::{Digest, Sha256};
use tokenizers::{Tokenizer, TruncationParams};

use crate::error::{Result, ThoughtError};

/// The default encoder, as placed by `scripts/fetch_models.sh`.
pub const DEFAULT_ENCODER: &str = "models/all-MiniLM-L6-v2";

/// How token states become one sentence vector (before L2 normalisation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// Mean over the attention mask (all-MiniLM-L6-v2, and the default without `1_Pooling/config.json`).
    Mean,
    /// The first ([CLS]) token's state (bge-small-en-v1.5 and the other bge models).
    Cls,
}

impl Pooling {
    /// Read a sentence-transformers `1_Pooling/config.json`: exactly one of `pooling_mode_mean_tokens` and
    /// `pooling_mode_cls_token` is true; any other mode (max, weighted mean, last token) is refused, naming
    /// the field, rather than silently mean-pooled.
    pub fn from_config(path: &Path) -> Result<Pooling> {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).map_err(|e| file_err(path, e))?).map_err(|e| file_err(path, e))?;
        let obj = v.as_object().ok_or_else(|| file_err(path, "not a JSON object"))?;
        let on = |k: &str| obj.get(k).and_then(|x| x.as_bool()).unwrap_or(false);
        for k in ["pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken"] {
            if on(k) {
                return Err(file_err(path, format!("{k}: unsupported pooling (mean_tokens and cls_token are)")));
            }
        }
        match (on("pooling_mode_mean_tokens"), on("pooling_mode_cls_token")) {
            (true, false) => Ok(Pooling::Mean),
            (false, true) => Ok(Pooling::Cls),
            (true, true) => Err(file_err(path, "pooling_mode_mean_tokens and pooling_mode_cls_token are both true; one pooling is supported")),
            (false, false) => Err(file_err(path, "no pooling mode is true (pooling_mode_mean_tokens or pooling_mode_cls_token)")),
        }
    }
}

pub struct SentenceEncoder {
    model: BertModel,
    pooling: Pooling,
    tokenizer: Tokenizer,
    dim: usize,
    /// sha256 of model.safetensors (first 16 hex), plus `-cls` for [CLS] pooling: what cached embeddings
    /// and trained spaces are bound to.
    id: String,
    device: Device,
}

fn file_err(path: &Path, msg: impl std::fmt::Display) -> ThoughtError {
    ThoughtError::File { path: path.to_path_buf(), msg: msg.to_string() }
}

impl SentenceEncoder {
    /// Load `config.json`, `tokenizer.json` and `model.safetensors` from `dir`, and the pooling from
    /// `1_Pooling/config.json` when the folder has one (mean pooling otherwise).
    pub fn load(dir: &Path, max_len: usize) -> Result<Self> {
        let f = |name: &str| -> Result<PathBuf> {
            let p = dir.join(name);
            if p.is_file() {
                Ok(p)
            } else {
                Err(file_err(&p, "missing (run scripts/fetch_models.sh for the default encoder)"))
            }
        };
        let (cfg_p, tok_p, w_p) = (f("config.json")?, f("tokenizer.json")?, f("model.safetensors")?);
        let cfg: Config = serde_json::from_str(&std::fs::read_to_string(&cfg_p)?).map_err(|e| file_err(&cfg_p, e))?;
        let mut tokenizer = Tokenizer::from_file(&tok_p).map_err(|e| file_err(&tok_p, e))?;
        // Batches are padded here, per length-sorted chunk; the file's own padding (a fixed 128) is turned off.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: max_len, ..Default::default() }))
            .map_err(|e| file_err(&tok_p, e))?;
        let pool_p = dir.join("1_Pooling").join("config.json");
        let pooling = if pool_p.is_file() { Pooling::from_config(&pool_p)? } else { Pooling::Mean };
        let bytes = std::fs::read(&w_p)?;
        let mut id: String = Sha256::digest(&bytes).iter().take(8).map(|b| format!("{b:02x}")).collect();
        if pooling == Pooling::Cls {
            id.push_str("-cls");
        }
        let device = Device::Cpu;
        let vb = VarBuilder::from_buffered_safetensors(bytes, DType::F32, &device).map_err(|e| file_err(&w_p, e))?;
        let model = BertModel::load(vb, &cfg).map_err(|e| file_err(&w_p, e))?;
        Ok(SentenceEncoder { model, pooling, tokenizer, dim: cfg.hidden_size, id, device })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }
    pub fn id(&self) -> &str {
        &self.id
    }
    pub fn pooling(&self) -> Pooling {
        self.pooling
    }

    /// Unit-length embeddings of `texts`, in order, computed `batch` texts at a time.
    pub fn encode(&self, texts: &[&str], batch: usize) -> Result<Vec<Vec<f32>>> {
        let enc = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| ThoughtError::Tokenizer(e.to_string()))?;
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| enc[i].get_ids().len());
        let mut out = vec![Vec::new(); texts.len()];
        for chunk in order.chunks(batch.max(1)) {
            let len = chunk.iter().map(|&i| enc[i].get_ids().len()).max().unwrap_or(1).max(1);
            let (mut ids, mut mask) = (Vec::with_capacity(chunk.len() * len), Vec::with_capacity(chunk.len() * len));
            for &i in chunk {
                let e = &enc[i];
                let n = e.get_ids().len();
                ids.extend(e.get_ids().iter().copied());
                ids.extend(std::iter::repeat_n(0u32, len - n));
                mask.extend(std::iter::repeat_n(1u32, n));
                mask.extend(std::iter::repeat_n(0u32, len - n));
            }
            let b = chunk.len();
            let ids = Tensor::from_vec(ids, (b, len), &self.device)?;
            let mask = Tensor::from_vec(mask, (b, len), &self.device)?;
            let types = ids.zeros_like()?;
            let h = self.model.forward(&ids, &types, Some(&mask))?; // (b, len, dim)
            let pooled = match self.pooling {
                Pooling::Mean => {
                    let m = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
                    let summed = h.broadcast_mul(&m)?.sum(1)?;
                    let counts = m.sum(1)?.clamp(1e-9, f64::MAX)?;
                    summed.broadcast_div(&counts)?
                }
                Pooling::Cls => h.narrow(1, 0, 1)?.squeeze(1)?,
            };
            let norm = pooled.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
            let unit = pooled.broadcast_div(&norm)?.to_vec2::<f32>()?;
            for (k, &i) in chunk.iter().enumerate() {
                out[i] = unit[k].clone();
            }
        }
        Ok(out)
    }
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut d, mut na, mut nb) = (0f32, 0f32, 0f32);
    for (x, y) in a.iter().zip(b) {
        d += x * y;
        na += x * x;
        nb += y * y;
    }
    d / (na.sqrt() * nb.sqrt()).max(1e-12)
}
