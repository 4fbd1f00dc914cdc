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
//! Thinking ([`RankConfig::think`]): the model first writes its own "Let me think:" rationale for the row
//! (the paper's sampling, T = 0.3, top-p 0.9, at most 60 tokens, seeded by the row), and each candidate is
//! then scored after "Let me think: <its rationale>. The recommendation is " -- the very text the rationale
//! variants were trained on, which the plain test prompt never shows them. The rationale is kept in the
//! cache beside the scores. (With `pmi` the prior is still the no-history prompt without a rationale.)
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
/// Bump when how a thinking row's rationale is written changes (part of its cached scores' key).
pub const THINK_VERSION: &str = "think-v1";
/// A thinking row's rationale is clipped to this many words before scoring (the SFT configs' own
/// `rationale_words`).
pub const THINK_WORDS: usize = 60;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RankConfig {
    /// Most recent history titles shown (the method's test prompt shows 3).
    pub history: usize,
    pub title_words: usize,
    /// Not written when `sum` (configs and results from before this field read the same).
    #[serde(skip_serializing_if = "Scoring::is_sum")]
    pub score: Scoring,
    /// Write a "Let me think" rationale first and score the candidates after it (see the module doc).
    /// Not written when off.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub think: bool,
    /// When the model writes a rationale (thinking, explanations): never repeat an n-gram of its own
    /// tokens (0 = off, the paper's sampling). A 135M model's rationales loop ("0.5 fl. oz. 0.5 fl.
    /// oz. ..."); this forbids the loop outright. Not written when off.
    #[serde(skip_serializing_if = "pulse_slm::sampling::is_zero")]
    pub no_repeat_ngram: usize,
    /// When the model writes a rationale: CTRL's repetition penalty on the tokens it has written (1 = off,
    /// the paper's sampling). Not written when off.
    #[serde(skip_serializing_if = "pulse_slm::sampling::is_one")]
    pub repeat_penalty: f32,
}

impl RankConfig {
    /// The sampler's own checks on the sampling these settings give a written rationale, named as
    /// `rank.<field>`.
    pub fn validate(&self) -> Result<()> {
        self.think_sampling().validate().map_err(|e| match e {
            pulse_slm::SlmError::Param(field, msg) => SftError::Invalid(format!("rank.{field}: {msg}")),
            other => SftError::Invalid(other.to_string()),
        })
    }

    /// How a "Let me think" rationale is sampled at test time (the paper's T = 0.3, top-p 0.9; at most 60
    /// tokens, stopped where the model starts naming the item; `no_repeat_ngram` and `repeat_penalty` from
    /// the config). The prompt ends "Let me think:" without the space: in training the space belongs to
    /// the rationale's first token, and a prompt ending in a bare space token sent the model to a new line
    /// (every rationale came out empty).
    fn think_sampling(&self) -> pulse_slm::SamplingParams {
        pulse_slm::SamplingParams {
            temperature: 0.3,
            top_k: 0,
            top_p: 0.9,
            max_tokens: 60,
            stop: vec!["The recommendation is".into()],
            ignore_eos: false,
            no_repeat_ngram: self.no_repeat_ngram,
            repeat_penalty: self.repeat_penalty,
        }
    }
}

impl Default for RankConfig {
    fn default() -> Self {
        RankConfig { history: 3, title_words: 10, score: Scoring::Sum, think: false, no_repeat_ngram: 0, repeat_penalty: 1.0 }
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
    /// The rationale a thinking row was scored after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    thought: Option<String>,
}

impl SlmRanker {
    /// `cache`: the JSON-lines score cache (created if missing; lines of other models / settings are
    /// kept but unused).
    pub fn new(name: &str, engine: LlamaEngine, ds: &Dataset, cfg: RankConfig, cache: Option<&Path>) -> Result<Self> {
        cfg.validate()?;
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
        let cond = if self.cfg.think { self.think_rows(&[history], &[candidates])?.remove(0) } else { self.loglik_row(history, candidates)? };
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
        let conts = self.titles_of(candidates);
        let ll = {
            let mut e = self.engine.lock().unwrap_or_else(|e| e.into_inner());
            e.score(&self.prompt(history, candidates), &conts).map_err(|e| SftError::Invalid(e.to_string()))?
        };
        let scores: Vec<f32> = ll.iter().map(|l| l.sum as f32).collect();
        self.remember(k, scores.clone(), None)?;
        Ok(scores)
    }

    /// The candidates' titles as they are scored.
    fn titles_of(&self, candidates: &[u32]) -> Vec<String> {
        candidates.iter().map(|&c| self.titles[c as usize].clone()).collect()
    }

    /// Appends a row's scores to the cache (file and memory).
    fn remember(&self, key: String, scores: Vec<f32>, thought: Option<String>) -> Result<()> {
        let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = &c.1 {
            let line = serde_json::to_string(&CacheLine { key: key.clone(), scores: scores.clone(), thought }).expect("serialisable");
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| SftError::Io { path: p.clone(), source: e })?;
            writeln!(f, "{line}").map_err(|e| SftError::Io { path: p.clone(), source: e })?;
        }
        c.0.insert(key, scores);
        Ok(())
    }

