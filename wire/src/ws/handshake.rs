//! HTTP/1.1 upgrade handshake, both sides.
//!
//! The server reads the request head itself (rather than letting a WebSocket
//! library do it) so that one port can answer `/healthz`, `/metrics`, and
//! reject an upgrade with 401/403/503 and a body before any frame is sent.

use base64::Engine as _;
use bytes::BytesMut;
use sha1::{Digest, Sha1};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const MAX_HEAD: usize = 16 * 1024;
const MAX_HEADERS: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("i/o error during handshake: {0}")]
    Io(#[from] std::io::Error),
    #[error("connection closed during handshake")]
    Closed,
    #[error("malformed HTTP: {0}")]
    Malformed(String),
    #[error("HTTP head larger than {MAX_HEAD} bytes")]
    TooLarge,
    #[error("server answered HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("bad Sec-WebSocket-Accept from server")]
    BadAccept,
    /// The server answered a plaintext request with TLS records, or said
    /// in words ([`super::tls::TLS_ONLY_BODY`]) that the port speaks TLS.
    #[error("the server speaks TLS on this port (use wss://)")]
    TlsAnswer,
}

/// A parsed request head. Header names are lower-cased.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path including any query string, e.g. `/ws?token=abc`.
    pub target: String,
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header that may repeat (`Sec-WebSocket-Extensions`).
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// First value of a query parameter (no percent-decoding beyond `%XX`).
    pub fn query(&self, key: &str) -> Option<String> {
        let q = self.target.split_once('?')?.1;
        q.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == key).then(|| percent_decode(v))
        })
    }

    /// The `Sec-WebSocket-Key` when this is a valid upgrade request.
    pub fn websocket_key(&self) -> Option<&str> {
        let upgrade = self.header("upgrade")?;
        let connection = self.header("connection")?;
        let is_upgrade = upgrade.eq_ignore_ascii_case("websocket")
            && connection
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
        (self.method == "GET" && is_upgrade)
            .then(|| self.header("sec-websocket-key"))
            .flatten()
    }
}

fn percent_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = match bytes[i] {
            b'%' if i + 2 < bytes.len() => hex(bytes[i + 1]).zip(hex(bytes[i + 2])),
            _ => None,
        };
        match (decoded, bytes[i]) {
            (Some((hi, lo)), _) => {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
            (None, b'+') => out.push(b' '),
            (None, b) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `Sec-WebSocket-Accept` for a given key.
pub fn accept_key(key: &str) -> String {
    let mut h = Sha1::new();
    h.update(key.as_bytes());
    h.update(GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

/// Reads one request head. Returns the request and any bytes read past it.
pub async fn read_request<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<(Request, BytesMut), HandshakeError> {
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        if stream.read_buf(&mut buf).await? == 0 {
            return Err(HandshakeError::Closed);
        }
        if let Some((request, n)) = parse_request(&buf)? {
            let rest = buf.split_off(n);
            return Ok((request, rest));
        }
    }
}

/// Parses a request head at the start of `buf`: the request and the head's
/// length, or `Ok(None)` while it is incomplete (and under 16 KiB). Pure, so
/// the fuzzer (fuzz/) drives exactly what `read_request` runs.
pub fn parse_request(buf: &[u8]) -> Result<Option<(Request, usize)>, HandshakeError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => {
            let request = Request {
                method: req.method.unwrap_or("").to_owned(),
                target: req.path.unwrap_or("").to_owned(),
                headers: req
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_ascii_lowercase(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect(),
            };
            Ok(Some((request, n)))
        }
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => Ok(None),
        Ok(httparse::Status::Partial) => Err(HandshakeError::TooLarge),
        Err(e) => Err(HandshakeError::Malformed(e.to_string())),
    }
}

/// A parsed response head (client side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseHead {
    /// 101 with the right `Sec-WebSocket-Accept`; frames start at `head_len`.
    Accepted {
        head_len: usize,
        /// Its `Sec-WebSocket-Extensions` values, for the caller to check.
        extensions: Vec<String>,
    },
    /// Any other status; the body (at most 4 KiB is read) follows `head_len`.
    Refused {
        status: u16,
        head_len: usize,
        content_len: usize,
    },
}

/// Parses the server's answer to an upgrade sent with `key`: `Ok(None)`
/// while incomplete. Pure, for `client_handshake` and the fuzzer.
pub fn parse_response(buf: &[u8], key: &str) -> Result<Option<ResponseHead>, HandshakeError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => {
            let status = resp.code.unwrap_or(0);
            let header = |name: &str| {
                resp.headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case(name))
                    .map(|h| h.value)
            };
            if status != 101 {
                let content_len = header("content-length")
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0)
                    .min(4096);
                return Ok(Some(ResponseHead::Refused {
                    status,
                    head_len: n,
                    content_len,
                }));
            }
            if header("sec-websocket-accept") != Some(accept_key(key).as_bytes()) {
                return Err(HandshakeError::BadAccept);
            }
            let extensions = resp
                .headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case("sec-websocket-extensions"))
                .map(|h| String::from_utf8_lossy(h.value).into_owned())
                .collect();
            Ok(Some(ResponseHead::Accepted {
                head_len: n,
                extensions,
            }))
        }
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => Ok(None),
        Ok(httparse::Status::Partial) => Err(HandshakeError::TooLarge),
        Err(e) => Err(HandshakeError::Malformed(e.to_string())),
    }
}

