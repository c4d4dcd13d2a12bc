//! `levibot-backtest export --format hftbacktest`: one symbol of a backtest's input (a capture
//! or Tardis CSV, read as `run` reads it, decoded by the live decoder) as hftbacktest's event
//! array, so that the same data runs on both engines (docs/backtest.md, "Against
//! hftbacktest").
//!
//! What becomes what (hftbacktest's flags; prices and quantities converted from the
//! instrument's integer units to decimals):
//!
//! - a REST depth snapshot: a `DEPTH_CLEAR_EVENT` then one `DEPTH_SNAPSHOT_EVENT` per level
//!   (`BUY_EVENT` bids, `SELL_EVENT` asks), then the depth updates received before it that it
//!   does not already hold;
//! - a depth update: one `DEPTH_EVENT` per level (quantity 0 removes it), kept by Binance's
//!   snapshot-and-diff procedure as the engine's and the venue's books keep it: updates before
//!   the first snapshot wait for it, those the snapshot already holds (`u <= lastUpdateId`)
//!   and stale ones are dropped, and a gap in the update ids clears the book
//!   (`DEPTH_CLEAR_EVENT`) until the next snapshot, as the books do;
//! - a trade (`trade` or `aggTrade`, whichever the symbol shows first, as the simulated venue
//!   follows): a `TRADE_EVENT` with the taker's side (`BUY_EVENT`: the buyer took; Binance's
//!   `m`, buyer is maker, means the seller took: `SELL_EVENT`);
//! - book tickers and other symbols: nothing (hftbacktest's L2 model has no top-of-book feed).
//!
//! Timestamps are ns since the Unix epoch, as hftbacktest's own Binance data is: `local_ts` the
//! receive time, `exch_ts` the venue time `run --feed-latency recorded` gives the simulated
//! venue (Tardis' `timestamp`, else the message's `E`, a trade's `T`, else the receive time;
//! never after the receive time, a gap longer than `--feed-gap-max-ms` cut to it). hftbacktest
//! reads exchange events in file order by `exch_ts` and local events by `local_ts`: an event
//! the two orders agree on is one row with `EXCH_EVENT | LOCAL_EVENT`; one they put apart is
//! written twice, once with each flag, where each order wants it (its own "correct event
//! order"). Memory is bounded by the messages received within the longest feed gap.

pub mod npz;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::path::PathBuf;

use anyhow::{Context, Result};
use levibot_gateway::binance::{DecodeErrorKind, Decoder, MarketEvent};
use levibot_gateway::decimal::Scale;
use levibot_gateway::instrument::{Instrument, InstrumentTable};
use levibot_shm::records::{Level, TRADE_FLAG_BUYER_IS_MAKER};

use crate::input::{InputEvent, InputKind, InputSource, InputSpec};
use npz::{EventRow, EventWriter};

/// hftbacktest's event flags (`hftbacktest.types`).
pub mod flags {
    pub const EXCH_EVENT: u64 = 1 << 31;
    pub const LOCAL_EVENT: u64 = 1 << 30;
    pub const BUY_EVENT: u64 = 1 << 29;
    pub const SELL_EVENT: u64 = 1 << 28;
    pub const DEPTH_EVENT: u64 = 1;
    pub const TRADE_EVENT: u64 = 2;
    pub const DEPTH_CLEAR_EVENT: u64 = 3;
    pub const DEPTH_SNAPSHOT_EVENT: u64 = 4;
}

/// Depth updates kept while a symbol waits for a snapshot; older ones are dropped (counted).
pub const AWAITING_DIFFS_MAX: usize = 10_000;

/// `levibot-backtest export`'s arguments.
#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// The output format (only `hftbacktest`: its event array).
    #[arg(long, value_parser = ["hftbacktest"])]
    pub format: String,
    /// The levibotd config file (its instruments give the symbol's tick, lot and units).
    #[arg(long)]
    pub config: PathBuf,
    /// A capture directory in the corpus's format (stream and REST files).
    #[arg(long, conflicts_with_all = ["tardis_book", "tardis_trades", "journal"])]
    pub capture: Option<PathBuf>,
    /// A LeviBot journal directory (the venue's bytes its feed received).
    #[arg(long, conflicts_with_all = ["tardis_book", "tardis_trades"])]
    pub journal: Option<PathBuf>,
    /// Tardis `incremental_book_L2` CSV (plain or gzip).
    #[arg(long)]
    pub tardis_book: Option<PathBuf>,
    /// Tardis `trades` CSV (plain or gzip).
    #[arg(long)]
    pub tardis_trades: Option<PathBuf>,
    /// The symbol to export (one of the config's instruments).
    #[arg(long)]
    pub symbol: String,
    /// The file to write: `.npz` (hftbacktest's usual), or `.npy`.
    #[arg(long)]
    pub out: PathBuf,
    /// The longest feed gap believed, ms (as `run --feed-gap-max-ms`).
    #[arg(long, default_value_t = 1000)]
    pub feed_gap_max_ms: u64,
}

