//! SASRec (Kang & McAuley, ICDM 2018) over item IDs, as in the reference implementation the PULSE and
//! A-LLMRec papers use: item embedding × √d + learned positions, `blocks` × (pre-LN causal multi-head
//! self-attention with the normalised query as residual, LN, point-wise feed-forward with residual),
//! final LN; the user representation is the last position's hidden state and an item's score is its
//! dot product with the (shared) item embedding.
//!
//! Implementation notes: sequences are left-padded to the longest sequence of the batch (not always
//! to `max_len`), with positions counted from the right so the result equals full padding; padded
//! keys are masked; dropout and initial weights come from our seeded RNG.
mod train;

pub use train::{train, TrainOptions, TrainSummary, CHECKPOINT_VERSION};

use crate::nn::{const_var, dropout, layer_norm, normal_var, softmax, xavier_var};
use crate::{BaselineError, Result};
use candle_core::{Device, Tensor, Var, D};
use pulse_data::Rng;
use pulse_eval::{BoxError, Recommender};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Loss {
    /// Binary cross-entropy with one sampled negative per position (the paper's setting).
    Bce,
    /// Softmax cross-entropy over the whole catalogue (stronger, and what RecBole uses by default).
    Ce,
    /// Sampled softmax: cross-entropy over the target and `negatives` distinct items drawn uniformly
    /// per batch (shared by its rows; a drawn item that is a row's own target is masked out of that
    /// row). With uniform draws the usual log-q correction is a constant, so this estimates the full
    /// cross-entropy at a fraction of its cost on large catalogues; with `negatives` ≥ the catalogue it
    /// *is* the full cross-entropy.
    Sampled,
}

/// The feed-forward non-linearity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// As in the SASRec paper and the reference code PULSE / A-LLMRec use.
    Relu,
    /// RecBole's default.
    Gelu,
}

/// What an item's input embedding is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ItemInput {
    /// A learned embedding per item ID (SASRec).
    #[default]
    Id,
    /// A frozen text embedding per item (e.g. all-MiniLM-L6-v2 of its title) through a learned linear
    /// map — the text-only, MoRec-like variant; items are then known by their text alone.
    Text,
    /// Both: a learned ID embedding plus the mapped text embedding (PULSE-TS).
    Both,
}

fn is_default<T: Default + PartialEq>(x: &T) -> bool {
    *x == T::default()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SasRecConfig {
    pub max_len: usize,
    pub hidden: usize,
    pub blocks: usize,
    pub heads: usize,
    pub dropout: f32,
    pub activation: Activation,
    pub loss: Loss,
    pub lr: f64,
    pub beta2: f64,
    pub weight_decay: f64,
    pub batch_size: usize,
    pub max_epochs: usize,
    /// Stop after this many validations without a better validation NDCG@10.
    pub patience: usize,
    pub eval_every: usize,
    /// Validate on a fixed sample of this many users (0 = all).
    pub valid_users: usize,
    /// Item inputs: IDs (default) or frozen item-text embeddings. (Fields at their defaults are left out
    /// of the serialised config, so existing checkpoint names stay valid.)
    #[serde(skip_serializing_if = "is_default")]
    pub items: ItemInput,
    /// PULSE-TS: weight of the contrastive term that aligns a user's state before their explained choice
    /// with the Thought-Space embedding of the rationale for that choice (0 = off).
    #[serde(skip_serializing_if = "is_default")]
    pub align_weight: f64,
    /// Temperature of that InfoNCE term (cosine similarities; in-batch negatives). 0 = 0.1.
    #[serde(skip_serializing_if = "is_default")]
    pub align_temperature: f64,
    /// `loss = "sampled"`: uniform negatives drawn per batch (0 = 1000).
    #[serde(skip_serializing_if = "is_default")]
    pub negatives: usize,
}

impl Default for SasRecConfig {
    /// The paper's architecture (max length 50, hidden 50, 2 blocks, 2 heads, dropout 0.5, Adam lr 1e-3,
    /// β₂ 0.98, batch 128) with the full cross-entropy loss, chosen by measurement (see README).
    fn default() -> Self {
        SasRecConfig {
            max_len: 50,
            hidden: 50,
            blocks: 2,
            heads: 2,
            dropout: 0.5,
            activation: Activation::Relu,
            loss: Loss::Ce,
            lr: 1e-3,
            beta2: 0.98,
            weight_decay: 0.0,
            batch_size: 128,
            max_epochs: 200,
            patience: 5,
            eval_every: 1,
            valid_users: 10_000,
            items: ItemInput::Id,
            align_weight: 0.0,
            align_temperature: 0.0,
            negatives: 0,
        }
    }
}

impl SasRecConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(BaselineError::Invalid(format!("sasrec config: {m}")));
        if self.hidden == 0 || self.heads == 0 || self.hidden % self.heads != 0 {
            return bad("hidden must be a positive multiple of heads");
        }
        if self.max_len == 0 || self.batch_size == 0 || self.blocks == 0 {
            return bad("max_len, batch_size and blocks must be positive");
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad("dropout must be in [0, 1)");
        }
        if self.eval_every == 0 || self.patience == 0 {
            return bad("eval_every and patience must be positive");
        }
        if !(self.align_weight >= 0.0 && self.align_temperature >= 0.0) {
            return bad("align_weight and align_temperature must be >= 0");
        }
        Ok(())
    }

    /// Negatives per batch for the sampled softmax.
    pub fn negatives(&self) -> usize {
        if self.negatives > 0 {
            self.negatives
        } else {
            1000
        }
    }

    pub fn align_temperature(&self) -> f64 {
        if self.align_temperature > 0.0 {
            self.align_temperature
        } else {
            0.1
        }
    }
}

