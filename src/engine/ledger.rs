//! Generator-side delivery accounting, for servers that number nothing
//! (`protocol = "json"`, and `socketio` with `accounting = "generator"`).
//!
//! The model (docs/metrics.md, "Generator-side accounting"):
//! - every chat carries bench's id `client.n.lag` (in `{id}`, and in the
//!   text as `~client.n.lag~`), so a receiver knows who sent it, which of
//!   the sender's messages it is, and how late the send was;
//! - bench knows which of its clients are confirmed members of each room
//!   ([`Ledger::join`] / [`Ledger::leave`], counted when a join is
//!   confirmed, or sent when the server confirms nothing). At send time the
//!   sender's worker records the message's intended time and its *expected*
//!   deliveries: the room's members, minus the sender unless
//!   `echo_to_sender`;
//! - a receiver credits a delivery to the message's entry only if it was a
//!   member before the entry was recorded; otherwise it is a join race
//!   (`deliveries_unconfirmed`), never loss;
//! - an entry is *open* until all its deliveries arrived, and kept until it
//!   is older than the delivery window (so a surplus receipt is still told
//!   apart): what is then still missing is `lost`, and a receipt after that
//!   is `deliveries_late`; entries still open when the drain ends are `lost`
//!   and `lost_tail`.
//!
//! Memory is bounded: entries live at most the window, and each worker's
//! shard holds at most [`MAX_ENTRIES`] (the oldest is expired early when
//! full). The shards are shared between worker threads behind one mutex
//! each (a receiver credits the sender's shard): the one place where
//! workers share memory instead of messages, so this mode needs workers in
//! one process.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Most entries (open or complete) per worker shard; beyond it the oldest
/// expires early, so the window shrinks under a very high message rate.
pub const MAX_ENTRIES: usize = 1 << 20;

/// bench's message id, parsed: `client.n.lag`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    pub client: u32,
    pub n: u64,
    /// µs the send started after its intended time.
    pub lag: u64,
}

impl Token {
    pub fn parse(s: &str) -> Option<Token> {
        let s = s.trim_matches('~');
        let mut parts = s.split('.');
        let t = Token {
            client: parts.next()?.parse().ok()?,
            n: parts.next()?.parse().ok()?,
            lag: parts.next()?.parse().ok()?,
        };
        parts.next().is_none().then_some(t)
    }

    /// The first `~client.n.lag~` inside `text` (the server may wrap or
    /// prefix the text; JSON escaping leaves digits, dots and `~` alone).
    pub fn find(text: &str) -> Option<Token> {
        let mut rest = text;
        while let Some(i) = rest.find('~') {
            rest = &rest[i + 1..];
            let end = rest.find('~')?;
            if let Some(t) = Token::parse(&rest[..end]) {
                return Some(t);
            }
        }
        None
    }

    fn key(&self) -> u64 {
        (u64::from(self.client) << 40) | (self.n & ((1 << 40) - 1))
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    room: u32,
    intended_us: u64,
    /// When the expected count was read (µs since the epoch).
    snap_us: u64,
    expected: u32,
    received: u32,
}

#[derive(Debug, Default)]
struct Shard {
    open: HashMap<u64, Entry>,
    /// Keys in send order with their snapshot time, for expiry; a key whose
    /// entry completed is skipped when it comes up.
    order: VecDeque<(u64, u64)>,
}

/// What a receipt turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receipt {
    /// Owed to this receiver: a delivery, with the intended send time.
    Credited { intended_us: u64 },
    /// The receiver was not (yet) a confirmed member when it was sent.
    Unconfirmed,
    /// The message's entry had already expired (its loss is counted).
    Late,
}

/// What expiring entries left missing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Missing {
    /// Deliveries never made.
    pub lost: u64,
    /// Of the missing ones, those explained by a receiver that left the
    /// room after the message was sent (a leave race, not loss).
    pub leave_races: u64,
}

/// Most departures remembered per room (a bound under heavy churn).
const MAX_DEPARTURES: usize = 1 << 16;

