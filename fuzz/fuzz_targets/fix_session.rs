//! `levibot_fuzzing::fix_session::fix_session` (see its doc).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| levibot_fuzzing::fix_session::fix_session(data));
