//! `pulse fit`: trains the serving stack on a dataset and writes a bundle (pulse-recommend's format):
//! PULSE-TS (SASRec over item IDs + item texts, aligned with the users' rationales in the Thought Space
//! when `[pulse_ts]` names a rationale store and a space; without them the same model without the
//! alignment term, "pulse-ts-norat"), the content, item-KNN, lexical and popularity parts, and the
//! hybrid's weights tuned on validation candidate lists. Training checkpoints under runs/ (a killed fit
//! resumes there); the bundle is written to `<out>.partial/` and moved into place when complete, after
//! the served scores have been checked against the trained models'.
use crate::eval::{item_texts, load_data, sample_users, train_text_model, DataSpec, TsConfig};
use crate::opts::ModelArg;
use anyhow::{bail, Context, Result};
use pulse_baselines::SasRecConfig;
use pulse_eval::Recommender;
use pulse_recommend::bundle::{Array, BundleWriter, DatasetInfo, Manifest};
use pulse_recommend::engine::{CatalogueItem, KnnSettings, ProfileSettings, Settings, UserRow};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TuneSection {
    pub tune_candidates: usize,
    pub tune_users: usize,
    pub grid_step: f32,
}

impl Default for TuneSection {
    fn default() -> Self {
        TuneSection { tune_candidates: 20, tune_users: 5000, grid_step: 0.05 }
    }
}

/// A fit config (TOML). Every section is optional; `--data` overrides `[data]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FitConfig {
    pub name: Option<String>,
    pub seed: u64,
    pub data: Option<DataSpec>,
    pub sasrec: SasRecConfig,
    pub pulse_ts: TsConfig,
    pub hybrid: TuneSection,
    pub content: ProfileSettings,
    pub itemknn: KnnSettings,
    pub lexical: ProfileSettings,
}

impl Default for FitConfig {
    /// Quick settings: PULSE-TS trains at most 20 epochs (patience 3), as in the quickstart experiment.
    fn default() -> Self {
        FitConfig {
            name: None,
            seed: 42,
            data: None,
            sasrec: SasRecConfig { max_epochs: 20, patience: 3, ..SasRecConfig::default() },
            pulse_ts: TsConfig::default(),
            hybrid: TuneSection::default(),
            content: ProfileSettings { last: 10, decay: 0.8 },
            itemknn: KnnSettings { window: 5, last: 10, decay: 0.8 },
            lexical: ProfileSettings { last: 10, decay: 0.8 },
        }
    }
}

pub struct FitOptions {
    pub config: Option<PathBuf>,
    pub data: Option<PathBuf>,
    pub out: PathBuf,
    pub quiet: bool,
}

fn git_commit() -> Option<String> {
    let o = std::process::Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).output().ok()?;
    o.status.success().then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// Peak resident memory of this process so far (Linux VmHWM), in MB.
pub fn peak_rss_mb() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let l = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    Some(l.split_whitespace().nth(1)?.parse::<f64>().ok()? / 1024.0)
}

