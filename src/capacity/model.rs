//! `capacity.json`: what a capacity search measured and concluded. Written
//! after every step, so an interrupted search still leaves its data.

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::projection::Projection;
use super::rooms::RoomsSetup;
use super::search::{SearchConfig, SearchEnd, StepVerdict};
use super::usl::UslFit;
use crate::results::{Environment, LinearFit, ThresholdResult};

pub const CAPACITY_SCHEMA_VERSION: u32 = 1;

/// What the search varies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Vary {
    /// Number of connected clients (the scenario's chat rate per client).
    Clients,
    /// Chat messages per second per client, in hundredths of the scenario's
    /// rate (load 100 = as written), with the scenario's peak client count.
    #[value(name = "chat_rate", alias = "chat-rate")]
    ChatRate,
}

/// One load step: what ran and what it measured in its measurement window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepRecord {
    pub index: usize,
    pub load: u32,
    pub clients: u32,
    /// Rooms in the step (derived from the clients with a constant room size).
    #[serde(default)]
    pub rooms: u32,
    /// Chat messages per second per client during the step.
    pub chat_rate: f64,
    pub verdict: StepVerdict,
    pub slos: Vec<ThresholdResult>,
    pub delivery_p99_ms: Option<f64>,
    pub ack_p99_ms: Option<f64>,
    pub deliveries_per_s: f64,
    pub chat_sent_per_s: f64,
    /// Server work per second: chat messages in + deliveries out (see
    /// [`work_per_s`]); what the USL is fitted to.
    #[serde(default)]
    pub work_per_s: f64,
    /// Server CPU time per unit of work, in µs (None: server not sampled
    /// or no work).
    #[serde(default)]
    pub server_cpu_us_per_work: Option<f64>,
    pub clients_connected_peak: u64,
    pub connections_failed: u64,
    pub server_cpu_percent_mean: Option<f64>,
    pub server_rss_peak_bytes: Option<u64>,
    pub machine_cpu_percent_mean: f64,
    pub generator_cpu_percent_mean: f64,
    pub generator_saturated: bool,
    pub duration_s: f64,
    /// This step's own results.json, relative to the capacity output dir.
    pub results_file: Option<String>,
}

/// Server work per second: every chat message the server takes in and
/// every delivery it writes out count one unit each. Acks (one per message
/// in) and typing frames are not counted separately: they scale with the
/// messages in, so their cost lands in the per-unit CPU, not in the shape.
pub fn work_per_s(chat_sent_per_s: f64, deliveries_per_s: f64) -> f64 {
    chat_sent_per_s + deliveries_per_s
}

/// µs of server CPU per unit of work, from the mean CPU (% of one core).
pub fn cpu_us_per_work(server_cpu_percent: Option<f64>, work_per_s: f64) -> Option<f64> {
    let cpu = server_cpu_percent?;
    (work_per_s > 0.0 && cpu.is_finite()).then(|| cpu / 100.0 * 1e6 / work_per_s)
}

/// What limited the highest passing load.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Limit {
    /// The SLO (or failure) that broke first above the capacity.
    pub limiting_metric: Option<String>,
    /// `server_cpu`, `server_memory`, `connections`, `machine_cpu`,
    /// `generator` or `unknown`.
    pub saturated_first: String,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CapacityResults {
    pub schema_version: u32,
    pub name: String,
    pub started_at: String,
    pub vary: Vary,
    pub slos: Vec<String>,
    pub search: SearchConfig,
    /// How rooms follow the clients (`--vary clients` only).
    #[serde(default)]
    pub rooms: Option<RoomsSetup>,
    pub steps: Vec<StepRecord>,
    /// The highest passing load (None: nothing passed yet).
    pub capacity: Option<u32>,
    pub end: Option<SearchEnd>,
    pub limit: Option<Limit>,
    /// USL fit of server work/s (messages in + deliveries out) against load,
    /// over the steps the generator did not limit.
    pub usl: Option<UslFit>,
    /// Server RSS against connected clients, over every step.
    pub memory_fit: Option<LinearFit>,
    pub projection: Option<Projection>,
    /// `--nodes`: the measured scale-out at one fixed load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_out: Option<super::nodes::ScaleOutMeasurement>,
    pub interrupted: bool,
    pub environment: Environment,
}

impl CapacityResults {
    /// A search that has run no step yet: every derived field empty.
    pub fn new(
        name: String,
        started_at: String,
        vary: Vary,
        slos: Vec<String>,
        search: SearchConfig,
        environment: Environment,
    ) -> Self {
        Self {
            schema_version: CAPACITY_SCHEMA_VERSION,
            name,
            started_at,
            vary,
            slos,
            search,
            rooms: None,
            steps: Vec::new(),
            capacity: None,
            end: None,
            limit: None,
            usl: None,
            memory_fit: None,
            projection: None,
            scale_out: None,
            interrupted: false,
            environment,
        }
    }

    /// `(connected clients at the step's peak, server peak RSS in bytes)`
    /// of every step that sampled the server: what `memory_fit` is fitted
    /// to and what the memory chart plots.
    pub fn memory_points(&self) -> Vec<(f64, f64)> {
        self.steps
            .iter()
            .filter_map(|s| {
                Some((
                    s.clients_connected_peak as f64,
                    s.server_rss_peak_bytes? as f64,
                ))
            })
            .collect()
    }

    /// `(load, work/s)` of every step the USL is fitted to: all but the
    /// generator-limited ones, whose throughput is the generator's.
    pub fn usl_points(&self) -> Vec<(f64, f64)> {
        self.steps
            .iter()
            .filter(|s| !s.generator_saturated)
            .map(|s| (f64::from(s.load), s.work_per_s))
            .collect()
    }

    /// Writes `capacity.json` atomically (temp file + rename), so a reader
    /// never sees half a file even if the search is killed mid-write.
    pub fn write(&self, dir: &Path) -> anyhow::Result<std::path::PathBuf> {
        let path = dir.join("capacity.json");
        let json = serde_json::to_vec_pretty(self).context("serializing capacity results")?;
        crate::export::write_atomic(&path, &json)?;
        Ok(path)
    }
}