/// Inputs a model needs besides its config: the frozen item-text matrix (n_items × text dim) for
/// `items = "text"`, and the dimension of the rationale embeddings for `align_weight > 0`.
#[derive(Clone, Debug, Default)]
pub struct ModelInputs {
    pub item_text: Option<Tensor>,
    pub align_dim: usize,
}

impl ModelInputs {
    /// A short fingerprint of the inputs (for checkpoint identity).
    pub fn fingerprint(&self) -> Result<String> {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |b: &[u8]| {
            for &x in b {
                h ^= x as u64;
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        };
        if let Some(t) = &self.item_text {
            eat(format!("{:?}", t.dims()).as_bytes());
            for v in t.flatten_all()?.to_vec1::<f32>()? {
                eat(&v.to_le_bytes());
            }
        }
        eat(&self.align_dim.to_le_bytes());
        Ok(format!("{h:016x}"))
    }
}

/// A SASRec model: its configuration and named parameters.
pub struct SasRec {
    pub cfg: SasRecConfig,
    pub n_items: usize,
    /// Frozen item texts (n_items + 1, text dim), row 0 (padding) zero; `items = "text"` only.
    text: Option<Tensor>,
    names: Vec<String>,
    vars: Vec<Var>,
    index: HashMap<String, usize>,
    dev: Device,
}

/// Encoded batch: hidden states (B, L, d) and the padded length L (rows are left-padded).
pub(crate) struct Encoded {
    pub h: Tensor,
    pub len: usize,
}

impl SasRec {
    /// Fresh weights: embeddings N(0, 0.02²)·… and Xavier projections, from `rng`.
    pub fn new(cfg: SasRecConfig, n_items: usize, rng: &mut Rng) -> Result<Self> {
        Self::with_inputs(cfg, n_items, &ModelInputs::default(), rng)
    }

