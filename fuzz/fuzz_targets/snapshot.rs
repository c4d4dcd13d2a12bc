//! Any bytes into `Decoder::decode_snapshot`: never a panic; a decoded snapshot has its levels
//! split exactly into bids and asks.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut decoder = common::decoder().lock().unwrap_or_else(|p| p.into_inner());
    for id in 0..2 {
        if let Ok(snapshot) = decoder.decode_snapshot(data, id) {
            assert_eq!(snapshot.instrument_id, id);
            assert!(snapshot.bids.len() + snapshot.asks.len() <= levibot_gateway::binance::LEVELS_PER_MESSAGE_MAX);
        }
    }
});
