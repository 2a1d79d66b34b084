//! Per-connection WebSocket I/O on a raw `TcpStream`, plain or under TLS
//! ([`super::tls`]).
//!
//! Reads are non-blocking (`try_read`) after `readable()`, so a connection
//! task can `select!` on input and on its outbound queue without splitting
//! the stream. The read buffer is released whenever it is empty, so an idle
//! connection holds no buffer at all. Outbound frames are `Bytes` encoded
//! once and possibly shared by many connections; one vectored write drains
//! as much of the queue as the socket takes.

use std::collections::VecDeque;
use std::io::{self, IoSlice};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::Interest;
use tokio::net::TcpStream;

use super::frame::{Decoder, Message, ProtocolError, Role};
use super::tls::{TlsIo, TlsRead, Transport};

/// Most slices passed to one `writev` (Linux IOV_MAX is 1024).
const MAX_IOV: usize = 128;
/// Queued frames are coalesced up to this much plaintext per TLS write, so
/// many small frames share one record's 22-byte overhead.
const TLS_BATCH: usize = 16 * 1024;

#[derive(Debug)]
pub struct WsIo {
    stream: Transport,
    read_chunk: usize,
    rbuf: BytesMut,
    decoder: Decoder,
    out: VecDeque<Bytes>,
    out_bytes: usize,
}

/// Result of one non-blocking read attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum Fill {
    /// Bytes were read; decode again.
    Data,
    /// Nothing more right now; await `readable()`.
    WouldBlock,
    /// The peer closed the TCP stream.
    Eof,
}

impl WsIo {
    /// `leftover` holds bytes already read past the HTTP head. A TLS
    /// stream may hold more decrypted bytes; they are appended to it.
    pub fn new(
        stream: impl Into<Transport>,
        role: Role,
        max_message_size: usize,
        read_chunk: usize,
        mut leftover: BytesMut,
    ) -> Self {
        let mut stream = stream.into();
        if let Transport::Tls(t) = &mut stream {
            // Only an error of the connection itself; the next read reports it.
            let _ = t.drain_plaintext(&mut leftover);
        }
        Self {
            stream,
            read_chunk: read_chunk.max(256),
            rbuf: leftover,
            decoder: Decoder::new(role, max_message_size),
            out: VecDeque::new(),
            out_bytes: 0,
        }
    }

    /// The TLS state, on a `wss://` connection.
    pub fn tls(&self) -> Option<&TlsIo> {
        self.stream.tls_io()
    }

    /// Turns on permessage-deflate for received messages.
    pub fn set_inflater(&mut self, inflater: Option<super::deflate::Inflater>) {
        self.decoder.set_inflater(inflater);
    }

    /// The TCP stream (under TLS, if any): wait on its readiness.
    pub fn stream(&self) -> &TcpStream {
        self.stream.tcp()
    }

    /// Decodes the next buffered message, if a complete one is buffered.
    pub fn decode(&mut self) -> Result<Option<Message>, ProtocolError> {
        if self.rbuf.is_empty() {
            return Ok(None);
        }
        self.decoder.decode(&mut self.rbuf)
    }

    /// Like [`decode`](Self::decode), with the bytes the message took on
    /// the wire (headers, compressed payload, interleaved control frames).
    pub fn decode_sized(&mut self) -> Result<Option<(Message, usize)>, ProtocolError> {
        let before = self.rbuf.len();
        let msg = self.decode()?;
        Ok(msg.map(|m| (m, before - self.rbuf.len())))
    }

