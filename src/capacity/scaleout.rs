//! Scale-out model for the projection: how the cost of one unit of work
//! grows with the number of server nodes sharing a message bus (e.g. a Redis
//! adapter), and the instance count that follows from it.
//!
//! Model: server CPU per unit of work, summed over the nodes, at `n` nodes
//! is c(n) = c₁ · (1 + β(n − 1)); β is the bus overhead (0: nodes add
//! capacity linearly). A node then holds cap₁ / (1 + β(n − 1)) users, and
//! `n` nodes hold n · cap₁ / (1 + β(n − 1)), which tends to cap₁ / β: past
//! that, adding nodes cannot reach the target.
//!
//! The inputs are measurements at a fixed load and several cluster sizes
//! (`bench capacity --nodes 1,2,3`, run by [`super::nodes`]: the bundled
//! server as N processes over a redis-server bench starts). Without
//! `--nodes` the projection says it assumes linear scale-out (see
//! docs/capacity.md).

use serde::{Deserialize, Serialize};

use crate::results::LinearFit;

/// One measured cluster size, all at the same load.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NodeCost {
    pub nodes: u32,
    /// Server CPU per unit of work in µs, summed over the nodes.
    pub server_cpu_us_per_work: f64,
    /// The bus's (Redis's) CPU per unit of work in µs, when sampled.
    pub bus_cpu_us_per_work: Option<f64>,
}

/// The fitted bus overhead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BusOverhead {
    /// c₁: µs per unit of work on one node (the fit's intercept).
    pub single_node_us: f64,
    /// β: relative cost added per extra node.
    pub beta: f64,
    /// R² of the linear fit of c(n) against n − 1 (1.0 with two sizes).
    pub r2: f64,
    /// Mean bus CPU per unit of work (µs) over the measured sizes, if sampled.
    pub bus_cpu_us_per_work: Option<f64>,
    pub measured: Vec<NodeCost>,
}

impl BusOverhead {
    /// Fitted server CPU per unit of work (µs, summed over nodes) at `n` nodes.
    pub fn cost_at(&self, n: u32) -> f64 {
        self.single_node_us * (1.0 + self.beta * f64::from(n.max(1) - 1))
    }

    /// Users `n` nodes hold when one node holds `single_node_users`.
    pub fn users_at(&self, n: u32, single_node_users: f64) -> f64 {
        f64::from(n) * single_node_users / (1.0 + self.beta * f64::from(n.max(1) - 1))
    }

    /// Fewest nodes holding `users`; `None` when the bus overhead caps the
    /// cluster below it (the asymptote cap₁ / β is at or below `users`).
    pub fn instances_for(&self, users: u64, single_node_users: u64) -> Option<u64> {
        let (u, c) = (users as f64, single_node_users as f64);
        if c <= 0.0 {
            return None;
        }
        // n·c ≥ u(1 + β(n − 1))  ⇔  n(c − uβ) ≥ u(1 − β).
        let room = c - u * self.beta;
        if room <= 0.0 {
            return None;
        }
        let n = (u * (1.0 - self.beta) / room).ceil().max(1.0);
        Some(n as u64)
    }
}

/// Fits c(n) = c₁(1 + β(n − 1)) by least squares of c against n − 1 (the
/// intercept is c₁) over two or more distinct cluster sizes. `None` with
/// fewer than two sizes or a non-positive c₁.
pub fn fit(measured: &[NodeCost]) -> Option<BusOverhead> {
    let points: Vec<(f64, f64)> = measured
        .iter()
        .filter(|m| m.nodes >= 1 && m.server_cpu_us_per_work.is_finite())
        .map(|m| (f64::from(m.nodes - 1), m.server_cpu_us_per_work))
        .collect();
    let line = LinearFit::least_squares(&points)?;
    if line.intercept <= 0.0 {
        return None;
    }
    let bus: Vec<f64> = measured
        .iter()
        .filter_map(|m| m.bus_cpu_us_per_work)
        .collect();
    Some(BusOverhead {
        single_node_us: line.intercept,
        beta: (line.slope / line.intercept).max(0.0),
        r2: line.r2,
        bus_cpu_us_per_work: (!bus.is_empty()).then(|| bus.iter().sum::<f64>() / bus.len() as f64),
        measured: measured.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost(nodes: u32, us: f64) -> NodeCost {
        NodeCost {
            nodes,
            server_cpu_us_per_work: us,
            bus_cpu_us_per_work: Some(2.0),
        }
    }

    #[test]
    fn recovers_a_known_bus_overhead_and_predicts_the_next_size() {
        // c₁ = 10 µs, β = 0.3: 10, 13, 16 µs at 1, 2, 3 nodes.
        let two = fit(&[cost(1, 10.0), cost(2, 13.0)]).unwrap();
        assert!((two.single_node_us - 10.0).abs() < 1e-9);
        assert!((two.beta - 0.3).abs() < 1e-9, "{two:?}");
        assert!((two.cost_at(3) - 16.0).abs() < 1e-9);
        assert_eq!(two.bus_cpu_us_per_work, Some(2.0));
        assert!(fit(&[cost(1, 10.0)]).is_none());
    }

    #[test]
    fn instances_grow_faster_than_linear_and_can_be_unreachable() {
        let linear = fit(&[cost(1, 10.0), cost(2, 10.0)]).unwrap();
        assert_eq!(linear.instances_for(100_000, 1_000), Some(100));
        let bus = fit(&[cost(1, 10.0), cost(2, 11.0)]).unwrap(); // β = 0.1
        let n = bus.instances_for(5_000, 1_000).unwrap();
        // The smallest n whose capacity reaches the target.
        assert!(bus.users_at(n as u32, 1_000.0) >= 5_000.0 - 1e-6);
        assert!(bus.users_at(n as u32 - 1, 1_000.0) < 5_000.0);
        assert_eq!(n, 9); // 9 · 1000 / 1.8 = 5000; 8 · 1000 / 1.7 ≈ 4706
                          // The cluster tends to 1000 / 0.1 = 10,000 users: never reached.
        assert_eq!(bus.instances_for(10_000, 1_000), None);
    }
}
