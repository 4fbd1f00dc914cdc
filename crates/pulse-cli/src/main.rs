//! `pulse` — the binary: parses arguments (args.rs), calls the pipeline library (pulse-pipeline) and
//! prints what it returns. Nothing else lives here.

mod args;
mod slm;

use anyhow::{bail, Result};
use args::{Cli, Cmd, DataCmd, PlotCmd, RationalesCmd, ThoughtCmd};
use clap::Parser;
use pulse_pipeline::error_line;
use pulse_pipeline::eval::{load_data, DataSpec};
use pulse_pipeline::opts::ExportFormat;

/// Keep freed memory in the process. Training allocates and frees gigabytes of activations per step;
/// glibc's defaults hand blocks over 128 KiB–32 MiB back to the kernel on free, and every step then
/// pays for fresh zeroed pages again (measured here: LoRA SFT 7.4 s per example with mimalloc's
/// defaults, 4.1–4.7 s with this; peak memory unchanged).
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes glibc malloc parameters; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, -1); // -1: never trim
    }
}

fn main() {
    keep_freed_memory();
    let cli = Cli::parse();
    let level = if cli.quiet { "error" } else { "info" };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| level.into()))
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .init();
    if let Err(e) = run(cli) {
        eprintln!("error: {}", error_line(&e));
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let quiet = cli.quiet;
    let print = |lines: Vec<String>| lines.iter().for_each(|l| println!("{l}"));
    match cli.cmd {
        Cmd::Data { cmd: DataCmd::Stats { data, json } } => {
            let l = load_data(&DataSpec::from(&data))?;
            let st = pulse_data::stats(&l.ds, &l.split);
            if json {
                println!("{}", serde_json::to_string_pretty(&st)?);
            } else {
                print!("{}", stats_table(&st));
            }
        }
        Cmd::Eval(a) => print(pulse_pipeline::evaluate::eval(&a, quiet)?),
        Cmd::Compare(a) => print(pulse_pipeline::evaluate::compare(&pulse_pipeline::evaluate::CompareOptions {
            a: &a.a,
            b: &a.b,
            metric: &a.metric,
            resamples: a.resamples,
            seed: a.seed,
            common: a.common,
        })?),
        Cmd::Experiment(a) => match a.train_adapter {
            Some(v) => {
                let adapter = pulse_pipeline::experiment::train_adapter_only(&a.config, pulse_pipeline::sft::variant(v), &Stages, quiet)?;
                println!("{}", adapter.display());
            }
            None => print!("{}", pulse_pipeline::experiment::run(&a.config, &a.results, &Stages, quiet)?),
        },
        Cmd::Slm { cmd } => slm::run(cmd)?,
        Cmd::Rationales(a) => match a.cmd {
            Some(RationalesCmd::Export { store, format: ExportFormat::Jsonl, method, out }) => {
                pulse_pipeline::slm::export(&store, method.as_deref(), out.as_deref())?
            }
            Some(RationalesCmd::Import { from, store }) => {
                let n = pulse_pipeline::slm::import(&from, &store)?;
                println!("{}: {} rationales read, {} new → {}", from.display(), n.read, n.inserted, store.display());
            }
            None => println!("{}", pulse_pipeline::slm::rationales(&a.run, quiet)?),
        },
        Cmd::Thought { cmd: ThoughtCmd::Train { src, config, holdout, seed, out } } => {
            print(pulse_pipeline::slm::thought_train(&src, config.as_deref(), holdout, seed, &out)?)
        }
        Cmd::Thought { cmd: ThoughtCmd::Eval { src, space, negatives, heldout, seed, out } } => {
            println!("{}", pulse_pipeline::slm::thought_eval(&src, &space, negatives, heldout, seed, out.as_deref())?)
        }
        Cmd::Tot(a) => println!("{}", pulse_pipeline::slm::tot(&a, quiet)?),
        Cmd::Sft(a) => println!("{}", pulse_pipeline::sft::sft(&a, quiet)?),
        Cmd::Fit(a) => print(pulse_pipeline::fit::fit(&pulse_pipeline::fit::FitOptions { config: a.config, data: a.data, out: a.out, quiet })?),
        Cmd::Recommend(a) => recommend(a)?,
        Cmd::Serve(a) => serve(a)?,
        Cmd::ExplainCheck(a) => explain_check(a)?,
        Cmd::Plot { cmd: PlotCmd::ThoughtSpace { space, encoder, domain, methods, users, seed, out } } => {
            let plot = pulse_pipeline::plot::ThoughtSpacePlot { space: &space, encoder: &encoder, domain: &domain, methods: &methods, users, seed, out: &out };
            println!("{}", pulse_pipeline::plot::thought_space(&plot)?)
        }
    }
    Ok(())
}

