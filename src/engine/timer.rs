//! Sub-millisecond session timers for one worker.
//!
//! tokio's timer wheel has 1 ms granularity and rounds every deadline up to
//! the next tick, so a send due at `t` fired on average ~1 ms late, and that
//! lateness was charged to the target as latency (schedule lag). Here each
//! worker owns one Linux `timerfd` armed with an *absolute* CLOCK_MONOTONIC
//! deadline (no timer slack applies to it) and registered with the worker's
//! reactor through [`AsyncFd`]; every session of the worker keeps one
//! [`Sleep`] whose deadline sits in an ordered queue ([`TimerQueue`]). When
//! the timerfd fires, one driver task wakes every session that is due and
//! re-arms the fd for the next deadline. No thread spins: the CPU budget of
//! this mode is one `timerfd_settime` when the earliest deadline moves
//! earlier or is reached, plus one `read` per expiry.
//!
//! A session keeps its `Sleep` across loop iterations and re-registers only
//! when its deadline changes, so a frame received costs no timer work (the
//! tokio `sleep_until` per iteration registered and removed a wheel entry
//! for every frame).
//!
//! [`PacingMode::Tokio`] (`[run] pacing = "tokio"`, or when a timerfd
//! cannot be created) keeps the old behaviour for comparison: one boxed
//! tokio `Sleep` per session, reset only when the deadline changes.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::future::Future;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::results::PacingStats;
pub use crate::scenario::PacingMode;

/// The deadlines of one worker's sessions, in ns since a base instant.
/// Pure bookkeeping, no clock: tests drive it with made-up times.
#[derive(Default)]
pub struct TimerQueue {
    /// (deadline ns, slot) of every registered deadline, earliest first.
    order: BTreeSet<(u64, u32)>,
    slots: Vec<Slot>,
    free: Vec<u32>,
}

#[derive(Default)]
struct Slot {
    /// The deadline registered in `order`, if any.
    at: Option<u64>,
    waker: Option<Waker>,
}

impl TimerQueue {
    /// A new slot (one per session), without a deadline.
    pub fn alloc(&mut self) -> u32 {
        if let Some(s) = self.free.pop() {
            return s;
        }
        self.slots.push(Slot::default());
        (self.slots.len() - 1) as u32
    }

    /// Gives a slot back (its deadline, if any, is cancelled).
    pub fn release(&mut self, slot: u32) {
        self.cancel(slot);
        if let Some(s) = self.slots.get_mut(slot as usize) {
            s.waker = None;
            self.free.push(slot);
        }
    }

    /// Registers `slot` to be woken through `waker` at `at`. Returns true
    /// when `at` became the earliest deadline (the fd must be re-armed).
    pub fn set(&mut self, slot: u32, at: u64, waker: &Waker) -> bool {
        let Some(s) = self.slots.get_mut(slot as usize) else {
            return false;
        };
        if !s.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
            s.waker = Some(waker.clone());
        }
        if s.at == Some(at) {
            return false;
        }
        if let Some(old) = s.at.replace(at) {
            self.order.remove(&(old, slot));
        }
        self.order.insert((at, slot));
        self.order.first() == Some(&(at, slot))
    }

    /// Removes the deadline of `slot`, if it has one.
    pub fn cancel(&mut self, slot: u32) {
        if let Some(old) = self.slots.get_mut(slot as usize).and_then(|s| s.at.take()) {
            self.order.remove(&(old, slot));
        }
    }

    /// The deadline registered for `slot`.
    pub fn deadline(&self, slot: u32) -> Option<u64> {
        self.slots.get(slot as usize).and_then(|s| s.at)
    }

    /// The earliest registered deadline.
    pub fn earliest(&self) -> Option<u64> {
        self.order.first().map(|&(at, _)| at)
    }

    /// Removes every deadline at or before `now` and pushes its waker to
    /// `out`. Returns how many were due.
    pub fn fire_due(&mut self, now: u64, out: &mut Vec<Waker>) -> usize {
        let mut n = 0;
        while let Some(&(at, slot)) = self.order.first() {
            if at > now {
                break;
            }
            self.order.pop_first();
            n += 1;
            if let Some(s) = self.slots.get_mut(slot as usize) {
                s.at = None;
                out.extend(s.waker.clone());
            }
        }
        n
    }

    /// Registered deadlines.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

/// What one worker's timer did, for `generator.pacing` in results.json.
#[derive(Debug, Clone, Copy, Default)]
pub struct TimerStats {
    /// timerfd expiries handled (each one wakes the worker thread at most once).
    pub expiries: u64,
    /// `timerfd_settime` calls.
    pub arms: u64,
    /// Sessions woken by the timer.
    pub wakes: u64,
    /// Of those, woken by another session's poll before the fd's expiry was handled.
    pub inline: u64,
}

