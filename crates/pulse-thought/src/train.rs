//! `pulse thought train`: the Thought Space from the rationale store. Pairs are (rationale, behaviour)
//! where behaviour = "[CONTEXT] History: <titles> [CHOSEN_ITEM] <title>" (method step 3); a seeded
//! held-out set of users measures rationale ↔ behaviour retrieval for the untrained (identity heads =
//! frozen encoder) and the trained space.

use std::collections::HashMap;
use std::path::Path;

use candle_core::Tensor;
use pulse_data::{Dataset, Rng};
use pulse_rationale::{prompt::clip, Store};
use serde::Serialize;

use crate::cache::EmbeddingCache;
use crate::encoder::SentenceEncoder;
use crate::error::{Result, ThoughtError};
use crate::space::{item_retrieval, retrieval, Retrieval, SpaceConfig, ThoughtSpace};

/// History titles B reads (the most recent ones).
pub const BEHAVIOUR_HISTORY: usize = 5;
/// Words kept per history title and for the chosen title: the whole text must fit the encoder's
/// 128-token window, or the chosen item — last in the text — is silently cut off.
pub const BEHAVIOUR_TITLE_WORDS: usize = 10;
pub const BEHAVIOUR_CHOSEN_WORDS: usize = 20;

/// The behaviour text B reads: "[CONTEXT] History: <last 5 titles> [CHOSEN_ITEM] <title>", titles clipped so
/// the chosen item always lies inside the encoder's window.
pub fn behaviour_text(history: &[&str], chosen: &str) -> String {
    let start = history.len().saturating_sub(BEHAVIOUR_HISTORY);
    let hist: Vec<String> = history[start..].iter().map(|t| clip(t, BEHAVIOUR_TITLE_WORDS)).collect();
    format!("[CONTEXT] History: {} [CHOSEN_ITEM] {}", hist.join("; "), clip(chosen, BEHAVIOUR_CHOSEN_WORDS))
}

/// `k` distinct items `user` never interacted with (train, validation or test), nor `target`, uniform over
/// the catalogue from `rng` (fewer when the catalogue runs out): the negatives that share a choice's history.
pub fn untouched_items(ds: &Dataset, user: &pulse_data::User, target: u32, k: usize, rng: &mut Rng) -> Vec<u32> {
    let seen: std::collections::HashSet<u32> = user.events.iter().map(|e| e.item).chain([target]).collect();
    let free = ds.items.len().saturating_sub(seen.len());
    let mut picked: Vec<u32> = Vec::new();
    while picked.len() < k.min(free) {
        let j = rng.below(ds.items.len() as u64) as u32;
        if !seen.contains(&j) && !picked.contains(&j) {
            picked.push(j);
        }
    }
    picked
}

/// One usable rationale of the store: its choice, its text, the behaviour text B reads, and (with k
/// same-history negatives) the same history with k other items chosen.
#[derive(Debug, Clone)]
pub struct Pair {
    pub user: String,
    pub target: String,
    pub rationale: String,
    pub behaviour: String,
    pub negatives: Vec<String>,
}

