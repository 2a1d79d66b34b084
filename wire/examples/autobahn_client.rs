//! Autobahn TestSuite client driver on the shared codec: the client
//! handshake and `WsIo`/`Decoder` exactly as the load generator uses them.
//!
//! ```sh
//! kosoku -m fuzzingserver 127.0.0.1:9001 &
//! cargo run -p wire --example autobahn_client -- ws://127.0.0.1:9001 [--deflate | --deflate-no-takeover]
//! ```
//!
//! `--deflate` offers permessage-deflate (`wire::ws::deflate`, as the
//! generator's `[target] deflate = true` does) for Autobahn's cases 12 and
//! 13; `--deflate-no-takeover` also offers `client_no_context_takeover`.
//!
//! Follows Autobahn's client protocol: `/getCaseCount` (one text message),
//! then `/runCase?case=N&agent=A` for every case (echo every text and
//! binary message, answer pings, answer the close), then `/updateReports`.
//! See docs/conformance.md.

use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpStream;
use wire::ws::deflate::{Deflater, Offer};
use wire::ws::handshake::client_handshake_ext;
use wire::ws::{client_frame, close_payload, Fill, Message, OpCode, Role, WsIo};

const AGENT: &str = "bench-wire";
/// Case 9 sends 16 MiB messages.
const MAX_MESSAGE: usize = 64 * 1024 * 1024;
const READ_CHUNK: usize = 64 * 1024;
/// No case takes anywhere near this; it only bounds a hung case.
const CASE_TIMEOUT: Duration = Duration::from_secs(120);
/// How long to wait for the server to drop TCP after the close handshake.
const CLOSE_WAIT: Duration = Duration::from_secs(3);

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `--deflate-no-takeover` adds `client_no_context_takeover` to the
    // offer: Autobahn's cases 13.2, 13.5 and 13.6 accept only such an offer.
    let deflate = if args.iter().any(|a| a == "--deflate-no-takeover") {
        Some(Offer {
            client_no_context_takeover: true,
            ..Offer::default()
        })
    } else {
        args.iter().any(|a| a == "--deflate").then(Offer::default)
    };
    let url = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .cloned()
        .unwrap_or_else(|| "ws://127.0.0.1:9001".into());
    let Some(host) = url.strip_prefix("ws://").map(|h| h.trim_end_matches('/')) else {
        eprintln!("usage: autobahn_client ws://HOST:PORT");
        std::process::exit(2);
    };
    let count = case_count(host).await?;
    eprintln!("{count} cases");
    for case in 1..=count {
        let target = format!("/runCase?case={case}&agent={AGENT}");
        match tokio::time::timeout(CASE_TIMEOUT, run_case(host, &target, deflate)).await {
            Ok(Ok(())) => {}
            // A failed case is the suite's to judge; keep going.
            Ok(Err(e)) => eprintln!("case {case}: {e}"),
            Err(_) => eprintln!("case {case}: timed out"),
        }
    }
    let (mut io, _) = connect(host, &format!("/updateReports?agent={AGENT}"), None).await?;
    close_and_wait(&mut io, 1000).await;
    eprintln!("reports updated");
    Ok(())
}

/// Connects, offering permessage-deflate when asked; returns the
/// compressor for our messages when the server accepted it.
async fn connect(
    host: &str,
    target: &str,
    deflate: Option<Offer>,
) -> Result<(WsIo, Option<Deflater>), Error> {
    let mut stream = TcpStream::connect(host).await?;
    let _ = stream.set_nodelay(true);
    let offer = deflate.unwrap_or_default();
    let headers = if deflate.is_some() {
        vec![("Sec-WebSocket-Extensions".to_owned(), offer.header_value())]
    } else {
        Vec::new()
    };
    let (leftover, ext) = client_handshake_ext(&mut stream, host, target, &headers).await?;
    let ext: Vec<&str> = ext.iter().map(String::as_str).collect();
    if deflate.is_none() && !ext.is_empty() {
        return Err(format!("server accepted extensions that were not offered: {ext:?}").into());
    }
    let agreed = offer.check_response(&ext)?;
    let mut io = WsIo::new(stream, Role::Client, MAX_MESSAGE, READ_CHUNK, leftover);
    let deflater = agreed.map(|a| {
        io.set_inflater(Some(a.inflater(false)));
        a.deflater(false)
    });
    Ok((io, deflater))
}

