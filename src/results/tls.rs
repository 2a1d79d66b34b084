//! TLS in the results: the `tls` section of results.json (verification
//! off or on, resumed share, bytes on the wire with TLS overhead) and the
//! connect failure reasons of the TLS stage, each with the one line the
//! summary prints for it.

use serde::{Deserialize, Serialize};

use super::Counters;

/// Failure reasons of the TLS stage, as counted in `connections_failed`.
pub mod reason {
    pub const UNKNOWN_CA: &str = "tls_unknown_ca";
    pub const EXPIRED: &str = "tls_expired";
    pub const NAME_MISMATCH: &str = "tls_name_mismatch";
    /// A certificate rejected for another reason than the three above.
    pub const BAD_CERTIFICATE: &str = "tls_bad_certificate";
    /// Anything else in the TLS handshake: an alert, garbage, a stall, a reset.
    pub const HANDSHAKE: &str = "tls_handshake";
    /// The server answered the ClientHello in plaintext (HTTP): no TLS on that port.
    pub const PLAINTEXT_SERVER: &str = "tls_plaintext_server";
    /// A `ws://` client met a TLS port (the server said so, or sent TLS records).
    pub const REQUIRED: &str = "tls_required";
}

/// One line explaining a connect failure reason, where one helps.
pub fn explain(failure: &str) -> Option<&'static str> {
    Some(match failure {
        reason::UNKNOWN_CA => "the server's certificate is not signed by a trusted CA: set [target.tls] ca_file to its CA (PEM), or insecure = true to skip verification",
        reason::EXPIRED => "the server's certificate has expired (or is not valid yet)",
        reason::NAME_MISMATCH => "the server's certificate does not name the host bench connects to: fix the url, or set [target.tls] server_name to a name it carries",
        reason::BAD_CERTIFICATE => "the server's certificate was rejected for another reason: a CA certificate served as the server's own (what `openssl req -x509` makes) is a common one; serve a leaf certificate, or set insecure = true",
        reason::HANDSHAKE => "the TLS handshake failed: an alert, bytes that are not TLS, a reset, or no answer within connect_timeout",
        reason::PLAINTEXT_SERVER => "the server answered the TLS handshake in plaintext: that port does not speak TLS; use ws://",
        reason::REQUIRED => "the server speaks TLS on that port: use a wss:// url",
        _ => return None,
    })
}

/// The `tls` section: present when the target was `wss://`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TlsStats {
    /// `[target.tls] insecure = true`: certificates were NOT verified.
    pub insecure: bool,
    /// `[target.tls] resume`: session resumption was offered.
    pub resume: bool,
    pub connections: u64,
    pub resumed: u64,
    /// `resumed / connections`, `None` before any connection.
    pub resumed_share: Option<f64>,
    /// Raw TCP bytes (TLS records, handshakes) over the WebSocket frame
    /// bytes (`bytes_sent` / `bytes_received`): 1.0 would be no overhead.
    pub wire_ratio_sent: Option<f64>,
    pub wire_ratio_received: Option<f64>,
}

impl TlsStats {
    pub fn from_counters(c: &Counters, insecure: bool, resume: bool) -> Self {
        let ratio = |tls: u64, ws: u64| (ws > 0).then(|| tls as f64 / ws as f64);
        Self {
            insecure,
            resume,
            connections: c.tls_connections,
            resumed: c.tls_resumed,
            resumed_share: (c.tls_connections > 0)
                .then(|| c.tls_resumed as f64 / c.tls_connections as f64),
            wire_ratio_sent: ratio(c.tls_wire_bytes_sent, c.bytes_sent),
            wire_ratio_received: ratio(c.tls_wire_bytes_received, c.bytes_received),
        }
    }
}
