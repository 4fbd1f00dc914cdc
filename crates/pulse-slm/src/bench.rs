//! Throughput measurements for `pulse slm bench`: prompt processing and decode, 1..B sequences, plus the
//! memory-bandwidth bound for single-sequence decode. Printed by bench/slm/run.sh beside llama.cpp's.

use std::time::Instant;

use serde::Serialize;

use crate::error::Result;
use crate::generator::{GenEvent, GenRequest, Generator, Prompt};
use crate::sampling::SamplingParams;

#[derive(Debug, Clone, Serialize)]
pub struct BenchRow {
    pub engine: String,
    pub seqs: usize,
    pub prompt_tokens: usize,
    pub new_tokens: usize,
    /// Prompt tokens per second (all sequences' prompts, prefilled together).
    pub prompt_tps: f64,
    /// Generated tokens per second over all sequences (decode only: prefill time subtracted).
    pub decode_tps: f64,
}

/// Best of `reps` timings of `f`.
fn best(reps: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    let mut b = f64::INFINITY;
    for _ in 0..reps {
        let t = Instant::now();
        f()?;
        b = b.min(t.elapsed().as_secs_f64());
    }
    Ok(b)
}

/// Prompt throughput: `seqs` distinct sequences with the same raw prompt, prefilled together (one new token
/// each, so there is no decode pass). Decode throughput: one request with `seqs` samples (one shared
/// prefill), `new_tokens` greedy tokens each with end-of-generation ignored; only the forward passes that
/// carry no prompt tokens are timed (each interval runs from one pass's end to the next, so it includes
/// sampling). Best of `reps` for both.
pub fn throughput(gen: &mut dyn Generator, prompt: &str, seqs: usize, new_tokens: usize, reps: usize) -> Result<BenchRow> {
    let p = Prompt::Raw(prompt.to_string());
    let ptoks = gen.count_tokens(&p)?;
    let greedy = |max_tokens: usize| SamplingParams { ignore_eos: true, ..SamplingParams::greedy(max_tokens) };
    let distinct: Vec<GenRequest> =
        (0..seqs).map(|i| GenRequest { prompt: p.clone(), n: 1, seed: i as u64, params: greedy(1) }).collect();
    let t_prefill = best(reps, || gen.generate(&distinct, &mut |_| {}))?;
    let shared = [GenRequest { prompt: p.clone(), n: seqs, seed: 0, params: greedy(new_tokens + 1) }];
    let mut t_decode = f64::INFINITY;
    let mut decoded = 0;
    for _ in 0..reps {
        let mut last = Instant::now();
        let (mut secs, mut toks) = (0.0, 0usize);
        gen.generate(&shared, &mut |ev| {
            if let GenEvent::Tokens { prompt, generated } = ev {
                let now = Instant::now();
                if prompt == 0 {
                    secs += (now - last).as_secs_f64();
                    toks += generated;
                }
                last = now;
            }
        })?;
        if secs < t_decode {
            t_decode = secs;
            decoded = toks;
        }
    }
    Ok(BenchRow {
        engine: String::new(),
        seqs,
        prompt_tokens: ptoks,
        new_tokens,
        prompt_tps: (seqs * ptoks) as f64 / t_prefill,
        decode_tps: decoded as f64 / t_decode.max(1e-9),
    })
}

/// Read bandwidth in GB/s: `threads` threads summing disjoint parts of a 1 GiB buffer, best of 5.
pub fn read_bandwidth_gbs(threads: usize) -> f64 {
    let n = (1usize << 30) / 8;
    let buf: Vec<u64> = (0..n as u64).collect();
    let chunk = n.div_ceil(threads.max(1));
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t = Instant::now();
        let total: u64 = std::thread::scope(|s| {
            let hs: Vec<_> = buf
                .chunks(chunk)
                .map(|c| s.spawn(move || c.iter().fold(0u64, |a, &x| a.wrapping_add(x))))
                .collect();
            hs.into_iter().map(|h| h.join().expect("sum thread")).fold(0u64, u64::wrapping_add)
        });
        std::hint::black_box(total);
        best = best.min(t.elapsed().as_secs_f64());
    }
    (n * 8) as f64 / best / 1e9
}
