//! The [`Protocol`] type (`full`, `candN`) on its own, so that [`crate::metrics`] (which metrics a
//! protocol reports) and [`crate::protocol`] (running one, ranking with [`crate::metrics::rank_of`]) both
//! depend on it and `protocol` → `metrics` is the only edge between those two modules.
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Protocol {
    /// Rank the whole catalogue. With `mask_history`, items in the user's history are removed first,
    /// so a repeat-purchase target cannot be hit (rank `None`); without it (RecBole's SASRec
    /// behaviour), nothing is removed.
    Full { mask_history: bool },
    /// Rank the target among a materialised candidate list of `n` items.
    Cand { n: usize },
}

impl Protocol {
    pub fn name(&self) -> String {
        match self {
            Protocol::Full { .. } => "full".into(),
            Protocol::Cand { n } => format!("cand{n}"),
        }
    }
}
