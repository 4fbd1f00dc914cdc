//! SFT data, the method's step 5: for a training user's explained choice (the last training item), the
//! last 5 titles, 10 candidates (the chosen item + 9 random items the user never touched, shuffled), and —
//! in the rationale variants — "Let me think: <rationale>. The recommendation is " before the answer, the
//! chosen title. The user turn holds history and candidates; the assistant turn starts with the thinking
//! prefix, and only the title carries a loss — or, with `reason_loss`, the rationale too (the assistant turn
//! opens "Let me think:" and everything after it is learned: the model learns to write its reasons, and
//! the ranker's `think` mode has it write them at test time).
//!
//! Every variant of one experiment sees the same users with the same candidates in the same order: only
//! the rationale differs, so the table's SFT rows compare rationales and nothing else.
use crate::{Example, Result, SftError};
use pulse_data::{Dataset, Rng, Split};
use pulse_rationale::prompt::clip;
use pulse_slm::{ChatMessage, LlamaEngine, Prompt};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

/// Bump when the wording changes (it is part of every adapter's fingerprint).
pub const SFT_PROMPT_VERSION: &str = "sft-v1";

/// Which rationale (if any) the training prompt shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Variant {
    /// No rationale ("plain SFT").
    Plain,
    /// The step-2 rationales ("SFT with reasons").
    Reasons,
    /// ToT rationales judged by the SLM's likelihood ("ToT with likelihood").
    TotLikelihood,
    /// ToT rationales judged by the Thought Space (PULSE).
    Pulse,
    /// A control, not a method row: the step-2 rationales of SFT with reasons, each given to another
    /// training user ([`derange`]), so every prompt carries a fluent rationale about someone else's choice.
    /// If it ranks like SFT with reasons, the rationale's content does not reach the ranker.
    ShuffledReasons,
}

impl Variant {
    pub const ALL: [Variant; 5] = [Variant::Plain, Variant::Reasons, Variant::TotLikelihood, Variant::Pulse, Variant::ShuffledReasons];

