//! `pulse experiment CONFIG.toml`: one command per experiment. Loads the data once, trains each model
//! once (SASRec checkpoints resume after a kill), evaluates every protocol, and writes under
//! `results/<name>/`: `config.resolved.json` (every default filled in, seed included), one
//! `<model>-<protocol>.json` (+ `.ranks.tsv`, `.meta.json`) per row, and `table.md`, which the README's
//! tables are generated from. Rows already evaluated with the same resolved config are skipped.
use crate::commands::*;
use anyhow::{Context, Result};
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

pub fn load_config(path: &Path) -> Result<ExperimentConfig> {
    let c: ExperimentConfig = read_toml(path)?;
    c.sasrec.validate()?;
    c.pulse_ts.sasrec_for_text(&c.sasrec).with_context(|| path.display().to_string())?;
    for m in &c.models {
        parse_model(m).with_context(|| format!("{}: models", path.display()))?;
    }
    for p in &c.protocols {
        parse_protocol(p, true).with_context(|| format!("{}: protocols", path.display()))?;
    }
    Ok(c)
}

pub fn run(config: &Path, results: &Path, quiet: bool) -> Result<()> {
    let c = load_config(config)?;
    let dir = results.join(&c.name);
    std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
    let resolved = serde_json::to_string_pretty(&c)?;
    pulse_eval::write_atomic(&dir.join("config.resolved.json"), resolved.as_bytes())?;
    let l = load_data(&c.data)?;
    let mut rows: BTreeMap<(String, String), PathBuf> = BTreeMap::new();
    for m in &c.models {
        let kind = parse_model(m)?;
        let mut trained = None;
        for pname in &c.protocols {
            let p = parse_protocol(pname, c.mask_history)?;
            let out = dir.join(format!("{m}-{pname}.json"));
            rows.insert((m.clone(), pname.clone()), out.clone());
            if let Ok(prev) = EvalReport::read(&out) {
                if prev.seed == c.seed && prev.config["data"] == serde_json::to_value(&c.data)? && same_model_config(&prev, m, &c)? {
                    tracing::info!("{m} {pname}: already done ({})", out.display());
                    continue;
                }
            }
            if trained.is_none() {
                trained = Some(train_model(kind, &l, &c.sasrec, &c.pulse_ts, c.seed, None, quiet)?);
            }
            let t = trained.as_ref().unwrap();
            let o = run_protocol(&l, t, m, p, c.seed, None, c.bootstrap, None, quiet)?;
            write_outputs(&out, &o, t)?;
        }
    }
    let table = render_table(&c, &rows)?;
    pulse_eval::write_atomic(&dir.join("table.md"), table.as_bytes())?;
    print!("{table}");
    Ok(())
}

fn same_model_config(prev: &EvalReport, model: &str, c: &ExperimentConfig) -> Result<bool> {
    Ok(match model {
        "sasrec" => prev.config["model"] == serde_json::to_value(&c.sasrec)?,
        "text" | "pulse-ts-norat" | "pulse-ts" => {
            // The stored model config is the experiment's [sasrec] with the text fields set, plus [pulse_ts].
            let mut m = prev.config["model"].clone();
            let ts = m.as_object_mut().and_then(|o| {
                for k in ["items", "align_weight", "align_temperature"] {
                    o.remove(k);
                }
                o.remove("pulse_ts")
            });
            ts == Some(serde_json::to_value(&c.pulse_ts)?) && m == serde_json::to_value(c.pulse_ts.sasrec_for_text(&c.sasrec)?)?
        }
        _ => true,
    })
}

/// Markdown table: one row per model, the headline metric of each protocol with its bootstrap 95% CI,
/// then paired differences of each model against the first.
pub fn render_table(c: &ExperimentConfig, rows: &BTreeMap<(String, String), PathBuf>) -> Result<String> {
    let headline = |p: &str| -> &[&str] {
        match p {
            "full" => &["ndcg@10", "hr@10"],
            _ => &["hr@1"],
        }
    };
    let mut s = String::new();
    let first = rows.values().next().map(|p| EvalReport::read(p)).transpose()?;
    let (dataset, n_users) = first.as_ref().map(|r| (r.dataset.clone(), r.n_users)).unwrap_or_default();
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
    let _ = writeln!(s, "| {} |", header.join(" | "));
    let _ = writeln!(s, "|{}", "---|".repeat(header.len()));
    for m in &c.models {
        let mut cells = vec![m.clone()];
        for p in &c.protocols {
            let r = EvalReport::read(&rows[&(m.clone(), p.clone())])?;
            for k in headline(p) {
                let v = r.metrics[*k];
                match r.ci95.get(*k) {
                    Some([lo, hi]) => cells.push(format!("{v:.4} [{lo:.3}, {hi:.3}]")),
                    None => cells.push(format!("{v:.4}")),
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
                let ra = RankFile::read(&RankFile::path_for(&rows[&(m.clone(), p.clone())]))?;
                let rb = RankFile::read(&RankFile::path_for(&rows[&(base.clone(), p.clone())]))?;
                for k in headline(p) {
                    let va: Vec<f64> = ra.ranks.iter().map(|&r| per_user_value(k, r).unwrap()).collect();
                    let vb: Vec<f64> = rb.ranks.iter().map(|&r| per_user_value(k, r).unwrap()).collect();
                    let ci = paired_bootstrap(&va, &vb, c.bootstrap.max(200), c.seed);
                    cells.push(format!("{:+.4} [{:+.3}, {:+.3}]", ci.estimate, ci.lo, ci.hi));
                }
            }
            let _ = writeln!(s, "| {} |", cells.join(" | "));
        }
    }
    Ok(s)
}
