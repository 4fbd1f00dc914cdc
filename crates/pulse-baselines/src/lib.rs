//! pulse-baselines — the reference recommenders every PULSE number is compared with:
//! [`Pop`] (training-set popularity), [`ItemKnn`] (item co-occurrence), [`Content`] (item-text similarity,
//! nothing trained), [`Lexical`] (TF-IDF title similarity, nothing trained) and [`sasrec::SasRec`] (ID-based self-attentive sequential
//! recommendation, Kang & McAuley 2018) trained in candle with checkpoint/resume.
pub mod adam;
pub mod content;
pub mod itemknn;
pub mod lexical;
pub mod nn;
pub mod pop;
pub mod sasrec;

pub use content::Content;
pub use itemknn::ItemKnn;
pub use lexical::Lexical;
pub use pop::Pop;
pub use sasrec::{Activation, ItemInput, Loss, ModelInputs, SasRec, SasRecConfig, TrainOptions, TrainSummary};

#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("{}: {source}", path.display())]
    Io { path: std::path::PathBuf, source: std::io::Error },
    #[error("{}: {msg}", path.display())]
    Checkpoint { path: std::path::PathBuf, msg: String },
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = BaselineError> = std::result::Result<T, E>;
