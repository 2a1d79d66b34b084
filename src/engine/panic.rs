//! Panics in client tasks are measurements, not silent task deaths: each is
//! caught where it happens ([`catch`]), counted (`counters.errors.panic`),
//! its message kept for results.json, and the client goes on through its
//! normal failure path. Any panic makes the run invalid.
//!
//! The default panic hook would print one backtrace line per panicking
//! client (thousands when a server sends the same bad frame to all of
//! them), so worker threads print only the first few ([`quiet_hook`]).

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

use futures_util::FutureExt;

/// Distinct panic messages a worker keeps for results.json.
pub const MAX_MESSAGES: usize = 5;
/// Panics per process whose message the hook prints.
const PRINTED: u64 = 3;

/// Panics of the first few clients, per worker (merged by the aggregator).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct PanicLog {
    pub count: u64,
    pub messages: Vec<String>,
}

impl PanicLog {
    pub fn add(&mut self, message: String) {
        self.count += 1;
        if self.messages.len() < MAX_MESSAGES && !self.messages.contains(&message) {
            self.messages.push(message);
        }
    }

    pub fn merge(&mut self, other: &PanicLog) {
        self.count += other.count;
        for m in &other.messages {
            if self.messages.len() < MAX_MESSAGES && !self.messages.contains(m) {
                self.messages.push(m.clone());
            }
        }
    }
}

/// Polls `fut`, turning a panic in it into `Err(message)`.
///
/// Not boxed: the wrapped future stays inline in its parent's state, so a
/// connected session costs no extra allocation (a boxed session future
/// added about 1.2 KiB per connected client). The future is dropped after a
/// panic, never polled again, so a broken invariant inside it cannot be
/// observed: hence `AssertUnwindSafe`.
pub fn catch<F: Future>(fut: F) -> impl Future<Output = Result<F::Output, String>> {
    AssertUnwindSafe(fut)
        .catch_unwind()
        .map(|r| r.map_err(|payload| message(payload.as_ref())))
}

/// The text of a panic payload (`panic!("...")` gives `&str` or `String`).
pub fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

static HOOK: Once = Once::new();
static WORKER_PANICS: AtomicU64 = AtomicU64::new(0);

/// Installs (once per process) a hook that lets only the first few panics
/// on `bench-worker-*` threads through to the previous hook; every other
/// thread keeps the previous behaviour.
pub fn quiet_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let worker = std::thread::current()
                .name()
                .is_some_and(|n| n.starts_with("bench-worker-"));
            if worker {
                let n = WORKER_PANICS.fetch_add(1, Ordering::Relaxed);
                if n == PRINTED {
                    eprintln!("bench: further client panics are counted, not printed");
                }
                if n >= PRINTED {
                    return;
                }
            }
            previous(info);
        }));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_its_message_and_the_log_is_bounded() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let ok = rt.block_on(catch(async { 7 }));
        assert_eq!(ok, Ok(7));
        let caught = rt.block_on(catch(async {
            tokio::task::yield_now().await;
            let n: u64 = u64::MAX;
            if n > 1 {
                panic!("decoder overflow at {n}");
            }
        }));
        assert_eq!(caught, Err(format!("decoder overflow at {}", u64::MAX)));

        let mut log = PanicLog::default();
        for i in 0..20 {
            log.add(format!("m{}", i % 7));
        }
        let mut total = PanicLog::default();
        total.merge(&log);
        total.merge(&log);
        assert_eq!(total.count, 40);
        assert_eq!(total.messages.len(), MAX_MESSAGES);
    }
}
