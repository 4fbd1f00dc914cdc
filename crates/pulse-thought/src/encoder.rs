//! Sentence encoder: a BERT-family model (all-MiniLM-L6-v2 by default) in candle, mean pooling over the
//! attention mask, L2-normalised — the sentence-transformers recipe for these models. Texts are encoded in
//! length-sorted batches padded to their longest text (the shipped tokenizer.json would pad to a fixed 128),
//! so little compute goes to padding.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use sha2::{Digest, Sha256};
use tokenizers::{Tokenizer, TruncationParams};

use crate::error::{Result, ThoughtError};

/// The default encoder, as placed by `scripts/fetch_models.sh`.
pub const DEFAULT_ENCODER: &str = "models/all-MiniLM-L6-v2";

pub struct SentenceEncoder {
    model: BertModel,
    tokenizer: Tokenizer,
    dim: usize,
    /// sha256 of model.safetensors (first 16 hex): what cached embeddings are bound to.
    id: String,
    device: Device,
}

fn file_err(path: &Path, msg: impl std::fmt::Display) -> ThoughtError {
    ThoughtError::File { path: path.to_path_buf(), msg: msg.to_string() }
}

impl SentenceEncoder {
    /// Load `config.json`, `tokenizer.json` and `model.safetensors` from `dir`.
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
        let bytes = std::fs::read(&w_p)?;
        let id: String = Sha256::digest(&bytes).iter().take(8).map(|b| format!("{b:02x}")).collect();
        let device = Device::Cpu;
        let vb = VarBuilder::from_buffered_safetensors(bytes, DType::F32, &device).map_err(|e| file_err(&w_p, e))?;
        let model = BertModel::load(vb, &cfg).map_err(|e| file_err(&w_p, e))?;
        Ok(SentenceEncoder { model, tokenizer, dim: cfg.hidden_size, id, device })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }
    pub fn id(&self) -> &str {
        &self.id
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
            let m = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
            let summed = h.broadcast_mul(&m)?.sum(1)?;
            let counts = m.sum(1)?.clamp(1e-9, f64::MAX)?;
            let mean = summed.broadcast_div(&counts)?;
            let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
            let unit = mean.broadcast_div(&norm)?.to_vec2::<f32>()?;
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