    /// A model whose config needs [`ModelInputs`] (item texts, rationale alignment).
    pub fn with_inputs(cfg: SasRecConfig, n_items: usize, inputs: &ModelInputs, rng: &mut Rng) -> Result<Self> {
        cfg.validate()?;
        let dev = Device::Cpu;
        let d = cfg.hidden;
        let mut named: Vec<(String, Var)> = Vec::new();
        let mut text = None;
        match cfg.items {
            // Row 0 is padding (kept at zero by masking, never a prediction target).
            ItemInput::Id => named.push(("item_emb".into(), normal_var(&[n_items + 1, d], (1.0 / d as f32).sqrt(), rng, &dev)?)),
            ItemInput::Text | ItemInput::Both => {
                let t = inputs.item_text.as_ref().ok_or_else(|| BaselineError::Invalid("items = \"text\" needs the item text embeddings".into()))?;
                let (n, dt) = t.dims2()?;
                if n != n_items {
                    return Err(BaselineError::Invalid(format!("item text embeddings: {n} rows for {n_items} items")));
                }
                let t = t.to_dtype(candle_core::DType::F32)?;
                text = Some(Tensor::cat(&[&t.zeros_like()?.narrow(0, 0, 1)?, &t], 0)?.contiguous()?);
                named.push(("text_w".into(), xavier_var(dt, d, rng, &dev)?));
                named.push(("text_b".into(), const_var(&[d], 0.0, &dev)?));
                if cfg.items == ItemInput::Both {
                    named.push(("item_emb".into(), normal_var(&[n_items + 1, d], (1.0 / d as f32).sqrt(), rng, &dev)?));
                }
            }
        }
        named.push(("pos_emb".into(), normal_var(&[cfg.max_len, d], (1.0 / d as f32).sqrt(), rng, &dev)?));
        for b in 0..cfg.blocks {
            let p = |n: &str| format!("b{b}.{n}");
            named.push((p("ln1.g"), const_var(&[d], 1.0, &dev)?));
            named.push((p("ln1.b"), const_var(&[d], 0.0, &dev)?));
            for w in ["wq", "wk", "wv", "wo"] {
                named.push((p(w), xavier_var(d, d, rng, &dev)?));
                named.push((p(&w.replace('w', "b")), const_var(&[d], 0.0, &dev)?));
            }
            named.push((p("ln2.g"), const_var(&[d], 1.0, &dev)?));
            named.push((p("ln2.b"), const_var(&[d], 0.0, &dev)?));
            named.push((p("w1"), xavier_var(d, d, rng, &dev)?));
            named.push((p("c1"), const_var(&[d], 0.0, &dev)?));
            named.push((p("w2"), xavier_var(d, d, rng, &dev)?));
            named.push((p("c2"), const_var(&[d], 0.0, &dev)?));
        }
        named.push(("lnf.g".into(), const_var(&[d], 1.0, &dev)?));
        named.push(("lnf.b".into(), const_var(&[d], 0.0, &dev)?));
        if cfg.align_weight > 0.0 {
            if inputs.align_dim == 0 {
                return Err(BaselineError::Invalid("align_weight > 0 needs the rationale embedding dimension".into()));
            }
            named.push(("align_w".into(), xavier_var(d, inputs.align_dim, rng, &dev)?));
        }
        let index = named.iter().enumerate().map(|(i, (n, _))| (n.clone(), i)).collect();
        let (names, vars) = named.into_iter().unzip();
        Ok(SasRec { cfg, n_items, text, names, vars, index, dev })
    }

    /// The same trained weights over another catalogue (`item_text`: its items' embeddings by the same
    /// encoder, n × text dim): zero-shot transfer. Only a text-only model transfers — item-ID embeddings
    /// mean nothing in another catalogue.
    pub fn transfer(&self, item_text: &Tensor) -> Result<SasRec> {
        if self.cfg.items != ItemInput::Text {
            return Err(BaselineError::Invalid(format!(
                "only a text-only model (items = \"text\") transfers to another catalogue; this one has items = {:?}",
                self.cfg.items
            )));
        }
        let n = item_text.dims2()?.0;
        let align_dim = if self.cfg.align_weight > 0.0 { self.p("align_w").dims()[1] } else { 0 };
        let inputs = ModelInputs { item_text: Some(item_text.clone()), align_dim };
        let m = SasRec::with_inputs(self.cfg.clone(), n, &inputs, &mut Rng::new(0))?;
        m.set_tensors(&self.tensors(), "")?;
        Ok(m)
    }

    /// Input embeddings of the given item rows (0 = padding), (n, d).
    fn item_rows(&self, ids: &Tensor) -> Result<Tensor> {
        let text = |t: &Tensor| t.index_select(ids, 0)?.matmul(self.p("text_w"))?.broadcast_add(self.p("text_b"));
        Ok(match (&self.text, self.cfg.items) {
            (Some(t), ItemInput::Both) => (text(t)? + self.p("item_emb").index_select(ids, 0)?)?,
            (Some(t), _) => text(t)?,
            (None, _) => self.p("item_emb").index_select(ids, 0)?,
        })
    }

    pub fn vars(&self) -> &[Var] {
        &self.vars
    }
    pub fn names(&self) -> &[String] {
        &self.names
    }
    fn p(&self, name: &str) -> &Tensor {
        self.vars[self.index[name]].as_tensor()
    }

