use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RationaleError {
    #[error("{path}: {msg}")]
    Store { path: PathBuf, msg: String },
    /// A line of an imported file that is not a stored record.
    #[error("{path}:{line}: {msg}")]
    Line { path: PathBuf, line: usize, msg: String },
    #[error(transparent)]
    Slm(#[from] pulse_slm::SlmError),
    #[error(transparent)]
    Data(#[from] pulse_data::DataError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T> = std::result::Result<T, RationaleError>;