pub fn fit(o: &FitOptions) -> Result<Vec<String>> {
    let t0 = Instant::now();
    let mut c: FitConfig = match &o.config {
        Some(p) => crate::util::read_toml(p)?,
        None => FitConfig::default(),
    };
    if let Some(d) = &o.data {
        c.data = Some(DataSpec { path: d.clone(), format: Default::default(), interactions_file: None, dedup: false, kcore: 0 });
    }
    let Some(spec) = c.data.clone() else { bail!("no data: pass --data DIR (or [data] path in --config)") };
    if c.content.last == 0 || c.lexical.last == 0 || c.itemknn.last == 0 || c.itemknn.window == 0 {
        bail!("[content] / [itemknn] / [lexical]: last and window must be ≥ 1");
    }
    let l = load_data(&spec)?;
    let kind = if c.pulse_ts.store.is_some() && c.pulse_ts.space.is_some() { ModelArg::PulseTs } else { ModelArg::PulseTsNorat };
    let seq_name = if kind == ModelArg::PulseTs { "pulse-ts" } else { "pulse-ts-norat" };
    tracing::info!("fit: {seq_name} on {} ({} items, {} users)", l.ds.name, l.ds.n_items(), l.split.users.len());
    let t_train = Instant::now();
    let (seq, seq_config, seq_meta) = train_text_model(kind, &l, &c.sasrec, &c.pulse_ts, c.seed, None, o.quiet)?;
    let train_s = t_train.elapsed().as_secs_f64();
    let (_, text, _) = item_texts(&l, &c.pulse_ts)?;
    let content = pulse_baselines::Content::new(&text, c.content.last, c.content.decay)?;
    let knn = pulse_baselines::ItemKnn::fit(&l.split, c.itemknn.window, c.itemknn.last, c.itemknn.decay);
    let titles: Vec<&str> = l.ds.items.iter().map(|it| it.title.as_str()).collect();
    let lexical = pulse_baselines::Lexical::new(&titles, c.lexical.last, c.lexical.decay)?;
    let pop_fit = pulse_baselines::Pop::fit(&l.split);
    let pop_counts = pop_fit.counts().to_vec();
    let pop = pop_fit.log_scaled();
    let parts: Vec<&dyn Recommender> = vec![&seq, &content, &knn, &lexical, &pop];
    let names = vec![seq_name.to_string(), "content".into(), "itemknn".into(), "lexical".into(), "pop".into()];
    let t_tune = Instant::now();
    let users = sample_users(&l, c.hybrid.tune_users, c.seed);
    let mut report = pulse_eval::hybrid::tune(&parts, &l.split, &users, c.hybrid.tune_candidates, c.hybrid.grid_step, c.seed)?;
    report.parts = names.clone();
    let tune_s = t_tune.elapsed().as_secs_f64();
    tracing::info!("hybrid weights {:?} (validation HR@1 {:.4}; parts alone {:?})", report.weights, report.valid_hr1, report.part_hr1);

    // the bundle's files
    let mut w = BundleWriter::create(&o.out)?;
    let cat: Vec<CatalogueItem> = l.ds.items.iter().map(|it| CatalogueItem { id: it.id.clone(), title: it.title.clone(), asin: it.asin.clone() }).collect();
    w.put_json_lines("catalogue.jsonl", &cat)?;
    let urows: Vec<UserRow> = l.ds.users.iter().map(|u| UserRow { id: u.id.clone(), items: u.events.iter().map(|e| e.item).collect() }).collect();
    w.put_json_lines("users.jsonl", &urows)?;
    let (n, dim) = text.dims2()?;
    let rows: Vec<Vec<f32>> = text.to_vec2::<f32>()?;
    let xy: Vec<f32> = pulse_thought::pca::pca2(&rows).into_iter().flatten().collect();
    w.put_arrays("item_text.safetensors", &[("text", Array::f32(&[n, dim], rows.concat())), ("xy", Array::f32(&[n, 2], xy))])?;
    let d = seq.cfg.hidden;
    let mut arrays = vec![("items".to_string(), Array::f32(&[n, d], seq.item_embeddings()?))];
    for (name, t) in seq.tensors() {
        if name == "pos_emb" || name.starts_with('b') || name.starts_with("lnf") {
            let shape = t.dims().to_vec();
            arrays.push((name, Array::f32(&shape, t.flatten_all()?.to_vec1::<f32>()?)));
        }
    }
    arrays.sort_by(|a, b| a.0.cmp(&b.0));
    w.put_arrays("pulse_ts.safetensors", &arrays)?;
    w.put_arrays("neighbours.safetensors", &knn.core().bundle_arrays(pop_counts))?;
    let settings = Settings {
        sequence_model: seq_name.into(),
        heads: seq.cfg.heads,
        blocks: seq.cfg.blocks,
        gelu: seq.cfg.activation == pulse_baselines::Activation::Gelu,
        content: c.content,
        itemknn: c.itemknn,
        lexical: c.lexical,
        hybrid_parts: names.iter().map(|s| if s == "pulse-ts-norat" { "pulse-ts".to_string() } else { s.clone() }).collect(),
        hybrid_weights: report.weights.clone(),
    };
    let manifest = Manifest {
        format_version: 0,
        name: c.name.clone().unwrap_or_else(|| l.ds.name.clone()),
        created_at: crate::util::utc_now(),
        code_version: format!("pulse {}{}", env!("CARGO_PKG_VERSION"), git_commit().map(|g| format!(" ({g})")).unwrap_or_default()),
        seed: c.seed,
        dataset: DatasetInfo {
            name: l.ds.name.clone(),
            split_fingerprint: l.split.fingerprint.clone(),
            n_items: n,
            n_users: l.ds.users.len(),
            n_interactions: l.ds.n_interactions(),
        },
        models: serde_json::json!({
            "serving": settings,
            "config": c,
            "sequence": { "name": seq_name, "config": seq_config, "meta": seq_meta },
            "hybrid": report,
        }),
        files: Default::default(),
    };
    let sealed = w.seal(manifest)?;

    // the served scores must be the trained models' before the bundle goes into place
    let max_diff = match check_bundle(sealed.partial_dir(), &l, &[&seq, &content, &knn, &lexical, &pop]) {
        Ok(d) => d,
        Err(e) => {
            let p = sealed.partial_dir().display().to_string();
            sealed.discard();
            return Err(e.context(format!("{p}: the served scores differ from the trained models' (not installed)")));
        }
    };
    let manifest = sealed.commit()?;
    let bytes: u64 = manifest.files.values().map(|f| f.bytes).sum();
    Ok(vec![
        format!("bundle {} ({} files, {:.1} MB): {} items, {} users", o.out.display(), manifest.files.len() + 1, bytes as f64 / 1e6, n, l.ds.users.len()),
        format!(
            "{seq_name}: best validation NDCG@10 {:.4} at epoch {}; hybrid weights {} (validation HR@1 cand{} {:.3})",
            seq_meta["train"]["best_valid_ndcg10"].as_f64().unwrap_or(f64::NAN),
            seq_meta["train"]["best_epoch"],
            names.iter().zip(&report.weights).map(|(n, w)| format!("{n} {w:.2}")).collect::<Vec<_>>().join(", "),
            report.n_candidates,
            report.valid_hr1
        ),
        format!("served scores checked against the trained models on 64 users: max |difference| {max_diff:.2e}"),
        format!(
            "fit: {:.0} s (training {:.0} s this call, tuning {:.0} s), peak RSS {:.0} MB",
            t0.elapsed().as_secs_f64(),
            train_s,
            tune_s,
            peak_rss_mb().unwrap_or(f64::NAN)
        ),
    ])
}

