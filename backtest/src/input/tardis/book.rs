//! The `incremental_book_L2` file: rows grouped into Binance depth snapshots and `depthUpdate`
//! messages, with update ids made per symbol (see the parent module's doc).

use std::cmp::Ordering;
use std::path::Path;

use rust_decimal::Decimal;

use super::csv::{self, CsvReader};
use super::{
    DEPTH_LEVELS_MAX, Made, SNAPSHOT_LEVELS_MAX, Symbols, TardisStats, write_level, write_u64,
};
use crate::input::{InputError, InputKind};

/// The columns read, in this order.
const COLUMNS: [&str; 7] = [
    "symbol",
    "timestamp",
    "local_timestamp",
    "is_snapshot",
    "side",
    "price",
    "amount",
];
const SYMBOL: usize = 0;
const TIMESTAMP: usize = 1;
const IS_SNAPSHOT: usize = 3;
const SIDE: usize = 4;
const PRICE: usize = 5;
const AMOUNT: usize = 6;

/// Starting capacity of each side's text in a depth message (about 400 levels; a larger
/// message grows it, up to `DEPTH_LEVELS_MAX` levels).
const DEPTH_TEXT_CAPACITY: usize = 16 * 1024;

/// One row of a symbol read.
#[derive(Clone, Copy, Debug)]
struct Row {
    symbol: usize,
    snapshot: bool,
    timestamp: u64,
    local: u64,
    bid: bool,
    price: Decimal,
    amount: Decimal,
}

impl Row {
    /// Whether `self` continues the group `first` begins: a snapshot of one symbol and one
    /// `timestamp`, or one venue message (one symbol, `timestamp` and `local_timestamp`).
    fn continues(&self, first: &Row) -> bool {
        self.symbol == first.symbol
            && self.snapshot == first.snapshot
            && self.timestamp == first.timestamp
            && (self.snapshot || self.local == first.local)
    }
}

/// The row after the last one used.
enum Ahead {
    /// Not read yet.
    Unread,
    Row(Row),
    End,
}

/// A snapshot level, with its row's place in the snapshot (a repeated price: the last wins).
#[derive(Clone, Copy, Debug)]
struct SnapshotLevel {
    bid: bool,
    price: Decimal,
    amount: Decimal,
    seq: u32,
}

/// Bids first, highest first; then asks, lowest first; rows of one price in file order.
fn snapshot_order(a: &SnapshotLevel, b: &SnapshotLevel) -> Ordering {
    b.bid
        .cmp(&a.bid)
        .then_with(|| match a.bid {
            true => b.price.cmp(&a.price),
            false => a.price.cmp(&b.price),
        })
        .then(a.seq.cmp(&b.seq))
}

pub(super) struct BookStream {
    csv: CsvReader,
    columns: [usize; 7],
    ahead: Ahead,
    /// A depth message's levels, as JSON text; reused.
    bids: Vec<u8>,
    asks: Vec<u8>,
    /// A snapshot's levels; reused, at most `SNAPSHOT_LEVELS_MAX`.
    snapshot: Vec<SnapshotLevel>,
}

impl BookStream {
    pub(super) fn open(path: &Path) -> Result<BookStream, InputError> {
        let (csv, columns) = CsvReader::open(path, COLUMNS)?;
        Ok(BookStream {
            csv,
            columns,
            ahead: Ahead::Unread,
            bids: Vec::with_capacity(DEPTH_TEXT_CAPACITY),
            asks: Vec::with_capacity(DEPTH_TEXT_CAPACITY),
            snapshot: Vec::new(),
        })
    }

    pub(super) fn path(&self) -> &Path {
        self.csv.path()
    }

    #[cfg(test)]
    pub(super) fn buffer_capacity(&self) -> usize {
        self.csv.buffer_capacity()
            + self.bids.capacity()
            + self.asks.capacity()
            + self.snapshot.capacity() * std::mem::size_of::<SnapshotLevel>()
    }

