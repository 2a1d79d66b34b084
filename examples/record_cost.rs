//! Cost of the per-delivery bookkeeping (seq tracking + two HdrHistogram
//! records + counters), in ns per delivery. `scripts/bench-recording` divides
//! it into the generator CPU per delivery measured in the ceiling run, to
//! show recording stays a small share of the generator's CPU.
//!
//! Run: cargo run --release --example record_cost

use std::time::Instant;

use bench::engine::metrics::{MetricId, Recorder};
use bench::engine::tracker::{RoomTrack, SeqOutcome};

fn main() {
    const N: u64 = 20_000_000;
    let mut rec = Recorder::new();
    let mut tracks: Vec<RoomTrack> = (0..4).map(RoomTrack::new).collect();
    for t in &mut tracks {
        t.on_joined(0, false);
    }
    // Latency-like values spread over 0.2 ms .. 60 ms.
    let mut x: u64 = 0x9E37_79B9;
    let start = Instant::now();
    for i in 0..N {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let t = &mut tracks[(i & 3) as usize];
        let seq = i / 4 + 1;
        let outcome = t.on_seq(seq);
        let c = rec.counters();
        if outcome != SeqOutcome::Duplicate {
            c.deliveries_received += 1;
        }
        c.frames_received += 1;
        let lat = 200 + x % 60_000;
        rec.record(MetricId::DeliveryLatency, lat);
        rec.record(MetricId::DeliveryLatencyService, lat / 2);
    }
    let ns = start.elapsed().as_nanos() as f64 / N as f64;
    let iv = rec.rotate(2);
    assert_eq!(iv.hist(MetricId::DeliveryLatency).len(), N);
    println!("bookkeeping per delivery: {ns:.1} ns");
}