fn recommend(a: args::RecommendArgs) -> Result<()> {
    use pulse_recommend::query::{clip_history, render, resolve, Who, MAX_K};
    let mode: pulse_recommend::Mode = a.model.parse().map_err(|e: String| anyhow::anyhow!("--model: {e}"))?;
    if a.k == 0 || a.k > MAX_K {
        bail!("-k {}: give 1 to {MAX_K}", a.k);
    }
    let e = pulse_recommend::Engine::load(&a.bundle)?;
    let who = match (a.user, a.history, a.titles) {
        (Some(u), _, _) => Who::User(u),
        (_, Some(h), _) => Who::Ids(h.into_iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()),
        (_, _, Some(t)) => Who::Titles(t),
        _ => bail!("give --user, --history or --titles"),
    };
    let full = resolve(&e, &who)?;
    let history = clip_history(&full).to_vec();
    let req = pulse_recommend::Request { history: history.clone(), k: a.k, exclude_history: !a.include_history, mode, leave_one_out: a.leave_one_out };
    let recs = e.recommend(&req)?;
    if a.json {
        let out = serde_json::json!({ "model": a.model, "history": history.iter().map(|&i| &e.catalogue.items[i as usize].id).collect::<Vec<_>>(), "items": recs });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print!("{}", render(&e, &history, &recs, &a.model));
    }
    Ok(())
}

fn serve(a: args::ServeArgs) -> Result<()> {
    if a.openapi {
        print!("{}", pulse_serve::openapi_json());
        return Ok(());
    }
    pulse_serve::check_bind(a.addr, a.token.as_deref())?;
    let t = std::time::Instant::now();
    let bundle = a.bundle.clone().expect("clap requires --bundle without --openapi");
    let engine = std::sync::Arc::new(pulse_recommend::Engine::load(&bundle)?);
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(w) = a.workers {
        rt.worker_threads(w.max(1));
    }
    let rt = rt.enable_all().build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(a.addr).await.map_err(|e| anyhow::anyhow!("{}: {e}", a.addr))?;
        let m = &engine.bundle.manifest;
        eprintln!(
            "pulse serve: {} ({} items, {} users) loaded in {:.2} s; listening on http://{} (page at /, API at /v1/){}",
            m.name,
            engine.n_items(),
            engine.users.len(),
            t.elapsed().as_secs_f64(),
            listener.local_addr()?,
            if a.token.is_some() { "; bearer token required on /v1/* and /metrics" } else { "" }
        );
        let state = pulse_serve::AppState::new(engine.clone(), a.token.clone());
        pulse_serve::serve(listener, pulse_serve::router(state, a.max_body_bytes), pulse_serve::shutdown_signal()).await?;
        eprintln!("pulse serve: stopped");
        anyhow::Ok(())
    })
}

