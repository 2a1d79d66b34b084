//! The Socket.IO packet decoder and attachment reassembler: never panic,
//! never allocate by an attacker-chosen count. Input: a text packet, then
//! binary frames separated by 0xFF.
#![no_main]

use bench::dialect::socketio::packet::{Packet, Reassembler};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|&b| b == 0xFF);
    let Some(text) = parts.next() else {
        return;
    };
    if let Ok((p, _)) = Packet::decode(text) {
        let _ = p.event_parts();
        let _ = p.ack_args();
        let _ = p.encode();
    }
    let mut r = Reassembler::default();
    if let Ok(None) = r.text(text) {
        for bin in parts {
            match r.binary(Bytes::copy_from_slice(bin)) {
                Ok(Some(p)) => {
                    if let Some(serde_json::Value::Array(items)) = &p.data {
                        for v in items {
                            let _ = p.attachment(v);
                        }
                    }
                    break;
                }
                Ok(None) => {}
                Err(_) => break,
            }
        }
    }
});
