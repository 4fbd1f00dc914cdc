//! `pulse experiment CONFIG.toml`: one command per experiment. Loads the data once, trains each model
//! once (SASRec checkpoints resume after a kill), runs the config's pipeline stages (resumable, each with
//! a marker recording its wall time), evaluates every protocol, and writes under `<results>/<name>/`
//! (`runs/` by default, git-ignored): `config.resolved.json` (every default filled in, seed included),
//! one `<model>-<protocol>.json` (+ `.ranks.tsv.gz`, `.meta.json`) per row, and `table.md`, which the
//! docs' tables are generated from. Rows already evaluated with the same resolved config are skipped,
//! and the table labels them reused, with the date they were measured.
use crate::eval::*;
use crate::util::{error_line, read_json, read_toml};
use anyhow::{bail, Context, Result};
use pulse_baselines::SasRecConfig;
use pulse_eval::{paired_bootstrap, per_user_value, EvalReport, RankFile};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    pub name: String,
    #[serde(default = "default_seed")]
    pub seed: u64,
    pub data: DataSpec,
    #[serde(default = "default_models")]
    pub models: Vec<String>,
    #[serde(default = "default_protocols")]
    pub protocols: Vec<String>,
    #[serde(default = "yes")]
    pub mask_history: bool,
    #[serde(default = "default_bootstrap")]
    pub bootstrap: usize,
    #[serde(default)]
    pub sasrec: SasRecConfig,
    /// Text side of text / pulse-ts-norat / pulse-ts.
    #[serde(default)]
    pub pulse_ts: TsConfig,
    /// SLM rows: `slm` (the base model zero-shot), `sft-plain`, `sft-reasons`, `sft-tot-likelihood`,
    /// `pulse` (LoRA-tuned on [slm] train data, then ranking candidates by likelihood), and the control
    /// `sft-shuffled-reasons` (SFT with reasons' rationales, each given to another user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slm: Option<SlmSection>,
    /// Cross-domain: the text-only models (`text`, `pulse-ts-text`) train on this dataset and rank the
    /// experiment's data zero-shot (no other non-SLM model can; SLM rows have their own `[slm] train_data`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_data: Option<DataSpec>,
    /// `hybrid` row: a weighted sum of other models' standardised scores, weights tuned on validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hybrid: Option<HybridSection>,
    /// `<slm row>+hybrid` rows (e.g. `pulse+hybrid`): the tuned SLM reranks candidate lists together with
    /// the `[hybrid]`, the two fused by one weight tuned on validation (`[rerank]`, defaults when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerank: Option<RerankSection>,
    /// Pipeline stages run before the table, in order (`[[stage]]`): rationales → Thought Space → ToT …
    #[serde(default, rename = "stage", skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<Stage>,
    /// `[snapshot]`: keep the stages' rationale store as committed JSON lines too (see [`Snapshot`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<Snapshot>,
    /// Settings of the `content` model; a list of values is a grid chosen on validation.
    #[serde(default)]
    pub content: ContentGrid,
    /// Settings of the `itemknn` model; a list of values is a grid chosen on validation.
    #[serde(default)]
    pub itemknn: KnnGrid,
    /// Settings of the `lexical` model (as `[content]`); written to the resolved config only when set.
    #[serde(default, skip_serializing_if = "ContentGrid::is_default")]
    pub lexical: ContentGrid,
}

/// `[content]`: each setting one value or a list (every combination is scored by HR@1 on the validation
/// candidate lists — `[hybrid]` tune_candidates / tune_users, or 20 / 5,000 — and the best one is used).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ContentGrid {
    #[serde(default = "default_last", deserialize_with = "one_or_many")]
    pub last: Vec<usize>,
    #[serde(default = "default_decay", deserialize_with = "one_or_many")]
    pub decay: Vec<f32>,
}

/// `[itemknn]`: as `[content]`, plus the co-occurrence window.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KnnGrid {
    #[serde(default = "default_window", deserialize_with = "one_or_many")]
    pub window: Vec<usize>,
    #[serde(default = "default_last", deserialize_with = "one_or_many")]
    pub last: Vec<usize>,
    #[serde(default = "default_decay", deserialize_with = "one_or_many")]
    pub decay: Vec<f32>,
}

impl Default for ContentGrid {
    fn default() -> Self {
        ContentGrid { last: default_last(), decay: default_decay() }
    }
}

impl Default for KnnGrid {
    fn default() -> Self {
        KnnGrid { window: default_window(), last: default_last(), decay: default_decay() }
    }
}

impl ContentGrid {
    fn is_default(&self) -> bool {
        *self == ContentGrid::default()
    }

    fn points(&self) -> Vec<ContentSettings> {
        self.last.iter().flat_map(|&last| self.decay.iter().map(move |&decay| ContentSettings { last, decay })).collect()
    }
}

impl KnnGrid {
    fn points(&self) -> Vec<KnnSettings> {
        let (lasts, decays) = (&self.last, &self.decay);
        self.window
            .iter()
            .flat_map(|&window| lasts.iter().flat_map(move |&last| decays.iter().map(move |&decay| KnnSettings { window, last, decay })))
            .collect()
    }
}

fn default_last() -> Vec<usize> {
    vec![ContentSettings::default().last]
}
fn default_decay() -> Vec<f32> {
    vec![ContentSettings::default().decay]
}
fn default_window() -> Vec<usize> {
    vec![KnnSettings::default().window]
}

/// A TOML value or a list of them.
fn one_or_many<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> std::result::Result<Vec<T>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany<T> {
        One(T),
        Many(Vec<T>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(x) => vec![x],
        OneOrMany::Many(v) => v,
    })
}

/// One-line refusals for settings no model can use.
fn check_profile_lists(section: &str, last: &[usize], decay: &[f32], window: Option<&[usize]>) -> Result<()> {
    if last.is_empty() || decay.is_empty() || window.is_some_and(|w| w.is_empty()) {
        bail!("[{section}]: a setting's list is empty");
    }
    if let Some(l) = last.iter().find(|&&l| l == 0) {
        bail!("[{section}] last: {l} (must be ≥ 1)");
    }
    if let Some(d) = decay.iter().find(|&&d| !(d > 0.0 && d <= 1.0)) {
        bail!("[{section}] decay: {d} (must be in (0, 1])");
    }
    if let Some(w) = window.and_then(|w| w.iter().find(|&&w| w == 0)) {
        bail!("[{section}] window: {w} (must be ≥ 1)");
    }
    Ok(())
}

/// One pipeline stage: a `pulse` command line (without `pulse`), run in-process exactly as typed. A
/// finished stage leaves a marker (`results/<name>/stages/<stage>.json`: the command, its wall time) and
/// is skipped while the command is unchanged and what it wrote is still there (the paths after `--store`,
/// `--out` and `--summary`: results/ is committed, runs/ is not, so a fresh checkout has the markers but
/// not the stores); an interrupted one (kill -9) simply runs again and resumes from its own state (the
/// rationale and ToT stores skip stored users, SFT from its checkpoints).
///
/// `before = "ROW"` defers a stage that only one row needs (an ablation's costly ToT variant): it runs
/// right before that row (a name in `models`) instead of before the table, so the other rows come first.
/// Deferred stages are listed after the others and run in the same order and with the same rules.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    pub name: String,
    pub run: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
}

/// `[snapshot]`: the rationale store the stages write (under runs/, which a fresh checkout lacks) and a
/// JSON-lines copy of it (under results/, committed). Before the stages, a missing store is rebuilt from
/// the copy (`rationales import`); while a stage runs the copy is rewritten every few minutes and once more
/// when it ends or fails (`rationales export`), so hours of SLM output outlive the checkout that made them
/// and the stages go on where the copy stops.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    pub store: PathBuf,
    pub file: PathBuf,
    /// Seconds between copies while a stage runs.
    #[serde(default = "default_snapshot_every")]
    pub every_seconds: u64,
}

fn default_snapshot_every() -> u64 {
    300
}

