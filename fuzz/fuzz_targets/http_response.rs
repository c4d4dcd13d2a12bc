//! `levibot_fuzzing::http_response::http_response` (see its doc).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| levibot_fuzzing::http_response::http_response(data));
