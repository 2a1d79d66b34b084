//! The one least-squares line fit, shared by the engine (memory per
//! connection as the slope of RSS against clients), capacity planning and
//! the report's memory chart.

use super::LinearFit;

impl LinearFit {
    /// Ordinary least squares of `y = slope·x + intercept`, the one fit of
    /// the crate (the engine's memory per connection, capacity planning, the
    /// report's chart). `None` with fewer than two points or when every x is
    /// the same (the slope is undefined). `r2` is `sxy² / (sxx·syy)`, 1 when
    /// every y is the same.
    pub fn least_squares(points: &[(f64, f64)]) -> Option<LinearFit> {
        let n = points.len();
        if n < 2 {
            return None;
        }
        let nf = n as f64;
        let mx = points.iter().map(|p| p.0).sum::<f64>() / nf;
        let my = points.iter().map(|p| p.1).sum::<f64>() / nf;
        let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
        let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
        let syy: f64 = points.iter().map(|p| (p.1 - my).powi(2)).sum();
        if sxx <= f64::EPSILON * mx.abs().max(1.0) {
            return None;
        }
        let slope = sxy / sxx;
        let r2 = if syy <= f64::EPSILON {
            1.0
        } else {
            (sxy * sxy) / (sxx * syy)
        };
        Some(LinearFit {
            slope,
            intercept: my - slope * mx,
            r2,
            points: n,
        })
    }

    pub fn predict(&self, x: f64) -> f64 {
        self.slope * x + self.intercept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_an_exact_line() {
        let pts: Vec<_> = (0..10).map(|i| (i as f64, 3.0 * i as f64 + 7.0)).collect();
        let f = LinearFit::least_squares(&pts).unwrap();
        assert!((f.slope - 3.0).abs() < 1e-9 && (f.intercept - 7.0).abs() < 1e-9);
        assert!((f.r2 - 1.0).abs() < 1e-12);
        assert_eq!(f.points, 10);
    }

    #[test]
    fn degenerate_inputs_have_no_fit() {
        assert!(LinearFit::least_squares(&[(1.0, 2.0)]).is_none());
        assert!(LinearFit::least_squares(&[(1.0, 2.0), (1.0, 5.0)]).is_none());
    }

    #[test]
    fn noisy_points_fit_with_r2_below_one_and_flat_y_has_r2_one() {
        let pts = [(0.0, 1.0), (1.0, 3.0), (2.0, 2.0), (3.0, 5.0)];
        let f = LinearFit::least_squares(&pts).unwrap();
        assert!((f.slope - 1.1).abs() < 1e-12 && (f.intercept - 1.1).abs() < 1e-12);
        // r² = sxy² / (sxx·syy) = 5.5² / (5 · 8.75).
        assert!((f.r2 - 30.25 / 43.75).abs() < 1e-12, "{}", f.r2);
        let flat = LinearFit::least_squares(&[(0.0, 4.0), (1.0, 4.0), (5.0, 4.0)]).unwrap();
        assert_eq!((flat.slope, flat.r2), (0.0, 1.0));
    }
}
