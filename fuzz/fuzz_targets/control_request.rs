//! `levibot_fuzzing::control::control_request` (see its doc).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| levibot_fuzzing::control::control_request(data));