    /// Current weights by name (copies).
    pub fn tensors(&self) -> HashMap<String, Tensor> {
        self.names.iter().zip(&self.vars).map(|(n, v)| (n.clone(), v.as_tensor().detach().copy().unwrap())).collect()
    }

    /// Replaces weights from a name → tensor map (as written by [`save`](Self::save)).
    pub fn set_tensors(&self, t: &HashMap<String, Tensor>, prefix: &str) -> Result<()> {
        for (n, v) in self.names.iter().zip(&self.vars) {
            let src = t.get(&format!("{prefix}{n}")).ok_or_else(|| {
                BaselineError::Invalid(format!("missing tensor {prefix}{n}"))
            })?;
            if src.dims() != v.as_tensor().dims() {
                return Err(BaselineError::Invalid(format!(
                    "tensor {prefix}{n} has shape {:?}, expected {:?}",
                    src.dims(),
                    v.as_tensor().dims()
                )));
            }
            v.set(src)?;
        }
        Ok(())
    }

    /// Saves config + weights as one safetensors file (config in a JSON sidecar `<file>.json`).
    pub fn save(&self, path: &Path) -> Result<()> {
        let io = |e| BaselineError::Io { path: path.to_path_buf(), source: e };
        let tmp = path.with_extension("safetensors.tmp");
        candle_core::safetensors::save(&self.tensors(), &tmp)?;
        std::fs::rename(&tmp, path).map_err(io)?;
        let meta = serde_json::json!({ "config": self.cfg, "n_items": self.n_items });
        pulse_eval::write_atomic(&path.with_extension("json"), meta.to_string().as_bytes()).map_err(io)
    }

    pub fn load(path: &Path) -> Result<Self> {
        let meta_path = path.with_extension("json");
        let meta: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(&meta_path).map_err(|e| BaselineError::Io { path: meta_path.clone(), source: e })?,
        )
        .map_err(|e| BaselineError::Checkpoint { path: meta_path.clone(), msg: e.to_string() })?;
        let cfg: SasRecConfig = serde_json::from_value(meta["config"].clone())
            .map_err(|e| BaselineError::Checkpoint { path: meta_path.clone(), msg: e.to_string() })?;
        let n_items = meta["n_items"].as_u64().unwrap_or(0) as usize;
        let m = SasRec::new(cfg, n_items, &mut Rng::new(0))?;
        let t = candle_core::safetensors::load(path, &m.dev)?;
        m.set_tensors(&t, "")?;
        Ok(m)
    }

