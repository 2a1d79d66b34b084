//! The RFC 6455 decoder, both roles: never panics, respects the message
//! limit and control-frame rules, and yields the same messages however the
//! input is split into reads.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use wire::ws::{Decoder, Message, ProtocolError, Role};

fn run(role: Role, max: usize, data: &[u8], chunk: usize) -> (Vec<Message>, Option<ProtocolError>) {
    let mut d = Decoder::new(role, max);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in data.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match d.decode(&mut buf) {
                Ok(Some(m)) => out.push(m),
                Ok(None) => break,
                Err(e) => return (out, Some(e)),
            }
        }
    }
    (out, None)
}

fuzz_target!(|input: &[u8]| {
    let Some((&ctl, data)) = input.split_first() else {
        return;
    };
    let role = if ctl & 1 == 0 {
        Role::Server
    } else {
        Role::Client
    };
    let max = 128usize << (ctl >> 1 & 7); // 128 B .. 16 KiB
    let chunk = usize::from(ctl >> 4) + 1;
    let whole = run(role, max, data, data.len());
    for m in &whole.0 {
        match m {
            Message::Text(t) => {
                assert!(std::str::from_utf8(t).is_ok());
                assert!(t.len() <= max);
            }
            Message::Binary(b) => assert!(b.len() <= max),
            Message::Ping(p) | Message::Pong(p) => assert!(p.len() <= 125),
            Message::Close(Some(c)) => {
                assert!(wire::ws::frame::close_code_allowed_on_wire(c.code));
                assert!(c.reason.len() <= 123);
            }
            Message::Close(None) => {}
        }
    }
    let split = run(role, max, data, chunk);
    // Splitting may only stop earlier for lack of input, never differ.
    assert_eq!(whole, split);
});
