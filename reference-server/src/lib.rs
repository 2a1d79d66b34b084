//! The bundled reference chat server for `bench`, and the pieces it shares
//! with the load generator: the v1 wire protocol and a small WebSocket codec.

pub mod config;
pub mod protocol;
pub mod units;
pub mod ws;
