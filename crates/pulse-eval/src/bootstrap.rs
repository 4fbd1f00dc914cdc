//! Percentile bootstrap over users: a CI for a mean and, paired (same users, same resamples), for the
//! difference of two models' means.
use pulse_data::Rng;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ci {
    /// The statistic on the full sample.
    pub estimate: f64,
    pub lo: f64,
    pub hi: f64,
    /// Fraction of resamples whose statistic was ≤ 0 (for a difference: a one-sided bootstrap p-value
    /// for "a > b").
    pub frac_le_zero: f64,
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

fn resample_means(values: &[f64], resamples: usize, seed: u64) -> Ci {
    assert!(!values.is_empty(), "bootstrap of an empty sample");
    let n = values.len();
    let estimate = values.iter().sum::<f64>() / n as f64;
    let mut rng = Rng::derive(seed, "bootstrap");
    let mut stats: Vec<f64> = (0..resamples)
        .map(|_| (0..n).map(|_| values[rng.below(n as u64) as usize]).sum::<f64>() / n as f64)
        .collect();
    stats.sort_by(f64::total_cmp);
    let le0 = stats.iter().filter(|&&s| s <= 0.0).count() as f64 / resamples as f64;
    Ci { estimate, lo: percentile(&stats, 0.025), hi: percentile(&stats, 0.975), frac_le_zero: le0 }
}

/// 95% CI of the mean of per-user values.
pub fn bootstrap_mean(values: &[f64], resamples: usize, seed: u64) -> Ci {
    resample_means(values, resamples, seed)
}

/// 95% CI of mean(a) − mean(b) where `a[i]` and `b[i]` belong to the same user.
pub fn paired_bootstrap(a: &[f64], b: &[f64], resamples: usize, seed: u64) -> Ci {
    assert_eq!(a.len(), b.len(), "paired bootstrap needs the same users");
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    resample_means(&d, resamples, seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_models_give_a_zero_width_interval() {
        let a = [1.0, 0.0, 1.0, 1.0];
        let ci = paired_bootstrap(&a, &a, 500, 1);
        assert_eq!((ci.estimate, ci.lo, ci.hi), (0.0, 0.0, 0.0));
    }

    #[test]
    fn clear_difference_excludes_zero_and_noise_does_not() {
        let mut r = Rng::new(3);
        let a: Vec<f64> = (0..2000).map(|_| (r.next_f64() < 0.6) as u8 as f64).collect();
        let b: Vec<f64> = (0..2000).map(|_| (r.next_f64() < 0.4) as u8 as f64).collect();
        let ci = paired_bootstrap(&a, &b, 1000, 7);
        assert!(ci.lo > 0.1 && ci.hi < 0.3 && ci.lo < ci.estimate && ci.estimate < ci.hi, "{ci:?}");
        assert_eq!(ci.frac_le_zero, 0.0);
        let c: Vec<f64> = (0..2000).map(|_| (r.next_f64() < 0.6) as u8 as f64).collect();
        let ci = paired_bootstrap(&a, &c, 1000, 7);
        assert!(ci.lo < 0.0 && ci.hi > 0.0, "{ci:?}");
        // deterministic for a seed
        assert_eq!(ci, paired_bootstrap(&a, &c, 1000, 7));
    }

    #[test]
    fn mean_ci_of_bernoulli_matches_normal_approximation() {
        let v: Vec<f64> = (0..1000).map(|i| (i % 2) as f64).collect();
        let ci = bootstrap_mean(&v, 2000, 11);
        // sd of the mean = 0.5/sqrt(1000) = 0.0158 → ±0.031
        assert!((ci.hi - ci.lo - 0.062).abs() < 0.01, "{ci:?}");
    }
}
