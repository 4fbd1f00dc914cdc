//! The PULSE ranker: the (tuned) SLM scores each candidate title by its exact log-likelihood after the
//! test prompt — last `history` titles, the candidates, and the assistant turn opened with "The
//! recommendation is " (no rationale: at test time the model has none to read). Deterministic, and a
//! [`Recommender`] for the candidate protocols (cand5 / cand20); the full catalogue is out of reach of an
//! SLM on a CPU and is refused.
//!
//! Scoring ([`Scoring`]): `sum` is the title's log-likelihood; `pmi` subtracts the same title's
//! log-likelihood after a prompt with no history (the same candidate list), i.e. how much the history
//! raises the title — it cancels what the model thinks of a title regardless of the user (its length, its
//! words, its place in the list), a calibration known as domain-conditional PMI.
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
pub const RANK_PROMPT_VERSION: &str = "rank-v2";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RankConfig {
    /// Most recent history titles shown (the method's test prompt shows 3).
    pub history: usize,
    pub title_words: usize,
    /// Not written when `sum` (configs and results from before this field read the same).
    #[serde(skip_serializing_if = "Scoring::is_sum")]
    pub score: Scoring,
}

impl Default for RankConfig {
    fn default() -> Self {
        RankConfig { history: 3, title_words: 10, score: Scoring::Sum }
    }
}

/// How a candidate's score is made from the model's log-likelihoods.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scoring {
    /// log p(title | test prompt)
    #[default]
    Sum,
    /// log p(title | test prompt) − log p(title | the same prompt with no history)
    Pmi,
}

impl Scoring {
    pub fn is_sum(&self) -> bool {
        *self == Scoring::Sum
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

    /// The test prompt for a history and a candidate list. Candidate files put the true item first, so
    /// the prompt shows the list in an order shuffled by a seed derived from the list itself (the same
    /// list always reads the same; a language model must not learn "the first one").
    pub fn prompt(&self, history: &[u32], candidates: &[u32]) -> Prompt {
        self.prompt_with(history, candidates, "The recommendation is ")
    }

    fn prompt_with(&self, history: &[u32], candidates: &[u32], opening: &str) -> Prompt {
        let h = &history[history.len().saturating_sub(self.cfg.history)..];
        Prompt::Chat(vec![
            ChatMessage::user(user_turn_from(&self.titles, h, &shown_order(candidates))),
            ChatMessage::assistant(opening),
        ])
    }

    fn row_key(&self, history: &[u32], candidates: &[u32]) -> String {
        let h = &history[history.len().saturating_sub(self.cfg.history)..];
        format!("{}|{:?}|{:?}", self.key, h, candidates)
    }

    /// Each candidate's score (see [`Scoring`]).
    pub fn score_row(&self, history: &[u32], candidates: &[u32]) -> Result<Vec<f32>> {
        let cond = self.loglik_row(history, candidates)?;
        match self.cfg.score {
            Scoring::Sum => Ok(cond),
            Scoring::Pmi => {
                let prior = self.loglik_row(&[], candidates)?;
                Ok(cond.iter().zip(&prior).map(|(c, p)| c - p).collect())
            }
        }
    }

    /// Log-likelihood (sum over tokens) of each candidate's title after the test prompt (cached; the
    /// cache key does not depend on the scoring, so `sum` and `pmi` share the conditional scores).
    fn loglik_row(&self, history: &[u32], candidates: &[u32]) -> Result<Vec<f32>> {
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

/// `candidates` in the order a prompt shows them: shuffled with a seed taken from the list.
pub fn shown_order(candidates: &[u32]) -> Vec<u32> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for c in candidates {
        for b in c.to_le_bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    let mut v = candidates.to_vec();
    pulse_data::Rng::derive(h, "rank-shown-order").shuffle(&mut v);
    v
}

/// Lower-case words of letters and digits, single-spaced: what the paper's hit test compares.
pub fn normalise(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_alphanumeric() { c.to_lowercase().next().unwrap_or(c) } else { ' ' })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// One test row for the generation protocol / explanations.
pub struct Row<'a> {
    pub history: &'a [u32],
    pub candidates: &'a [u32],
    pub target: u32,
}

/// What the model wrote for a row and whether it counts as a hit.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Generated {
    pub text: String,
    pub hit: bool,
}

impl SlmRanker {
    /// The paper's protocol: after the test prompt the model *generates* (T = 0.3, top-p 0.9, ≤ 32 tokens,
    /// one sample per row, seeded per row); a hit when the normalised true title appears in the normalised
    /// output. (Substring matching over sampled text can over-count; the likelihood ranking is the exact
    /// measure, this one is reported beside it for comparison with the paper.)
    pub fn generate_hits(&self, rows: &[Row<'_>], seed: u64) -> Result<Vec<Generated>> {
        let params = pulse_slm::SamplingParams { temperature: 0.3, top_k: 0, top_p: 0.9, max_tokens: 32, stop: vec!["\n".into()], ignore_eos: false };
        let reqs: Vec<pulse_slm::GenRequest> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| pulse_slm::GenRequest { prompt: self.prompt(r.history, r.candidates), n: 1, seed: seed.wrapping_add(i as u64), params: params.clone() })
            .collect();
        let out = self.engine.lock().unwrap_or_else(|e| e.into_inner()).generate_all(&reqs).map_err(|e| SftError::Invalid(e.to_string()))?;
        Ok(rows
            .iter()
            .zip(out)
            .map(|(r, g)| {
                let text = g.into_iter().next().map(|g| g.text).unwrap_or_default();
                let truth = normalise(&self.titles[r.target as usize]);
                Generated { hit: !truth.is_empty() && normalise(&text).contains(&truth), text }
            })
            .collect())
    }

