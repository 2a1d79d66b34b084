//! Stage one: the scenario file exactly as written, as plain serde structs.
//!
//! Every field is optional so serde only ever reports type errors; missing
//! keys, defaults and cross-field rules belong to `validate`. Unknown keys
//! are caught before serde runs (see `keys`), against the field lists of
//! these very structs ([`field_names`]), so the two can never drift apart.
//! Fields that accept more than one TOML type (`chat_rate = 0` or
//! `"0.5/s"`) are kept as [`toml::Value`] and typed in `validate`.

use serde::de::{self, DeserializeOwned, Visitor};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
pub struct RawScenario {
    pub name: Option<String>,
    pub seed: Option<u64>,
    pub target: Option<RawTarget>,
    pub stages: Option<Vec<RawStage>>,
    pub rooms: Option<RawRooms>,
    pub clients: Option<Vec<RawClient>>,
    /// Read from the document directly (keys are metric paths); kept here
    /// so the shape is complete and `thresholds` is a known key.
    #[allow(dead_code)]
    pub thresholds: Option<toml::Table>,
    pub output: Option<RawOutput>,
    pub run: Option<RawRun>,
    pub faults: Option<Vec<RawFault>>,
}

/// `[[faults]]`: something bench does to the server it started.
#[derive(Debug, Default, Deserialize)]
pub struct RawFault {
    pub at: Option<String>,
    pub action: Option<String>,
    pub restart_after: Option<String>,
    /// `kill_process`: which server process (its index under the supervisor).
    pub process: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawTarget {
    pub url: Option<String>,
    pub protocol: Option<String>,
    pub auth: Option<RawAuth>,
    /// One PID or an array of PIDs.
    pub server_pid: Option<toml::Value>,
    pub server_process: Option<String>,
    pub server: Option<RawServer>,
    /// `deflate = true` or a `[target.deflate]` table.
    pub deflate: Option<RawDeflateValue>,
    /// `[target.socketio]`: checked key by key by
    /// `SocketIoOptions::from_toml`, so kept as TOML here.
    pub socketio: Option<toml::Value>,
    /// `[target.redis]`: a redis-server bench starts for the server's bus.
    pub redis: Option<RawRedis>,
    /// `[target.tls]`: the `wss://` client's options.
    pub tls: Option<RawTls>,
    /// `[target.json]`: checked by `JsonOptions::from_toml`.
    pub json: Option<toml::Value>,
}

/// `[target.redis]`: bench starts a redis-server (its own invocation on a
/// free port, or `command` listening at `url`) before the server.
#[derive(Debug, Default, Deserialize)]
pub struct RawRedis {
    pub command: Option<Vec<String>>,
    pub url: Option<String>,
}

/// `[target.tls]`.
#[derive(Debug, Default, Deserialize)]
pub struct RawTls {
    pub ca_file: Option<String>,
    pub insecure: Option<bool>,
    pub server_name: Option<String>,
    pub alpn: Option<Vec<String>>,
    pub resume: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawServer {
    pub args: Option<Vec<String>>,
    /// Bundled server processes on one port (`bench serve --processes N`).
    pub processes: Option<i64>,
    pub command: Option<Vec<String>>,
    pub url: Option<String>,
    pub ready_timeout: Option<String>,
    /// The bundled server speaks TLS (a throwaway self-signed certificate
    /// unless `args` name one).
    pub tls: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawDeflateValue {
    On(bool),
    Params(RawDeflate),
}

/// permessage-deflate parameters to offer (RFC 7692 §7.1).
#[derive(Debug, Default, Deserialize)]
pub struct RawDeflate {
    pub client_no_context_takeover: Option<bool>,
    pub server_no_context_takeover: Option<bool>,
    pub client_max_window_bits: Option<i64>,
    pub server_max_window_bits: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawAuth {
    pub mode: Option<String>,
    pub secret: Option<String>,
    pub ttl: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawStage {
    pub duration: Option<String>,
    pub target: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawRooms {
    pub count: Option<u32>,
    pub size: Option<u32>,
    pub per_client: Option<u32>,
    pub distribution: Option<String>,
    pub exponent: Option<f64>,
    pub prefix: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawClient {
    pub name: Option<String>,
    pub weight: Option<f64>,
    /// `"0.5/s"`, `"30/m"`, `"1/10s"` or `0`.
    pub chat_rate: Option<toml::Value>,
    /// `64`, `"64"`, `"32..256"`, `"1KiB"`.
    pub message_size: Option<toml::Value>,
    pub typing: Option<bool>,
    /// A duration, or `0` for never.
    pub reconnect_every: Option<toml::Value>,
    pub reconnect_backoff: Option<RawBackoff>,
    pub resume: Option<bool>,
    /// A duration, or `0` for off.
    pub ping_interval: Option<toml::Value>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawBackoff {
    pub initial: Option<String>,
    pub max: Option<String>,
    pub jitter: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawOutput {
    pub dir: Option<String>,
    pub formats: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawRun {
    pub workers: Option<u32>,
    /// Worker processes (`bench run --processes`); absent: automatic.
    pub processes: Option<u32>,
    /// An address, a CIDR block, or a list of them.
    pub source_addresses: Option<toml::Value>,
    /// The older name of `source_addresses` (a list of addresses).
    pub source_addrs: Option<Vec<String>>,
    pub connect_timeout: Option<String>,
    pub drain: Option<String>,
    /// A fraction, a percentage string, or `false` to never abort.
    pub abort_on_connect_failure_share: Option<toml::Value>,
    /// A fraction, a percentage string, or `false` for no bound.
    pub max_not_ready: Option<toml::Value>,
    /// A duration, or `false` for no bound.
    pub max_unreachable: Option<toml::Value>,
    /// `"timerfd"` or `"tokio"`.
    pub pacing: Option<String>,
}

/// The field names serde expects for `T`, read from its derived
/// `Deserialize` impl, so the unknown-key check uses the structs above as
/// its single source of truth.
pub fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut capture = Capture(&[]);
    let _ = T::deserialize(&mut capture);
    capture.0
}

struct Capture(&'static [&'static str]);

impl<'de> de::Deserializer<'de> for &mut Capture {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0 = fields;
        Err(de::Error::custom("captured"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_come_from_the_structs() {
        assert_eq!(field_names::<RawStage>(), &["duration", "target"]);
        assert!(field_names::<RawClient>().contains(&"reconnect_backoff"));
        assert!(field_names::<RawScenario>().contains(&"thresholds"));
    }
}
