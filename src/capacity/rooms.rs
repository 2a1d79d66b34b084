//! How rooms grow from step to step of `bench capacity --vary clients`.
//!
//! With a fixed room *count* every step's rooms are bigger than the last
//! one's, so deliveries per message grow with the clients (deliveries ~ N²)
//! and each step is a different workload. A constant room *size* keeps the
//! fan-out per message fixed, so the steps are more of the same workload:
//! what a scalability model needs. Constant size is the default; a fixed
//! count stays available (`--rooms fixed-count`) for "one big room".

use serde::{Deserialize, Serialize};

use super::model::Vary;
use crate::exit::UsageError;
use crate::scenario::{Plan, RoomDistribution, RoomPlan};

/// `--rooms`: what stays constant while the clients grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum RoomsMode {
    /// Members per room stay fixed; the room count follows the clients.
    #[value(name = "constant-size")]
    ConstantSize,
    /// The room count stays fixed; rooms grow with the clients.
    #[value(name = "fixed-count")]
    FixedCount,
}

/// What the search does with the scenario's rooms, recorded in
/// `capacity.json` and shown in the terminal and on the page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomsSetup {
    pub mode: RoomsMode,
    /// Members per room (constant size only).
    pub size: Option<u32>,
    /// The room count (fixed count only).
    pub count: Option<u32>,
    pub per_client: u32,
    /// One sentence: what was chosen and why.
    pub note: String,
}

impl RoomsSetup {
    /// Rooms of a step with `clients` clients.
    pub fn rooms_at(&self, clients: u32) -> u32 {
        match (self.size, self.count) {
            (Some(size), _) => RoomPlan::count_for(size, self.per_client, clients),
            (None, Some(count)) => count,
            (None, None) => 1,
        }
    }
}

fn usage(msg: String) -> anyhow::Error {
    UsageError(msg).into()
}

/// Members per room of a fixed-count scenario at its peak: clients ×
/// per_client / count, rounded (at least 1).
fn derived_size(rooms: &RoomPlan, peak: u32) -> u32 {
    let memberships = f64::from(peak) * f64::from(rooms.per_client);
    ((memberships / f64::from(rooms.count.max(1))).round() as u32).max(1)
}

/// Decides the rooms policy and rewrites `plan.rooms` to match. `None` with
/// `--vary chat_rate`: the clients (and so the rooms) do not change.
pub fn apply(
    plan: &mut Plan,
    vary: Vary,
    requested: Option<RoomsMode>,
) -> anyhow::Result<Option<RoomsSetup>> {
    if vary != Vary::Clients {
        if requested.is_some() {
            return Err(usage(
                "--rooms applies to --vary clients only (with --vary chat_rate the clients and rooms stay as written)".into(),
            ));
        }
        return Ok(None);
    }
    let peak = plan.peak_clients().max(1);
    let rooms = &mut plan.rooms;
    let per_client = rooms.per_client;
    let fixed = |rooms: &mut RoomPlan, note: String| {
        rooms.size = None;
        RoomsSetup {
            mode: RoomsMode::FixedCount,
            size: None,
            count: Some(rooms.count),
            per_client,
            note,
        }
    };
    if requested == Some(RoomsMode::FixedCount) {
        let note = format!(
            "rooms: a fixed count of {} (--rooms fixed-count): rooms grow with the clients, so deliveries per message grow with the load",
            rooms.count
        );
        return Ok(Some(fixed(rooms, note)));
    }
    if let Some(size) = rooms.size {
        let note = format!(
            "rooms: constant size of {size} members (the scenario's [rooms] size); the room count follows the clients"
        );
        return Ok(Some(constant(size, per_client, note)));
    }
    if matches!(rooms.distribution, RoomDistribution::Zipf { .. }) {
        let why = "the scenario's rooms are zipf-distributed (skewed sizes on purpose), which a constant room size cannot keep";
        if requested == Some(RoomsMode::ConstantSize) {
            return Err(usage(format!("--rooms constant-size: {why}")));
        }
        let note = format!(
            "rooms: a fixed count of {}, not a constant size: {why}; deliveries per message grow with the load, so expect a poorer USL fit",
            rooms.count
        );
        return Ok(Some(fixed(rooms, note)));
    }
    let size = derived_size(rooms, peak);
    rooms.size = Some(size);
    let mut note = format!(
        "rooms: constant size of {size} members, derived from the scenario ({peak} clients × {per_client} room(s) each / {} rooms); the room count follows the clients (--rooms fixed-count keeps {} rooms)",
        rooms.count, rooms.count
    );
    if rooms.count == 1 {
        note.push_str(
            "; the scenario has one room: for one big room at every load pass --rooms fixed-count",
        );
    }
    Ok(Some(constant(size, per_client, note)))
}

