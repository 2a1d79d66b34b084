//! Who is connected when, in which population, in which rooms: all derived
//! from the plan and the seed, before any socket opens.
//!
//! Stages are linear ramps starting from 0 clients. Client `i` is connected
//! while the ramp is at or above `i + 1`, so ramp-up adds the lowest indexes
//! first and ramp-down closes the highest first.

use rand_distr::{Distribution, Zipf};

use super::rng::{SplitMix64, Stream};
use crate::scenario::{Plan, RoomDistribution, Stage};

/// One connected interval of a client, µs since run start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start_us: u64,
    pub end_us: u64,
}

/// Clients wanted at `t_us` (fractional during ramps).
pub fn target_at(stages: &[Stage], t_us: u64) -> f64 {
    let mut from = 0.0f64;
    let mut t0 = 0u64;
    for s in stages {
        let d = s.duration.as_micros() as u64;
        let to = f64::from(s.target);
        if t_us < t0 + d {
            let f = (t_us - t0) as f64 / d as f64;
            return from + (to - from) * f;
        }
        from = to;
        t0 += d;
    }
    from
}

/// Index of the stage running at `t_us` (the last one after the end).
pub fn stage_at(stages: &[Stage], t_us: u64) -> usize {
    let mut t0 = 0u64;
    for (i, s) in stages.iter().enumerate() {
        t0 += s.duration.as_micros() as u64;
        if t_us < t0 {
            return i;
        }
    }
    stages.len().saturating_sub(1)
}

/// The intervals during which client `i` should be connected. The last
/// window of a client still wanted at the end ends at the run's end.
pub fn windows(stages: &[Stage], i: u32) -> Vec<Window> {
    let level = f64::from(i) + 1.0;
    let mut out = Vec::new();
    let mut open: Option<u64> = None;
    let mut from = 0.0f64;
    let mut t0 = 0u64;
    for s in stages {
        let d = s.duration.as_micros() as u64;
        let to = f64::from(s.target);
        let cross = |a: f64, b: f64| t0 + ((level - a) / (b - a) * d as f64).max(0.0) as u64;
        if open.is_none() && to >= level && from < level {
            open = Some(cross(from, to));
        } else if open.is_some() && to < level && from >= level {
            let end = if from == level { t0 } else { cross(from, to) };
            if let Some(start) = open.take() {
                out.push(Window {
                    start_us: start,
                    end_us: end.max(start),
                });
            }
        }
        from = to;
        t0 += d;
    }
    if let Some(start) = open {
        out.push(Window {
            start_us: start,
            end_us: t0,
        });
    }
    out
}

/// Population index of each client index, keeping every prefix of clients
/// as close to the shares as possible (so ramps keep the mix).
pub fn populations(shares: &[f64], clients: u32) -> Vec<u8> {
    let mut counts = vec![0u64; shares.len()];
    (0..clients)
        .map(|i| {
            let n = f64::from(i) + 1.0;
            let best = (0..shares.len())
                .max_by(|&a, &b| {
                    let da = shares[a] * n - counts[a] as f64;
                    let db = shares[b] * n - counts[b] as f64;
                    da.total_cmp(&db).then(b.cmp(&a))
                })
                .unwrap_or(0);
            if let Some(c) = counts.get_mut(best) {
                *c += 1;
            }
            best as u8
        })
        .collect()
}

/// The distinct rooms (indexes) client `i` joins.
pub fn rooms_of(plan: &Plan, i: u32) -> Vec<u32> {
    let rp = &plan.rooms;
    if let Some(size) = rp.size {
        return sized_rooms_of(size, rp.per_client, plan.peak_clients(), i);
    }
    let want = rp.per_client.min(rp.count) as usize;
    let mut rng = SplitMix64::for_client(plan.seed, u64::from(i), Stream::Rooms);
    let zipf = match rp.distribution {
        RoomDistribution::Zipf { exponent } => Zipf::new(u64::from(rp.count), exponent).ok(),
        RoomDistribution::Uniform => None,
    };
    let mut rooms = Vec::with_capacity(want);
    let mut attempts = 0;
    while rooms.len() < want {
        let r = match &zipf {
            Some(z) => (z.sample(&mut rng) as u32).clamp(1, rp.count) - 1,
            None => rng.below(u64::from(rp.count)) as u32,
        };
        attempts += 1;
        if !rooms.contains(&r) {
            rooms.push(r);
        } else if attempts > 64 * want {
            // A steep zipf keeps drawing the same few rooms: fill with the next free ones.
            let free = (0..rp.count).find(|x| !rooms.contains(x));
            rooms.extend(free);
        }
    }
    rooms
}

