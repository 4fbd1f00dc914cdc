//! Data loading, model construction (baselines, text models, PULSE-TS, the SLM ranker) and one protocol
//! run with its outputs: thin glue over pulse-data, pulse-eval and pulse-baselines.
use crate::opts::{DataArgs, FormatArg, LossArg, ModelArg, ProtocolArg};
pub use crate::util::{error_line, one_line, open_existing_store, read_json, read_toml, short_hash};
use anyhow::{bail, Context, Result};
use pulse_baselines::{Loss, Pop, SasRecConfig, TrainOptions};
use pulse_data::{Dataset, Format, LoadOptions, Split, Stage};
use pulse_eval::{bootstrap_mean, evaluate, metric_names, metrics_from_ranks, per_user_value, CandidateSet, EvalReport, Protocol, RankFile, Recommender};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A dataset reference as configs and reports record it (unknown keys are errors).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    pub path: PathBuf,
    #[serde(default)]
    pub format: Format,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interactions_file: Option<String>,
    #[serde(default)]
    pub dedup: bool,
    #[serde(default)]
    pub kcore: usize,
}

impl DataSpec {
    pub fn load_options(&self) -> LoadOptions {
        LoadOptions { format: self.format, interactions_file: self.interactions_file.clone(), dedup: self.dedup, kcore: self.kcore }
    }
}

impl From<&DataArgs> for DataSpec {
    fn from(a: &DataArgs) -> Self {
        DataSpec {
            path: a.data.clone(),
            format: match a.format {
                FormatArg::Auto => Format::Auto,
                FormatArg::Folder => Format::Folder,
                FormatArg::Recbole => Format::Recbole,
                FormatArg::Amazon => Format::Amazon,
            },
            interactions_file: a.interactions_file.clone(),
            dedup: a.dedup,
            kcore: a.kcore,
        }
    }
}

pub struct Loaded {
    pub ds: Dataset,
    pub split: Split,
    pub spec: DataSpec,
}

pub fn load_data(spec: &DataSpec) -> Result<Loaded> {
    let ds = pulse_data::load(&spec.path, &spec.load_options())?;
    let split = Split::leave_one_out(&ds);
    if split.users.is_empty() {
        bail!("{}: no user has the 3+ interactions the leave-one-out split needs", spec.path.display());
    }
    tracing::info!(
        "{}: {} users ({} too short for the split, dropped), {} items, {} interactions, {} empty titles",
        ds.name,
        split.users.len(),
        split.dropped_short,
        ds.n_items(),
        ds.n_interactions(),
        ds.report.empty_titles
    );
    Ok(Loaded { ds, split, spec: spec.clone() })
}

pub fn protocol(p: ProtocolArg, mask_history: bool) -> Protocol {
    match p {
        ProtocolArg::Full => Protocol::Full { mask_history },
        ProtocolArg::Cand5 => Protocol::Cand { n: 5 },
        ProtocolArg::Cand20 => Protocol::Cand { n: 20 },
    }
}

pub fn parse_protocol(s: &str, mask_history: bool) -> Result<Protocol> {
    Ok(match s {
        "full" => Protocol::Full { mask_history },
        "cand5" => Protocol::Cand { n: 5 },
        "cand20" => Protocol::Cand { n: 20 },
        _ => bail!("unknown protocol '{s}' (expected full, cand5 or cand20)"),
    })
}

pub fn parse_model(s: &str) -> Result<ModelArg> {
    Ok(match s {
        "pop" => ModelArg::Pop,
        "sasrec" => ModelArg::Sasrec,
        "text" => ModelArg::Text,
        "pulse-ts-norat" => ModelArg::PulseTsNorat,
        "pulse-ts" => ModelArg::PulseTs,
        "pulse-ts-text" => ModelArg::PulseTsText,
        "content" => ModelArg::Content,
        "itemknn" => ModelArg::Itemknn,
        "lexical" => ModelArg::Lexical,
        "slm" => ModelArg::Slm,
        _ => bail!("unknown model '{s}' (expected pop, sasrec, text, pulse-ts-norat, pulse-ts, pulse-ts-text, content, itemknn, lexical or slm)"),
    })
}