/// What an export read and wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ExportStats {
    /// Input messages read (every symbol and kind).
    pub messages: u64,
    /// Messages of the symbol that became events.
    pub depth_updates: u64,
    pub snapshots: u64,
    pub trades: u64,
    /// Messages of the symbol not exported.
    pub book_tickers: u64,
    pub trades_other_stream: u64,
    pub stale_updates: u64,
    /// Updates dropped while waiting for a snapshot (over `AWAITING_DIFFS_MAX`, or never
    /// followed by one).
    pub updates_without_snapshot: u64,
    /// Breaks in the update ids (each clears the book until the next snapshot).
    pub gaps: u64,
    /// Messages whose recorded feed gap was longer than the most allowed, and cut.
    pub feed_gaps_cut: u64,
    /// Messages that did not decode (skipped, as the engine skips them).
    pub undecoded: u64,
    /// Rows written, and events written as two rows (exchange and local order disagree).
    pub rows: u64,
    pub split_events: u64,
    pub first_local_ns: u64,
    pub last_local_ns: u64,
}

/// The instrument's grid as hftbacktest takes it, for the strategy on the other side.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ExportedInstrument {
    pub symbol: String,
    pub tick_size: String,
    pub lot_size: String,
    /// One price unit and one quantity unit (the engine's integers), as decimals.
    pub price_unit: String,
    pub qty_unit: String,
    pub tick_units: i64,
    pub lot_units: i64,
}

/// The `export` subcommand: writes the file, prints what it did as one JSON object.
pub fn export_command(args: ExportArgs) -> Result<()> {
    let config = crate::session::read_config(&args.config)?;
    let symbol = args.symbol.to_ascii_uppercase();
    let instrument = config
        .instruments
        .find(symbol.as_bytes())
        .with_context(|| format!("--symbol {symbol}: not one of the config's instruments"))?
        .clone();
    let mut input = InputSpec {
        capture: args.capture.clone(),
        tardis_book: args.tardis_book.clone(),
        tardis_trades: args.tardis_trades.clone(),
        journal: args.journal.clone(),
        decoded: false,
    }
    .open(&[symbol.as_str()])?;
    let mut writer = EventWriter::create(&args.out)?;
    let stats = export_hftbacktest(
        &config.instruments,
        instrument.id,
        input.as_mut(),
        &mut writer,
        args.feed_gap_max_ms.saturating_mul(1_000_000),
    )?;
    writer.finish()?;
    let summary = serde_json::json!({
        "format": "hftbacktest",
        "out": args.out,
        "instrument": exported_instrument(&instrument),
        "stats": stats,
    });
    println!("{summary}");
    Ok(())
}

/// The grid of `i` in decimals.
pub fn exported_instrument(i: &Instrument) -> ExportedInstrument {
    ExportedInstrument {
        symbol: i.symbol.to_string(),
        tick_size: i.tick_size.normalize().to_string(),
        lot_size: i.step_size.normalize().to_string(),
        price_unit: i.price_scale.unit().normalize().to_string(),
        qty_unit: i.qty_scale.unit().normalize().to_string(),
        tick_units: i.tick_units,
        lot_units: i.lot_units,
    }
}

/// `units` of `scale` as the nearest `f64` (one correctly rounded division for scales up to
/// 10^-22 and values up to 2^53 x mantissa).
pub fn to_f64(units: i64, scale: Scale) -> f64 {
    let scaled = units as i128 * scale.mantissa as i128;
    scaled as f64 / 10f64.powi(i32::from(scale.exp))
}

/// Where one message's events stand.
struct Pending {
    seq: u64,
    local_ts: i64,
    exch_ts: i64,
    /// Rows without the EXCH/LOCAL flags and timestamps.
    rows: Vec<EventRow>,
    exch_done: bool,
    local_done: bool,
}