impl Snapshot {
    /// Rebuilds a missing store from the copy, if there is one.
    fn restore(&self) -> Result<()> {
        if self.store.exists() || !self.file.is_file() {
            return Ok(());
        }
        let n = crate::slm::import(&self.file, &self.store)?;
        tracing::info!("snapshot: {} rationales from {} → {}", n.inserted, self.file.display(), self.store.display());
        Ok(())
    }

    /// Rewrites the copy from the store (nothing while the store does not exist yet).
    fn save(&self) -> Result<()> {
        if !self.store.is_file() {
            return Ok(());
        }
        let n = crate::slm::export_to(&pulse_rationale::Store::open(&self.store)?, None, &self.file)?;
        tracing::debug!("snapshot: {n} rationales → {}", self.file.display());
        Ok(())
    }
}

/// The flags whose path a stage writes.
const OUTPUT_FLAGS: [&str; 3] = ["--store", "--out", "--summary"];

impl Stage {
    /// The paths this stage writes, as named in its command (`--out P` or `--out=P`).
    pub fn outputs(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for (i, a) in self.run.iter().enumerate() {
            for f in OUTPUT_FLAGS {
                if a == f {
                    out.extend(self.run.get(i + 1).map(PathBuf::from));
                } else if let Some(p) = a.strip_prefix(f).and_then(|r| r.strip_prefix('=')) {
                    out.push(PathBuf::from(p));
                }
            }
        }
        out
    }

    /// An experiment cannot run another experiment as a stage.
    fn check(&self) -> Result<()> {
        if self.run.first().map(String::as_str) == Some("experiment") {
            bail!("stage {}: an experiment cannot run another experiment", self.name);
        }
        Ok(())
    }
}

/// Runs the stages' commands (the words after `pulse`, e.g. `["tot", "--store", …]`). The `pulse` binary
/// parses and runs them as its own subcommands.
pub trait StageRunner {
    /// Whether `words` is a command this runner can run (checked for every stage when a config loads,
    /// before anything runs).
    fn check(&self, words: &[String]) -> Result<()>;
    /// Runs it; `quiet` as the experiment's.
    fn run(&self, words: &[String], quiet: bool) -> Result<()>;
}

/// Runs the stages not finished yet, in order, each recording its wall time in its marker. A stage's
/// time adds up over interrupted runs: while it runs, `stages/<stage>.partial.json` is rewritten every
/// few seconds with the seconds spent so far (earlier attempts included), so a kill -9 loses at most
/// that interval; the finished marker holds the total and the number of attempts. A stage whose marker
/// is there but whose outputs are gone runs again, and once one stage runs, every stage after it runs
/// too (its inputs may have changed); the stale marker is removed first, so a kill -9 during the rerun
/// cannot leave a "done" marker over half-written outputs. A stage run again only because an earlier one
/// ran (its own outputs are there: it goes on from them) adds its time to the marker's, as a resumed one
/// does — except after a stage redone from nothing (marked done, outputs gone): then the records of that
/// stage and of every later one are dropped and their times start afresh. `row`: None runs the stages without `before`,
/// Some(row) the ones deferred to that row; `rerun_rest` carries "an earlier stage ran" between the calls.
fn run_stages(c: &ExperimentConfig, dir: &Path, row: Option<&str>, rerun_rest: &mut bool, runner: &dyn StageRunner, quiet: bool) -> Result<()> {
    let sdir = dir.join("stages");
    for st in c.stages.iter().filter(|st| st.before.as_deref() == row) {
        let marker = sdir.join(format!("{}.json", st.name));
        let mut carried = None;
        if let Ok(prev) = std::fs::read(&marker) {
            let prev: serde_json::Value = serde_json::from_slice(&prev).with_context(|| marker.display().to_string())?;
            let same = prev["run"] == serde_json::json!(st.run);
            let missing = st.outputs().into_iter().find(|p| !p.exists());
            if same && missing.is_none() && !*rerun_rest {
                tracing::info!("stage {}: already done ({})", st.name, marker.display());
                continue;
            }
            match missing {
                Some(p) if same => {
                    tracing::warn!("stage {}: marked done but {} is missing; running it again", st.name, p.display());
                    // redone from nothing: the records of this stage and of every later one describe outputs
                    // built from the lost ones, so their times must not be carried into the new run; removed
                    // now, before it starts, so a kill -9 during the redo cannot bring them back
                    let later = c.stages.iter().skip_while(|s| s.name != st.name);
                    for f in later.flat_map(|s| [sdir.join(format!("{}.json", s.name)), sdir.join(format!("{}.partial.json", s.name))]) {
                        remove_if_there(&f)?;
                    }
                }
                _ if same => {
                    tracing::info!("stage {}: an earlier stage ran again; running it again", st.name);
                    carried = Some((prev["seconds"].as_f64().unwrap_or(0.0), prev["attempts"].as_u64().unwrap_or(0)));
                }
                _ => {}
            }
            remove_if_there(&marker)?;
        }
        *rerun_rest = true;
        std::fs::create_dir_all(&sdir).with_context(|| sdir.display().to_string())?;
        let partial = sdir.join(format!("{}.partial.json", st.name));
        let (before, attempts) = std::fs::read(&partial)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .filter(|v| v["run"] == serde_json::json!(st.run))
            .map(|v| (v["seconds"].as_f64().unwrap_or(0.0), v["attempts"].as_u64().unwrap_or(0)))
            .or(carried)
            .unwrap_or((0.0, 0));
        if attempts > 0 {
            tracing::info!("stage {}: resuming (attempt {}, {before:.0}s spent before)", st.name, attempts + 1);
        }
        tracing::info!("stage {}: pulse {}", st.name, st.run.join(" "));
        let t0 = std::time::Instant::now();
        let record = |done: bool| serde_json::json!({ "name": st.name, "run": st.run, "seconds": before + t0.elapsed().as_secs_f64(), "attempts": attempts + 1, "done": done, "measured_at": crate::util::utc_now() });
        let stop = std::sync::atomic::AtomicBool::new(false);
        let result = std::thread::scope(|scope| {
            scope.spawn(|| {
                let mut last = std::time::Instant::now();
                let mut copied = std::time::Instant::now();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(std::time::Duration::from_millis(200));
                    if last.elapsed().as_secs() >= 5 {
                        last = std::time::Instant::now();
                        let _ = pulse_eval::write_atomic(&partial, record(false).to_string().as_bytes());
                    }
                    if let Some(sn) = c.snapshot.as_ref().filter(|sn| copied.elapsed().as_secs() >= sn.every_seconds) {
                        copied = std::time::Instant::now();
                        if let Err(e) = sn.save() {
                            tracing::warn!("snapshot: {}", error_line(&e));
                        }
                    }
                }
            });
            let _ = pulse_eval::write_atomic(&partial, record(false).to_string().as_bytes());
            let r = st.check().and_then(|()| runner.run(&st.run, quiet).with_context(|| format!("stage {}", st.name)));
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            r
        });
        if result.is_err() {
            let _ = pulse_eval::write_atomic(&partial, record(false).to_string().as_bytes());
        }
        let saved = c.snapshot.as_ref().map_or(Ok(()), Snapshot::save);
        result?;
        saved?;
        pulse_eval::write_atomic(&marker, serde_json::to_string_pretty(&record(true))?.as_bytes())?;
        let _ = std::fs::remove_file(&partial);
    }
    Ok(())
}

fn remove_if_there(f: &Path) -> Result<()> {
    match std::fs::remove_file(f) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e).with_context(|| f.display().to_string()),
        _ => Ok(()),
    }
}

/// `[hybrid]`: which models to mix and how the weights are tuned. Cross-domain (with `train_data`), the
/// parts are text-only models and `pop`; the weights are tuned on the training domain's validation stage
/// (or `tune_data`'s) and then applied, unchanged, to the transferred text models plus the target's own popularity counts
/// (a statistic of the target's training interactions, not a trained parameter).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HybridSection {
    pub parts: Vec<String>,
    /// Candidates per validation list (the target + n − 1 never-interacted items).
    #[serde(default = "default_tune_candidates")]
    pub tune_candidates: usize,
    /// Validation users the weights are tuned on (a seeded sample).
    #[serde(default = "default_tune_users")]
    pub tune_users: usize,
    /// Step of the weight grid over the simplex.
    #[serde(default = "default_grid_step")]
    pub grid_step: f32,
    /// Cross-domain only: tune the weights on this third domain's validation stage, with the parts
    /// transferred to it from `train_data` as they are to the experiment's data, instead of on
    /// `train_data` itself, where a part trained there is at home and its validation score says nothing
    /// of how it transfers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tune_data: Option<DataSpec>,
}