pub fn model_name(m: ModelArg) -> &'static str {
    match m {
        ModelArg::Pop => "pop",
        ModelArg::Sasrec => "sasrec",
        ModelArg::Text => "text",
        ModelArg::PulseTsNorat => "pulse-ts-norat",
        ModelArg::PulseTs => "pulse-ts",
        ModelArg::PulseTsText => "pulse-ts-text",
        ModelArg::Content => "content",
        ModelArg::Itemknn => "itemknn",
        ModelArg::Lexical => "lexical",
        ModelArg::Slm => "slm",
    }
}

/// Reads `[sasrec]` from a TOML file (unknown keys are errors) and applies CLI overrides.
pub fn sasrec_config(file: Option<&Path>, loss: Option<LossArg>, max_epochs: Option<usize>) -> Result<SasRecConfig> {
    #[derive(Deserialize, Default)]
    struct File {
        #[serde(default)]
        sasrec: Option<SasRecConfig>,
        #[serde(default, rename = "pulse_ts")]
        _pulse_ts: Option<toml::Value>,
    }
    let mut cfg = match file {
        Some(p) => read_toml::<File>(p)?.sasrec.unwrap_or_default(),
        None => SasRecConfig::default(),
    };
    if let Some(l) = loss {
        cfg.loss = match l {
            LossArg::Ce => Loss::Ce,
            LossArg::Bce => Loss::Bce,
            LossArg::Sampled => Loss::Sampled,
        };
    }
    if let Some(e) = max_epochs {
        cfg.max_epochs = e;
    }
    cfg.validate()?;
    Ok(cfg)
}

/// The text side of the text-based models: which encoder embeds item texts and, for PULSE-TS, where
/// the rationales and the Thought Space come from and how strongly they pull.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TsConfig {
    pub encoder: PathBuf,
    /// Rationale store (pulse-ts only).
    pub store: Option<PathBuf>,
    /// Trained Thought Space folder (pulse-ts only).
    pub space: Option<PathBuf>,
    /// Rationale methods in order of preference (a user's first available one is used).
    pub methods: Vec<String>,
    pub align_weight: f64,
    pub align_temperature: f64,
    /// Centre each catalogue's item-text embeddings on its own mean before any model reads them
    /// (`content`, `text`, the PULSE-TS models; for a transferred model, the training and the target
    /// catalogue each on theirs). Off by default; recorded only when on.
    #[serde(skip_serializing_if = "is_false")]
    pub center: bool,
    /// `[pulse_ts.sasrec]`: SASRec settings of the text-based models that differ from `[sasrec]` (only
    /// the keys given, e.g. `loss = "sampled"` on a large catalogue); the rest come from `[sasrec]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sasrec: Option<serde_json::Map<String, serde_json::Value>>,
}

impl TsConfig {
    /// `[sasrec]` with `[pulse_ts.sasrec]` laid over it (unknown or ill-typed keys are errors).
    pub fn sasrec_for_text(&self, sasrec: &SasRecConfig) -> Result<SasRecConfig> {
        let Some(over) = &self.sasrec else { return Ok(sasrec.clone()) };
        let mut v = serde_json::to_value(sasrec)?;
        for (k, x) in over {
            v[k.as_str()] = x.clone();
        }
        let cfg: SasRecConfig = serde_json::from_value(v).map_err(|e| anyhow::anyhow!("[pulse_ts.sasrec]: {e}"))?;
        cfg.validate()?;
        Ok(cfg)
    }
}

