//! "For N users you need M instances": turns the measured per-instance
//! capacity and the memory fit into an instance count, stating what bound it
//! and how instances were assumed to add up: linearly (assumed, not
//! measured) or with a measured bus overhead ([`super::scaleout`]).

use serde::{Deserialize, Serialize};

use super::scaleout::BusOverhead;
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

/// How instances add up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ScaleOut {
    /// Assumed, not measured: n instances hold n × one instance's users,
    /// with no cross-instance fan-out cost.
    AssumedLinear,
    /// Measured cost per unit of work against cluster size.
    Measured { bus: BusOverhead },
}

/// What a projection is computed from.
pub struct ProjectionInputs<'a> {
    pub target_users: u64,
    /// Users one instance holds within the SLOs (the search's capacity).
    pub capacity_users: u64,
    pub memory: Option<&'a LinearFit>,
    pub machine_memory_bytes: u64,
    /// The capacity is only a lower bound.
    pub conservative: bool,
    /// Measured bus overhead; `None`: linear scale-out is assumed.
    pub bus: Option<&'a BusOverhead>,
    /// Server work per second per user at the capacity (for the bus's load).
    pub work_per_user: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Projection {
    pub target_users: u64,
    /// `None`: with the measured bus overhead no cluster size reaches the target.
    pub instances: Option<u64>,
    pub scale_out: ScaleOut,
    /// With a measured bus: the bus's (Redis's) CPU at the target, in cores,
    /// from its CPU per unit of work; above 1 core a single Redis is the
    /// bottleneck.
    pub bus_cores_at_target: Option<f64>,
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

impl Projection {
    /// The instance count, or why there is none.
    pub fn instances_text(&self) -> String {
        match self.instances {
            Some(n) => crate::report::html::grouped(n as i64),
            None => {
                "unreachable (the measured bus overhead caps the cluster below the target)".into()
            }
        }
    }

    /// How instances were assumed to add up, in a few words.
    pub fn scale_out_label(&self) -> &'static str {
        match self.scale_out {
            ScaleOut::AssumedLinear => {
                "linear scale-out, ASSUMED (no cross-instance fan-out cost measured)"
            }
            ScaleOut::Measured { .. } => "scale-out from the measured bus overhead",
        }
    }
}

