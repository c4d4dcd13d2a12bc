//! `levibot_fuzzing::ws_server::ws_server` (see its doc).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| levibot_fuzzing::ws_server::ws_server(data));
