//! `levibot_fuzzing::exchange_info::exchange_info` (see its doc).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| levibot_fuzzing::exchange_info::exchange_info(data));
