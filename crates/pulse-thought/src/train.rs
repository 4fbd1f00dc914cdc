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
    let titles: HashMap<&str, &str> = ds.items.iter().map(|it| (it.id.as_str(), it.title.as_str())).collect();
    let item_ix: HashMap<&str, u32> = ds.items.iter().enumerate().map(|(i, it)| (it.id.as_str(), i as u32)).collect();
    let users: HashMap<&str, &pulse_data::User> = ds.users.iter().map(|u| (u.id.as_str(), u)).collect();
    let k = cfg.history_negatives;
    let recs = store.records(Some(method))?;
    // (rationale, behaviour, the same history with other items chosen)
    let mut pairs: Vec<(String, String, Vec<String>)> = Vec::new();
    for r in recs.iter().filter(|r| r.key.dataset == ds.name) {
        let Some(rat) = &r.rationale else { continue };
        let hist: Vec<&str> = r.history.iter().filter_map(|h| titles.get(h.as_str()).copied()).collect();
        let Some(chosen) = titles.get(r.key.target.as_str()) else { continue };
        let mut negs = Vec::new();
        if k > 0 {
            let Some(user) = users.get(r.key.user.as_str()) else { continue };
            let mut rng = Rng::derive(seed, &format!("thought-negatives|{}|{}", r.key.user, r.key.target));
            negs = untouched_items(ds, user, item_ix[r.key.target.as_str()], k, &mut rng)
                .into_iter()
                .map(|j| behaviour_text(&hist, &ds.items[j as usize].title))
                .collect();
            if negs.len() < k {
                continue;
            }
        }
        pairs.push((rat.clone(), behaviour_text(&hist, chosen), negs));
    }
    if pairs.len() < holdout + 2 {
        return Err(ThoughtError::File {
            path: store.path().to_path_buf(),
            msg: format!("{} usable {method} rationales for {}: need more than the {holdout} held out", pairs.len(), ds.name),
        });
    }
    Rng::derive(seed, "thought-holdout").shuffle(&mut pairs);
    let rtexts: Vec<&str> = pairs.iter().map(|p| p.0.as_str()).collect();
    let btexts: Vec<&str> = pairs.iter().map(|p| p.1.as_str()).collect();
    let ntexts: Vec<&str> = pairs.iter().flat_map(|p| p.2.iter().map(String::as_str)).collect();
    let er = cache.get_or_encode(enc, &rtexts, 32)?;
    let eb = cache.get_or_encode(enc, &btexts, 32)?;
    let en: Vec<Vec<Vec<f32>>> = cache.get_or_encode(enc, &ntexts, 32)?.chunks(k.max(1)).map(<[Vec<f32>]>::to_vec).collect();
    cache.save()?;
    let (test_r, train_r) = er.split_at(holdout);
    let (test_b, train_b) = eb.split_at(holdout);
    let pool = 100.min(holdout);
    let ident = ThoughtSpace::identity(enc.dim(), candle_core::DType::F32)?;
    let untrained = retrieval(&ident.apply(test_r, true)?, &ident.apply(test_b, false)?, pool, seed);
    let (test_n, train_n) = en.split_at(if k > 0 { holdout } else { 0 });
    let (space, losses) = ThoughtSpace::train_with(train_r, train_b, (k > 0).then_some(train_n), cfg, seed)?;
    let trained = retrieval(&space.apply(test_r, true)?, &space.apply(test_b, false)?, pool, seed);
    let items = |s: &ThoughtSpace| -> Result<Option<Retrieval>> {
        if k == 0 {
            return Ok(None);
        }
        let neg = test_n.iter().map(|rows| s.apply(rows, false)).collect::<Result<Vec<_>>>()?;
        Ok(Some(item_retrieval(&s.apply(test_r, true)?, &s.apply(test_b, false)?, &neg)))
    };
    let (item_untrained, item_trained) = (items(&ident)?, items(&space)?);
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
    };
    Ok((space, report))
}

/// Save the heads (safetensors, via a temporary file + rename) with the config next to them.
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
    Ok(())
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
