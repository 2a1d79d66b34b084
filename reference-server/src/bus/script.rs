//! The one Lua script that sequences a chat. Redis runs a script alone
//! (nothing else executes in between), so INCR, the history append and
//! PUBLISH happen as one step: the seq order *is* the publish order and
//! the history order, whichever node sent the chat.

/// KEYS[1] seq counter, KEYS[2] history list; ARGV[1] history length
/// (0 = keep none), ARGV[2] channel, ARGV[3] the JSON body. Returns the seq.
pub const CHAT: &str = r#"
local seq = redis.call('INCR', KEYS[1])
local msg = 'b1 c ' .. seq .. ' ' .. ARGV[3]
local keep = tonumber(ARGV[1])
if keep > 0 then
  redis.call('RPUSH', KEYS[2], msg)
  redis.call('LTRIM', KEYS[2], -keep, -1)
end
redis.call('PUBLISH', ARGV[2], msg)
return seq
"#;

/// Key and channel names of one room. The `{room}` hash tag keeps a room's
/// keys in one slot should this ever run against Redis Cluster.
pub struct Keys {
    pub seq: String,
    pub history: String,
    pub channel: String,
}

pub fn keys(room: &str) -> Keys {
    Keys {
        seq: format!("bench:{{{room}}}:seq"),
        history: format!("bench:{{{room}}}:history"),
        channel: channel(room),
    }
}

pub fn channel(room: &str) -> String {
    format!("bench:{{{room}}}:chat")
}

/// The room a channel name belongs to (None for channels not ours).
pub fn room_of(channel: &str) -> Option<&str> {
    channel.strip_prefix("bench:{")?.strip_suffix("}:chat")
}

#[cfg(test)]
mod tests {
    #[test]
    fn channel_names_round_trip() {
        assert_eq!(super::room_of(&super::channel("a}b")), Some("a}b"));
        assert_eq!(super::room_of("other"), None);
    }
}
