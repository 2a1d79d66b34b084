//! Noise-aware statistics for comparing two small samples of per-repeat
//! values: medians, a seeded bootstrap confidence interval of the difference
//! of medians, and the Mann-Whitney U rank test.
//!
//! Pure functions on slices; everything is deterministic (the bootstrap RNG
//! is a seeded SplitMix64), so the same inputs always give the same verdict.

/// Median of a sample (mean of the two middle values for even sizes).
/// Returns `None` for an empty sample or one holding a NaN.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() || values.iter().any(|v| v.is_nan()) {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    Some(median_of_sorted(&sorted))
}

fn median_of_sorted(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

pub use crate::results::verdict::Interval;
use crate::rng::SplitMix64;

/// Percentile-bootstrap confidence interval of `median(current) - median(baseline)`.
///
/// Each of `resamples` rounds draws both samples with replacement and takes
/// the difference of their medians; the interval is the `(1-level)/2` and
/// `(1+level)/2` quantiles of those differences. The RNG is seeded, so the
/// interval is reproducible.
pub fn bootstrap_median_diff(
    baseline: &[f64],
    current: &[f64],
    level: f64,
    resamples: usize,
    seed: u64,
) -> Option<Interval> {
    if baseline.is_empty() || current.is_empty() || resamples == 0 {
        return None;
    }
    if baseline.iter().chain(current).any(|v| v.is_nan()) {
        return None;
    }
    let mut rng = SplitMix64::new(seed);
    let mut scratch_b = vec![0.0; baseline.len()];
    let mut scratch_c = vec![0.0; current.len()];
    let mut diffs = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        let mb = resampled_median(baseline, &mut scratch_b, &mut rng);
        let mc = resampled_median(current, &mut scratch_c, &mut rng);
        diffs.push(mc - mb);
    }
    diffs.sort_by(f64::total_cmp);
    let alpha = (1.0 - level.clamp(0.0, 1.0)) / 2.0;
    Some(Interval {
        low: quantile_of_sorted(&diffs, alpha),
        high: quantile_of_sorted(&diffs, 1.0 - alpha),
    })
}

fn resampled_median(sample: &[f64], scratch: &mut [f64], rng: &mut SplitMix64) -> f64 {
    for slot in scratch.iter_mut() {
        // Multiply-high: the bias is below n / 2^64.
        *slot = sample[rng.below(sample.len() as u64) as usize];
    }
    scratch.sort_by(f64::total_cmp);
    median_of_sorted(scratch)
}

/// Quantile by the nearest-rank method on a sorted, non-empty slice.
fn quantile_of_sorted(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    let rank = (q * n as f64).ceil() as usize;
    sorted[rank.clamp(1, n) - 1]
}

/// Mann-Whitney U statistic of `a` against `b`: the number of pairs
/// `(x in a, y in b)` with `x > y`, ties counting one half.
fn mann_whitney_u(a: &[f64], b: &[f64]) -> f64 {
    let mut u = 0.0;
    for &x in a {
        for &y in b {
            if x > y {
                u += 1.0;
            } else if x == y {
                u += 0.5;
            }
        }
    }
    u
}

/// Largest number of label arrangements enumerated for an exact p-value;
/// beyond it the normal approximation is used (C(20,10) = 184,756 fits).
const EXACT_LIMIT: u64 = 200_000;

/// One-sided Mann-Whitney p-value for the alternative "values in `greater`
/// tend to be larger than values in `other`".
///
/// Small samples get the exact permutation p-value (every way of splitting
/// the pooled values into groups of these sizes, so ties are handled
/// exactly); larger ones the normal approximation with tie and continuity
/// corrections.
pub fn mann_whitney_p_greater(greater: &[f64], other: &[f64]) -> Option<f64> {
    let (n1, n2) = (greater.len(), other.len());
    if n1 == 0 || n2 == 0 || greater.iter().chain(other).any(|v| v.is_nan()) {
        return None;
    }
    let observed = mann_whitney_u(greater, other);
    if binomial(n1 + n2, n1) <= EXACT_LIMIT {
        Some(exact_p_greater(greater, other, observed))
    } else {
        Some(normal_p_greater(greater, other, observed))
    }
}

