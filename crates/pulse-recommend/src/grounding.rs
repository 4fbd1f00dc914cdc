//! Is a written reason grounded in the evidence? The checks #71's grounded SLM reasons must pass before
//! they are stored or served, and the corpus-level diversity measures of explanation papers (PETER,
//! PEPLER): no judge model, only the catalogue's own words.
//!
//! A reason is checked against a [`Context`]: the explained item, the history, the cited history items
//! and their shared attributes. Words are compared normalised ([`crate::search::normalise`]). A *name*
//! is a word written as a name in the reason (capitalised, not at a sentence start; or in capitals) that
//! is distinctive in the catalogue (it occurs in at most `name_df` of the titles: a brand, a product
//! line) — the kind of word a reason must not invent. Lower-case words are not names: titles rarely
//! contain everyday words ("this", "quality"), so rarity alone would flag them.
use crate::search::normalise;
use std::collections::{HashMap, HashSet};

/// Document frequencies of the catalogue's title words.
pub struct Vocab {
    df: HashMap<String, u32>,
    n: u32,
}

impl Vocab {
    pub fn new<'a>(titles: impl IntoIterator<Item = &'a str>) -> Vocab {
        let mut df: HashMap<String, u32> = HashMap::new();
        let mut n = 0;
        for t in titles {
            n += 1;
            let words: HashSet<String> = words(t).into_iter().collect();
            for w in words {
                *df.entry(w).or_default() += 1;
            }
        }
        Vocab { df, n }
    }

    /// A catalogue word rare enough to name something: alphabetic, ≥ 3 letters, in at most `share` of
    /// the titles.
    pub fn is_name(&self, w: &str, share: f64) -> bool {
        w.chars().count() >= 3
            && w.chars().any(|c| c.is_alphabetic())
            && !NOT_NAMES.contains(&w)
            && self.df.get(w).is_some_and(|&d| (d as f64) <= share * self.n.max(1) as f64)
    }
}

fn words(s: &str) -> Vec<String> {
    normalise(s).split(' ').filter(|w| !w.is_empty()).map(String::from).collect()
}

