//! Handling one inbound WebSocket message: auth, the v1 requests, and the
//! error frames for everything malformed.

use std::sync::Arc;
use std::time::Instant;

use serde_json::value::RawValue;

use super::{Conn, End, Identity};
use crate::auth::RoomAcl;
use crate::hub::encode;
use crate::metrics;
use crate::ratelimit::Verdict;
use wire::protocol::{ClientFrame, ErrorCode, RawFrame, ServerFrame};
use wire::ws::{close_code, close_payload, server_frame, Message, OpCode};

impl Conn {
    pub(super) fn handle(&mut self, msg: Message) -> Option<End> {
        match msg {
            Message::Text(data) => {
                metrics::inc(&self.shared.metrics.frames_in_total);
                self.handle_text(&data)
            }
            Message::Binary(_) => {
                metrics::inc(&self.shared.metrics.frames_in_total);
                if self.identity.is_none() {
                    return Some(self.auth_failed("the first frame must be a JSON `auth` frame"));
                }
                // Every data frame counts toward the rate limit, binary too.
                match self.limiter.check(&self.shared.rate_limits, Instant::now()) {
                    Verdict::Abusive => return Some(self.abusive()),
                    Verdict::Limited => {
                        self.rate_limited(None);
                        return None;
                    }
                    Verdict::Allow => {}
                }
                self.shared.metrics.bad_input.record(
                    metrics::BadInput::InvalidMessage,
                    &"binary frame on the chat endpoint",
                );
                self.error(
                    ErrorCode::InvalidMessage,
                    "binary frames are not supported; send JSON text frames",
                    None,
                );
                None
            }
            Message::Ping(payload) => {
                self.io.queue(server_frame(OpCode::Pong, &payload));
                // Pings bypass the queue; a peer that sends them without
                // reading must not grow the write buffer without bound.
                if self.io.pending_bytes() > self.shared.config.max_queue_bytes {
                    metrics::inc(&self.shared.metrics.slow_consumer_closes_total);
                    return Some(End::Close {
                        code: close_code::TRY_AGAIN_LATER,
                        reason: "slow consumer".into(),
                        flush_first: false,
                    });
                }
                None
            }
            Message::Pong(_) => {
                if let Some(sent) = self.ping_sent.take() {
                    self.hb_deadline = sent + self.shared.config.heartbeat_interval;
                }
                None
            }
            Message::Close(frame) => {
                let payload = frame
                    .map(|f| close_payload(echo_code(f.code), ""))
                    .unwrap_or_default();
                self.io.queue(server_frame(OpCode::Close, &payload));
                Some(End::Done)
            }
        }
    }