impl Default for TsConfig {
    fn default() -> Self {
        TsConfig {
            encoder: PathBuf::from("models/all-MiniLM-L6-v2"),
            store: None,
            space: None,
            methods: vec!["tot-space".into(), "initial".into()],
            align_weight: 0.1,
            align_temperature: 0.1,
            center: false,
            sasrec: None,
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Reads `[pulse_ts]` from a TOML file (default when absent).
pub fn ts_config(file: Option<&Path>) -> Result<TsConfig> {
    #[derive(Deserialize, Default)]
    struct File {
        #[serde(default)]
        pulse_ts: Option<TsConfig>,
        #[serde(default, rename = "sasrec")]
        _sasrec: Option<toml::Value>,
    }
    Ok(match file {
        Some(p) => read_toml::<File>(p)?.pulse_ts.unwrap_or_default(),
        None => TsConfig::default(),
    })
}


pub fn default_checkpoint_dir(l: &Loaded, cfg: &SasRecConfig, seed: u64) -> PathBuf {
    let c = serde_json::to_string(cfg).expect("serialisable");
    // Version 1 checkpoints keep the name they had before versions were named.
    let v = pulse_baselines::sasrec::CHECKPOINT_VERSION;
    let v = if v == 1 { String::new() } else { format!("-v{v}") };
    PathBuf::from("runs").join(format!("{}-{}", l.ds.name, l.split.fingerprint)).join(format!("sasrec-{}-seed{seed}{v}", short_hash(&c)))
}

/// A fixed, seeded sample of `n` split users (sorted), or all of them when `n` is at least that many.
pub fn sample_users(l: &Loaded, n: usize, seed: u64) -> Vec<usize> {
    if n >= l.split.users.len() {
        return (0..l.split.users.len()).collect();
    }
    let mut idx = sample_order(l, seed);
    idx.truncate(n);
    idx.sort_unstable();
    idx
}

/// Every split user in the seeded order the samples take their users from.
fn sample_order(l: &Loaded, seed: u64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..l.split.users.len()).collect();
    pulse_data::Rng::derive(seed, "eval-users").shuffle(&mut idx);
    idx
}

/// Users `skip..skip + n` of the seeded shuffle whose first `n` [`sample_users`] takes, sorted: a sample
/// disjoint from `sample_users(l, skip, seed)`.
pub fn sample_users_after(l: &Loaded, skip: usize, n: usize, seed: u64) -> Result<Vec<usize>> {
    let total = l.split.users.len();
    if skip + n > total {
        bail!("{}: {n} users after the first {skip} of the seeded sample need {} users, the split has {total}", l.ds.name, skip + n);
    }
    let mut out = sample_order(l, seed)[skip..skip + n].to_vec();
    out.sort_unstable();
    Ok(out)
}

/// The SLM ranker (optionally with a LoRA adapter), its score cache under runs/.
pub fn slm_ranker(l: &Loaded, model: &Path, adapter: Option<&Path>, cfg: pulse_sft::rank::RankConfig) -> Result<Trained> {
    let m = crate::opts::ModelArgs::defaults(model);
    let mut engine = crate::engine::load_engine(&m)?;
    if let Some(a) = adapter {
        engine.attach_adapter(a)?;
    }
    let id = pulse_slm::Generator::model(&engine).clone();
    let dir = PathBuf::from("runs").join(format!("{}-{}", l.ds.name, l.split.fingerprint));
    std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
    let cache = dir.join("slm-scores.jsonl");
    let r = pulse_sft::rank::SlmRanker::new("slm", engine, &l.ds, cfg.clone(), Some(&cache))?;
    tracing::info!("slm ranker: {} ({}), {} rows already scored in {}", id.name, id.key(), r.cached(), cache.display());
    Ok(Trained {
        model: Box::new(r),
        config: serde_json::json!({ "slm": id, "adapter": adapter, "rank": cfg, "prompt_version": pulse_sft::rank::RANK_PROMPT_VERSION }),
        meta: serde_json::json!({ "score_cache": cache }),
    })
}

pub fn default_candidates(l: &Loaded, n: usize, seed: u64) -> PathBuf {
    PathBuf::from("candidates").join(format!("{}-{}", l.ds.name, l.split.fingerprint)).join(format!("cand{n}-seed{seed}.tsv"))
}

/// A trained model with what to record about it.
pub struct Trained {
    pub model: Box<dyn Recommender>,
    pub config: serde_json::Value,
    pub meta: serde_json::Value,
}

/// Models whose items are their texts alone (no item IDs): the ones that can rank another catalogue.
pub fn text_only(kind: ModelArg) -> bool {
    matches!(kind, ModelArg::Text | ModelArg::PulseTsText | ModelArg::Content | ModelArg::Lexical)
}

/// Settings of the content-similarity model: the user's profile is their last `last` items, each older
/// one weighted `decay` times the next newer one. Nothing is trained; experiments may choose them on
/// validation (`[content]` lists).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ContentSettings {
    pub last: usize,
    pub decay: f32,
}

impl Default for ContentSettings {
    fn default() -> Self {
        ContentSettings { last: 10, decay: 0.8 }
    }
}

/// Settings of item-KNN: co-occurrence within `window` positions; the profile as for content.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct KnnSettings {
    pub window: usize,
    pub last: usize,
    pub decay: f32,
}

