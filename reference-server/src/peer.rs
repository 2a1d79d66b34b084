//! The part of a connection other tasks can reach: its bounded outbound
//! queue and the wake-up for its task.
//!
//! Producers (room fan-out, the connection itself, shutdown) push encoded
//! frames; the connection task drains the queue and writes. The queue is
//! bounded in bytes and frames: over the bound, queued typing frames are
//! shed first, and if that is not enough the connection is marked for a 1013
//! close and its backlog freed, so one slow reader can neither grow memory
//! without bound nor delay anyone else (producers never wait on it).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Instant;

use bytes::Bytes;
use std::task::{Context, Poll, Waker};

use crate::metrics::{self, Metrics};

/// One queued server frame: complete WebSocket frame bytes, usually shared
/// with every other recipient of the same message.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub frame: Bytes,
    /// Typing indicators are shed first under backpressure.
    pub typing: bool,
    /// Not to be written before this instant (chaos delay only).
    pub not_before: Option<Instant>,
}

impl Outgoing {
    pub fn now(frame: Bytes) -> Self {
        Self {
            frame,
            typing: false,
            not_before: None,
        }
    }
}

/// Why the server is closing a connection on its own initiative.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseRequest {
    pub code: u16,
    pub reason: &'static str,
    /// Write what is already queued before the close frame (shutdown), or
    /// discard it (slow consumer).
    pub flush_first: bool,
}

/// Bounds for one connection's outbound queue.
#[derive(Debug, Clone, Copy)]
pub struct QueueLimits {
    pub max_bytes: usize,
    pub max_frames: usize,
    /// With batching on, wake the task early once this many frames wait.
    pub batch_max: usize,
}

#[derive(Debug, Default)]
pub struct Outbox {
    pub queue: VecDeque<Outgoing>,
    pub bytes: usize,
    pub close: Option<CloseRequest>,
    /// The connection task's waker, while it waits (a one-slot `AtomicWaker`
    /// under the queue's lock: smaller than a `Notify` and its future).
    waker: Option<Waker>,
    /// A wake-up arrived while the task was not waiting.
    woken: bool,
}

#[derive(Debug)]
pub struct Peer {
    pub id: u64,
    /// Negotiated permessage-deflate without context takeover and with the
    /// full window: fan-out queues the hub's shared compressed frames.
    pub shared_deflate: bool,
    outbox: Mutex<Outbox>,
}

impl Peer {
    pub fn new(id: u64) -> Self {
        Self {
            id,
            shared_deflate: false,
            outbox: Mutex::new(Outbox::default()),
        }
    }

    pub fn with_shared_deflate(mut self, on: bool) -> Self {
        self.shared_deflate = on;
        self
    }

    /// Ready once woken since the last ready; otherwise remembers `cx`'s waker.
    pub fn poll_woken(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut ob = self.lock();
        if std::mem::take(&mut ob.woken) {
            return Poll::Ready(());
        }
        match &ob.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => ob.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    fn wake_locked(ob: &mut Outbox) -> Option<Waker> {
        ob.woken = true;
        ob.waker.take()
    }

    /// Locks the outbox; a poisoned lock (a panic elsewhere) is still usable
    /// because every mutation leaves the queue consistent.
    pub fn lock(&self) -> std::sync::MutexGuard<'_, Outbox> {
        self.outbox.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues one frame, enforcing the bounds. `force` doubles the bound for
    /// frames that should not be refused (replies to the connection's own
    /// requests, history replay: self-inflicted, and replays are shared).
    pub fn push(&self, item: Outgoing, limits: &QueueLimits, force: bool, m: &Metrics) {
        let mut ob = self.lock();
        if ob.close.is_some() {
            return;
        }
        let over_half = ob.bytes * 2 > limits.max_bytes || ob.queue.len() * 2 > limits.max_frames;
        if item.typing && over_half {
            metrics::inc(&m.typing_shed_total);
            return;
        }
        ob.bytes += item.frame.len();
        ob.queue.push_back(item);
        let len = ob.queue.len();
        let mut wake = len == 1 || len % limits.batch_max == 0;
        // Forced frames (replies, replays) get twice the room, but not
        // unbounded room: a client that never reads its acks is slow too.
        let slack = if force { 2 } else { 1 };
        let (max_bytes, max_frames) = (limits.max_bytes * slack, limits.max_frames * slack);
        if ob.bytes > max_bytes || len > max_frames {
            let before = ob.queue.len();
            ob.queue.retain(|o| !o.typing);
            let shed = before - ob.queue.len();
            metrics::add(&m.typing_shed_total, shed as u64);
            ob.bytes = ob.queue.iter().map(|o| o.frame.len()).sum();
            if ob.bytes > max_bytes || ob.queue.len() > max_frames {
                ob.queue = VecDeque::new();
                ob.bytes = 0;
                ob.close = Some(CloseRequest {
                    code: wire::ws::close_code::TRY_AGAIN_LATER,
                    reason: "slow consumer",
                    flush_first: false,
                });
                metrics::inc(&m.slow_consumer_closes_total);
                wake = true;
            }
        }
        let waker = if wake {
            Self::wake_locked(&mut ob)
        } else {
            None
        };
        drop(ob);
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Asks the connection task to close (shutdown); the first request wins.
    pub fn request_close(&self, req: CloseRequest) {
        let mut ob = self.lock();
        if ob.close.is_none() {
            ob.close = Some(req);
        }
        let waker = Self::wake_locked(&mut ob);
        drop(ob);
        if let Some(w) = waker {
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: usize) -> Bytes {
        Bytes::from(vec![b'x'; n])
    }

    #[test]
    fn sheds_typing_then_closes_slow_consumer() {
        let m = Metrics::default();
        let limits = QueueLimits {
            max_bytes: 1000,
            max_frames: 10,
            batch_max: 64,
        };
        let p = Peer::new(1);
        for _ in 0..4 {
            p.push(
                Outgoing {
                    frame: frame(10),
                    typing: true,
                    not_before: None,
                },
                &limits,
                false,
                &m,
            );
        }
        for _ in 0..7 {
            p.push(Outgoing::now(frame(10)), &limits, false, &m);
        }
        // 11 frames > 10: the typing frames were shed, the chat kept.
        {
            let ob = p.lock();
            assert_eq!(ob.queue.len(), 7);
            assert!(ob.close.is_none());
        }
        assert!(
            m.typing_shed_total
                .load(std::sync::atomic::Ordering::Relaxed)
                >= 4
        );
        for _ in 0..4 {
            p.push(Outgoing::now(frame(10)), &limits, false, &m);
        }
        let ob = p.lock();
        assert_eq!(ob.close.map(|c| c.code), Some(1013));
        assert!(ob.queue.is_empty());
    }
}
