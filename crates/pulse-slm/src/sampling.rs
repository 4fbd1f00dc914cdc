//! Token sampling: temperature, top-k, top-p — done in Rust on the engine's logits with our own seeded
//! RNG, so a (seed, sample index) gives the same choice whatever engine or batch produced the logits.

use pulse_data::Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Result, SlmError};

/// How to pick tokens and when to stop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamplingParams {
    /// 0 = greedy (argmax); otherwise logits are divided by it.
    pub temperature: f32,
    /// Keep the k most likely tokens; 0 = no limit.
    pub top_k: usize,
    /// Keep the smallest set whose probability reaches p; 1 = no limit.
    pub top_p: f32,
    /// Most new tokens per sequence.
    pub max_tokens: usize,
    /// Generation stops when the text contains one of these (the stop string is cut off).
    pub stop: Vec<String>,
    /// Keep going past end-of-generation tokens (benchmarks: a fixed number of new tokens).
    pub ignore_eos: bool,
    /// Never generate a token that would repeat an n-gram (of tokens) already generated in this sequence;
    /// 0 = off. Counts only generated tokens, not the prompt (a rationale may and should name the
    /// history's items). Not written when off.
    #[serde(skip_serializing_if = "is_zero")]
    pub no_repeat_ngram: usize,
    /// CTRL's repetition penalty on every token already generated in this sequence (a positive logit is
    /// divided by it, a negative one multiplied); 1 = off. Not written when off.
    #[serde(skip_serializing_if = "is_one")]
    pub repeat_penalty: f32,
}

/// serde: leave a setting out when off (also used by the ranker's settings).
pub fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// serde: leave a factor out when it is 1.
pub fn is_one(x: &f32) -> bool {
    *x == 1.0
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            temperature: 0.7,
            top_k: 0,
            top_p: 1.0,
            max_tokens: 150,
            stop: Vec::new(),
            ignore_eos: false,
            no_repeat_ngram: 0,
            repeat_penalty: 1.0,
        }
    }
}

impl SamplingParams {
    pub fn greedy(max_tokens: usize) -> Self {
        SamplingParams { temperature: 0.0, max_tokens, ..SamplingParams::default() }
    }

    pub fn validate(&self) -> Result<()> {
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return Err(SlmError::Param("temperature", format!("{} (must be ≥ 0)", self.temperature)));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(SlmError::Param("top_p", format!("{} (must be in (0, 1])", self.top_p)));
        }
        if self.max_tokens == 0 {
            return Err(SlmError::Param("max_tokens", "0 (must be ≥ 1)".into()));
        }
        if self.stop.iter().any(|s| s.is_empty()) {
            return Err(SlmError::Param("stop", "empty stop string".into()));
        }
        if !(self.repeat_penalty >= 1.0 && self.repeat_penalty.is_finite()) {
            return Err(SlmError::Param("repeat_penalty", format!("{} (must be ≥ 1; 1 = off)", self.repeat_penalty)));
        }
        if self.no_repeat_ngram == 1 {
            return Err(SlmError::Param("no_repeat_ngram", "1 (would forbid every token twice; use ≥ 2, or 0 = off)".into()));
        }
        Ok(())
    }

    /// Whether [`sample`] looks at the tokens generated so far.
    pub fn penalises(&self) -> bool {
        self.no_repeat_ngram > 0 || self.repeat_penalty != 1.0
    }
}

/// Pick one token id from `logits`, given the tokens this sequence has `generated` so far (used only by
/// the repetition settings). `scratch` is reused between calls to avoid allocation.
pub fn sample(logits: &[f32], p: &SamplingParams, generated: &[u32], rng: &mut Rng, scratch: &mut Vec<(f32, u32)>) -> u32 {
    if p.penalises() && !generated.is_empty() {
        let mut l = logits.to_vec();
        penalise(&mut l, p, generated);
        return sample_plain(&l, p, rng, scratch);
    }
    sample_plain(logits, p, rng, scratch)
}

/// Applies the repetition settings to a logit row: the repetition penalty to every token in
/// `generated`, and −∞ to every token that would complete an n-gram already in `generated`.
pub fn penalise(logits: &mut [f32], p: &SamplingParams, generated: &[u32]) {
    if p.repeat_penalty != 1.0 {
        let mut seen: Vec<u32> = generated.to_vec();
        seen.sort_unstable();
        seen.dedup();
        for t in seen {
            if let Some(l) = logits.get_mut(t as usize) {
                *l = if *l > 0.0 { *l / p.repeat_penalty } else { *l * p.repeat_penalty };
            }
        }
    }
    let n = p.no_repeat_ngram;
    if n >= 2 && generated.len() >= n {
        // The n − 1 last tokens; every earlier place they occur bans the token that followed them there.
        let tail = &generated[generated.len() - (n - 1)..];
        for start in 0..=generated.len() - n {
            if &generated[start..start + n - 1] == tail {
                if let Some(l) = logits.get_mut(generated[start + n - 1] as usize) {
                    *l = f32::NEG_INFINITY;
                }
            }
        }
    }
}

