//! PULSE step 4: Tree-of-Thought refinement. For each training choice the SLM is shown the user's history,
//! the items of the most similar users and the chosen item, and writes a chain of short numbered thoughts.
//! A beam search keeps the `beam` best partial chains at each depth, each expanded by `branching` sampled
//! next thoughts. A chain's score is cos(R(chain), B(history, chosen)) in the Thought Space
//! ([`SpaceScorer`]) — or, for the "ToT with likelihood" ablation, the SLM's mean log-probability of the
//! chain ([`LikelihoodScorer`]). The best final chain is the user's refined rationale; it goes into the
//! same store as the initial rationales (method `tot-space` / `tot-likelihood`, settings in `params`, chain
//! score in `score`, the whole tree in `raw`), committed a group of users at a time, so a killed run resumes.
//! With `title_penalty` > 0 every chain's score (and what is stored) is the judge's minus that much per
//! share of the chosen title's words the chain restates. With `contrast_negatives` = k > 0 the Thought-Space
//! judge is contrastive: cos(R(chain), B(history, chosen)) minus the mean of cos(R(chain), B(history, n)) over
//! k items n the user never touched, so what a chain shares with the history (restated history titles)
//! cancels and only what singles out the chosen item scores. Two settings change only the prompt's form:
//! `demonstrations` (worked examples: a plain-text completion prompt for a base model, [`completion`]) and
//! `space_after_number` (whether the prompt ends "k. " or "k.").

use std::collections::HashMap;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use pulse_data::{Dataset, Split};
use pulse_rationale::prompt::clip;
use pulse_rationale::words::title_recall;
use pulse_rationale::{training_choices, Choice, Key, PromptOptions, Record, Status, Store};
use pulse_slm::{ChatMessage, GenRequest, Generator, Prompt, SamplingParams};
use pulse_thought::{SentenceEncoder, ThoughtSpace};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Bump when the wording changes: part of every stored row's key.
pub const TOT_PROMPT_VERSION: &str = "tot-v1";