/// The run's ledger, shared by every worker.
#[derive(Debug)]
pub struct Ledger {
    shards: Vec<Mutex<Shard>>,
    members: Vec<AtomicU32>,
    /// Per room: when members left (µs since the epoch), oldest first.
    departures: Mutex<Vec<VecDeque<u64>>>,
    /// Open entries over all shards (the drain waits for 0).
    open: AtomicU64,
    window_us: u64,
    pub echo_to_sender: bool,
}

impl Ledger {
    pub fn new(workers: usize, rooms: usize, window: Duration, echo_to_sender: bool) -> Self {
        Self {
            shards: (0..workers.max(1)).map(|_| Mutex::default()).collect(),
            members: (0..rooms).map(|_| AtomicU32::new(0)).collect(),
            departures: Mutex::new(vec![VecDeque::new(); rooms]),
            open: AtomicU64::new(0),
            window_us: window.as_micros() as u64,
            echo_to_sender,
        }
    }

    fn shard(&self, client: u32) -> std::sync::MutexGuard<'_, Shard> {
        let i = client as usize % self.shards.len();
        // A poisoned shard only means a panicking client held it; the data is plain counts.
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A client became a confirmed member of `room`. Its `member_since`
    /// must be taken *before* this call (see [`Ledger::receive`]).
    pub fn join(&self, room: u32) {
        if let Some(m) = self.members.get(room as usize) {
            m.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A member left `room` (or was dropped). `at_us` (µs since the epoch)
    /// makes it a possible leave race for messages sent before; `None` for
    /// the leaves at the end of the run, which race with nothing.
    pub fn leave(&self, room: u32, at_us: Option<u64>) {
        if let Some(m) = self.members.get(room as usize) {
            let _ = m.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        }
        if let Some(at) = at_us {
            let mut d = self.departures.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(q) = d.get_mut(room as usize) {
                if q.len() >= MAX_DEPARTURES {
                    q.pop_front();
                }
                q.push_back(at);
            }
        }
    }

    /// Records a sent chat; returns its expected deliveries. `now_us` must be
    /// read after this call's membership read, so any receiver counted here
    /// has `member_since <= now_us` (taken inside, after the read).
    pub fn send(
        &self,
        t: Token,
        room: u32,
        intended_us: u64,
        sender_member: bool,
        now: impl Fn() -> u64,
    ) -> u32 {
        let members = self
            .members
            .get(room as usize)
            .map_or(0, |m| m.load(Ordering::SeqCst));
        let snap_us = now();
        let expected = if sender_member && !self.echo_to_sender {
            members.saturating_sub(1)
        } else {
            members
        };
        if expected == 0 {
            return 0;
        }
        let mut s = self.shard(t.client);
        let key = t.key();
        let entry = Entry {
            room,
            intended_us,
            snap_us,
            expected,
            received: 0,
        };
        if s.open.insert(key, entry).is_none() {
            self.open.fetch_add(1, Ordering::Relaxed);
        }
        s.order.push_back((key, snap_us));
        expected
    }

    /// A receiver got message `t`. `member_since(room)` is when the
    /// receiver became a confirmed member of the entry's room (µs since the
    /// epoch), if it is one.
    pub fn receive(&self, t: Token, member_since: impl Fn(u32) -> Option<u64>) -> Receipt {
        let mut s = self.shard(t.client);
        let key = t.key();
        let Some(e) = s.open.get_mut(&key) else {
            return Receipt::Late;
        };
        if member_since(e.room).is_none_or(|since| since > e.snap_us) || e.received >= e.expected {
            return Receipt::Unconfirmed;
        }
        e.received += 1;
        if e.received == e.expected {
            // Complete, but kept until it expires: a later receipt (a client
            // that joined meanwhile) is then told apart from a late one.
            self.open.fetch_sub(1, Ordering::Relaxed);
        }
        Receipt::Credited {
            intended_us: e.intended_us,
        }
    }

    /// Expires worker `w`'s entries recorded before `now_us - window` (and
    /// the oldest beyond [`MAX_ENTRIES`]); returns the deliveries they
    /// missed, the part that members who left since explain apart.
    pub fn expire(&self, w: usize, now_us: u64) -> Missing {
        let missing = self.take_expired(w, now_us);
        if missing.is_empty() {
            return Missing::default();
        }
        let mut d = self.departures.lock().unwrap_or_else(|e| e.into_inner());
        let out = attribute(&d, missing);
        // Departures older than two windows explain no open entry any more.
        let old = now_us.saturating_sub(2 * self.window_us);
        for q in d.iter_mut() {
            while q.front().is_some_and(|&at| at < old) {
                q.pop_front();
            }
        }
        out
    }

    /// Removes expired entries: (room, snapshot time, deliveries missing)
    /// of each incomplete one.
    fn take_expired(&self, w: usize, now_us: u64) -> Vec<(u32, u64, u64)> {
        let Some(shard) = self.shards.get(w) else {
            return Vec::new();
        };
        let mut s = shard.lock().unwrap_or_else(|e| e.into_inner());
        let mut lost = Vec::new();
        let cutoff = now_us.saturating_sub(self.window_us);
        while let Some(&(key, snap)) = s.order.front() {
            if snap > cutoff && s.order.len() <= MAX_ENTRIES {
                break;
            }
            s.order.pop_front();
            if let Some(e) = s.open.remove(&key) {
                if e.received < e.expected {
                    self.open.fetch_sub(1, Ordering::Relaxed);
                    lost.push((e.room, e.snap_us, u64::from(e.expected - e.received)));
                }
            }
        }
        if s.order.capacity() > 4 * s.order.len().max(1024) {
            s.order.shrink_to_fit();
            s.open.shrink_to_fit();
        }
        lost
    }

    /// Entries still waiting for deliveries.
    pub fn open(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }

    /// The end of the drain: every open entry's missing deliveries (the
    /// tail), less the leave races of members that left during the run
    /// (the leaves at the end of the run are not recorded as departures).
    pub fn finish(&self) -> Missing {
        let missing: Vec<_> = (0..self.shards.len())
            .flat_map(|w| self.take_expired(w, u64::MAX))
            .collect();
        let d = self.departures.lock().unwrap_or_else(|e| e.into_inner());
        attribute(&d, missing)
    }
}

/// Splits missing deliveries `(room, snapshot, n)` into leave races (one
/// per member that left the room after the send) and loss.
fn attribute(departures: &[VecDeque<u64>], missing: Vec<(u32, u64, u64)>) -> Missing {
    let mut out = Missing::default();
    for (room, snap, n) in missing {
        let left = departures
            .get(room as usize)
            .map_or(0, |q| q.iter().filter(|&&at| at > snap).count() as u64);
        let races = left.min(n);
        out.leave_races += races;
        out.lost += n - races;
    }
    out
}

/// Per receiver, per sender: which of the sender's messages arrived (the
/// highest `n` and a 128-message window below it), for duplicates and
/// per-sender order.
#[derive(Debug, Clone, Copy, Default)]
pub struct SenderWindow {
    top: u64,
    seen: u128,
}

/// What a message was to one receiver, given earlier ones from its sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    New,
    /// First receipt, but after a later message from the same sender.
    OutOfOrder,
    Duplicate,
}

impl SenderWindow {
    pub fn see(&mut self, n: u64) -> Order {
        if n > self.top {
            let shift = n - self.top;
            self.seen = if shift >= 128 { 0 } else { self.seen << shift };
            self.seen |= 1;
            self.top = n;
            return Order::New;
        }
        let d = self.top - n;
        if d >= 128 {
            // Older than the window: cannot tell, assume a first receipt.
            return Order::OutOfOrder;
        }
        let bit = 1u128 << d;
        if self.seen & bit != 0 {
            Order::Duplicate
        } else {
            self.seen |= bit;
            Order::OutOfOrder
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(client: u32, n: u64) -> Token {
        Token { client, n, lag: 0 }
    }

    #[test]
    fn tokens_parse_and_are_found_inside_text() {
        assert_eq!(
            Token::parse("3.17.120"),
            Some(Token {
                client: 3,
                n: 17,
                lag: 120
            })
        );
        assert_eq!(
            Token::parse("~3.17.120~"),
            Some(Token {
                client: 3,
                n: 17,
                lag: 120
            })
        );
        assert_eq!(Token::parse("3.17"), None);
        assert_eq!(Token::parse("3.17.1.2"), None);
        assert_eq!(Token::parse("a.b.c"), None);
        assert_eq!(
            Token::find(r#"{"message":"alice: ~x~ ~4.5.6~ the quick"}"#),
            Some(Token {
                client: 4,
                n: 5,
                lag: 6
            })
        );
        assert_eq!(Token::find("no token ~ here"), None);
    }

    #[test]
    fn expected_deliveries_credit_and_expire() {
        let l = Ledger::new(2, 1, Duration::from_secs(10), false);
        let since = |_| Some(100);
        for _ in 0..3 {
            l.join(0);
        }
        // Sender is a member: 2 others expected.
        assert_eq!(l.send(tok(1, 1), 0, 50, true, || 200), 2);
        assert_eq!(l.open(), 1);
        assert_eq!(
            l.receive(tok(1, 1), since),
            Receipt::Credited { intended_us: 50 }
        );
        // A receiver that joined after the send: a race, not a delivery.
        assert_eq!(l.receive(tok(1, 1), |_| Some(300)), Receipt::Unconfirmed);
        assert_eq!(l.receive(tok(1, 1), |_| None), Receipt::Unconfirmed);
        assert_eq!(
            l.receive(tok(1, 1), since),
            Receipt::Credited { intended_us: 50 }
        );
        assert_eq!(l.open(), 0, "complete");
        assert_eq!(
            l.receive(tok(1, 1), since),
            Receipt::Unconfirmed,
            "a surplus receipt"
        );
        assert_eq!(
            l.expire(1, 10_000_201),
            Missing::default(),
            "nothing missing"
        );
        assert_eq!(l.receive(tok(1, 1), since), Receipt::Late);

        // One of two deliveries never comes: lost when the window passes.
        l.send(tok(3, 1), 0, 1_000, true, || 1_000);
        l.receive(tok(3, 1), since);
        assert_eq!(
            l.expire(1, 5_000_000),
            Missing::default(),
            "inside the window"
        );
        assert_eq!(
            l.expire(1, 11_000_001),
            Missing {
                lost: 1,
                leave_races: 0
            }
        );
        assert_eq!(l.open(), 0);
        // Open at the end: the tail.
        l.send(tok(2, 1), 0, 1, false, || 2);
        assert_eq!(
            l.finish(),
            Missing {
                lost: 3,
                leave_races: 0
            }
        );
        // Echo to sender counts the sender too; empty rooms record nothing.
        let e = Ledger::new(1, 2, Duration::from_secs(1), true);
        e.join(0);
        assert_eq!(e.send(tok(0, 1), 0, 0, true, || 0), 1);
        assert_eq!(e.send(tok(0, 2), 1, 0, false, || 0), 0);
        e.leave(1, None);
        assert_eq!(e.send(tok(0, 3), 1, 0, false, || 0), 0, "never below zero");
    }

    /// A member that leaves after a message was sent, before receiving it,
    /// is a leave race; a departure before the send explains nothing.
    #[test]
    fn leaves_after_a_send_are_races_not_loss() {
        let l = Ledger::new(1, 1, Duration::from_secs(1), false);
        for _ in 0..4 {
            l.join(0);
        }
        l.leave(0, Some(50)); // before the send: not owed, nothing to explain
        assert_eq!(l.send(tok(0, 1), 0, 90, true, || 100), 2);
        l.leave(0, Some(150));
        assert_eq!(
            l.expire(0, 2_000_000),
            Missing {
                lost: 1,
                leave_races: 1
            }
        );
        // Leaves at the end of the run race with nothing: the tail is lost.
        l.join(0);
        assert_eq!(l.send(tok(0, 2), 0, 2_000_000, true, || 2_000_000), 2);
        l.leave(0, None);
        assert_eq!(
            l.finish(),
            Missing {
                lost: 2,
                leave_races: 0
            }
        );
    }

    #[test]
    fn sender_windows_tell_duplicates_from_reordering() {
        let mut w = SenderWindow::default();
        assert_eq!(w.see(1), Order::New);
        assert_eq!(w.see(3), Order::New);
        assert_eq!(w.see(2), Order::OutOfOrder);
        assert_eq!(w.see(2), Order::Duplicate);
        assert_eq!(w.see(3), Order::Duplicate);
        assert_eq!(w.see(500), Order::New);
        assert_eq!(w.see(3), Order::OutOfOrder, "older than the window");
        assert_eq!(w.see(499), Order::OutOfOrder);
    }
}