/// The store's usable `method` rationales for `ds` as pairs, in store order. With `k` > 0 each pair gets k
/// same-history negatives, drawn per choice from `seed` alone ("thought-negatives|user|target"), so training
/// and a later [`evaluate_on_store`] with the same seed draw the same ones; a choice with fewer than k
/// untouched items left is skipped.
pub fn store_pairs(store: &Store, method: &str, ds: &Dataset, k: usize, seed: u64) -> Result<Vec<Pair>> {
    let titles: HashMap<&str, &str> = ds.items.iter().map(|it| (it.id.as_str(), it.title.as_str())).collect();
    let item_ix: HashMap<&str, u32> = ds.items.iter().enumerate().map(|(i, it)| (it.id.as_str(), i as u32)).collect();
    let users: HashMap<&str, &pulse_data::User> = ds.users.iter().map(|u| (u.id.as_str(), u)).collect();
    let mut pairs = Vec::new();
    for r in store.records(Some(method))?.iter().filter(|r| r.key.dataset == ds.name) {
        let Some(rat) = &r.rationale else { continue };
        let hist: Vec<&str> = r.history.iter().filter_map(|h| titles.get(h.as_str()).copied()).collect();
        let Some(chosen) = titles.get(r.key.target.as_str()) else { continue };
        let mut negatives = Vec::new();
        if k > 0 {
            let Some(user) = users.get(r.key.user.as_str()) else { continue };
            let mut rng = Rng::derive(seed, &format!("thought-negatives|{}|{}", r.key.user, r.key.target));
            negatives = untouched_items(ds, user, item_ix[r.key.target.as_str()], k, &mut rng)
                .into_iter()
                .map(|j| behaviour_text(&hist, &ds.items[j as usize].title))
                .collect();
            if negatives.len() < k {
                continue;
            }
        }
        pairs.push(Pair {
            user: r.key.user.clone(),
            target: r.key.target.clone(),
            rationale: rat.clone(),
            behaviour: behaviour_text(&hist, chosen),
            negatives,
        });
    }
    Ok(pairs)
}

/// The pairs' embeddings: rationales, behaviours, and each pair's k negatives.
type Embedded = (Vec<Vec<f32>>, Vec<Vec<f32>>, Vec<Vec<Vec<f32>>>);

fn embed(pairs: &[Pair], k: usize, enc: &SentenceEncoder, cache: &mut EmbeddingCache) -> Result<Embedded> {
    let rtexts: Vec<&str> = pairs.iter().map(|p| p.rationale.as_str()).collect();
    let btexts: Vec<&str> = pairs.iter().map(|p| p.behaviour.as_str()).collect();
    let ntexts: Vec<&str> = pairs.iter().flat_map(|p| p.negatives.iter().map(String::as_str)).collect();
    let er = cache.get_or_encode(enc, &rtexts, 32)?;
    let eb = cache.get_or_encode(enc, &btexts, 32)?;
    let en = cache.get_or_encode(enc, &ntexts, 32)?.chunks(k.max(1)).map(<[Vec<f32>]>::to_vec).collect();
    cache.save()?;
    Ok((er, eb, en))
}

/// Rationale ↔ behaviour retrieval among `pool` in space `s`, and "which item" among each pair's
/// negatives when there are any.
fn measure(s: &ThoughtSpace, er: &[Vec<f32>], eb: &[Vec<f32>], en: &[Vec<Vec<f32>>], pool: usize, seed: u64) -> Result<(Retrieval, Option<Retrieval>)> {
    let (r, b) = (s.apply(er, true)?, s.apply(eb, false)?);
    let all = retrieval(&r, &b, pool, seed);
    if en.iter().all(Vec::is_empty) {
        return Ok((all, None));
    }
    let neg = en.iter().map(|rows| s.apply(rows, false)).collect::<Result<Vec<_>>>()?;
    Ok((all, Some(item_retrieval(&r, &b, &neg))))
}

#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    pub dataset: String,
    pub encoder: String,
    pub pairs_train: usize,
    pub pairs_heldout: usize,
    pub untrained: Retrieval,
    pub trained: Retrieval,
    /// With `history_negatives` = k: each held-out rationale ranking its behaviour among k same-history
    /// negatives (the same history, other items chosen), untrained and trained.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item_untrained: Option<Retrieval>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item_trained: Option<Retrieval>,
    pub epoch_losses: Vec<f64>,
    pub config: SpaceConfig,
    pub seed: u64,
    pub seconds: f64,
    /// The held-out choices (user, target), written by [`save`] as heldout.tsv so that
    /// [`evaluate_on_store`] can keep to them.
    #[serde(skip)]
    pub held_out: Vec<(String, String)>,
}

