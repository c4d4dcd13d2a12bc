//! Zero allocations while encoding order requests of every kind as FIX messages, and reading
//! them back with the reader, counted by a global allocator on the encoding thread. The
//! encoder is built (the cold path, which allocates) and warmed up before counting.

use levibot_gateway::capture::Recording;
use levibot_gateway::fix::{OrderEncoder, parse_message};
use levibot_gateway::instrument::InstrumentTable;
use levibot_shm::records::{OrderRequest, ord_type, order_kind, side, time_in_force};
use levibot_testkit::allocations;

const ENCODES: u64 = 100_000;

#[test]
fn encoding_orders_does_not_allocate() {
    let table =
        InstrumentTable::new(Recording::testdata().unwrap().instruments().unwrap()).unwrap();
    let instruments = table.len() as u64;
    let mut encoder = OrderEncoder::new("LEVIBOT", "BINANCE", &table).unwrap();
    let kinds = [
        order_kind::NEW,
        order_kind::CANCEL,
        order_kind::REPLACE,
        order_kind::MASS_CANCEL,
    ];
    // 2024-01-01T00:00:00Z; the clock advances 37 µs an order, so seconds and a day go by.
    let start_ns: u64 = 1_704_067_200_000_000_000 - 2_000_000_000;
    let order = |i: u64| OrderRequest {
        client_order_id: 1_000_000 + i,
        orig_client_order_id: 999_999 + i,
        px: (1 + (i * 7_919) % 100_000_000) as i64,
        qty: (1 + (i * 104_729) % 10_000_000_000) as i64,
        instrument_id: if i.is_multiple_of(17) {
            u32::MAX
        } else {
            (i % instruments) as u32
        },
        kind: kinds[(i % 4) as usize],
        side: if i.is_multiple_of(2) {
            side::BUY
        } else {
            side::SELL
        },
        ord_type: if i.is_multiple_of(5) {
            ord_type::MARKET
        } else {
            ord_type::LIMIT
        },
        time_in_force: [time_in_force::GTC, time_in_force::IOC, time_in_force::FOK]
            [(i % 3) as usize],
        ..OrderRequest::default()
    };
    let run = |encoder: &mut OrderEncoder, from: u64, to: u64| {
        let (mut ok, mut bytes) = (0u64, 0usize);
        for i in from..to {
            // A u32::MAX instrument is "all instruments" for mass cancels, an error otherwise:
            // errors must not allocate either.
            match encoder.encode(&order(i), 1 + i, start_ns + i * 37_000) {
                Ok(message) => {
                    let parsed = parse_message(message).expect("reads back");
                    bytes += parsed.fields().count() + message.len();
                    ok += 1;
                }
                Err(e) => assert_eq!(
                    e,
                    levibot_gateway::fix::FixEncodeError::UnknownInstrument {
                        instrument_id: u32::MAX
                    }
                ),
            }
        }
        (ok, bytes)
    };
    run(&mut encoder, 0, 1_000); // warm-up
    let before = allocations();
    let (ok, bytes) = run(&mut encoder, 1_000, 1_000 + ENCODES);
    let counted = allocations() - before;
    assert!(ok > ENCODES * 9 / 10 && bytes > 0);
    assert_eq!(counted, 0, "{counted} allocations in {ENCODES} encodes");
}