/// The snapshot-and-diff procedure's state for the exported symbol.
enum Sync {
    /// No snapshot yet (or after a gap): updates kept for the next one (`U`, `u`, rows).
    Awaiting(VecDeque<(u64, u64, Vec<EventRow>)>),
    Synced {
        last_u: u64,
        first_after_snapshot: bool,
        /// The snapshot's venue time: updates are applied after it at the venue.
        snapshot_exch_ts: i64,
    },
}

/// Which trade stream the symbol's events follow.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Trades {
    Unknown,
    Trade,
    AggTrade,
}

struct Converter {
    decoder: Decoder,
    instrument_id: u32,
    price_scale: Scale,
    qty_scale: Scale,
    sync: Sync,
    trades: Trades,
    gap_max_ns: u64,
    /// Receive times never go back (as `run` takes them).
    last_recv_ns: u64,
    stats: ExportStats,
}

impl Converter {
    fn level_rows(&self, side: u64, kind: u64, levels: &[Level], rows: &mut Vec<EventRow>) {
        for l in levels {
            rows.push(EventRow {
                ev: kind | side,
                px: to_f64(l.px, self.price_scale),
                qty: to_f64(l.qty, self.qty_scale),
                ..EventRow::default()
            });
        }
    }

    /// The venue time `run --feed-latency recorded` gives a message that says `said_ns`.
    fn venue_ns(&mut self, said_ns: Option<u64>, recv_ns: u64) -> u64 {
        let said = said_ns.filter(|&ns| ns > 0).unwrap_or(recv_ns).min(recv_ns);
        let earliest = recv_ns.saturating_sub(self.gap_max_ns);
        if said < earliest {
            self.stats.feed_gaps_cut += 1;
        }
        said.max(earliest)
    }

