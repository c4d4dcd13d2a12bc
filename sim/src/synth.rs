//! `venue-sim synth`: a seeded recording in the corpus's capture format, so that tests,
//! benchmarks and the demo have market data without the real Binance recordings beside the
//! repository. The committed copy lives in `testdata/binance-spot-synthetic/` (see its
//! README.md); `sim/tests/testdata.rs` regenerates it and compares byte for byte.
//!
//! It writes the three files a [`Recording`](levibot_gateway::capture::Recording) reads, under
//! the real corpus's names:
//!
//! ```text
//! BINANCE.0         https://api.binance.com/api/v3/exchangeInfo -> <epoch>: {exchangeInfo}
//! BINANCE.http.0.0  https://api.binance.com/api/v3/depth?symbol=S&limit=1000 -> <epoch>: {snapshot}
//! BINANCE.ws.1.0    wss://stream.binance.com:9443/stream?streams=... <-> <epoch>
//!                   <epoch>: {"stream":"nknusdt@depth@100ms","data":{...}}   (one message a line)
//! ```
//!
//! Each streamed symbol is the engine's [`SyntheticSource`] (a random walk with `depthUpdate`,
//! `bookTicker` and `aggTrade` messages whose update ids follow Binance's U/u rule). The symbols
//! are interleaved by a seeded draw. As on the real venue, each snapshot is taken after its
//! stream opened: the capture starts with diffs the snapshot already holds, which a feed must
//! drop, and the first diff after it straddles `lastUpdateId + 1`.

use std::fmt::Write as _;
use std::path::Path;

use levibot_gateway::instrument::{
    ExchangeInfoSymbol, Instrument, exchange_info_json_of, parse_exchange_info,
};
use levibot_gateway::source::{MessageSource, Polled, SyntheticSource};
use levibot_shm::TscCalibration;

/// File names, as in the real corpus.
pub const EXCHANGE_INFO_FILE: &str = "BINANCE.0";
pub const SNAPSHOTS_FILE: &str = "BINANCE.http.0.0";
pub const STREAM_FILE: &str = "BINANCE.ws.1.0";

/// The seed and length of the committed recording.
pub const TESTDATA_SEED: u64 = 20_261_206;
pub const TESTDATA_MESSAGES: usize = 1_200;
/// Longest recording `synth` writes (a limit on everything).
pub const SYNTH_MESSAGES_MAX: usize = 10_000_000;

/// Capture time of the exchangeInfo answer; the stream opens right after it.
const START_EPOCH_MS: u64 = 1_700_000_000_000;

/// A symbol of the synthetic venue. Filters follow Binance Spot's for the same pairs.
struct SymbolSpec {
    symbol: &'static str,
    base: &'static str,
    quote: &'static str,
    tick_size: &'static str,
    step_size: &'static str,
    min_qty: &'static str,
    min_notional: &'static str,
    max_price: &'static str,
    max_qty: &'static str,
    /// Decimals of the base asset (quantities) and the quote asset (prices).
    base_precision: u8,
    quote_precision: u8,
    /// Starting mid in ticks (venue-sim's fair price), and how often the symbol is drawn into the
    /// recording (0: listed, not streamed).
    mid_ticks: i64,
    weight: u64,
}