/// The 101 response head for an accepted upgrade.
pub fn switching_protocols(key: &str) -> String {
    switching_protocols_ext(key, None)
}

/// The 101 response head, with a `Sec-WebSocket-Extensions` answer if any.
pub fn switching_protocols_ext(key: &str, extensions: Option<&str>) -> String {
    let ext = extensions
        .map(|e| format!("Sec-WebSocket-Extensions: {e}\r\n"))
        .unwrap_or_default();
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n{ext}\r\n",
        accept_key(key)
    )
}

/// A complete, connection-closing plain HTTP response.
pub fn http_response(status: u16, reason: &str, content_type: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Client side: sends the upgrade request on an already-connected stream and
/// validates the 101 answer. Returns bytes the server sent after the head
/// (a welcome frame may arrive in the same segment).
pub async fn client_handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    host: &str,
    target: &str,
    extra_headers: &[(String, String)],
) -> Result<BytesMut, HandshakeError> {
    let (rest, extensions) = client_handshake_ext(stream, host, target, extra_headers).await?;
    match extensions.first() {
        // Nothing was offered, so nothing may be accepted (RFC 6455 §4.1).
        Some(e) => Err(HandshakeError::Malformed(format!(
            "server accepted extension `{e}` that was not offered"
        ))),
        None => Ok(rest),
    }
}

/// Like [`client_handshake`], but also returns the server's
/// `Sec-WebSocket-Extensions` values for the caller to check against what it
/// offered in `extra_headers`.
pub async fn client_handshake_ext<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    host: &str,
    target: &str,
    extra_headers: &[(String, String)],
) -> Result<(BytesMut, Vec<String>), HandshakeError> {
    let key_bytes: [u8; 16] = rand::random();
    let key = base64::engine::general_purpose::STANDARD.encode(key_bytes);
    let mut req = format!(
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
    );
    for (k, v) in extra_headers {
        req.push_str(k);
        req.push_str(": ");
        req.push_str(v);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).await?;

    let mut buf = BytesMut::with_capacity(512);
    loop {
        if stream.read_buf(&mut buf).await? == 0 {
            return Err(HandshakeError::Closed);
        }
        // A TLS record (alert 0x15, handshake 0x16, version 3.x) where an
        // HTTP head was expected.
        if matches!(buf[..], [0x15 | 0x16, 0x03, ..]) {
            return Err(HandshakeError::TlsAnswer);
        }
        match parse_response(&buf, &key)? {
            None => {}
            Some(ResponseHead::Accepted {
                head_len,
                extensions,
            }) => return Ok((buf.split_off(head_len), extensions)),
            Some(ResponseHead::Refused {
                status,
                head_len,
                content_len,
            }) => {
                let mut body = buf.split_off(head_len);
                while body.len() < content_len {
                    if stream.read_buf(&mut body).await? == 0 {
                        break;
                    }
                }
                let body = String::from_utf8_lossy(&body).trim().to_owned();
                if body == super::tls::TLS_ONLY_BODY {
                    return Err(HandshakeError::TlsAnswer);
                }
                return Err(HandshakeError::Status { status, body });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_matches_rfc_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn query_parsing_decodes_percent_escapes() {
        let r = Request {
            method: "GET".into(),
            target: "/ws?user=a%20b&token=x.y.z".into(),
            headers: vec![],
        };
        assert_eq!(r.path(), "/ws");
        assert_eq!(r.query("user").as_deref(), Some("a b"));
        assert_eq!(r.query("token").as_deref(), Some("x.y.z"));
        assert_eq!(r.query("missing"), None);
    }

    #[test]
    fn heads_parse_incrementally_and_refuse_oversize() {
        let req = b"GET /ws?user=a HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: k\r\n\r\nFRAME";
        let n = req.len() - 5;
        for cut in 0..n {
            assert!(parse_request(&req[..cut]).unwrap().is_none(), "cut {cut}");
        }
        let (r, len) = parse_request(req).unwrap().unwrap();
        assert_eq!((len, r.websocket_key()), (n, Some("k")));
        assert!(matches!(
            parse_request(b"GET / HTTP/1.1\r\nBad Header\r\n\r\n"),
            Err(HandshakeError::Malformed(_))
        ));
        let mut partial = b"GET / HTTP/1.1\r\nX: ".to_vec();
        partial.resize(MAX_HEAD, b'x');
        assert!(matches!(
            parse_request(&partial),
            Err(HandshakeError::TooLarge)
        ));

        let ok = format!(
            "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: {}\r\n\r\n",
            accept_key("k")
        );
        assert_eq!(
            parse_response(ok.as_bytes(), "k").unwrap(),
            Some(ResponseHead::Accepted {
                head_len: ok.len(),
                extensions: Vec::new()
            })
        );
        assert!(matches!(
            parse_response(ok.as_bytes(), "other"),
            Err(HandshakeError::BadAccept)
        ));
        let no = b"HTTP/1.1 503 Busy\r\nContent-Length: 99999\r\n\r\n";
        assert_eq!(
            parse_response(no, "k").unwrap(),
            Some(ResponseHead::Refused {
                status: 503,
                head_len: no.len(),
                content_len: 4096
            })
        );
    }
}
