//! The shard record stream, encoded and decoded here and nowhere else.
//!
//! A worker process of `--processes N` writes it line by line on stdout;
//! `bench run --shard I/N` writes the same lines to a shard file, which
//! `bench merge` reads. One JSON object per line:
//!
//! 1. `header`: format name and version, bench version, scenario hash,
//!    seed, shard, histogram settings, the scenario text, start times and
//!    the clock-offset estimate;
//! 2. one `second` per finalized second: the raw [`Interval`] (every
//!    HdrHistogram as base64 V2+deflate, counters) and the shard's resource
//!    sample;
//! 3. `end`: the shard's whole-run totals (exact, not re-derived from the
//!    seconds), room totals for tail loss, readiness, panics, server
//!    instance ids, and why it stopped early if it did.
//!
//! A stream without `end` is a shard that did not finish.

use std::collections::BTreeMap;

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

use super::metrics::{self, Interval, MetricId};
use super::panic::PanicLog;
use super::readiness::ReadyBook;
use super::sampler::Sample;
use super::shard::{ScenarioSource, ShardSpec};
use super::worker::RoomTotals;
use crate::results::Counters;

/// `header.format` of every stream.
pub const FORMAT: &str = "bench-shard";
/// Bumped on any incompatible change; readers refuse other versions.
pub const VERSION: u32 = 1;

/// Histogram settings every interval of a stream was recorded with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistSettings {
    pub lowest_us: u64,
    pub highest_us: u64,
    pub sigfig: u8,
}

impl HistSettings {
    pub fn current() -> Self {
        Self {
            lowest_us: metrics::LOWEST_US,
            highest_us: metrics::MAX_TRACKABLE_US,
            sigfig: metrics::SIGFIG,
        }
    }
}

/// The clock offset of a shard to the target, NTP-style (see `offset`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClockEstimate {
    /// Target clock minus shard clock, µs.
    pub offset_us: i64,
    /// Round trip of the probe the estimate came from; the estimate is
    /// good to ± half of it.
    pub rtt_us: u64,
    pub probes: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    pub format: String,
    pub version: u32,
    pub bench_version: String,
    pub scenario_hash: String,
    pub seed: u64,
    pub shard: ShardSpec,
    pub histogram: HistSettings,
    pub scenario: ScenarioSource,
    /// The agreed start (`--start-at`), if any.
    pub start_at_ms: Option<u64>,
    /// When this shard's clients actually started.
    pub started_at_ms: u64,
    /// How late after `start_at_ms` it started (0 when on time or no start).
    pub late_ms: u64,
    pub clock: Option<ClockEstimate>,
}

/// One interval as it travels: histograms by metric name.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct WireInterval {
    second: u64,
    /// Non-empty histograms only, base64 of HdrHistogram V2 + deflate.
    hists: BTreeMap<String, String>,
    counters: Counters,
    connected: u64,
    parts: u32,
    unready_ok: u64,
    unready_failed: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
enum WireRecord {
    Header(Box<Header>),
    Second {
        interval: Box<WireInterval>,
        sample: Sample,
    },
    End(Box<WireEnd>),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct WireEnd {
    totals: WireInterval,
    rooms: RoomTotals,
    ready: ReadyBook,
    panics: PanicLog,
    instances: Vec<String>,
    interrupted: Option<String>,
    duration_s: f64,
    started_at: String,
}

/// A decoded record.
#[derive(Debug, Clone)]
pub enum Record {
    Header(Box<Header>),
    Second(Box<Interval>, Sample),
    End(Box<ShardEnd>),
}

/// What a shard reports once it has finished.
#[derive(Debug, Clone)]
pub struct ShardEnd {
    pub totals: Interval,
    pub rooms: RoomTotals,
    pub ready: ReadyBook,
    pub panics: PanicLog,
    pub instances: Vec<String>,
    pub interrupted: Option<String>,
    pub duration_s: f64,
    /// RFC 3339 start of this shard.
    pub started_at: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("not a shard record: {0}")]
    Json(#[from] serde_json::Error),
    #[error("histogram {0}: {1}")]
    Histogram(String, String),
    #[error("shard stream version {0}, this bench reads version {VERSION}")]
    Version(u32),
    #[error("not a shard stream (format \"{0}\")")]
    Format(String),
}

fn encode_interval(iv: &Interval) -> WireInterval {
    let mut hists = BTreeMap::new();
    let mut ser = V2DeflateSerializer::new();
    for id in MetricId::ALL {
        let h = iv.hist(id);
        if h.is_empty() {
            continue;
        }
        let mut buf = Vec::new();
        if ser.serialize(h, &mut buf).is_ok() {
            hists.insert(
                id.name().to_owned(),
                base64::engine::general_purpose::STANDARD.encode(&buf),
            );
        }
    }
    WireInterval {
        second: iv.second,
        hists,
        counters: iv.counters.clone(),
        connected: iv.connected,
        parts: iv.parts,
        unready_ok: iv.unready_ok,
        unready_failed: iv.unready_failed,
    }
}

fn decode_interval(w: WireInterval) -> Result<Interval, StreamError> {
    let mut iv = Interval::new(w.second);
    let mut de = Deserializer::new();
    for (name, b64) in &w.hists {
        let bad = |why: String| StreamError::Histogram(name.clone(), why);
        let id = MetricId::ALL
            .into_iter()
            .find(|id| id.name() == name)
            .ok_or_else(|| bad("unknown metric".into()))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| bad(e.to_string()))?;
        let h: hdrhistogram::Histogram<u64> = de
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| bad(format!("{e:?}")))?;
        // Into a histogram of our own bounds, so later merges cannot fail.
        iv.hists[id as usize]
            .add(&h)
            .map_err(|e| bad(format!("{e:?}")))?;
    }
    iv.counters = w.counters;
    iv.connected = w.connected;
    iv.parts = w.parts;
    iv.unready_ok = w.unready_ok;
    iv.unready_failed = w.unready_failed;
    Ok(iv)
}

