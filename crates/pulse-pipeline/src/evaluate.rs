//! `pulse eval`: train (or reuse) one model, evaluate one protocol on the test split, write the report,
//! per-user ranks and timings; and `pulse compare`: the paired bootstrap of two such reports.
use anyhow::{bail, Result};
use pulse_eval::{paired_bootstrap, per_user_value, EvalReport, RankFile};
use std::path::Path;

use crate::eval::*;
use crate::opts::{EvalArgs, ModelArg};

/// `pulse eval`: returns the lines to print (the metrics line last).
pub fn eval(a: &EvalArgs, quiet: bool) -> Result<Vec<String>> {
    let spec = DataSpec::from(&a.data);
    let sasrec = sasrec_config(a.config.as_deref(), a.loss, a.max_epochs)?;
    let p = protocol(a.protocol, !a.no_mask_history);
    let l = load_data(&spec)?;
    let ts = ts_config(a.config.as_deref())?;
    let users = match (a.model, a.users) {
        (_, Some(n)) => Some(sample_users(&l, n, a.seed)),
        (ModelArg::Slm, None) => Some(sample_users(&l, 1000, a.seed)),
        _ => None,
    };
    match (a.model, p, a.shortlist) {
        (ModelArg::Slm, pulse_eval::Protocol::Full { .. }, None) => bail!(
            "--model slm ranks candidate lists only: use --protocol cand5 or cand20, or rank the catalogue in two stages with --shortlist MODEL"
        ),
        (ModelArg::Slm, pulse_eval::Protocol::Full { .. }, Some(ModelArg::Slm)) => {
            bail!("--shortlist: the retriever scores the whole catalogue, so it cannot be slm")
        }
        (ModelArg::Slm, pulse_eval::Protocol::Full { .. }, Some(_)) if a.generate || a.explain > 0 => {
            bail!("--generate / --explain need a candidate protocol")
        }
        (ModelArg::Slm, pulse_eval::Protocol::Cand { .. }, Some(_)) => bail!("--shortlist reranks the catalogue: it needs --protocol full"),
        (m, _, Some(_)) if m != ModelArg::Slm => bail!("--shortlist needs --model slm (the reranker)"),
        _ => {}
    }
    let t = match a.model {
        ModelArg::Slm => {
            let slm = slm_ranker(&l, &a.slm, a.adapter.as_deref(), pulse_sft::rank::RankConfig { score: a.score.into(), think: a.think, no_repeat_ngram: a.no_repeat_ngram, repeat_penalty: a.repeat_penalty, ..Default::default() })?;
            match (p, a.shortlist) {
                (pulse_eval::Protocol::Full { mask_history }, Some(kind)) => {
                    let r = train_model(kind, &l, &sasrec, &ts, a.seed, a.checkpoint_dir.clone(), quiet)?;
                    let mut config = slm.config;
                    config["shortlist"] = serde_json::json!({ "model": model_name(kind), "k": a.shortlist_k, "config": r.config });
                    Trained {
                        model: Box::new(pulse_eval::Shortlist::new("slm", r.model, slm.model, a.shortlist_k, mask_history)?),
                        config,
                        meta: serde_json::json!({ "slm": slm.meta, "shortlist": r.meta }),
                    }
                }
                _ => slm,
            }
        }
        _ => train_model(a.model, &l, &sasrec, &ts, a.seed, a.checkpoint_dir.clone(), quiet)?,
    };
    let o = run_protocol(&l, &t, model_name(a.model), p, a.seed, a.candidates.clone(), a.bootstrap, users.as_deref(), quiet)?;
    write_outputs(&a.out, &o, &t)?;
    let mut lines = Vec::new();
    if a.model == ModelArg::Slm && (a.generate || a.explain > 0) {
        lines.extend(slm_extras(a, &l, &t, p, users.as_deref().unwrap_or(&[]))?);
    }
    let m = &o.report.metrics;
    let line: Vec<String> = m.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
    lines.push(format!("{} {} {} (n={}): {}", o.report.dataset, o.report.model, o.report.protocol, o.report.n_users, line.join("  ")));
    Ok(lines)
}