/// Loads the bundle and compares its part scores with the trained models' on 64 users' validation
/// histories: the largest absolute difference (an error above 1e-3).
fn check_bundle(out: &Path, l: &crate::eval::Loaded, models: &[&dyn Recommender]) -> Result<f64> {
    let e = pulse_recommend::Engine::load(out).with_context(|| format!("{}: the bundle just written does not load", out.display()))?;
    let users = sample_users(l, 64, 7);
    let hist: Vec<Vec<u32>> = users.iter().map(|&u| l.split.users[u].train.clone()).collect();
    let refs: Vec<&[u32]> = hist.iter().map(|h| h.as_slice()).collect();
    let mut max = 0f64;
    for (pi, m) in models.iter().enumerate() {
        let want = m.score_all(&refs).map_err(|e| anyhow::anyhow!("{e}"))?;
        for (h, w) in hist.iter().zip(&want) {
            let got: Vec<f32> = match pi {
                0 => e.seq.scores(&e.seq.state(h).expect("histories are non-empty")),
                1 => e.content.scores(h),
                2 => e.knn.scores(h),
                3 => e.lexical.scores(h),
                _ => e.pop.counts.iter().map(|c| c.ln_1p()).collect(),
            };
            for (a, b) in got.iter().zip(w) {
                let diff = (*a as f64 - *b as f64).abs();
                if !(diff <= 1e-3) {
                    bail!("part {} ({}): {a} served, {b} trained", pi, m.name());
                }
                max = max.max(diff);
            }
        }
    }
    Ok(max)
}