    /// The events of one input message, if it has any for the symbol.
    fn convert(&mut self, event: &InputEvent<'_>) -> Option<Pending> {
        self.stats.messages += 1;
        let recv_ns = event.recv_ns.max(self.last_recv_ns);
        self.last_recv_ns = recv_ns;
        let mut rows = Vec::new();
        let exch_ns;
        match event.kind {
            // What a session did to trading is no market data; the export reads raw bytes.
            InputKind::Trading | InputKind::Decoded(_) => return None,
            InputKind::Snapshot => {
                let id = event
                    .symbol
                    .and_then(|s| self.decoder.instruments().find(s.as_bytes()))
                    .map(|i| i.id)?;
                if id != self.instrument_id {
                    return None;
                }
                exch_ns = self.venue_ns(event.exchange_ns, recv_ns);
                let Ok(snapshot) = self.decoder.decode_snapshot(event.bytes, id) else {
                    self.stats.undecoded += 1;
                    return None;
                };
                let last = snapshot.last_update_id;
                let (bids, asks) = (snapshot.bids.to_vec(), snapshot.asks.to_vec());
                self.stats.snapshots += 1;
                rows.push(EventRow {
                    ev: flags::DEPTH_CLEAR_EVENT,
                    ..EventRow::default()
                });
                let snap = flags::DEPTH_SNAPSHOT_EVENT;
                self.level_rows(flags::BUY_EVENT, snap, &bids, &mut rows);
                self.level_rows(flags::SELL_EVENT, snap, &asks, &mut rows);
                // Replay what waited for it, as the books do.
                let waiting = match std::mem::replace(
                    &mut self.sync,
                    Sync::Synced {
                        last_u: last,
                        first_after_snapshot: true,
                        snapshot_exch_ts: exch_ns as i64,
                    },
                ) {
                    Sync::Awaiting(waiting) => waiting,
                    Sync::Synced { .. } => VecDeque::new(),
                };
                let mut waiting = waiting.into_iter();
                while let Some((first, last_u, diff_rows)) = waiting.next() {
                    match self.sequence(first, last_u) {
                        Step::Apply => {
                            self.stats.depth_updates += 1;
                            rows.extend(diff_rows);
                        }
                        Step::Stale => self.stats.stale_updates += 1,
                        Step::Gap => {
                            self.stats.gaps += 1;
                            // The book clears and waits again, from this update on.
                            rows.push(EventRow {
                                ev: flags::DEPTH_CLEAR_EVENT,
                                ..EventRow::default()
                            });
                            let mut left: VecDeque<_> = VecDeque::new();
                            left.push_back((first, last_u, diff_rows));
                            left.extend(waiting.by_ref());
                            self.sync = Sync::Awaiting(left);
                            break;
                        }
                    }
                }
            }
            InputKind::Stream => {
                let decoded = match self.decoder.decode(event.bytes, 0) {
                    Ok(e) => e,
                    // Another symbol's (the decoder knows the config's instruments only).
                    Err(e) if matches!(e.kind, DecodeErrorKind::UnknownSymbol(_)) => {
                        return None;
                    }
                    Err(_) => {
                        self.stats.undecoded += 1;
                        return None;
                    }
                };
                match decoded {
                    MarketEvent::Depth(d) if d.instrument_id == self.instrument_id => {
                        let said = d.event_time_ms.saturating_mul(1_000_000);
                        let (first, last_u) = (d.first_update_id, d.final_update_id);
                        let (bids, asks) = (d.bids.to_vec(), d.asks.to_vec());
                        let said = event.exchange_ns.or(Some(said));
                        exch_ns = self.venue_ns(said, recv_ns);
                        let mut diff_rows = Vec::with_capacity(bids.len() + asks.len());
                        let depth = flags::DEPTH_EVENT;
                        self.level_rows(flags::BUY_EVENT, depth, &bids, &mut diff_rows);
                        self.level_rows(flags::SELL_EVENT, depth, &asks, &mut diff_rows);
                        if let Sync::Awaiting(waiting) = &mut self.sync {
                            if waiting.len() == AWAITING_DIFFS_MAX {
                                waiting.pop_front();
                                self.stats.updates_without_snapshot += 1;
                            }
                            waiting.push_back((first, last_u, diff_rows));
                            return None;
                        }
                        match self.sequence(first, last_u) {
                            Step::Apply => {
                                self.stats.depth_updates += 1;
                                rows = diff_rows;
                            }
                            Step::Stale => {
                                self.stats.stale_updates += 1;
                                return None;
                            }
                            Step::Gap => {
                                self.stats.gaps += 1;
                                rows.push(EventRow {
                                    ev: flags::DEPTH_CLEAR_EVENT,
                                    ..EventRow::default()
                                });
                                self.sync =
                                    Sync::Awaiting(VecDeque::from([(first, last_u, diff_rows)]));
                            }
                        }
                    }
                    MarketEvent::Trade(t) if t.instrument_id == self.instrument_id => {
                        if !self.follows(Trades::Trade) {
                            self.stats.trades_other_stream += 1;
                            return None;
                        }
                        let said = event
                            .exchange_ns
                            .or(Some(t.trade_time_ms.saturating_mul(1_000_000)));
                        exch_ns = self.venue_ns(said, recv_ns);
                        rows.push(self.trade_row(t.px, t.qty, t.flags));
                    }
                    MarketEvent::AggTrade(t) if t.instrument_id == self.instrument_id => {
                        if !self.follows(Trades::AggTrade) {
                            self.stats.trades_other_stream += 1;
                            return None;
                        }
                        let said = event
                            .exchange_ns
                            .or(Some(t.trade_time_ms.saturating_mul(1_000_000)));
                        exch_ns = self.venue_ns(said, recv_ns);
                        rows.push(self.trade_row(t.px, t.qty, t.flags));
                    }
                    MarketEvent::BookTicker(t) if t.instrument_id == self.instrument_id => {
                        self.stats.book_tickers += 1;
                        return None;
                    }
                    _ => return None,
                }
            }
        }
        // A venue time before the snapshot's: the venue's book held the update for it.
        let mut exch_ts = exch_ns as i64;
        if let Sync::Synced {
            snapshot_exch_ts, ..
        } = self.sync
        {
            exch_ts = exch_ts.max(snapshot_exch_ts);
        }
        Some(Pending {
            seq: 0,
            local_ts: recv_ns as i64,
            exch_ts,
            rows,
            exch_done: false,
            local_done: false,
        })
    }

    fn trade_row(&mut self, px: i64, qty: i64, trade_flags: u32) -> EventRow {
        self.stats.trades += 1;
        let side = if trade_flags & TRADE_FLAG_BUYER_IS_MAKER != 0 {
            flags::SELL_EVENT
        } else {
            flags::BUY_EVENT
        };
        EventRow {
            ev: flags::TRADE_EVENT | side,
            px: to_f64(px, self.price_scale),
            qty: to_f64(qty, self.qty_scale),
            ..EventRow::default()
        }
    }

    fn follows(&mut self, stream: Trades) -> bool {
        if self.trades == Trades::Unknown {
            self.trades = stream;
        }
        self.trades == stream
    }

