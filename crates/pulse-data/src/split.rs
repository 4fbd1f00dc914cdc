//! Chronological leave-one-out: the last event is the test target, the second-to-last the validation
//! target, the rest training. Users with fewer than 3 events are dropped and counted.
use crate::dataset::Dataset;
use serde::Serialize;
use sha2::{Digest, Sha256};

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SplitUser {
    /// Index into `Dataset::users`.
    pub user: u32,
    pub train: Vec<u32>,
    pub valid: u32,
    pub test: u32,
}

impl SplitUser {
    /// History seen when predicting the validation target.
    pub fn valid_history(&self) -> &[u32] {
        &self.train
    }
    /// The history and target for a stage.
    pub fn query(&self, stage: Stage) -> (Vec<u32>, u32) {
        match stage {
            Stage::Valid => (self.train.clone(), self.valid),
            Stage::Test => (self.test_history(), self.test),
        }
    }
    /// History seen when predicting the test target (train + validation item).
    pub fn test_history(&self) -> Vec<u32> {
        let mut h = self.train.clone();
        h.push(self.valid);
        h
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Split {
    pub n_items: usize,
    pub users: Vec<SplitUser>,
    pub dropped_short: usize,
    /// sha256 of the split's content (item ids, user ids, sequences): candidate files and checkpoints
    /// record it so they are never applied to another split.
    pub fingerprint: String,
}

/// Which stage's target a history is built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Valid,
    Test,
}

impl Split {
    pub fn leave_one_out(ds: &Dataset) -> Split {
        let mut users = Vec::new();
        let mut dropped = 0;
        let mut h = Sha256::new();
        h.update(b"pulse-split-v1\n");
        for it in &ds.items {
            h.update(it.id.as_bytes());
            h.update(b"\t");
        }
        for (ui, u) in ds.users.iter().enumerate() {
            let seq: Vec<u32> = u.events.iter().map(|e| e.item).collect();
            if seq.len() < 3 {
                dropped += 1;
                continue;
            }
            h.update(u.id.as_bytes());
            h.update(b":");
            for i in &seq {
                h.update(i.to_le_bytes());
            }
            h.update(b"\n");
            let n = seq.len();
            users.push(SplitUser { user: ui as u32, train: seq[..n - 2].to_vec(), valid: seq[n - 2], test: seq[n - 1] });
        }
        let fp = h.finalize();
        Split {
            n_items: ds.items.len(),
            users,
            dropped_short: dropped,
            fingerprint: fp.iter().take(8).map(|b| format!("{b:02x}")).collect(),
        }
    }

    /// Histories and targets for a stage, in user order.
    pub fn queries(&self, stage: Stage) -> Vec<(Vec<u32>, u32)> {
        self.users.iter().map(|u| u.query(stage)).collect()
    }
}
