//! TLS under the WebSocket codec: the TCP stream a [`WsIo`](super::WsIo)
//! reads and writes, either plain or wrapped in a rustls connection.
//!
//! The TLS handshake itself runs through `tokio-rustls` (async, with the
//! caller's timeout); the established connection is then taken apart
//! (`into_inner`) and driven here with rustls's synchronous API over the
//! same non-blocking `try_read`/`try_write` calls plain connections use, so
//! a connection task still waits on one readiness future and never splits
//! the stream. Every `fill` moves all decrypted bytes into the codec's read
//! buffer, so TCP readiness stays the truth about pending input, and the
//! codec's buffer is still released when it empties.
//!
//! Memory: rustls keeps its own per-connection state (record layer keys,
//! a 4 KiB receive buffer that it shrinks back to but never frees, output
//! queues that empty when written); docs/tls.md has the measured figures.

use std::cell::Cell;
use std::io::{self, IoSlice, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

thread_local! {
    /// Raw TCP bytes (received, sent) of TLS connections on this thread,
    /// records and handshakes included: per thread rather than per
    /// connection, so a connection carries no counters and a worker thread
    /// takes its second's worth with [`take_wire_bytes`].
    static WIRE: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

fn count(received: usize, sent: usize) {
    WIRE.with(|w| {
        let (r, s) = w.get();
        w.set((r + received as u64, s + sent as u64));
    });
}

/// TLS wire bytes (received, sent) on this thread since the last call.
pub fn take_wire_bytes() -> (u64, u64) {
    WIRE.with(|w| w.replace((0, 0)))
}

/// A TCP stream that counts its bytes into this thread's TLS tally, for
/// the handshake (which `tokio-rustls` drives through `AsyncRead`/`AsyncWrite`).
#[derive(Debug)]
pub struct Counted(pub TcpStream);

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.0).poll_read(cx, buf);
        count(buf.filled().len() - before, 0);
        r
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.0).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &r {
            count(0, *n);
        }
        r
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.0).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = &r {
            count(0, *n);
        }
        r
    }
    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// The crypto provider both sides use: rustls on *ring*. Deprecated in
/// rustls 0.23.48 because *ring* has no post-quantum key exchange
/// (X25519MLKEM768 needs aws-lc-rs); kept because aws-lc-rs needs a C and
/// CMake build, and on loopback the classical X25519 handshake is what a
/// capacity figure should price. One place, so switching is one line.
/// The first call also installs it as the process default, which libraries
/// that build their own rustls configuration (reqwest, even for plain
/// http) need.
pub fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    static PROVIDER: std::sync::OnceLock<std::sync::Arc<rustls::crypto::CryptoProvider>> =
        std::sync::OnceLock::new();
    PROVIDER
        .get_or_init(|| {
            #[allow(deprecated)]
            let p = rustls::crypto::ring::default_provider();
            // Err: another default was installed first; ours is still used here.
            let _ = p.clone().install_default();
            std::sync::Arc::new(p)
        })
        .clone()
}

/// The body of the plaintext 400 a TLS port sends to a plaintext request,
/// so a `ws://` client can say what went wrong (see `HandshakeError::TlsAnswer`).
pub const TLS_ONLY_BODY: &str = "this port speaks TLS: connect with wss://";

/// Whether the first bytes of a connection start a TLS handshake record.
pub fn looks_like_tls(first: u8) -> bool {
    first == 0x16
}

/// The `wss://`-side state of one connection.
pub struct TlsIo {
    tcp: TcpStream,
    conn: rustls::Connection,
}

impl std::fmt::Debug for TlsIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIo").finish_non_exhaustive()
    }
}

/// The stream under a [`WsIo`](super::WsIo).
#[derive(Debug)]
pub enum Transport {
    Plain(TcpStream),
    // Boxed: plain connections should not pay for rustls's inline state.
    Tls(Box<TlsIo>),
}

impl From<TcpStream> for Transport {
    fn from(s: TcpStream) -> Self {
        Transport::Plain(s)
    }
}

impl From<tokio_rustls::client::TlsStream<Counted>> for Transport {
    fn from(s: tokio_rustls::client::TlsStream<Counted>) -> Self {
        let (tcp, conn) = s.into_inner();
        Transport::tls(tcp.0, rustls::Connection::Client(conn))
    }
}

