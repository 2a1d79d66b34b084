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
//!   (leave, close without resume, end of run), plus the *tail*: after the
//!   drain period, for each receiver still joined, (highest seq any sender
//!   got acked in that room, or seen by any receiver) − (receiver's last seq).
//! - `deliveries_expected` = `deliveries_received` + `lost`.
//! - After a reconnect *with* resume the receiver keeps its state and the
//!   rejoin seq opens a gap for what it missed while away; the resume replay
//!   fills it. *Without* resume, it starts over at the new `joined.seq`:
//!   messages sent while a client was away were never owed to it.

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
}

/// What one received seq turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqOutcome {
    /// First receipt, in order (or ahead, opening a gap).
    New,
    /// First receipt, filling a gap.
    Filled,
    Duplicate,
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
    /// tracking restarts at `seq`. Returns seqs dropped as lost (none when
    /// keeping).
    pub fn on_joined(&mut self, seq: u64, keep: bool) -> u64 {
        self.joined = true;
        if keep && self.tracking {
            if seq > self.last {
                self.gaps.push((self.last + 1, seq));
                self.last = seq;
            }
            self.replay_upto = seq;
            0
        } else {
            let lost = self.pending();
            self.gaps.clear();
            self.last = seq;
            self.replay_upto = 0;
            self.tracking = true;
            lost
        }
    }

    /// A delivery of `seq`.
    pub fn on_seq(&mut self, seq: u64) -> SeqOutcome {
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

    /// Stop tracking (leave, or close without resume): returns seqs lost.
    pub fn stop(&mut self) -> u64 {
        let lost = self.pending();
        self.gaps.clear();
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
        assert_eq!(t.on_joined(10, true), 0);
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
        assert_eq!(t.on_joined(5, true), 0);
        assert_eq!(t.pending(), 4);
        for s in 2..=5 {
            assert_eq!(t.on_seq(s), SeqOutcome::Filled);
        }
        assert_eq!(t.pending(), 0);
        t.on_seq(7);
        assert_eq!(t.on_joined(9, false), 1);
        assert_eq!((t.last, t.pending()), (9, 0));
    }

    impl RoomTrack {
        fn stop_keep_for_test(&mut self) {
            self.joined = false;
        }
    }
}
