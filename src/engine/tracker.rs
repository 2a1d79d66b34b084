//! Per-receiver, per-room sequence tracking: the loss accounting.
//!
//! Definitions (reported in `results.counters`, documented in docs):
//! - A receiver starts tracking a room at `joined.seq` (the room's latest
//!   seq when it joined): it expects every seq after that.
//! - Its own chats are marked seen from their ack's seq (the server does not
//!   echo a sender's chat back to it), without counting as deliveries.
//! - A chat with seq > last + 1 opens a gap (last+1 ..= seq-1): those seqs
//!   are *pending*. A later delivery (live or resume replay) inside a gap
//!   fills it; a live one counts as `out_of_order`. A seq already seen is a
//!   `duplicate` — except while a resume is in flight for that room: the
//!   replay overlaps live delivery after the rejoin, and such repeats are
//!   counted as `resume_overlap` instead.
//! - `deliveries_received`: first receipts of a seq (live or replayed).
//! - `lost`: seqs still pending when the receiver stops tracking the room
//!   (leave, close without resume, end of run), plus the *tail*: when the
//!   drain ends (every receiver caught up, or `[run] drain` expired; see
//!   `engine::drain`), for each receiver still joined, (highest seq any
//!   sender got acked in that room, or seen by any such receiver) −
//!   (receiver's last seq). The tail is also reported as `lost_tail`.
//! - `deliveries_expected` = `deliveries_received` + `lost`.
//! - After a reconnect *with* resume the receiver keeps its state and the
//!   rejoin seq opens a gap for what it missed while away; the resume replay
//!   fills it. *Without* resume, it starts over at the new `joined.seq`:
//!   messages sent while a client was away were never owed to it.
//! - Chats that arrive *before* a room's first `joined` (servers whose join
//!   handler is asynchronous add the socket to the room before acking) are
//!   held back, not tracked: those with seq ≤ `joined.seq` were never owed;
//!   those after it count as deliveries when the `joined` arrives (without a
//!   latency sample). Tracking them from 0 would open fake gaps.

/// Loss-tracking state for one room of one client.
#[derive(Debug, Clone, Default)]
pub struct RoomTrack {
    /// Room index (the name is `{prefix}{index}`).
    pub room: u32,
    /// Highest seq seen (received or own ack); valid when `tracking`.
    pub last: u64,
    /// Seqs at or below this arrived as resume replays.
    pub replay_upto: u64,
    /// Missing seq ranges (inclusive), oldest first; usually empty.
    gaps: Vec<(u64, u64)>,
    pub tracking: bool,
    pub joined: bool,
    /// A resume was sent and its `resumed` has not arrived yet.
    pub resuming: bool,
    /// Seqs received while not tracking (before the `joined`); bounded.
    early: Vec<u64>,
    /// The server epoch (restarts seen in this room by this worker) these
    /// seqs belong to; see `RoomTotals::restarted`.
    pub epoch: u32,
    /// Generator-side accounting: when this client became a confirmed
    /// member (µs since the epoch); 0 when it is not one.
    pub member_since_us: u64,
}

/// Most seqs held back per room before its `joined` arrives.
const MAX_EARLY: usize = 1024;

/// What a `joined` did to a room's accounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JoinOutcome {
    /// Seqs given up as lost (a restart with gaps still open).
    pub lost: u64,
    /// Seqs received before the `joined` that turned out to be owed.
    pub early_delivered: u64,
}

/// What one received seq turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqOutcome {
    /// First receipt, in order (or ahead, opening a gap).
    New,
    /// First receipt, filling a gap.
    Filled,
    Duplicate,
    /// The room is not tracked yet (no `joined`): held back, not counted.
    Early,
}

impl RoomTrack {
    pub fn new(room: u32) -> Self {
        Self {
            room,
            ..Self::default()
        }
    }

    /// Seqs currently missing.
    pub fn pending(&self) -> u64 {
        self.gaps.iter().map(|(a, b)| b - a + 1).sum()
    }

    /// A `joined` arrived. With `keep` (resume enabled and we tracked this
    /// room before) the seqs missed while away become a gap; otherwise
    /// tracking restarts at `seq`, and chats held back since the last
    /// restart are credited when they come after `seq`.
    pub fn on_joined(&mut self, seq: u64, keep: bool) -> JoinOutcome {
        self.joined = true;
        if keep && self.tracking {
            if seq > self.last {
                self.gaps.push((self.last + 1, seq));
                self.last = seq;
            }
            self.replay_upto = seq;
            JoinOutcome::default()
        } else {
            let lost = self.pending();
            self.gaps.clear();
            self.last = seq;
            self.replay_upto = 0;
            self.tracking = true;
            let mut early = std::mem::take(&mut self.early);
            early.sort_unstable();
            let early_delivered = early
                .into_iter()
                .filter(|&s| s > seq)
                .filter(|&s| self.on_seq(s) != SeqOutcome::Duplicate)
                .count() as u64;
            JoinOutcome {
                lost,
                early_delivered,
            }
        }
    }