    /// `(local_timestamp, timestamp)` of the next message, `None` at the end.
    pub(super) fn peek(
        &mut self,
        symbols: &mut Symbols,
        stats: &mut TardisStats,
    ) -> Result<Option<(u64, u64)>, InputError> {
        self.fill(symbols, stats)?;
        Ok(match &self.ahead {
            Ahead::Row(row) => Some((row.local, row.timestamp)),
            Ahead::Unread | Ahead::End => None,
        })
    }

    /// Writes the next message into `out` (empty): a snapshot or a depth message.
    pub(super) fn make(
        &mut self,
        symbols: &mut Symbols,
        stats: &mut TardisStats,
        out: &mut Vec<u8>,
    ) -> Result<Option<Made>, InputError> {
        self.fill(symbols, stats)?;
        let Ahead::Row(first) = std::mem::replace(&mut self.ahead, Ahead::Unread) else {
            self.ahead = Ahead::End;
            return Ok(None);
        };
        if first.snapshot {
            self.snapshot(first, symbols, stats, out)?;
        } else {
            self.depth(first, symbols, stats, out)?;
        }
        Ok(Some(Made {
            kind: match first.snapshot {
                true => InputKind::Snapshot,
                false => InputKind::Stream,
            },
            local_us: first.local,
            timestamp_us: first.timestamp,
            symbol: first.symbol,
        }))
    }

    /// Reads rows until one of a symbol read that is used (or the end), into `ahead`.
    fn fill(&mut self, symbols: &mut Symbols, stats: &mut TardisStats) -> Result<(), InputError> {
        while let Ahead::Unread = self.ahead {
            if !self.csv.next_row()? {
                self.ahead = Ahead::End;
                break;
            }
            let csv = &self.csv;
            let field = |column: usize| csv.field(self.columns[column]);
            let symbol = match symbols.find(field(SYMBOL)) {
                Ok(Some(symbol)) => symbol,
                Ok(None) => {
                    stats.rows_other_symbols += 1;
                    continue;
                }
                Err(problem) => return Err(csv.column_error("symbol", problem)),
            };
            let snapshot = csv::parse_bool(field(IS_SNAPSHOT))
                .map_err(|p| csv.column_error("is_snapshot", p))?;
            if !snapshot && !symbols.entries[symbol].book_started {
                stats.rows_before_snapshot += 1;
                continue;
            }
            let bid = match field(SIDE) {
                b"bid" => true,
                b"ask" => false,
                other => {
                    let problem = format!("{} is not bid or ask", csv::shown(other));
                    return Err(csv.column_error("side", problem));
                }
            };
            let row = Row {
                symbol,
                snapshot,
                timestamp: csv::parse_timestamp(field(TIMESTAMP))
                    .map_err(|p| csv.column_error("timestamp", p))?,
                local: csv.local(),
                bid,
                price: csv::parse_decimal(field(PRICE))
                    .map_err(|p| csv.column_error("price", p))?,
                amount: csv::parse_decimal(field(AMOUNT))
                    .map_err(|p| csv.column_error("amount", p))?,
            };
            stats.book_rows += 1;
            self.ahead = Ahead::Row(row);
        }
        Ok(())
    }

    /// The next row if it continues the group `first` begins (taking it), else `None`.
    fn next_in_group(
        &mut self,
        first: &Row,
        symbols: &mut Symbols,
        stats: &mut TardisStats,
    ) -> Result<Option<Row>, InputError> {
        self.fill(symbols, stats)?;
        match &self.ahead {
            Ahead::Row(row) if row.continues(first) => {
                let row = *row;
                self.ahead = Ahead::Unread;
                Ok(Some(row))
            }
            _ => Ok(None),
        }
    }