    /// The model's "Let me think" rationale before it names an item (T = 0.3, top-p 0.9, ≤ 60 tokens,
    /// cut where it starts "The recommendation is"), for each row: the reason shown with a recommendation.
    pub fn explain(&self, rows: &[Row<'_>], seed: u64) -> Result<Vec<String>> {
        let params = pulse_slm::SamplingParams {
            temperature: 0.3,
            top_k: 0,
            top_p: 0.9,
            max_tokens: 60,
            stop: vec!["The recommendation is".into(), "\n".into()],
            ignore_eos: false,
        };
        let reqs: Vec<pulse_slm::GenRequest> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let prompt = self.prompt_with(r.history, r.candidates, "Let me think: ");
                pulse_slm::GenRequest { prompt, n: 1, seed: seed.wrapping_add(i as u64), params: params.clone() }
            })
            .collect();
        let out = self.engine.lock().unwrap_or_else(|e| e.into_inner()).generate_all(&reqs).map_err(|e| SftError::Invalid(e.to_string()))?;
        Ok(out.into_iter().map(|g| g.into_iter().next().map(|g| g.text.trim().trim_end_matches('.').to_string()).unwrap_or_default()).collect())
    }

    /// The title an item is shown with.
    pub fn title_of(&self, item: u32) -> &str {
        &self.titles[item as usize]
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
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn candidates_are_shown_in_a_list_seeded_order_not_target_first() {
        let lists: Vec<Vec<u32>> = (0..200u32).map(|i| vec![i, 1000 + i, 2000 + i, 3000 + i, 4000 + i]).collect();
        let first_is_target = lists.iter().filter(|l| super::shown_order(l)[0] == l[0]).count();
        assert!((20..=60).contains(&first_is_target), "target shown first {first_is_target} of 200 times (expected ~40)");
        for l in &lists[..5] {
            let mut s = super::shown_order(l);
            assert_eq!(s, super::shown_order(l), "stable");
            s.sort_unstable();
            assert_eq!(&s, l, "a permutation");
        }
    }

    #[test]
    fn normalise_keeps_words_only() {
        assert_eq!(super::normalise("  Rose-Lip BALM, 3.5 oz! "), "rose lip balm 3 5 oz");
        assert!(super::normalise("I recommend: Rose lip balm, 3.5 oz.").contains(&super::normalise("Rose-Lip BALM, 3.5 oz")));
    }

    #[test]
    fn the_test_prompt_matches_the_training_user_turn() {
        let titles: Vec<String> = ["A b", "C", "D e f", "G"].iter().map(|s| s.to_string()).collect();
        assert_eq!(super::user_turn_from(&titles, &[0, 1], &[2, 3]), "interacted items: A b; C\ncandidate items: D e f; G");
    }
}