    /// Encodes a batch of item sequences (each truncated to its last `max_len` items). With `rng`,
    /// dropout is on (training).
    pub(crate) fn encode(&self, seqs: &[&[u32]], mut rng: Option<&mut Rng>) -> Result<Encoded> {
        let cfg = &self.cfg;
        let (b, d, nh) = (seqs.len(), cfg.hidden, cfg.heads);
        let dh = d / nh;
        let l = seqs.iter().map(|s| s.len().min(cfg.max_len)).max().unwrap_or(1).max(1);
        let mut ids = vec![0u32; b * l];
        let mut tm = vec![0f32; b * l];
        let mut bias = vec![-1e9f32; b * l * l];
        for (r, s) in seqs.iter().enumerate() {
            let s = &s[s.len().saturating_sub(cfg.max_len)..];
            let pad = l - s.len();
            for (k, &it) in s.iter().enumerate() {
                ids[r * l + pad + k] = it + 1;
                tm[r * l + pad + k] = 1.0;
            }
            // causal attention over real items; a padding query attends to itself only, so its row
            // stays finite (its output is masked away anyway)
            for i in 0..l {
                let row = &mut bias[(r * l + i) * l..(r * l + i + 1) * l];
                if i < pad {
                    row[i] = 0.0;
                } else {
                    row[pad..=i].fill(0.0);
                }
            }
        }
        let dev = &self.dev;
        let ids = Tensor::from_vec(ids, b * l, dev)?;
        let pos_ids = Tensor::arange((cfg.max_len - l) as u32, cfg.max_len as u32, dev)?;
        let tm = Tensor::from_vec(tm, (b, l, 1), dev)?;
        let bias = Tensor::from_vec(bias, (b, 1, l, l), dev)?;
        let mut x = (self.item_rows(&ids)?.reshape((b, l, d))? * (d as f64).sqrt())?
            .broadcast_add(&self.p("pos_emb").index_select(&pos_ids, 0)?.unsqueeze(0)?)?;
        let p = cfg.dropout;
        let mut drop = |t: Tensor| -> candle_core::Result<Tensor> {
            match rng.as_deref_mut() {
                Some(r) => dropout(&t, p, r),
                None => Ok(t),
            }
        };
        x = drop(x)?.broadcast_mul(&tm)?;
        let lin = |x: &Tensor, w: &str, bias: &str| -> candle_core::Result<Tensor> {
            x.reshape((b * l, d))?.matmul(self.p(w))?.broadcast_add(self.p(bias))?.reshape((b, l, d))
        };
        let heads = |t: Tensor| t.reshape((b, l, nh, dh))?.transpose(1, 2)?.contiguous();
        for blk in 0..cfg.blocks {
            let n = |s: &str| format!("b{blk}.{s}");
            let q_in = layer_norm(&x, self.p(&n("ln1.g")), self.p(&n("ln1.b")), 1e-8)?;
            let q = heads(lin(&q_in, &n("wq"), &n("bq"))?)?;
            let k = heads(lin(&x, &n("wk"), &n("bk"))?)?;
            let v = heads(lin(&x, &n("wv"), &n("bv"))?)?;
            let att = (q.matmul(&k.transpose(2, 3)?.contiguous()?)? * (1.0 / (dh as f64).sqrt()))?
                .broadcast_add(&bias)?;
            let att = drop(softmax(&att)?)?;
            let o = att.matmul(&v)?.transpose(1, 2)?.contiguous()?.reshape((b, l, d))?;
            x = (q_in + lin(&o, &n("wo"), &n("bo"))?)?;
            x = layer_norm(&x, self.p(&n("ln2.g")), self.p(&n("ln2.b")), 1e-8)?;
            let ff = drop(lin(&x, &n("w1"), &n("c1"))?)?;
            let ff = match cfg.activation {
                Activation::Relu => ff.relu()?,
                Activation::Gelu => ff.gelu_erf()?,
            };
            let ff = drop(lin(&ff, &n("w2"), &n("c2"))?)?;
            x = (x + ff)?.broadcast_mul(&tm)?;
        }
        let h = layer_norm(&x, self.p("lnf.g"), self.p("lnf.b"), 1e-8)?;
        Ok(Encoded { h, len: l })
    }

    /// Each item's embedding (n_items × d, row-major, without the padding row): its input embedding and,
    /// shared, its output embedding. What a serving bundle stores instead of the ID and text parts.
    pub fn item_embeddings(&self) -> Result<Vec<f32>> {
        Ok(self.item_table()?.flatten_all()?.to_vec1::<f32>()?)
    }

    /// The output item embedding table (n_items, d), without the padding row.
    pub(crate) fn item_table(&self) -> Result<Tensor> {
        let text = |t: &Tensor| t.narrow(0, 1, self.n_items)?.matmul(self.p("text_w"))?.broadcast_add(self.p("text_b"));
        Ok(match (&self.text, self.cfg.items) {
            (Some(t), ItemInput::Both) => (text(t)? + self.p("item_emb").narrow(0, 1, self.n_items)?)?,
            (Some(t), _) => text(t)?,
            (None, _) => self.p("item_emb").narrow(0, 1, self.n_items)?,
        })
    }

    /// User representations: the last position's hidden state for each history, (B, d) rows.
    pub fn user_repr(&self, histories: &[&[u32]]) -> Result<Vec<Vec<f32>>> {
        Ok(self.last_hidden(histories)?.to_vec2::<f32>()?)
    }

    /// Last hidden state per history, (B, d). Histories are encoded in length-sorted groups of 64 so
    /// short histories are not padded to the longest one of the whole batch; rows come back in input
    /// order.
    fn last_hidden(&self, histories: &[&[u32]]) -> Result<Tensor> {
        let mut order: Vec<usize> = (0..histories.len()).collect();
        order.sort_by_key(|&i| histories[i].len().min(self.cfg.max_len));
        let mut parts = Vec::new();
        for group in order.chunks(64) {
            let seqs: Vec<&[u32]> = group.iter().map(|&i| histories[i]).collect();
            let e = self.encode(&seqs, None)?;
            parts.push(e.h.narrow(1, e.len - 1, 1)?.squeeze(1)?);
        }
        let sorted = Tensor::cat(&parts, 0)?.contiguous()?;
        let mut inverse = vec![0u32; order.len()];
        for (pos, &i) in order.iter().enumerate() {
            inverse[i] = pos as u32;
        }
        let inv = Tensor::from_vec(inverse, order.len(), &self.dev)?;
        Ok(sorted.index_select(&inv, 0)?.contiguous()?)
    }

