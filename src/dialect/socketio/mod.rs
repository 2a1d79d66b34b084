//! `protocol = "socketio"`: Engine.IO v4 + Socket.IO v5 clients.
//!
//! - [`engineio`]: Engine.IO packets, the open handshake, polling payloads;
//! - [`packet`]: Socket.IO packets, acks, binary attachments;
//! - options (namespace, auth, event names, payload templates) are part of
//!   the plan and live in [`crate::scenario::socketio`], re-exported here;
//! - templates are filled by the shared `dialect::shapes`;
//! - [`core`]: the transport-independent client state machine;
//! - [`session`]: the [`Dialect`](crate::dialect::Dialect) over WebSocket;
//!
//! The transports (HTTP long polling, and the standalone test client on
//! any transport) touch sockets, so they live in `engine::link`.
//!
//! Heartbeat: in Engine.IO v4 the *server* pings and the client pongs, so a
//! client cannot time that exchange. The pong is sent at once (counted as
//! `Event::Replied`), and `ping_rtt` is measured at the application level:
//! `Action::Ping` emits the `ping` event with an ack whose argument echoes
//! the timestamp, and the ack becomes `Event::Pong`. See `docs/socketio.md`.

pub mod core;
pub mod engineio;
pub mod packet;
pub mod session;

pub use crate::scenario::socketio::{
    EventNames, Fields, OptionError, SocketIoOptions, Templates, Transport,
};
pub use session::{SocketIo, SocketIoSession};
