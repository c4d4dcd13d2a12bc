//! Any bytes into `Decoder::decode`: never a panic, and whenever the fast path decodes a message,
//! the general (simd-json) path decodes it to the same event.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut decoder = common::decoder().lock().unwrap_or_else(|p| p.into_inner());
    let fast_before = decoder.stats().fast_path;
    let decoded = format!("{:?}", decoder.decode(data, 1));
    if decoder.stats().fast_path > fast_before {
        let general = format!("{:?}", decoder.decode_general(data, 1));
        assert_eq!(decoded, general, "paths disagree on {:?}", String::from_utf8_lossy(data));
    }
});
