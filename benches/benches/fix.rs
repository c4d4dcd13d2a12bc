//! Criterion micro-benchmark of the FIX 4.4 order encoder:
//! `cargo bench -p levibot-bench --bench fix`.
//!
//! The encoder holds every instrument of the corpus exchangeInfo. Each iteration encodes one
//! request for NKNUSDT with the next MsgSeqNum and a clock 1 µs later than the previous one (so
//! the timestamp cache sees a new second every million orders, as in a live session):
//!
//! - `fix/encode/new_order_single`: a limit buy, `35=D` (the budget: p50 <= 150 ns);
//! - `fix/encode/order_cancel_request`: `35=F`;
//! - `fix/encode/order_cancel_replace_request`: `35=G`;
//! - `fix/encode/order_mass_cancel_request`: `35=q`, by security;
//! - `fix/parse/new_order_single`: the reader on the encoded NewOrderSingle (framing, checksum,
//!   field syntax, then every field iterated);
//! - `fix/timestamp/{cached,uncached,core_fmt}`: one `YYYYMMDD-HH:MM:SS.sss` timestamp with the
//!   encoder's per-second cache, without it, and with `write!` (the baseline that the
//!   hand-written formatting replaces).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use levibot_gateway::capture::Recording;
use levibot_gateway::fix::{
    OrderEncoder, UTC_TIMESTAMP_LEN, UtcTimestamp, UtcTimestampCache, civil_from_unix_days,
    parse_message,
};
use levibot_gateway::instrument::InstrumentTable;
use levibot_shm::records::{OrderRequest, ord_type, order_kind, side, time_in_force};

/// 2024-02-29T12:34:56Z.
const START_NS: u64 = 1_709_210_096_000_000_000;

fn encoder() -> (OrderEncoder, u32) {
    let recording = Recording::testdata().expect("the corpus");
    let table = InstrumentTable::new(recording.instruments().expect("exchangeInfo")).unwrap();
    let nkn = table.find(b"NKNUSDT").expect("NKNUSDT").id;
    (
        OrderEncoder::new("LEVIBOT", "BINANCE", &table).unwrap(),
        nkn,
    )
}

fn encode(c: &mut Criterion) {
    let (mut encoder, nkn) = encoder();
    let new_order = OrderRequest {
        client_order_id: 1_700_000_000_000,
        instrument_id: nkn,
        kind: order_kind::NEW,
        side: side::BUY,
        ord_type: ord_type::LIMIT,
        time_in_force: time_in_force::GTC,
        px: 35_130_000,
        qty: 10_000_000_000,
        ..OrderRequest::default()
    };
    let requests = [
        ("new_order_single", new_order),
        (
            "order_cancel_request",
            OrderRequest {
                kind: order_kind::CANCEL,
                orig_client_order_id: new_order.client_order_id - 1,
                ..new_order
            },
        ),
        (
            "order_cancel_replace_request",
            OrderRequest {
                kind: order_kind::REPLACE,
                orig_client_order_id: new_order.client_order_id - 1,
                px: 35_140_000,
                ..new_order
            },
        ),
        (
            "order_mass_cancel_request",
            OrderRequest {
                kind: order_kind::MASS_CANCEL,
                ..new_order
            },
        ),
    ];

    let mut group = c.benchmark_group("fix/encode");
    group.throughput(Throughput::Elements(1));
    for (name, request) in requests {
        let mut seq = 1u64;
        let mut order = request;
        group.bench_function(name, |b| {
            b.iter(|| {
                seq += 1;
                order.client_order_id += 1;
                let message = encoder
                    .encode(black_box(&order), seq, START_NS + seq * 1_000)
                    .unwrap();
                black_box(message.len())
            })
        });
    }
    group.finish();

    let message = encoder.encode(&new_order, 1, START_NS).unwrap().to_vec();
    let mut group = c.benchmark_group("fix/parse");
    group.throughput(Throughput::Bytes(message.len() as u64));
    group.bench_function("new_order_single", |b| {
        b.iter(|| {
            let parsed = parse_message(black_box(&message)).unwrap();
            black_box(parsed.fields().fold(0u32, |n, (tag, _)| n ^ tag))
        })
    });
    group.finish();
}

/// The timestamp through `core::fmt`, as a baseline.
fn core_fmt_timestamp(unix_ns: u64, out: &mut [u8; UTC_TIMESTAMP_LEN]) {
    use std::io::Write;
    let ms = unix_ns / 1_000_000;
    let second = ms / 1_000;
    let (year, month, day) = civil_from_unix_days(second / 86_400);
    let second_of_day = second % 86_400;
    write!(
        &mut out[..],
        "{year:04}{month:02}{day:02}-{:02}:{:02}:{:02}.{:03}",
        second_of_day / 3_600,
        second_of_day / 60 % 60,
        second_of_day % 60,
        ms % 1_000
    )
    .expect("21 bytes");
}

fn timestamps(c: &mut Criterion) {
    let mut group = c.benchmark_group("fix/timestamp");
    group.throughput(Throughput::Elements(1));
    let mut ns = START_NS;
    let mut cache = UtcTimestampCache::new();
    group.bench_function("cached", |b| {
        b.iter(|| {
            ns += 1_000;
            black_box(cache.format(black_box(ns)))
        })
    });
    group.bench_function("uncached", |b| {
        b.iter(|| {
            ns += 1_000;
            black_box(UtcTimestamp::from_unix_ns(black_box(ns)))
        })
    });
    let mut out = [0u8; UTC_TIMESTAMP_LEN];
    core_fmt_timestamp(START_NS, &mut out);
    assert_eq!(&out, UtcTimestamp::from_unix_ns(START_NS).as_bytes());
    group.bench_function("core_fmt", |b| {
        b.iter(|| {
            ns += 1_000;
            core_fmt_timestamp(black_box(ns), &mut out);
            black_box(&out);
        })
    });
    group.finish();
}

criterion_group!(benches, encode, timestamps);
criterion_main!(benches);