/// n choose k, saturating at `u64::MAX`.
fn binomial(n: usize, k: usize) -> u64 {
    let k = k.min(n - k);
    let mut acc: u128 = 1;
    for i in 0..k {
        acc = acc * (n - i) as u128 / (i + 1) as u128;
        if acc > u64::MAX as u128 {
            return u64::MAX;
        }
    }
    acc as u64
}

fn exact_p_greater(greater: &[f64], other: &[f64], observed: f64) -> f64 {
    let pooled: Vec<f64> = greater.iter().chain(other).copied().collect();
    let n = pooled.len();
    let k = greater.len();
    // U of a group = (sum of its midranks) - k(k+1)/2, so each arrangement
    // costs k additions instead of k*(n-k) comparisons.
    let ranks = midranks(&pooled);
    let offset = (k * (k + 1)) as f64 / 2.0;
    let mut idx: Vec<usize> = (0..k).collect();
    let (mut total, mut extreme) = (0u64, 0u64);
    loop {
        let u = idx.iter().map(|&i| ranks[i]).sum::<f64>() - offset;
        total += 1;
        // A small epsilon absorbs float noise in the half-ranks.
        if u >= observed - 1e-9 {
            extreme += 1;
        }
        // Next k-subset in lexicographic order.
        let mut pos = k;
        loop {
            if pos == 0 {
                return extreme as f64 / total as f64;
            }
            pos -= 1;
            if idx[pos] < n - k + pos {
                idx[pos] += 1;
                for j in pos + 1..k {
                    idx[j] = idx[j - 1] + 1;
                }
                break;
            }
        }
    }
}

/// 1-based ranks with ties sharing their mean rank, in input order.
fn midranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        // Positions i..=j (0-based) share the mean of ranks i+1..=j+1.
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &o in &order[i..=j] {
            ranks[o] = rank;
        }
        i = j + 1;
    }
    ranks
}

fn normal_p_greater(greater: &[f64], other: &[f64], observed: f64) -> f64 {
    let (n1, n2) = (greater.len() as f64, other.len() as f64);
    let n = n1 + n2;
    let mean = n1 * n2 / 2.0;
    // Tie correction: sum over tie groups of (t^3 - t).
    let mut pooled: Vec<f64> = greater.iter().chain(other).copied().collect();
    pooled.sort_by(f64::total_cmp);
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < pooled.len() {
        let mut j = i;
        while j + 1 < pooled.len() && pooled[j + 1] == pooled[i] {
            j += 1;
        }
        let t = (j - i + 1) as f64;
        tie_term += t * t * t - t;
        i = j + 1;
    }
    let variance = n1 * n2 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)));
    if variance <= 0.0 {
        return 1.0;
    }
    let z = (observed - mean - 0.5) / variance.sqrt();
    1.0 - standard_normal_cdf(z)
}

/// Standard normal CDF via the Abramowitz-Stegun erf approximation
/// (absolute error below 1.5e-7, plenty for a significance test).
fn standard_normal_cdf(z: f64) -> f64 {
    0.5 * (1.0 + erf(z / std::f64::consts::SQRT_2))
}

