//! One error type for every way input data can be wrong. Every variant renders as a single line that
//! names the file (and the 1-based line where there is one), so the CLI can print it as is.
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    /// A problem on one line of one file.
    #[error("{}:{line}: {msg}", path.display())]
    Line { path: PathBuf, line: usize, msg: String },
    /// A problem with a whole file (empty, missing, wrong kind).
    #[error("{}: {msg}", path.display())]
    File { path: PathBuf, msg: String },
    /// A problem that belongs to no single file (e.g. nothing left after filtering).
    #[error("{0}")]
    Invalid(String),
}

impl DataError {
    pub fn line(path: &Path, line: usize, msg: impl Into<String>) -> Self {
        DataError::Line { path: path.to_path_buf(), line, msg: msg.into() }
    }
    pub fn file(path: &Path, msg: impl Into<String>) -> Self {
        DataError::File { path: path.to_path_buf(), msg: msg.into() }
    }
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        DataError::Io { path: path.to_path_buf(), source }
    }
}

pub type Result<T, E = DataError> = std::result::Result<T, E>;