    /// The rationale store method it reads.
    pub fn method(self) -> Option<&'static str> {
        match self {
            Variant::Plain => None,
            Variant::Reasons | Variant::ShuffledReasons => Some("initial"),
            Variant::TotLikelihood => Some("tot-likelihood"),
            Variant::Pulse => Some("tot-space"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Variant::Plain => "plain",
            Variant::Reasons => "reasons",
            Variant::TotLikelihood => "tot-likelihood",
            Variant::Pulse => "pulse",
            Variant::ShuffledReasons => "shuffled-reasons",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SftPrompt {
    /// Most recent history titles shown.
    pub history: usize,
    /// Candidates shown (the chosen item among them).
    pub candidates: usize,
    /// Titles are cut to this many words.
    pub title_words: usize,
    /// Rationales are cut to this many words.
    pub rationale_words: usize,
    /// Replace the chosen item's title words in the rationale by "this item" ([`mask_title`]), so the
    /// answer cannot be copied from the rationale. Off by default (and then absent from the serialised
    /// form, so adapters trained before the option keep their fingerprints).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub mask_target: bool,
    /// Put the loss on the rationale as well as the title: the assistant turn opens "Let me think:" and
    /// " <rationale>. The recommendation is <title>" is all learned. The method (step 5) learns the title
    /// only; this teaches the model to write reasons, for the ranker's `think` mode. Rationale variants
    /// only (plain SFT has no rationale); off by default and then not serialised.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub reason_loss: bool,
}

impl Default for SftPrompt {
    fn default() -> Self {
        SftPrompt { history: 5, candidates: 10, title_words: 10, rationale_words: 60, mask_target: false, reason_loss: false }
    }
}

pub use pulse_rationale::words::content_words;

/// `rationale` with the words of `title` masked: every whitespace token whose content words all occur in
/// the title (and that has at least one) is masked, a run of masked tokens becomes "this item" (an article
/// right before it is dropped), and a masked run's trailing punctuation is kept.
pub fn mask_title(rationale: &str, title: &str) -> String {
    let tw: HashSet<String> = content_words(title).into_iter().collect();
    let masked = |tok: &str| {
        let w = content_words(tok);
        !w.is_empty() && w.iter().all(|x| tw.contains(x))
    };
    let mut out: Vec<String> = vec![];
    let mut in_run = false;
    for tok in rationale.split_whitespace() {
        if masked(tok) {
            let tail = &tok[tok.trim_end_matches(|c: char| !c.is_alphanumeric()).len()..];
            if in_run {
                let last = out.last_mut().expect("a run has a token");
                *last = format!("this item{tail}");
            } else {
                if out.last().is_some_and(|w| matches!(w.to_lowercase().as_str(), "the" | "a" | "an")) {
                    out.pop();
                }
                out.push(format!("this item{tail}"));
            }
            // a mention ending in punctuation closes the run: the next title word is a new mention
            in_run = tail.is_empty();
        } else {
            out.push(tok.to_string());
            in_run = false;
        }
    }
    out.join(" ")
}

/// One training text: the user turn, the assistant's opening (thinking prefix), and the answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SftItem {
    pub user: String,
    pub target: String,
    pub user_turn: String,
    pub prefix: String,
    /// With `reason_loss`: the rationale and "The recommendation is " (learned, before the answer).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    pub answer: String,
}

impl SftItem {
    /// The prompt as the engine feeds it: the user turn, then the assistant turn opened with the prefix.
    pub fn prompt(&self) -> Prompt {
        Prompt::Chat(vec![ChatMessage::user(self.user_turn.clone()), ChatMessage::assistant(self.prefix.clone())])
    }
}

/// An item's title as prompts and answers show it: clipped, and with `;` (the list separator) turned
/// into `,`.
pub fn title(ds: &Dataset, item: u32, words: usize) -> String {
    clip(&ds.items[item as usize].title, words).replace(';', ",")
}

/// The user turn: history and candidates, titles clipped.
pub fn user_turn(ds: &Dataset, history: &[u32], candidates: &[u32], title_words: usize) -> String {
    let t = |ids: &[u32]| ids.iter().map(|&i| title(ds, i, title_words)).collect::<Vec<_>>();
    user_turn_titles(&t(history), &t(candidates))
}

/// The user turn from titles as shown (training and the ranker's test prompt share it).
pub fn user_turn_titles(history: &[String], candidates: &[String]) -> String {
    format!("interacted items: {}\ncandidate items: {}", history.join("; "), candidates.join("; "))
}

/// How a rationale variant's assistant turn opens (the ranker's `think` mode opens the same way; the
/// space after it belongs to the rationale's first token).
pub const THINK_OPENING: &str = "Let me think:";

/// "Let me think: <rationale>. The recommendation is " (or just the last part without a rationale).
pub fn thinking_prefix(rationale: Option<&str>, words: usize) -> String {
    match rationale.map(|r| clip(r, words)) {
        Some(r) if !r.is_empty() => format!("{THINK_OPENING} {}. The recommendation is ", r.trim_end_matches(['.', ' '])),
        _ => "The recommendation is ".to_string(),
    }
}

/// `n - 1` distinct random items the user never interacted with, plus `target`, shuffled; seeded per user.
pub fn candidates(split: &Split, idx: usize, target: u32, n: usize, seed: u64, label: &str) -> Result<Vec<u32>> {
    let su = &split.users[idx];
    let seen: HashSet<u32> = su.train.iter().copied().chain([su.valid, su.test]).collect();
    if split.n_items < seen.len() + n {
        return Err(SftError::Invalid(format!("{} items cannot give {n} candidates to a user with {} items", split.n_items, seen.len())));
    }
    let mut rng = Rng::derive(seed, &format!("{label}/{}", su.user));
    let mut out = vec![target];
    let mut taken: HashSet<u32> = HashSet::new();
    while out.len() < n {
        let j = rng.below(split.n_items as u64) as u32;
        if !seen.contains(&j) && taken.insert(j) {
            out.push(j);
        }
    }
    rng.shuffle(&mut out);
    Ok(out)
}

/// The users an SFT experiment trains on: training users with an explained choice who have a rationale
/// in every map given (one per rationale variant), in split order, `max` of them chosen at random
/// (seeded) when there are more.
pub fn select_users(split: &Split, rationales: &[&BTreeMap<usize, String>], max: usize, seed: u64) -> Vec<usize> {
    let mut users: Vec<usize> = (0..split.users.len())
        .filter(|&i| split.users[i].train.len() >= 2 && rationales.iter().all(|m| m.contains_key(&i)))
        .collect();
    if users.len() > max {
        Rng::derive(seed, "sft-users").shuffle(&mut users);
        users.truncate(max);
        users.sort_unstable();
    }
    users
}

/// The rationales of `users` passed on: a seeded random order of the users, each given the rationale of
/// the next one in it (the last gets the first's), so nobody keeps their own and every rationale is used
/// once. Needs at least two users, each with a rationale in `rationales`.
pub fn derange(rationales: &BTreeMap<usize, String>, users: &[usize], seed: u64) -> Result<BTreeMap<usize, String>> {
    if users.len() < 2 {
        return Err(SftError::Invalid(format!("shuffled rationales need at least 2 users, got {}", users.len())));
    }
    let mut order = users.to_vec();
    Rng::derive(seed, "sft-derange").shuffle(&mut order);
    let mut out = BTreeMap::new();
    for (k, &u) in order.iter().enumerate() {
        let donor = order[(k + 1) % order.len()];
        let r = rationales.get(&donor).ok_or_else(|| SftError::Invalid(format!("no rationale for split user {donor}")))?;
        out.insert(u, r.clone());
    }
    Ok(out)
}

/// Training texts for `users` (split indices); `rationales` must hold one for each of them unless the
/// variant shows none.
pub fn build(
    ds: &Dataset,
    split: &Split,
    users: &[usize],
    rationales: Option<&BTreeMap<usize, String>>,
    o: &SftPrompt,
    seed: u64,
) -> Result<Vec<SftItem>> {
    let mut out = Vec::with_capacity(users.len());
    for &i in users {
        let su = &split.users[i];
        if su.train.len() < 2 {
            return Err(SftError::Invalid(format!("user {} has no explained choice", ds.users[su.user as usize].id)));
        }
        let n = su.train.len();
        let target = su.train[n - 1];
        let hist = &su.train[(n - 1).saturating_sub(o.history)..n - 1];
        let cands = candidates(split, i, target, o.candidates, seed, "sft-candidates")?;
        let rationale = match rationales {
            None => None,
            Some(m) => Some(m.get(&i).ok_or_else(|| {
                SftError::Invalid(format!("no rationale for user {}", ds.users[su.user as usize].id))
            })?),
        };
        let rationale = rationale.map(|r| if o.mask_target { mask_title(r, &ds.items[target as usize].title) } else { r.clone() });
        let mut prefix = thinking_prefix(rationale.as_deref(), o.rationale_words);
        let mut reason = String::new();
        if o.reason_loss && prefix.starts_with(THINK_OPENING) {
            reason = prefix.split_off(THINK_OPENING.len());
        }
        out.push(SftItem {
            user: ds.users[su.user as usize].id.clone(),
            target: ds.items[target as usize].id.clone(),
            user_turn: user_turn(ds, hist, &cands, o.title_words),
            prefix,
            reason,
            answer: title(ds, target, o.title_words),
        });
    }
    Ok(out)
}

/// Token ids as the engine feeds them: prompt tokens (chat template) + the learned tokens (the reason's,
/// if any, then the answer's — each tokenized on its own, as the ranker scores a title after a prompt).
pub fn tokenize(items: &[SftItem], engine: &LlamaEngine, max_tokens: usize) -> Result<Vec<Example>> {
    items
        .iter()
        .map(|it| {
            let mut tokens = engine.prompt_tokens(&it.prompt()).map_err(|e| SftError::Invalid(e.to_string()))?;
            let answer_start = tokens.len();
            if !it.reason.is_empty() {
                tokens.extend(engine.continuation_tokens(&it.reason));
            }
            tokens.extend(engine.continuation_tokens(&it.answer));
            if tokens.len() > max_tokens {
                return Err(SftError::Invalid(format!(
                    "user {}: {} tokens > max_tokens {max_tokens} (shorten titles / rationales)",
                    it.user,
                    tokens.len()
                )));
            }
            if tokens.len() == answer_start {
                return Err(SftError::Invalid(format!("user {}: empty answer", it.user)));
            }
            Ok(Example { tokens, answer_start })
        })
        .collect()
}