#[derive(Debug, thiserror::Error)]
pub enum TotError {
    #[error(transparent)]
    Slm(#[from] pulse_slm::SlmError),
    #[error(transparent)]
    Store(#[from] pulse_rationale::RationaleError),
    #[error(transparent)]
    Thought(#[from] pulse_thought::ThoughtError),
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, TotError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scoring {
    /// cos(R(chain), B(history, chosen)) in the Thought Space (PULSE).
    Space,
    /// The SLM's mean log-probability of the chain (the "ToT with likelihood" ablation).
    Likelihood,
}

impl Scoring {
    pub fn method(self) -> &'static str {
        match self {
            Scoring::Space => "tot-space",
            Scoring::Likelihood => "tot-likelihood",
        }
    }
}

/// Everything that shapes the search; saved (canonical JSON) in each row's key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TotConfig {
    /// How the user's own history is shown (shorter than step 2's: five prompts per user).
    pub prompt: PromptOptions,
    /// Similar users shown (top-k by cosine of their user representations).
    pub similar_users: usize,
    /// Most recent items shown per similar user.
    pub similar_items: usize,
    /// Words kept per similar user's item title.
    pub similar_title_words: usize,
    pub depth: usize,
    pub branching: usize,
    pub beam: usize,
    /// Per thought; the stop string ends a thought at its line break.
    pub sampling: SamplingParams,
    /// Users expanded together (their requests share one continuously batched call per depth).
    pub group: usize,
    /// Subtracted from a chain's score, times the share of the chosen title's content words the chain
    /// restates ([`pulse_rationale::words::title_recall`]), at every depth. The Thought-Space judge compares
    /// a chain with B(history, *chosen item*), so without it the search favours chains that name the item;
    /// in SFT such a rationale lets the answer be copied instead of learnt. 0 (the method's search) by
    /// default, and then absent from the serialised settings, so rows stored before the option keep their keys.
    #[serde(skip_serializing_if = "is_zero")]
    pub title_penalty: f64,
    /// With k > 0 a Thought-Space chain scores cos(R(chain), B(history, chosen)) − mean over k negatives of
    /// cos(R(chain), B(history, negative)): the same history with an item the user never touched (uniform
    /// over the catalogue, seeded by the run seed and the choice — the cand protocols' kind of negative)
    /// in place of the chosen one. B reads the history's titles too, so the plain cosine also pays a chain
    /// for restating the *history*; here that part cancels. 0 (the method's judge) by default, and then
    /// absent from the serialised settings. The likelihood judge has no use for it and refuses it.
    #[serde(skip_serializing_if = "pulse_slm::sampling::is_zero")]
    pub contrast_negatives: usize,
    /// Worked examples for a base model, which has no chat template to follow. With any, the prompt is plain
    /// text to be continued: a one-line heading, these examples, then the user's entry in the same form with
    /// its chain so far ([`completion`]); without, the chat turns of [`messages`] (the method). Empty by
    /// default, and then absent from the serialised settings.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub demonstrations: Vec<Demonstration>,
    /// Whether the prompt ends in a space after the open step's number ("3. ", the prompt as first written)
    /// or at the full stop ("3.", the model writes the space). A prompt that ends in a space makes the model
    /// start its thought with a token that has no leading space. SmolLM2's tokenizer gives most words their
    /// leading space and digits none, so such a thought mostly opens with a number ("7.45 is …"). True by
    /// default (the key of every row stored before the option), and then absent from the serialised settings.
    #[serde(skip_serializing_if = "is_true")]
    pub space_after_number: bool,
}

fn is_true(b: &bool) -> bool {
    *b
}

/// One worked example of a completion prompt: a shopper's recent items (oldest first), what they chose
/// next, and the steps that explain it. Written in the config, so it is part of every row's key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Demonstration {
    pub history: Vec<String>,
    /// Items similar shoppers bought (may be empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub similar: Vec<String>,
    pub chosen: String,
    pub steps: Vec<String>,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

impl Default for TotConfig {
    fn default() -> Self {
        // The method's step 4: depth 3, 3 samples per node, beam 2; thoughts ≤ 61 tokens, T=1, top-k 51,
        // top-p 0.95.
        TotConfig {
            prompt: PromptOptions { max_history: 5, title_words: 12, review_words: 0, description_words: 0 },
            similar_users: 5,
            similar_items: 2,
            similar_title_words: 8,
            depth: 3,
            branching: 3,
            beam: 2,
            sampling: SamplingParams {
                temperature: 1.0,
                top_k: 51,
                top_p: 0.95,
                max_tokens: 61,
                stop: vec!["\n".into()],
                ignore_eos: false,
                ..SamplingParams::default()
            },
            group: 32,
            title_penalty: 0.0,
            contrast_negatives: 0,
            demonstrations: Vec::new(),
            space_after_number: true,
        }
    }
}

impl TotConfig {
    pub fn validate(&self) -> Result<()> {
        self.sampling.validate()?;
        if self.depth == 0 || self.branching == 0 || self.beam == 0 || self.group == 0 {
            return Err(TotError::Invalid("tot: depth, branching, beam and group must be at least 1".into()));
        }
        if !(self.title_penalty.is_finite() && self.title_penalty >= 0.0) {
            return Err(TotError::Invalid(format!("tot: title_penalty must be a finite number >= 0, got {}", self.title_penalty)));
        }
        for (k, d) in self.demonstrations.iter().enumerate() {
            let blank = |t: &String| t.trim().is_empty() || t.contains('\n');
            if d.history.is_empty() || d.steps.is_empty() || d.history.iter().chain(&d.similar).chain(&d.steps).any(blank) || blank(&d.chosen) {
                return Err(TotError::Invalid(format!(
                    "tot: demonstrations[{k}] needs a non-empty history, chosen item and steps, each one line of text"
                )));
            }
        }
        Ok(())
    }

    /// Settings that need a particular judge: `contrast_negatives` only means something to the Thought Space.
    pub fn check_judge(&self, scoring: Scoring) -> Result<()> {
        if self.contrast_negatives > 0 && scoring != Scoring::Space {
            return Err(TotError::Invalid("tot: contrast_negatives needs the Thought-Space judge (--score space)".into()));
        }
        Ok(())
    }
}

/// The similar users' recent items for one choice (dataset item indices, one list per similar user).
pub type Neighbours = Vec<Vec<u32>>;

/// The prompt for the next thought after `chain` (the assistant turn is continued from "k. ", or "k." without `space_after_number`).
pub fn messages(ds: &Dataset, c: &Choice, neighbours: &Neighbours, cfg: &TotConfig, chain: &[String]) -> Vec<ChatMessage> {
    let mut base = pulse_rationale::messages(ds, c, &cfg.prompt);
    base.truncate(2);
    let user_msg = base.pop().expect("system + user").content;
    // The step-2 user message, minus its JSON request, plus the similar users' items.
    let body = user_msg.split("\n\nWhy does this choice fit").next().unwrap_or(&user_msg).to_string();
    let (hist, chosen) = body.split_once("\nThe item they chose next: ").unwrap_or((&body, ""));
    let mut sim = String::new();
    for items in neighbours.iter().filter(|v| !v.is_empty()) {
        let titles: Vec<String> = items.iter().map(|&i| clip(&ds.items[i as usize].title, cfg.similar_title_words)).collect();
        sim.push_str(&format!("- {}\n", titles.join("; ")));
    }
    let sim = if sim.is_empty() { String::new() } else { format!("Shoppers with similar tastes bought:\n{sim}") };
    let mut answer = String::new();
    for (k, t) in chain.iter().enumerate() {
        answer.push_str(&format!("{}. {}\n", k + 1, t));
    }
    answer.push_str(&open_step(cfg, chain.len() + 1));
    vec![
        ChatMessage::system(
            "You explain why a shopper chose an item. Think step by step: each step is one short sentence \
             about the shopper's tastes and needs, on its own numbered line.",
        ),
        ChatMessage::user(format!(
            "{hist}\n{sim}The item they chose next: {chosen}\n\nStep by step, why does this choice fit the shopper?"
        )),
        ChatMessage::assistant(answer),
    ]
}

/// The prompt for the next thought after `chain`: chat turns ([`messages`]), or with demonstrations in the
/// config a plain-text completion ([`completion`]).
pub fn prompt(ds: &Dataset, c: &Choice, neighbours: &Neighbours, cfg: &TotConfig, chain: &[String]) -> Prompt {
    if cfg.demonstrations.is_empty() {
        Prompt::Chat(messages(ds, c, neighbours, cfg, chain))
    } else {
        Prompt::Raw(completion(ds, c, neighbours, cfg, chain))
    }
}

/// Catalogue text inside a raw prompt: one line, and no `<`/`>` (so no control token can be spelled; a
/// raw prompt is not scrubbed by the engine as chat turns are).
fn plain(s: &str) -> String {
    s.replace(['<', '>'], " ").split_whitespace().collect::<Vec<_>>().join(" ")
}

fn entry(out: &mut String, history: &[String], similar: &[String], chosen: &str) {
    out.push_str(&format!("Shopper's recent items: {}\n", history.join("; ")));
    if !similar.is_empty() {
        out.push_str(&format!("Shoppers with similar tastes bought: {}\n", similar.join("; ")));
    }
    out.push_str(&format!("Chosen next: {chosen}\nWhy, step by step:\n"));
}

/// The completion prompt of a base model: a heading, the config's demonstrations, then this user's entry
/// (the same history, similar users' items and chosen item as [`messages`] shows) continued from the open step
/// ("k. " or "k."). The chain's own thoughts go in as the model wrote them (first line, trimmed): the engine
/// scrubs control-token texts from chat turns only.
pub fn completion(ds: &Dataset, c: &Choice, neighbours: &Neighbours, cfg: &TotConfig, chain: &[String]) -> String {
    let mut s = String::from(
        "Why shoppers chose the item they bought next. Each step is one short sentence about the shopper's tastes and needs.\n\n",
    );
    for d in &cfg.demonstrations {
        let h: Vec<String> = d.history.iter().map(|t| plain(t)).collect();
        let sim: Vec<String> = d.similar.iter().map(|t| plain(t)).collect();
        entry(&mut s, &h, &sim, &plain(&d.chosen));
        for (k, t) in d.steps.iter().enumerate() {
            s.push_str(&format!("{}. {}\n", k + 1, plain(t)));
        }
        s.push('\n');
    }
    let start = c.shown_from(&cfg.prompt);
    let hist: Vec<String> = c.history[start..].iter().map(|&i| plain(&clip(&ds.items[i as usize].title, cfg.prompt.title_words))).collect();
    let sim: Vec<String> = neighbours
        .iter()
        .flatten()
        .map(|&i| plain(&clip(&ds.items[i as usize].title, cfg.similar_title_words)))
        .collect();
    entry(&mut s, &hist, &sim, &plain(&clip(&ds.items[c.target as usize].title, cfg.prompt.title_words)));
    for (k, t) in chain.iter().enumerate() {
        s.push_str(&format!("{}. {}\n", k + 1, t));
    }
    s.push_str(&open_step(cfg, chain.len() + 1));
    s
}

/// The number that opens step `n`, where the prompt ends.
fn open_step(cfg: &TotConfig, n: usize) -> String {
    if cfg.space_after_number {
        format!("{n}. ")
    } else {
        format!("{n}.")
    }
}

/// Whether a ToT prompt ends in the space after the open step's number (see `space_after_number`).
fn ends_in_space(p: &Prompt) -> bool {
    match p {
        Prompt::Chat(m) => m.last().is_some_and(|m| m.content.ends_with(' ')),
        Prompt::Raw(s) => s.ends_with(' '),
    }
}

/// One thought from a sample: its first line, without the step numbers small models like to repeat
/// ("1. 1. …", "2) …").
pub fn clean_thought(sample: &str) -> String {
    let mut t = sample.split('\n').next().unwrap_or("").trim();
    loop {
        let digits = t.len() - t.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let rest = &t[digits..];
        let mut chars = rest.chars();
        let marker = digits > 0 && matches!(chars.next(), Some('.' | ')' | ':' | '-'));
        let after = chars.as_str();
        if marker && (after.is_empty() || after.starts_with(char::is_whitespace)) {
            t = after.trim_start();
        } else {
            return t.to_string();
        }
    }
}

/// A chain as one rationale text (what R reads and what is stored).
pub fn chain_text(chain: &[String]) -> String {
    chain.iter().map(|t| t.trim()).filter(|t| !t.is_empty()).collect::<Vec<_>>().join(" ")
}

/// A chain with an empty thought (the model ended its line at once) is never chosen.
fn degenerate(chain: &[String]) -> bool {
    chain.is_empty() || chain.iter().any(|t| t.trim().is_empty())
}

/// Judges candidate chains of one choice; higher is better.
pub trait ChainScorer {
    /// Stored in the key: which judge (and which weights) picked the chains.
    fn id(&self) -> String;
    fn score(&mut self, gen: &mut dyn Generator, job: &ScoreJob<'_>) -> Result<Vec<f64>>;
    /// Many choices' chains at once (what the search calls once per depth); by default one by one.
    fn score_all(&mut self, gen: &mut dyn Generator, jobs: &[ScoreJob<'_>]) -> Result<Vec<Vec<f64>>> {
        jobs.iter().map(|j| self.score(gen, j)).collect()
    }
}

pub struct ScoreJob<'a> {
    /// B's text: "[CONTEXT] History: … [CHOSEN_ITEM] …".
    pub behaviour: &'a str,
    /// B's texts for the same history with items the user never touched in place of the chosen one (empty
    /// unless `contrast_negatives` > 0); a contrastive judge subtracts the chain's mean similarity to them.
    pub negatives: &'a [String],
    /// The prompt for the first thought (assistant turn opened with "1. ").
    pub first_prompt: &'a Prompt,
    pub chains: &'a [Vec<String>],
}

/// cos(R(chain), B(behaviour)) in a trained Thought Space, minus the mean cos(R(chain), B(negative)) over
/// the job's negatives when it has any ([`contrast`]).
pub struct SpaceScorer<'a> {
    pub encoder: &'a SentenceEncoder,
    pub space: &'a ThoughtSpace,
    /// Identifies the space's weights (e.g. a hash of its file).
    pub space_id: String,
    behaviours: HashMap<String, Vec<f32>>,
}

impl<'a> SpaceScorer<'a> {
    pub fn new(encoder: &'a SentenceEncoder, space: &'a ThoughtSpace, space_id: String) -> Self {
        SpaceScorer { encoder, space, space_id, behaviours: HashMap::new() }
    }
}

impl ChainScorer for SpaceScorer<'_> {
    fn id(&self) -> String {
        format!("space:{}:{}", self.encoder.id(), self.space_id)
    }
    fn score(&mut self, gen: &mut dyn Generator, job: &ScoreJob<'_>) -> Result<Vec<f64>> {
        Ok(self.score_all(gen, std::slice::from_ref(job))?.remove(0))
    }
    fn score_all(&mut self, _gen: &mut dyn Generator, jobs: &[ScoreJob<'_>]) -> Result<Vec<Vec<f64>>> {
        if jobs.iter().all(|j| j.chains.is_empty()) {
            return Ok(vec![Vec::new(); jobs.len()]);
        }
        let mut new_b: Vec<&str> = jobs
            .iter()
            .flat_map(|j| std::iter::once(j.behaviour).chain(j.negatives.iter().map(String::as_str)))
            .filter(|b| !self.behaviours.contains_key(*b))
            .collect();
        new_b.sort_unstable();
        new_b.dedup();
        if !new_b.is_empty() {
            let e = self.space.apply(&self.encoder.encode(&new_b, 32)?, false)?;
            for (b, v) in new_b.into_iter().zip(e) {
                self.behaviours.insert(b.to_string(), v);
            }
        }
        let texts: Vec<String> = jobs.iter().flat_map(|j| j.chains.iter().map(|c| chain_text(c))).collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let mut r = self.space.apply(&self.encoder.encode(&refs, 32)?, true)?.into_iter();
        Ok(jobs
            .iter()
            .map(|j| {
                let b = &self.behaviours[j.behaviour];
                let negs: Vec<&[f32]> = j.negatives.iter().map(|n| self.behaviours[n].as_slice()).collect();
                j.chains
                    .iter()
                    .map(|c| {
                        let r = r.next().expect("one vector per chain");
                        if degenerate(c) { f64::NEG_INFINITY } else { contrast(&r, b, &negs) }
                    })
                    .collect()
            })
            .collect())
    }
}

/// cos(r, b) minus the mean cos(r, n) over `negatives` (just cos(r, b) when there are none).
pub fn contrast(r: &[f32], b: &[f32], negatives: &[&[f32]]) -> f64 {
    let pos = pulse_thought::cosine(r, b) as f64;
    if negatives.is_empty() {
        return pos;
    }
    pos - negatives.iter().map(|n| pulse_thought::cosine(r, n) as f64).sum::<f64>() / negatives.len() as f64
}

/// B's texts for `c`'s history with `k` other items in place of the chosen one: distinct items the user
/// never interacted with (train, validation or test), uniform over the catalogue, drawn from the run seed
/// and the choice alone (fewer when the catalogue runs out).
pub fn negative_behaviours(ds: &Dataset, c: &Choice, k: usize, seed: u64) -> Vec<String> {
    if k == 0 {
        return Vec::new();
    }
    let user = &ds.users[c.user as usize];
    let mut rng = pulse_data::Rng::derive(seed, &format!("tot-negatives|{}|{}", user.id, ds.items[c.target as usize].id));
    let picked = pulse_thought::train::untouched_items(ds, user, c.target, k, &mut rng);
    let hist: Vec<&str> = c.history.iter().map(|&i| ds.items[i as usize].title.as_str()).collect();
    picked.iter().map(|&j| pulse_thought::train::behaviour_text(&hist, &ds.items[j as usize].title)).collect()
}

/// The SLM's own mean log-probability of each chain (as the numbered lines it wrote) after the prompt.
pub struct LikelihoodScorer;

impl ChainScorer for LikelihoodScorer {
    fn id(&self) -> String {
        "likelihood".into()
    }
    fn score(&mut self, gen: &mut dyn Generator, job: &ScoreJob<'_>) -> Result<Vec<f64>> {
        // The thoughts as the prompt continues them: with or without the space after the first number.
        let sp = if ends_in_space(job.first_prompt) { "" } else { " " };
        let conts: Vec<String> = job
            .chains
            .iter()
            .map(|c| c.iter().enumerate().map(|(k, t)| if k == 0 { format!("{sp}{t}") } else { format!("\n{}. {}", k + 1, t) }).collect())
            .collect();
        // Degenerate chains (an empty thought, possibly all of them) lose without being scored: the engine
        // refuses an empty continuation.
        let live: Vec<usize> = (0..conts.len()).filter(|&i| !degenerate(&job.chains[i]) && !conts[i].trim().is_empty()).collect();
        let mut out = vec![f64::NEG_INFINITY; conts.len()];
        if !live.is_empty() {
            let texts: Vec<String> = live.iter().map(|&i| conts[i].clone()).collect();
            for (&i, l) in live.iter().zip(gen.score(job.first_prompt, &texts)?) {
                out[i] = l.mean;
            }
        }
        Ok(out)
    }
}

/// What progress is reported: the same as the rationale stage's.
pub use pulse_rationale::Progress;

/// Which users, which seed (users are searched and committed in groups of the config's `group`).
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub seed: u64,
    /// First N users (in split order) that have a training choice; None = all.
    pub users: Option<usize>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RunSummary {
    pub dataset: String,
    pub model: String,
    pub model_sha256: String,
    pub method: String,
    pub scorer: String,
    pub seed: u64,
    pub requested: usize,
    pub already_stored: usize,
    pub refined: usize,
    /// Mean chain score of the refined rationales (this run's).
    pub mean_score: f64,
    /// Thoughts generated (all nodes of all trees) and how many hit the token limit.
    pub thoughts: usize,
    pub thoughts_truncated: usize,
    pub prompt_tokens: usize,
    pub new_tokens: usize,
    pub seconds: f64,
    /// Of `seconds`: writing thoughts (the SLM) and judging chains (the scorer).
    pub generate_seconds: f64,
    pub score_seconds: f64,
}

/// Per-request seed: only the run seed, the choice and the node decide a sample.
pub fn node_seed(seed: u64, user: &str, target: &str, depth: usize, beam: usize) -> u64 {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(format!("tot-{depth}-{beam}").as_bytes());
    h.update(user.as_bytes());
    h.update([0]);
    h.update(target.as_bytes());
    u64::from_le_bytes(h.finalize()[..8].try_into().expect("8 bytes"))
}

pub fn config_params(cfg: &TotConfig, scorer: &str) -> String {
    serde_json::json!({ "tot": cfg, "scorer": scorer }).to_string()
}

#[derive(Serialize)]
struct Node {
    depth: usize,
    parent: usize,
    text: String,
    score: f64,
    truncated: bool,
}

/// One user's search state.
struct Search<'c> {
    choice: &'c Choice,
    /// The prompt for the first thought (what the likelihood judge scores chains after).
    first: Prompt,
    behaviour: String,
    /// B's texts with other items in place of the chosen one (contrastive judge).
    negatives: Vec<String>,
    beams: Vec<(Vec<String>, usize, f64)>, // (chain, node index of its last thought, score)
    nodes: Vec<Node>,
    prompt_tokens: usize,
    new_tokens: usize,
}

/// Refine the training choices of `split` (first `opts.users`) by beam search; `neighbours[u]` are the
/// similar users' items for dataset user `u` (missing = none shown).
#[allow(clippy::too_many_arguments)]
pub fn run(
    gen: &mut dyn Generator,
    scorer: &mut dyn ChainScorer,
    ds: &Dataset,
    split: &Split,
    neighbours: &HashMap<u32, Neighbours>,
    cfg: &TotConfig,
    scoring: Scoring,
    opts: &RunOptions,
    store: &Store,
    progress: &mut dyn FnMut(&Progress),
) -> Result<RunSummary> {
    let t0 = Instant::now();
    cfg.validate()?;
    cfg.check_judge(scoring)?;
    let (mut choices, _) = training_choices(split);
    if let Some(n) = opts.users {
        choices.truncate(n);
    }
    let model = gen.model().clone();
    let scorer_id = scorer.id();
    let proto = Key {
        model_sha: model.key(),
        prompt_version: TOT_PROMPT_VERSION.into(),
        dataset: ds.name.clone(),
        user: String::new(),
        target: String::new(),
        seed: opts.seed as i64,
        method: scoring.method().into(),
        params: config_params(cfg, &scorer_id),
    };
    let done = store.done(&proto)?;
    let uid = |c: &Choice| ds.users[c.user as usize].id.clone();
    let iid = |i: u32| ds.items[i as usize].id.clone();
    let units = pulse_rationale::stage::todo_units(ds, &choices, &done, cfg.group);
    let todo: usize = units.iter().map(Vec::len).sum();
    let mut summary = RunSummary {
        dataset: ds.name.clone(),
        model: model.name.clone(),
        model_sha256: model.key(),
        method: scoring.method().into(),
        scorer: scorer_id,
        seed: opts.seed,
        requested: choices.len(),
        already_stored: choices.len() - todo,
        ..Default::default()
    };
    let mut prog = Progress { done: 0, total: todo, prompt_tokens: 0, new_tokens: 0 };
    progress(&prog);
    let none = Neighbours::new();
    let mut score_sum = 0.0;
    // Groups are fixed slices of the user order (not of what is left), and each starts from a clean engine
    // (see `Generator::reset`): a group is the unit that is committed and resumed from, so what it writes
    // depends only on its own users, and a run killed and resumed writes what an uninterrupted one writes.
    for group in units {
        gen.reset();
        let mut searches: Vec<Search> = group
            .iter()
            .map(|c| {
                let hist: Vec<&str> = c.history.iter().map(|&i| ds.items[i as usize].title.as_str()).collect();
                Search {
                    choice: c,
                    first: prompt(ds, c, neighbours.get(&c.user).unwrap_or(&none), cfg, &[]),
                    behaviour: pulse_thought::train::behaviour_text(&hist, &ds.items[c.target as usize].title),
                    negatives: negative_behaviours(ds, c, cfg.contrast_negatives, opts.seed),
                    beams: vec![(Vec::new(), usize::MAX, 0.0)],
                    nodes: Vec::new(),
                    prompt_tokens: 0,
                    new_tokens: 0,
                }
            })
            .collect();
        for depth in 1..=cfg.depth {
            // One request per (user, beam), `branching` samples each, all users of the group together.
            let mut owners = Vec::new();
            let mut requests = Vec::new();
            for (s, se) in searches.iter().enumerate() {
                let c = se.choice;
                let nb = neighbours.get(&c.user).unwrap_or(&none);
                for (b, (chain, _, _)) in se.beams.iter().enumerate() {
                    owners.push((s, b));
                    requests.push(GenRequest {
                        prompt: prompt(ds, c, nb, cfg, chain),
                        n: cfg.branching,
                        seed: node_seed(opts.seed, &uid(c), &iid(c.target), depth, b),
                        params: cfg.sampling.clone(),
                    });
                }
            }
            let t = Instant::now();
            let gens = gen.generate_all(&requests)?;
            summary.generate_seconds += t.elapsed().as_secs_f64();
            let mut children: Vec<Vec<(Vec<String>, usize)>> = vec![Vec::new(); searches.len()];
            for ((s, b), g) in owners.into_iter().zip(gens) {
                let se = &mut searches[s];
                let (chain, parent, _) = se.beams[b].clone();
                for x in g {
                    se.prompt_tokens += x.prompt_tokens;
                    se.new_tokens += x.new_tokens;
                    prog.prompt_tokens += x.prompt_tokens;
                    prog.new_tokens += x.new_tokens;
                    let text = clean_thought(&x.text);
                    let truncated = x.finish == pulse_slm::Finish::Length;
                    summary.thoughts += 1;
                    summary.thoughts_truncated += usize::from(truncated);
                    se.nodes.push(Node { depth, parent, text: text.clone(), score: f64::NAN, truncated });
                    let mut next = chain.clone();
                    next.push(text);
                    children[s].push((next, se.nodes.len() - 1));
                }
            }
            // All users' new chains judged in one call (the encoder batches them).
            let t = Instant::now();
            let chains: Vec<Vec<Vec<String>>> = children.iter().map(|kids| kids.iter().map(|k| k.0.clone()).collect()).collect();
            let jobs: Vec<ScoreJob> = searches
                .iter()
                .zip(&chains)
                .map(|(se, chains)| ScoreJob { behaviour: &se.behaviour, negatives: &se.negatives, first_prompt: &se.first, chains })
                .collect();
            let all_scores = scorer.score_all(gen, &jobs)?;
            drop(jobs);
            summary.score_seconds += t.elapsed().as_secs_f64();
            for ((se, kids), scores) in searches.iter_mut().zip(children).zip(all_scores) {
                let title = &ds.items[se.choice.target as usize].title;
                let mut ranked: Vec<(Vec<String>, usize, f64)> = kids
                    .into_iter()
                    .zip(scores)
                    .map(|((chain, node), sc)| {
                        let pen = if cfg.title_penalty > 0.0 { cfg.title_penalty * title_recall(&chain_text(&chain), title) } else { 0.0 };
                        (chain, node, sc - pen)
                    })
                    .collect();
                for (_, node, sc) in &ranked {
                    se.nodes[*node].score = *sc;
                }
                // Best first; ties keep sampling order.
                ranked.sort_by(|a, b| b.2.total_cmp(&a.2));
                ranked.truncate(if depth == cfg.depth { 1 } else { cfg.beam });
                se.beams = ranked;
            }
            progress(&prog);
        }
        for se in &searches {
            let (chain, node, sc) = &se.beams[0];
            let c = se.choice;
            let start = c.shown_from(&cfg.prompt);
            let text = chain_text(chain);
            let truncated = se.nodes[*node].truncated;
            let raw = serde_json::json!({ "chain": chain, "nodes": se.nodes }).to_string();
            let rec = Record {
                key: Key { user: uid(c), target: iid(c.target), ..proto.clone() },
                history: c.history[start..].iter().map(|&i| iid(i)).collect(),
                rationale: (!text.is_empty()).then_some(text),
                raw,
                status: if sc.is_finite() { if truncated { Status::Truncated } else { Status::Json } } else { Status::Raw },
                attempts: 1,
                prompt_tokens: se.prompt_tokens as i64,
                new_tokens: se.new_tokens as i64,
                finish: if truncated { "length".into() } else { "stop".into() },
                score: sc.is_finite().then_some(*sc),
                model_name: model.name.clone(),
                created_unix: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0),
            };
            store.insert(&rec)?;
            if sc.is_finite() {
                score_sum += sc;
            }
            summary.refined += 1;
            summary.prompt_tokens += se.prompt_tokens;
            summary.new_tokens += se.new_tokens;
            prog.done += 1;
        }
        progress(&prog);
    }
    summary.mean_score = if summary.refined > 0 { score_sum / summary.refined as f64 } else { 0.0 };
    summary.seconds = t0.elapsed().as_secs_f64();
    Ok(summary)
}

/// Similar users (method step 1): for each choice, the `k` users whose representations are closest by
/// cosine, and each one's `items` most recent training items. `reps[i]` belongs to `choices[i]`.
pub fn neighbours_from_reps(split: &Split, choices: &[Choice], reps: &[Vec<f32>], k: usize, items: usize, threads: usize) -> HashMap<u32, Neighbours> {
    let d = reps.first().map_or(0, |r| r.len());
    let flat: Vec<f32> = reps.concat();
    let top = pulse_thought::top_k_cosine(&flat, d, k, threads);
    let by_user: HashMap<u32, &pulse_data::SplitUser> = split.users.iter().map(|u| (u.user, u)).collect();
    choices
        .iter()
        .zip(top)
        .map(|(c, nb)| {
            let lists = nb
                .iter()
                .map(|&(j, _)| {
                    let other = &choices[j as usize];
                    let train = by_user.get(&other.user).map(|u| u.train.as_slice()).unwrap_or(&[]);
                    train[train.len().saturating_sub(items)..].to_vec()
                })
                .collect();
            (c.user, lists)
        })
        .collect()
}

#[cfg(test)]
mod tests;