    /// Scores (B, n_items) for histories, in inference mode.
    pub fn scores(&self, histories: &[&[u32]]) -> Result<Tensor> {
        let u = self.last_hidden(histories)?;
        Ok(u.matmul(&self.item_table()?.t()?)?)
    }

    /// Training loss for a batch of sequences: each sequence predicts its own next items.
    /// `negatives` (BCE only) gives one sampled negative per target position, in the order targets
    /// are visited (row-major over the batch, left to right).
    pub fn loss(&self, seqs: &[&[u32]], rng: &mut Rng, neg: &mut dyn FnMut(usize, &mut Rng) -> u32) -> Result<Tensor> {
        self.loss_aligned(seqs, &[], rng, neg)
    }

    /// [`loss`](Self::loss) plus, when `align_weight > 0` and at least two rows of the batch have one,
    /// `align_weight` × InfoNCE between each such row's state before its last item (projected, unit
    /// length) and its rationale embedding `(row, target)`, the batch's other rationales as negatives.
    pub fn loss_aligned(
        &self,
        seqs: &[&[u32]],
        align: &[(usize, &[f32])],
        rng: &mut Rng,
        neg: &mut dyn FnMut(usize, &mut Rng) -> u32,
    ) -> Result<Tensor> {
        let inputs: Vec<&[u32]> = seqs.iter().map(|s| &s[..s.len() - 1]).collect();
        let e = self.encode(&inputs, Some(rng))?;
        let rec = self.rec_loss(seqs, &e, rng, neg)?;
        if self.cfg.align_weight <= 0.0 || align.len() < 2 {
            return Ok(rec);
        }
        let (l, d) = (e.len, self.cfg.hidden);
        let rows: Vec<u32> = align.iter().map(|&(r, _)| (r * l + l - 1) as u32).collect();
        let n = rows.len();
        let h = e.h.reshape((seqs.len() * l, d))?.index_select(&Tensor::from_vec(rows, n, &self.dev)?, 0)?;
        let z = crate::nn::unit_rows(&h.matmul(self.p("align_w"))?)?;
        let da = align[0].1.len();
        let flat: Vec<f32> = align.iter().flat_map(|&(_, t)| t.iter().copied()).collect();
        let r = crate::nn::unit_rows(&Tensor::from_vec(flat, (n, da), &self.dev)?)?;
        let logits = (z.matmul(&r.t()?)? / self.cfg.align_temperature())?;
        let diag: Vec<u32> = (0..n as u32).collect();
        let nce = crate::nn::softmax_cross_entropy(&logits, &diag)?;
        Ok((rec + (nce * self.cfg.align_weight)?)?)
    }

