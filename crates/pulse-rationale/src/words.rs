//! Content words, and how much of an item's title a text restates: one definition for the SFT title
//! mask (`pulse_sft::data::mask_title`), ToT's title penalty and `research/scripts/rationale_overlap.py` (which reads
//! the stop list below from this file).

use std::collections::HashSet;

const STOP: [&str; 26] = [
    "the", "and", "for", "with", "from", "are", "this", "that", "its", "you", "your", "was", "were", "has", "have", "not", "but", "all", "can",
    "out", "one", "our", "who", "how", "any", "per",
];

/// The content words of a text: lower-cased alphanumeric runs of 3+ characters, minus a short stop list.
pub fn content_words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric()).filter(|w| w.chars().count() > 2).map(str::to_lowercase).filter(|w| !STOP.contains(&w.as_str())).collect()
}

/// The share of `title`'s distinct content words that occur in `text` (0 for a title without any).
pub fn title_recall(text: &str, title: &str) -> f64 {
    let tw: HashSet<String> = content_words(title).into_iter().collect();
    if tw.is_empty() {
        return 0.0;
    }
    let xw: HashSet<String> = content_words(text).into_iter().collect();
    tw.intersection(&xw).count() as f64 / tw.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recall_counts_distinct_title_words_found() {
        assert_eq!(content_words("The Rose-Lip balm, 2 oz"), vec!["rose", "lip", "balm"]);
        // title words {rose, lip, balm}: "rose" and "balm" occur (case and punctuation ignored)
        assert!((title_recall("A ROSE scented balm.", "The Rose-Lip balm, 2 oz") - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(title_recall("anything", "the 2 oz"), 0.0);
        assert_eq!(title_recall("", "Night Cream"), 0.0);
        assert_eq!(title_recall("cream for the night", "Night Cream"), 1.0);
    }
}
