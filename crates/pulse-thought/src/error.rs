use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ThoughtError {
    #[error("{path}: {msg}")]
    File { path: PathBuf, msg: String },
    #[error("encoder: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error(transparent)]
    Store(#[from] pulse_rationale::RationaleError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T> = std::result::Result<T, ThoughtError>;