    fn rec_loss(&self, seqs: &[&[u32]], e: &Encoded, rng: &mut Rng, neg: &mut dyn FnMut(usize, &mut Rng) -> u32) -> Result<Tensor> {
        let (b, l, d) = (seqs.len(), e.len, self.cfg.hidden);
        let mut rows = Vec::new();
        let mut targets = Vec::new();
        let mut negs = Vec::new();
        for (r, s) in seqs.iter().enumerate() {
            let tg = &s[1..];
            let tg = &tg[tg.len().saturating_sub(self.cfg.max_len)..];
            let pad = l - tg.len();
            for (k, &t) in tg.iter().enumerate() {
                rows.push((r * l + pad + k) as u32);
                targets.push(t);
                if self.cfg.loss == Loss::Bce {
                    negs.push(neg(r, rng));
                }
            }
        }
        let n = rows.len();
        let rows = Tensor::from_vec(rows, n, &self.dev)?;
        let h = e.h.reshape((b * l, d))?.index_select(&rows, 0)?;
        match self.cfg.loss {
            Loss::Ce => {
                let logits = h.matmul(&self.item_table()?.t()?)?;
                Ok(crate::nn::softmax_cross_entropy(&logits, &targets)?)
            }
            Loss::Sampled => {
                let negs = sample_distinct(self.n_items, self.cfg.negatives(), rng);
                let k = negs.len();
                let column: HashMap<u32, usize> = negs.iter().enumerate().map(|(j, &it)| (it, j)).collect();
                // Column 0 is the row's target; a drawn negative equal to it is masked out.
                let mut mask = vec![0f32; n * k];
                for (i, t) in targets.iter().enumerate() {
                    if let Some(&j) = column.get(t) {
                        mask[i * k + j] = -1e9;
                    }
                }
                let pos_ids: Vec<u32> = targets.iter().map(|t| t + 1).collect();
                let neg_ids: Vec<u32> = negs.iter().map(|t| t + 1).collect();
                let pe = self.item_rows(&Tensor::from_vec(pos_ids, n, &self.dev)?)?;
                let ne = self.item_rows(&Tensor::from_vec(neg_ids, k, &self.dev)?)?;
                let pl = (&h * pe)?.sum_keepdim(D::Minus1)?;
                let nl = (h.matmul(&ne.t()?)? + Tensor::from_vec(mask, (n, k), &self.dev)?)?;
                let logits = Tensor::cat(&[&pl, &nl], 1)?;
                Ok(crate::nn::softmax_cross_entropy(&logits, &vec![0u32; n])?)
            }
            Loss::Bce => {
                let pos_ids: Vec<u32> = targets.iter().map(|t| t + 1).collect();
                let neg_ids: Vec<u32> = negs.iter().map(|t| t + 1).collect();
                let pe = self.item_rows(&Tensor::from_vec(pos_ids, n, &self.dev)?)?;
                let ne = self.item_rows(&Tensor::from_vec(neg_ids, n, &self.dev)?)?;
                let pl = (&h * pe)?.sum(D::Minus1)?;
                let nl = (&h * ne)?.sum(D::Minus1)?;
                let l1 = crate::nn::softplus(&pl.neg()?)?.mean_all()?;
                let l2 = crate::nn::softplus(&nl)?.mean_all()?;
                Ok((l1 + l2)?)
            }
        }
    }
}

/// `k` distinct items of `0..n` drawn uniformly (Floyd's algorithm), in draw order; all of them, in
/// order, when `k >= n`.
pub(crate) fn sample_distinct(n: usize, k: usize, rng: &mut Rng) -> Vec<u32> {
    if k >= n {
        return (0..n as u32).collect();
    }
    let mut chosen = std::collections::HashSet::with_capacity(k);
    let mut out = Vec::with_capacity(k);
    for j in (n - k)..n {
        let t = rng.below(j as u64 + 1) as u32;
        let pick = if chosen.insert(t) { t } else { chosen.insert(j as u32); j as u32 };
        out.push(pick);
    }
    out
}

impl Recommender for SasRec {
    fn name(&self) -> &str {
        "sasrec"
    }
    fn score_all(&self, histories: &[&[u32]]) -> Result<Vec<Vec<f32>>, BoxError> {
        Ok(self.scores(histories)?.to_vec2::<f32>()?)
    }
    fn score_candidates(&self, histories: &[&[u32]], candidates: &[&[u32]]) -> Result<Vec<Vec<f32>>, BoxError> {
        let u = self.last_hidden(histories)?.to_vec2::<f32>()?;
        let table = self.item_table()?;
        let mut out = Vec::with_capacity(u.len());
        for (row, c) in u.iter().zip(candidates) {
            let ids = Tensor::from_vec(c.to_vec(), c.len(), &self.dev)?;
            let e = table.index_select(&ids, 0)?.to_vec2::<f32>()?;
            out.push(e.iter().map(|v| v.iter().zip(row).map(|(a, b)| a * b).sum()).collect());
        }
        Ok(out)
    }
    fn batch_size(&self) -> usize {
        512
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_distinct_draws_distinct_items_uniformly() {
        let mut rng = Rng::new(3);
        let mut counts = [0usize; 10];
        for _ in 0..20_000 {
            let s = sample_distinct(10, 3, &mut rng);
            let set: std::collections::HashSet<u32> = s.iter().copied().collect();
            assert_eq!((s.len(), set.len()), (3, 3), "{s:?}");
            for i in s {
                counts[i as usize] += 1;
            }
        }
        // each item is drawn with probability 3/10: 6,000 expected of 20,000
        for c in counts {
            assert!((5_700..6_300).contains(&c), "{counts:?}");
        }
        assert_eq!(sample_distinct(4, 9, &mut rng), [0, 1, 2, 3]);
    }
}
