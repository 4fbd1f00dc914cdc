use std::path::PathBuf;

/// Errors of the SLM engine. Each renders as one line.
#[derive(Debug, thiserror::Error)]
pub enum SlmError {
    #[error("{path}: {msg}")]
    Model { path: PathBuf, msg: String },
    #[error("{0}: invalid sampling setting: {1}")]
    Param(&'static str, String),
    #[error("prompt of {tokens} tokens plus {max_new} new tokens exceeds the context limit {limit}")]
    TooLong { tokens: usize, max_new: usize, limit: usize },
    #[error("llama.cpp: {0}")]
    Backend(String),
    #[error("http backend: {0}")]
    Http(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T> = std::result::Result<T, SlmError>;