    /// One non-blocking read into the buffer.
    pub fn fill(&mut self) -> io::Result<Fill> {
        let stream = match &mut self.stream {
            Transport::Plain(s) => s,
            Transport::Tls(t) => {
                return match t.read(&mut self.rbuf)? {
                    TlsRead::Data => Ok(Fill::Data),
                    TlsRead::Eof => Ok(Fill::Eof),
                    TlsRead::WouldBlock => {
                        self.release_if_empty();
                        Ok(Fill::WouldBlock)
                    }
                };
            }
        };
        if self.rbuf.capacity() - self.rbuf.len() < self.read_chunk / 2 {
            self.rbuf.reserve(self.read_chunk);
        }
        match stream.try_read_buf(&mut self.rbuf) {
            Ok(0) => Ok(Fill::Eof),
            Ok(_) => Ok(Fill::Data),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.release_if_empty();
                Ok(Fill::WouldBlock)
            }
            Err(e) => Err(e),
        }
    }

    /// Like [`fill`](Self::fill), but a short read (less than the free
    /// space) also clears the socket's read readiness, as a `WouldBlock`
    /// would, and reports `drained = true`: on a stream socket a short read
    /// means the kernel buffer is empty, so the next `recv` would only
    /// return EAGAIN, and the caller can skip it (one syscall per wake-up
    /// instead of two). Data that arrives after the read raises readiness
    /// again: tokio clears only the readiness event this read observed.
    pub fn fill_drained(&mut self) -> io::Result<(Fill, bool)> {
        let stream = match &self.stream {
            Transport::Plain(s) => s,
            // rustls reads records into its own buffer: no short-read shortcut.
            Transport::Tls(_) => return Ok((self.fill()?, false)),
        };
        if self.rbuf.capacity() - self.rbuf.len() < self.read_chunk / 2 {
            self.rbuf.reserve(self.read_chunk);
        }
        let spare = self.rbuf.capacity() - self.rbuf.len();
        let rbuf = &mut self.rbuf;
        let mut got = 0usize;
        let r = stream.try_io(Interest::READABLE, || {
            let n = stream.try_read_buf(rbuf)?;
            got = n;
            if n > 0 && n < spare {
                Err(io::ErrorKind::WouldBlock.into())
            } else {
                Ok(n)
            }
        });
        match r {
            Ok(0) => Ok((Fill::Eof, false)),
            Ok(_) => Ok((Fill::Data, false)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && got > 0 => Ok((Fill::Data, true)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.release_if_empty();
                Ok((Fill::WouldBlock, false))
            }
            Err(e) => Err(e),
        }
    }

    /// Bytes read but not yet decoded.
    pub fn buffered_len(&self) -> usize {
        self.rbuf.len()
    }

    /// True when bytes are buffered but not yet decoded (e.g. a frame that
    /// arrived in the same segment as the upgrade request).
    pub fn has_buffered_input(&self) -> bool {
        !self.rbuf.is_empty()
    }

    /// Reads and throws away whatever the peer sent, without buffering it:
    /// after a protocol error nothing more can be decoded, and a closing
    /// connection must keep draining its socket (unread data turns the
    /// eventual close into a RST that destroys our close frame at the peer).
    /// Returns the bytes discarded by this call, or `Fill::Eof`/`WouldBlock`.
    pub fn discard(&mut self) -> io::Result<(Fill, usize)> {
        self.rbuf = BytesMut::new();
        let mut scratch = [0u8; 4096];
        let mut total = 0usize;
        let stream = match &mut self.stream {
            Transport::Plain(s) => s,
            Transport::Tls(t) => {
                let mut sink = BytesMut::new();
                for _ in 0..16 {
                    let (r, n) = t.read_counted(&mut sink)?;
                    total += n;
                    sink.clear();
                    match r {
                        TlsRead::Data => {}
                        TlsRead::Eof => return Ok((Fill::Eof, total)),
                        TlsRead::WouldBlock => return Ok((Fill::WouldBlock, total)),
                    }
                }
                return Ok((Fill::Data, total));
            }
        };
        // Bounded: at most 16 reads (64 KiB) per call, so the caller's byte
        // budget and deadline are checked between calls.
        for _ in 0..16 {
            match stream.try_read(&mut scratch) {
                Ok(0) => return Ok((Fill::Eof, total)),
                Ok(n) => total += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok((Fill::WouldBlock, total))
                }
                Err(e) => return Err(e),
            }
        }
        Ok((Fill::Data, total))
    }

    /// Drops the read buffer when nothing is pending, so idle connections hold none.
    pub fn release_if_empty(&mut self) {
        if self.rbuf.is_empty() && self.rbuf.capacity() > 0 {
            self.rbuf = BytesMut::new();
        }
    }

    pub fn queue(&mut self, frame: Bytes) {
        self.out_bytes += frame.len();
        self.out.push_back(frame);
    }

    /// Bytes queued and not yet written. Under TLS, at most one batch of
    /// already-encrypted records waiting in rustls is not counted; a
    /// record rustls must send by itself counts as one byte.
    pub fn pending_bytes(&self) -> usize {
        match &self.stream {
            Transport::Tls(t) if t.wants_write() => self.out_bytes.max(1),
            _ => self.out_bytes,
        }
    }

    pub fn pending_frames(&self) -> usize {
        self.out.len()
    }

    /// Writes as much queued output as the socket accepts without blocking.
    /// Returns true when the queue is empty afterwards.
    pub fn try_flush(&mut self) -> io::Result<bool> {
        let stream = match &mut self.stream {
            Transport::Plain(s) => s,
            Transport::Tls(t) => {
                loop {
                    if !t.write_pending()? {
                        return Ok(false);
                    }
                    if self.out.is_empty() {
                        break;
                    }
                    let n = encrypt_batch(t, &self.out)?;
                    consume(&mut self.out, &mut self.out_bytes, n);
                }
                if self.out.capacity() > 16 {
                    self.out.shrink_to_fit();
                }
                return Ok(true);
            }
        };
        while !self.out.is_empty() {
            let slices: Vec<IoSlice<'_>> = self
                .out
                .iter()
                .take(MAX_IOV)
                .map(|b| IoSlice::new(b))
                .collect();
            let written = match stream.try_write_vectored(&slices) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            };
            consume(&mut self.out, &mut self.out_bytes, written);
        }
        if self.out.capacity() > 16 {
            self.out.shrink_to_fit();
        }
        Ok(true)
    }

    /// Sends FIN (half-close): the peer reads everything queued before it.
    /// Under TLS, a close_notify goes first.
    pub async fn shutdown_write(&mut self) -> io::Result<()> {
        if let Transport::Tls(t) = &mut self.stream {
            t.close_notify();
            self.flush().await?;
        }
        let tcp = match &mut self.stream {
            Transport::Plain(s) => s,
            Transport::Tls(t) => t.tcp_mut(),
        };
        tokio::io::AsyncWriteExt::shutdown(tcp).await
    }

    /// Writes the whole queue, waiting for the socket as needed.
    pub async fn flush(&mut self) -> io::Result<()> {
        while !self.try_flush()? {
            self.stream().writable().await?;
        }
        Ok(())
    }
}

fn consume(out: &mut VecDeque<Bytes>, out_bytes: &mut usize, mut n: usize) {
    *out_bytes -= n;
    while n > 0 {
        let Some(front) = out.front_mut() else {
            break;
        };
        if front.len() <= n {
            n -= front.len();
            out.pop_front();
        } else {
            front.advance(n);
            n = 0;
        }
    }
}

thread_local! {
    /// Where queued frames are gathered for one TLS write (per thread, so
    /// no connection holds it).
    static TLS_SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Encrypts the front of the queue (up to [`TLS_BATCH`] bytes, gathered
/// into one write); returns the bytes rustls took.
fn encrypt_batch(t: &mut TlsIo, out: &VecDeque<Bytes>) -> io::Result<usize> {
    if let Some(front) = out
        .front()
        .filter(|f| f.len() >= TLS_BATCH || out.len() == 1)
    {
        return t.encrypt(&front[..front.len().min(TLS_BATCH)]);
    }
    TLS_SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        s.clear();
        for b in out {
            let room = TLS_BATCH - s.len();
            if room == 0 {
                break;
            }
            s.extend_from_slice(&b[..b.len().min(room)]);
        }
        t.encrypt(&s)
    })
}
