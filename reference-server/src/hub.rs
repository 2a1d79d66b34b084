//! Rooms: membership, per-user presence, sequence numbers, history and
//! fan-out.
//!
//! Each room has its own lock; a chat is sequenced, stored and queued to
//! every member under it, so every member sees a room's messages in seq
//! order. Each frame is encoded once and the same `Bytes` is queued to all
//! recipients. The room map's lock is taken only on join/leave/reaping
//! (lock order: map, then room, then a peer's outbox).
//!
//! With `--redis` the [`crate::bus`] sequences and delivers instead: a chat
//! is handed to the bus, and the bus's subscriber calls [`Hub::bus_deliver`]
//! in seq order; a room is "active" once the bus knows its seq (until then
//! joiners wait for `joined`).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::value::RawValue;

use crate::bus::{Bus, ChatCmd, Ctl};
use crate::chaos::Chaos;
use crate::metrics::{self, Metrics};
use crate::peer::{Outgoing, Peer, QueueLimits};
use wire::protocol::{PresenceStatus, ServerFrame};
use wire::ws::{server_frame, OpCode};

/// Encodes a server frame as one complete, shareable WebSocket text frame.
pub fn encode(frame: &ServerFrame<'_>) -> Bytes {
    server_frame(OpCode::Text, frame.to_json().as_bytes())
}

#[derive(Debug)]
pub struct Room {
    pub name: Arc<str>,
    state: Mutex<RoomState>,
}

#[derive(Debug, Default)]
struct RoomState {
    members: Vec<Arc<Peer>>,
    /// Connections per user in this room: presence is per user.
    presence: HashMap<Arc<str>, u32>,
    seq: u64,
    history: VecDeque<(u64, Bytes)>,
    empty_since: Option<Instant>,
    /// Bus mode: the bus has set `seq` (and sent `joined`) for this room.
    active: bool,
    /// Bus mode: the seq the room was activated at; chats at or below it
    /// are never delivered here, so their senders are acked directly.
    active_from: u64,
}

impl Room {
    fn lock(&self) -> MutexGuard<'_, RoomState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What a join did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Joined {
    pub seq: u64,
    pub members: u64,
}

#[derive(Debug)]
pub struct Hub {
    rooms: Mutex<HashMap<Arc<str>, Arc<Room>>>,
    history_len: usize,
    room_ttl: Duration,
    limits: QueueLimits,
    metrics: Arc<Metrics>,
    chaos: Arc<Chaos>,
    /// `Some(threshold)`: fan-out compresses each message once for the
    /// members with `shared_deflate` (see `crate::deflate`).
    pub shared_deflate_threshold: Option<usize>,
    bus: OnceLock<Bus>,
}

/// One fan-out's frame, compressed at most once, on first need.
struct FanOut<'a> {
    plain: &'a Bytes,
    threshold: Option<usize>,
    deflated: Option<Option<Bytes>>,
}

impl FanOut<'_> {
    fn for_peer(&mut self, m: &Peer) -> Bytes {
        let Some(threshold) = self.threshold.filter(|_| m.shared_deflate) else {
            return self.plain.clone();
        };
        let plain = self.plain;
        self.deflated
            .get_or_insert_with(|| crate::deflate::shared_frame(plain, threshold))
            .clone()
            .unwrap_or_else(|| plain.clone())
    }
}

/// What [`Hub::bus_deliver`] did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusOutcome {
    Delivered,
    /// Seq at or below the last delivered.
    Duplicate,
    /// Seq beyond last + 1 (carries the last delivered); not delivered.
    Gap(u64),
    /// No local members, or the room's seq is not known yet.
    Inactive,
}