fn explain_check(a: args::ExplainCheckArgs) -> Result<()> {
    use pulse_recommend::necessity::{measure, sample_users};
    let t = std::time::Instant::now();
    let e = pulse_recommend::Engine::load(&a.bundle)?;
    let users = sample_users(&e, a.users, a.seed);
    let mut rows = vec![];
    println!("{}: top-1 of {} users (seed {}), cited history items removed vs as many random ones; leaves top-{}", e.bundle.manifest.name, users.len(), a.seed, a.k);
    println!("| model | evidence | users | cited (mean) | PN cited | PN random | mean rank drop cited | random | median drop cited | random | cited = whole window |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (mode, loo) in [(pulse_recommend::Mode::PulseTs, false), (pulse_recommend::Mode::PulseTs, true), (pulse_recommend::Mode::Hybrid, false), (pulse_recommend::Mode::Hybrid, true)] {
        let r = measure(&e, &users, mode, loo, a.k, a.seed);
        println!(
            "| {} | {} | {} | {:.2} | {:.3} | {:.3} | {:.1} | {:.1} | {:.0} | {:.0} | {} |",
            if mode == pulse_recommend::Mode::Hybrid { "hybrid" } else { "pulse-ts" },
            if loo { "leave-one-out" } else { "parts" },
            r.users,
            r.mean_cited,
            r.pn_cited,
            r.pn_random,
            r.rank_drop_cited,
            r.rank_drop_random,
            r.median_drop_cited,
            r.median_drop_random,
            r.whole_history
        );
        rows.push(r);
    }
    println!("measured in {:.0} s", t.elapsed().as_secs_f64());
    if let Some(out) = a.out {
        let m = &e.bundle.manifest;
        let j = serde_json::json!({
            "bundle": { "name": m.name, "created_at": m.created_at, "code_version": m.code_version, "dataset": m.dataset, "hybrid": e.settings.hybrid_parts.iter().zip(&e.settings.hybrid_weights).collect::<Vec<_>>() },
            "settings": { "users": a.users, "k": a.k, "seed": a.seed },
            "measured_at": pulse_pipeline::util::utc_now(),
            "rows": rows,
        });
        pulse_eval::write_atomic(&out, (serde_json::to_string_pretty(&j)? + "\n").as_bytes()).map_err(|e| anyhow::anyhow!("{}: {e}", out.display()))?;
        println!("wrote {}", out.display());
    }
    Ok(())
}

/// Experiment stages: the words after `pulse`, parsed and run as this binary's own subcommands.
struct Stages;

impl Stages {
    fn parse(words: &[String], quiet: bool) -> Result<Cli> {
        let argv = std::iter::once("pulse").chain(quiet.then_some("-q")).chain(words.iter().map(String::as_str));
        let cli = Cli::try_parse_from(argv).map_err(|e| anyhow::anyhow!("{}", e.to_string().trim()))?;
        if matches!(cli.cmd, Cmd::Experiment(_)) {
            bail!("an experiment cannot run another experiment");
        }
        Ok(cli)
    }
}

impl pulse_pipeline::experiment::StageRunner for Stages {
    fn check(&self, words: &[String]) -> Result<()> {
        Self::parse(words, false).map(drop)
    }

    fn run(&self, words: &[String], quiet: bool) -> Result<()> {
        run(Self::parse(words, quiet)?)
    }
}

fn stats_table(s: &pulse_data::Stats) -> String {
    let rows: Vec<(&str, String)> = vec![
        ("dataset", s.dataset.clone()),
        ("format", s.format.clone()),
        ("users", s.users.to_string()),
        ("items", s.items.to_string()),
        ("interactions", s.interactions.to_string()),
        ("avg length", format!("{:.2}", s.avg_length)),
        ("min / max length", format!("{} / {}", s.min_length, s.max_length)),
        ("repeated (user,item) pairs", s.repeated_pairs.to_string()),
        ("title coverage", format!("{:.2}% ({} empty, fallback text used)", 100.0 * s.title_coverage, s.empty_titles)),
        ("items with description", s.with_description.to_string()),
        ("interactions with rating / review", format!("{} / {}", s.with_rating, s.with_review)),
        ("users in split (>= 3 events)", s.split_users.to_string()),
        ("users dropped (too short)", s.dropped_short_users.to_string()),
        ("repeat test targets", s.repeat_test_targets.to_string()),
    ];
    let w = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    rows.iter().map(|(k, v)| format!("{k:<w$}  {v}\n")).collect()
}
