//! Everything that crosses the wire between bench's load generator and its
//! reference server, encoded and decoded in one place so the two sides
//! cannot drift apart:
//!
//! - `protocol`: the v1 chat protocol's frames (JSON over WebSocket text);
//! - `ws`: a small RFC 6455 codec (frames, server and client handshakes,
//!   buffered socket I/O);
//! - `units`: one parser and one renderer for durations and byte sizes.
//!
//! This crate knows nothing of the generator or the server: both depend on
//! it, never the other way round.

pub mod protocol;
pub mod units;
pub mod ws;
