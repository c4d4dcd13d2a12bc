//! `levibot_fuzzing::fix_parse::fix_parse` (see its doc).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| levibot_fuzzing::fix_parse::fix_parse(data));