impl Hub {
    fn frames_for<'a>(&self, plain: &'a Bytes) -> FanOut<'a> {
        FanOut {
            plain,
            threshold: self.shared_deflate_threshold,
            deflated: None,
        }
    }

    pub fn new(
        history_len: usize,
        room_ttl: Duration,
        limits: QueueLimits,
        metrics: Arc<Metrics>,
        chaos: Arc<Chaos>,
    ) -> Self {
        Self {
            rooms: Mutex::new(HashMap::new()),
            history_len,
            room_ttl,
            limits,
            metrics,
            chaos,
            shared_deflate_threshold: None,
            bus: OnceLock::new(),
        }
    }

    /// Switches the hub to bus mode (once, before connections arrive).
    pub fn set_bus(&self, bus: Bus) {
        let _ = self.bus.set(bus);
    }

    pub fn bus(&self) -> Option<&Bus> {
        self.bus.get()
    }

    fn map(&self) -> MutexGuard<'_, HashMap<Arc<str>, Arc<Room>>> {
        self.rooms.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn limits(&self) -> &QueueLimits {
        &self.limits
    }

    /// Queues a reply to the connection's own request (never refused by the bound).
    pub fn reply(&self, peer: &Peer, frame: Bytes) {
        peer.push(Outgoing::now(frame), &self.limits, true, &self.metrics);
    }

    /// Chats the bus did not publish: counted, and each sender told with
    /// `UNAVAILABLE` (its id echoed) instead of an ack, so the client knows
    /// it was not sent. They got no seq, so no member misses them.
    pub fn bus_refuse(&self, cmds: &[crate::bus::ChatCmd]) {
        metrics::add(&self.metrics.bus_publish_failures_total, cmds.len() as u64);
        for cmd in cmds {
            metrics::inc(&self.metrics.error_frames_total);
            let id = Some(&*cmd.id).filter(|v| wire::protocol::echoable_id(v));
            let frame = encode(&ServerFrame::Error {
                code: wire::protocol::ErrorCode::Unavailable,
                message: "the message bus (Redis) is unreachable; not sent".into(),
                id,
            });
            self.reply(&cmd.peer, frame);
        }
    }

    /// Adds `peer` (user `user`) to `name`, replies `joined`, and tells the
    /// others `online` when this is the user's first connection there.
    /// Joining a room twice only repeats the `joined` reply.
    pub fn join(&self, peer: &Arc<Peer>, user: &Arc<str>, name: &str) -> (Arc<Room>, Joined) {
        let mut map = self.map();
        let room = match map.get(name) {
            Some(r) => r.clone(),
            None => {
                let r = Arc::new(Room {
                    name: Arc::from(name),
                    state: Mutex::new(RoomState::default()),
                });
                map.insert(r.name.clone(), r.clone());
                metrics::inc(&self.metrics.rooms_current);
                r
            }
        };
        let mut st = room.lock();
        drop(map);
        let already = st.members.iter().any(|m| m.id == peer.id);
        let mut first = false;
        if let Some(bus) = self.bus() {
            if st.members.is_empty() && !st.active {
                bus.ctl(Ctl::Subscribe(room.name.clone()));
            }
        }
        if !already {
            st.members.push(peer.clone());
            st.empty_since = None;
            let count = st.presence.entry(user.clone()).or_insert(0);
            *count += 1;
            first = *count == 1;
            if let Some(bus) = self.bus() {
                // Room-wide presence: the bus publishes `online` if this is
                // the user's first connection on any node.
                bus.ctl(Ctl::Presence {
                    room: room.name.clone(),
                    user: user.clone(),
                    conn: peer.id,
                    delta: 1,
                });
                first = false;
            }
        }
        let joined = Joined {
            seq: st.seq,
            members: st.members.len() as u64,
        };
        // In bus mode a waiting room replies when the bus activates it.
        if self.bus().is_none() || st.active {
            self.reply(
                peer,
                encode(&ServerFrame::Joined {
                    room: name.into(),
                    seq: joined.seq,
                    members: joined.members,
                }),
            );
        }
        if first {
            let presence = encode(&ServerFrame::Presence {
                room: name.into(),
                user: user.as_ref().into(),
                status: PresenceStatus::Online,
            });
            self.broadcast(&st, peer.id, &presence, false);
        }
        (room.clone(), joined)
    }

    /// Removes `peer` from `room`. Sends `left` when `reply` (an explicit
    /// leave; a disconnect has nobody to tell), and `offline` to the others
    /// when it was the user's last connection in the room.
    pub fn leave(&self, peer: &Peer, user: &Arc<str>, room: &Arc<Room>, reply: bool) {
        let mut map = self.map();
        let mut st = room.lock();
        let Some(pos) = st.members.iter().position(|m| m.id == peer.id) else {
            return;
        };
        st.members.swap_remove(pos);
        let last_of_user = match st.presence.get_mut(user) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            _ => {
                st.presence.remove(user);
                true
            }
        };
        if reply {
            self.reply(
                peer,
                encode(&ServerFrame::Left {
                    room: room.name.as_ref().into(),
                }),
            );
        }
        if let Some(bus) = self.bus() {
            bus.ctl(Ctl::Presence {
                room: room.name.clone(),
                user: user.clone(),
                conn: peer.id,
                delta: -1,
            });
        } else if last_of_user && !st.members.is_empty() {
            let presence = encode(&ServerFrame::Presence {
                room: room.name.as_ref().into(),
                user: user.as_ref().into(),
                status: PresenceStatus::Offline,
            });
            self.broadcast(&st, peer.id, &presence, false);
        }
        if st.members.is_empty() {
            if let Some(bus) = self.bus() {
                // History lives in Redis; the bus unsubscribes the room.
                bus.ctl(Ctl::Unsubscribe(room.name.clone()));
                st.active = false;
            }
            // Keep history for a while so a reconnecting client can resume.
            if st.history.is_empty() || self.room_ttl.is_zero() {
                drop(st);
                if map.remove(&room.name).is_some() {
                    metrics::add_neg(&self.metrics.rooms_current, 1);
                }
            } else {
                st.empty_since = Some(Instant::now());
            }
        }
        drop(map);
    }

    /// Sequences, stores and fans out one chat message; acks the sender.
    pub fn chat(
        &self,
        peer: &Peer,
        user: &str,
        room: &Room,
        id: &RawValue,
        text: &str,
        ts: &RawValue,
    ) {
        if let Some(bus) = self.bus() {
            let body = crate::bus::envelope::chat_body(&crate::bus::envelope::ChatBody {
                n: bus.node().into(),
                c: peer.id,
                f: user.into(),
                i: id,
                x: text.into(),
                t: ts,
            });
            let cmd = ChatCmd {
                peer: self.peer_arc(room, peer.id),
                room: room.name.clone(),
                id: id.to_owned(),
                body,
            };
            if let Err(cmd) = bus.chat(cmd) {
                self.bus_refuse(std::slice::from_ref(&cmd));
            }
            return;
        }
        let mut st = room.lock();
        st.seq += 1;
        let seq = st.seq;
        let frame = encode(&ServerFrame::Chat {
            room: room.name.as_ref().into(),
            seq,
            from: user.into(),
            id,
            text: text.into(),
            ts,
        });
        if self.history_len > 0 {
            if st.history.len() >= self.history_len {
                st.history.pop_front();
            }
            st.history.push_back((seq, frame.clone()));
        }
        self.reply(peer, encode(&ServerFrame::Ack { id, seq }));
        self.fan_out(&st, &room.name, seq, &frame, Some(peer.id));
    }

    /// Queues a sequenced chat to every member but `except` (with chaos).
    fn fan_out(&self, st: &RoomState, room: &str, seq: u64, frame: &Bytes, except: Option<u64>) {
        let not_before = self.delivery_deadline();
        let mut delivered = 0u64;
        let mut dropped = 0u64;
        let mut out = self.frames_for(frame);
        for m in &st.members {
            if Some(m.id) == except {
                continue;
            }
            if self.chaos.drops(room, seq, m.id) {
                dropped += 1;
                continue;
            }
            m.push(
                Outgoing {
                    frame: out.for_peer(m),
                    typing: false,
                    not_before,
                },
                &self.limits,
                false,
                &self.metrics,
            );
            delivered += 1;
        }
        metrics::add(&self.metrics.deliveries_total, delivered);
        metrics::add(&self.metrics.chaos_dropped_total, dropped);
    }

    fn delivery_deadline(&self) -> Option<Instant> {
        if !self.chaos.delays_deliveries() {
            return None;
        }
        let d = self.chaos.delivery_delay();
        (!d.is_zero()).then(|| Instant::now() + d)
    }

    /// Tells the other members that `user` is typing (never stored).
    pub fn typing(&self, peer: &Peer, user: &str, room: &Room) {
        let frame = encode(&ServerFrame::Typing {
            room: room.name.as_ref().into(),
            user: user.into(),
        });
        let st = room.lock();
        self.broadcast(&st, peer.id, &frame, true);
    }

    /// Replays stored chat with seq > `after`, then `resumed`.
    pub fn resume(&self, peer: &Peer, room: &Room, after: u64) {
        if let Some(bus) = self.bus() {
            return bus.ctl(Ctl::Resume {
                peer: self.peer_arc(room, peer.id),
                room: room.name.clone(),
                after,
            });
        }
        let st = room.lock();
        let oldest = st.history.front().map(|(s, _)| *s);
        let complete = after >= st.seq || oldest.is_some_and(|o| o <= after + 1);
        let mut replayed = 0u64;
        for (seq, frame) in &st.history {
            if *seq > after {
                self.reply(peer, frame.clone());
                replayed += 1;
            }
        }
        self.reply(
            peer,
            encode(&ServerFrame::Resumed {
                room: room.name.as_ref().into(),
                replayed,
                complete,
            }),
        );
    }

    fn broadcast(&self, st: &RoomState, except: u64, frame: &Bytes, typing: bool) {
        let mut out = self.frames_for(frame);
        for m in &st.members {
            if m.id != except {
                m.push(
                    Outgoing {
                        frame: out.for_peer(m),
                        typing,
                        not_before: None,
                    },
                    &self.limits,
                    false,
                    &self.metrics,
                );
            }
        }
    }

    /// Forgets empty rooms whose history has been kept for `room_ttl`.
    pub fn reap(&self, now: Instant) {
        let mut map = self.map();
        let before = map.len();
        map.retain(|_, room| {
            let st = room.lock();
            !(st.members.is_empty()
                && st
                    .empty_since
                    .is_some_and(|t| now.saturating_duration_since(t) >= self.room_ttl))
        });
        metrics::add_neg(&self.metrics.rooms_current, (before - map.len()) as u64);
    }

    pub fn room_count(&self) -> usize {
        self.map().len()
    }

    /// The member's own `Arc` (the bus answers it later, from another task).
    fn peer_arc(&self, room: &Room, id: u64) -> Arc<Peer> {
        let st = room.lock();
        match st.members.iter().find(|m| m.id == id) {
            Some(m) => m.clone(),
            // Not a member (cannot happen: the caller checked); a detached
            // peer takes the reply and drops it.
            None => Arc::new(Peer::new(id)),
        }
    }

    fn room(&self, name: &str) -> Option<Arc<Room>> {
        self.map().get(name).cloned()
    }

    pub fn has_local_members(&self, name: &str) -> bool {
        self.room(name)
            .is_some_and(|r| !r.lock().members.is_empty())
    }

    /// Bus mode: the room's seq is `seq`; members waiting get `joined`.
    pub fn bus_activate(&self, name: &str, seq: u64) {
        let Some(room) = self.room(name) else { return };
        let mut st = room.lock();
        if st.active || st.members.is_empty() {
            return;
        }
        st.active = true;
        st.seq = seq;
        st.active_from = seq;
        let joined = encode(&ServerFrame::Joined {
            room: name.into(),
            seq,
            members: st.members.len() as u64,
        });
        for m in &st.members {
            self.reply(m, joined.clone());
        }
    }

    /// Bus mode: a room-wide presence change, to local members but `skip`.
    pub fn bus_presence(&self, name: &str, user: &str, online: bool, skip: Option<u64>) {
        let Some(room) = self.room(name) else { return };
        let st = room.lock();
        if !st.active {
            return;
        }
        let frame = encode(&ServerFrame::Presence {
            room: name.into(),
            user: user.into(),
            status: if online {
                PresenceStatus::Online
            } else {
                PresenceStatus::Offline
            },
        });
        self.broadcast(&st, skip.unwrap_or(0), &frame, false);
    }

    /// Bus mode: the last seq delivered in an active room.
    pub fn bus_last_seq(&self, name: &str) -> Option<u64> {
        let room = self.room(name)?;
        let st = room.lock();
        st.active.then_some(st.seq)
    }

    /// Bus mode: whether the publisher must ack chat `seq` itself, because
    /// this node will never deliver it (the room is not active here, or
    /// was activated at or after it). Otherwise [`Hub::bus_deliver`] acks
    /// the sender at the seq's place in the room's order, so the sender
    /// never sees a later seq before its own ack.
    pub fn bus_needs_direct_ack(&self, name: &str, seq: u64) -> bool {
        let Some(room) = self.room(name) else {
            return true;
        };
        let st = room.lock();
        !st.active || seq <= st.active_from
    }

    /// Bus mode: delivers chat `seq` to local members if it is the next one
    /// (or any later one with `allow_gap`); the sender, when it is here
    /// (`origin`: its connection and the ack), gets the ack instead.
    pub fn bus_deliver(
        &self,
        name: &str,
        seq: u64,
        frame: &Bytes,
        origin: Option<(u64, Bytes)>,
        allow_gap: bool,
    ) -> BusOutcome {
        let Some(room) = self.room(name) else {
            return BusOutcome::Inactive;
        };
        let mut st = room.lock();
        if !st.active {
            return BusOutcome::Inactive;
        }
        if seq <= st.seq {
            return BusOutcome::Duplicate;
        }
        if seq > st.seq + 1 && !allow_gap {
            return BusOutcome::Gap(st.seq);
        }
        st.seq = seq;
        let skip = origin.as_ref().map(|o| o.0);
        self.fan_out(&st, name, seq, frame, skip);
        if let Some((id, ack)) = origin {
            if let Some(m) = st.members.iter().find(|m| m.id == id) {
                self.reply(m, ack);
            }
        }
        BusOutcome::Delivered
    }
}