/// `pulse eval --model slm --generate / --explain N`: the paper's generation protocol beside the
/// likelihood ranking, and rationales shown with the top-ranked item.
fn slm_extras(a: &EvalArgs, l: &Loaded, t: &Trained, p: pulse_eval::Protocol, users: &[usize]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    use pulse_sft::rank::{Row, SlmRanker};
    let Some(r) = t.model.as_any().and_then(|x| x.downcast_ref::<SlmRanker>()) else { bail!("not an SLM ranker") };
    let pulse_eval::Protocol::Cand { n } = p else { bail!("--generate / --explain need a candidate protocol") };
    let path = a.candidates.clone().unwrap_or_else(|| default_candidates(l, n, a.seed));
    let cands = pulse_eval::CandidateSet::load_or_draw(&l.ds, &l.split, n, a.seed, &path)?;
    let queries: Vec<(Vec<u32>, u32)> = users.iter().map(|&u| l.split.users[u].query(pulse_data::Stage::Test)).collect();
    let rows: Vec<Row<'_>> =
        users.iter().zip(&queries).map(|(&u, (h, tg))| Row { history: h, candidates: &cands.lists[u], target: *tg }).collect();
    let uid = |u: usize| l.ds.users[l.split.users[u].user as usize].id.clone();
    let side = |ext: &str| a.out.with_extension(ext);
    if a.generate {
        let mut hits = Vec::with_capacity(rows.len());
        let mut lines = String::new();
        for (k, chunk) in rows.chunks(32).enumerate() {
            for (j, g) in r.generate_hits(chunk, a.seed.wrapping_add((k * 32) as u64))?.into_iter().enumerate() {
                let i = k * 32 + j;
                lines.push_str(&serde_json::to_string(&serde_json::json!({ "user": uid(users[i]), "truth": r.title_of(rows[i].target), "output": g.text, "hit": g.hit }))?);
                lines.push('\n');
                hits.push(if g.hit { 1.0 } else { 0.0 });
            }
        }
        let ci = pulse_eval::bootstrap_mean(&hits, a.bootstrap.max(200), a.seed);
        let rate = hits.iter().sum::<f64>() / hits.len().max(1) as f64;
        pulse_eval::write_atomic(&side("generate.jsonl"), lines.as_bytes())?;
        let rep = serde_json::json!({ "protocol": format!("{}-generate", p.name()), "n_users": hits.len(), "hit_rate": rate, "ci95": [ci.lo, ci.hi],
            "sampling": { "temperature": 0.3, "top_p": 0.9, "max_tokens": 32 }, "seed": a.seed, "model": t.config });
        pulse_eval::write_atomic(&side("generate.json"), serde_json::to_string_pretty(&rep)?.as_bytes())?;
        out.push(format!("{} slm {}-generate (n={}): hit@1 {rate:.4} [{:.3}, {:.3}] → {}", l.ds.name, p.name(), hits.len(), ci.lo, ci.hi, side("generate.json").display()));
    }
    if a.explain > 0 {
        let rows = &rows[..a.explain.min(rows.len())];
        let texts = r.explain(rows, a.seed)?;
        let mut lines = String::new();
        for (i, (row, why)) in rows.iter().zip(texts).enumerate() {
            let s = r.score_row(row.history, row.candidates)?;
            let top = (0..s.len()).max_by(|&x, &y| s[x].total_cmp(&s[y])).map(|j| row.candidates[j]).unwrap_or(row.target);
            lines.push_str(&serde_json::to_string(&serde_json::json!({ "user": uid(users[i]), "recommended": r.title_of(top), "why": why, "truth": r.title_of(row.target) }))?);
            lines.push('\n');
        }
        pulse_eval::write_atomic(&side("explain.jsonl"), lines.as_bytes())?;
        out.push(format!("{} explanations → {}", rows.len(), side("explain.jsonl").display()));
    }
    Ok(out)
}

/// What `pulse compare` pairs: two result JSONs, the metrics (empty = all of the protocol), resamples,
/// seed, and whether to pair on the users both rank.
pub struct CompareOptions<'a> {
    pub a: &'a Path,
    pub b: &'a Path,
    pub metric: &'a [String],
    pub resamples: usize,
    pub seed: u64,
    pub common: bool,
}

/// `pulse compare`: the paired bootstrap of two reports' per-user ranks, as lines to print.
pub fn compare(a: &CompareOptions<'_>) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let (ra, rb) = (EvalReport::read(a.a)?, EvalReport::read(a.b)?);
    if ra.protocol != rb.protocol || ra.dataset != rb.dataset {
        bail!("cannot compare {} {} with {} {}", ra.dataset, ra.protocol, rb.dataset, rb.protocol);
    }
    let (fa, fb) = (RankFile::read(&RankFile::path_for(a.a))?, RankFile::read(&RankFile::path_for(a.b))?);
    let pairs = fa.paired(&fb);
    let mut of = String::new();
    if fa.users != fb.users {
        if !a.common {
            bail!("{} and {} rank different users; a paired comparison needs the same users (or --common)", a.a.display(), a.b.display());
        }
        if pairs.is_empty() {
            bail!("{} and {} rank no user in common", a.a.display(), a.b.display());
        }
        of = format!(" users both rank, of {} and {}", fa.users.len(), fb.users.len());
    }
    let metrics = if a.metric.is_empty() { ra.metrics.keys().cloned().collect() } else { a.metric.to_vec() };
    out.push(format!("{} {} — {} vs {} (n={}{of}, {} paired resamples)", ra.dataset, ra.protocol, ra.model, rb.model, pairs.len(), a.resamples));
    out.push(format!("{:<10} {:>9} {:>9} {:>9}  {:<22} {}", "metric", ra.model, rb.model, "diff", "95% CI of diff", "P(diff<=0)"));
    for m in metrics {
        let va: Option<Vec<f64>> = pairs.iter().map(|&(r, _)| per_user_value(&m, r)).collect();
        let vb: Option<Vec<f64>> = pairs.iter().map(|&(_, r)| per_user_value(&m, r)).collect();
        let (Some(va), Some(vb)) = (va, vb) else { bail!("unknown metric '{m}'") };
        let ci = paired_bootstrap(&va, &vb, a.resamples, a.seed);
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        out.push(format!(
            "{:<10} {:>9.4} {:>9.4} {:>+9.4}  [{:+.4}, {:+.4}]      {:.4}",
            m,
            mean(&va),
            mean(&vb),
            ci.estimate,
            ci.lo,
            ci.hi,
            ci.frac_le_zero
        ));
    }
    // Rank-level agreement: a retrained model that reproduces a recorded one ranks every user's true item
    // where it did; equal metrics alone could hide ranks that moved in both directions.
    let differ = pairs.iter().filter(|(x, y)| x != y).count();
    out.push(format!("users whose rank of the true item differs: {differ} of {}", pairs.len()));
    Ok(out)
}