fn sample_plain(logits: &[f32], p: &SamplingParams, rng: &mut Rng, scratch: &mut Vec<(f32, u32)>) -> u32 {
    if p.temperature == 0.0 || p.top_k == 1 {
        return argmax(logits);
    }
    let inv_t = 1.0 / p.temperature;
    scratch.clear();
    scratch.extend(logits.iter().enumerate().map(|(i, &l)| (l * inv_t, i as u32)));
    // Descending by logit, ties by id, so the order (and the draw) is fully determined.
    let desc = |a: &(f32, u32), b: &(f32, u32)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
    if p.top_k > 0 && p.top_k < scratch.len() {
        scratch.select_nth_unstable_by(p.top_k - 1, desc);
        scratch.truncate(p.top_k);
    }
    scratch.sort_unstable_by(desc);
    let max = scratch[0].0;
    let mut total = 0.0f64;
    for e in scratch.iter_mut() {
        e.0 = (e.0 - max).exp();
        total += e.0 as f64;
    }
    let mut keep = scratch.len();
    if p.top_p < 1.0 {
        let mut cum = 0.0f64;
        for (i, e) in scratch.iter().enumerate() {
            cum += e.0 as f64 / total;
            if cum >= p.top_p as f64 {
                keep = i + 1;
                break;
            }
        }
        total = scratch[..keep].iter().map(|e| e.0 as f64).sum();
    }
    let mut u = rng.next_f64() * total;
    for e in &scratch[..keep] {
        u -= e.0 as f64;
        if u <= 0.0 {
            return e.1;
        }
    }
    scratch[keep - 1].1
}

