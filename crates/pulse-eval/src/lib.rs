//! pulse-eval — one evaluation code path for every model, so numbers are comparable.
//!
//! * [`Recommender`]: the seam every model implements (scores for a user's history).
//! * [`Protocol`]: `full` (whole catalogue, history optionally masked), `cand5` / `cand20` (the true
//!   item + 4 / 19 never-interacted items, drawn once with a seed and materialised to a file by
//!   [`CandidateSet`]).
//! * [`metrics`]: HR@K, NDCG@K, MRR from per-user ranks; [`bootstrap`]: paired bootstrap CIs.
//! * [`Hybrid`]: late fusion of recommenders, its weights tuned on the validation stage ([`hybrid::tune`]).
//! * [`ListFusion`]: late fusion over a candidate list (an SLM can be a part), tuned by [`hybrid::tune_lists`].
//! * [`Shortlist`]: two-stage ranking of the catalogue — a list scorer (an SLM) reranks a retriever's top k.
pub mod bootstrap;
pub mod candidates;
pub mod hybrid;
pub mod metrics;
pub mod protocol;
mod protocol_kind;
pub mod report;
pub mod shortlist;

pub use bootstrap::{bootstrap_mean, paired_bootstrap, Ci};
pub use candidates::CandidateSet;
pub use hybrid::{Hybrid, ListFusion, Shared, TuneReport};
pub use metrics::{metric_names, metrics_from_ranks, per_user_value};
pub use protocol::{evaluate, Protocol};
pub use report::{read_ranks_text, EvalReport, RankFile};
pub use shortlist::Shortlist;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{}: {source}", path.display())]
    Io { path: std::path::PathBuf, source: std::io::Error },
    #[error("{}:{line}: {msg}", path.display())]
    Line { path: std::path::PathBuf, line: usize, msg: String },
    #[error("{}: {msg}", path.display())]
    File { path: std::path::PathBuf, msg: String },
    #[error("model {model}: {source}")]
    Model { model: String, source: BoxError },
    #[error("{0}")]
    Invalid(String),
}

impl EvalError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        EvalError::Io { path: path.to_path_buf(), source }
    }
    pub(crate) fn line(path: &std::path::Path, line: usize, msg: impl Into<String>) -> Self {
        EvalError::Line { path: path.to_path_buf(), line, msg: msg.into() }
    }
    pub(crate) fn file(path: &std::path::Path, msg: impl Into<String>) -> Self {
        EvalError::File { path: path.to_path_buf(), msg: msg.into() }
    }
}

/// A model that scores catalogue items for a user's history (item indices, chronological).
/// Higher is better. Implementations must be deterministic for a fixed state.
pub trait Recommender {
    fn name(&self) -> &str;

    /// One row of `n_items` scores per history.
    fn score_all(&self, histories: &[&[u32]]) -> Result<Vec<Vec<f32>>, BoxError>;

    /// Scores of the given candidates only, one row per history. The default gathers from
    /// [`score_all`](Self::score_all); models that are expensive per item (an SLM) override it.
    fn score_candidates(&self, histories: &[&[u32]], candidates: &[&[u32]]) -> Result<Vec<Vec<f32>>, BoxError> {
        let all = self.score_all(histories)?;
        Ok(all.iter().zip(candidates).map(|(row, c)| c.iter().map(|&i| row[i as usize]).collect()).collect())
    }

    /// How many histories to score per call.
    fn batch_size(&self) -> usize {
        256
    }

    /// The concrete model, for callers that need more than ranking (e.g. an SLM's explanations).
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }
}

/// Writes `bytes` to `path` atomically (temp file + rename), so a crash never leaves a half-written file.
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!(
        "{}.tmp{}",
        path.extension().and_then(|e| e.to_str()).unwrap_or(""),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
