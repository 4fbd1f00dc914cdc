//! PULSE Thought Space (method steps 3–4). This crate starts with the text encoders the space is built on.

pub mod cache;
pub mod encoder;
pub mod error;
pub mod inputs;
pub mod pca;
pub mod similar;
pub mod space;
pub mod train;

pub use cache::EmbeddingCache;
pub use encoder::{cosine, Pooling, SentenceEncoder, DEFAULT_ENCODER};
pub use error::{Result, ThoughtError};
pub use similar::top_k_cosine;
pub use space::{retrieval, Retrieval, SpaceConfig, ThoughtSpace};