/// Constant room size: one layer of ⌈clients / size⌉ rooms per room a
/// client joins; in layer `j` client `i` sits at position `i` rotated by
/// `j·size/per_client`, and each run of `size` positions is one room. Every
/// room has `size` members except the last of each layer (the remainder),
/// and a ramp fills rooms in index order, so fan-out per message stays
/// `size − 1` as the load grows. The rotation gives each layer different
/// co-members.
fn sized_rooms_of(size: u32, per_client: u32, clients: u32, i: u32) -> Vec<u32> {
    let size = u64::from(size.max(1));
    let n = u64::from(clients.max(1));
    let layers = u64::from(per_client.max(1));
    let layer_rooms = n.div_ceil(size);
    (0..layers)
        .map(|j| {
            let shift = j * size / layers;
            let pos = (u64::from(i) + shift) % n;
            (j * layer_rooms + pos / size) as u32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn st(secs: u64, target: u32) -> Stage {
        Stage {
            duration: Duration::from_secs(secs),
            target,
        }
    }

    #[test]
    fn ramps_open_and_close_clients_in_order() {
        let stages = [st(10, 10), st(10, 10), st(10, 0)];
        assert_eq!(target_at(&stages, 5_000_000), 5.0);
        assert_eq!(target_at(&stages, 40_000_000), 0.0);
        assert_eq!(stage_at(&stages, 15_000_000), 1);
        let w0 = windows(&stages, 0);
        assert_eq!(
            w0,
            vec![Window {
                start_us: 1_000_000,
                end_us: 29_000_000
            }]
        );
        let w9 = windows(&stages, 9);
        assert_eq!(w9[0].start_us, 10_000_000);
        assert_eq!(w9[0].end_us, 20_000_000);
        // Spike: up, down, up again gives two windows.
        let spike = [st(1, 2), st(1, 0), st(1, 2)];
        assert_eq!(windows(&spike, 1).len(), 2);
        assert!(windows(&[st(5, 3)], 3).is_empty());
        // Jump (zero-length stage) then hold: open from the jump to the end.
        let w = windows(&[st(0, 4), st(2, 4)], 3);
        assert_eq!(
            w,
            vec![Window {
                start_us: 0,
                end_us: 2_000_000
            }]
        );
    }

    #[test]
    fn populations_follow_shares_for_every_prefix() {
        let p = populations(&[0.75, 0.25], 8);
        assert_eq!(p.iter().filter(|&&x| x == 1).count(), 2);
        assert_eq!(&p[..4].iter().filter(|&&x| x == 1).count(), &1);
    }

    #[test]
    fn constant_room_size_fills_rooms_of_size_members() {
        let text = "[[stages]]\nduration = \"1s\"\ntarget = 103\n[rooms]\nsize = 10\nper_client = 2\n[[clients]]\n";
        let overrides = crate::scenario::PlanOverrides::default();
        let plan = crate::scenario::parse(text, "s.toml", None, &overrides).unwrap();
        // Two layers of ⌈103 / 10⌉ = 11 rooms.
        assert_eq!(plan.rooms.count, 22);
        let mut members = vec![0u32; plan.rooms.count as usize];
        for i in 0..103 {
            let rooms = rooms_of(&plan, i);
            assert_eq!(rooms.len(), 2);
            assert_ne!(rooms[0], rooms[1]);
            for r in rooms {
                members[r as usize] += 1;
            }
        }
        // Every room has 10 members but one per layer, which holds the remainder.
        let mut sizes = members.clone();
        sizes.sort_unstable();
        assert_eq!(&sizes[..2], &[3, 3]);
        assert!(sizes[2..].iter().all(|&m| m == 10), "{members:?}");
        // A ramp fills layer-0 rooms in order: the first 25 clients are in rooms 0..=2.
        let first: Vec<u32> = (0..25).map(|i| rooms_of(&plan, i)[0]).collect();
        assert_eq!(first.iter().max(), Some(&2));
        // Layers give different co-members: client 0 and 9 share room 0, not their layer-1 room.
        assert_eq!(rooms_of(&plan, 0)[0], rooms_of(&plan, 9)[0]);
        assert_ne!(rooms_of(&plan, 0)[1], rooms_of(&plan, 9)[1]);
    }

    #[test]
    fn set_stages_rederives_the_room_count() {
        let text = "[[stages]]\nduration = \"1s\"\ntarget = 40\n[rooms]\nsize = 20\n[[clients]]\n";
        let overrides = crate::scenario::PlanOverrides::default();
        let mut plan = crate::scenario::parse(text, "s.toml", None, &overrides).unwrap();
        assert_eq!(plan.rooms.count, 2);
        plan.set_stages(vec![st(1, 1001)]);
        assert_eq!(plan.rooms.count, 51);
        assert_eq!(rooms_of(&plan, 1000), vec![50]);
    }
}
