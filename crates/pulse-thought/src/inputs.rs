//! What the text-based recommenders (text-only SASRec, PULSE-TS) read from the text side: one text per
//! item, embedded by the sentence encoder, and — for PULSE-TS — each explained choice's rationale placed
//! in the Thought Space by its R head.

use std::collections::HashMap;

use pulse_data::{Dataset, Split};
use pulse_rationale::{prompt::clip, Store};

use crate::cache::EmbeddingCache;
use crate::encoder::SentenceEncoder;
use crate::error::Result;
use crate::space::ThoughtSpace;

/// Words of the title and of the description kept in an item's text.
pub const ITEM_TITLE_WORDS: usize = 32;
pub const ITEM_DESCRIPTION_WORDS: usize = 32;

/// "<title>. <description start>" (the description only when the data has one).
pub fn item_text(it: &pulse_data::Item) -> String {
    let title = clip(&it.title, ITEM_TITLE_WORDS);
    match it.description.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
        Some(d) => format!("{title}. {}", clip(d, ITEM_DESCRIPTION_WORDS)),
        None => title,
    }
}

/// Every item's text embedding, row i = dataset item i (cached by text).
pub fn item_embeddings(ds: &Dataset, enc: &SentenceEncoder, cache: &mut EmbeddingCache) -> Result<Vec<Vec<f32>>> {
    let texts: Vec<String> = ds.items.iter().map(item_text).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let e = cache.get_or_encode(enc, &refs, 64)?;
    cache.save()?;
    Ok(e)
}

/// Rationale targets for PULSE-TS, keyed by split-user index: the first of `methods` the store has for
/// the user's explained choice (its last training item), embedded and projected by the space's R head.
/// Rows whose target is not the user's last training item (another split) are ignored. Returns the
/// targets and how many came from each method.
pub fn rationale_targets(
    store: &Store,
    methods: &[String],
    ds: &Dataset,
    split: &Split,
    enc: &SentenceEncoder,
    space: &ThoughtSpace,
    cache: &mut EmbeddingCache,
) -> Result<(HashMap<usize, Vec<f32>>, Vec<(String, usize)>)> {
    let (chosen, counts) = pulse_rationale::store::rationales_by_user(store, methods, ds, split)?;
    let keys: Vec<usize> = chosen.keys().copied().collect();
    let texts: Vec<&str> = keys.iter().map(|k| chosen[k].as_str()).collect();
    let e = cache.get_or_encode(enc, &texts, 32)?;
    cache.save()?;
    let projected = if e.is_empty() { Vec::new() } else { space.apply(&e, true)? };
    Ok((keys.into_iter().zip(projected).collect(), counts))
}
