//! Room-wide presence and node liveness.
//!
//! - `bench:{ROOM}:presence` (hash user → connections in the room, on any
//!   node) decides when a user comes online or goes offline room-wide;
//!   the event is published on the room's channel, after and in order with
//!   its chats.
//! - `bench:node:ID` is a key with a TTL that a live node refreshes, and
//!   `bench:node:ID:members` (hash `ROOM \n USER` → connections) is what
//!   that node added to presence hashes. Every node checks the registry
//!   `bench:nodes`; a node whose key expired is reaped by one script that
//!   takes its members out of every room (publishing `offline` where a
//!   user's count reaches 0). So a dead node's members leave its rooms
//!   within at most about TTL + TTL/2.
//!
//! The scripts name keys they compute (room keys inside REAP), which a
//! single Redis allows and Redis Cluster would not.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;

use super::script;

/// KEYS[1] presence hash, KEYS[2] node members hash; ARGV[1] user,
/// ARGV[2] +1/-1, ARGV[3] `ROOM\nUSER`, ARGV[4] channel, ARGV[5] the event
/// to publish if the user's room-wide count goes 0→1 or 1→0.
pub const PRESENCE: &str = r#"
local d = tonumber(ARGV[2])
local mine = redis.call('HINCRBY', KEYS[2], ARGV[3], d)
if mine <= 0 then redis.call('HDEL', KEYS[2], ARGV[3]) end
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], d)
if n <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
if (d > 0 and n == 1) or (d < 0 and n <= 0) then
  redis.call('PUBLISH', ARGV[4], ARGV[5])
end
return n
"#;

/// KEYS[1] the dead node's members hash, KEYS[2] the registry; ARGV[1] the
/// node id. Removes every membership the node held; returns how many.
pub const REAP: &str = r#"
local entries = redis.call('HGETALL', KEYS[1])
local removed = 0
for i = 1, #entries, 2 do
  local sep = string.find(entries[i], '\n', 1, true)
  if sep then
    local room = string.sub(entries[i], 1, sep - 1)
    local user = string.sub(entries[i], sep + 1)
    local count = tonumber(entries[i + 1])
    local key = 'bench:{' .. room .. '}:presence'
    local n = redis.call('HINCRBY', key, user, -count)
    if n <= 0 then
      redis.call('HDEL', key, user)
      local ev = cjson.encode({n = ARGV[1], c = 0, u = user})
      redis.call('PUBLISH', 'bench:{' .. room .. '}:chat', 'b1 p off ' .. ev)
    end
    removed = removed + count
  end
end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return removed
"#;

pub const REGISTRY: &str = "bench:nodes";

pub fn node_key(node: &str) -> String {
    format!("bench:node:{node}")
}

pub fn node_members(node: &str) -> String {
    format!("bench:node:{node}:members")
}

pub fn presence_key(room: &str) -> String {
    format!("bench:{{{room}}}:presence")
}

/// Adds `delta` (+1 join, -1 leave) to `user` in `room` room-wide.
pub async fn change(
    conn: &mut MultiplexedConnection,
    node: &str,
    conn_id: u64,
    room: &str,
    user: &str,
    delta: i64,
) -> redis::RedisResult<i64> {
    let event = super::envelope::presence_event(delta > 0, node, conn_id, user);
    redis::Script::new(PRESENCE)
        .key(presence_key(room))
        .key(node_members(node))
        .arg(user)
        .arg(delta)
        .arg(format!("{room}\n{user}"))
        .arg(script::channel(room))
        .arg(event)
        .invoke_async(conn)
        .await
}

/// Refreshes this node's liveness key and reaps expired nodes, forever.
pub async fn liveness(client: redis::Client, node: Arc<str>, ttl: Duration) {
    let ttl_ms = ttl.as_millis().max(1) as u64;
    let mut tick = tokio::time::interval((ttl / 3).max(Duration::from_millis(50)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut conn: Option<MultiplexedConnection> = None;
    loop {
        tick.tick().await;
        if conn.is_none() {
            conn = client.get_multiplexed_async_connection().await.ok();
        }
        let Some(c) = conn.as_mut() else { continue };
        if let Err(e) = beat(c, &node, ttl_ms).await {
            tracing::debug!("bus liveness: {e}");
            conn = None;
        }
    }
}

async fn beat(c: &mut MultiplexedConnection, node: &str, ttl_ms: u64) -> redis::RedisResult<()> {
    let ((), _, others): ((), i64, Vec<String>) = redis::pipe()
        .cmd("SET")
        .arg(node_key(node))
        .arg(1)
        .arg("PX")
        .arg(ttl_ms)
        .cmd("SADD")
        .arg(REGISTRY)
        .arg(node)
        .cmd("SMEMBERS")
        .arg(REGISTRY)
        .query_async(c)
        .await?;
    for other in others.iter().filter(|o| o.as_str() != node) {
        let alive: bool = redis::cmd("EXISTS")
            .arg(node_key(other))
            .query_async(c)
            .await?;
        if !alive {
            let removed: i64 = redis::Script::new(REAP)
                .key(node_members(other))
                .key(REGISTRY)
                .arg(other)
                .invoke_async(c)
                .await?;
            tracing::warn!(node = %other, removed, "bus: reaped a dead node's members");
        }
    }
    Ok(())
}