    /// A delivery of `seq`.
    pub fn on_seq(&mut self, seq: u64) -> SeqOutcome {
        if !self.tracking {
            if self.early.len() < MAX_EARLY {
                self.early.push(seq);
            }
            return SeqOutcome::Early;
        }
        if seq > self.last {
            if seq > self.last + 1 {
                self.gaps.push((self.last + 1, seq - 1));
            }
            self.last = seq;
            return SeqOutcome::New;
        }
        match self.gaps.iter().position(|&(a, b)| a <= seq && seq <= b) {
            Some(i) => {
                let (a, b) = self.gaps[i];
                match (seq == a, seq == b) {
                    (true, true) => {
                        self.gaps.remove(i);
                    }
                    (true, false) => self.gaps[i].0 = seq + 1,
                    (false, true) => self.gaps[i].1 = seq - 1,
                    (false, false) => {
                        self.gaps[i].1 = seq - 1;
                        self.gaps.insert(i + 1, (seq + 1, b));
                    }
                }
                SeqOutcome::Filled
            }
            None => SeqOutcome::Duplicate,
        }
    }

    /// Our own chat got `seq`: seen, but not a delivery.
    pub fn on_own(&mut self, seq: u64) {
        let _ = self.on_seq(seq);
    }

    /// The server's seqs started over (a restart): forget everything seen,
    /// as if never joined. Returns the seqs that were still pending.
    pub fn reset_epoch(&mut self, epoch: u32) -> u64 {
        let pending = self.stop();
        self.last = 0;
        self.replay_upto = 0;
        self.epoch = epoch;
        pending
    }

    /// Stop tracking (leave, or close without resume): returns seqs lost.
    pub fn stop(&mut self) -> u64 {
        let lost = self.pending();
        self.gaps.clear();
        self.early = Vec::new();
        self.tracking = false;
        self.joined = false;
        self.resuming = false;
        lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_fill_duplicates_and_own_acks() {
        let mut t = RoomTrack::new(0);
        assert_eq!(t.on_joined(10, true).lost, 0);
        assert_eq!(t.on_seq(11), SeqOutcome::New);
        t.on_own(12);
        assert_eq!(t.on_seq(15), SeqOutcome::New); // 13, 14 pending
        assert_eq!(t.pending(), 2);
        assert_eq!(t.on_seq(11), SeqOutcome::Duplicate);
        assert_eq!(t.on_seq(14), SeqOutcome::Filled);
        assert_eq!(t.pending(), 1);
        assert_eq!(t.on_seq(20), SeqOutcome::New); // 16..19
        assert_eq!(t.on_seq(17), SeqOutcome::Filled); // splits 16 | 18..19
        assert_eq!(t.pending(), 4);
        assert_eq!(t.stop(), 4);
    }

    #[test]
    fn resume_keeps_state_and_rejoin_without_resume_restarts() {
        let mut t = RoomTrack::new(0);
        t.on_joined(0, true);
        t.on_seq(1);
        t.stop_keep_for_test();
        assert_eq!(t.on_joined(5, true).lost, 0);
        assert_eq!(t.pending(), 4);
        for s in 2..=5 {
            assert_eq!(t.on_seq(s), SeqOutcome::Filled);
        }
        assert_eq!(t.pending(), 0);
        t.on_seq(7);
        assert_eq!(t.on_joined(9, false).lost, 1);
        assert_eq!((t.last, t.pending()), (9, 0));
    }

    /// An asynchronous join handler: the room's chats reach the socket
    /// before the join ack. Tracking them from 0 used to open a gap 1..=4
    /// that the `joined` then counted as 4 lost.
    #[test]
    fn chats_before_the_join_ack_are_not_false_loss() {
        let mut t = RoomTrack::new(0);
        // Joined the room at seq 4, acked at 6: 5 and 6 were never owed.
        assert_eq!(t.on_seq(5), SeqOutcome::Early);
        assert_eq!(t.on_seq(6), SeqOutcome::Early);
        assert_eq!(t.on_joined(6, false), JoinOutcome::default());
        assert_eq!(t.on_seq(7), SeqOutcome::New);
        assert_eq!((t.last, t.pending()), (7, 0));
        assert_eq!(t.stop(), 0);

        // Ack carrying the seq read *before* joining: 8 and 9 are owed and
        // credited at the `joined`, in any arrival order, without gaps.
        let mut t = RoomTrack::new(0);
        t.on_seq(9);
        t.on_seq(8);
        t.on_seq(7);
        let j = t.on_joined(7, false);
        assert_eq!(
            j,
            JoinOutcome {
                lost: 0,
                early_delivered: 2
            }
        );
        assert_eq!(t.on_seq(10), SeqOutcome::New);
        assert_eq!(t.on_seq(9), SeqOutcome::Duplicate);
        assert_eq!(t.stop(), 0);
    }

    #[test]
    fn a_new_epoch_forgets_old_seqs() {
        let mut t = RoomTrack::new(0);
        t.on_joined(100, true);
        t.on_seq(101);
        t.on_seq(104); // 102, 103 pending
        assert_eq!(t.reset_epoch(1), 2);
        assert_eq!((t.last, t.tracking, t.epoch), (0, false, 1));
        // The new server's seqs are new, not duplicates of the old ones.
        assert_eq!(t.on_joined(3, true).lost, 0);
        assert_eq!(t.on_seq(4), SeqOutcome::New);
        assert_eq!(t.pending(), 0);
    }

    impl RoomTrack {
        fn stop_keep_for_test(&mut self) {
            self.joined = false;
        }
    }
}