fn constant(size: u32, per_client: u32, note: String) -> RoomsSetup {
    RoomsSetup {
        mode: RoomsMode::ConstantSize,
        size: Some(size),
        count: None,
        per_client,
        note,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::PlanOverrides;

    fn plan(rooms: &str) -> Plan {
        let text = format!(
            "[[stages]]\nduration = \"1s\"\ntarget = 1000\n[rooms]\n{rooms}\n[[clients]]\nchat_rate = \"1/s\"\n"
        );
        crate::scenario::parse(&text, "s.toml", None, &PlanOverrides::default()).unwrap()
    }

    #[test]
    fn constant_size_is_derived_from_the_scenario_by_default() {
        let mut p = plan("count = 50\nper_client = 2");
        let setup = apply(&mut p, Vary::Clients, None).unwrap().unwrap();
        assert_eq!(setup.mode, RoomsMode::ConstantSize);
        assert_eq!(setup.size, Some(40));
        assert_eq!(p.rooms.size, Some(40));
        // Same rooms as written at the scenario's own clients, twice as many at twice the clients.
        assert_eq!(setup.rooms_at(1000), 50);
        assert_eq!(setup.rooms_at(2000), 100);
        assert!(setup.note.contains("derived"), "{}", setup.note);
    }

    #[test]
    fn fixed_count_and_the_scenarios_own_size_are_kept() {
        let mut p = plan("count = 50");
        let setup = apply(&mut p, Vary::Clients, Some(RoomsMode::FixedCount))
            .unwrap()
            .unwrap();
        assert_eq!((setup.count, p.rooms.size), (Some(50), None));
        assert_eq!(setup.rooms_at(5000), 50);
        let mut p = plan("size = 25");
        let setup = apply(&mut p, Vary::Clients, None).unwrap().unwrap();
        assert_eq!(setup.size, Some(25));
        assert!(setup.note.contains("the scenario's [rooms] size"));
        // Fixed count on a size scenario freezes the count at its peak.
        let setup = apply(&mut p, Vary::Clients, Some(RoomsMode::FixedCount))
            .unwrap()
            .unwrap();
        assert_eq!((setup.count, p.rooms.size), (Some(40), None));
    }

    #[test]
    fn zipf_rooms_cannot_keep_a_constant_size() {
        let mut p = plan("count = 50\ndistribution = \"zipf\"");
        let setup = apply(&mut p, Vary::Clients, None).unwrap().unwrap();
        assert_eq!(setup.mode, RoomsMode::FixedCount);
        assert!(setup.note.contains("zipf"), "{}", setup.note);
        let e = apply(&mut p, Vary::Clients, Some(RoomsMode::ConstantSize)).unwrap_err();
        assert!(e.downcast_ref::<UsageError>().is_some());
        let e = apply(&mut p, Vary::ChatRate, Some(RoomsMode::FixedCount)).unwrap_err();
        assert!(e.to_string().contains("--vary clients only"));
        assert!(apply(&mut p, Vary::ChatRate, None).unwrap().is_none());
    }
}
