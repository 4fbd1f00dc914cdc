//! `pulse thought train`: the Thought Space from the rationale store. Pairs are (rationale, behaviour)
//! where behaviour = "[CONTEXT] History: <titles> [CHOSEN_ITEM] <title>" (method step 3); a seeded
//! held-out set of users measures rationale ↔ behaviour retrieval for the untrained (identity heads =
//! frozen encoder) and the trained space.

use std::collections::HashMap;
use std::path::Path;

use candle_core::Tensor;
use pulse_data::{Dataset, Rng};
use pulse_rationale::Store;
use serde::Serialize;

use crate::cache::EmbeddingCache;
use crate::encoder::SentenceEncoder;
use crate::error::{Result, ThoughtError};
use crate::space::{retrieval, Retrieval, SpaceConfig, ThoughtSpace};

/// The behaviour text B reads.
pub fn behaviour_text(history: &[&str], chosen: &str) -> String {
    format!("[CONTEXT] History: {} [CHOSEN_ITEM] {}", history.join("; "), chosen)
}

#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    pub dataset: String,
    pub encoder: String,
    pub pairs_train: usize,
    pub pairs_heldout: usize,
    pub untrained: Retrieval,
    pub trained: Retrieval,
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
    let recs = store.records(Some(method))?;
    let mut pairs: Vec<(String, String)> = Vec::new();
    for r in recs.iter().filter(|r| r.key.dataset == ds.name) {
        let Some(rat) = &r.rationale else { continue };
        let hist: Vec<&str> = r.history.iter().filter_map(|h| titles.get(h.as_str()).copied()).collect();
        let Some(chosen) = titles.get(r.key.target.as_str()) else { continue };
        pairs.push((rat.clone(), behaviour_text(&hist, chosen)));
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
    let er = cache.get_or_encode(enc, &rtexts, 32)?;
    let eb = cache.get_or_encode(enc, &btexts, 32)?;
    cache.save()?;
    let (test_r, train_r) = er.split_at(holdout);
    let (test_b, train_b) = eb.split_at(holdout);
    let pool = 100.min(holdout);
    let ident = ThoughtSpace::identity(enc.dim(), candle_core::DType::F32)?;
    let untrained = retrieval(&ident.apply(test_r, true)?, &ident.apply(test_b, false)?, pool, seed);
    let (space, losses) = ThoughtSpace::train(train_r, train_b, cfg, seed)?;
    let trained = retrieval(&space.apply(test_r, true)?, &space.apply(test_b, false)?, pool, seed);
    let report = TrainReport {
        dataset: ds.name.clone(),
        encoder: enc.id().to_string(),
        pairs_train: train_r.len(),
        pairs_heldout: holdout,
        untrained,
        trained,
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
    let tensors: HashMap<String, Tensor> =
        [("wr".to_string(), space.wr.as_tensor().clone()), ("wb".to_string(), space.wb.as_tensor().clone())].into();
    let tmp = dir.join("space.safetensors.tmp");
    candle_core::safetensors::save(&tensors, &tmp)?;
    std::fs::rename(&tmp, dir.join("space.safetensors"))?;
    let tmp = dir.join("report.json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(report).expect("report serialises"))?;
    std::fs::rename(&tmp, dir.join("report.json"))?;
    Ok(())
}
