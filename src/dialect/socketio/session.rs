//! The `socketio` dialect over WebSocket: `/socket.io/?EIO=4&transport=websocket`,
//! one Engine.IO packet per frame, driven by [`SioCore`].

use std::sync::Arc;

use super::core::SioCore;
use super::engineio::request_target;
use super::SocketIoOptions;
use crate::dialect::{Action, DecodeError, Dialect, Event, Incoming, Outbox, Session};

/// Engine.IO v4 + Socket.IO v5, shared by every connection of a run.
#[derive(Debug, Clone, Default)]
pub struct SocketIo {
    opts: Arc<SocketIoOptions>,
}

impl SocketIo {
    pub fn new(opts: SocketIoOptions) -> Self {
        Self {
            opts: Arc::new(opts),
        }
    }

    pub fn options(&self) -> &SocketIoOptions {
        &self.opts
    }
}

impl Dialect for SocketIo {
    fn name(&self) -> &'static str {
        "socketio"
    }

    /// The URL's path is the Engine.IO path (default `/socket.io/`); its
    /// query (e.g. `token=...`) is kept. The namespace is an option, not
    /// part of the path, as in the JavaScript client.
    fn upgrade_target(&self, url_path: &str) -> String {
        let (path, query) = url_path.split_once('?').unwrap_or((url_path, ""));
        request_target(path, query, "websocket", None)
    }

    fn session(&self) -> Box<dyn Session> {
        Box::new(SocketIoSession {
            core: SioCore::new(Arc::clone(&self.opts)),
        })
    }
}

/// Per-connection state: see [`SioCore`].
#[derive(Debug)]
pub struct SocketIoSession {
    pub core: SioCore,
}

impl Session for SocketIoSession {
    /// Nothing to send: Engine.IO servers speak first (the open packet).
    fn on_open(&mut self, _out: &mut Outbox) {}

    fn encode(&mut self, action: &Action<'_>, out: &mut Outbox) {
        self.core.encode(action, out);
    }

    fn decode(
        &mut self,
        msg: Incoming<'_>,
        out: &mut Outbox,
        sink: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), DecodeError> {
        match msg {
            Incoming::Text(t) => self.core.decode_ws(Some(t), None, out, sink),
            Incoming::Binary(b) => self.core.decode_ws(None, Some(b), out, sink),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(s: &mut Box<dyn Session>, msgs: &[Incoming<'_>]) -> (Vec<String>, u32) {
        let mut out = Outbox::new();
        let mut events = Vec::new();
        for m in msgs {
            s.decode(*m, &mut out, &mut |ev| events.push(format!("{ev:?}")))
                .unwrap();
        }
        (events, out.take().1)
    }

    #[test]
    fn binary_event_reassembles_through_the_session() {
        let d = SocketIo::default();
        assert_eq!(
            d.upgrade_target("/io/?token=abc"),
            "/io/?EIO=4&transport=websocket&token=abc"
        );
        let mut s = d.session();
        let (events, sent) = decode_all(
            &mut s,
            &[
                Incoming::Text(br#"0{"sid":"x","upgrades":[],"pingInterval":25000,"pingTimeout":20000}"#),
                Incoming::Text(br#"40{"sid":"y"}"#),
                Incoming::Text(
                    br#"451-["chat",{"room":"r","seq":3,"from":"u","id":"a.1.0","text":{"_placeholder":true,"num":0},"ts":5}]"#,
                ),
                Incoming::Binary(b"payload"),
                Incoming::Text(b"2"),
            ],
        );
        assert_eq!(sent, 2, "CONNECT and the pong");
        assert_eq!(
            events,
            [
                "Replied",
                r#"Welcome { user: "y", instance: None }"#,
                r#"Chat { room: "r", seq: 3, from: "u", id: "a.1.0", ts_us: Some(5) }"#,
                "Replied",
            ]
        );
        assert!(s
            .decode(Incoming::Binary(b"stray"), &mut Outbox::new(), &mut |_| {})
            .is_err());
        assert!(s
            .decode(Incoming::Text(b"4{bad"), &mut Outbox::new(), &mut |_| {})
            .is_err());
    }
}
