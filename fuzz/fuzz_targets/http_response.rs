//! The client's upgrade-response parser (what `client_handshake` runs):
//! never panics, never claims more than it was given, caps the body it
//! will wait for.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wire::ws::handshake::{parse_response, ResponseHead};

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fuzz_target!(|data: &[u8]| {
    match parse_response(data, KEY) {
        Ok(Some(ResponseHead::Accepted { head_len, .. })) => assert!(head_len <= data.len()),
        Ok(Some(ResponseHead::Refused {
            status,
            head_len,
            content_len,
        })) => {
            assert!(head_len <= data.len());
            assert!(content_len <= 4096);
            assert_ne!(status, 101);
        }
        Ok(None) | Err(_) => {}
    }
});