impl Default for KnnSettings {
    fn default() -> Self {
        KnnSettings { window: 5, last: 10, decay: 0.8 }
    }
}

/// The content-similarity model over a dataset's item texts (nothing to train).
pub fn content_model(l: &Loaded, ts: &TsConfig, s: ContentSettings) -> Result<Trained> {
    let (enc, text, _) = item_texts(l, ts)?;
    let mut config = serde_json::json!({ "encoder": ts.encoder, "last": s.last, "decay": s.decay });
    if ts.center {
        // recorded only when on, as in [pulse_ts], so rows made before the option compare equal
        config["center"] = serde_json::json!(true);
    }
    Ok(Trained {
        model: Box::new(pulse_baselines::Content::new(&text, s.last, s.decay)?),
        config,
        meta: serde_json::json!({ "encoder": enc.id() }),
    })
}

/// What the lexical model's vocabulary is made of, recorded with its rows (a row made otherwise is redone).
pub const LEXICAL_TERMS: &str = "words and adjacent word pairs of the loaded title";

/// The lexical (TF-IDF title) similarity model over a dataset's item titles (nothing to train); the
/// profile settings are content's.
pub fn lexical_model(l: &Loaded, s: ContentSettings) -> Result<Trained> {
    let t0 = Instant::now();
    let titles: Vec<&str> = l.ds.items.iter().map(|it| it.title.as_str()).collect();
    let m = pulse_baselines::Lexical::new(&titles, s.last, s.decay)?;
    Ok(Trained {
        config: serde_json::json!({ "text": "title", "terms": LEXICAL_TERMS, "last": s.last, "decay": s.decay }),
        meta: serde_json::json!({ "terms": m.n_terms(), "build_seconds": t0.elapsed().as_secs_f64() }),
        model: Box::new(m),
    })
}

/// A nothing-to-train text-similarity model, `content` (encoder embeddings) or `lexical` (TF-IDF titles),
/// over `l`'s items with profile `settings`; any other kind is refused.
pub fn similarity_model(kind: ModelArg, l: &Loaded, ts: &TsConfig, settings: ContentSettings) -> Result<Trained> {
    match kind {
        ModelArg::Content => content_model(l, ts, settings),
        ModelArg::Lexical => lexical_model(l, settings),
        _ => bail!("{}: not a similarity model (content or lexical)", model_name(kind)),
    }
}

/// Item-KNN fitted on a dataset's training sequences.
pub fn itemknn_model(l: &Loaded, s: KnnSettings) -> Trained {
    let t0 = Instant::now();
    Trained {
        model: Box::new(pulse_baselines::ItemKnn::fit(&l.split, s.window, s.last, s.decay)),
        config: serde_json::json!({ "window": s.window, "last": s.last, "decay": s.decay }),
        meta: serde_json::json!({ "train_seconds": t0.elapsed().as_secs_f64() }),
    }
}

/// The frozen item-text matrix of a dataset (n_items × encoder dim; embeddings cached under
/// runs/<dataset>-<split>/item-texts.cache, centred on the catalogue's mean with `[pulse_ts] center`),
/// the encoder, and that runs folder.
pub fn item_texts(l: &Loaded, ts: &TsConfig) -> Result<(pulse_thought::SentenceEncoder, candle_core::Tensor, PathBuf)> {
    let enc = pulse_thought::SentenceEncoder::load(&ts.encoder, 128)?;
    let dir = PathBuf::from("runs").join(format!("{}-{}", l.ds.name, l.split.fingerprint));
    std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
    let mut cache = pulse_thought::EmbeddingCache::open(&dir.join("item-texts.cache"), &enc)?;
    let t = Instant::now();
    let mut rows = pulse_thought::inputs::item_embeddings(&l.ds, &enc, &mut cache)?;
    tracing::info!("item texts: {} embeddings ({:.1}s, cache {})", rows.len(), t.elapsed().as_secs_f64(), dir.join("item-texts.cache").display());
    if ts.center {
        pulse_thought::inputs::center_rows(&mut rows);
    }
    let text = candle_core::Tensor::from_vec(rows.concat(), (rows.len(), enc.dim()), &candle_core::Device::Cpu)?;
    Ok((enc, text, dir))
}