    /// One depth message from `first` and the rows of its group after it, up to
    /// `DEPTH_LEVELS_MAX` (the rest is left for the next message).
    fn depth(
        &mut self,
        first: Row,
        symbols: &mut Symbols,
        stats: &mut TardisStats,
        out: &mut Vec<u8>,
    ) -> Result<(), InputError> {
        self.bids.clear();
        self.asks.clear();
        let mut levels: u64 = 0;
        let mut row = first;
        loop {
            let side = if row.bid {
                &mut self.bids
            } else {
                &mut self.asks
            };
            write_level(side, side.is_empty(), row.price, row.amount);
            levels += 1;
            if levels as usize == DEPTH_LEVELS_MAX {
                // The group goes on (or not) in the next message, at the same times.
                if self.peek_continues(&first, symbols, stats)? {
                    stats.depth_splits += 1;
                }
                break;
            }
            match self.next_in_group(&first, symbols, stats)? {
                Some(next) => row = next,
                None => break,
            }
        }
        let state = &mut symbols.entries[first.symbol];
        let first_id = state.update_id + 1;
        state.update_id += levels;
        out.extend_from_slice(b"{\"stream\":\"");
        out.extend_from_slice(state.lower.as_bytes());
        out.extend_from_slice(b"@depth@100ms\",\"data\":{\"e\":\"depthUpdate\",\"E\":");
        write_u64(out, first.timestamp / 1000);
        out.extend_from_slice(b",\"s\":\"");
        out.extend_from_slice(state.upper.as_bytes());
        out.extend_from_slice(b"\",\"U\":");
        write_u64(out, first_id);
        out.extend_from_slice(b",\"u\":");
        write_u64(out, state.update_id);
        out.extend_from_slice(b",\"b\":[");
        out.extend_from_slice(&self.bids);
        out.extend_from_slice(b"],\"a\":[");
        out.extend_from_slice(&self.asks);
        out.extend_from_slice(b"]}}");
        stats.depth_messages += 1;
        Ok(())
    }

    /// Whether the next row continues `first`'s group (reading it if need be, not taking it).
    fn peek_continues(
        &mut self,
        first: &Row,
        symbols: &mut Symbols,
        stats: &mut TardisStats,
    ) -> Result<bool, InputError> {
        self.fill(symbols, stats)?;
        Ok(matches!(&self.ahead, Ahead::Row(next) if next.continues(first)))
    }

    /// One snapshot from `first` and the rows of its group after it.
    fn snapshot(
        &mut self,
        first: Row,
        symbols: &mut Symbols,
        stats: &mut TardisStats,
        out: &mut Vec<u8>,
    ) -> Result<(), InputError> {
        // From here on, the symbol's incremental rows are used.
        symbols.entries[first.symbol].book_started = true;
        self.snapshot.clear();
        let mut row = first;
        loop {
            self.snapshot.push(SnapshotLevel {
                bid: row.bid,
                price: row.price,
                amount: row.amount,
                seq: self.snapshot.len() as u32,
            });
            match self.next_in_group(&first, symbols, stats)? {
                Some(_) if self.snapshot.len() == SNAPSHOT_LEVELS_MAX => {
                    return Err(self.csv.error(format!(
                        "a snapshot of more than {SNAPSHOT_LEVELS_MAX} rows (the decoder takes \
                         {SNAPSHOT_LEVELS_MAX} levels)"
                    )));
                }
                Some(next) => row = next,
                None => break,
            }
        }
        self.snapshot.sort_unstable_by(snapshot_order);
        let state = &mut symbols.entries[first.symbol];
        state.update_id += 1;
        out.extend_from_slice(b"{\"lastUpdateId\":");
        write_u64(out, state.update_id);
        out.extend_from_slice(b",\"bids\":[");
        let mut first_of_side = true;
        let mut bids = true;
        for (i, level) in self.snapshot.iter().enumerate() {
            if level.bid != bids {
                out.extend_from_slice(b"],\"asks\":[");
                (bids, first_of_side) = (false, true);
            }
            let repeated = self
                .snapshot
                .get(i + 1)
                .is_some_and(|next| next.bid == level.bid && next.price == level.price);
            if repeated || level.amount.is_zero() {
                stats.snapshot_rows_dropped += 1;
                continue;
            }
            write_level(out, first_of_side, level.price, level.amount);
            first_of_side = false;
        }
        if bids {
            out.extend_from_slice(b"],\"asks\":[");
        }
        out.extend_from_slice(b"]}");
        stats.snapshots += 1;
        Ok(())
    }
}
