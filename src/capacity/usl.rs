//! Universal Scalability Law fit: X(N) = λN / (1 + σ(N−1) + κN(N−1)).
//!
//! σ is contention (queueing on shared resources), κ coherency (crosstalk
//! that makes throughput fall past a peak). For a fixed λ the model is
//! linear in σ and κ (λN/X − 1 = σ(N−1) + κN(N−1)), so we search λ in one
//! dimension and solve σ, κ by non-negative least squares at each λ,
//! scoring every candidate by its squared error in throughput space.

use serde::{Deserialize, Serialize};

/// One fitted point: what was measured, what the curve says, and the gap.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Residual {
    pub load: f64,
    pub measured: f64,
    pub fitted: f64,
}

impl Residual {
    /// (measured − fitted) / fitted; 0 where the curve is 0.
    pub fn share(&self) -> f64 {
        if self.fitted > 0.0 {
            (self.measured - self.fitted) / self.fitted
        } else {
            0.0
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UslFit {
    /// Throughput of one unit of load with no contention.
    pub lambda: f64,
    pub sigma: f64,
    pub kappa: f64,
    /// Coefficient of determination in throughput space.
    pub r2: f64,
    pub points: usize,
    /// Load at which throughput peaks (`None` when κ = 0: no peak).
    pub peak_load: Option<f64>,
    pub peak_throughput: Option<f64>,
    /// Every fitted point in load order.
    #[serde(default)]
    pub residuals: Vec<Residual>,
    /// Set when the fit is poor: which assumption of the USL broke.
    #[serde(default)]
    pub warning: Option<String>,
}

/// Below this R² the USL does not describe the steps; say so wherever it is shown.
const POOR_FIT_R2: f64 = 0.8;

impl UslFit {
    pub fn throughput(&self, n: f64) -> f64 {
        usl(self.lambda, self.sigma, self.kappa, n)
    }

    /// A warning when the fit is poor, naming the assumption that broke.
    pub fn fit_warning(&self) -> Option<String> {
        self.warning.clone()
    }
}

/// Work per unit of load may grow this much from the lowest to the highest
/// fitted load before we call the workload heavier per unit at high load.
const SUPERLINEAR_GROWTH: f64 = 1.25;

/// Which USL assumption a poor fit broke, judged from the points (sorted
/// by load) and their residuals.
fn diagnose(r2: f64, points: &[(f64, f64)], residuals: &[Residual]) -> Option<String> {
    if r2 >= POOR_FIT_R2 {
        return None;
    }
    let per_unit = |&(n, x): &(f64, f64)| x / n;
    let (first, last) = (points.first()?, points.last()?);
    let (lo, hi) = (per_unit(first), per_unit(last));
    if hi > lo * SUPERLINEAR_GROWTH {
        return Some(format!(
            "poor fit (R² {r2:.2}): the USL assumes each unit of load brings the same work, but work per unit of load grew from {lo:.2}/s at {:.0} to {hi:.2}/s at {:.0}: each step is a heavier workload (e.g. rooms that grow with the clients, deliveries ~ N²; use a constant room size); σ and κ mean little",
            first.0, last.0
        ));
    }
    let worst = residuals
        .iter()
        .max_by(|a, b| a.share().abs().total_cmp(&b.share().abs()))?;
    Some(format!(
        "poor fit (R² {r2:.2}): the USL assumes throughput changes smoothly with the load, but the steps scatter around the curve (largest residual {:+.0}% at {:.0}): noisy steps (a shared machine, short windows) or a sudden change (a queue overflowing, a cliff past saturation); σ and κ mean little",
        worst.share() * 100.0,
        worst.load
    ))
}

fn usl(lambda: f64, sigma: f64, kappa: f64, n: f64) -> f64 {
    lambda * n / (1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0))
}

/// Least squares of y = σa + κb with σ, κ ≥ 0 (no intercept).
fn nonneg_two_term(rows: &[(f64, f64, f64)]) -> (f64, f64) {
    let (mut saa, mut sab, mut sbb, mut say, mut sby) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &(a, b, y) in rows {
        saa += a * a;
        sab += a * b;
        sbb += b * b;
        say += a * y;
        sby += b * y;
    }
    let only_sigma = || (if saa > 0.0 { (say / saa).max(0.0) } else { 0.0 }, 0.0);
    let only_kappa = || (0.0, if sbb > 0.0 { (sby / sbb).max(0.0) } else { 0.0 });
    let det = saa * sbb - sab * sab;
    if det.abs() > 1e-12 * (saa * sbb).max(1e-300) {
        let sigma = (say * sbb - sby * sab) / det;
        let kappa = (sby * saa - say * sab) / det;
        if sigma >= 0.0 && kappa >= 0.0 {
            return (sigma, kappa);
        }
    }
    // The unconstrained optimum left the feasible region: the best
    // feasible point lies on an axis, so take the better of the two.
    let sse = |(s, k): (f64, f64)| -> f64 {
        rows.iter()
            .map(|&(a, b, y)| (y - s * a - k * b).powi(2))
            .sum()
    };
    let (p, q) = (only_sigma(), only_kappa());
    if sse(p) <= sse(q) {
        p
    } else {
        q
    }
}

/// Fits the USL to (load, throughput) points. Needs at least three points
/// with positive load and throughput and at least two distinct loads.
pub fn fit(points: &[(f64, f64)]) -> Option<UslFit> {
    let mut pts: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|&(n, x)| n > 0.0 && x > 0.0 && n.is_finite() && x.is_finite())
        .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    if pts.len() < 3 {
        return None;
    }
    let lambda_min = pts.iter().map(|&(n, x)| x / n).fold(0.0, f64::max);
    let solve = |lambda: f64| -> (f64, f64, f64) {
        let rows: Vec<_> = pts
            .iter()
            .map(|&(n, x)| (n - 1.0, n * (n - 1.0), lambda * n / x - 1.0))
            .collect();
        let (s, k) = nonneg_two_term(&rows);
        let sse = pts
            .iter()
            .map(|&(n, x)| (x - usl(lambda, s, k, n)).powi(2))
            .sum();
        (s, k, sse)
    };
    // λ ≥ max X/N because contention only ever lowers throughput. The error
    // need not be unimodal in λ, so a log grid finds the basin and a
    // golden-section search polishes it.
    const GRID: usize = 400;
    let span = 50.0f64;
    let at = |i: f64| lambda_min * span.powf(i / GRID as f64);
    let best_i = (0..=GRID)
        .min_by(|&i, &j| solve(at(i as f64)).2.total_cmp(&solve(at(j as f64)).2))
        .unwrap_or(0);
    let (mut lo, mut hi) = (
        at(best_i as f64 - 1.0).max(lambda_min),
        at(best_i as f64 + 1.0),
    );
    let phi = (5f64.sqrt() - 1.0) / 2.0;
    for _ in 0..100 {
        let m1 = hi - phi * (hi - lo);
        let m2 = lo + phi * (hi - lo);
        if solve(m1).2 <= solve(m2).2 {
            hi = m2;
        } else {
            lo = m1;
        }
    }
    let lambda = (lo + hi) / 2.0;
    let (sigma, kappa, sse) = solve(lambda);
    let mean = pts.iter().map(|p| p.1).sum::<f64>() / pts.len() as f64;
    let ss_tot: f64 = pts.iter().map(|p| (p.1 - mean).powi(2)).sum();
    let r2 = if ss_tot > 0.0 {
        1.0 - sse / ss_tot
    } else {
        1.0
    };
    let peak_load = (kappa > 0.0 && sigma < 1.0).then(|| ((1.0 - sigma) / kappa).sqrt());
    let residuals: Vec<Residual> = pts
        .iter()
        .map(|&(load, measured)| Residual {
            load,
            measured,
            fitted: usl(lambda, sigma, kappa, load),
        })
        .collect();
    Some(UslFit {
        lambda,
        sigma,
        kappa,
        r2,
        points: pts.len(),
        peak_load,
        peak_throughput: peak_load.map(|n| usl(lambda, sigma, kappa, n)),
        warning: diagnose(r2, &pts, &residuals),
        residuals,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn synthetic(lambda: f64, sigma: f64, kappa: f64, noise: f64) -> Vec<(f64, f64)> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        [
            1.0, 2.0, 4.0, 8.0, 16.0, 24.0, 32.0, 48.0, 64.0, 96.0, 128.0,
        ]
        .iter()
        .map(|&n| {
            let jitter = 1.0 + noise * (rng.gen::<f64>() * 2.0 - 1.0);
            (n, usl(lambda, sigma, kappa, n) * jitter)
        })
        .collect()
    }

    #[test]
    fn recovers_known_parameters_exactly() {
        let f = fit(&synthetic(1000.0, 0.05, 0.0002, 0.0)).unwrap();
        assert!((f.lambda - 1000.0).abs() / 1000.0 < 1e-3, "{f:?}");
        assert!((f.sigma - 0.05).abs() < 1e-3, "{f:?}");
        assert!((f.kappa - 0.0002).abs() < 1e-5, "{f:?}");
        assert!(f.r2 > 0.9999);
        let peak = f.peak_load.unwrap();
        assert!((peak - (0.95f64 / 0.0002).sqrt()).abs() < 1.0, "{peak}");
    }

    #[test]
    fn recovers_parameters_under_noise() {
        let f = fit(&synthetic(500.0, 0.1, 0.001, 0.01)).unwrap();
        assert!((f.lambda - 500.0).abs() / 500.0 < 0.05, "{f:?}");
        assert!((f.sigma - 0.1).abs() < 0.03, "{f:?}");
        assert!((f.kappa - 0.001).abs() < 0.0003, "{f:?}");
    }

    #[test]
    fn linear_scaling_has_no_peak() {
        let pts: Vec<_> = (1..10).map(|n| (n as f64, 100.0 * n as f64)).collect();
        let f = fit(&pts).unwrap();
        assert!(f.sigma < 1e-6 && f.kappa < 1e-9, "{f:?}");
        assert!(f.peak_load.is_none());
    }

    #[test]
    fn too_few_points_is_no_fit() {
        assert!(fit(&[(1.0, 1.0), (2.0, 2.0)]).is_none());
        assert!(fit(&[(1.0, 0.0), (2.0, 0.0), (3.0, 0.0)]).is_none());
    }

    #[test]
    fn superlinear_throughput_is_flagged_as_a_poor_fit() {
        // Fan-out with a fixed room count: deliveries grow as N².
        let pts: Vec<(f64, f64)> = [500.0, 1000.0, 2000.0, 4000.0]
            .iter()
            .map(|&n| (n, n * n / 250.0))
            .collect();
        let f = fit(&pts).unwrap();
        let w = f.fit_warning().unwrap();
        assert!(w.contains("work per unit of load grew"), "{w}");
        let exact: Vec<(f64, f64)> = (1..=8)
            .map(|i| {
                let n = f64::from(i) * 10.0;
                (n, usl(5.0, 0.05, 0.0001, n))
            })
            .collect();
        assert!(fit(&exact).unwrap().fit_warning().is_none());
    }

    #[test]
    fn residuals_are_reported_for_every_point_in_load_order() {
        let mut pts = synthetic(200.0, 0.03, 0.0005, 0.0);
        pts.reverse();
        let f = fit(&pts).unwrap();
        assert_eq!(f.residuals.len(), pts.len());
        assert!(f.residuals.windows(2).all(|w| w[0].load < w[1].load));
        assert!(f.residuals.iter().all(|r| r.share().abs() < 1e-3), "{f:?}");
    }

    #[test]
    fn scatter_is_named_as_the_broken_assumption() {
        // Linear work per unit, but one step far off the line (a noisy step).
        let pts: Vec<(f64, f64)> = [
            (100.0, 1000.0),
            (200.0, 3100.0),
            (300.0, 1900.0),
            (400.0, 4000.0),
            (500.0, 4300.0),
        ]
        .to_vec();
        let f = fit(&pts).unwrap();
        let w = f.fit_warning().unwrap_or_default();
        assert!(f.r2 < POOR_FIT_R2 && w.contains("scatter"), "{f:?}");
        assert!(w.contains("at 200") || w.contains("at 300"), "{w}");
    }
}