fn default_tune_candidates() -> usize {
    20
}
fn default_tune_users() -> usize {
    5000
}
fn default_grid_step() -> f32 {
    0.05
}

/// `[rerank]`: how a `<slm row>+hybrid` row's weight is tuned. The SLM and the hybrid score the
/// validation lists of `tune_users` users of the domain the hybrid's weights are tuned on (cross-domain:
/// the training domain), users the hybrid was *not* tuned on (the next ones of the same seeded shuffle);
/// each model's scores are standardised over the list and the weight is the best point of a grid.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RerankSection {
    #[serde(default = "default_rerank_users")]
    pub tune_users: usize,
    #[serde(default = "default_rerank_candidates")]
    pub tune_candidates: usize,
    #[serde(default = "default_grid_step")]
    pub grid_step: f32,
}

impl Default for RerankSection {
    fn default() -> Self {
        RerankSection { tune_users: default_rerank_users(), tune_candidates: default_rerank_candidates(), grid_step: default_grid_step() }
    }
}

fn default_rerank_users() -> usize {
    300
}
fn default_rerank_candidates() -> usize {
    5
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SlmSection {
    #[serde(default = "default_slm")]
    pub model: PathBuf,
    /// Rationale store the SFT variants read.
    pub store: PathBuf,
    /// `pulse sft` config (prompt, training, required methods).
    pub sft: PathBuf,
    /// Training users for SFT.
    #[serde(default = "default_train_users")]
    pub train_users: usize,
    /// Fixed, seeded sample of test users the SLM rows are scored on (every row of the table uses the
    /// same candidate files; paired differences use the users both rows have).
    #[serde(default = "default_eval_users")]
    pub eval_users: usize,
    /// Where SFT trains (cross-domain: another dataset); default: the experiment's data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_data: Option<DataSpec>,
    /// Candidate protocols the SLM rows are scored on (default: all of the experiment's); an SLM ranks
    /// cand20 at ~⅖ the speed of cand5 on 2 cores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocols: Option<Vec<String>>,
    /// The ranker's settings (`score = "sum" | "pmi"`, history, title_words); not written when default.
    #[serde(default, skip_serializing_if = "is_default_rank")]
    pub rank: pulse_sft::rank::RankConfig,
}

fn is_default_rank(r: &pulse_sft::rank::RankConfig) -> bool {
    *r == pulse_sft::rank::RankConfig::default()
}

fn default_slm() -> PathBuf {
    PathBuf::from(pulse_slm::DEFAULT_MODEL)
}
fn default_train_users() -> usize {
    500
}
fn default_eval_users() -> usize {
    1000
}

/// A fused row `<slm row>+hybrid`: the SLM row's variant (as [`slm_row`]); `None`: not a fused row.
pub fn fused_row(name: &str) -> Option<Option<pulse_sft::data::Variant>> {
    name.strip_suffix("+hybrid").and_then(slm_row)
}

/// `Some(None)`: the base SLM; `Some(Some(v))`: an SFT variant; `None`: not an SLM row.
pub fn slm_row(name: &str) -> Option<Option<pulse_sft::data::Variant>> {
    use pulse_sft::data::Variant;
    Some(match name {
        "slm" => None,
        "sft-plain" => Some(Variant::Plain),
        "sft-reasons" => Some(Variant::Reasons),
        "sft-tot-likelihood" => Some(Variant::TotLikelihood),
        "pulse" => Some(Variant::Pulse),
        "sft-shuffled-reasons" => Some(Variant::ShuffledReasons),
        _ => return None,
    })
}

fn default_seed() -> u64 {
    42
}
fn default_models() -> Vec<String> {
    vec!["pop".into(), "sasrec".into()]
}
fn default_protocols() -> Vec<String> {
    vec!["full".into(), "cand5".into(), "cand20".into()]
}
fn yes() -> bool {
    true
}
fn default_bootstrap() -> usize {
    1000
}

/// Reads and checks an experiment config (every stage's command through `runner`), one-line errors
/// naming the file.
pub fn load_config(path: &Path, runner: &dyn StageRunner) -> Result<ExperimentConfig> {
    let c: ExperimentConfig = read_toml(path)?;
    c.sasrec.validate()?;
    c.pulse_ts.sasrec_for_text(&c.sasrec).with_context(|| path.display().to_string())?;
    for m in &c.models {
        if fused_row(m).is_some() {
            if c.slm.is_none() || !c.models.iter().any(|x| x == "hybrid") {
                bail!("{}: model {m} needs an [slm] table and the hybrid row (models = [\"hybrid\", ...])", path.display());
            }
            let r = c.rerank.clone().unwrap_or_default();
            if r.tune_users == 0 || r.tune_candidates < 2 || !(r.grid_step > 0.0 && r.grid_step <= 1.0) {
                bail!("{}: [rerank] needs tune_users ≥ 1, tune_candidates ≥ 2 and grid_step in (0, 1]", path.display());
            }
            continue;
        }
        if m == "hybrid" {
            let Some(h) = &c.hybrid else { bail!("{}: model hybrid needs a [hybrid] table (parts)", path.display()) };
            if h.parts.is_empty() || h.tune_candidates < 2 || !(h.grid_step > 0.0 && h.grid_step <= 1.0) || h.tune_users == 0 {
                bail!("{}: [hybrid] needs parts, tune_candidates ≥ 2, tune_users ≥ 1 and grid_step in (0, 1]", path.display());
            }
            if h.tune_data.is_some() && c.train_data.is_none() {
                bail!("{}: [hybrid] tune_data needs train_data (the parts are transferred from it to the tuning domain)", path.display());
            }
            for p in &h.parts {
                let k = parse_model(p).with_context(|| format!("{}: [hybrid] parts", path.display()))?;
                if matches!(k, crate::opts::ModelArg::Slm) {
                    bail!("{}: [hybrid] parts: the SLM cannot score a whole catalogue", path.display());
                }
                if c.train_data.is_some() && !text_only(k) && !matches!(k, crate::opts::ModelArg::Pop) {
                    bail!("{}: [hybrid] parts: {p} cannot rank another domain (with train_data: text, pulse-ts-text, content, lexical, pop)", path.display());
                }
            }
            continue;
        }
        match slm_row(m) {
            Some(_) if c.slm.is_none() => bail!("{}: model {m} needs an [slm] table (store, sft)", path.display()),
            Some(_) => {}
            None => {
                let k = parse_model(m).with_context(|| format!("{}: models (or slm, sft-plain, sft-reasons, sft-tot-likelihood, pulse, sft-shuffled-reasons, each also as <row>+hybrid)", path.display()))?;
                if c.train_data.is_some() && !text_only(k) {
                    bail!("{}: model {m} cannot rank another domain zero-shot (with train_data: text, pulse-ts-text, content, lexical or SLM rows)", path.display());
                }
            }
        }
    }
    if let Some(sl) = &c.slm {
        if let Some(p) = sl.protocols.iter().flatten().find(|p| !c.protocols.contains(p)) {
            bail!("{}: [slm] protocols: {p} is not one of the experiment's protocols {:?}", path.display(), c.protocols);
        }
        let f: crate::sft::SftFile = read_toml(&sl.sft)?;
        f.validate().with_context(|| sl.sft.display().to_string())?;
        sl.rank.validate().with_context(|| format!("{}: [slm.rank]", path.display()))?;
    }
    for p in &c.protocols {
        parse_protocol(p, true).with_context(|| format!("{}: protocols", path.display()))?;
    }
    check_profile_lists("content", &c.content.last, &c.content.decay, None).with_context(|| path.display().to_string())?;
    check_profile_lists("lexical", &c.lexical.last, &c.lexical.decay, None).with_context(|| path.display().to_string())?;
    check_profile_lists("itemknn", &c.itemknn.last, &c.itemknn.decay, Some(&c.itemknn.window)).with_context(|| path.display().to_string())?;
    let mut names = std::collections::HashSet::new();
    for st in &c.stages {
        if st.name.is_empty() || !st.name.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_') || !names.insert(&st.name) {
            bail!("{}: stage names must be distinct [A-Za-z0-9_-]+ (got {:?})", path.display(), st.name);
        }
        st.check().and_then(|()| runner.check(&st.run).with_context(|| format!("stage {}", st.name))).with_context(|| path.display().to_string())?;
    }
    if let Some(sn) = &c.snapshot {
        if sn.every_seconds == 0 {
            bail!("{}: [snapshot] every_seconds must be ≥ 1", path.display());
        }
        if !c.stages.iter().any(|st| st.outputs().contains(&sn.store)) {
            bail!("{}: [snapshot] store {} is not written by any stage (--store)", path.display(), sn.store.display());
        }
    }
    if let Some(st) = c.stages.iter().find(|st| st.before.as_ref().is_some_and(|r| !c.models.contains(r))) {
        bail!("{}: stage {}: before = {:?} is not a row in models", path.display(), st.name, st.before.as_deref().unwrap_or_default());
    }
    if let Some(w) = c.stages.windows(2).find(|w| w[0].before.is_some() && w[1].before.is_none()) {
        bail!("{}: stage {} (not deferred) is listed after the deferred stage {}: list deferred stages (before = ...) last", path.display(), w[1].name, w[0].name);
    }
    Ok(c)
}

