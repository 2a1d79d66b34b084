//! The protocol v1 decoders: the server's `ClientFrame::parse` and the
//! generator's `for_each_server_frame`. Never panic; a parsed client frame
//! re-encodes to JSON that parses to the same frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wire::protocol::{for_each_server_frame, ClientFrame};

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = ClientFrame::parse(data) {
        let json = serde_json::to_vec(&frame).expect("encodes");
        let again = ClientFrame::parse(&json).expect("re-encoded frame parses");
        assert_eq!(format!("{frame:?}"), format!("{again:?}"));
    }
    let _ = for_each_server_frame(data, |raw| {
        let _ = raw.kind.as_deref();
    });
});
