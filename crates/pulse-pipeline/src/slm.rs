//! PULSE steps 2–4 as library calls: initial rationales into the store (pulse-rationale), the Thought
//! Space (pulse-thought) and Tree-of-Thought refinement (pulse-tot). Each returns the report line the
//! binary prints.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use pulse_rationale::{RationaleConfig, RunOptions, Store};

use crate::engine::load_engine;
use crate::eval::{load_data, DataSpec, Loaded};
use crate::opts::{RationaleSource, RationalesRun, ScoreArg, TotArgs};
use crate::util::{open_existing_store, progress_bar, read_toml};


/// Reports a generation stage's progress (users done, prompt / generated tokens per second) to `pb`.
fn report_to(pb: &indicatif::ProgressBar) -> impl FnMut(&pulse_rationale::Progress) + '_ {
    let t0 = Instant::now();
    move |p| {
        pb.set_length(p.total as u64);
        pb.set_position(p.done as u64);
        let s = t0.elapsed().as_secs_f64().max(1e-3);
        pb.set_message(format!("{:.0} prompt tok/s, {:.0} gen tok/s", p.prompt_tokens as f64 / s, p.new_tokens as f64 / s));
    }
}

/// `pulse rationales`: an initial rationale for each user's last training choice into the store
/// (resumable); returns the report line.
pub fn rationales(run: &RationalesRun, quiet: bool) -> Result<String> {
    let cfg: RationaleConfig = run.config.as_deref().map(read_toml).transpose()?.unwrap_or_default();
    cfg.sampling.validate()?;
    let l = load_data(&DataSpec::from(&run.data))?;
    let mut engine = load_engine(&run.model)?;
    let store = Store::open(&run.store)?;
    let pb = progress_bar(quiet, "rationales [{bar:30}] {pos}/{len} {msg} eta {eta}");
    let opts = RunOptions { seed: run.seed, users: run.users, slice: run.slice };
    let summary = pulse_rationale::run(&mut engine, &l.ds, &l.split, &cfg, &opts, &store, &mut report_to(&pb))?;
    pb.finish_and_clear();
    let failed = summary.status.get("raw").copied().unwrap_or(0);
    let line = format!(
        "{}: {} users asked, {} already stored, {} generated ({} parse failures, {:.1}%), {} prompt + {} new tokens in {:.1}s → {}",
        summary.dataset,
        summary.requested,
        summary.already_stored,
        summary.generated,
        failed,
        100.0 * summary.parse_failure_rate(),
        summary.prompt_tokens,
        summary.new_tokens,
        summary.seconds,
        run.store.display()
    );
    // A run that generated nothing (everything was stored) keeps the summary of the run that did.
    if let Some(p) = run.summary.as_ref().filter(|p| summary.generated > 0 || !p.exists()) {
        let v = serde_json::json!({ "summary": summary, "config": cfg, "store": run.store, "data": l.spec });
        pulse_eval::write_atomic(p, serde_json::to_string_pretty(&v)?.as_bytes())?;
    }
    Ok(line)
}

/// `rationales import`: all or nothing; a store this call created is removed again when the file is bad.
pub fn import(from: &Path, store: &Path) -> Result<pulse_rationale::export::Imported> {
    let f = std::fs::File::open(from).with_context(|| format!("{}: cannot open", from.display()))?;
    let existed = store.exists();
    let r = Store::open(store).and_then(|st| pulse_rationale::export::import_jsonl(&st, &mut std::io::BufReader::new(f), from));
    if r.is_err() && !existed {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", store.display()));
        }
    }
    Ok(r?)
}

/// `rationales export --out`: the store (optionally one method) as JSON lines, written atomically.
pub fn export_to(st: &Store, method: Option<&str>, out: &Path) -> Result<usize> {
    let mut buf = Vec::new();
    let n = pulse_rationale::export::export_jsonl(st, method, &mut buf)?;
    pulse_eval::write_atomic(out, &buf)?;
    Ok(n)
}

/// `rationales export`: the store (optionally one method) as JSON lines, to `out` or to stdout.
pub fn export(store: &Path, method: Option<&str>, out: Option<&Path>) -> Result<()> {
    let st = open_existing_store(store)?;
    match out {
        None => {
            let stdout = std::io::stdout();
            let mut lock = stdout.lock();
            pulse_rationale::export::export_jsonl(&st, method, &mut lock)?;
        }
        Some(p) => {
            let n = export_to(&st, method, p)?;
            tracing::info!("{n} rationales → {}", p.display());
        }
    }
    Ok(())
}