/// Train on the store's `method` rationales for `ds` (usable ones only) and evaluate on `holdout` users.
pub fn train_from_store(
    store: &Store,
    method: &str,
    ds: &Dataset,
    enc: &SentenceEncoder,
    cache: &mut EmbeddingCache,
    cfg: &SpaceConfig,
    holdout: usize,
    seed: u64,
) -> Result<(ThoughtSpace, TrainReport)> {
    let t0 = std::time::Instant::now();
    let k = cfg.history_negatives;
    let mut pairs = store_pairs(store, method, ds, k, seed)?;
    if pairs.len() < holdout + 2 {
        return Err(ThoughtError::File {
            path: store.path().to_path_buf(),
            msg: format!("{} usable {method} rationales for {}: need more than the {holdout} held out", pairs.len(), ds.name),
        });
    }
    Rng::derive(seed, "thought-holdout").shuffle(&mut pairs);
    let (er, eb, en) = embed(&pairs, k, enc, cache)?;
    let (test_r, train_r) = er.split_at(holdout);
    let (test_b, train_b) = eb.split_at(holdout);
    let pool = 100.min(holdout);
    let ident = ThoughtSpace::identity(enc.dim(), candle_core::DType::F32)?;
    let (test_n, train_n) = en.split_at(if k > 0 { holdout } else { 0 });
    let (untrained, item_untrained) = measure(&ident, test_r, test_b, test_n, pool, seed)?;
    let (space, losses) = ThoughtSpace::train_with(train_r, train_b, (k > 0).then_some(train_n), cfg, seed)?;
    let (trained, item_trained) = measure(&space, test_r, test_b, test_n, pool, seed)?;
    let report = TrainReport {
        dataset: ds.name.clone(),
        encoder: enc.id().to_string(),
        pairs_train: train_r.len(),
        pairs_heldout: holdout,
        untrained,
        trained,
        item_untrained,
        item_trained,
        epoch_losses: losses,
        config: cfg.clone(),
        seed,
        seconds: t0.elapsed().as_secs_f64(),
        held_out: pairs[..holdout].iter().map(|p| (p.user.clone(), p.target.clone())).collect(),
    };
    Ok((space, report))
}

/// Save the heads (safetensors, via a temporary file + rename) with the config next to them, and the
/// held-out choices as heldout.tsv (user, target).
pub fn save(space: &ThoughtSpace, report: &TrainReport, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let (wr, wb) = space.weights()?;
    let tensors: HashMap<String, Tensor> = [("wr".to_string(), wr), ("wb".to_string(), wb)].into();
    let tmp = dir.join("space.safetensors.tmp");
    candle_core::safetensors::save(&tensors, &tmp)?;
    std::fs::rename(&tmp, dir.join("space.safetensors"))?;
    let tmp = dir.join("report.json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(report).expect("report serialises"))?;
    std::fs::rename(&tmp, dir.join("report.json"))?;
    let tmp = dir.join("heldout.tsv.tmp");
    std::fs::write(&tmp, report.held_out.iter().map(|(u, t)| format!("{u}\t{t}\n")).collect::<String>())?;
    std::fs::rename(&tmp, dir.join("heldout.tsv"))?;
    Ok(())
}

/// The held-out choices a space folder's heldout.tsv lists (written by [`save`]).
pub fn load_held_out(dir: &Path) -> Result<std::collections::HashSet<(String, String)>> {
    let path = dir.join("heldout.tsv");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| ThoughtError::File { path: path.clone(), msg: format!("{e} (spaces trained before heldout.tsv existed: train again, same seed)") })?;
    text.lines()
        .enumerate()
        .map(|(i, l)| match l.split_once('\t') {
            Some((u, t)) if !u.is_empty() && !t.is_empty() && !t.contains('\t') => Ok((u.to_string(), t.to_string())),
            _ => Err(ThoughtError::File { path: path.clone(), msg: format!("line {}: expected USER<TAB>TARGET", i + 1) }),
        })
        .collect()
}

