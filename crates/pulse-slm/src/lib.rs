//! PULSE SLM engine: a small language model from a GGUF file — chat template, seeded batched generation,
//! log-likelihood scoring — behind the `Generator` trait every PULSE stage calls.

pub mod error;
pub mod bench;
pub mod generator;
pub mod llama;
pub mod sampling;
pub mod scripted;

pub use error::{Result, SlmError};
pub use generator::{ChatMessage, Finish, GenEvent, GenRequest, Generation, Generator, LogLik, ModelId, Prompt};
pub use llama::{file_sha256, EngineOptions, LlamaEngine, Weights};
pub use sampling::SamplingParams;

/// The default SLM, as placed by `scripts/fetch_models.sh`.
pub const DEFAULT_MODEL: &str = "models/SmolLM2-135M-Instruct.Q4_1.gguf";