/// The timerfd and the queue behind a [`WorkerTimer`].
pub struct Inner {
    fd: AsyncFd<OwnedFd>,
    /// `base` as CLOCK_MONOTONIC, read just after `base` so that a deadline
    /// mapped through it never fires before the `Instant` it stands for.
    base: Instant,
    base_ts: libc::timespec,
    queue: RefCell<TimerQueue>,
    /// The deadline the fd is armed for (ns since `base`).
    armed: Cell<Option<u64>>,
    stats: Cell<TimerStats>,
    /// Wakers of due sessions, reused.
    scratch: RefCell<Vec<Waker>>,
}

impl Inner {
    fn ns(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.base).as_nanos() as u64
    }

    /// A busy worker polls sessions all the time: each poll also wakes the
    /// sessions already due, so they need not wait for the timerfd's event
    /// and the driver task to come round the run queue (twice the queueing
    /// when many sockets are ready). The timerfd stays armed; its expiry
    /// then finds nothing due and re-arms for the next deadline.
    fn fire_inline(&self, now: Instant) {
        let now = self.ns(now);
        let mut wakers = {
            let mut q = self.queue.borrow_mut();
            if q.earliest().is_none_or(|e| e > now) {
                return;
            }
            let mut w = std::mem::take(&mut *self.scratch.borrow_mut());
            let n = q.fire_due(now, &mut w);
            let mut s = self.stats.get();
            s.wakes += n as u64;
            s.inline += n as u64;
            self.stats.set(s);
            w
        };
        for w in wakers.drain(..) {
            w.wake();
        }
        *self.scratch.borrow_mut() = wakers;
    }

    /// Arms the fd for `at` (ns since base) unless it is armed for it already.
    fn arm(&self, at: u64) {
        if self.armed.get() == Some(at) {
            return;
        }
        let total = self.base_ts.tv_nsec as u64 + at % 1_000_000_000;
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: self.base_ts.tv_sec
                    + (at / 1_000_000_000) as libc::time_t
                    + (total / 1_000_000_000) as libc::time_t,
                tv_nsec: (total % 1_000_000_000) as libc::c_long,
            },
        };
        // SAFETY: a valid timerfd and a fully initialised itimerspec.
        let rc = unsafe {
            libc::timerfd_settime(
                self.fd.get_ref().as_raw_fd(),
                libc::TFD_TIMER_ABSTIME,
                &spec,
                std::ptr::null_mut(),
            )
        };
        if rc == 0 {
            self.armed.set(Some(at));
            let mut s = self.stats.get();
            s.arms += 1;
            self.stats.set(s);
        }
    }
}

/// One worker's timer: a handle sessions make [`Sleep`]s from.
#[derive(Clone)]
pub struct WorkerTimer {
    inner: Option<Rc<Inner>>,
}

impl WorkerTimer {
    /// A timer in `mode`; `Timerfd` falls back to `Tokio` when no timerfd
    /// can be created (see [`WorkerTimer::mode`]). Must run inside the
    /// worker's runtime; with a timerfd, spawn [`WorkerTimer::drive`] on
    /// the worker's `LocalSet`.
    pub fn new(mode: PacingMode) -> Self {
        let inner = match mode {
            PacingMode::Timerfd => open_timerfd().ok().map(Rc::new),
            PacingMode::Tokio => None,
        };
        Self { inner }
    }

    /// The mode in effect.
    pub fn mode(&self) -> PacingMode {
        if self.inner.is_some() {
            PacingMode::Timerfd
        } else {
            PacingMode::Tokio
        }
    }

    pub fn stats(&self) -> TimerStats {
        self.inner
            .as_ref()
            .map(|i| i.stats.get())
            .unwrap_or_default()
    }

    /// A session timer with no deadline yet.
    pub fn sleep(&self) -> Sleep {
        match &self.inner {
            Some(inner) => Sleep::Precise {
                slot: inner.queue.borrow_mut().alloc(),
                inner: inner.clone(),
                at: None,
            },
            None => Sleep::Coarse { sleep: None },
        }
    }

    /// Wakes due sessions whenever the timerfd expires; runs until the fd fails.
    pub async fn drive(self) {
        let Some(inner) = self.inner else {
            return;
        };
        let mut wakers = Vec::new();
        loop {
            let Ok(mut guard) = inner.fd.readable().await else {
                return;
            };
            let mut buf = [0u8; 8];
            // SAFETY: reading 8 bytes into an 8-byte buffer from our own fd.
            let n = unsafe {
                libc::read(
                    inner.fd.get_ref().as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                )
            };
            // Drained (or EAGAIN: re-armed meanwhile). Cleared before
            // re-arming below, so an expiry due at once is not missed.
            guard.clear_ready();
            if n < 0 {
                continue;
            }
            inner.armed.set(None);
            let now = inner.ns(Instant::now());
            let due = {
                let mut q = inner.queue.borrow_mut();
                let due = q.fire_due(now, &mut wakers);
                if let Some(next) = q.earliest() {
                    inner.arm(next);
                }
                due
            };
            let mut s = inner.stats.get();
            s.expiries += 1;
            s.wakes += due as u64;
            inner.stats.set(s);
            for w in wakers.drain(..) {
                w.wake();
            }
        }
    }
}

