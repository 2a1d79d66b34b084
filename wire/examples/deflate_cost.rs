//! CPU per message of the permessage-deflate codec alone (no sockets): one
//! chat-sized JSON message compressed and inflated, without and with
//! context takeover. Used by `scripts/bench-deflate`; a measuring aid.
//!
//! cargo run --release -p wire --example deflate_cost -- [MESSAGES=20000] [TEXT_BYTES=200]

use std::time::Instant;

use wire::ws::deflate::Agreed;

/// English-like words, different per message.
fn message(i: u64, len: usize) -> String {
    const WORDS: [&str; 16] = [
        "the", "meeting", "moved", "to", "three", "o'clock", "see", "you", "there", "thanks", "ok",
        "sounds", "good", "deploy", "finished", "tomorrow",
    ];
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut text = String::with_capacity(len + 16);
    while text.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        text.push_str(WORDS[(x % 16) as usize]);
        text.push(' ');
    }
    text.truncate(len);
    format!(
        r#"{{"type":"chat","room":"room-7","seq":{i},"from":"u{}","id":"{i}.1.0","text":"{text}","ts":1764800000000000}}"#,
        i % 1000
    )
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let len: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let msgs: Vec<String> = (0..n).map(|i| message(i, len)).collect();
    let payload: usize = msgs.iter().map(String::len).sum();
    println!("{n} messages of ~{} bytes", payload as u64 / n.max(1));
    for takeover in [false, true] {
        let agreed = Agreed {
            server_no_context_takeover: !takeover,
            client_no_context_takeover: !takeover,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        };
        let mut tx = agreed.deflater(true);
        let mut rx = agreed.inflater(false);
        let t0 = Instant::now();
        let compressed: Vec<Vec<u8>> = msgs.iter().map(|m| tx.compress(m.as_bytes())).collect();
        let c_us = t0.elapsed().as_secs_f64() * 1e6 / n as f64;
        let wire: usize = compressed.iter().map(Vec::len).sum();
        let t1 = Instant::now();
        for (c, m) in compressed.iter().zip(&msgs) {
            let out = rx.inflate(c, 1 << 20).expect("inflates");
            assert_eq!(out.len(), m.len());
        }
        let d_us = t1.elapsed().as_secs_f64() * 1e6 / n as f64;
        println!(
            "context takeover {:<5}: compress {c_us:.2} µs/msg, inflate {d_us:.2} µs/msg, payload/wire {:.2}x",
            takeover,
            payload as f64 / wire as f64
        );
    }
}
