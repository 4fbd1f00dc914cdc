//! Evidence: which history items produced a recommendation's score, and through which part.
use serde::{Deserialize, Serialize};

/// Where a reason's attribution comes from.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum EvidenceSource {
    /// The hybrid's decomposable parts (content, item-KNN, lexical): each history item's exact share of
    /// those parts' standardised, weighted score. For the hybrid, that is the score being explained
    /// (plus popularity, which no history item causes); for PULSE-TS, supporting evidence computed for
    /// the k recommended items only (the fast path), not the sequence model's own attribution.
    Parts,
    /// The sequence model itself, by leaving each history item out and re-scoring (one forward pass per
    /// history item); for the hybrid, added to the parts' exact shares.
    LeaveOneOut,
}

impl EvidenceSource {
    pub fn name(self) -> &'static str {
        match self {
            EvidenceSource::Parts => "parts",
            EvidenceSource::LeaveOneOut => "leave-one-out",
        }
    }
}

/// One history item's share of a recommendation's score.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Cited {
    pub item: u32,
    pub id: String,
    pub title: String,
    /// Its total share (standardised score units), the sum of `by_part`.
    pub contribution: f32,
    /// Shares by part: "content", "itemknn", "lexical", "sequence" (only the non-zero ones).
    pub by_part: std::collections::BTreeMap<String, f32>,
    /// Times the two items were bought within item-KNN's window of each other in the training data.
    pub co_purchases: u32,
    /// Cosine of their text embeddings.
    pub text_similarity: f32,
    /// Title terms they share, the most distinctive first.
    pub shared_terms: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Evidence {
    pub source: EvidenceSource,
    /// The cited history items, largest share first (at most 3; only positive shares of at least a quarter
    /// of the largest).
    pub cited: Vec<Cited>,
    /// Training interactions with the recommended item (how many chose it).
    pub chosen_by: u32,
}

fn short(t: &str) -> String {
    let t = t.trim();
    if t.chars().count() <= 60 {
        t.to_string()
    } else {
        format!("{}…", t.chars().take(57).collect::<String>().trim_end())
    }
}

/// The reason as one sentence, from the evidence (plain text; a page escapes it). Cited items are
/// grouped by the part that credits them most: co-purchases, shared title terms, text similarity, or
/// (leave-one-out) the sequence model.
pub fn sentence(e: &Evidence) -> String {
    let quote = |c: &Cited| format!("“{}”", short(&c.title));
    let and = |v: Vec<String>| match v.len() {
        0 => String::new(),
        1 => v[0].clone(),
        _ => format!("{} and {}", v[..v.len() - 1].join(", "), v[v.len() - 1]),
    };
    let (mut bought, mut terms, mut similar, mut follows) = (vec![], vec![], vec![], vec![]);
    for c in &e.cited {
        let top = c.by_part.iter().max_by(|a, b| a.1.total_cmp(b.1)).map(|p| p.0.as_str()).unwrap_or("");
        match top {
            "itemknn" if c.co_purchases > 0 => bought.push(c),
            "lexical" if !c.shared_terms.is_empty() => terms.push(c),
            "sequence" => follows.push(c),
            _ => similar.push(c),
        }
    }
    let mut parts = vec![];
    if !bought.is_empty() {
        parts.push(format!(
            "bought together with {}",
            and(bought.iter().map(|c| format!("{} ({}×)", quote(c), c.co_purchases)).collect())
        ));
    }
    for c in terms {
        let t: Vec<String> = c.shared_terms.iter().take(2).map(|s| format!("“{s}”")).collect();
        parts.push(format!("shares {} with {}", t.join(" and "), quote(c)));
    }
    if !similar.is_empty() {
        parts.push(format!("described like {}", and(similar.iter().map(|c| quote(c)).collect())));
    }
    if !follows.is_empty() {
        parts.push(format!("follows on from {} in the history", and(follows.iter().map(|c| quote(c)).collect())));
    }
    let mut s = if parts.is_empty() {
        format!("Popular: chosen {} times in the training data", e.chosen_by)
    } else {
        let mut s = parts.join("; ");
        if let Some(f) = s.get_mut(0..1) {
            f.make_ascii_uppercase();
        }
        s
    };
    s.push('.');
    s
}