/// A data frame, compressed when deflate was agreed.
fn data_frame(deflater: &mut Option<Deflater>, op: OpCode, payload: &[u8]) -> Bytes {
    match deflater {
        Some(d) => d.frame(op, payload, Some(rand::random())),
        None => client_frame(op, payload),
    }
}

async fn case_count(host: &str) -> Result<u32, Error> {
    let (mut io, _) = connect(host, "/getCaseCount", None).await?;
    loop {
        match next(&mut io).await? {
            Some(Message::Text(t)) => {
                let n = std::str::from_utf8(&t)?.trim().parse()?;
                close_and_wait(&mut io, 1000).await;
                return Ok(n);
            }
            Some(_) => {}
            None => return Err("no case count".into()),
        }
    }
}

/// The next message; `None` at EOF.
async fn next(io: &mut WsIo) -> Result<Option<Message>, Error> {
    loop {
        if let Some(m) = io.decode()? {
            return Ok(Some(m));
        }
        match io.fill()? {
            Fill::Data => {}
            Fill::WouldBlock => io.stream().readable().await?,
            Fill::Eof => return Ok(None),
        }
    }
}

/// One case: an echo client until the connection closes.
async fn run_case(host: &str, target: &str, deflate: Option<Offer>) -> Result<(), Error> {
    let (mut io, mut deflater) = connect(host, target, deflate).await?;
    loop {
        loop {
            let msg = match io.decode() {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e) => {
                    // Fail the connection with the codec's code (RFC 6455 §7.1.7).
                    close_and_wait(&mut io, e.close_code()).await;
                    return Ok(());
                }
            };
            match msg {
                Message::Text(p) => io.queue(data_frame(&mut deflater, OpCode::Text, &p)),
                Message::Binary(p) => io.queue(data_frame(&mut deflater, OpCode::Binary, &p)),
                Message::Ping(p) => io.queue(client_frame(OpCode::Pong, &p)),
                Message::Pong(_) => {}
                Message::Close(c) => {
                    let payload = c.map(|c| close_payload(c.code, "")).unwrap_or_default();
                    io.queue(client_frame(OpCode::Close, &payload));
                    let _ = io.flush().await;
                    wait_for_eof(&mut io).await;
                    return Ok(());
                }
            }
            io.flush().await?;
        }
        match io.fill()? {
            Fill::Data => {}
            Fill::WouldBlock => io.stream().readable().await?,
            Fill::Eof => return Ok(()),
        }
    }
}

/// Sends our close, then waits (bounded) for the server's close and its
/// TCP close: the server closes TCP first (RFC 6455 §7.1.1).
async fn close_and_wait(io: &mut WsIo, code: u16) {
    io.queue(client_frame(OpCode::Close, &close_payload(code, "")));
    if io.flush().await.is_err() {
        return;
    }
    wait_for_eof(io).await;
}

/// Reads and drops input until EOF, at most `CLOSE_WAIT`.
async fn wait_for_eof(io: &mut WsIo) {
    let drain = async {
        loop {
            match io.discard() {
                Ok((Fill::Eof, _)) | Err(_) => return,
                Ok((Fill::Data, _)) => {}
                Ok((Fill::WouldBlock, _)) => {
                    if io.stream().readable().await.is_err() {
                        return;
                    }
                }
            }
        }
    };
    let _ = tokio::time::timeout(CLOSE_WAIT, drain).await;
}
