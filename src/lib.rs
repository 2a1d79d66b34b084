//! `bench`: a load generator and benchmarking harness for real-time
//! WebSocket services. `main.rs` only parses the command line; everything
//! else lives here so tests can drive it in-process.

pub mod exit;
pub mod export;
pub mod results;
pub mod scenario;