const SYMBOLS: [SymbolSpec; 8] = [
    SymbolSpec {
        symbol: "NKNUSDT",
        base: "NKN",
        quote: "USDT",
        tick_size: "0.00010000",
        step_size: "1.00000000",
        min_qty: "1.00000000",
        min_notional: "10.00000000",
        max_price: "1000.00000000",
        max_qty: "9000000.00000000",
        base_precision: 8,
        quote_precision: 8,
        mid_ticks: 3_500,
        weight: 4,
    },
    SymbolSpec {
        symbol: "BLZETH",
        base: "BLZ",
        quote: "ETH",
        tick_size: "0.00000001",
        step_size: "1.00000000",
        min_qty: "1.00000000",
        min_notional: "0.00500000",
        max_price: "1000.00000000",
        max_qty: "90000000.00000000",
        base_precision: 8,
        quote_precision: 8,
        mid_ticks: 5_430,
        weight: 2,
    },
    SymbolSpec {
        symbol: "LRCBTC",
        base: "LRC",
        quote: "BTC",
        tick_size: "0.00000001",
        step_size: "1.00000000",
        min_qty: "1.00000000",
        min_notional: "0.00010000",
        max_price: "1000.00000000",
        max_qty: "90000000.00000000",
        base_precision: 8,
        quote_precision: 8,
        mid_ticks: 913,
        weight: 1,
    },
    SymbolSpec {
        symbol: "RUNEEUR",
        base: "RUNE",
        quote: "EUR",
        tick_size: "0.00100000",
        step_size: "0.10000000",
        min_qty: "0.10000000",
        min_notional: "10.00000000",
        max_price: "10000.00000000",
        max_qty: "9222449.00000000",
        base_precision: 8,
        quote_precision: 8,
        mid_ticks: 8_900,
        weight: 2,
    },
    SymbolSpec {
        symbol: "BTCUSDT",
        base: "BTC",
        quote: "USDT",
        tick_size: "0.01000000",
        step_size: "0.00001000",
        min_qty: "0.00001000",
        min_notional: "10.00000000",
        max_price: "1000000.00000000",
        max_qty: "9000.00000000",
        base_precision: 8,
        quote_precision: 8,
        mid_ticks: 3_700_000,
        weight: 0,
    },
    SymbolSpec {
        symbol: "ETHUSDT",
        base: "ETH",
        quote: "USDT",
        tick_size: "0.01000000",
        step_size: "0.00010000",
        min_qty: "0.00010000",
        min_notional: "10.00000000",
        max_price: "1000000.00000000",
        max_qty: "9000.00000000",
        base_precision: 8,
        quote_precision: 8,
        mid_ticks: 200_000,
        weight: 0,
    },
    // Assets with 2 decimals, as on Binance: quantities (SHIB) and prices (IDRT).
    SymbolSpec {
        symbol: "SHIBUSDT",
        base: "SHIB",
        quote: "USDT",
        tick_size: "0.00000001",
        step_size: "1.00",
        min_qty: "1.00",
        min_notional: "10.00000000",
        max_price: "1000.00000000",
        max_qty: "46116860414.00",
        base_precision: 2,
        quote_precision: 8,
        mid_ticks: 2_500,
        weight: 0,
    },
    SymbolSpec {
        symbol: "BNBIDRT",
        base: "BNB",
        quote: "IDRT",
        tick_size: "1.00",
        step_size: "0.00100000",
        min_qty: "0.00100000",
        min_notional: "20000.00",
        max_price: "100000000.00",
        max_qty: "100000.00000000",
        base_precision: 8,
        quote_precision: 2,
        mid_ticks: 6_000_000,
        weight: 0,
    },
];

/// The synthetic recording's starting mid of `symbol`, in ticks (venue-sim's fair price).
pub fn mid_ticks(symbol: &str) -> Option<i64> {
    SYMBOLS
        .iter()
        .find(|s| s.symbol == symbol)
        .map(|s| s.mid_ticks)
}