/// Runs the experiment `config` into `results/<name>/` (stages through `runner`), skipping rows already
/// there with the same resolved config; returns the table (also written as `table.md`). The table's
/// wall times say which rows this call measured and which it reused, with the date they were measured.
pub fn run(config: &Path, results: &Path, runner: &dyn StageRunner, quiet: bool) -> Result<String> {
    let started = std::time::SystemTime::now();
    let t0 = std::time::Instant::now();
    let c = load_config(config, runner)?;
    let dir = results.join(&c.name);
    std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
    let resolved = serde_json::to_string_pretty(&c)?;
    pulse_eval::write_atomic(&dir.join("config.resolved.json"), resolved.as_bytes())?;
    if let Some(sn) = &c.snapshot {
        sn.restore()?;
    }
    let mut rerun_stages = false;
    run_stages(&c, &dir, None, &mut rerun_stages, runner, quiet)?;
    let l = load_data(&c.data)?;
    let train = c.train_data.as_ref().map(load_data).transpose()?;
    let train_name = train.as_ref().map(|t| t.ds.name.clone());
    let u = choose_untrained(&c, train.as_ref().unwrap_or(&l), &dir)?;
    let mut rows: BTreeMap<(String, String), PathBuf> = BTreeMap::new();
    // table.md is rewritten after every model, so a long run that stops shows the rows it has
    let write_table = |rows: &BTreeMap<(String, String), PathBuf>| -> Result<String> {
        let table = render_table(&c, rows, &dir, Some(started))?;
        pulse_eval::write_atomic(&dir.join("table.md"), table.as_bytes())?;
        Ok(table)
    };
    // the tuned hybrid, built once for its own row and every fused row
    let mut hybrid: Option<BuiltHybrid> = None;
    for (i, m) in c.models.iter().enumerate() {
        if i > 0 {
            write_table(&rows)?;
        }
        run_stages(&c, &dir, Some(m), &mut rerun_stages, runner, quiet)?;
        if let Some(var) = slm_row(m) {
            slm_rows(&c, &l, &dir, m, var, &mut rows, quiet)?;
            continue;
        }
        if let Some(var) = fused_row(m) {
            fused_rows(&c, &l, train.as_ref(), &u, &dir, m, var, &mut hybrid, &mut rows, quiet)?;
            continue;
        }
        if m == "hybrid" {
            hybrid_rows(&c, &l, train.as_ref(), &u, &dir, &mut hybrid, &mut rows, quiet)?;
            continue;
        }
        let kind = parse_model(m)?;
        let mut trained = None;
        for pname in &c.protocols {
            let p = parse_protocol(pname, c.mask_history)?;
            let out = dir.join(format!("{m}-{pname}.json"));
            rows.insert((m.clone(), pname.clone()), out.clone());
            if let Ok(prev) = EvalReport::read(&out) {
                if prev.seed == c.seed && prev.config["data"] == serde_json::to_value(&c.data)? && same_model_config(&prev, m, &c, &u, train_name.as_deref())? {
                    tracing::info!("{m} {pname}: already done ({})", out.display());
                    continue;
                }
            }
            if trained.is_none() {
                trained = Some(row_model(kind, &l, train.as_ref(), &c, &u, quiet)?);
            }
            let t = trained.as_ref().unwrap();
            let o = run_protocol(&l, t, m, p, c.seed, None, c.bootstrap, None, quiet)?;
            write_outputs(&out, &o, t)?;
        }
    }
    let mut table = write_table(&rows)?;
    let _ = writeln!(table, "\nThis run: {:.0} s wall time, results in {}.", t0.elapsed().as_secs_f64(), dir.display());
    Ok(table)
}

/// The settings the `content` / `itemknn` rows and parts use: each grid's point, chosen on validation
/// where the grid has more than one.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Untrained {
    pub content: ContentSettings,
    pub itemknn: KnnSettings,
    /// Only when the experiment uses `lexical` (so older experiments' hybrid configs are unchanged).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lexical: Option<ContentSettings>,
}

/// Chooses the settings of `content` / `itemknn` (when the experiment uses them and their grid has more
/// than one point) by HR@1 on validation candidate lists of `tl`, the domain models train on — the same
/// users and lists as the hybrid's weights ([`pulse_eval::hybrid::tune`] with one part). Every point's
/// score goes to `untrained-selection.json` next to the results; test lists are never seen.
fn choose_untrained(c: &ExperimentConfig, tl: &Loaded, dir: &Path) -> Result<Untrained> {
    let uses = |m: &str| c.models.iter().any(|x| x == m) || c.hybrid.as_ref().is_some_and(|h| h.parts.iter().any(|p| p == m));
    let (content_grid, knn_grid, lexical_grid) = (c.content.points(), c.itemknn.points(), c.lexical.points());
    let mut u = Untrained { content: content_grid[0], itemknn: knn_grid[0], lexical: uses("lexical").then_some(lexical_grid[0]) };
    let tune_content = uses("content") && content_grid.len() > 1;
    let tune_knn = uses("itemknn") && knn_grid.len() > 1;
    let tune_lexical = uses("lexical") && lexical_grid.len() > 1;
    if !tune_content && !tune_knn && !tune_lexical {
        return Ok(u);
    }
    let t0 = std::time::Instant::now();
    let (n, n_users) = c.hybrid.as_ref().map_or((default_tune_candidates(), default_tune_users()), |h| (h.tune_candidates, h.tune_users));
    let users = sample_users(tl, n_users, c.seed);
    let score = |m: &dyn pulse_eval::Recommender| -> Result<f64> { Ok(pulse_eval::hybrid::tune(&[m], &tl.split, &users, n, 1.0, c.seed)?.valid_hr1) };
    let mut record = serde_json::Map::new();
    if tune_content {
        let (_, text, _) = item_texts(tl, &c.pulse_ts)?;
        u.content = tune_point("content", content_grid, &mut record, |s| score(&pulse_baselines::Content::new(&text, s.last, s.decay)?))?;
    }
    if tune_knn {
        u.itemknn = tune_point("itemknn", knn_grid, &mut record, |s| score(itemknn_model(tl, s).model.as_ref()))?;
    }
    if tune_lexical {
        u.lexical = Some(tune_point("lexical", lexical_grid, &mut record, |s| score(lexical_model(tl, s)?.model.as_ref()))?);
    }
    record.insert("dataset".into(), serde_json::json!(tl.ds.name));
    record.insert("n_candidates".into(), serde_json::json!(n));
    record.insert("users".into(), serde_json::json!(users.len()));
    record.insert("seconds".into(), serde_json::json!(t0.elapsed().as_secs_f64()));
    let f = dir.join("untrained-selection.json");
    pulse_eval::write_atomic(&f, serde_json::to_string_pretty(&record)?.as_bytes())?;
    tracing::info!("content {:?}, itemknn {:?}, lexical {:?} chosen on validation ({})", u.content, u.itemknn, u.lexical, f.display());
    Ok(u)
}

