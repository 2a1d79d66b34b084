//! The bundled reference chat server for `bench`, and the pieces it shares
//! with the load generator: the v1 wire protocol and a small WebSocket codec.
//!
//! Server modules: `config` (flags, TOML), `server` (accept loop, shutdown),
//! `http` (routes and upgrade checks), `conn` (one connection's task), `peer`
//! (its bounded outbound queue), `hub` (rooms, presence, history, fan-out),
//! `deflate` (permessage-deflate), `tls` (`--tls-cert`: the TLS step before
//! the HTTP one), `auth`, `ratelimit`, `metrics`, `chaos`
//! (test-only fault injection),
//! `supervise` (`--processes N` on one port), `cluster` (whole-server
//! `/metrics` and `/healthz` under it) and `bus` (rooms across processes
//! and nodes over Redis).

pub mod auth;
pub mod bus;
pub mod chaos;
pub mod cluster;
pub mod config;
pub mod conn;
pub mod deflate;
pub mod http;
pub mod hub;
pub mod instance;
pub mod metrics;
pub mod peer;
pub mod ratelimit;
pub mod server;
pub mod supervise;
pub mod tls;
