//! A panic in a client task is a counted failure, never a silent task
//! death: the real chat dialect, wrapped so that its first few sessions
//! panic while decoding their `joined`, runs against the bundled server.
//! The panics are caught and counted (`counters.errors.panic`), their
//! message is kept, the clients reconnect as after any failure and become
//! ready, and the run is invalid.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bench::dialect::{Action, DecodeError, Dialect, Event, Incoming, Outbox, Session};
use bench::engine::EngineOptions;

mod common;

/// Sessions that panic before the dialect behaves.
const PANICKING_SESSIONS: usize = 3;

struct Panicky {
    inner: Arc<dyn Dialect>,
    left: Arc<AtomicUsize>,
}

impl Dialect for Panicky {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn upgrade_target(&self, url_path: &str) -> String {
        self.inner.upgrade_target(url_path)
    }
    fn session(&self) -> Box<dyn Session> {
        Box::new(PanickySession {
            inner: self.inner.session(),
            left: self.left.clone(),
        })
    }
}

struct PanickySession {
    inner: Box<dyn Session>,
    left: Arc<AtomicUsize>,
}

impl Session for PanickySession {
    fn on_open(&mut self, out: &mut Outbox) {
        self.inner.on_open(out)
    }
    fn encode(&mut self, action: &Action<'_>, out: &mut Outbox) {
        self.inner.encode(action, out)
    }
    fn decode(
        &mut self,
        msg: Incoming<'_>,
        out: &mut Outbox,
        sink: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), DecodeError> {
        let mut joined = false;
        let r = self.inner.decode(msg, out, &mut |ev| {
            joined |= matches!(ev, Event::Joined { .. });
            sink(ev)
        });
        let take = |n: usize| n.checked_sub(1);
        if joined
            && self
                .left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, take)
                .is_ok()
        {
            panic!("injected decoder panic");
        }
        r
    }
}

#[test]
fn panics_are_counted_and_invalidate_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let plan = common::plan(
        r#"
name = "panic"
[target]
protocol = "chat"
[[stages]]
duration = "100ms"
target = 6
[[stages]]
duration = "2s"
target = 6
[rooms]
count = 1
[[clients]]
name = "c"
chat_rate = "2/s"
reconnect_backoff = { initial = "100ms", max = "200ms", jitter = 0.1 }
[run]
workers = 2
drain = "500ms"
"#,
        dir.path(),
    );
    std::env::set_var(bench::engine::target::BENCH_EXE_ENV, common::BENCH);
    let dialect = Arc::new(Panicky {
        inner: bench::dialect::for_target(&plan.target).unwrap(),
        left: Arc::new(AtomicUsize::new(PANICKING_SESSIONS)),
    });
    let r = bench::engine::execute_with_dialect(&plan, &EngineOptions { quiet: true }, dialect)
        .expect("the run completes");
    let panics = PANICKING_SESSIONS as u64;
    assert_eq!(
        r.counters.errors.get("panic").copied(),
        Some(panics),
        "{:?}",
        r.counters
    );
    assert_eq!(r.validity.panics, panics);
    assert_eq!(r.validity.panic_messages, ["injected decoder panic"]);
    assert!(!r.validity.valid && r.is_invalid());
    assert!(
        r.validity
            .reasons
            .iter()
            .any(|w| w.contains("3 panic(s)") && w.contains("injected")),
        "{:?}",
        r.validity.reasons
    );
    // The normal failure path: the panicked sessions' clients reconnected.
    assert!(!r.interrupted, "{:?}", r.interrupt_reason);
    assert_eq!(r.readiness.planned, 6);
    assert_eq!(r.readiness.ready, 6, "{:?}", r.readiness);
    assert!(r.counters.reconnects >= panics, "{:?}", r.counters);
}
