//! Throughput measurements for `pulse slm bench`: prompt processing and decode, 1..B sequences, plus the
//! memory-bandwidth bound for single-sequence decode. Printed by bench/slm/run.sh beside llama.cpp's.
//!
//! Prompt processing is timed on `B` *distinct* prompts with the engine's prompt-prefix cache off: prompt
//! `i` is the prompt file rotated to start at a later word, every rotation with the same token count and a
//! different first token, so no two prompts share a prefix and there is no key/value state an engine could
//! reuse (the KV of a token depends on every token before it). The tokens the engine computed are counted
//! from its own progress events and must equal all prompt tokens, or the bench fails. What the prefix cache
//! saves is reported apart, as cache hits: the same prompt `B` times, cache on, after one untimed call that
//! fills it (so each prompt restores all but its last token). bench/llama/llama_cpp_bench.py builds the same
//! rotations with llama.cpp's tokenizer (same ids) and checks the same fingerprint.

use std::time::Instant;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{Result, SlmError};
use crate::generator::{GenEvent, GenRequest, Generator, Prompt};
use crate::llama::LlamaEngine;
use crate::sampling::SamplingParams;
use crate::scripted::Scripted;

#[derive(Debug, Clone, Serialize)]
pub struct BenchRow {
    pub engine: String,
    pub seqs: usize,
    /// Tokens of each prompt as fed (all prompts have this many).
    pub prompt_tokens: usize,
    pub new_tokens: usize,
    /// Prompt processing: tokens per second over `seqs` distinct prompts (no shared prefix) prefilled
    /// together, prefix cache off.
    pub prompt_tps: f64,
    /// Prompt tokens the engine computed in one timed prompt-processing call (checked: `seqs × prompt_tokens`).
    pub prompt_tokens_computed: usize,
    /// Cache hits, not prompt processing: prompt tokens per second when the same prompt is sent `seqs` times
    /// with the prefix cache on and already holding it; `None` when the engine's cache is off.
    pub cache_hit_tps: Option<f64>,
    /// Prompt tokens the engine computed in one timed cache-hit call (the rest were restored).
    pub cache_hit_tokens_computed: usize,
    /// Generated tokens per second over all sequences (decode only: prefill time subtracted).
    pub decode_tps: f64,
    /// Parameters of the model (0 = unknown): a token costs ~2 FLOPs per parameter.
    pub params: u64,
    /// First 16 hex digits of sha256 over the distinct prompts' texts, each followed by a NUL byte.
    pub prompts_sha256: String,
}

/// What the bench needs beyond [`Generator`]: the tokenizer, to make prompts that share no prefix, and the
/// prompt-prefix cache's size, to turn it off while prompt processing is timed.
pub trait BenchTarget: Generator {
    /// Token ids of `text` as the engine tokenizes a raw prompt, without BOS.
    fn text_tokens(&self, text: &str) -> Result<Vec<u32>>;
    /// Bytes the prompt-prefix cache may hold (0 = off, or no cache).
    fn prefix_cache_bytes(&self) -> usize;
    /// Resizes the prompt-prefix cache and empties it (0 = off).
    fn set_prefix_cache_bytes(&mut self, bytes: usize);
    /// Parameter count (0 = unknown).
    fn n_params(&self) -> u64 {
        0
    }
}

impl BenchTarget for LlamaEngine {
    fn text_tokens(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self.tokenize(text, false))
    }
    fn prefix_cache_bytes(&self) -> usize {
        self.options().prefix_cache_bytes
    }
    fn set_prefix_cache_bytes(&mut self, bytes: usize) {
        LlamaEngine::set_prefix_cache_bytes(self, bytes)
    }
    fn n_params(&self) -> u64 {
        LlamaEngine::n_params(self)
    }
}

/// The scripted generator's "tokens" are its words (as its `count_tokens`), each id a hash of the word.
impl BenchTarget for Scripted {
    fn text_tokens(&self, text: &str) -> Result<Vec<u32>> {
        Ok(text
            .split_whitespace()
            .map(|w| w.bytes().fold(0x811c9dc5u32, |h, b| (h ^ b as u32).wrapping_mul(0x01000193)))
            .collect())
    }
    fn prefix_cache_bytes(&self) -> usize {
        self.prefix_cache_bytes
    }
    fn set_prefix_cache_bytes(&mut self, bytes: usize) {
        self.prefix_cache_bytes = bytes;
    }
}