/// A trained space measured on a store's rationales: rationale ↔ behaviour retrieval and, with
/// negatives, "which item", for the frozen encoder and for the space, over every usable pair (or only
/// the choices in `only`).
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub dataset: String,
    pub method: String,
    pub encoder: String,
    pub pairs: usize,
    pub history_negatives: usize,
    pub held_out_only: bool,
    pub frozen: Retrieval,
    pub space: Retrieval,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item_frozen: Option<Retrieval>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item_space: Option<Retrieval>,
    pub seed: u64,
}

/// Measure `space` on the store's `method` rationales for `ds` (pool of 100 or all pairs if fewer), with
/// `k` same-history negatives drawn as training draws them for `seed`; `only` keeps those choices.
#[allow(clippy::too_many_arguments)]
pub fn evaluate_on_store(
    store: &Store,
    method: &str,
    ds: &Dataset,
    enc: &SentenceEncoder,
    cache: &mut EmbeddingCache,
    space: &ThoughtSpace,
    k: usize,
    only: Option<&std::collections::HashSet<(String, String)>>,
    seed: u64,
) -> Result<EvalReport> {
    let mut pairs = store_pairs(store, method, ds, k, seed)?;
    if let Some(keep) = only {
        pairs.retain(|p| keep.contains(&(p.user.clone(), p.target.clone())));
    }
    if pairs.len() < 2 {
        return Err(ThoughtError::File {
            path: store.path().to_path_buf(),
            msg: format!("{} usable {method} rationales for {}{}: need at least 2", pairs.len(), ds.name, if only.is_some() { " among the held-out choices" } else { "" }),
        });
    }
    let (er, eb, en) = embed(&pairs, k, enc, cache)?;
    let pool = 100.min(pairs.len());
    let ident = ThoughtSpace::identity(enc.dim(), candle_core::DType::F32)?;
    let (frozen, item_frozen) = measure(&ident, &er, &eb, &en, pool, seed)?;
    let (trained, item_space) = measure(space, &er, &eb, &en, pool, seed)?;
    Ok(EvalReport {
        dataset: ds.name.clone(),
        method: method.to_string(),
        encoder: enc.id().to_string(),
        pairs: pairs.len(),
        history_negatives: k,
        held_out_only: only.is_some(),
        frozen,
        space: trained,
        item_frozen,
        item_space,
        seed,
    })
}

/// Load a space saved by [`save`]; the encoder that reads texts into it must be the one it was trained on.
pub fn load(dir: &Path, enc: &SentenceEncoder) -> Result<ThoughtSpace> {
    let bad = |msg: String| ThoughtError::File { path: dir.to_path_buf(), msg };
    let report = std::fs::read_to_string(dir.join("report.json")).map_err(|e| bad(format!("report.json: {e}")))?;
    let v: serde_json::Value = serde_json::from_str(&report).map_err(|e| bad(format!("report.json: {e}")))?;
    let trained_on = v.get("encoder").and_then(|e| e.as_str()).unwrap_or("");
    if trained_on != enc.id() {
        return Err(bad(format!("space was trained on encoder {trained_on}, not the loaded {}", enc.id())));
    }
    let t = candle_core::safetensors::load(dir.join("space.safetensors"), &candle_core::Device::Cpu)
        .map_err(|e| bad(format!("space.safetensors: {e}")))?;
    let (Some(wr), Some(wb)) = (t.get("wr"), t.get("wb")) else {
        return Err(bad("space.safetensors: tensors wr and wb expected".into()));
    };
    if wr.dims() != [enc.dim(), enc.dim()] || wb.dims() != [enc.dim(), enc.dim()] {
        return Err(bad(format!("space.safetensors: heads {:?}/{:?}, encoder dimension {}", wr.dims(), wb.dims(), enc.dim())));
    }
    ThoughtSpace::from_weights(wr, wb)
}