/// Scores every grid point (logged), keeps the first best one and records the scored grid under `name`.
fn tune_point<S: Copy + serde::Serialize + std::fmt::Debug>(
    name: &str,
    points: Vec<S>,
    record: &mut serde_json::Map<String, serde_json::Value>,
    mut score: impl FnMut(S) -> Result<f64>,
) -> Result<S> {
    let mut grid = Vec::with_capacity(points.len());
    let mut best: Option<(f64, S)> = None;
    for s in points {
        let v = score(s)?;
        tracing::info!("{name} {s:?}: validation HR@1 {v:.4}");
        grid.push(serde_json::json!({ "settings": s, "valid_hr1": v }));
        if best.is_none_or(|(b, _)| v > b) {
            best = Some((v, s));
        }
    }
    let (_, chosen) = best.ok_or_else(|| anyhow::anyhow!("{name}: empty settings grid"))?;
    record.insert(name.into(), serde_json::json!({ "chosen": chosen, "grid": grid }));
    Ok(chosen)
}

/// A row's model: `content` / `itemknn` / `lexical` with the chosen settings, the others trained (checkpoints reused)
/// or, cross-domain, trained on `source` and transferred.
fn row_model(kind: crate::opts::ModelArg, l: &Loaded, source: Option<&Loaded>, c: &ExperimentConfig, u: &Untrained, quiet: bool) -> Result<Trained> {
    use crate::opts::ModelArg;
    // the chosen settings of the nothing-trained text models (content, lexical), in-domain or transferred
    let text_settings = if kind == ModelArg::Lexical { u.lexical.unwrap_or_default() } else { u.content };
    match (kind, source) {
        (ModelArg::Content | ModelArg::Lexical, None) => similarity_model(kind, l, &c.pulse_ts, text_settings),
        (ModelArg::Itemknn, None) => Ok(itemknn_model(l, u.itemknn)),
        (_, Some(src)) => transfer_model(kind, src, l, &c.sasrec, &c.pulse_ts, text_settings, c.seed, quiet),
        (_, None) => train_model(kind, l, &c.sasrec, &c.pulse_ts, c.seed, None, quiet),
    }
}

/// A hybrid part: `pop` as ln(1 + count) (a scale that mixes), the others as for their own rows
/// (checkpoints reused); cross-domain, `source` is where text models trained.
fn hybrid_part(name: &str, l: &Loaded, source: Option<&Loaded>, c: &ExperimentConfig, u: &Untrained, quiet: bool) -> Result<Trained> {
    let kind = parse_model(name)?;
    if matches!(kind, crate::opts::ModelArg::Pop) {
        return Ok(Trained {
            model: Box::new(pulse_baselines::Pop::fit(&l.split).log_scaled()),
            config: serde_json::json!({}),
            meta: serde_json::json!({ "dataset": l.ds.name }),
        });
    }
    row_model(kind, l, source, c, u, quiet)
}

/// The record of what makes the hybrid: its section, the settings its parts are trained with and the
/// chosen untrained settings (a row is redone when this changes).
fn hybrid_mix(c: &ExperimentConfig, train: Option<&Loaded>, u: &Untrained) -> serde_json::Value {
    serde_json::json!({
        "hybrid": c.hybrid,
        "sasrec": c.sasrec,
        "pulse_ts": c.pulse_ts,
        "train_data": train.map(|t| &t.ds.name),
        "untrained": u,
    })
}

/// The tuned hybrid: `test` ranks the experiment's data; `tune` is the same mix with the parts as
/// trained on the domain its weights were tuned on (the same model in-domain).
struct BuiltHybrid {
    test: std::rc::Rc<dyn pulse_eval::Recommender>,
    tune: std::rc::Rc<dyn pulse_eval::Recommender>,
    config: serde_json::Value,
    meta: serde_json::Value,
    /// The third domain the weights were tuned on (`[hybrid] tune_data`), kept for the fused rows, which
    /// tune their SLM weight on the same domain.
    third: Option<Loaded>,
}

/// Builds the hybrid once: weights tuned on the validation stage (cross-domain: of the training domain,
/// with the parts as trained there, or of `tune_data`, with the parts transferred there), then the parts
/// for the experiment's data (transferred cross-domain).
fn build_hybrid<'a>(c: &ExperimentConfig, l: &Loaded, train: Option<&Loaded>, u: &Untrained, cache: &'a mut Option<BuiltHybrid>, quiet: bool) -> Result<&'a BuiltHybrid> {
    if cache.is_none() {
        let h = c.hybrid.as_ref().expect("checked by load_config");
        // tune where the weights may be learned: the training domain, or a third one the parts are
        // transferred to (`tune_data`)
        let t0 = std::time::Instant::now();
        let third = h.tune_data.as_ref().map(load_data).transpose()?;
        let (tl, tune_source) = match &third {
            Some(t) => (t, train),
            None => (train.unwrap_or(l), None),
        };
        let tune_parts: Vec<Trained> = h.parts.iter().map(|p| hybrid_part(p, tl, tune_source, c, u, quiet)).collect::<Result<_>>()?;
        let refs: Vec<&dyn pulse_eval::Recommender> = tune_parts.iter().map(|t| t.model.as_ref()).collect();
        let users = sample_users(tl, h.tune_users, c.seed);
        let mut report = pulse_eval::hybrid::tune(&refs, &tl.split, &users, h.tune_candidates, h.grid_step, c.seed)?;
        report.parts = h.parts.clone();
        let tune_seconds = t0.elapsed().as_secs_f64();
        tracing::info!("hybrid: weights {:?} on {} ({} validation users, cand{} HR@1 {:.4}; parts alone {:?}), {tune_seconds:.0}s", report.weights, tl.ds.name, report.users, report.n_candidates, report.valid_hr1, report.part_hr1);
        let mix = |parts: Vec<Trained>| -> Result<(std::rc::Rc<dyn pulse_eval::Recommender>, serde_json::Map<String, serde_json::Value>, serde_json::Map<String, serde_json::Value>)> {
            let mut part_configs = serde_json::Map::new();
            let mut part_meta = serde_json::Map::new();
            let mut boxed = vec![];
            for ((name, t), &w) in h.parts.iter().zip(parts).zip(&report.weights) {
                part_configs.insert(name.clone(), t.config);
                part_meta.insert(name.clone(), t.meta);
                boxed.push((t.model, w));
            }
            Ok((std::rc::Rc::new(pulse_eval::Hybrid::new("hybrid", boxed)?), part_configs, part_meta))
        };
        let (tune, part_configs, part_meta) = mix(tune_parts)?;
        let (test, part_configs, part_meta) = match train {
            None => (tune.clone(), part_configs, part_meta),
            Some(src) => mix(h.parts.iter().map(|p| hybrid_part(p, l, Some(src), c, u, quiet)).collect::<Result<_>>()?)?,
        };
        *cache = Some(BuiltHybrid {
            test,
            tune,
            config: serde_json::json!({ "mix": hybrid_mix(c, train, u), "weights": report.weights, "parts": part_configs }),
            meta: serde_json::json!({ "tune": report, "tune_data": tl.ds.name, "tune_seconds": tune_seconds, "parts": part_meta }),
            third,
        });
    }
    Ok(cache.as_ref().expect("built above"))
}