/// `pulse thought train`: the space, its report and held-out choices under `out`; one line per measure.
pub fn thought_train(src: &RationaleSource, config: Option<&Path>, holdout: usize, seed: u64, out: &Path) -> Result<Vec<String>> {
    let RationaleSource { data, store, method, encoder } = src;
    let cfg: pulse_thought::SpaceConfig = config.map(read_toml).transpose()?.unwrap_or_default();
    let st = open_existing_store(store)?;
    let l = load_data(&DataSpec::from(data))?;
    let enc = pulse_thought::SentenceEncoder::load(encoder, 128)?;
    std::fs::create_dir_all(out)?;
    let mut cache = pulse_thought::EmbeddingCache::open(&out.join("embeddings.cache"), &enc)?;
    let (space, report) =
        pulse_thought::train::train_from_store(&st, method, &l.ds, &enc, &mut cache, &cfg, holdout, seed)?;
    pulse_thought::train::save(&space, &report, out)?;
    let mut lines = Vec::new();
    if let (Some(u), Some(t)) = (report.item_untrained, report.item_trained) {
        lines.push(format!(
            "{}: which item, among {} with the same history: R@1 untrained {:.3} → trained {:.3}; MRR {:.3} → {:.3}",
            report.dataset, t.pool, u.r_at_1, t.r_at_1, u.mrr, t.mrr
        ));
    }
    lines.push(format!(
        "{}: {} training pairs, {} held out; rationale↔behaviour R@1 (1 of {}): untrained {:.3} → trained {:.3}; MRR {:.3} → {:.3} ({:.0}s) → {}",
        report.dataset,
        report.pairs_train,
        report.pairs_heldout,
        report.trained.pool,
        report.untrained.r_at_1,
        report.trained.r_at_1,
        report.untrained.mrr,
        report.trained.mrr,
        report.seconds,
        out.display()
    ));
    Ok(lines)
}

/// `pulse thought eval`: a trained space measured on a store's rationales; one line on stdout, the report
/// also as JSON with --out (written whole or not at all).
pub fn thought_eval(
    src: &RationaleSource,
    space_dir: &Path,
    negatives: usize,
    heldout: bool,
    seed: u64,
    out: Option<&Path>,
) -> Result<String> {
    let RationaleSource { data, store, method, encoder } = src;
    let st = open_existing_store(store)?;
    if !space_dir.join("space.safetensors").is_file() {
        bail!("{}: no space.safetensors (train one with `pulse thought train --out`)", space_dir.display());
    }
    let only = heldout.then(|| pulse_thought::train::load_held_out(space_dir)).transpose()?;
    let l = load_data(&DataSpec::from(data))?;
    let enc = pulse_thought::SentenceEncoder::load(encoder, 128)?;
    let space = pulse_thought::train::load(space_dir, &enc)?;
    let mut cache = pulse_thought::EmbeddingCache::in_memory(&enc);
    let r = pulse_thought::train::evaluate_on_store(&st, method, &l.ds, &enc, &mut cache, &space, negatives, only.as_ref(), seed)?;
    if let Some(p) = out {
        pulse_eval::write_atomic(p, serde_json::to_string_pretty(&r)?.as_bytes())?;
    }
    let item = match (r.item_frozen, r.item_space) {
        (Some(f), Some(s)) => format!("; which item R@1 (1 of {}): frozen {:.3}, space {:.3}, MRR {:.3}, {:.3}", s.pool, f.r_at_1, s.r_at_1, f.mrr, s.mrr),
        _ => String::new(),
    };
    Ok(format!(
        "{} {} ({} pairs{}): rationale↔behaviour R@1 (1 of {}): frozen {:.3}, space {:.3}, MRR {:.3}, {:.3}{item}",
        r.dataset,
        r.method,
        r.pairs,
        if r.held_out_only { ", held out" } else { "" },
        r.space.pool,
        r.frozen.r_at_1,
        r.space.r_at_1,
        r.frozen.mrr,
        r.space.mrr
    ))
}