    /// Thinking rows: for the rows not in the cache, the model writes its rationales (one batched
    /// generation), then each row's candidates are scored after "Let me think: <rationale>. The
    /// recommendation is "; returns every row's log-likelihoods.
    fn think_rows(&self, histories: &[&[u32]], candidates: &[&[u32]]) -> Result<Vec<Vec<f32>>> {
        // Rows thought with the paper's sampling keep their old keys.
        let mut how = String::new();
        if self.cfg.no_repeat_ngram > 0 {
            how += &format!("nr{}|", self.cfg.no_repeat_ngram);
        }
        if self.cfg.repeat_penalty != 1.0 {
            how += &format!("rp{}|", self.cfg.repeat_penalty);
        }
        let keys: Vec<String> = histories.iter().zip(candidates).map(|(h, c)| format!("{THINK_VERSION}|{how}{}", self.row_key(h, c))).collect();
        let todo: Vec<usize> = {
            let c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            (0..keys.len()).filter(|&i| !c.0.contains_key(&keys[i])).collect()
        };
        if !todo.is_empty() {
            let reqs: Vec<pulse_slm::GenRequest> = todo
                .iter()
                .map(|&i| pulse_slm::GenRequest {
                    prompt: self.prompt_with(histories[i], candidates[i], crate::data::THINK_OPENING),
                    n: 1,
                    seed: fnv(keys[i].as_bytes()),
                    params: self.cfg.think_sampling(),
                })
                .collect();
            let mut e = self.engine.lock().unwrap_or_else(|e| e.into_inner());
            let out = e.generate_all(&reqs).map_err(|e| SftError::Invalid(e.to_string()))?;
            for (&i, g) in todo.iter().zip(out) {
                let thought = g.into_iter().next().map(|g| clean_thought(&g.text)).unwrap_or_default();
                let prompt = self.prompt_with(histories[i], candidates[i], &crate::data::thinking_prefix(Some(&thought), THINK_WORDS));
                let conts = self.titles_of(candidates[i]);
                let ll = e.score(&prompt, &conts).map_err(|e| SftError::Invalid(e.to_string()))?;
                self.remember(keys[i].clone(), ll.iter().map(|l| l.sum as f32).collect(), Some(thought))?;
            }
        }
        let c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        Ok(keys.iter().map(|k| c.0[k].clone()).collect())
    }

    /// Rows scored so far (cache included).
    pub fn cached(&self) -> usize {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).0.len()
    }
}

/// `candidates` in the order a prompt shows them: shuffled with a seed taken from the list.
pub fn shown_order(candidates: &[u32]) -> Vec<u32> {
    let bytes: Vec<u8> = candidates.iter().flat_map(|c| c.to_le_bytes()).collect();
    let h = fnv(&bytes);
    let mut v = candidates.to_vec();
    pulse_data::Rng::derive(h, "rank-shown-order").shuffle(&mut v);
    v
}

/// FNV-1a: a seed from bytes, the same on every machine.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// The rationale in a "Let me think:" continuation: its first non-empty line (the tuned models often
/// open with blank lines, so a new line cannot be a stop string), up to "The recommendation is", without
/// the closing full stop.
fn clean_thought(text: &str) -> String {
    let line = text.trim_start().lines().next().unwrap_or("");
    let line = line.split("The recommendation is").next().unwrap_or("");
    line.trim().trim_end_matches(['.', ' ']).to_string()
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
        let params = pulse_slm::SamplingParams { temperature: 0.3, top_k: 0, top_p: 0.9, max_tokens: 32, stop: vec!["\n".into()], ignore_eos: false, ..pulse_slm::SamplingParams::default() };
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
        let reqs: Vec<pulse_slm::GenRequest> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let prompt = self.prompt_with(r.history, r.candidates, crate::data::THINK_OPENING);
                pulse_slm::GenRequest { prompt, n: 1, seed: seed.wrapping_add(i as u64), params: self.cfg.think_sampling() }
            })
            .collect();
        let out = self.engine.lock().unwrap_or_else(|e| e.into_inner()).generate_all(&reqs).map_err(|e| SftError::Invalid(e.to_string()))?;
        Ok(out.into_iter().map(|g| g.into_iter().next().map(|g| clean_thought(&g.text)).unwrap_or_default()).collect())
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
        if self.cfg.think {
            // the batch's rationales in one generation (then every row below is a cache hit)
            self.think_rows(histories, candidates)?;
        }
        histories.iter().zip(candidates).map(|(h, c)| self.score_row(h, c).map_err(|e| e.into())).collect()
    }
    fn batch_size(&self) -> usize {
        if self.cfg.think {
            16
        } else {
            4
        }
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
    fn a_thought_is_its_first_line_before_the_recommendation() {
        assert_eq!(super::clean_thought("\n\n She likes gentle creams.\nThe candidates are"), "She likes gentle creams");
        assert_eq!(super::clean_thought(" Rose scents again. The recommendation is Rose oil"), "Rose scents again");
        assert_eq!(super::clean_thought(" \n "), "");
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
