//! pulse-sft — PULSE step 5, supervised fine-tuning of the SLM with LoRA, in candle on the CPU.
//!
//! [`model::Llama`] is a trainable forward of a GGUF Llama-family model (weights dequantised to f32 and
//! frozen); [`lora::Lora`] holds the only trainable tensors. The loss covers answer tokens only. The
//! model's shape ([`config::LlamaConfig`], [`config::Proj`]) lives in [`config`], which both use.
pub mod config;
pub mod data;
pub mod lora;
pub mod model;
pub mod ops;
pub mod rank;
pub mod train;

pub use lora::{Lora, LoraConfig};
pub use model::{Example, Family, Llama, LlamaConfig, Proj};
pub use train::{train, TrainConfig, TrainOptions, TrainSummary};

#[derive(Debug, thiserror::Error)]
pub enum SftError {
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("{}: {source}", path.display())]
    Io { path: std::path::PathBuf, source: std::io::Error },
    #[error("{}: {msg}", path.display())]
    Gguf { path: std::path::PathBuf, msg: String },
    #[error("{}: {msg}", path.display())]
    Adapter { path: std::path::PathBuf, msg: String },
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = SftError> = std::result::Result<T, E>;
