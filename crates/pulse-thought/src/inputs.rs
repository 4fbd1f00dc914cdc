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

/// Centres a catalogue's embeddings: subtracts their mean row, then scales each row back to unit length
/// (a zero row stays zero). Sentence embeddings of one domain's titles share a large common component
/// (every Video Games title sits near "a video game"); a model trained on one domain's directions and
/// applied to another's sees that offset as signal. Centring each catalogue on its own mean removes it
/// (a fixed form of the bias UniSRec's parametric whitening learns).
pub fn center_rows(rows: &mut [Vec<f32>]) {
    let Some(dim) = rows.first().map(Vec::len) else { return };
    let mut mean = vec![0f64; dim];
    for r in rows.iter() {
        assert_eq!(r.len(), dim, "center_rows: ragged rows");
        for (m, &x) in mean.iter_mut().zip(r) {
            *m += x as f64;
        }
    }
    let n = rows.len() as f64;
    mean.iter_mut().for_each(|m| *m /= n);
    for r in rows.iter_mut() {
        for (x, m) in r.iter_mut().zip(&mean) {
            *x = (*x as f64 - m) as f32;
        }
        let norm = r.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 1e-12 {
            r.iter_mut().for_each(|x| *x /= norm);
        }
    }
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

#[cfg(test)]
mod tests {
    use super::center_rows;

    #[test]
    fn centring_removes_the_common_component_and_keeps_unit_rows() {
        // three unit rows sharing a large component along the first axis
        let mut rows = vec![vec![0.8f32, 0.6, 0.0], vec![0.8, -0.6, 0.0], vec![0.8, 0.0, 0.6]];
        center_rows(&mut rows);
        // mean was (0.8, 0, 0.2): the first axis vanishes, each row is unit again
        for r in &rows {
            assert!(r[0].abs() < 1e-6, "{r:?}");
            assert!((r.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-5, "{r:?}");
        }
        // row 0 was (0, 0.6, -0.2) before scaling
        let want = [0.0, 0.6 / 0.4f32.sqrt(), -0.2 / 0.4f32.sqrt()];
        for (a, b) in rows[0].iter().zip(want) {
            assert!((a - b).abs() < 1e-5, "{:?} vs {want:?}", rows[0]);
        }
        // rows 0 and 1 had cosine 0.28 (0.64 - 0.36); without the shared part they point apart
        let dot: f32 = rows[0].iter().zip(&rows[1]).map(|(a, b)| a * b).sum();
        assert!(dot < 0.0, "{dot}");
        // identical rows centre to zero rows, which stay zero (no NaN)
        let mut same = vec![vec![0.6f32, 0.8], vec![0.6, 0.8]];
        center_rows(&mut same);
        assert!(same.iter().flatten().all(|x| *x == 0.0), "{same:?}");
        let mut empty: Vec<Vec<f32>> = vec![];
        center_rows(&mut empty);
    }
}