    fn handle_text(&mut self, data: &[u8]) -> Option<End> {
        let Some(identity) = &self.identity else {
            return self.handle_auth(data);
        };
        let user = identity.user.clone();
        let shared = self.shared.clone();
        let verdict = self.limiter.check(&self.shared.rate_limits, Instant::now());
        if verdict == Verdict::Abusive {
            return Some(self.abusive());
        }
        let raw: Result<RawFrame<'_>, _> = serde_json::from_slice(data);
        let id = raw.as_ref().ok().and_then(|r| r.id);
        if verdict == Verdict::Limited {
            self.rate_limited(id);
            return None;
        }
        let raw = match raw {
            Ok(raw) => raw,
            Err(e) => {
                let bad = &self.shared.metrics.bad_input;
                bad.record(metrics::BadInput::Json, &e);
                self.error(ErrorCode::ParseError, &format!("invalid JSON: {e}"), None);
                return None;
            }
        };
        let frame = match ClientFrame::from_raw(raw) {
            Ok(f) => f,
            Err(e) => {
                let bad = &self.shared.metrics.bad_input;
                bad.record(metrics::BadInput::InvalidMessage, &e);
                self.error(e.code, &e.message, id);
                return None;
            }
        };
        let cfg = &shared.config;
        let hub = &shared.hub;
        match frame {
            ClientFrame::Auth { .. } => {
                self.error(ErrorCode::InvalidMessage, "already authenticated", id);
            }
            ClientFrame::Join { room } => {
                if room.is_empty() || room.len() > cfg.max_room_len {
                    let msg = format!("room name must be 1 to {} bytes", cfg.max_room_len);
                    self.error(ErrorCode::InvalidMessage, &msg, id);
                } else if !self.identity.as_ref().is_some_and(|i| i.acl.allows(&room)) {
                    self.error(
                        ErrorCode::Forbidden,
                        "your token does not allow this room",
                        id,
                    );
                } else if self.find_room(&room).is_none()
                    && self.rooms.len() >= cfg.max_rooms_per_conn
                {
                    let msg = format!("at most {} rooms per connection", cfg.max_rooms_per_conn);
                    self.error(ErrorCode::InvalidMessage, &msg, id);
                } else {
                    let (r, _) = hub.join(&self.peer, &user, &room);
                    if self.find_room(&room).is_none() {
                        self.rooms.push(r);
                    }
                }
            }
            ClientFrame::Leave { room } => match self.find_room(&room) {
                Some(i) => {
                    let r = self.rooms.swap_remove(i);
                    hub.leave(&self.peer, &user, &r, true);
                }
                None => self.not_in_room(&room, id),
            },
            ClientFrame::Chat { room, id, text, ts } => {
                if text.len() > cfg.max_text_len {
                    let msg = format!("text is longer than {} bytes", cfg.max_text_len);
                    self.error(ErrorCode::TooLarge, &msg, Some(id));
                } else {
                    match self.find_room(&room) {
                        Some(i) => hub.chat(&self.peer, &user, &self.rooms[i], id, &text, ts),
                        None => self.not_in_room(&room, Some(id)),
                    }
                }
            }
            ClientFrame::Typing { room } => match self.find_room(&room) {
                Some(i) => hub.typing(&self.peer, &user, &self.rooms[i]),
                None => self.not_in_room(&room, id),
            },
            ClientFrame::Resume { room, after } => match self.find_room(&room) {
                Some(i) => hub.resume(&self.peer, &self.rooms[i], after),
                None => self.not_in_room(&room, id),
            },
            ClientFrame::Ping { ts } => {
                // The server's clock lets a client estimate its offset (bench --shard).
                let now_us = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_micros() as u64)
                    .ok();
                hub.reply(&self.peer, encode(&ServerFrame::Pong { ts, now_us }));
            }
        }
        None
    }

    fn rate_limited(&mut self, id: Option<&RawValue>) {
        metrics::inc(&self.shared.metrics.rate_limited_total);
        let bad = &self.shared.metrics.bad_input;
        bad.record(metrics::BadInput::RateLimited, &"frame over the rate limit");
        self.error(
            ErrorCode::RateLimited,
            "rate limit exceeded; frame dropped",
            id,
        );
    }

    fn abusive(&mut self) -> End {
        let m = &self.shared.metrics;
        metrics::inc(&m.rate_limited_total);
        metrics::inc(&m.rate_limit_closes_total);
        End::close(close_code::POLICY, "repeated rate limit violations")
    }

    fn handle_auth(&mut self, data: &[u8]) -> Option<End> {
        let token = match ClientFrame::parse(data) {
            Ok(ClientFrame::Auth { token }) => token,
            Ok(_) => return Some(self.auth_failed("the first frame must be an `auth` frame")),
            Err(e) => {
                return Some(
                    self.auth_failed(&format!("the first frame must be an `auth` frame: {e}")),
                )
            }
        };
        let Some(verifier) = &self.shared.verifier else {
            return Some(self.auth_failed("auth is not enabled"));
        };
        match verifier.verify(&token) {
            Ok(claims) => {
                self.authenticated(Identity {
                    user: Arc::from(claims.sub),
                    acl: RoomAcl::from_claims(claims.rooms),
                });
                None
            }
            Err(e) => Some(self.auth_failed(&e.0)),
        }
    }

    pub(super) fn auth_failed(&mut self, why: &str) -> End {
        metrics::inc(&self.shared.metrics.auth_failures_total);
        let bad = &self.shared.metrics.bad_input;
        bad.record(metrics::BadInput::Auth, &why);
        self.error(ErrorCode::Unauthorized, why, None);
        End::close(close_code::POLICY, why.to_owned())
    }

    fn find_room(&self, name: &str) -> Option<usize> {
        self.rooms.iter().position(|r| *r.name == *name)
    }

    fn not_in_room(&mut self, room: &str, id: Option<&RawValue>) {
        self.error(ErrorCode::NotInRoom, &format!("join `{room}` first"), id);
    }

    /// Sends an error frame. `id` is echoed only when it is a short scalar:
    /// an error must never reflect arbitrary (huge, nested) input back.
    pub(super) fn error(&mut self, code: ErrorCode, message: &str, id: Option<&RawValue>) {
        metrics::inc(&self.shared.metrics.error_frames_total);
        let id = id.filter(|v| wire::protocol::echoable_id(v));
        let frame = encode(&ServerFrame::Error {
            code,
            message: message.into(),
            id,
        });
        self.shared.hub.reply(&self.peer, frame);
    }
}

/// Echoes a client's close code when it is one a server may send back.
fn echo_code(code: u16) -> u16 {
    match code {
        1000..=1003 | 1007..=1014 | 3000..=4999 => code,
        _ => close_code::PROTOCOL_ERROR,
    }
}
