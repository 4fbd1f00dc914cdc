//! Running step 2 over a dataset: build prompts, skip what the store has, generate slice by slice (fixed
//! slices of the user order, each one continuously batched call from a clean engine), parse, and commit
//! each slice whole.
//!
//! Why whole slices: llama.cpp's logits depend in their last bits on which sequences share a forward pass
//! and on whether a prompt's beginning came from the prefix cache, and at T = 0.7 that changes samples. A
//! slice's texts therefore depend only on the slice, and a run killed and resumed writes what an
//! uninterrupted run writes; a kill loses at most the slice in flight.

use std::collections::{BTreeMap, HashSet};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use pulse_data::{Dataset, Split};
use pulse_slm::{GenEvent, GenRequest, Generator, Prompt, SamplingParams};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::Result;
use crate::parse::{parse_rationale, Status};
use crate::prompt::{messages, training_choices, Choice, PromptOptions, ANSWER_PREFIX, PROMPT_VERSION};
use crate::store::{Key, Record, Store};

/// Everything that shapes the text; saved (as canonical JSON) in each row's key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RationaleConfig {
    pub prompt: PromptOptions,
    pub sampling: SamplingParams,
    /// Samples drawn per user until one yields a usable rationale (a small model sometimes answers "True"
    /// or a bare title); each attempt has its own seed, the attempt count is stored.
    pub attempts: usize,
}

impl Default for RationaleConfig {
    fn default() -> Self {
        // The method's step 2: temperature 0.7, at most 150 new tokens.
        RationaleConfig {
            prompt: PromptOptions::default(),
            sampling: SamplingParams {
                temperature: 0.7,
                top_k: 0,
                top_p: 1.0,
                max_tokens: 150,
                stop: vec!["\"}".into()],
                ignore_eos: false,
                ..SamplingParams::default()
            },
            attempts: 3,
        }
    }
}

/// Users per slice unless told otherwise: large enough that the engine's batch stays full for most of a
/// slice (each slice ends with a draining batch and its own resampling call, ~45 s: on 768 users, slices of
/// 256 took 1.11× the time of one slice; on 256 users, slices of 32 took 1.67×), small enough that a kill
/// loses ~5 minutes of generation at the method's settings on 2 cores (`bench/rationales/slice.sh`).
pub const DEFAULT_SLICE: usize = 256;

/// Which users, which seed, how many users are generated and committed together.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub seed: u64,
    /// First N users (in split order) that have a training choice; None = all.
    pub users: Option<usize>,
    /// Users per slice (fixed slices of the user order; see the module docs). Runs with different slices
    /// batch users differently, so their texts may differ in places; so may `--users N` followed by a
    /// larger N unless N is a multiple of the slice.
    pub slice: usize,
}

impl RunOptions {
    pub fn new(seed: u64, users: Option<usize>) -> RunOptions {
        RunOptions { seed, users, slice: DEFAULT_SLICE }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
    pub prompt_tokens: usize,
    pub new_tokens: usize,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RunSummary {
    pub dataset: String,
    pub model: String,
    pub model_sha256: String,
    pub prompt_version: String,
    pub seed: u64,
    pub requested: usize,
    pub already_stored: usize,
    pub generated: usize,
    pub skipped_users_short_history: usize,
    pub status: BTreeMap<String, usize>,
    /// Users by the attempt that gave their stored answer.
    pub attempts: BTreeMap<String, usize>,
    /// Tokens of every attempt.
    pub prompt_tokens: usize,
    pub new_tokens: usize,
    pub seconds: f64,
}

impl RunSummary {
    /// Share of this run's generations that could not be parsed.
    pub fn parse_failure_rate(&self) -> f64 {
        let raw = self.status.get("raw").copied().unwrap_or(0);
        if self.generated == 0 {
            0.0
        } else {
            raw as f64 / self.generated as f64
        }
    }
}

/// Per-user request seed: depends only on the run seed and the (user, target), so which other users are in
/// the run never changes a user's text.
pub fn request_seed(seed: u64, user: &str, target: &str, attempt: usize) -> u64 {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    if attempt > 0 {
        h.update(format!("attempt-{attempt}").as_bytes());
    }
    h.update(user.as_bytes());
    h.update([0]);
    h.update(target.as_bytes());
    u64::from_le_bytes(h.finalize()[..8].try_into().expect("8 bytes"))
}

/// The work units of a stage that commits units whole and resumes from them: fixed slices of `size` users
/// of `choices` (the user order, not what is left of it), each keeping only the users the store has not
/// got (`done`: (user id, target id)), empty ones dropped. Fixed slices are what makes a run interrupted
/// between units and resumed write what an uninterrupted one writes (with `Generator::reset` at each start).
pub fn todo_units<'a>(ds: &Dataset, choices: &'a [Choice], done: &HashSet<(String, String)>, size: usize) -> Vec<Vec<&'a Choice>> {
    let is_todo = |c: &&Choice| !done.contains(&(ds.users[c.user as usize].id.clone(), ds.items[c.target as usize].id.clone()));
    choices.chunks(size.max(1)).map(|s| s.iter().filter(is_todo).collect::<Vec<_>>()).filter(|u| !u.is_empty()).collect()
}