/// The SASRec config, model inputs and alignment targets of a text-based model, and what to record.
fn text_model_inputs(
    kind: ModelArg,
    l: &Loaded,
    sasrec: &SasRecConfig,
    ts: &TsConfig,
) -> Result<(SasRecConfig, pulse_baselines::ModelInputs, std::collections::HashMap<usize, Vec<f32>>, serde_json::Value)> {
    use pulse_baselines::ItemInput;
    let (enc, text, dir) = item_texts(l, ts)?;
    let n_items = text.dims2()?.0;
    let mut cfg = ts.sasrec_for_text(sasrec)?;
    cfg.items = if text_only(kind) { ItemInput::Text } else { ItemInput::Both };
    let mut inputs = pulse_baselines::ModelInputs { item_text: Some(text), align_dim: 0 };
    let mut align = std::collections::HashMap::new();
    let mut meta = serde_json::json!({ "encoder": enc.id(), "items_embedded": n_items });
    if matches!(kind, ModelArg::PulseTs | ModelArg::PulseTsText) {
        let (Some(store), Some(space_dir)) = (&ts.store, &ts.space) else {
            bail!("pulse-ts needs [pulse_ts] store and space in the config (a rationale store and a `pulse thought train --out` folder)");
        };
        let st = open_existing_store(store)?;
        let space = pulse_thought::train::load(space_dir, &enc)?;
        let mut rcache = pulse_thought::EmbeddingCache::open(&dir.join("rationales.cache"), &enc)?;
        let (targets, counts) = pulse_thought::inputs::rationale_targets(&st, &ts.methods, &l.ds, &l.split, &enc, &space, &mut rcache)?;
        if targets.len() < 2 {
            bail!("{}: {} usable rationales for {} ({:?}); pulse-ts needs some", store.display(), targets.len(), l.ds.name, ts.methods);
        }
        tracing::info!("pulse-ts: rationales for {} of {} users {:?}", targets.len(), l.split.users.len(), counts);
        cfg.align_weight = ts.align_weight;
        cfg.align_temperature = ts.align_temperature;
        inputs.align_dim = enc.dim();
        meta["rationales"] = serde_json::json!({ "users": targets.len(), "by_method": counts, "space": space_dir, "store": store });
        align = targets;
    }
    cfg.validate()?;
    Ok((cfg, inputs, align, meta))
}

/// A short fingerprint of the alignment targets (for checkpoint identity).
fn align_fingerprint(align: &std::collections::HashMap<usize, Vec<f32>>) -> String {
    let mut keys: Vec<&usize> = align.keys().collect();
    keys.sort_unstable();
    let mut s = String::new();
    for k in keys {
        s.push_str(&k.to_string());
        for v in &align[k] {
            s.push_str(&format!(",{v:.5}"));
        }
        s.push(';');
    }
    short_hash(&s)
}

/// Trains (or resumes / reuses) a text-based SASRec: the model, its config and what to record.
pub fn train_text_model(
    kind: ModelArg,
    l: &Loaded,
    sasrec: &SasRecConfig,
    ts: &TsConfig,
    seed: u64,
    checkpoint_dir: Option<PathBuf>,
    quiet: bool,
) -> Result<(pulse_baselines::SasRec, serde_json::Value, serde_json::Value)> {
    let t0 = Instant::now();
    let (cfg, inputs, align, mut meta) = text_model_inputs(kind, l, sasrec, ts)?;
    let dir = checkpoint_dir.unwrap_or_else(|| {
        let base = default_checkpoint_dir(l, &cfg, seed);
        let tag = format!("{}-{}", inputs.fingerprint().unwrap_or_default(), align_fingerprint(&align));
        base.with_file_name(format!("{}-{}-in{}", model_name(kind), base.file_name().unwrap().to_string_lossy(), short_hash(&tag)))
    });
    tracing::info!("{}: checkpoints in {} (resumed or reused if present)", model_name(kind), dir.display());
    let opts = TrainOptions { seed, checkpoint_dir: Some(dir.clone()), quiet, stop_after_epochs: None, inputs, align };
    let (m, summary) = pulse_baselines::sasrec::train(&l.split, &cfg, &opts)?;
    tracing::info!(
        "{}: best valid ndcg@10 {:.4} at epoch {}/{}, {:.2}s per epoch",
        model_name(kind),
        summary.best_valid_ndcg10,
        summary.best_epoch,
        summary.epochs,
        summary.epoch_seconds.iter().sum::<f64>() / summary.epoch_seconds.len().max(1) as f64
    );
    meta["train_seconds_this_call"] = serde_json::json!(t0.elapsed().as_secs_f64());
    meta["train"] = serde_json::to_value(&summary)?;
    meta["checkpoint_dir"] = serde_json::to_value(&dir)?;
    let mut config = serde_json::to_value(&cfg)?;
    config["pulse_ts"] = serde_json::to_value(ts)?;
    Ok((m, config, meta))
}