pub struct Context<'a> {
    pub item_title: &'a str,
    pub history_titles: Vec<&'a str>,
    pub cited_titles: Vec<&'a str>,
    /// Shared attributes the evidence names (title terms, brand, category …).
    pub attributes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Failure {
    /// Mentions no cited item and no attribute.
    Ungrounded,
    /// Names something (a distinctive catalogue word) that is in neither the item, the history nor the
    /// evidence.
    Hallucination(Vec<String>),
    /// Copies the explained item's title wholesale (its longest shared run of words).
    TitleCopy(usize),
    /// Degenerate repetition: the share of repeated word trigrams.
    Repetition(f64),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Checked {
    /// The cited items' names and the attributes the reason mentions.
    pub mentions: Vec<String>,
    pub failures: Vec<Failure>,
}

impl Checked {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Thresholds {
    /// A name occurs in at most this share of the titles.
    pub name_df: f64,
    /// A copied run of at least this many title words (and at least `copy_share` of the title) is a copy.
    pub copy_words: usize,
    pub copy_share: f64,
    /// Above this share of repeated word trigrams, or any word four times in a row, a reason degenerates.
    pub repeat: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds { name_df: 0.01, copy_words: 5, copy_share: 0.8, repeat: 0.3 }
    }
}

/// Longest run of consecutive words `a` and `b` share.
fn longest_run(a: &[String], b: &[String]) -> usize {
    let mut best = 0;
    let mut prev = vec![0usize; b.len() + 1];
    for x in a {
        let mut cur = vec![0usize; b.len() + 1];
        for (j, y) in b.iter().enumerate() {
            if x == y {
                cur[j + 1] = prev[j] + 1;
                best = best.max(cur[j + 1]);
            }
        }
        prev = cur;
    }
    best
}

/// Everyday words that are never names, however they are written or rarely titles use them.
const NOT_NAMES: &[&str] = &[
    "the", "this", "that", "these", "those", "they", "their", "them", "there", "then", "than", "and", "but", "for", "with",
    "from", "into", "onto", "your", "you", "our", "its", "his", "her", "she", "him", "who", "what", "which", "when", "where",
    "why", "how", "all", "any", "each", "every", "both", "more", "most", "some", "such", "only", "also", "just", "very",
    "not", "can", "will", "would", "could", "should", "may", "might", "must", "has", "have", "had", "was", "were", "are",
    "been", "being", "one", "two", "three", "first", "next", "last", "new", "best", "top", "high", "great", "good", "made",
    "make", "item", "items", "product", "products", "brand", "brands", "shopper", "shoppers", "user", "users", "customer",
    "based", "because", "since", "while", "after", "before", "like", "well", "here", "now", "yes", "step", "note",
];

/// The reason's words written as names: capitalised and not the first word of a sentence, or in capitals
/// (two letters or more); normalised.
fn written_names(reason: &str) -> Vec<String> {
    let mut out = vec![];
    let mut sentence_start = true;
    for raw in reason.split_whitespace() {
        let core: &str = raw.trim_matches(|c: char| !c.is_alphanumeric());
        let caps = core.chars().filter(|c| c.is_alphabetic()).count() >= 2 && core.chars().all(|c| !c.is_lowercase());
        let capitalised = core.chars().next().is_some_and(char::is_uppercase);
        if !core.is_empty() && (caps || (capitalised && !sentence_start)) {
            out.extend(words(core));
        }
        if !core.is_empty() {
            sentence_start = raw.ends_with(['.', '!', '?', ':']);
        }
    }
    out
}

/// Share of repeated word trigrams (0 when fewer than two trigrams).
pub fn trigram_repeat_rate(w: &[String]) -> f64 {
    if w.len() < 4 {
        return 0.0;
    }
    let grams: Vec<&[String]> = w.windows(3).collect();
    let unique: HashSet<&[String]> = grams.iter().copied().collect();
    1.0 - unique.len() as f64 / grams.len() as f64
}

pub fn check(reason: &str, ctx: &Context, vocab: &Vocab, t: Thresholds) -> Checked {
    let rw = words(reason);
    let rset: HashSet<&str> = rw.iter().map(String::as_str).collect();
    let norm_reason = format!(" {} ", rw.join(" "));
    let mut mentions = vec![];
    // a cited item is mentioned by one of its names, or by two of its title's words in a row
    for c in &ctx.cited_titles {
        let cw = words(c);
        let named = cw.iter().find(|w| vocab.is_name(w, t.name_df) && rset.contains(w.as_str()));
        if let Some(w) = named {
            mentions.push(w.clone());
        } else if longest_run(&rw, &cw) >= 2 {
            mentions.push(c.to_string());
        }
    }
    for a in &ctx.attributes {
        let a = normalise(a);
        if !a.is_empty() && norm_reason.contains(&format!(" {a} ")) {
            mentions.push(a);
        }
    }
    let mut failures = vec![];
    if mentions.is_empty() {
        failures.push(Failure::Ungrounded);
    }
    let allowed: HashSet<String> = std::iter::once(ctx.item_title)
        .chain(ctx.history_titles.iter().copied())
        .chain(ctx.cited_titles.iter().copied())
        .flat_map(words)
        .chain(ctx.attributes.iter().flat_map(|a| words(a)))
        .collect();
    let mut invented: Vec<String> =
        written_names(reason).into_iter().filter(|w| vocab.is_name(w, t.name_df) && !allowed.contains(w)).collect();
    invented.sort();
    invented.dedup();
    if !invented.is_empty() {
        failures.push(Failure::Hallucination(invented));
    }
    let iw = words(ctx.item_title);
    let run = longest_run(&rw, &iw);
    if !iw.is_empty() && run >= t.copy_words && run as f64 >= t.copy_share * iw.len() as f64 {
        failures.push(Failure::TitleCopy(run));
    }
    let rate = trigram_repeat_rate(&rw);
    let stutter = rw.windows(4).any(|w| w.iter().all(|x| x == &w[0]));
    if rate > t.repeat || stutter {
        failures.push(Failure::Repetition(rate));
    }
    Checked { mentions, failures }
}

/// Unique sentence ratio: distinct reasons (normalised) over reasons.
pub fn usr(reasons: &[&str]) -> f64 {
    if reasons.is_empty() {
        return f64::NAN;
    }
    let u: HashSet<String> = reasons.iter().map(|r| normalise(r)).collect();
    u.len() as f64 / reasons.len() as f64
}

/// distinct-n: distinct word n-grams over all n-grams of the corpus.
pub fn distinct_n(reasons: &[&str], n: usize) -> f64 {
    let mut total = 0usize;
    let mut seen: HashSet<Vec<String>> = HashSet::new();
    for r in reasons {
        let w = words(r);
        for g in w.windows(n) {
            total += 1;
            seen.insert(g.to_vec());
        }
    }
    if total == 0 {
        f64::NAN
    } else {
        seen.len() as f64 / total as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab() -> Vocab {
        // 200 titles: "serum", "cream" and "oil" are common, brand words rare
        let mut t: Vec<String> = (0..196).map(|i| format!("Hydrating {} {i}", ["Serum", "Cream", "Oil"][i % 3])).collect();
        t.extend(["Mario Badescu Facial Spray", "Mario Badescu Drying Lotion", "Davines OI Oil", "COLOR WOW Dream Coat"].map(String::from));
        Vocab::new(t.iter().map(String::as_str))
    }

    fn ctx() -> Context<'static> {
        Context {
            item_title: "Mario Badescu Drying Lotion",
            history_titles: vec!["Mario Badescu Facial Spray", "Hydrating Serum 4"],
            cited_titles: vec!["Mario Badescu Facial Spray"],
            attributes: vec!["mario badescu".into()],
        }
    }

    #[test]
    fn a_reason_that_uses_the_evidence_passes() {
        let c = check("Another Mario Badescu treatment, after the facial spray you bought.", &ctx(), &vocab(), Thresholds::default());
        assert!(c.passed(), "{c:?}");
        assert!(c.mentions.contains(&"mario".to_string()) && c.mentions.contains(&"mario badescu".to_string()));
    }

    #[test]
    fn generic_invented_copied_and_stuttering_reasons_fail() {
        let (v, t) = (vocab(), Thresholds::default());
        let generic = check("This item fits the shopper's preferences.", &ctx(), &v, t);
        assert_eq!(generic.failures, vec![Failure::Ungrounded]);
        let invented = check("Like your Mario Badescu spray, Davines oil suits you.", &ctx(), &v, t);
        assert_eq!(invented.failures, vec![Failure::Hallucination(vec!["davines".into()])]);
        // a rare catalogue word written in lower case, or opening a sentence, is not a name
        let plain = check("Davines fans like it. Mario Badescu again, with davines nearby.", &ctx(), &v, t);
        assert!(plain.passed(), "{plain:?}");
        let caps = check("After your Mario Badescu spray: COLOR WOW next.", &ctx(), &v, t);
        assert_eq!(caps.failures, vec![Failure::Hallucination(vec!["color".into(), "wow".into()])]);
        let copy = check("Mario Badescu Drying Lotion is the Mario Badescu pick.", &Context { item_title: "Mario Badescu Drying Lotion Extra Strength", ..ctx() }, &v, t);
        assert!(copy.passed(), "4 of 6 title words in a row is not a copy: {copy:?}");
        let copy = check("Mario Badescu Drying Lotion Extra Strength for you, a Mario Badescu fan.", &Context { item_title: "Mario Badescu Drying Lotion Extra Strength", ..ctx() }, &v, t);
        assert!(copy.failures.contains(&Failure::TitleCopy(6)), "{copy:?}");
        let stutter = check("Mario Badescu 5. 5. 5. 5. 5.", &ctx(), &v, t);
        assert!(matches!(stutter.failures.as_slice(), [Failure::Repetition(_)]), "{stutter:?}");
    }

    #[test]
    fn diversity_measures() {
        let r = ["Same brand as your spray.", "same brand as your spray", "Bought with your serum."];
        assert!((usr(&r) - 2.0 / 3.0).abs() < 1e-12);
        // 1-grams: 5 + 5 + 4 = 14, distinct: same brand as your spray bought with serum = 8
        assert!((distinct_n(&r, 1) - 8.0 / 14.0).abs() < 1e-12);
        assert!(distinct_n(&[], 2).is_nan());
        assert_eq!(trigram_repeat_rate(&words("a b c a b c a b c")), 1.0 - 3.0 / 7.0);
    }
}