pub fn config_params(cfg: &RationaleConfig) -> String {
    serde_json::to_string(cfg).expect("config serialises")
}

pub fn run(
    gen: &mut dyn Generator,
    ds: &Dataset,
    split: &Split,
    cfg: &RationaleConfig,
    opts: &RunOptions,
    store: &Store,
    progress: &mut dyn FnMut(&Progress),
) -> Result<RunSummary> {
    let t0 = Instant::now();
    cfg.sampling.validate()?;
    let (mut choices, skipped) = training_choices(split);
    if let Some(n) = opts.users {
        choices.truncate(n);
    }
    let model = gen.model().clone();
    let proto = Key {
        model_sha: model.key(),
        prompt_version: PROMPT_VERSION.into(),
        dataset: ds.name.clone(),
        user: String::new(),
        target: String::new(),
        seed: opts.seed as i64,
        method: "initial".into(),
        params: config_params(cfg),
    };
    let done = store.done(&proto)?;
    let uid = |c: &Choice| ds.users[c.user as usize].id.clone();
    let iid = |i: u32| ds.items[i as usize].id.clone();
    let units = todo_units(ds, &choices, &done, opts.slice);
    let todo: usize = units.iter().map(Vec::len).sum();
    let mut summary = RunSummary {
        dataset: ds.name.clone(),
        model: model.name.clone(),
        model_sha256: model.key(),
        prompt_version: PROMPT_VERSION.into(),
        seed: opts.seed,
        requested: choices.len(),
        already_stored: choices.len() - todo,
        skipped_users_short_history: skipped,
        ..Default::default()
    };
    let mut prog = Progress { done: 0, total: todo, prompt_tokens: 0, new_tokens: 0 };
    progress(&prog);
    let attempts = cfg.attempts.max(1);
    for mut pending in units {
        gen.reset();
        // Every user's record of the slice, written in one transaction at its end.
        let mut finished: Vec<Record> = Vec::with_capacity(pending.len());
        for attempt in 0..attempts {
            if pending.is_empty() {
                break;
            }
            let requests: Vec<GenRequest> = pending
                .iter()
                .map(|c| GenRequest {
                    prompt: Prompt::Chat(messages(ds, c, &cfg.prompt)),
                    n: 1,
                    seed: request_seed(opts.seed, &uid(c), &iid(c.target), attempt),
                    params: cfg.sampling.clone(),
                })
                .collect();
            let mut retry: Vec<&Choice> = Vec::new();
            gen.generate(&requests, &mut |ev| match ev {
                GenEvent::Tokens { prompt, generated } => {
                    prog.prompt_tokens += prompt;
                    prog.new_tokens += generated;
                }
                GenEvent::Done { index, generations } => {
                    let c = pending[index];
                    let g = &generations[0];
                    summary.prompt_tokens += g.prompt_tokens;
                    summary.new_tokens += g.new_tokens;
                    let mut raw = format!("{ANSWER_PREFIX}{}", g.text);
                    if g.finish == pulse_slm::Finish::Stop {
                        raw.push_str("\"}");
                    }
                    let parsed = parse_rationale(&raw);
                    if parsed.status == Status::Raw && attempt + 1 < attempts {
                        retry.push(c);
                        return;
                    }
                    let start = c.shown_from(&cfg.prompt);
                    let rec = Record {
                        key: Key { user: uid(c), target: iid(c.target), ..proto.clone() },
                        history: c.history[start..].iter().map(|&i| iid(i)).collect(),
                        rationale: parsed.rationale,
                        raw,
                        status: parsed.status,
                        attempts: (attempt + 1) as i64,
                        prompt_tokens: g.prompt_tokens as i64,
                        new_tokens: g.new_tokens as i64,
                        finish: serde_json::to_value(g.finish).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default(),
                        score: None,
                        model_name: model.name.clone(),
                        created_unix: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0),
                    };
                    finished.push(rec);
                    prog.done += 1;
                    progress(&prog);
                }
            })?;
            pending = retry;
        }
        store.insert_all(&finished)?;
        for r in &finished {
            *summary.status.entry(r.status.as_str().to_string()).or_default() += 1;
            *summary.attempts.entry(r.attempts.to_string()).or_default() += 1;
            summary.generated += 1;
        }
    }
    summary.seconds = t0.elapsed().as_secs_f64();
    Ok(summary)
}
