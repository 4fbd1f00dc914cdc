//! pulse-recommend — what a trained pulse model becomes when it leaves the lab: a **bundle** folder
//! ([`bundle`]: manifest with sha256 of every file, catalogue, user histories, weights as safetensors,
//! item-KNN neighbour lists, hybrid weights) and an [`Engine`] that loads one read-only and answers
//! "what next, and why?" for a user or a typed history.
//!
//! Every recommendation carries the evidence that produced its score ([`explain`]): the hybrid's
//! content, item-KNN and lexical parts are sums over history items, so their per-item attribution is exact;
//! the sequence model (PULSE-TS) is attributed by leaving each history item out. The crate has no
//! candle dependency: the SASRec forward pass ([`seq`]) is plain Rust over the exported weights, checked
//! against the training implementation in pulse-pipeline's tests.
pub mod bundle;
pub mod engine;
pub mod explain;
pub mod fixture;
pub mod grounding;
pub mod necessity;
pub mod parts;
pub mod query;
pub mod search;
pub mod seq;
pub mod simd;

pub use bundle::{Bundle, Manifest, FORMAT_VERSION};
pub use engine::{Engine, Mode, Recommendation, Request};
pub use explain::{Evidence, EvidenceSource};
pub use query::{resolve, Who};

#[derive(Debug, thiserror::Error)]
pub enum RecError {
    #[error("{}: {source}", path.display())]
    Io { path: std::path::PathBuf, source: std::io::Error },
    #[error("{}: {msg}", path.display())]
    Bundle { path: std::path::PathBuf, msg: String },
    #[error("{0}")]
    Invalid(String),
    /// Ids or titles the catalogue / user table does not know (with suggestions for near misses).
    #[error("{0}")]
    Unknown(String),
}

pub type Result<T, E = RecError> = std::result::Result<T, E>;