/// `pulse tot`: Tree-of-Thought refinement of each training choice's rationale into the store
/// (resumable); returns the report line.
pub fn tot(a: &TotArgs, quiet: bool) -> Result<String> {
    use pulse_tot::{LikelihoodScorer, Scoring, SpaceScorer, TotConfig};
    let cfg: TotConfig = a.config.as_deref().map(read_toml).transpose()?.unwrap_or_default();
    cfg.validate()?;
    let sasrec_cfg = crate::eval::sasrec_config(a.sasrec.as_deref(), None, None)?;
    let scoring = match a.score {
        ScoreArg::Space => Scoring::Space,
        ScoreArg::Likelihood => Scoring::Likelihood,
    };
    // Check every input before the slow parts.
    if let Err(e) = cfg.check_judge(scoring) {
        bail!("{}: {e}", a.config.as_deref().map_or("tot config".into(), |p| p.display().to_string()));
    }
    let space_dir = match (scoring, &a.space) {
        (Scoring::Space, None) => bail!("--score space needs --space DIR (a `pulse thought train --out` folder)"),
        (Scoring::Space, Some(d)) if !d.join("space.safetensors").is_file() => {
            bail!("{}: no space.safetensors (train one with `pulse thought train --out`)", d.display())
        }
        (_, d) => d.clone(),
    };
    let l = load_data(&DataSpec::from(&a.data))?;
    let store = Store::open(&a.store)?;
    let enc = match scoring {
        Scoring::Space => Some(pulse_thought::SentenceEncoder::load(&a.encoder, 128)?),
        Scoring::Likelihood => None,
    };
    let space = match (&enc, &space_dir) {
        (Some(e), Some(d)) => Some((pulse_thought::train::load(d, e)?, pulse_slm::file_sha256(&d.join("space.safetensors"))?)),
        _ => None,
    };
    // Nothing to refine (e.g. a config check with --users 0): no need for the SASRec behind similar users.
    let neighbours = if a.users == Some(0) { Default::default() } else { similar_users(&l, &cfg, &sasrec_cfg, a.users, a.neighbours.as_deref(), quiet)? };
    let mut engine = load_engine(&a.model)?;
    let mut space_scorer;
    let mut lik = LikelihoodScorer;
    let scorer: &mut dyn pulse_tot::ChainScorer = match (&enc, &space) {
        (Some(e), Some((s, sha))) => {
            space_scorer = SpaceScorer::new(e, s, sha[..16].to_string());
            &mut space_scorer
        }
        _ => &mut lik,
    };
    let pb = progress_bar(quiet, "tot [{bar:30}] {pos}/{len} users {msg} eta {eta}");
    let opts = pulse_tot::RunOptions { seed: a.seed, users: a.users };
    let summary = pulse_tot::run(&mut engine, scorer, &l.ds, &l.split, &neighbours, &cfg, scoring, &opts, &store, &mut report_to(&pb))?;
    pb.finish_and_clear();
    let line = format!(
        "{}: {} users asked, {} already stored, {} refined ({}; mean chain score {:.4}); {} thoughts ({} hit the token limit), {} prompt + {} new tokens in {:.1}s → {}",
        summary.dataset,
        summary.requested,
        summary.already_stored,
        summary.refined,
        summary.method,
        summary.mean_score,
        summary.thoughts,
        summary.thoughts_truncated,
        summary.prompt_tokens,
        summary.new_tokens,
        summary.seconds,
        a.store.display()
    );
    // A run that refined nothing (everything was stored) keeps the summary of the run that did.
    if let Some(p) = a.summary.as_ref().filter(|p| summary.refined > 0 || !p.exists()) {
        let v = serde_json::json!({ "summary": summary, "config": cfg, "similar_sasrec": sasrec_cfg, "store": a.store, "space": space_dir, "data": l.spec });
        pulse_eval::write_atomic(p, serde_json::to_string_pretty(&v)?.as_bytes())?;
    }
    Ok(line)
}

