//! This server process's instance id, sent in every `welcome` so that
//! clients can tell a restarted server (whose rooms' seqs start over) from
//! a reconnect to the same one.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

static ID: OnceLock<String> = OnceLock::new();
/// Set once by [`adopt`] before any client connects.
static ADOPTED: OnceLock<String> = OnceLock::new();

/// Uses `id` instead of this process's own from now on: with `--redis`,
/// the id stored in Redis, shared by every node of the one chat service
/// (a Redis restarted empty gets a new one from the next node to start;
/// its seqs restart anyway, which clients see in `joined.seq`).
pub fn adopt(id: String) {
    let _ = ADOPTED.set(id);
}

/// Fixed for the life of the process; differs between processes (pid and
/// start time in ns), which is all clients compare.
pub fn id() -> &'static str {
    if let Some(id) = ADOPTED.get() {
        return id;
    }
    ID.get_or_init(|| {
        let ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        format!("{:x}-{:x}", std::process::id(), ns)
    })
}
