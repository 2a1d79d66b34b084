//! Universal Scalability Law fit: X(N) = λN / (1 + σ(N−1) + κN(N−1)).
//!
//! σ is contention (queueing on shared resources), κ coherency (crosstalk
//! that makes throughput fall past a peak). For a fixed λ the model is
//! linear in σ and κ (λN/X − 1 = σ(N−1) + κN(N−1)), so we search λ in one
//! dimension and solve σ, κ by non-negative least squares at each λ,
//! scoring every candidate by its squared error in throughput space.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
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
}

/// Below this R² the USL does not describe the steps; say so wherever it is shown.
const POOR_FIT_R2: f64 = 0.8;

impl UslFit {
    pub fn throughput(&self, n: f64) -> f64 {
        usl(self.lambda, self.sigma, self.kappa, n)
    }

    /// A warning when the fit is poor, with the usual cause.
    pub fn fit_warning(&self) -> Option<String> {
        (self.r2 < POOR_FIT_R2).then(|| {
            format!(
                "poor fit (R² {:.2}): throughput is not sub-linear in the load here, e.g. fan-out whose rooms grow with the clients (deliveries ~ N²); σ and κ mean little",
                self.r2
            )
        })
    }
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
    let pts: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|&(n, x)| n > 0.0 && x > 0.0 && n.is_finite() && x.is_finite())
        .collect();
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
    Some(UslFit {
        lambda,
        sigma,
        kappa,
        r2,
        points: pts.len(),
        peak_load,
        peak_throughput: peak_load.map(|n| usl(lambda, sigma, kappa, n)),
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
        assert!(f.fit_warning().is_some(), "{f:?}");
        let exact: Vec<(f64, f64)> = (1..=8)
            .map(|i| {
                let n = f64::from(i) * 10.0;
                (n, usl(5.0, 0.05, 0.0001, n))
            })
            .collect();
        assert!(fit(&exact).unwrap().fit_warning().is_none());
    }
}