fn open_timerfd() -> std::io::Result<Inner> {
    // SAFETY: plain syscall; the fd is owned right after.
    let fd = unsafe {
        libc::timerfd_create(
            libc::CLOCK_MONOTONIC,
            libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let base = Instant::now();
    let mut base_ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-pointer.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut base_ts) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `owned` is a valid open fd that the AsyncFd owns until dropped.
    let fd = unsafe { AsyncFd::register_with_interest(owned, Interest::READABLE) }
        .map_err(|e| e.into_parts().1)?;
    Ok(Inner {
        fd,
        base,
        base_ts,
        queue: RefCell::new(TimerQueue::default()),
        armed: Cell::new(None),
        stats: Cell::new(TimerStats::default()),
        scratch: RefCell::new(Vec::new()),
    })
}

/// A session's timer: reset to a deadline, then awaited (by `&mut`) as
/// often as needed; ready once the deadline has passed.
pub enum Sleep {
    Precise {
        inner: Rc<Inner>,
        slot: u32,
        at: Option<Instant>,
    },
    Coarse {
        /// Boxed: tokio's `Sleep` is `!Unpin` and large.
        sleep: Option<(Instant, Pin<Box<tokio::time::Sleep>>)>,
    },
}

impl Sleep {
    /// Sets the deadline; a no-op when it is unchanged.
    pub fn reset(&mut self, deadline: Instant) {
        match self {
            Sleep::Precise { inner, slot, at } => {
                if *at != Some(deadline) {
                    *at = Some(deadline);
                    // Registered (with the waker) at the next poll.
                    inner.queue.borrow_mut().cancel(*slot);
                }
            }
            Sleep::Coarse { sleep } => match sleep {
                Some((at, s)) if *at != deadline => {
                    *at = deadline;
                    s.as_mut().reset(deadline.into());
                }
                Some(_) => {}
                None => {
                    *sleep = Some((
                        deadline,
                        Box::pin(tokio::time::sleep_until(deadline.into())),
                    ));
                }
            },
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.get_mut() {
            Sleep::Precise { inner, slot, at } => {
                let Some(at) = *at else {
                    return Poll::Pending;
                };
                let now = Instant::now();
                let due = now >= at;
                if due {
                    // Before the inline expiry, which would wake us again.
                    inner.queue.borrow_mut().cancel(*slot);
                }
                inner.fire_inline(now);
                if due {
                    return Poll::Ready(());
                }
                let ns = inner.ns(at);
                let first = inner.queue.borrow_mut().set(*slot, ns, cx.waker());
                if first && inner.armed.get().is_none_or(|a| ns < a) {
                    inner.arm(ns);
                }
                Poll::Pending
            }
            Sleep::Coarse { sleep } => match sleep {
                Some((_, s)) => s.as_mut().poll(cx),
                None => Poll::Pending,
            },
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Sleep::Precise { inner, slot, .. } = self {
            inner.queue.borrow_mut().release(*slot);
        }
    }
}

/// `generator.pacing` for results.json from each worker's mode and timer
/// counts (workers that never reported are left out).
pub fn pacing_stats(
    requested: PacingMode,
    workers: &[(PacingMode, TimerStats)],
    duration_s: f64,
) -> PacingStats {
    let all = |m: PacingMode| workers.iter().all(|(w, _)| *w == m);
    let mode = if workers.is_empty() || all(requested) {
        requested.name()
    } else if all(PacingMode::Tokio) {
        PacingMode::Tokio.name()
    } else {
        "mixed"
    };
    let sum = workers
        .iter()
        .fold(TimerStats::default(), |a, (_, s)| TimerStats {
            expiries: a.expiries + s.expiries,
            arms: a.arms + s.arms,
            wakes: a.wakes + s.wakes,
            inline: a.inline + s.inline,
        });
    let per_s = |n: u64| n as f64 / duration_s.max(1e-3);
    PacingStats {
        requested: requested.name().into(),
        mode: mode.into(),
        resolution_us: if mode == "timerfd" { 1.0 } else { 1000.0 },
        spin_budget_us_per_s: 0.0,
        timer_expiries_per_s: per_s(sum.expiries),
        timer_arms_per_s: per_s(sum.arms),
        timer_wakes_per_s: per_s(sum.wakes),
        timer_inline_wakes_per_s: per_s(sum.inline),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn waker() -> (Arc<Count>, Waker) {
        let c = Arc::new(Count(AtomicUsize::new(0)));
        (c.clone(), Waker::from(c))
    }

    /// Due deadlines fire in order, exactly at their time on a made-up
    /// clock, never before; a deadline moved or cancelled does not fire.
    #[test]
    fn fires_due_deadlines_only_and_reports_the_earliest() {
        let mut q = TimerQueue::default();
        let (a, b, c) = (q.alloc(), q.alloc(), q.alloc());
        let (ca, wa) = waker();
        let (cb, wb) = waker();
        let (cc, wc) = waker();
        assert!(q.set(a, 5_000, &wa), "first deadline is the earliest");
        assert!(!q.set(b, 9_000, &wb));
        assert!(q.set(c, 1_000, &wc), "an earlier one re-arms");
        assert!(!q.set(c, 1_000, &wc), "unchanged: nothing to do");
        assert_eq!(q.earliest(), Some(1_000));
        let mut out = Vec::new();
        assert_eq!(q.fire_due(999, &mut out), 0, "1 ns early: nothing fires");
        assert_eq!(q.fire_due(1_000, &mut out), 1);
        // Moving b later keeps one entry for it; cancelling a removes it.
        q.set(b, 12_000, &wb);
        q.cancel(a);
        assert_eq!((q.len(), q.earliest()), (1, Some(12_000)));
        assert_eq!(q.fire_due(11_999, &mut out), 0);
        assert_eq!(q.fire_due(20_000, &mut out), 1);
        for w in out.drain(..) {
            w.wake();
        }
        let woke = |c: &Arc<Count>| c.0.load(Ordering::Relaxed);
        assert_eq!((woke(&ca), woke(&cb), woke(&cc)), (0, 1, 1));
        assert!(q.is_empty());
        assert_eq!(q.deadline(b), None, "fired deadlines are cleared");
    }

    /// Released slots are reused and their pending deadline is gone.
    #[test]
    fn released_slots_are_reused_without_stale_deadlines() {
        let mut q = TimerQueue::default();
        let (_, w) = waker();
        let a = q.alloc();
        q.set(a, 100, &w);
        q.release(a);
        assert!(q.is_empty());
        let b = q.alloc();
        assert_eq!(a, b);
        assert_eq!(q.deadline(b), None);
        let mut out = Vec::new();
        assert_eq!(q.fire_due(u64::MAX, &mut out), 0);
        assert!(out.is_empty());
    }

    /// Equal deadlines of different sessions both fire in one expiry.
    #[test]
    fn equal_deadlines_fire_together() {
        let mut q = TimerQueue::default();
        let (c, w) = waker();
        let (x, y) = (q.alloc(), q.alloc());
        q.set(x, 7, &w);
        q.set(y, 7, &w);
        let mut out = Vec::new();
        assert_eq!(q.fire_due(7, &mut out), 2);
        out.drain(..).for_each(Waker::wake);
        assert_eq!(c.0.load(Ordering::Relaxed), 2);
    }

    /// The mode in effect is what results.json records: a worker that fell
    /// back to tokio timers makes the run "mixed", never "timerfd".
    #[test]
    fn pacing_mode_and_timer_rates_are_recorded() {
        let s = |expiries| TimerStats {
            expiries,
            arms: expiries + 1,
            wakes: 2 * expiries,
            inline: expiries / 2,
        };
        let r = pacing_stats(
            PacingMode::Timerfd,
            &[(PacingMode::Timerfd, s(10)), (PacingMode::Timerfd, s(30))],
            10.0,
        );
        assert_eq!(
            (r.requested.as_str(), r.mode.as_str()),
            ("timerfd", "timerfd")
        );
        assert_eq!((r.resolution_us, r.spin_budget_us_per_s), (1.0, 0.0));
        assert_eq!(
            (
                r.timer_expiries_per_s,
                r.timer_arms_per_s,
                r.timer_wakes_per_s
            ),
            (4.0, 4.2, 8.0)
        );
        assert_eq!(r.timer_inline_wakes_per_s, 2.0);
        let mixed = pacing_stats(
            PacingMode::Timerfd,
            &[(PacingMode::Timerfd, s(1)), (PacingMode::Tokio, s(0))],
            1.0,
        );
        assert_eq!(
            (mixed.mode.as_str(), mixed.resolution_us),
            ("mixed", 1000.0)
        );
        let tokio = pacing_stats(PacingMode::Tokio, &[(PacingMode::Tokio, s(0))], 1.0);
        assert_eq!(
            (tokio.mode.as_str(), tokio.resolution_us),
            ("tokio", 1000.0)
        );
        let json = serde_json::to_value(&tokio).unwrap();
        assert_eq!(json["mode"], "tokio");
    }
}