/// The words of `text`, each with the whitespace before it (ASCII whitespace; trailing whitespace goes with
/// the last word), as BPE pre-tokenizers attach a space to the word after it: concatenated they give `text`
/// back, and a rotation of them tokenizes into the same pieces except where the last word meets the first.
fn units(text: &str) -> Vec<&str> {
    let b = text.as_bytes();
    let ws = |i: usize| b[i].is_ascii_whitespace();
    // A unit starts at 0 and wherever whitespace follows a word, unless only whitespace is left.
    let Some(end) = (0..b.len()).rev().find(|&i| !ws(i)) else { return Vec::new() };
    let mut starts = vec![0];
    starts.extend((1..=end).filter(|&i| ws(i) && !ws(i - 1)));
    starts.iter().enumerate().map(|(k, &s)| &text[s..starts.get(k + 1).copied().unwrap_or(b.len())]).collect()
}

/// `n` prompts of the same token count, no two sharing a prefix: rotations of `text`'s words
/// (`units[k..] + units[..k]` for k = 0, 1, 2, …; k = 0 is the text itself), keeping a rotation only when
/// it has the text's token count and a first token no kept rotation starts with. bench/llama's peer applies
/// the same rule with llama.cpp's tokenizer.
pub fn distinct_prompts(text: &str, n: usize, tokens: &dyn Fn(&str) -> Result<Vec<u32>>) -> Result<Vec<String>> {
    let u = units(text);
    let target = tokens(&u.concat())?.len();
    let mut out = Vec::with_capacity(n);
    let mut firsts = Vec::with_capacity(n);
    for k in 0..u.len() {
        if out.len() == n {
            break;
        }
        let r = [u[k..].concat(), u[..k].concat()].concat();
        let t = tokens(&r)?;
        match t.first() {
            Some(f) if t.len() == target && !firsts.contains(f) => {
                firsts.push(*f);
                out.push(r);
            }
            _ => {}
        }
    }
    if out.len() < n {
        return Err(SlmError::Param(
            "seqs",
            format!("{n}: the prompt has only {} word rotations with distinct first tokens and its token count", out.len()),
        ));
    }
    Ok(out)
}

