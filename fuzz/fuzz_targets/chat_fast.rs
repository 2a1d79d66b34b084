//! The generator's fast path for chat/ack/presence frames against the full
//! serde parse: same events for every frame it takes (differential).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wire::protocol::check_fast_path_against_full_parse(data);
});