impl From<tokio_rustls::server::TlsStream<Counted>> for Transport {
    fn from(s: tokio_rustls::server::TlsStream<Counted>) -> Self {
        let (tcp, conn) = s.into_inner();
        Transport::tls(tcp.0, rustls::Connection::Server(conn))
    }
}

/// `std::io::Read`/`Write` over a tokio stream's non-blocking calls (which
/// clear readiness on `WouldBlock`), counting bytes.
struct Sock<'a>(&'a TcpStream);

impl Read for Sock<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.0.try_read(buf)?;
        count(n, 0);
        Ok(n)
    }
}

impl Write for Sock<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.0.try_write(buf)?;
        count(0, n);
        Ok(n)
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let n = self.0.try_write_vectored(bufs)?;
        count(0, n);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What one TLS read produced.
pub(crate) enum TlsRead {
    /// TLS bytes were read (maybe no plaintext yet: a partial record, a ticket).
    Data,
    WouldBlock,
    Eof,
}

impl Transport {
    fn tls(tcp: TcpStream, conn: rustls::Connection) -> Self {
        Transport::Tls(Box::new(TlsIo { tcp, conn }))
    }

    pub fn tcp(&self) -> &TcpStream {
        match self {
            Transport::Plain(s) => s,
            Transport::Tls(t) => &t.tcp,
        }
    }

    pub fn tls_io(&self) -> Option<&TlsIo> {
        match self {
            Transport::Tls(t) => Some(t),
            Transport::Plain(_) => None,
        }
    }
}

impl TlsIo {
    /// The rustls connection (handshake kind, negotiated ALPN, ...).
    pub fn connection(&self) -> &rustls::Connection {
        &self.conn
    }

    /// Plaintext rustls decrypted but nobody read yet (after the
    /// handshake, tokio-rustls may leave some), appended to `out`.
    pub(crate) fn drain_plaintext(&mut self, out: &mut bytes::BytesMut) -> io::Result<usize> {
        let mut total = 0;
        loop {
            let start = out.len();
            out.resize(start + 4096, 0);
            match self.conn.reader().read(&mut out[start..]) {
                Ok(0) => {
                    out.truncate(start);
                    return Ok(total);
                }
                Ok(n) => {
                    out.truncate(start + n);
                    total += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    out.truncate(start);
                    return Ok(total);
                }
                Err(e) => {
                    out.truncate(start);
                    return Err(e);
                }
            }
        }
    }

    /// One non-blocking TLS read: records in, decrypted bytes appended to
    /// `out`. A TLS error sends its alert (best effort) and comes back as
    /// `InvalidData`. Also returns the TLS bytes read.
    pub(crate) fn read(&mut self, out: &mut bytes::BytesMut) -> io::Result<TlsRead> {
        self.read_counted(out).map(|(r, _)| r)
    }

    pub(crate) fn read_counted(
        &mut self,
        out: &mut bytes::BytesMut,
    ) -> io::Result<(TlsRead, usize)> {
        let n = {
            match self.conn.read_tls(&mut Sock(&self.tcp)) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok((TlsRead::WouldBlock, 0))
                }
                Err(e) => return Err(e),
            }
        };
        let state = match self.conn.process_new_packets() {
            Ok(s) => s,
            Err(e) => {
                let _ = self.write_pending();
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
        };
        let closed = state.peer_has_closed();
        let got = self.drain_plaintext(out)?;
        // Anything rustls must answer (a key update, an alert) goes now.
        self.write_pending()?;
        if n == 0 || (closed && got == 0) {
            return Ok((TlsRead::Eof, n));
        }
        Ok((TlsRead::Data, n))
    }

    /// Writes queued TLS records; Ok(false) when the socket is full.
    pub(crate) fn write_pending(&mut self) -> io::Result<bool> {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut Sock(&self.tcp)) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    pub(crate) fn tcp_mut(&mut self) -> &mut TcpStream {
        &mut self.tcp
    }

    /// Encrypts `data` (or its front); returns how many bytes were taken.
    pub(crate) fn encrypt(&mut self, data: &[u8]) -> io::Result<usize> {
        self.conn.writer().write(data)
    }

    /// Whether encrypted records are still waiting for the socket.
    pub(crate) fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Queues close_notify (sent by the next flush).
    pub(crate) fn close_notify(&mut self) {
        self.conn.send_close_notify();
    }
}
