//! A small WebSocket implementation (RFC 6455, with RFC 7692 permessage-deflate) shared by the
//! reference server and the load generator.
//!
//! Why not tungstenite: its per-connection read buffer (128 KiB by default,
//! still several KiB when shrunk) dominates memory at 15k+ connections, and
//! server fan-out wants each frame encoded once and shared by every
//! recipient. Interoperability is tested against tokio-tungstenite, Node `ws`
//! and Socket.IO, and conformance with the Autobahn TestSuite in both
//! directions (docs/conformance.md).

pub mod deflate;
pub mod frame;
pub mod handshake;
pub mod io;
pub mod tls;

pub use frame::{
    client_frame, close_code, close_payload, encode_frame, server_frame, CloseFrame, Decoder,
    Message, OpCode, ProtocolError, Role,
};
pub use handshake::{HandshakeError, Request};
pub use io::{Fill, WsIo};
pub use tls::{Counted, TlsIo, Transport};
