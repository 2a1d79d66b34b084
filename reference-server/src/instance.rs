//! This server process's instance id, sent in every `welcome` so that
//! clients can tell a restarted server (whose rooms' seqs start over) from
//! a reconnect to the same one.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

static ID: OnceLock<String> = OnceLock::new();

/// Fixed for the life of the process; differs between processes (pid and
/// start time in ns), which is all clients compare.
pub fn id() -> &'static str {
    ID.get_or_init(|| {
        let ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        format!("{:x}-{:x}", std::process::id(), ns)
    })
}