/// Projects instances for the target users. `None` when there is no
/// passing load to scale from.
pub fn project(inp: &ProjectionInputs) -> Option<Projection> {
    let (target_users, capacity_users) = (inp.target_users, inp.capacity_users);
    if capacity_users == 0 || target_users == 0 {
        return None;
    }
    let users_per_instance_memory = inp.memory.filter(|f| f.slope > 0.0).map(|f| {
        let usable = inp.machine_memory_bytes as f64 * MEMORY_PLANNING_SHARE - f.intercept.max(0.0);
        (usable.max(0.0) / f.slope).floor() as u64
    });
    let (per_instance, bound) = match users_per_instance_memory {
        Some(mem) if mem < capacity_users => (mem.max(1), Bound::Memory),
        _ => (capacity_users, Bound::Cpu),
    };
    let by_memory = users_per_instance_memory.map(|m| target_users.div_ceil(m.max(1)));
    let (instances, scale_out, scale_assumption) = match inp.bus {
        None => (
            Some(target_users.div_ceil(per_instance)),
            ScaleOut::AssumedLinear,
            "ASSUMED, not measured: capacity adds linearly across instances and load spreads evenly; cross-instance fan-out (e.g. a Redis adapter) costs nothing here, which underestimates instances for a chat server that fans out over a bus".to_owned(),
        ),
        Some(bus) => {
            // The bus overhead lowers CPU capacity per node; memory per node is unchanged.
            let by_cpu = bus.instances_for(target_users, capacity_users);
            let n = by_cpu.map(|c| by_memory.map_or(c, |m| c.max(m)));
            (
                n,
                ScaleOut::Measured { bus: bus.clone() },
                format!(
                    "measured scale-out: server CPU per unit of work grows by {:.1}% per extra node (fit over {} cluster sizes on one machine, R² {:.2}); rooms spread over the nodes at random",
                    bus.beta * 100.0,
                    bus.measured.len(),
                    bus.r2
                ),
            )
        }
    };
    let bus_cores_at_target = match (inp.bus, inp.work_per_user) {
        (Some(b), Some(w)) => b
            .bus_cpu_us_per_work
            .map(|us| us * w * target_users as f64 / 1e6),
        _ => None,
    };
    let mut assumptions = vec![
        "instances are this machine's size and run the same server build and configuration"
            .to_owned(),
        "every user behaves like the scenario's client mix (rooms, chat rate, reconnects)"
            .to_owned(),
        scale_assumption,
        format!(
            "memory planning uses {:.0}% of the machine's RAM for the server process",
            MEMORY_PLANNING_SHARE * 100.0
        ),
        "no headroom for failover or traffic peaks is added".to_owned(),
    ];
    if inp.bus.is_some() {
        assumptions.push(
            "one node holds the search's capacity (one process without Redis); the bus overhead β is relative to one node over Redis, so the Redis round trip of a single node is not charged to it".to_owned(),
        );
        assumptions.push(
            "nodes were measured as processes sharing this machine's cores and one local redis-server; across machines the network adds latency, not CPU, and Redis's CPU per unit of work is assumed to stay constant (one Redis uses at most one core)".to_owned(),
        );
    }
    if inp.conservative {
        assumptions.push(
            "the measured capacity is a lower bound (the generator or the search range limited it), so this count may be too high".to_owned(),
        );
    }
    Some(Projection {
        target_users,
        instances,
        scale_out,
        bus_cores_at_target,
        users_per_instance_slo: capacity_users,
        users_per_instance_memory,
        bound,
        conservative: inp.conservative,
        assumptions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capacity::scaleout::{self, NodeCost};

    fn fit(slope: f64, intercept: f64) -> LinearFit {
        LinearFit {
            slope,
            intercept,
            r2: 1.0,
            points: 10,
        }
    }

    fn inputs(
        users: u64,
        capacity: u64,
        memory: Option<&LinearFit>,
        ram: u64,
    ) -> ProjectionInputs<'_> {
        ProjectionInputs {
            target_users: users,
            capacity_users: capacity,
            memory,
            machine_memory_bytes: ram,
            conservative: false,
            bus: None,
            work_per_user: None,
        }
    }

    #[test]
    fn cpu_bound_when_memory_holds_more() {
        let m = fit(4096.0, 10e6);
        let p = project(&inputs(1_000_000, 20_000, Some(&m), 24 << 30)).unwrap();
        assert_eq!(p.bound, Bound::Cpu);
        assert_eq!(p.instances, Some(50));
        assert_eq!(p.scale_out, ScaleOut::AssumedLinear);
        assert!(p
            .assumptions
            .iter()
            .any(|a| a.starts_with("ASSUMED, not measured")));
    }

    #[test]
    fn memory_bound_when_connections_are_fat() {
        // 1 MiB per connection on 1 GiB: ~716 users per instance by memory.
        let m = fit(1048576.0, 0.0);
        let p = project(&inputs(10_000, 5_000, Some(&m), 1 << 30)).unwrap();
        assert_eq!(p.bound, Bound::Memory);
        assert_eq!(p.users_per_instance_memory, Some(716));
        assert_eq!(p.instances, Some(10_000u64.div_ceil(716)));
    }

    #[test]
    fn nothing_to_project_from_zero_capacity() {
        assert!(project(&inputs(10, 0, None, 1 << 30)).is_none());
        let mut inp = inputs(10, 3, None, 1 << 30);
        inp.conservative = true;
        let p = project(&inp).unwrap();
        assert_eq!(p.instances, Some(4));
        assert!(p.conservative && p.assumptions.iter().any(|a| a.contains("lower bound")));
    }

    #[test]
    fn a_measured_bus_overhead_replaces_the_linear_assumption() {
        let cost = |nodes, us| NodeCost {
            nodes,
            server_cpu_us_per_work: us,
            bus_cpu_us_per_work: Some(5.0),
        };
        let bus = scaleout::fit(&[cost(1, 10.0), cost(2, 11.0)]).unwrap(); // β = 0.1
        let mut inp = inputs(5_000, 1_000, None, 1 << 30);
        inp.bus = Some(&bus);
        inp.work_per_user = Some(20.0);
        let p = project(&inp).unwrap();
        assert_eq!(p.instances, Some(9), "linear would say 5");
        assert!(matches!(p.scale_out, ScaleOut::Measured { .. }));
        // 5 µs × 20 units/s × 5,000 users = 0.5 cores of Redis.
        assert!((p.bus_cores_at_target.unwrap() - 0.5).abs() < 1e-9);
        inp.target_users = 20_000;
        assert_eq!(project(&inp).unwrap().instances, None);
    }
}
