//! `pulse slm …`: the small language model directly — parse, call the engine, print.
use std::time::Instant;

use anyhow::{Context, Result};
use pulse_pipeline::engine::{load_engine, sampling};
use pulse_slm::{ChatMessage, GenRequest, Generator, Prompt};

use crate::args::SlmCmd;

/// `pulse slm …`: the engine directly (tokenize, generate, bench, score), printing what it returns.
pub fn run(cmd: SlmCmd) -> Result<()> {
    match cmd {
        SlmCmd::Tokenize { model, chat, text } => {
            let e = load_engine(&model)?;
            let ids = if chat {
                let rendered = e.render(&Prompt::Chat(vec![ChatMessage::user(text)]))?;
                e.tokenize(&rendered, e.add_bos())
            } else {
                e.tokenize(&text, e.add_bos())
            };
            println!("{}", serde_json::to_string(&ids)?);
        }
        SlmCmd::Generate { model, sampling: s, system, n, seed, json, prompt } => {
            let mut e = load_engine(&model)?;
            let mut msgs = Vec::new();
            if let Some(sys) = system {
                msgs.push(ChatMessage::system(sys));
            }
            msgs.push(ChatMessage::user(prompt));
            let req = GenRequest { prompt: Prompt::Chat(msgs), n, seed, params: sampling(&s) };
            let t = Instant::now();
            let out = e.generate_all(std::slice::from_ref(&req))?;
            let secs = t.elapsed().as_secs_f64();
            for g in &out[0] {
                if json {
                    println!("{}", serde_json::to_string(g)?);
                } else {
                    println!("{}", g.text);
                }
            }
            let toks: usize = out[0].iter().map(|g| g.new_tokens).sum();
            tracing::info!("{toks} new tokens in {secs:.2}s ({:.1} tok/s incl. prompt)", toks as f64 / secs);
        }
        SlmCmd::Bench { model, prompt, seqs, new_tokens, reps } => {
            let text = std::fs::read_to_string(&prompt).with_context(|| format!("{}: cannot read", prompt.display()))?;
            let mut e = load_engine(&model)?;
            let threads = e.options().threads;
            let bw = pulse_slm::bench::read_bandwidth_gbs(threads);
            // Bytes read per decoded token: the weights as executed (the f16 copy is 2.8× the Q4_1 file).
            let bytes = e.weight_bytes() as f64;
            println!(
                "{}",
                serde_json::json!({"engine": "pulse", "weights": e.model().runtime, "bandwidth_gbs": bw, "weight_bytes": bytes,
                    "decode_bound_tps": bw * 1e9 / bytes, "threads": threads})
            );
            for b in seqs {
                let mut row = pulse_slm::bench::throughput(&mut e, &text, b, new_tokens, reps)?;
                row.engine = if e.model().runtime.is_empty() { "pulse".into() } else { format!("pulse ({})", e.model().runtime) };
                println!("{}", serde_json::to_string(&row)?);
            }
        }
        SlmCmd::Score { model, prompt, candidates } => {
            let mut e = load_engine(&model)?;
            let ll = e.score(&Prompt::Raw(prompt), &candidates)?;
            for (c, l) in candidates.iter().zip(&ll) {
                println!("{:.4}\t{:.4}\t{}\t{}", l.sum, l.mean, l.tokens, c);
            }
        }
    }
    Ok(())
}