    /// Binance's sequence rule for an update `U..=u` on a synced book.
    fn sequence(&mut self, first: u64, last_u: u64) -> Step {
        let Sync::Synced {
            last_u: applied,
            first_after_snapshot,
            ..
        } = &mut self.sync
        else {
            return Step::Gap;
        };
        if last_u <= *applied {
            return Step::Stale;
        }
        let continues = if *first_after_snapshot {
            first <= *applied + 1
        } else {
            first == *applied + 1
        };
        if !continues {
            return Step::Gap;
        }
        *applied = last_u;
        *first_after_snapshot = false;
        Step::Apply
    }
}

enum Step {
    Apply,
    Stale,
    Gap,
}

/// Writes `instrument_id`'s events from `input` into `out`, in the orders hftbacktest reads.
pub fn export_hftbacktest(
    instruments: &InstrumentTable,
    instrument_id: u32,
    input: &mut dyn InputSource,
    out: &mut EventWriter,
    gap_max_ns: u64,
) -> Result<ExportStats> {
    let instrument = instruments
        .get(instrument_id)
        .context("no such instrument")?;
    let mut conv = Converter {
        decoder: Decoder::new(instruments.clone()),
        instrument_id,
        price_scale: instrument.price_scale,
        qty_scale: instrument.qty_scale,
        sync: Sync::Awaiting(VecDeque::new()),
        trades: Trades::Unknown,
        gap_max_ns,
        last_recv_ns: 0,
        stats: ExportStats::default(),
    };
    // Messages with events, by read (= local) order; `queue[i]` has number `base + i`.
    let mut queue: VecDeque<Pending> = VecDeque::new();
    let mut base = 0u64;
    let mut next_seq = 0u64;
    // Local order's next message (an index into `queue`, counted from `base`).
    let mut local_next = 0u64;
    // Exchange order: (exch_ts, seq) of those not written for the exchange yet.
    let mut exch: BinaryHeap<Reverse<(i64, u64)>> = BinaryHeap::new();
    let mut input_done = false;
    let mut first = true;
    loop {
        // Read ahead while an unread message could still come first in exchange order.
        while !input_done
            && exch.peek().is_none_or(|Reverse((ts, _))| {
                (*ts as u64).saturating_add(gap_max_ns) >= conv.last_recv_ns
            })
        {
            match input.next_event()? {
                Some(event) => {
                    if first {
                        conv.stats.first_local_ns = event.recv_ns;
                        first = false;
                    }
                    if let Some(mut p) = conv.convert(&event) {
                        p.seq = next_seq;
                        next_seq += 1;
                        exch.push(Reverse((p.exch_ts, p.seq)));
                        queue.push_back(p);
                    }
                }
                None => input_done = true,
            }
        }
        let l = queue
            .get((local_next - base) as usize)
            .map(|p| (p.seq, p.local_ts));
        let x = exch.peek().map(|Reverse((ts, seq))| (*ts, *seq));
        let (seq, flag) = match (l, x) {
            (None, None) => break,
            (Some((ls, _)), Some((_, xs))) if ls == xs => {
                (ls, flags::EXCH_EVENT | flags::LOCAL_EVENT)
            }
            (Some((ls, lt)), Some((xt, _))) if lt < xt => (ls, flags::LOCAL_EVENT),
            (Some((ls, _)), None) => (ls, flags::LOCAL_EVENT),
            (_, Some((_, xs))) => (xs, flags::EXCH_EVENT),
        };
        let p = &mut queue[(seq - base) as usize];
        if flag & flags::EXCH_EVENT != 0 {
            exch.pop();
            p.exch_done = true;
        }
        if flag & flags::LOCAL_EVENT != 0 {
            local_next += 1;
            p.local_done = true;
        }
        if flag != flags::EXCH_EVENT | flags::LOCAL_EVENT && p.exch_done != p.local_done {
            conv.stats.split_events += 1;
        }
        for row in &p.rows {
            out.push(&EventRow {
                ev: row.ev | flag,
                exch_ts: p.exch_ts,
                local_ts: p.local_ts,
                ..*row
            })?;
        }
        while queue.front().is_some_and(|p| p.exch_done && p.local_done) {
            queue.pop_front();
            base += 1;
        }
    }
    if let Sync::Awaiting(waiting) = &conv.sync {
        conv.stats.updates_without_snapshot += waiting.len() as u64;
    }
    conv.stats.rows = out.rows();
    conv.stats.last_local_ns = conv.last_recv_ns;
    Ok(conv.stats)
}
