//! "For N users you need M instances": turns the measured per-instance
//! capacity and the memory fit into an instance count, stating what bound it.

use serde::{Deserialize, Serialize};

use crate::results::LinearFit;

/// Share of the machine's memory a server may plan to use; the rest is the
/// kernel's (socket buffers live there, not in the process RSS) and headroom.
const MEMORY_PLANNING_SHARE: f64 = 0.7;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    /// The SLO search limit (latency, errors: in practice CPU) binds first.
    Cpu,
    Memory,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Projection {
    pub target_users: u64,
    pub instances: u64,
    /// Users one instance holds within the SLOs, as measured.
    pub users_per_instance_slo: u64,
    /// Users one instance's memory holds, from the RSS fit (None: no fit).
    pub users_per_instance_memory: Option<u64>,
    pub bound: Bound,
    /// True when the measured capacity is only a lower bound (generator
    /// limited or the maximum load still passed), so `instances` may be high.
    pub conservative: bool,
    pub assumptions: Vec<String>,
}

/// Projects instances for `target_users`. `None` when there is no passing
/// load to scale from.
pub fn project(
    target_users: u64,
    capacity_users: u64,
    memory: Option<&LinearFit>,
    machine_memory_bytes: u64,
    conservative: bool,
) -> Option<Projection> {
    if capacity_users == 0 || target_users == 0 {
        return None;
    }
    let users_per_instance_memory = memory.filter(|f| f.slope > 0.0).map(|f| {
        let usable = machine_memory_bytes as f64 * MEMORY_PLANNING_SHARE - f.intercept.max(0.0);
        (usable.max(0.0) / f.slope).floor() as u64
    });
    let (per_instance, bound) = match users_per_instance_memory {
        Some(mem) if mem < capacity_users => (mem.max(1), Bound::Memory),
        _ => (capacity_users, Bound::Cpu),
    };
    let instances = target_users.div_ceil(per_instance);
    let mut assumptions = vec![
        "instances are this machine's size and run the same server build and configuration".to_owned(),
        "every user behaves like the scenario's client mix (rooms, chat rate, reconnects)".to_owned(),
        "load spreads evenly and capacity adds linearly across instances; cross-instance fan-out (e.g. a Redis adapter) is not modelled".to_owned(),
        format!(
            "memory planning uses {:.0}% of the machine's RAM for the server process",
            MEMORY_PLANNING_SHARE * 100.0
        ),
        "no headroom for failover or traffic peaks is added".to_owned(),
    ];
    if conservative {
        assumptions.push(
            "the measured capacity is a lower bound (the generator or the search range limited it), so this count may be too high".to_owned(),
        );
    }
    Some(Projection {
        target_users,
        instances,
        users_per_instance_slo: capacity_users,
        users_per_instance_memory,
        bound,
        conservative,
        assumptions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fit(slope: f64, intercept: f64) -> LinearFit {
        LinearFit {
            slope,
            intercept,
            r2: 1.0,
            points: 10,
        }
    }

    #[test]
    fn cpu_bound_when_memory_holds_more() {
        let p = project(1_000_000, 20_000, Some(&fit(4096.0, 10e6)), 24 << 30, false).unwrap();
        assert_eq!(p.bound, Bound::Cpu);
        assert_eq!(p.instances, 50);
    }

    #[test]
    fn memory_bound_when_connections_are_fat() {
        // 1 MiB per connection on 1 GiB: ~716 users per instance by memory.
        let p = project(10_000, 5_000, Some(&fit(1048576.0, 0.0)), 1 << 30, false).unwrap();
        assert_eq!(p.bound, Bound::Memory);
        assert_eq!(p.users_per_instance_memory, Some(716));
        assert_eq!(p.instances, 10_000u64.div_ceil(716));
    }

    #[test]
    fn nothing_to_project_from_zero_capacity() {
        assert!(project(10, 0, None, 1 << 30, false).is_none());
        let p = project(10, 3, None, 1 << 30, true).unwrap();
        assert_eq!(p.instances, 4);
        assert!(p.conservative && p.assumptions.iter().any(|a| a.contains("lower bound")));
    }
}