/// The `hybrid` rows: the tuned hybrid ([`build_hybrid`]) ranks the experiment's test stage under every
/// protocol.
#[allow(clippy::too_many_arguments)]
fn hybrid_rows(
    c: &ExperimentConfig,
    l: &Loaded,
    train: Option<&Loaded>,
    u: &Untrained,
    dir: &Path,
    cache: &mut Option<BuiltHybrid>,
    rows: &mut BTreeMap<(String, String), PathBuf>,
    quiet: bool,
) -> Result<()> {
    let config = hybrid_mix(c, train, u);
    let mut todo = vec![];
    for pname in &c.protocols {
        let out = dir.join(format!("hybrid-{pname}.json"));
        rows.insert(("hybrid".into(), pname.clone()), out.clone());
        if let Ok(prev) = EvalReport::read(&out) {
            if prev.seed == c.seed && prev.config["data"] == serde_json::to_value(&c.data)? && prev.config["model"]["mix"] == config {
                tracing::info!("hybrid {pname}: already done ({})", out.display());
                continue;
            }
        }
        todo.push((pname.clone(), out));
    }
    if todo.is_empty() {
        return Ok(());
    }
    let b = build_hybrid(c, l, train, u, cache, quiet)?;
    let t = Trained { model: Box::new(pulse_eval::Shared(b.test.clone())), config: b.config.clone(), meta: b.meta.clone() };
    for (pname, out) in todo {
        let p = parse_protocol(&pname, c.mask_history)?;
        let o = run_protocol(l, &t, "hybrid", p, c.seed, None, c.bootstrap, None, quiet)?;
        write_outputs(&out, &o, &t)?;
    }
    Ok(())
}

/// A `<slm row>+hybrid` row: the SLM row's model (the base SLM or a tuned adapter) and the hybrid rank the
/// SLM rows' sample of test users' candidate lists together, each model's scores standardised over the
/// list and summed with the weight [`pulse_eval::hybrid::tune_lists`] picks on validation lists of the
/// domain the hybrid is tuned on (`[rerank]`; users the hybrid was not tuned on).
#[allow(clippy::too_many_arguments)]
fn fused_rows(
    c: &ExperimentConfig,
    l: &Loaded,
    train: Option<&Loaded>,
    u: &Untrained,
    dir: &Path,
    m: &str,
    var: Option<pulse_sft::data::Variant>,
    cache: &mut Option<BuiltHybrid>,
    rows: &mut BTreeMap<(String, String), PathBuf>,
    quiet: bool,
) -> Result<()> {
    let sl = c.slm.as_ref().expect("checked by load_config");
    let h = c.hybrid.as_ref().expect("checked by load_config");
    let rr = c.rerank.clone().unwrap_or_default();
    let key = serde_json::json!({ "row": m, "rerank": rr, "hybrid": hybrid_mix(c, train, u), "slm_section": sl });
    let mut todo = vec![];
    for (p, pname, out) in slm_protocols(c, sl, dir, m, rows)? {
        if let Ok(prev) = EvalReport::read(&out) {
            if prev.seed == c.seed && prev.config["data"] == serde_json::to_value(&c.data)? && prev.config["model"]["fusion"] == key {
                tracing::info!("{m} {pname}: already done ({})", out.display());
                continue;
            }
        }
        todo.push((p, out));
    }
    if todo.is_empty() {
        return Ok(());
    }
    let b = build_hybrid(c, l, train, u, cache, quiet)?;
    let adapter = var.map(|v| train_adapter(c, sl, v, quiet)).transpose()?;
    let adapter_path = adapter.as_ref().map(|a| a.0.as_path());
    // the weight: validation lists of the hybrid's tuning domain, users after the hybrid's own
    let t0 = std::time::Instant::now();
    let tl = b.third.as_ref().unwrap_or(train.unwrap_or(l));
    let users = crate::eval::sample_users_after(tl, h.tune_users, rr.tune_users, c.seed)?;
    let tune_slm = slm_ranker(tl, &sl.model, adapter_path, sl.rank.clone())?;
    let report = {
        let slm = &tune_slm;
        let pb = crate::util::progress(quiet, 2 * users.len() as u64, &format!("tune {m}"));
        let parts: [&dyn pulse_eval::Recommender; 2] = [b.tune.as_ref(), slm.model.as_ref()];
        let mut report = pulse_eval::hybrid::tune_lists(&parts, &tl.split, &users, rr.tune_candidates, rr.grid_step, c.seed, &mut |name, done| {
            pb.set_position((if name == "hybrid" { 0 } else { users.len() } + done) as u64)
        })?;
        pb.finish_and_clear();
        report.parts = vec!["hybrid".into(), m.strip_suffix("+hybrid").unwrap_or(m).to_string()];
        report
    };
    let tune_seconds = t0.elapsed().as_secs_f64();
    tracing::info!("{m}: weights {:?} on {} ({} validation users, cand{} HR@1 {:.4}; alone {:?}), {tune_seconds:.0}s", report.weights, tl.ds.name, report.users, report.n_candidates, report.valid_hr1, report.part_hr1);
    // in-domain the tuning ranker is already the one for the test data (same dataset, same score cache)
    let slm = match train {
        None => tune_slm,
        Some(_) => {
            drop(tune_slm);
            slm_ranker(l, &sl.model, adapter_path, sl.rank.clone())?
        }
    };
    let t = Trained {
        config: serde_json::json!({ "fusion": key, "weights": report.weights, "slm": slm.config, "sft_dir": adapter.as_ref().map(|a| &a.1), "hybrid": b.config }),
        meta: serde_json::json!({ "tune": report, "tune_data": tl.ds.name, "tune_seconds": tune_seconds, "slm": slm.meta, "hybrid": b.meta }),
        model: Box::new(pulse_eval::ListFusion::new(m, vec![(Box::new(pulse_eval::Shared(b.test.clone())), report.weights[0]), (slm.model, report.weights[1])])?),
    };
    let users = sample_users(l, sl.eval_users, c.seed);
    for (p, out) in todo {
        let o = run_protocol(l, &t, m, p, c.seed, None, c.bootstrap, Some(&users), quiet)?;
        write_outputs(&out, &o, &t)?;
    }
    Ok(())
}

/// `pulse experiment CONFIG --train-adapter VARIANT`: the adapter of the config's rows of that variant,
/// trained (or resumed / reused) with exactly the settings `run` would use, for scripts that rank with it
/// elsewhere (research/scripts/two-stage-full.sh) and so must not copy those settings. Returns the adapter's path.
pub fn train_adapter_only(config: &Path, v: pulse_sft::data::Variant, runner: &dyn StageRunner, quiet: bool) -> Result<PathBuf> {
    let c = load_config(config, runner)?;
    let Some(sl) = c.slm.as_ref() else {
        bail!("{}: --train-adapter needs an [slm] section (its store, sft config and train_users)", config.display());
    };
    if let Some(sn) = &c.snapshot {
        sn.restore()?;
    }
    Ok(train_adapter(&c, sl, v, quiet)?.0)
}

/// The SFT adapter for a variant: trained (or resumed / reused) under runs/sft/, keyed by everything
/// that shapes it, so in-domain and cross-domain tables share adapters.
fn train_adapter(c: &ExperimentConfig, sl: &SlmSection, v: pulse_sft::data::Variant, quiet: bool) -> Result<(PathBuf, String)> {
    let (tl, file, out) = adapter_dir(c, sl, v)?;
    let model = crate::opts::ModelArgs::defaults(&sl.model);
    let job = crate::sft::SftJob { variant: v, cfg: &file, store: &sl.store, model: &model, users: sl.train_users, seed: c.seed, out: &out, max_steps: None };
    let line = crate::sft::run_sft(&tl, &job, quiet)?;
    tracing::info!("{line}");
    Ok((out.join("adapter.gguf"), out.display().to_string()))
}

/// Where a variant's adapter is trained: a folder named by everything that makes it (data, SFT settings,
/// users, seed, store, model), so the same settings always land in the same folder.
fn adapter_dir(c: &ExperimentConfig, sl: &SlmSection, v: pulse_sft::data::Variant) -> Result<(crate::eval::Loaded, crate::sft::SftFile, PathBuf)> {
    let spec = sl.train_data.clone().unwrap_or_else(|| c.data.clone());
    let file: crate::sft::SftFile = read_toml(&sl.sft)?;
    let key = serde_json::to_string(&serde_json::json!({ "data": spec, "sft": file, "users": sl.train_users, "seed": c.seed, "store": sl.store, "model": sl.model }))?;
    let tl = load_data(&spec)?;
    let out = PathBuf::from("runs/sft").join(format!("{}-{}-{}", tl.ds.name, v.name(), crate::eval::short_hash(&key)));
    Ok((tl, file, out))
}

