//! #71's baseline: the grounding check and the diversity measures on a committed rationale export (the
//! SLM's reasons for users' last training choices), per method. The context of each reason: the chosen
//! item, the user's history as the export records it (every history item may be cited: these reasons
//! had no evidence to use), and the title terms the chosen item shares with the history.
//!   cargo run --release -p pulse-recommend --example grounding_preview -- BUNDLE EXPORT.jsonl
use pulse_recommend::grounding::{check, distinct_n, usr, Context, Failure, Thresholds, Vocab};
use pulse_recommend::Engine;
use std::collections::BTreeMap;

#[derive(Default)]
struct Row {
    n: usize,
    grounded: usize,
    hallucinated: usize,
    copied: usize,
    repetitive: usize,
    passed: usize,
    reasons: Vec<String>,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let e = Engine::load(std::path::Path::new(&args[1])).expect("bundle");
    let vocab = Vocab::new(e.catalogue.items.iter().map(|i| i.title.as_str()));
    let text = std::fs::read_to_string(&args[2]).expect("export");
    let mut by: BTreeMap<String, Row> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).expect("json line");
        let (Some(target), Some(reason)) = (v["target"].as_str().and_then(|t| e.catalogue.by_id(t)), v["rationale"].as_str()) else { continue };
        let hist: Vec<u32> = v["history"].as_array().map(|a| a.iter().filter_map(|x| x.as_str().and_then(|t| e.catalogue.by_id(t))).collect()).unwrap_or_default();
        let titles: Vec<&str> = hist.iter().map(|&i| e.catalogue.items[i as usize].title.as_str()).collect();
        let attributes: Vec<String> = hist.iter().flat_map(|&i| e.lexical.shared_terms(i, target, 3)).collect();
        let ctx = Context { item_title: &e.catalogue.items[target as usize].title, history_titles: titles.clone(), cited_titles: titles, attributes };
        let c = check(reason, &ctx, &vocab, Thresholds::default());
        let r = by.entry(v["method"].as_str().unwrap_or("?").to_string()).or_default();
        r.n += 1;
        r.grounded += !c.failures.contains(&Failure::Ungrounded) as usize;
        r.hallucinated += c.failures.iter().any(|f| matches!(f, Failure::Hallucination(_))) as usize;
        r.copied += c.failures.iter().any(|f| matches!(f, Failure::TitleCopy(_))) as usize;
        r.repetitive += c.failures.iter().any(|f| matches!(f, Failure::Repetition(_))) as usize;
        r.passed += c.passed() as usize;
        r.reasons.push(reason.to_string());
    }
    println!("| method | reasons | grounded | hallucination | title copy | repetition | passes all | USR | distinct-1 | distinct-2 |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (m, r) in &by {
        let refs: Vec<&str> = r.reasons.iter().map(String::as_str).collect();
        let pct = |x: usize| format!("{:.1}%", 100.0 * x as f64 / r.n as f64);
        println!(
            "| {m} | {} | {} | {} | {} | {} | {} | {:.3} | {:.3} | {:.3} |",
            r.n,
            pct(r.grounded),
            pct(r.hallucinated),
            pct(r.copied),
            pct(r.repetitive),
            pct(r.passed),
            usr(&refs),
            distinct_n(&refs, 1),
            distinct_n(&refs, 2)
        );
    }
}