/// Index of the largest logit (the lowest index among ties).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0usize;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// log-softmax of one logit row, evaluated at `token`.
pub fn log_prob(logits: &[f32], token: u32) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let lse = logits.iter().map(|&l| (l as f64 - max).exp()).sum::<f64>().ln() + max;
    logits[token as usize] as f64 - lse
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(t: f32, k: usize, p: f32) -> SamplingParams {
        SamplingParams { temperature: t, top_k: k, top_p: p, max_tokens: 1, ..SamplingParams::default() }
    }

    #[test]
    fn greedy_and_top1_are_argmax() {
        let logits = [0.1, 2.0, 1.9, -3.0];
        let mut rng = Rng::new(1);
        let mut s = Vec::new();
        assert_eq!(sample(&logits, &params(0.0, 0, 1.0), &[], &mut rng, &mut s), 1);
        for _ in 0..50 {
            assert_eq!(sample(&logits, &params(5.0, 1, 1.0), &[], &mut rng, &mut s), 1);
            // top-p so small only the best token survives
            assert_eq!(sample(&logits, &params(5.0, 0, 1e-6), &[], &mut rng, &mut s), 1);
        }
    }

    #[test]
    fn top_k_restricts_and_frequencies_follow_softmax() {
        let logits = [0.0f32, (2.0f32).ln(), (3.0f32).ln(), 10.0];
        let mut s = Vec::new();
        // top-k 3 keeps ids 3,2,1; with top-p 1 the frequencies are softmax over those three.
        let mut rng = Rng::new(7);
        let mut counts = [0usize; 4];
        for _ in 0..20000 {
            counts[sample(&logits, &params(1.0, 2, 1.0), &[], &mut rng, &mut s) as usize] += 1;
        }
        assert_eq!(counts[0] + counts[1], 0, "top-k 2 must keep only ids 3 and 2: {counts:?}");
        // temperature 1, no top-k on the first three (drop id 3 via a huge negative): 1:2:3
        let l2 = [0.0f32, (2.0f32).ln(), (3.0f32).ln(), -1e9];
        let mut counts = [0usize; 4];
        for _ in 0..60000 {
            counts[sample(&l2, &params(1.0, 0, 1.0), &[], &mut rng, &mut s) as usize] += 1;
        }
        let f: Vec<f64> = counts.iter().map(|&c| c as f64 / 60000.0).collect();
        assert!((f[0] - 1.0 / 6.0).abs() < 0.01 && (f[1] - 2.0 / 6.0).abs() < 0.01, "{f:?}");
        assert!((f[2] - 3.0 / 6.0).abs() < 0.01 && counts[3] == 0, "{f:?}");
    }

    #[test]
    fn top_p_keeps_the_nucleus() {
        // probabilities 0.5, 0.3, 0.2: top-p 0.7 keeps {0.5, 0.3}
        let l = [(0.5f32).ln(), (0.3f32).ln(), (0.2f32).ln()];
        let mut rng = Rng::new(3);
        let mut s = Vec::new();
        let mut counts = [0usize; 3];
        for _ in 0..40000 {
            counts[sample(&l, &params(1.0, 0, 0.7), &[], &mut rng, &mut s) as usize] += 1;
        }
        assert_eq!(counts[2], 0);
        let f0 = counts[0] as f64 / 40000.0;
        assert!((f0 - 0.625).abs() < 0.01, "{f0}");
    }

    #[test]
    fn same_seed_same_draws() {
        let l: Vec<f32> = (0..1000).map(|i| ((i * 7919) % 113) as f32 / 10.0).collect();
        let p = params(1.0, 51, 0.95);
        let draw = |seed| {
            let mut rng = Rng::new(seed);
            let mut s = Vec::new();
            (0..100).map(|_| sample(&l, &p, &[], &mut rng, &mut s)).collect::<Vec<_>>()
        };
        assert_eq!(draw(5), draw(5));
        assert_ne!(draw(5), draw(6));
    }

    #[test]
    fn log_prob_normalises() {
        let l = [1.0f32, 2.0, 3.0];
        let total: f64 = (0..3).map(|t| log_prob(&l, t).exp()).sum();
        assert!((total - 1.0).abs() < 1e-9);
        assert!((log_prob(&l, 2) - (3.0 - (1f64.exp() + 2f64.exp() + 3f64.exp()).ln())).abs() < 1e-6);
    }

    #[test]
    fn no_repeat_ngram_bans_exactly_the_tokens_that_would_repeat_an_ngram() {
        let p = SamplingParams { temperature: 0.0, no_repeat_ngram: 3, ..SamplingParams::default() };
        // generated 5 6 7 | 5 6: a third 7 would repeat (5, 6, 7); 8 after (5, 6) never occurred
        let mut l = vec![0.0f32; 10];
        l[7] = 5.0;
        l[8] = 4.0;
        let mut rng = Rng::new(1);
        let mut s = Vec::new();
        assert_eq!(sample(&l, &p, &[5, 6, 7, 5, 6], &mut rng, &mut s), 8);
        // the same logits after a history that never had (x, 6) → 7: 7 is allowed
        assert_eq!(sample(&l, &p, &[5, 6, 8, 4, 6], &mut rng, &mut s), 7);
        // every earlier place the (n − 1)-token tail occurs bans its follower
        let mut row = vec![0.0f32; 10];
        penalise(&mut row, &p, &[1, 2, 3, 1, 2, 4, 1, 2]);
        let banned: Vec<usize> = (0..10).filter(|&i| row[i] == f32::NEG_INFINITY).collect();
        assert_eq!(banned, vec![3, 4]);
        // fewer tokens than n: nothing to repeat
        let mut row = vec![0.0f32; 10];
        penalise(&mut row, &p, &[1, 2]);
        assert!(row.iter().all(|&x| x == 0.0));
    }

    #[test]
    fn repeat_penalty_shrinks_seen_logits_toward_less_likely() {
        let p = SamplingParams { repeat_penalty: 2.0, ..SamplingParams::default() };
        let mut row = vec![4.0f32, -1.0, 3.0, 1.0];
        // token 0 seen twice: penalised once, like llama.cpp's and CTRL's
        penalise(&mut row, &p, &[0, 1, 0]);
        assert_eq!(row, vec![2.0, -2.0, 3.0, 1.0]);
        // greedy now picks the unseen 2 over the seen 0
        let g = SamplingParams { temperature: 0.0, ..p };
        let mut rng = Rng::new(1);
        let mut s = Vec::new();
        assert_eq!(sample(&[4.0, -1.0, 3.0, 1.0], &g, &[0], &mut rng, &mut s), 2);
        assert_eq!(sample(&[4.0, -1.0, 3.0, 1.0], &g, &[], &mut rng, &mut s), 0);
    }

    #[test]
    fn repetition_settings_off_by_default_and_left_out_of_serialised_params() {
        let p = SamplingParams::default();
        assert!(!p.penalises());
        let json = serde_json::to_string(&p).unwrap();
        assert!(!json.contains("repeat"), "{json}");
        let on = SamplingParams { no_repeat_ngram: 3, repeat_penalty: 1.2, ..p };
        let back: SamplingParams = serde_json::from_str(&serde_json::to_string(&on).unwrap()).unwrap();
        assert_eq!(back, on);
        let mut bad = SamplingParams { repeat_penalty: 0.5, ..SamplingParams::default() };
        assert!(bad.validate().unwrap_err().to_string().starts_with("repeat_penalty:"));
        bad.repeat_penalty = 1.0;
        bad.no_repeat_ngram = 1;
        assert!(bad.validate().unwrap_err().to_string().starts_with("no_repeat_ngram:"));
    }

    #[test]
    fn validation_names_the_field() {
        let mut p = SamplingParams::default();
        p.top_p = 0.0;
        assert!(p.validate().unwrap_err().to_string().starts_with("top_p:"));
        p.top_p = 1.0;
        p.temperature = -1.0;
        assert!(p.validate().unwrap_err().to_string().starts_with("temperature:"));
    }
}
