//! The step-2 prompt: the user's history (titles; rating and review text when the data has them) and the
//! item actually chosen next, asking for a JSON object with one rationale of under 100 words. The assistant
//! turn is opened with `{"rationale": "` so even a 135M model answers in the format.

use pulse_data::{Dataset, Split};
use pulse_slm::ChatMessage;
use serde::{Deserialize, Serialize};

/// Bump when the wording changes: it is part of every stored rationale's key.
pub const PROMPT_VERSION: &str = "initial-v1";

/// The text the assistant turn starts with (part of the raw output the parser sees).
pub const ANSWER_PREFIX: &str = "{\"rationale\": \"";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PromptOptions {
    /// Most recent history items shown.
    pub max_history: usize,
    /// Titles are cut to this many words.
    pub title_words: usize,
    /// Review texts are cut to this many words (0 = not shown).
    pub review_words: usize,
    /// The chosen item's description is cut to this many words (0 = not shown).
    pub description_words: usize,
}

impl Default for PromptOptions {
    fn default() -> Self {
        PromptOptions { max_history: 10, title_words: 16, review_words: 30, description_words: 30 }
    }
}

/// One observed choice to explain: `history` then `target` (dataset item indices).
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    /// Index into `Dataset::users`.
    pub user: u32,
    pub history: Vec<u32>,
    /// Positions of the history items in the user's event list (for ratings / reviews).
    pub history_events: Vec<usize>,
    pub target: u32,
}

impl Choice {
    /// Index of the first history item the prompt shows (the most recent `max_history` are shown).
    pub fn shown_from(&self, o: &PromptOptions) -> usize {
        self.history.len().saturating_sub(o.max_history)
    }
}

/// The training choices of a split: for each user, the last training item explained from the items before
/// it (validation and test items are never shown). Users with fewer than two training items are skipped.
pub fn training_choices(split: &Split) -> (Vec<Choice>, usize) {
    let mut out = Vec::new();
    let mut skipped = 0;
    for su in &split.users {
        if su.train.len() < 2 {
            skipped += 1;
            continue;
        }
        let n = su.train.len();
        out.push(Choice {
            user: su.user,
            history: su.train[..n - 1].to_vec(),
            history_events: (0..n - 1).collect(),
            target: su.train[n - 1],
        });
    }
    (out, skipped)
}

/// Whitespace-normalised, cut to `words` words (with an ellipsis when cut).
pub fn clip(s: &str, words: usize) -> String {
    let w: Vec<&str> = s.split_whitespace().collect();
    if w.len() <= words {
        w.join(" ")
    } else {
        format!("{} …", w[..words].join(" "))
    }
}

pub fn messages(ds: &Dataset, c: &Choice, o: &PromptOptions) -> Vec<ChatMessage> {
    let user = &ds.users[c.user as usize];
    let start = c.shown_from(o);
    let mut lines = String::new();
    for (k, (&item, &ev)) in c.history.iter().zip(&c.history_events).enumerate().skip(start) {
        let it = &ds.items[item as usize];
        lines.push_str(&format!("{}. {}", k - start + 1, clip(&it.title, o.title_words)));
        if let Some(e) = user.events.get(ev) {
            if let Some(r) = e.rating {
                lines.push_str(&format!(" (rated {r}/5)"));
            }
            if let Some(rv) = e.review.as_deref().filter(|r| o.review_words > 0 && !r.trim().is_empty()) {
                lines.push_str(&format!(" — review: \"{}\"", clip(rv, o.review_words)));
            }
        }
        lines.push('\n');
    }
    let t = &ds.items[c.target as usize];
    let mut chosen = clip(&t.title, o.title_words);
    if o.description_words > 0 {
        if let Some(d) = t.description.as_deref().filter(|d| !d.trim().is_empty()) {
            chosen.push_str(&format!(" (description: {})", clip(d, o.description_words)));
        }
    }
    vec![
        ChatMessage::system(
            "You explain why a shopper chose an item. Reply with only a JSON object of the form \
             {\"rationale\": \"...\"}: one rationale of under 100 words about this shopper's tastes and needs.",
        ),
        ChatMessage::user(format!(
            "Items this shopper bought before, oldest first:\n{lines}\nThe item they chose next: {chosen}\n\n\
             Why does this choice fit the shopper? Answer in JSON."
        )),
        ChatMessage::assistant(ANSWER_PREFIX),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_normalises_and_cuts() {
        assert_eq!(clip("  a \n b\tc ", 5), "a b c");
        assert_eq!(clip("a b c d", 2), "a b …");
    }
}