/// Cross-domain, zero-shot: a text-only model (`text`, `pulse-ts-text`) trained on `train` ranks the items
/// of `test` through their texts (same encoder), with no training on `test`; `content` and `lexical`
/// (nothing to train) read `test`'s texts with `settings` (their profile: last items, decay). The config
/// records the training dataset.
#[allow(clippy::too_many_arguments)]
pub fn transfer_model(kind: ModelArg, train: &Loaded, test: &Loaded, sasrec: &SasRecConfig, ts: &TsConfig, settings: ContentSettings, seed: u64, quiet: bool) -> Result<Trained> {
    if !text_only(kind) {
        bail!("{}: only text-only models (text, pulse-ts-text, content, lexical) rank another domain zero-shot", model_name(kind));
    }
    if matches!(kind, ModelArg::Content | ModelArg::Lexical) {
        let mut t = similarity_model(kind, test, ts, settings)?;
        t.config["train_data"] = serde_json::json!(train.ds.name);
        return Ok(t);
    }
    let (m, mut config, mut meta) = train_text_model(kind, train, sasrec, ts, seed, None, quiet)?;
    let (_, text, _) = item_texts(test, ts)?;
    let m = m.transfer(&text)?;
    config["train_data"] = serde_json::json!(train.ds.name);
    meta["trained_on"] = serde_json::json!({ "dataset": train.ds.name, "split": train.split.fingerprint });
    Ok(Trained { model: Box::new(m), config, meta })
}

pub fn train_model(
    kind: ModelArg,
    l: &Loaded,
    sasrec: &SasRecConfig,
    ts: &TsConfig,
    seed: u64,
    checkpoint_dir: Option<PathBuf>,
    quiet: bool,
) -> Result<Trained> {
    let t0 = Instant::now();
    Ok(match kind {
        ModelArg::Content | ModelArg::Lexical => similarity_model(kind, l, ts, ContentSettings::default())?,
        ModelArg::Itemknn => itemknn_model(l, KnnSettings::default()),
        ModelArg::Slm => bail!("the slm ranker is built by `pulse eval --model slm` (experiments: not yet)"),
        ModelArg::Text | ModelArg::PulseTsNorat | ModelArg::PulseTs | ModelArg::PulseTsText => {
            let (m, config, meta) = train_text_model(kind, l, sasrec, ts, seed, checkpoint_dir, quiet)?;
            Trained { model: Box::new(m), config, meta }
        }
        ModelArg::Pop => Trained {
            model: Box::new(Pop::fit(&l.split)),
            config: serde_json::json!({}),
            meta: serde_json::json!({ "train_seconds": t0.elapsed().as_secs_f64() }),
        },
        ModelArg::Sasrec => {
            let dir = checkpoint_dir.unwrap_or_else(|| default_checkpoint_dir(l, sasrec, seed));
            tracing::info!("sasrec: checkpoints in {} (resumed or reused if present)", dir.display());
            let opts = TrainOptions { seed, checkpoint_dir: Some(dir.clone()), quiet, stop_after_epochs: None, ..Default::default() };
            let (m, summary) = pulse_baselines::sasrec::train(&l.split, sasrec, &opts)?;
            let s = &summary;
            tracing::info!(
                "sasrec: best valid ndcg@10 {:.4} at epoch {}/{}, {:.2}s per epoch, checkpoint {}",
                s.best_valid_ndcg10,
                s.best_epoch,
                s.epochs,
                s.epoch_seconds.iter().sum::<f64>() / s.epoch_seconds.len().max(1) as f64,
                dir.display()
            );
            Trained {
                model: Box::new(m),
                config: serde_json::to_value(sasrec)?,
                meta: serde_json::json!({
                    "train_seconds_this_call": t0.elapsed().as_secs_f64(),
                    "train": summary,
                    "checkpoint_dir": dir,
                }),
            }
        }
    })
}