/// One record as a line (with the trailing newline).
pub fn encode(r: &Record) -> String {
    let wire = match r {
        Record::Header(h) => WireRecord::Header(h.clone()),
        Record::Second(iv, sample) => return encode_second(iv, sample),
        Record::End(e) => WireRecord::End(Box::new(WireEnd {
            totals: encode_interval(&e.totals),
            rooms: e.rooms.clone(),
            ready: e.ready.clone(),
            panics: e.panics.clone(),
            instances: e.instances.clone(),
            interrupted: e.interrupted.clone(),
            duration_s: e.duration_s,
            started_at: e.started_at.clone(),
        })),
    };
    let mut line = serde_json::to_string(&wire).unwrap_or_default();
    line.push('\n');
    line
}

/// A `second` record as a line, without copying the interval.
pub fn encode_second(iv: &Interval, sample: &Sample) -> String {
    let wire = WireRecord::Second {
        interval: Box::new(encode_interval(iv)),
        sample: *sample,
    };
    let mut line = serde_json::to_string(&wire).unwrap_or_default();
    line.push('\n');
    line
}

/// Decodes one line; a header of another format or version is an error.
pub fn decode(line: &str) -> Result<Record, StreamError> {
    Ok(match serde_json::from_str::<WireRecord>(line)? {
        WireRecord::Header(h) => {
            if h.format != FORMAT {
                return Err(StreamError::Format(h.format));
            }
            if h.version != VERSION {
                return Err(StreamError::Version(h.version));
            }
            Record::Header(h)
        }
        WireRecord::Second { interval, sample } => {
            Record::Second(Box::new(decode_interval(*interval)?), sample)
        }
        WireRecord::End(e) => Record::End(Box::new(ShardEnd {
            totals: decode_interval(e.totals)?,
            rooms: e.rooms,
            ready: e.ready,
            panics: e.panics,
            instances: e.instances,
            interrupted: e.interrupted,
            duration_s: e.duration_s,
            started_at: e.started_at,
        })),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::metrics::Recorder;

    #[test]
    fn intervals_round_trip_exactly() {
        let mut rec = Recorder::new();
        for v in [1u64, 15, 2_000, 50_000, 599_999_999] {
            rec.record(MetricId::DeliveryLatency, v);
        }
        rec.record(MetricId::PingRtt, 321);
        rec.counters().chat_sent = 7;
        Recorder::count_in(&mut rec.counters().errors, "RATE_LIMITED");
        rec.connected = 3;
        let iv = rec.rotate(2);
        let sample = Sample {
            generator_rss: 42,
            ..Sample::default()
        };
        let line = encode(&Record::Second(Box::new(iv.clone()), sample));
        let Record::Second(back, s) = decode(&line).unwrap() else {
            panic!("not a second")
        };
        assert_eq!(s.generator_rss, 42);
        assert_eq!((back.second, back.connected), (1, 3));
        assert_eq!(back.counters.chat_sent, 7);
        assert_eq!(back.counters.errors["RATE_LIMITED"], 1);
        for id in MetricId::ALL {
            assert_eq!(back.hist(id), iv.hist(id), "{}", id.name());
        }
    }

    #[test]
    fn refuses_other_versions_and_formats() {
        let h = Header {
            format: FORMAT.into(),
            version: VERSION + 1,
            bench_version: "x".into(),
            scenario_hash: "h".into(),
            seed: 1,
            shard: ShardSpec::WHOLE,
            histogram: HistSettings::current(),
            scenario: ScenarioSource::default(),
            start_at_ms: None,
            started_at_ms: 0,
            late_ms: 0,
            clock: None,
        };
        let line = encode(&Record::Header(Box::new(h.clone())));
        assert!(matches!(decode(&line), Err(StreamError::Version(_))));
        let other = Header {
            format: "other".into(),
            version: VERSION,
            ..h
        };
        let line = encode(&Record::Header(Box::new(other)));
        assert!(matches!(decode(&line), Err(StreamError::Format(_))));
        assert!(decode("{\"record\":\"nope\"}").is_err());
    }
}
