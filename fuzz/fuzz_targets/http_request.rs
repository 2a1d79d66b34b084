//! The server's upgrade-request parser (what `read_request` runs on every
//! buffer): never panics, never claims more bytes than it was given, and
//! the accessors the server calls on a parsed request never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wire::ws::handshake::parse_request;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((req, n))) = parse_request(data) {
        assert!(n <= data.len());
        let _ = req.path();
        let _ = req.query("token");
        let _ = req.query("user");
        let _ = req.websocket_key();
        let _ = req.header("sec-websocket-version");
        // Parsing the same head again (a prefix) gives the same length.
        let again = parse_request(&data[..n]).ok().flatten().map(|(_, m)| m);
        assert_eq!(again, Some(n));
    }
});