/// First 16 hex digits of sha256 over the prompts, each followed by a NUL byte (the peer computes the same).
pub fn prompts_fingerprint(prompts: &[String]) -> String {
    let mut h = Sha256::new();
    for p in prompts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    h.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Best of `reps` timings of `f`, and the prompt tokens the engine reported computing in the best one.
fn best<G: Generator + ?Sized>(reps: usize, gen: &mut G, reqs: &[GenRequest]) -> Result<(f64, usize)> {
    let (mut secs, mut computed) = (f64::INFINITY, 0);
    for _ in 0..reps.max(1) {
        let mut n = 0usize;
        let t = Instant::now();
        gen.generate(reqs, &mut |ev| {
            if let GenEvent::Tokens { prompt, .. } = ev {
                n += prompt;
            }
        })?;
        let s = t.elapsed().as_secs_f64();
        if s < secs {
            (secs, computed) = (s, n);
        }
    }
    Ok((secs, computed))
}

/// Prompt throughput: `seqs` distinct prompts ([`distinct_prompts`]) prefilled together, prefix cache off
/// (one new token each, so there is no decode pass); fails unless the engine computed every prompt token.
/// Cache-hit throughput: the prompt file `seqs` times, cache on (when the engine has one), timed after an
/// untimed call that stores it. Decode throughput: one request with `seqs` samples (one shared prefill, its
/// KV copied to every sequence, so each decodes over its own full cache), `new_tokens` greedy tokens each
/// with end-of-generation ignored; only the forward passes that carry no prompt tokens are timed (each
/// interval runs from one pass's end to the next, so it includes sampling). Best of `reps` for all three.
/// The engine's cache size is restored (and the cache emptied) at the end.
pub fn throughput<G: BenchTarget + ?Sized>(
    gen: &mut G,
    prompt: &str,
    seqs: usize,
    new_tokens: usize,
    reps: usize,
) -> Result<BenchRow> {
    let cache_bytes = gen.prefix_cache_bytes();
    gen.set_prefix_cache_bytes(0);
    let row = measure(gen, prompt, seqs, new_tokens, reps, cache_bytes);
    gen.set_prefix_cache_bytes(cache_bytes);
    row
}

fn measure<G: BenchTarget + ?Sized>(
    gen: &mut G,
    prompt: &str,
    seqs: usize,
    new_tokens: usize,
    reps: usize,
    cache_bytes: usize,
) -> Result<BenchRow> {
    let texts = distinct_prompts(prompt, seqs, &|t| gen.text_tokens(t))?;
    let raw = Prompt::Raw(prompt.to_string());
    let ptoks = gen.count_tokens(&raw)?;
    for t in &texts {
        let n = gen.count_tokens(&Prompt::Raw(t.clone()))?;
        if n != ptoks {
            return Err(SlmError::Backend(format!("bench: a rotated prompt has {n} tokens, the prompt {ptoks}")));
        }
    }
    let greedy = |max_tokens: usize| SamplingParams { ignore_eos: true, ..SamplingParams::greedy(max_tokens) };
    let one = |p: Prompt, i: usize| GenRequest { prompt: p, n: 1, seed: i as u64, params: greedy(1) };

    // Prompt processing: distinct prompts, cache off.
    let distinct: Vec<GenRequest> = texts.iter().enumerate().map(|(i, t)| one(Prompt::Raw(t.clone()), i)).collect();
    let (t_prefill, computed) = best(reps, gen, &distinct)?;
    if computed != seqs * ptoks {
        return Err(SlmError::Backend(format!(
            "bench: the engine computed {computed} of {} prompt tokens with the prefix cache off",
            seqs * ptoks
        )));
    }

    // Decode, cache still off.
    let shared = [GenRequest { prompt: raw.clone(), n: seqs, seed: 0, params: greedy(new_tokens + 1) }];
    let mut t_decode = f64::INFINITY;
    let mut decoded = 0;
    for _ in 0..reps.max(1) {
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

    // Cache hits: the same prompt `seqs` times, the cache on and filled by an untimed call.
    let (mut cache_hit_tps, mut cache_computed) = (None, 0);
    if cache_bytes > 0 {
        gen.set_prefix_cache_bytes(cache_bytes);
        let same: Vec<GenRequest> = (0..seqs).map(|i| one(raw.clone(), i)).collect();
        gen.generate(&same, &mut |_| {})?;
        let (t, c) = best(reps, gen, &same)?;
        cache_hit_tps = Some((seqs * ptoks) as f64 / t);
        cache_computed = c;
    }

    Ok(BenchRow {
        engine: String::new(),
        seqs,
        prompt_tokens: ptoks,
        new_tokens,
        prompt_tps: (seqs * ptoks) as f64 / t_prefill,
        prompt_tokens_computed: computed,
        cache_hit_tps,
        cache_hit_tokens_computed: cache_computed,
        decode_tps: decoded as f64 / t_decode.max(1e-9),
        params: gen.n_params(),
        prompts_sha256: prompts_fingerprint(&texts),
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

#[cfg(test)]
mod tests {
    use super::*;

    const PROMPT: &str = include_str!("../../../bench/slm/prompt.txt");

    /// The bench prompt with a final newline: the file ends in `"` and starts with `<|im_start|>`, which the
    /// real tokenizer keeps apart (a special token) but the scripted one, splitting at whitespace, would merge.
    fn text() -> String {
        format!("{PROMPT}\n")
    }

    fn words(t: &str) -> Result<Vec<u32>> {
        Scripted::new(|_, _| String::new()).text_tokens(t)
    }

    fn shared_prefix(a: &[u32], b: &[u32]) -> usize {
        a.iter().zip(b).take_while(|(x, y)| x == y).count()
    }

    /// Every pair of prompts differs from its first token on, and all have the same token count.
    fn assert_no_shared_prefix(prompts: &[String]) {
        let toks: Vec<Vec<u32>> = prompts.iter().map(|p| words(p).unwrap()).collect();
        for i in 0..toks.len() {
            assert_eq!(toks[i].len(), toks[0].len(), "prompt {i} has another token count");
            for j in 0..i {
                assert_eq!(shared_prefix(&toks[i], &toks[j]), 0, "prompts {j} and {i} share a prefix");
            }
        }
    }

    #[test]
    fn units_give_the_text_back() {
        assert_eq!(units("  a b\n\nc  "), vec!["  a", " b", "\n\nc  "]);
        assert_eq!(units("a"), vec!["a"]);
        assert_eq!(units(PROMPT).concat(), PROMPT);
        assert!(units("").is_empty() && units(" \n").is_empty());
    }

    #[test]
    fn distinct_prompts_are_rotations_without_a_shared_prefix() {
        let text = text();
        let p = distinct_prompts(&text, 32, &words).unwrap();
        assert_eq!(p.len(), 32);
        assert_eq!(p[0], text, "the first prompt is the text as is");
        assert_no_shared_prefix(&p);
        // Rotations: the same words, so the same work.
        let mut a: Vec<&str> = text.split_whitespace().collect();
        a.sort();
        for q in &p {
            let mut b: Vec<&str> = q.split_whitespace().collect();
            b.sort();
            assert_eq!(a, b);
        }
        // The first k of a longer list are the list for k (every seqs value uses the same prompts).
        assert_eq!(distinct_prompts(&text, 8, &words).unwrap()[..], p[..8]);
        // Too few words with distinct first tokens for the count asked: an error, never a repeat.
        assert!(distinct_prompts("a b a b ", 3, &words).is_err());
        assert_eq!(distinct_prompts("a b a b ", 2, &words).unwrap(), vec!["a b a b ", " b a b a"]);
        // Where the last word runs into the first without a space, the merged rotations' token counts differ
        // and they are left out.
        assert!(distinct_prompts("a b a b", 2, &words).is_err());
    }

    #[test]
    fn the_check_catches_identical_and_prefix_sharing_prompts() {
        let same = vec![PROMPT.to_string(); 2];
        assert!(std::panic::catch_unwind(|| assert_no_shared_prefix(&same)).is_err());
        let preamble = vec![format!("Note 1. {PROMPT}"), format!("Note 2. {PROMPT}")];
        assert!(std::panic::catch_unwind(|| assert_no_shared_prefix(&preamble)).is_err());
    }

    /// The bench itself (not just the helper) sends distinct prompts with the cache off, the same prompt
    /// with it on for the cache-hit row, and gives the cache size back.
    #[test]
    fn throughput_times_distinct_prompts_with_the_cache_off() {
        let mut g = Scripted::new(|_, _| "x".into());
        g.prefix_cache_bytes = 1 << 20;
        let text = text();
        let row = throughput(&mut g, &text, 4, 2, 2).unwrap();
        let n = text.split_whitespace().count();
        assert_eq!((row.seqs, row.prompt_tokens, row.prompt_tokens_computed), (4, n, 4 * n));
        assert!(row.cache_hit_tps.is_some());
        assert_eq!(g.prefix_cache_bytes, 1 << 20, "the cache size is given back");
        // Calls: 2 timed prompt-processing calls, 2 decode calls, 1 untimed cache fill, 2 timed cache hits.
        assert_eq!(g.calls, vec![Some(4), Some(4), Some(1), Some(1), Some(4), Some(4), Some(4)]);
        let prompts = |from: usize| -> Vec<String> {
            g.seen[from..from + 4]
                .iter()
                .map(|r| match &r.prompt {
                    Prompt::Raw(s) => s.clone(),
                    p => panic!("{p:?}"),
                })
                .collect()
        };
        assert_no_shared_prefix(&prompts(0));
        assert_eq!(prompts(0), prompts(4), "every repetition sends the same distinct prompts");
        assert_eq!(row.prompts_sha256, prompts_fingerprint(&prompts(0)));
        // The cache-hit row is the file's prompt, repeated.
        let hits = &g.seen[g.seen.len() - 4..];
        assert!(hits.iter().all(|r| r.prompt == Prompt::Raw(text.clone())));

        // An engine without a cache reports no cache-hit row.
        let mut off = Scripted::new(|_, _| "x".into());
        let row = throughput(&mut off, &text, 2, 2, 1).unwrap();
        assert_eq!(row.cache_hit_tps, None);
    }
}
