//! The shape of a Llama-family (or Gemma 3) decoder and the names of its projections: what both the
//! trainable forward ([`crate::model`]) and the LoRA adapters ([`crate::lora`]) need, kept apart from
//! either so neither imports the other's module for it.
use crate::{Result, SftError};
use serde::{Deserialize, Serialize};

/// The decoder families the trainable forward knows (the GGUF's `general.architecture`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    #[default]
    Llama,
    Gemma3,
}

impl Family {
    pub fn is_llama(&self) -> bool {
        *self == Family::Llama
    }
    /// The GGUF architecture name (metadata keys are prefixed with it; adapters carry it).
    pub fn arch(&self) -> &'static str {
        match self {
            Family::Llama => "llama",
            Family::Gemma3 => "gemma3",
        }
    }
}

/// Gemma 3's sliding-window layers use this rotary base; the global ones the file's `rope.freq_base`.
pub const GEMMA3_LOCAL_ROPE_BASE: f32 = 10_000.0;
/// Gemma 3: every sixth layer (5, 11, …) attends globally, the others within the sliding window.
pub const GEMMA3_GLOBAL_EVERY: usize = 6;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LlamaConfig {
    pub vocab: usize,
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub ffn: usize,
    pub rope_base: f32,
    pub rms_eps: f64,
    #[serde(default, skip_serializing_if = "Family::is_llama")]
    pub family: Family,
    /// Width of one attention head when it is not `hidden / heads` (Gemma 3: 256 for a hidden of 640).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_dim: Option<usize>,
    /// Gemma 3's sliding window: rows longer than it are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sliding_window: Option<usize>,
}

impl LlamaConfig {
    pub fn head_dim(&self) -> usize {
        self.head_dim.unwrap_or(self.hidden / self.heads)
    }

    /// A Llama configuration (the fields Gemma 3 adds left at their Llama values).
    #[allow(clippy::too_many_arguments)]
    pub fn llama(vocab: usize, hidden: usize, layers: usize, heads: usize, kv_heads: usize, ffn: usize, rope_base: f32, rms_eps: f64) -> Self {
        LlamaConfig { vocab, hidden, layers, heads, kv_heads, ffn, rope_base, rms_eps, family: Family::Llama, head_dim: None, sliding_window: None }
    }

    /// Whether layer `i` attends globally (always, except Gemma 3's sliding-window layers).
    pub(crate) fn global_layer(&self, i: usize) -> bool {
        self.family.is_llama() || (i + 1) % GEMMA3_GLOBAL_EVERY == 0
    }

    /// (input, output) width of a projection.
    pub fn dims(&self, p: Proj) -> (usize, usize) {
        let (h, dh) = (self.hidden, self.head_dim());
        match p {
            Proj::Q => (h, self.heads * dh),
            Proj::K | Proj::V => (h, self.kv_heads * dh),
            Proj::O => (self.heads * dh, h),
            Proj::Gate | Proj::Up => (h, self.ffn),
            Proj::Down => (self.ffn, h),
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let ok = self.heads > 0
            && self.kv_heads > 0
            && (self.head_dim.is_some() || self.hidden % self.heads == 0)
            && self.heads % self.kv_heads == 0
            && self.head_dim() % 2 == 0
            && self.layers > 0
            && self.vocab > 0;
        if ok {
            Ok(())
        } else {
            Err(SftError::Invalid(format!("unsupported model shape {self:?}")))
        }
    }
}

/// The linear projections of a block (LoRA targets).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proj {
    Q,
    K,
    V,
    O,
    Gate,
    Up,
    Down,
}

impl Proj {
    pub const ALL: [Proj; 7] = [Proj::Q, Proj::K, Proj::V, Proj::O, Proj::Gate, Proj::Up, Proj::Down];

    /// The tensor name in GGUF files (`blk.N.<name>.weight`).
    pub fn gguf(self) -> &'static str {
        match self {
            Proj::Q => "attn_q",
            Proj::K => "attn_k",
            Proj::V => "attn_v",
            Proj::O => "attn_output",
            Proj::Gate => "ffn_gate",
            Proj::Up => "ffn_up",
            Proj::Down => "ffn_down",
        }
    }
}
