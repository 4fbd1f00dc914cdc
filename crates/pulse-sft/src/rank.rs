//! The PULSE ranker: the (tuned) SLM scores each candidate title by its exact log-likelihood after the
//! test prompt — last `history` titles, the candidates, and the assistant turn opened with "The
//! recommendation is " (no rationale: at test time the model has none to read). Deterministic, and a
//! [`Recommender`] for the candidate protocols (cand5 / cand20); the full catalogue is out of reach of an
//! SLM on a CPU and is refused.
//!
//! Scores are appended to a JSON-lines cache keyed by the model (adapter included), the prompt settings,
//! the history and the candidates, so a long evaluation killed half-way resumes where it stopped.
use crate::data::{title, user_turn_titles};
use crate::{Result, SftError};
use pulse_data::Dataset;
use pulse_eval::{BoxError, Recommender};
use pulse_slm::{ChatMessage, Generator, LlamaEngine, Prompt};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Bump when the test prompt changes (part of every cached score's key).
pub const RANK_PROMPT_VERSION: &str = "rank-v1";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RankConfig {
    /// Most recent history titles shown (the method's test prompt shows 3).
    pub history: usize,
    pub title_words: usize,
}

impl Default for RankConfig {
    fn default() -> Self {
        RankConfig { history: 3, title_words: 10 }
    }
}

pub struct SlmRanker {
    name: String,
    engine: Mutex<LlamaEngine>,
    /// Item index → title as prompts show it.
    titles: Vec<String>,
    cfg: RankConfig,
    key: String,
    cache: Mutex<(HashMap<String, Vec<f32>>, Option<PathBuf>)>,
}

#[derive(Serialize, Deserialize)]
struct CacheLine {
    key: String,
    scores: Vec<f32>,
}

impl SlmRanker {
    /// `cache`: the JSON-lines score cache (created if missing; lines of other models / settings are
    /// kept but unused).
    pub fn new(name: &str, engine: LlamaEngine, ds: &Dataset, cfg: RankConfig, cache: Option<&Path>) -> Result<Self> {
        let titles = (0..ds.items.len() as u32).map(|i| title(ds, i, cfg.title_words)).collect();
        let key = format!("{}|{RANK_PROMPT_VERSION}|{}|{}", engine.model().key(), cfg.history, cfg.title_words);
        let mut map = HashMap::new();
        if let Some(p) = cache.filter(|p| p.is_file()) {
            let text = std::fs::read_to_string(p).map_err(|e| SftError::Io { path: p.to_path_buf(), source: e })?;
            // a line cut by a kill is skipped (it is simply scored again)
            for line in text.lines() {
                if let Ok(l) = serde_json::from_str::<CacheLine>(line) {
                    map.insert(l.key, l.scores);
                }
            }
        }
        Ok(SlmRanker { name: name.to_string(), engine: Mutex::new(engine), titles, cfg, key, cache: Mutex::new((map, cache.map(Path::to_path_buf))) })
    }

    /// The test prompt for a history and a candidate list.
    pub fn prompt(&self, history: &[u32], candidates: &[u32]) -> Prompt {
        let h = &history[history.len().saturating_sub(self.cfg.history)..];
        Prompt::Chat(vec![
            ChatMessage::user(user_turn_from(&self.titles, h, candidates)),
            ChatMessage::assistant("The recommendation is "),
        ])
    }

    fn row_key(&self, history: &[u32], candidates: &[u32]) -> String {
        let h = &history[history.len().saturating_sub(self.cfg.history)..];
        format!("{}|{:?}|{:?}", self.key, h, candidates)
    }

    /// Log-likelihood (sum over tokens) of each candidate's title after the test prompt.
    pub fn score_row(&self, history: &[u32], candidates: &[u32]) -> Result<Vec<f32>> {
        let k = self.row_key(history, candidates);
        if let Some(s) = self.cache.lock().unwrap_or_else(|e| e.into_inner()).0.get(&k) {
            return Ok(s.clone());
        }
        let conts: Vec<String> = candidates.iter().map(|&c| self.titles[c as usize].clone()).collect();
        let ll = {
            let mut e = self.engine.lock().unwrap_or_else(|e| e.into_inner());
            e.score(&self.prompt(history, candidates), &conts).map_err(|e| SftError::Invalid(e.to_string()))?
        };
        let scores: Vec<f32> = ll.iter().map(|l| l.sum as f32).collect();
        let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = &c.1 {
            let line = serde_json::to_string(&CacheLine { key: k.clone(), scores: scores.clone() }).expect("serialisable");
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| SftError::Io { path: p.clone(), source: e })?;
            writeln!(f, "{line}").map_err(|e| SftError::Io { path: p.clone(), source: e })?;
        }
        c.0.insert(k, scores.clone());
        Ok(scores)
    }

    /// Rows scored so far (cache included).
    pub fn cached(&self) -> usize {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).0.len()
    }
}

fn user_turn_from(titles: &[String], history: &[u32], candidates: &[u32]) -> String {
    let t = |ids: &[u32]| ids.iter().map(|&i| titles[i as usize].clone()).collect::<Vec<_>>();
    user_turn_titles(&t(history), &t(candidates))
}

impl Recommender for SlmRanker {
    fn name(&self) -> &str {
        &self.name
    }
    fn score_all(&self, _: &[&[u32]]) -> std::result::Result<Vec<Vec<f32>>, BoxError> {
        Err("the SLM ranker scores candidate lists (cand5 / cand20), not the full catalogue".into())
    }
    fn score_candidates(&self, histories: &[&[u32]], candidates: &[&[u32]]) -> std::result::Result<Vec<Vec<f32>>, BoxError> {
        histories.iter().zip(candidates).map(|(h, c)| self.score_row(h, c).map_err(|e| e.into())).collect()
    }
    fn batch_size(&self) -> usize {
        4
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_test_prompt_matches_the_training_user_turn() {
        let titles: Vec<String> = ["A b", "C", "D e f", "G"].iter().map(|s| s.to_string()).collect();
        assert_eq!(super::user_turn_from(&titles, &[0, 1], &[2, 3]), "interacted items: A b; C\ncandidate items: D e f; G");
    }
}