/// Method step 1: each training choice's most similar users by cosine of SASRec user representations
/// (SASRec with `sasrec_cfg`, seed 42; trained once and then reused from its checkpoint). With `cache`,
/// the lists of the first `users` choices are read from that file when its key (dataset, split, SASRec
/// checkpoint and its code version, list sizes) matches and it has every one of them; otherwise they are computed and the file
/// is (re)written.
fn similar_users(
    l: &Loaded,
    cfg: &pulse_tot::TotConfig,
    sasrec_cfg: &pulse_baselines::sasrec::SasRecConfig,
    users: Option<usize>,
    cache: Option<&Path>,
    quiet: bool,
) -> Result<std::collections::HashMap<u32, pulse_tot::Neighbours>> {
    if cfg.similar_users == 0 {
        return Ok(Default::default());
    }
    let dir = crate::eval::default_checkpoint_dir(l, sasrec_cfg, 42);
    let (choices, _) = pulse_rationale::training_choices(&l.split);
    let wanted = &choices[..users.map_or(choices.len(), |n| n.min(choices.len()))];
    let key = serde_json::json!({
        "dataset": l.ds.name,
        "split": l.split.fingerprint,
        "sasrec_checkpoint": dir.file_name().map(|n| n.to_string_lossy().into_owned()),
        "sasrec_version": pulse_baselines::sasrec::CHECKPOINT_VERSION,
        "similar_users": cfg.similar_users,
        "similar_items": cfg.similar_items,
    });
    if let Some(p) = cache.filter(|p| p.is_file()) {
        match read_neighbours(l, p, &key, wanted) {
            Ok(Some(m)) => {
                tracing::info!("similar users: {} users' lists from {}", m.len(), p.display());
                return Ok(m);
            }
            Ok(None) => tracing::info!("similar users: {} is for other settings or users; computing them again", p.display()),
            Err(e) => bail!("{}: {e}", p.display()),
        }
    }
    tracing::info!("similar users: SASRec user representations (checkpoint {}, trained if missing)", dir.display());
    let opts = pulse_baselines::sasrec::TrainOptions { seed: 42, checkpoint_dir: Some(dir), quiet, stop_after_epochs: None, ..Default::default() };
    let (model, _) = pulse_baselines::sasrec::train(&l.split, sasrec_cfg, &opts)?;
    let hist: Vec<&[u32]> = choices.iter().map(|c| c.history.as_slice()).collect();
    let reps = model.user_repr(&hist)?;
    let all = pulse_tot::neighbours_from_reps(&l.split, &choices, &reps, cfg.similar_users, cfg.similar_items, std::thread::available_parallelism().map_or(1, |n| n.get()));
    if let Some(p) = cache {
        let ds = &l.ds;
        let rows: Vec<serde_json::Value> = wanted
            .iter()
            .map(|c| {
                let lists: Vec<Vec<&str>> = all[&c.user].iter().map(|li| li.iter().map(|&i| ds.items[i as usize].id.as_str()).collect()).collect();
                serde_json::json!({ "user": ds.users[c.user as usize].id, "lists": lists })
            })
            .collect();
        let v = serde_json::json!({ "key": key, "users": rows });
        pulse_eval::write_atomic(p, serde_json::to_string_pretty(&v)?.as_bytes())?;
        tracing::info!("similar users: {} users' lists → {}", rows.len(), p.display());
    }
    Ok(all)
}

/// The cached lists when `p` has `key` and every wanted user; `None` when it is for something else.
fn read_neighbours(
    l: &Loaded,
    p: &Path,
    key: &serde_json::Value,
    wanted: &[pulse_rationale::Choice],
) -> Result<Option<std::collections::HashMap<u32, pulse_tot::Neighbours>>> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Row {
        user: String,
        lists: Vec<Vec<String>>,
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        key: serde_json::Value,
        users: Vec<Row>,
    }
    let f: File = serde_json::from_slice(&std::fs::read(p)?).context("not a similar-users file")?;
    if &f.key != key {
        return Ok(None);
    }
    let users: std::collections::HashMap<&str, u32> = l.ds.users.iter().enumerate().map(|(i, u)| (u.id.as_str(), i as u32)).collect();
    let items: std::collections::HashMap<&str, u32> = l.ds.items.iter().enumerate().map(|(i, it)| (it.id.as_str(), i as u32)).collect();
    let mut m = std::collections::HashMap::new();
    for r in &f.users {
        let u = *users.get(r.user.as_str()).ok_or_else(|| anyhow::anyhow!("user {:?} is not in the dataset", r.user))?;
        let lists = r
            .lists
            .iter()
            .map(|li| li.iter().map(|i| items.get(i.as_str()).copied().ok_or_else(|| anyhow::anyhow!("item {i:?} is not in the dataset"))).collect())
            .collect::<Result<Vec<Vec<u32>>>>()?;
        m.insert(u, lists);
    }
    Ok(wanted.iter().all(|c| m.contains_key(&c.user)).then_some(m))
}
