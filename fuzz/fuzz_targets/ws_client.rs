//! `levibot_fuzzing::ws_client::ws_client` (see its doc).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| levibot_fuzzing::ws_client::ws_client(data));