/// A recording that could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    #[error("--messages {0}: must be between 1 and {SYNTH_MESSAGES_MAX}")]
    Messages(usize),
    #[error("the synthetic exchangeInfo does not load: {0}")]
    ExchangeInfo(#[from] levibot_gateway::instrument::InstrumentError),
    #[error(transparent)]
    Source(#[from] levibot_gateway::source::SyntheticError),
    #[error("writing {path}: {source}")]
    Write {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// The three files' contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SynthRecording {
    pub exchange_info: String,
    pub snapshots: String,
    pub stream: String,
}

/// The synthetic venue's exchangeInfo, bare JSON (what `GET /api/v3/exchangeInfo` answers),
/// with Binance Spot's rate limits.
pub fn exchange_info_json() -> String {
    let symbols = SYMBOLS.iter().map(|s| ExchangeInfoSymbol {
        symbol: s.symbol.into(),
        status: "TRADING".into(),
        base_asset: s.base.into(),
        quote_asset: s.quote.into(),
        base_precision: s.base_precision,
        quote_precision: s.quote_precision,
        tick_size: s.tick_size.into(),
        min_price: s.tick_size.into(),
        max_price: s.max_price.into(),
        step_size: s.step_size.into(),
        min_qty: s.min_qty.into(),
        max_qty: s.max_qty.into(),
        min_notional: s.min_notional.into(),
    });
    exchange_info_json_of(symbols, Some(START_EPOCH_MS))
}

/// The synthetic venue's instruments (what [`exchange_info_json`] loads to).
pub fn instruments() -> Result<Vec<Instrument>, SynthError> {
    Ok(parse_exchange_info(exchange_info_json().as_bytes())?)
}

/// How long before its receive time a message was made at the venue (its `E`), ms.
const FEED_LATENCY_MS: u64 = 1;

/// `epoch_ms` as the capture's `<epoch seconds>` (cryptofeed writes a float).
fn epoch(epoch_ms: u64) -> String {
    format!("{}.{:03}", epoch_ms / 1000, epoch_ms % 1000)
}

/// A seeded recording of `messages` stream messages over the streamed symbols.
pub fn generate(seed: u64, messages: usize) -> Result<SynthRecording, SynthError> {
    if messages == 0 || messages > SYNTH_MESSAGES_MAX {
        return Err(SynthError::Messages(messages));
    }
    let all = instruments()?;
    // Pacing is off, so the calibration is never read: a fixed one keeps the output identical.
    let calibration = TscCalibration {
        ticks_per_ns: 1.0,
        tsc_ref: 0,
        unix_ns_ref: 0,
    };
    let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut draw = move || {
        // xorshift64: the draw of symbols and gaps, separate from each source's own walk.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    struct Streamed<'a> {
        instrument: &'a Instrument,
        source: SyntheticSource,
        weight: u64,
        /// Messages before its snapshot is taken (they are in the capture; the feed drops them).
        before_snapshot: u64,
        sent: u64,
    }
    let mut streamed: Vec<Streamed<'_>> = Vec::new();
    for (spec, instrument) in SYMBOLS.iter().zip(&all) {
        if spec.weight == 0 {
            continue;
        }
        let source_seed = seed ^ u64::from(instrument.id + 1).wrapping_mul(0xD1B5_4A32_D192_ED03);
        let source = SyntheticSource::new(
            instrument,
            spec.mid_ticks,
            u64::MAX,
            source_seed,
            None,
            &calibration,
        )?;
        streamed.push(Streamed {
            instrument,
            source,
            weight: spec.weight,
            before_snapshot: 2 + draw() % 5,
            sent: 0,
        });
    }
    let weights: u64 = streamed.iter().map(|s| s.weight).sum();

    let exchange_info = format!(
        "https://api.binance.com/api/v3/exchangeInfo -> {}: {}\n",
        epoch(START_EPOCH_MS),
        exchange_info_json()
    );
    let open_ms = START_EPOCH_MS + 150;
    let streams: Vec<String> = ["depth@100ms", "bookTicker", "aggTrade"]
        .iter()
        .flat_map(|kind| {
            streamed
                .iter()
                .map(move |s| format!("{}@{kind}", s.instrument.symbol.as_str().to_lowercase()))
        })
        .collect();
    let mut stream = format!(
        "wss://stream.binance.com:9443/stream?streams={} <-> {}\n",
        streams.join("/"),
        epoch(open_ms)
    );
    let mut snapshots = String::new();
    let mut now_ms = open_ms;
    for _ in 0..messages {
        now_ms += 1 + draw() % 20;
        let mut pick = draw() % weights;
        let index = streamed
            .iter()
            .position(|s| {
                let hit = pick < s.weight;
                pick = pick.saturating_sub(s.weight);
                hit
            })
            .unwrap_or(0);
        let s = &mut streamed[index];
        // The venue made it a little before it was received, as on a real feed.
        s.source
            .set_event_time_ms(now_ms.saturating_sub(FEED_LATENCY_MS));
        if let Polled::Message { bytes, .. } = s.source.poll(0) {
            // The generator writes ASCII JSON only.
            let text = String::from_utf8_lossy(bytes);
            let _ = writeln!(stream, "{}: {text}", epoch(now_ms));
        }
        s.sent += 1;
        if s.sent == s.before_snapshot {
            snapshots.push_str(&snapshot_line(s.instrument, &s.source, now_ms + 1));
        }
    }
    // A symbol drawn too rarely to reach its snapshot point still gets one, at the end.
    for s in streamed.iter().filter(|s| s.sent < s.before_snapshot) {
        snapshots.push_str(&snapshot_line(s.instrument, &s.source, now_ms + 1));
    }
    Ok(SynthRecording {
        exchange_info,
        snapshots,
        stream,
    })
}

/// The capture line of a REST depth snapshot of a source's current book, taken at `epoch_ms`.
fn snapshot_line(instrument: &Instrument, source: &SyntheticSource, epoch_ms: u64) -> String {
    format!(
        "https://api.binance.com/api/v3/depth?symbol={}&limit=1000 -> {}: {}\n",
        instrument.symbol.as_str(),
        epoch(epoch_ms),
        snapshot_json(instrument, source)
    )
}

/// The REST depth snapshot of a source's current book, as Binance prints it (its key order:
/// `lastUpdateId`, `bids`, `asks`; prices and quantities as strings at the asset precision).
pub fn snapshot_json(instrument: &Instrument, source: &SyntheticSource) -> String {
    let book = source.snapshot();
    let side = |levels: &[levibot_shm::records::Level]| -> String {
        let levels: Vec<String> = levels
            .iter()
            .map(|l| {
                format!(
                    r#"["{}","{}"]"#,
                    instrument.price_scale.to_decimal(l.px),
                    instrument.qty_scale.to_decimal(l.qty)
                )
            })
            .collect();
        levels.join(",")
    };
    format!(
        r#"{{"lastUpdateId":{},"bids":[{}],"asks":[{}]}}"#,
        book.last_update_id,
        side(&book.bids),
        side(&book.asks)
    )
}

/// Writes the recording's three files into `dir` (made if missing).
pub fn write(recording: &SynthRecording, dir: &Path) -> Result<(), SynthError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| SynthError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    for (name, text) in [
        (EXCHANGE_INFO_FILE, &recording.exchange_info),
        (SNAPSHOTS_FILE, &recording.snapshots),
        (STREAM_FILE, &recording.stream),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(io(&path))?;
    }
    Ok(())
}