fn erf(x: f64) -> f64 {
    let sign = if x < 0.0 { -1.0 } else { 1.0 };
    let x = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    sign * (1.0 - poly * (-x * x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_handles_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[1.0, f64::NAN]), None);
    }

    #[test]
    fn u_counts_pairs_and_half_ties() {
        assert_eq!(mann_whitney_u(&[3.0, 4.0], &[1.0, 2.0]), 4.0);
        assert_eq!(mann_whitney_u(&[1.0, 2.0], &[3.0, 4.0]), 0.0);
        assert_eq!(mann_whitney_u(&[2.0], &[2.0]), 0.5);
    }

    #[test]
    fn exact_p_matches_textbook_values() {
        // Complete separation, 3 vs 3: 1 of C(6,3)=20 arrangements.
        let p = mann_whitney_p_greater(&[4.0, 5.0, 6.0], &[1.0, 2.0, 3.0]).unwrap();
        assert!((p - 0.05).abs() < 1e-12, "{p}");
        // 5 vs 5 complete separation: 1/252.
        let p = mann_whitney_p_greater(&[6.0, 7.0, 8.0, 9.0, 10.0], &[1.0, 2.0, 3.0, 4.0, 5.0])
            .unwrap();
        assert!((p - 1.0 / 252.0).abs() < 1e-12, "{p}");
        // The opposite direction is as unlikely as possible.
        let p = mann_whitney_p_greater(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]).unwrap();
        assert_eq!(p, 1.0);
    }

    #[test]
    fn exact_p_with_ties_matches_brute_force() {
        // 2 vs 2 with a tie across groups: U(a>b) = 3.5 of 4.
        let a = [2.0, 3.0];
        let b = [1.0, 2.0];
        assert_eq!(mann_whitney_u(&a, &b), 3.5);
        // Splits of {1,2,2,3} into 2+2 and their U: only {2,3} twice and
        // {3, 2'} reach >= 3.5 -> 2 of 6.
        let p = mann_whitney_p_greater(&a, &b).unwrap();
        assert!((p - 2.0 / 6.0).abs() < 1e-12, "{p}");
        assert_eq!(midranks(&[5.0, 1.0, 5.0, 3.0]), vec![3.5, 1.0, 3.5, 2.0]);
    }

    #[test]
    fn identical_samples_are_not_significant() {
        let a = [1.0, 1.0, 1.0, 1.0];
        let p = mann_whitney_p_greater(&a, &a).unwrap();
        assert_eq!(p, 1.0);
    }

    #[test]
    fn normal_approximation_agrees_with_separation() {
        let a: Vec<f64> = (0..30).map(|i| 100.0 + i as f64).collect();
        let b: Vec<f64> = (0..30).map(|i| i as f64).collect();
        assert!(binomial(60, 30) > EXACT_LIMIT);
        let p = mann_whitney_p_greater(&a, &b).unwrap();
        assert!(p < 1e-9, "{p}");
        let p = mann_whitney_p_greater(&b, &a).unwrap();
        assert!(p > 0.999, "{p}");
        // Interleaved samples: nowhere near significance.
        let even: Vec<f64> = (0..30).map(|i| (2 * i) as f64).collect();
        let odd: Vec<f64> = (0..30).map(|i| (2 * i + 1) as f64).collect();
        let p = mann_whitney_p_greater(&odd, &even).unwrap();
        assert!(p > 0.3 && p < 0.7, "{p}");
    }

    #[test]
    fn bootstrap_is_deterministic_and_brackets_the_shift() {
        let base = [10.0, 10.5, 9.8, 10.2, 10.1];
        let cur = [15.0, 15.4, 14.9, 15.2, 15.1];
        let a = bootstrap_median_diff(&base, &cur, 0.95, 2000, 7).unwrap();
        let b = bootstrap_median_diff(&base, &cur, 0.95, 2000, 7).unwrap();
        assert_eq!(a, b);
        assert!(a.low > 4.0 && a.high < 6.0, "{a:?}");
        assert!(!a.contains(0.0));
    }

    #[test]
    fn bootstrap_of_identical_samples_contains_zero() {
        let s = [10.0, 11.0, 9.0, 10.5, 9.5];
        let ci = bootstrap_median_diff(&s, &s, 0.95, 2000, 1).unwrap();
        assert!(ci.contains(0.0), "{ci:?}");
    }

    #[test]
    fn normal_cdf_is_sane() {
        assert!((standard_normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((standard_normal_cdf(1.96) - 0.975).abs() < 1e-4);
        assert!((standard_normal_cdf(-1.96) - 0.025).abs() < 1e-4);
    }
}
