//! Who a request is for (a known user, catalogue ids, or typed titles) and the plain-text rendering of
//! an answer: what `pulse recommend` prints.
use crate::engine::{Engine, Recommendation};
use crate::{RecError, Result};

/// The history to recommend after.
#[derive(Clone, Debug)]
pub enum Who {
    /// A user of the bundle's dataset: their whole history.
    User(String),
    /// Catalogue item ids, oldest first.
    Ids(Vec<String>),
    /// `;`-separated titles, matched case- and punctuation-insensitively.
    Titles(String),
}

/// Limits every front end applies (the server answers 422 beyond them).
pub const MAX_K: usize = 100;
pub const MAX_HISTORY: usize = 200;

/// Item indices for `who` (oldest first); unknown users, ids or titles named in the error.
pub fn resolve(e: &Engine, who: &Who) -> Result<Vec<u32>> {
    let h = match who {
        Who::User(id) => match e.user(id) {
            Some(u) => u.items.clone(),
            None => return Err(RecError::Unknown(format!("unknown user {id:?}"))),
        },
        Who::Ids(ids) => e.items_by_id(ids)?,
        Who::Titles(t) => e.catalogue.match_titles(t)?,
    };
    if h.is_empty() {
        return Err(RecError::Invalid("the history is empty: give at least one item".into()));
    }
    Ok(h)
}

/// The most recent `MAX_HISTORY` items of a history (a known user's can be longer than a request may be).
pub fn clip_history(h: &[u32]) -> &[u32] {
    &h[h.len().saturating_sub(MAX_HISTORY)..]
}

fn short(t: &str, n: usize) -> String {
    if t.chars().count() <= n {
        t.to_string()
    } else {
        format!("{}…", t.chars().take(n - 1).collect::<String>().trim_end())
    }
}

/// The answer as text: the history (last five), then each item with its score, id and reason.
pub fn render(e: &Engine, history: &[u32], recs: &[Recommendation], model: &str) -> String {
    let mut s = String::new();
    let shown = &history[history.len().saturating_sub(5)..];
    s.push_str(&format!("history: {} item{}", history.len(), if history.len() == 1 { "" } else { "s" }));
    if shown.len() < history.len() {
        s.push_str(&format!(" (last {} shown)", shown.len()));
    }
    s.push('\n');
    for &i in shown {
        let it = &e.catalogue.items[i as usize];
        s.push_str(&format!("  · {} [{}]\n", short(&it.title, 90), it.id));
    }
    let source = recs.first().map_or("none", |r| r.evidence.source.name());
    s.push_str(&format!("top {} by {model} (evidence: {source}):\n", recs.len()));
    for r in recs {
        s.push_str(&format!("{:>3}. {} [{}]  score {:.3}\n", r.rank, short(&r.title, 90), r.id, r.score));
        s.push_str(&format!("     {}\n", r.reason));
    }
    s
}