pub struct EvalOutput {
    pub report: EvalReport,
    pub ranks: RankFile,
    pub eval_seconds: f64,
}

/// Runs one protocol for a trained model on the test split and builds the report.
pub fn run_protocol(
    l: &Loaded,
    t: &Trained,
    model: &str,
    p: Protocol,
    seed: u64,
    candidates: Option<PathBuf>,
    bootstrap: usize,
    users: Option<&[usize]>,
    quiet: bool,
) -> Result<EvalOutput> {
    let t0 = Instant::now();
    let cands = match p {
        Protocol::Cand { n } => {
            let path = candidates.unwrap_or_else(|| default_candidates(l, n, seed));
            Some(CandidateSet::load_or_draw(&l.ds, &l.split, n, seed, &path)?)
        }
        Protocol::Full { .. } => None,
    };
    let n = users.map_or(l.split.users.len(), <[usize]>::len);
    let pb = crate::util::progress(quiet, n as u64, &format!("eval {model} {}", p.name()));
    let ranks = evaluate(t.model.as_ref(), &l.split, Stage::Test, p, cands.as_ref(), users, &mut |d, _| pb.set_position(d as u64))?;
    pb.finish_and_clear();
    let names = metric_names(&p);
    let metrics = metrics_from_ranks(&ranks, &names);
    let mut ci95 = BTreeMap::new();
    if bootstrap > 0 {
        for m in &names {
            let v: Vec<f64> = ranks.iter().map(|&r| per_user_value(m, r).unwrap()).collect();
            let ci = bootstrap_mean(&v, bootstrap, seed);
            ci95.insert(m.clone(), [round6(ci.lo), round6(ci.hi)]);
        }
    }
    let report = EvalReport {
        dataset: l.ds.name.clone(),
        model: model.to_string(),
        protocol: p.name(),
        seed,
        n_users: ranks.len(),
        metrics: metrics.into_iter().map(|(k, v)| (k, round6(v))).collect(),
        ci95,
        config: serde_json::json!({
            "data": l.spec,
            "split": { "fingerprint": l.split.fingerprint, "users": l.split.users.len(), "items": l.split.n_items, "dropped_short_users": l.split.dropped_short },
            "protocol": p,
            "candidates": cands.as_ref().map(|c| serde_json::json!({"n": c.n, "seed": c.seed})),
            "bootstrap_resamples": bootstrap,
            "users_sampled": users.map(<[usize]>::len),
            "model": t.config,
        }),
    };
    let id = |i: usize| l.ds.users[l.split.users[i].user as usize].id.clone();
    let users = match users {
        Some(u) => u.iter().map(|&i| id(i)).collect(),
        None => (0..l.split.users.len()).map(id).collect(),
    };
    Ok(EvalOutput { report, ranks: RankFile { users, ranks }, eval_seconds: t0.elapsed().as_secs_f64() })
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// Writes report, ranks and meta next to each other.
pub fn write_outputs(out: &Path, o: &EvalOutput, t: &Trained) -> Result<()> {
    o.report.write(out)?;
    o.ranks.write(&RankFile::path_for(out))?;
    let meta = serde_json::json!({
        "pulse_version": env!("CARGO_PKG_VERSION"),
        "eval_seconds": o.eval_seconds,
        "measured_at": crate::util::utc_now(),
        "model": t.meta,
        "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    });
    pulse_eval::write_atomic(&out.with_extension("meta.json"), serde_json::to_string_pretty(&meta)?.as_bytes())
        .with_context(|| out.display().to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::TsConfig;

    #[test]
    fn center_is_off_by_default_and_recorded_only_when_on() {
        let off: TsConfig = toml::from_str("encoder = \"m\"").unwrap();
        assert!(!off.center);
        // rows written before the option existed compare equal to an off config
        assert!(serde_json::to_value(&off).unwrap().get("center").is_none());
        let on: TsConfig = toml::from_str("encoder = \"m\"\ncenter = true").unwrap();
        assert_eq!(serde_json::to_value(&on).unwrap()["center"], serde_json::json!(true));
        let e = toml::from_str::<TsConfig>("center = \"yes\"").unwrap_err().to_string();
        assert!(e.contains("center"), "{e}");
    }
}