/// A tuned SLM row's result is kept without its adapter (a fresh checkout: runs/ is gone) when it was
/// ranked by an adapter of the very same settings — the same folder name, ranking settings, experiment
/// [slm] section and base GGUF; only the adapter's own hash, which needs the adapter, is not compared.
/// Training is deterministic (a resumed run gives the identical adapter; a retrain on a later build follows
/// the recorded loss curve to 3e-6 and ranks alike, research/scripts/retrain-check.sh), so retraining it only to
/// compare that hash would spend the SFT's hour for nothing.
fn kept_without_adapter(prev: &EvalReport, c: &ExperimentConfig, sl: &SlmSection, dir: &Path) -> Result<bool> {
    let m = &prev.config["model"];
    let adapter = dir.join("adapter.gguf");
    Ok(prev.seed == c.seed
        && prev.config["data"] == serde_json::to_value(&c.data)?
        && m["adapter"] == serde_json::json!(adapter)
        && m["sft_dir"] == serde_json::json!(dir.display().to_string())
        && m["rank"] == serde_json::to_value(&sl.rank)?
        && m["prompt_version"] == serde_json::json!(pulse_sft::rank::RANK_PROMPT_VERSION)
        && m["slm_section"] == serde_json::to_value(sl)?
        && m["slm"]["sha256"].as_str() == Some(pulse_slm::file_sha256(&sl.model)?.as_str()))
}

/// The candidate protocols an SLM row `m` (or a fused one) is scored on, each with its result file (entered
/// in `rows`): `[slm] protocols`, else the experiment's, the full catalogue left out.
fn slm_protocols(c: &ExperimentConfig, sl: &SlmSection, dir: &Path, m: &str, rows: &mut BTreeMap<(String, String), PathBuf>) -> Result<Vec<(pulse_eval::Protocol, String, PathBuf)>> {
    let mut out = vec![];
    for pname in sl.protocols.as_ref().unwrap_or(&c.protocols) {
        let p = parse_protocol(pname, c.mask_history)?;
        if matches!(p, pulse_eval::Protocol::Full { .. }) {
            continue;
        }
        let f = dir.join(format!("{m}-{pname}.json"));
        rows.insert((m.to_string(), pname.clone()), f.clone());
        out.push((p, pname.clone(), f));
    }
    Ok(out)
}

/// One SLM row: candidate protocols only (the full catalogue is out of an SLM's reach on a CPU).
#[allow(clippy::too_many_arguments)]
fn slm_rows(
    c: &ExperimentConfig,
    l: &crate::eval::Loaded,
    dir: &Path,
    m: &str,
    var: Option<pulse_sft::data::Variant>,
    rows: &mut BTreeMap<(String, String), PathBuf>,
    quiet: bool,
) -> Result<()> {
    let sl = c.slm.as_ref().expect("checked by load_config");
    let users = sample_users(l, sl.eval_users, c.seed);
    let mut ranker = None;
    for (p, pname, out) in slm_protocols(c, sl, dir, m, rows)? {
        if ranker.is_none() {
            if let (Some(v), Ok(prev)) = (var, EvalReport::read(&out)) {
                let (_, _, adir) = adapter_dir(c, sl, v)?;
                if !adir.join("adapter.gguf").is_file() && kept_without_adapter(&prev, c, sl, &adir)? {
                    tracing::info!("{m} {pname}: already done ({}; its adapter {} is not here and is not retrained for it)", out.display(), adir.display());
                    continue;
                }
            }
            let adapter = var.map(|v| train_adapter(c, sl, v, quiet)).transpose()?;
            let mut t = slm_ranker(l, &sl.model, adapter.as_ref().map(|a| a.0.as_path()), sl.rank.clone())?;
            t.config["sft_dir"] = serde_json::json!(adapter.as_ref().map(|a| &a.1));
            if let Some((_, sft_dir)) = &adapter {
                // the adapter's training record (seconds, steps, loss curve) goes with every row it ranks
                let f = Path::new(sft_dir).join("summary.json");
                t.meta["sft"] = read_json(&f)?["train"].clone();
            }
            t.config["slm_section"] = serde_json::to_value(sl)?;
            ranker = Some(t);
        }
        let t = ranker.as_ref().unwrap();
        if let Ok(prev) = EvalReport::read(&out) {
            if prev.seed == c.seed && prev.config["data"] == serde_json::to_value(&c.data)? && prev.config["model"] == t.config {
                tracing::info!("{m} {pname}: already done ({})", out.display());
                continue;
            }
        }
        let o = run_protocol(l, t, m, p, c.seed, None, c.bootstrap, Some(&users), quiet)?;
        write_outputs(&out, &o, t)?;
    }
    Ok(())
}

fn same_model_config(prev: &EvalReport, model: &str, c: &ExperimentConfig, u: &Untrained, train_name: Option<&str>) -> Result<bool> {
    Ok(match model {
        "sasrec" => prev.config["model"] == serde_json::to_value(&c.sasrec)?,
        "itemknn" => {
            let (m, s) = (&prev.config["model"], u.itemknn);
            m["window"] == serde_json::json!(s.window) && m["last"] == serde_json::json!(s.last) && m["decay"] == serde_json::json!(s.decay)
        }
        "lexical" => {
            let (m, s) = (&prev.config["model"], u.lexical.unwrap_or_default());
            m["terms"] == LEXICAL_TERMS
                && m["last"] == serde_json::json!(s.last)
                && m["decay"] == serde_json::json!(s.decay)
                && m["train_data"].as_str() == train_name
        }
        "content" => {
            let (m, s) = (&prev.config["model"], u.content);
            m["encoder"] == serde_json::to_value(&c.pulse_ts.encoder)?
                && m["center"].as_bool().unwrap_or(false) == c.pulse_ts.center
                && m["last"] == serde_json::json!(s.last)
                && m["decay"] == serde_json::json!(s.decay)
                && m["train_data"].as_str() == train_name
        }
        "text" | "pulse-ts-norat" | "pulse-ts" | "pulse-ts-text" => {
            // The stored model config is the experiment's [sasrec] with the text fields set, plus [pulse_ts]
            // (and, transferred, the dataset it was trained on).
            let mut m = prev.config["model"].clone();
            let (ts, trained_on) = m
                .as_object_mut()
                .map(|o| {
                    for k in ["items", "align_weight", "align_temperature"] {
                        o.remove(k);
                    }
                    (o.remove("pulse_ts"), o.remove("train_data"))
                })
                .unwrap_or_default();
            ts == Some(serde_json::to_value(&c.pulse_ts)?)
                && trained_on.as_ref().and_then(|v| v.as_str()) == train_name
                && m == serde_json::to_value(c.pulse_ts.sasrec_for_text(&c.sasrec)?)?
        }
        _ => true,
    })
}

