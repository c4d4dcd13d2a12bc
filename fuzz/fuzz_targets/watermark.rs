//! `levibot_fuzzing::watermark::watermark` (see its doc).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| levibot_fuzzing::watermark::watermark(data));
