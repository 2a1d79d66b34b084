//! Least-squares line fits, shared by the engine (memory per connection as
//! the slope of RSS against clients) and capacity planning.

use super::LinearFit;

impl LinearFit {
    /// Ordinary least squares of `y = slope·x + intercept`. `None` with fewer
    /// than two points or when every x is the same (the slope is undefined).
    pub fn least_squares(points: &[(f64, f64)]) -> Option<LinearFit> {
        let n = points.len();
        if n < 2 {
            return None;
        }
        let nf = n as f64;
        let mean_x = points.iter().map(|p| p.0).sum::<f64>() / nf;
        let mean_y = points.iter().map(|p| p.1).sum::<f64>() / nf;
        let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
        if sxx <= f64::EPSILON * mean_x.abs().max(1.0) {
            return None;
        }
        let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
        let slope = sxy / sxx;
        let intercept = mean_y - slope * mean_x;
        let ss_tot: f64 = points.iter().map(|p| (p.1 - mean_y).powi(2)).sum();
        let ss_res: f64 = points
            .iter()
            .map(|p| (p.1 - (slope * p.0 + intercept)).powi(2))
            .sum();
        let r2 = if ss_tot > 0.0 {
            1.0 - ss_res / ss_tot
        } else {
            1.0
        };
        Some(LinearFit {
            slope,
            intercept,
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
}