/// Markdown table: one row per model, the headline metric of each protocol with its bootstrap 95% CI,
/// then paired differences of each model against the first, then wall times. `since`: the start of the
/// run rendering it — a row whose report is older was reused, not measured, and says so.
pub fn render_table(c: &ExperimentConfig, rows: &BTreeMap<(String, String), PathBuf>, dir: &Path, since: Option<std::time::SystemTime>) -> Result<String> {
    let headline = |p: &str| -> &[&str] {
        match p {
            "full" => &["ndcg@10", "hr@10"],
            _ => &["hr@1"],
        }
    };
    let mut s = String::new();
    let reports: Vec<EvalReport> = rows.values().map(|p| EvalReport::read(p)).collect::<std::result::Result<_, _>>()?;
    let dataset = reports.first().map(|r| r.dataset.clone()).unwrap_or_default();
    // the whole test set; SLM rows (a sample) say their n in their cells
    let n_users = reports.iter().map(|r| r.n_users).max().unwrap_or(0);
    let _ = writeln!(
        s,
        "### {} — {} ({} test users, seed {}, full ranking {})\n",
        c.name,
        dataset,
        n_users,
        c.seed,
        if c.mask_history { "with history masked" } else { "without history masking" }
    );
    let mut header = vec!["model".to_string()];
    for p in &c.protocols {
        for m in headline(p) {
            header.push(format!("{p} {m}"));
        }
    }
    let pending: Vec<&str> = c.models.iter().filter(|m| !rows.keys().any(|(rm, _)| rm == *m)).map(String::as_str).collect();
    if !pending.is_empty() {
        let _ = writeln!(s, "Not run yet (the experiment stopped before them; run it again to go on): {}.\n", pending.join(", "));
    }
    let _ = writeln!(s, "| {} |", header.join(" | "));
    let _ = writeln!(s, "|{}", "---|".repeat(header.len()));
    for m in &c.models {
        let mut cells = vec![m.clone()];
        for p in &c.protocols {
            let Some(path) = rows.get(&(m.clone(), p.clone())) else {
                cells.extend(headline(p).iter().map(|_| "–".to_string()));
                continue;
            };
            let r = EvalReport::read(path)?;
            let sample = if r.n_users != n_users { format!(" (n={})", r.n_users) } else { String::new() };
            for k in headline(p) {
                let v = r.metrics[*k];
                match r.ci95.get(*k) {
                    Some([lo, hi]) => cells.push(format!("{v:.4} [{lo:.3}, {hi:.3}]{sample}")),
                    None => cells.push(format!("{v:.4}{sample}")),
                }
            }
        }
        let _ = writeln!(s, "| {} |", cells.join(" | "));
    }
    if c.models.len() > 1 {
        let base = &c.models[0];
        let _ = writeln!(s, "\nPaired bootstrap ({} resamples), difference vs {base} [95% CI]:\n", c.bootstrap.max(200));
        let _ = writeln!(s, "| model | {} |", header[1..].join(" | "));
        let _ = writeln!(s, "|{}", "---|".repeat(header.len()));
        for m in &c.models[1..] {
            let mut cells = vec![format!("{m} − {base}")];
            for p in &c.protocols {
                let (Some(pa), Some(pb)) = (rows.get(&(m.clone(), p.clone())), rows.get(&(base.clone(), p.clone()))) else {
                    cells.extend(headline(p).iter().map(|_| "–".to_string()));
                    continue;
                };
                let ra = RankFile::read(&RankFile::path_for(pa))?;
                let rb = RankFile::read(&RankFile::path_for(pb))?;
                // pair users both rows ranked (SLM rows rank a sample)
                let pairs = ra.paired(&rb);
                for k in headline(p) {
                    let va: Vec<f64> = pairs.iter().map(|&(r, _)| per_user_value(k, r).unwrap()).collect();
                    let vb: Vec<f64> = pairs.iter().map(|&(_, r)| per_user_value(k, r).unwrap()).collect();
                    let ci = paired_bootstrap(&va, &vb, c.bootstrap.max(200), c.seed);
                    cells.push(format!("{:+.4} [{:+.3}, {:+.3}]", ci.estimate, ci.lo, ci.hi));
                }
            }
            let _ = writeln!(s, "| {} |", cells.join(" | "));
        }
    }
    s.push_str(&wall_times(c, rows, dir, since)?);
    Ok(s)
}

/// Wall time per stage on the machine that ran it: training (epochs + validation of the SASRec family; LoRA
/// SFT of the SLM rows) and ranking per protocol, from each row's meta file.
fn wall_times(c: &ExperimentConfig, rows: &BTreeMap<(String, String), PathBuf>, dir: &Path, since: Option<std::time::SystemTime>) -> Result<String> {
    let mut s = String::new();
    if !c.stages.is_empty() {
        let _ = writeln!(s, "\nPipeline stages (wall time, summed over the runs an interruption split it into; s):\n");
        let _ = writeln!(s, "| stage | command | seconds | runs |\n|---|---|---|---|");
        for st in &c.stages {
            let f = dir.join("stages").join(format!("{}.json", st.name));
            let rec = std::fs::read(&f).ok().and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok()).unwrap_or_default();
            let mut secs = rec["seconds"].as_f64().map_or("–".into(), |v| format!("{v:.0}"));
            if rec["seconds"].is_f64() && since.is_some_and(|t| !written_since(&f, t)) {
                secs.push_str(&format!(" (reused, {})", measured_on(&f, &rec)));
            }
            // markers written before runs were counted (only the finishing run's time): "–"
            let runs = rec["attempts"].as_u64().map_or("–".into(), |n| n.to_string());
            let _ = writeln!(s, "| {} | `pulse {}` | {secs} | {runs} |", st.name, st.run.join(" "));
        }
    }
    let _ = writeln!(s, "\nWall time (s): training, then ranking per protocol (a reused row or checkpoint says when it was measured):\n");
    let _ = writeln!(s, "| model | training | {} |", c.protocols.join(" | "));
    let _ = writeln!(s, "|{}", "---|".repeat(c.protocols.len() + 2));
    for m in &c.models {
        let mut train = None;
        let mut cells = vec![];
        for p in &c.protocols {
            let Some(path) = rows.get(&(m.clone(), p.clone())) else {
                cells.push("–".to_string());
                continue;
            };
            let f = path.with_extension("meta.json");
            let meta = read_json(&f)?;
            let reused = since.is_some_and(|t| !written_since(path, t));
            let mut cell = meta["eval_seconds"].as_f64().map_or("–".into(), |v| format!("{v:.0}"));
            if reused {
                cell.push_str(&format!(" (reused, {})", measured_on(&f, &meta)));
            }
            cells.push(cell);
            let tr = &meta["model"]["train"];
            let sasrec = tr["epoch_seconds"].as_array().map(|e| e.iter().filter_map(|v| v.as_f64()).sum::<f64>() + tr["valid_seconds"].as_f64().unwrap_or(0.0));
            let recorded = sasrec.or(meta["model"]["sft"]["seconds"].as_f64()).or(meta["model"]["tune_seconds"].as_f64());
            if train.is_none() {
                train = recorded.map(|v| {
                    let this_call = meta["model"]["train_seconds_this_call"].as_f64();
                    match this_call {
                        // the checkpoint was finished by an earlier run: its epochs were not timed now
                        Some(t) if !reused && t < 0.5 * v => format!("{v:.0} (checkpoint reused; {t:.0} this run)"),
                        _ if reused => format!("{v:.0} (reused, {})", measured_on(&f, &meta)),
                        _ => format!("{v:.0}"),
                    }
                });
            }
        }
        let _ = writeln!(s, "| {m} | {} | {} |", train.unwrap_or_else(|| "–".into()), cells.join(" | "));
    }
    Ok(s)
}

/// Whether `f` was (re)written at or after `t`.
fn written_since(f: &Path, t: std::time::SystemTime) -> bool {
    std::fs::metadata(f).and_then(|m| m.modified()).is_ok_and(|m| m >= t)
}

/// "measured YYYY-MM-DD" from a record's `measured_at`, else the record predates dated records.
fn measured_on(f: &Path, rec: &serde_json::Value) -> String {
    match rec["measured_at"].as_str() {
        Some(d) => format!("measured {}", &d[..d.len().min(10)]),
        None => {
            tracing::debug!("{}: no measured_at", f.display());
            "measured before dates were recorded".into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_outputs_are_the_paths_after_output_flags() {
        let st = Stage {
            name: "tot".into(),
            run: ["tot", "--store", "runs/s.sqlite", "--space", "runs/space", "--summary=results/t.json", "--out"]
                .map(String::from)
                .to_vec(),
            before: None,
        };
        // --space is an input; a trailing flag without a value names nothing
        assert_eq!(st.outputs(), vec![PathBuf::from("runs/s.sqlite"), PathBuf::from("results/t.json")]);
        let st = Stage { name: "e".into(), run: ["eval", "--outdir", "x", "--out", "r.json"].map(String::from).to_vec(), before: None };
        assert_eq!(st.outputs(), vec![PathBuf::from("r.json")]);
    }
}
