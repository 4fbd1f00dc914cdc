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
        Cmd::Plot { cmd: PlotCmd::ThoughtSpace { space, encoder, domain, methods, users, seed, out } } => {
            let plot = pulse_pipeline::plot::ThoughtSpacePlot { space: &space, encoder: &encoder, domain: &domain, methods: &methods, users, seed, out: &out };
            println!("{}", pulse_pipeline::plot::thought_space(&plot)?)
        }
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
