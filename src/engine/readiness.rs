//! Client readiness accounting: each planned client ends either ready at
//! least once (welcomed, every room joined, resumes answered) or counted
//! under the reason it never was. Kept per stage (the stage a client's
//! first window starts in), per worker, and merged by the aggregator; the
//! `[run] max_not_ready` rule is judged on the merged book.

use std::collections::BTreeMap;

use crate::results::{Readiness, StageReadiness};

/// Why a client that never became ready did not: a connect failure's
/// category, or what ended its last session before it was ready.
pub mod reason {
    /// The upgrade failed: HTTP status, wrong accept key, bad headers, reset.
    pub const HANDSHAKE: &str = "handshake";
    /// The server broke RFC 6455 (bad frame, reserved bits, bad close code, ...).
    pub const PROTOCOL: &str = "protocol";
    pub const TIMEOUT: &str = "timeout";
    pub const REFUSED: &str = "refused";
    /// The TLS handshake failed (certificate, alert, plaintext server, ...).
    pub const TLS: &str = "tls";
    /// Connected, but not ready within `connect_timeout` (no `welcome`, no
    /// `joined`), or dropped before it was.
    pub const NOT_READY: &str = "not_ready";
    /// The server refused the session (e.g. a rejected first-message token).
    pub const REJECTED: &str = "rejected";
    /// A panic in the client's task.
    pub const PANIC: &str = "panic";
    /// The run stopped before the client's window started.
    pub const NOT_STARTED: &str = "not_started";
}

/// The readiness category of a connect failure reason (`refused`,
/// `timeout`, `http_403`, `handshake`, `reset`, ...).
pub fn connect_category(failure: &str) -> &'static str {
    match failure {
        "refused" => reason::REFUSED,
        "timeout" => reason::TIMEOUT,
        f if f.starts_with("tls_") => reason::TLS,
        _ => reason::HANDSHAKE,
    }
}

/// How one client's run went, as far as readiness is concerned.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientOutcome {
    /// A window began: the client tried to connect at least once.
    pub started: bool,
    pub connected: bool,
    pub ready: bool,
    pub last_failure: Option<&'static str>,
}

/// One worker's (or, merged, the run's) readiness per stage.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ReadyBook {
    pub stages: Vec<StageReadiness>,
}

impl ReadyBook {
    pub fn new(stages: usize) -> Self {
        Self {
            stages: (0..stages)
                .map(|index| StageReadiness {
                    index,
                    ..StageReadiness::default()
                })
                .collect(),
        }
    }

    fn stage(&mut self, stage: usize) -> &mut StageReadiness {
        if stage >= self.stages.len() {
            let from = self.stages.len();
            self.stages
                .extend((from..=stage).map(|index| StageReadiness {
                    index,
                    ..StageReadiness::default()
                }));
        }
        &mut self.stages[stage]
    }

    /// A client of `stage` finished (its windows are over, or the run stopped).
    pub fn record(&mut self, stage: usize, o: ClientOutcome) {
        let s = self.stage(stage);
        s.planned += 1;
        s.connected += u64::from(o.connected || o.ready);
        if o.ready {
            s.ready += 1;
        } else {
            let why = o.last_failure.unwrap_or(if o.connected || o.started {
                reason::NOT_READY
            } else {
                reason::NOT_STARTED
            });
            *s.failed.entry(why.to_owned()).or_default() += 1;
        }
    }

    pub fn merge(&mut self, other: &ReadyBook) {
        for o in &other.stages {
            let s = self.stage(o.index);
            s.planned += o.planned;
            s.connected += o.connected;
            s.ready += o.ready;
            for (k, v) in &o.failed {
                *s.failed.entry(k.clone()).or_default() += v;
            }
        }
    }

    /// The run-wide view for results.json.
    pub fn summary(&self) -> Readiness {
        let mut failed: BTreeMap<String, u64> = BTreeMap::new();
        for s in &self.stages {
            for (k, v) in &s.failed {
                *failed.entry(k.clone()).or_default() += v;
            }
        }
        let planned: u64 = self.stages.iter().map(|s| s.planned).sum();
        let ready: u64 = self.stages.iter().map(|s| s.ready).sum();
        Readiness {
            planned,
            connected: self.stages.iter().map(|s| s.connected).sum(),
            ready,
            failed,
            never_ready_share: if planned == 0 {
                0.0
            } else {
                (planned - ready) as f64 / planned as f64
            },
            stages: self.stages.clone(),
        }
    }
}

/// The `[run] max_not_ready` rule: a reason when it is broken.
pub fn not_ready_rule(r: &Readiness, max: Option<f64>) -> Option<String> {
    let max = max?;
    if r.planned == 0 || r.never_ready_share <= max {
        return None;
    }
    let why: Vec<String> = r.failed.iter().map(|(k, v)| format!("{k} {v}")).collect();
    Some(format!(
        "{} of {} planned clients ({:.1}%) were never ready, more than max_not_ready {}% ({})",
        r.planned - r.ready,
        r.planned,
        r.never_ready_share * 100.0,
        max * 100.0,
        why.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_merge_into_stages_and_the_rule_names_reasons() {
        let mut a = ReadyBook::new(2);
        let mut b = ReadyBook::new(2);
        for _ in 0..97 {
            a.record(
                0,
                ClientOutcome {
                    connected: true,
                    ready: true,
                    ..ClientOutcome::default()
                },
            );
        }
        b.record(
            1,
            ClientOutcome {
                started: true,
                last_failure: Some(connect_category("refused")),
                ..ClientOutcome::default()
            },
        );
        b.record(
            1,
            ClientOutcome {
                connected: true,
                ..ClientOutcome::default()
            },
        );
        b.record(1, ClientOutcome::default());
        a.merge(&b);
        let r = a.summary();
        assert_eq!((r.planned, r.connected, r.ready), (100, 98, 97));
        assert_eq!(r.stages[1].failed["refused"], 1);
        assert_eq!(r.failed["not_ready"], 1);
        assert_eq!(r.failed["not_started"], 1);
        let why = not_ready_rule(&r, Some(0.01)).expect("3% > 1%");
        assert!(
            why.contains("3 of 100") && why.contains("refused 1"),
            "{why}"
        );
        assert_eq!(not_ready_rule(&r, Some(0.05)), None);
        assert_eq!(not_ready_rule(&r, None), None);
    }
}
