//! Tardis.dev CSV, streamed: the `incremental_book_L2` and `trades` datasets of one venue day,
//! turned into Binance Spot's own bytes (REST depth snapshots and combined-stream
//! `depthUpdate` and `trade` messages), which the live decoder takes.
//!
//! # Input
//!
//! Tardis' "Downloadable CSV files": comma-separated, one header line, no quoting, LF line ends
//! (CRLF is accepted), timestamps in µs since the epoch. Columns are found by their names in the
//! header (extra columns are allowed and ignored):
//!
//! - `incremental_book_L2`: `exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount`;
//!   `side` is `bid` or `ask`, `amount` 0 removes the level, and a run of `is_snapshot` rows
//!   is a whole book that replaces the one before.
//! - `trades`: `exchange,symbol,timestamp,local_timestamp,id,side,price,amount`; `side` is the
//!   taker's: `buy`, `sell` or `unknown`.
//!
//! A file is gzip if it starts with the gzip magic bytes, whatever its name. `exchange` is not
//! checked (the bytes made are Binance Spot's whatever it says).
//!
//! # Output
//!
//! - A run of `is_snapshot=true` rows of one symbol with the same `timestamp` ->
//!   one [`InputKind::Snapshot`] event, `{"lastUpdateId":N,"bids":[["px","qty"],..],"asks":[..]}`,
//!   bids highest first, asks lowest first. Rows of one price on one side: the last one wins.
//!   Rows with amount 0 are left out (a snapshot level needs a quantity).
//! - A run of incremental rows of one symbol with the same `timestamp` and `local_timestamp`
//!   (one venue message, as Tardis says to group them) -> one `<symbol>@depth@100ms`
//!   `depthUpdate`, levels in row order. A run of more than [`DEPTH_LEVELS_MAX`] rows is split
//!   into several messages, with consecutive update ids, at the same times.
//! - A `trades` row -> one `<symbol>@trade` message.
//!
//! Every message is in the field order Binance sends and the decoder's fast path reads
//! (`e`,`E`,`s`,`U`,`u`,`b`,`a`; `e`,`E`,`s`,`t`,`p`,`q`,`T`,`m`,`M`; `lastUpdateId`,`bids`,
//! `asks`), and numbers are written as Binance writes them: at least 8 decimals
//! (`"0.35130000"`), more only if the value has more. Values are exact: Tardis' `1e-05` style
//! is read into a `rust_decimal::Decimal` without a float.
//!
//! Times: `recv_ns` = `local_timestamp` x 1000, `exchange_ns` = `timestamp` x 1000; `E` (and a
//! trade's `T`) = `timestamp` / 1000, in ms.
//!
//! # Decisions
//!
//! - **Update ids.** Tardis has none; they are made per symbol so that Binance's
//!   snapshot-and-diff procedure (`levibot_book::OrderBook`) accepts the sequence. Each symbol
//!   has a counter (starting at 0): a snapshot adds 1 and is `lastUpdateId` = the counter; a
//!   depth message of n rows is `U` = counter + 1, `u` = counter + n (one id per row), and the
//!   counter becomes `u`. So each message's `U` is the previous `u` + 1, and the first after a
//!   snapshot has `U` = `lastUpdateId` + 1.
//! - **Rows before a symbol's first snapshot** are skipped (counted in
//!   [`TardisStats::rows_before_snapshot`]), as Tardis says to: they are updates buffered
//!   before the venue's snapshot, which holds them.
//! - **Trade side.** `m` (buyer is maker) is `true` when the taker sold. `unknown` becomes
//!   `"m":false`, as if the taker bought: Binance's trade has no "unknown", and the decoder's
//!   record keeps one flag. Counted in [`TardisStats::trades_side_unknown`].
//! - **Trade ids.** An `id` of decimal digits that fits u64 is `t`. Any other (empty, a UUID,
//!   as some venues have) is the symbol's previous `t` + 1 (a running counter, from 1), counted
//!   in [`TardisStats::trades_id_counted`].
//! - **Merge.** The two files are merged by `local_timestamp`; on equal `local_timestamp`, the
//!   smaller `timestamp` first (the venue's order); on equal both, the book message before the
//!   trade. Either file's `local_timestamp` going back is an error naming the file and line.
//! - **Symbols.** Compared ignoring case, written upper case in `s` and lower case in the
//!   stream name. An empty list reads every symbol of the files (at most
//!   [`SYMBOLS_MAX`]). A symbol must be 1 to 16 ASCII letters and digits (Binance Spot's).
//!
//! # Errors and memory
//!
//! Every malformed row (wrong column count, a bad number, side or bool, a line over 4,096
//! bytes) is an [`InputError::Format`] naming the file, the line and the
//! column; nothing here panics on input. Rows that are skipped are checked less: those of
//! symbols not read for their column count and `local_timestamp` only, incremental rows before
//! a snapshot for those and `is_snapshot`. After an error, do not read on.
//!
//! Each file has one buffered reader; rows are read one at a time into reused buffers. Only the
//! current group is held: a depth message's levels (at most [`DEPTH_LEVELS_MAX`], then it is
//! split) or a snapshot's (at most [`SNAPSHOT_LEVELS_MAX`]; a larger one is an error naming
//! the row that goes over it), so memory does not grow with the file.

mod book;
mod csv;
mod trades;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use levibot_gateway::binance::{LEVELS_PER_MESSAGE_MAX, MESSAGE_LEN_MAX};
use levibot_gateway::instrument::{INSTRUMENTS_MAX, SYMBOL_LEN_MAX};
use rust_decimal::Decimal;

use super::{InputError, InputEvent, InputKind, InputSource};
use book::BookStream;
use trades::TradeStream;

/// Most levels (bids and asks) in one depth message made from incremental rows; a larger group
/// of rows is split into several messages. The decoder takes [`LEVELS_PER_MESSAGE_MAX`].
pub const DEPTH_LEVELS_MAX: usize = LEVELS_PER_MESSAGE_MAX;
/// Most levels (bids and asks, rows of a repeated price included) in one snapshot; a larger
/// snapshot is an error. The decoder takes [`LEVELS_PER_MESSAGE_MAX`].
pub const SNAPSHOT_LEVELS_MAX: usize = LEVELS_PER_MESSAGE_MAX;
/// Most symbols read when no list is given.
pub const SYMBOLS_MAX: usize = INSTRUMENTS_MAX;

/// Longest a written decimal can be: 29 integer digits, a point and 8 decimals, or `0.` and 28
/// decimals.
const DECIMAL_TEXT_MAX: usize = 38;
/// One level as written: `["px","qty"],`.
const LEVEL_TEXT_MAX: usize = 2 * DECIMAL_TEXT_MAX + 8;
/// Everything of a message but its levels, with room to spare (two symbols, ids, times).
const ENVELOPE_TEXT_MAX: usize = 512;
// A message of the most levels is within what the decoder takes.
const _: () = assert!(ENVELOPE_TEXT_MAX + DEPTH_LEVELS_MAX * LEVEL_TEXT_MAX <= MESSAGE_LEN_MAX);
const _: () = assert!(ENVELOPE_TEXT_MAX + SNAPSHOT_LEVELS_MAX * LEVEL_TEXT_MAX <= MESSAGE_LEN_MAX);

/// What a [`TardisSource`] read, made and left out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TardisStats {
    /// Book rows of the symbols read, used.
    pub book_rows: u64,
    /// Trade rows of the symbols read.
    pub trade_rows: u64,
    /// Rows (of either file) of symbols not read.
    pub rows_other_symbols: u64,
    /// Incremental rows of a symbol before its first snapshot, skipped.
    pub rows_before_snapshot: u64,
    /// Snapshot events made.
    pub snapshots: u64,
    /// Snapshot rows left out: amount 0, or a price given again (the last row wins).
    pub snapshot_rows_dropped: u64,
    /// Depth messages made.
    pub depth_messages: u64,
    /// Of those, messages that continue a group of more than [`DEPTH_LEVELS_MAX`] rows.
    pub depth_splits: u64,
    /// Trade messages made.
    pub trades: u64,
    /// Trades whose side was `unknown` (written `"m":false`).
    pub trades_side_unknown: u64,
    /// Trades whose id was not a u64 (numbered from the previous id).
    pub trades_id_counted: u64,
}

/// One symbol read: its spellings and the counters its messages are numbered by.
struct SymbolState {
    upper: String,
    lower: String,
    /// The last update id given (see the module doc).
    update_id: u64,
    /// A snapshot of it has started: its incremental rows are used from now on.
    book_started: bool,
    /// The last trade id written.
    trade_id: u64,
}

impl SymbolState {
    fn new(symbol: &[u8]) -> Option<SymbolState> {
        let valid = (1..=SYMBOL_LEN_MAX).contains(&symbol.len())
            && symbol.iter().all(u8::is_ascii_alphanumeric);
        let text = std::str::from_utf8(symbol).ok().filter(|_| valid)?;
        Some(SymbolState {
            upper: text.to_ascii_uppercase(),
            lower: text.to_ascii_lowercase(),
            update_id: 0,
            book_started: false,
            trade_id: 0,
        })
    }
}

/// The symbols read, and their state.
struct Symbols {
    entries: Vec<SymbolState>,
    /// No list was given: every symbol is read (and added when first seen).
    all: bool,
    /// Index of the last symbol found (rows come in runs of one symbol).
    last: usize,
}

impl Symbols {
    /// The index of `symbol`, `None` if it is not read. An error (the problem) when reading
    /// every symbol and this one is not a Binance Spot symbol, or one too many.
    fn find(&mut self, symbol: &[u8]) -> Result<Option<usize>, String> {
        let matches = |s: &SymbolState| s.upper.as_bytes().eq_ignore_ascii_case(symbol);
        if self.entries.get(self.last).is_some_and(matches) {
            return Ok(Some(self.last));
        }
        if let Some(index) = self.entries.iter().position(matches) {
            self.last = index;
            return Ok(Some(index));
        }
        if !self.all {
            return Ok(None);
        }
        if self.entries.len() == SYMBOLS_MAX {
            return Err(format!(
                "{}: more than {SYMBOLS_MAX} symbols",
                csv::shown(symbol)
            ));
        }
        let state = SymbolState::new(symbol).ok_or_else(|| {
            format!(
                "{} is not a Binance Spot symbol (1 to {SYMBOL_LEN_MAX} ASCII letters and digits)",
                csv::shown(symbol)
            )
        })?;
        self.entries.push(state);
        self.last = self.entries.len() - 1;
        Ok(Some(self.last))
    }
}

/// What one message made by a stream is; its bytes are in the source's output buffer.
#[derive(Clone, Copy, Debug)]
struct Made {
    kind: InputKind,
    local_us: u64,
    timestamp_us: u64,
    symbol: usize,
}

/// Tardis.dev `incremental_book_L2` and `trades` CSV files as Binance Spot messages (see the
/// module doc).
pub struct TardisSource {
    book: Option<BookStream>,
    trades: Option<TradeStream>,
    symbols: Symbols,
    /// The current message; reused.
    out: Vec<u8>,
    stats: TardisStats,
}

impl std::fmt::Debug for TardisSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TardisSource")
            .field("book", &self.book.as_ref().map(|b| b.path().to_owned()))
            .field("trades", &self.trades.as_ref().map(|t| t.path().to_owned()))
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl TardisSource {
    /// Opens an `incremental_book_L2` file, a `trades` file, or both (plain or gzip), and reads
    /// their headers. Only rows of `symbols` are read (ignoring case); an empty list reads every
    /// symbol. Errors: no file given, a file that cannot be opened, a header without a needed
    /// column, a symbol that is not 1 to 16 ASCII letters and digits (line 0 of the first file).
    pub fn open(
        book: Option<&Path>,
        trades: Option<&Path>,
        symbols: &[&str],
    ) -> Result<TardisSource, InputError> {
        let Some(first) = book.or(trades) else {
            return Err(InputError::Io {
                path: PathBuf::new(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "a Tardis source needs an incremental_book_L2 file, a trades file or both",
                ),
            });
        };
        let mut entries: Vec<SymbolState> = Vec::with_capacity(symbols.len());
        for symbol in symbols {
            let state = SymbolState::new(symbol.as_bytes()).ok_or_else(|| InputError::Format {
                path: first.to_owned(),
                line: 0,
                problem: format!(
                    "symbol {symbol:?} to read is not 1 to {SYMBOL_LEN_MAX} ASCII letters and digits"
                ),
            })?;
            if !entries.iter().any(|s| s.upper == state.upper) {
                entries.push(state);
            }
        }
        Ok(TardisSource {
            book: book.map(BookStream::open).transpose()?,
            trades: trades.map(TradeStream::open).transpose()?,
            symbols: Symbols {
                entries,
                all: symbols.is_empty(),
                last: 0,
            },
            out: Vec::with_capacity(64 * 1024),
            stats: TardisStats::default(),
        })
    }

    /// What was read so far.
    pub fn stats(&self) -> &TardisStats {
        &self.stats
    }

    /// Bytes held by the reused buffers (the memory test watches that it stays bounded).
    #[cfg(test)]
    fn buffer_capacity(&self) -> usize {
        self.out.capacity()
            + self.book.as_ref().map_or(0, BookStream::buffer_capacity)
            + self.trades.as_ref().map_or(0, TradeStream::buffer_capacity)
    }
}

impl InputSource for TardisSource {
    fn next_event(&mut self) -> Result<Option<InputEvent<'_>>, InputError> {
        let (symbols, stats) = (&mut self.symbols, &mut self.stats);
        let book_next = match &mut self.book {
            Some(book) => book.peek(symbols, stats)?,
            None => None,
        };
        let trade_next = match &mut self.trades {
            Some(trades) => trades.peek(symbols, stats)?,
            None => None,
        };
        // (local_timestamp, timestamp); the book's message first when both are equal.
        let book_first = match (book_next, trade_next) {
            (None, None) => return Ok(None),
            (Some(b), Some(t)) => b <= t,
            (b, _) => b.is_some(),
        };
        self.out.clear();
        let made = match (book_first, &mut self.book, &mut self.trades) {
            (true, Some(book), _) => book.make(symbols, stats, &mut self.out)?,
            (false, _, Some(trades)) => trades.make(symbols, stats, &mut self.out)?,
            _ => None,
        };
        let Some(made) = made else {
            return Ok(None);
        };
        debug_assert!(self.out.len() <= MESSAGE_LEN_MAX);
        Ok(Some(InputEvent {
            kind: made.kind,
            // Timestamps are at most u64::MAX / 1000 (csv::parse_timestamp).
            recv_ns: made.local_us * 1000,
            exchange_ns: Some(made.timestamp_us * 1000),
            symbol: match made.kind {
                InputKind::Snapshot => Some(self.symbols.entries[made.symbol].upper.as_str()),
                InputKind::Stream | InputKind::Trading | InputKind::Decoded(_) => None,
            },
            bytes: &self.out,
        }))
    }
}

/// Appends `value` (not negative) as Binance writes numbers: every integer digit, a point and
/// at least 8 decimals (`0.35130000`, `0.00000000`), more only when the value has more
/// (`0.0000000001`). Exact: from the decimal's mantissa and scale.
fn write_decimal(out: &mut Vec<u8>, value: Decimal) {
    let value = value.normalize();
    let scale = value.scale() as usize;
    let mut digits = [0u8; 40];
    let mut mantissa = value.mantissa().unsigned_abs();
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (mantissa % 10) as u8;
        mantissa /= 10;
        if mantissa == 0 {
            break;
        }
    }
    let digits = &digits[start..];
    let int_len = digits.len().saturating_sub(scale);
    if int_len == 0 {
        out.push(b'0');
    } else {
        out.extend_from_slice(&digits[..int_len]);
    }
    out.push(b'.');
    out.extend(std::iter::repeat_n(
        b'0',
        scale.saturating_sub(digits.len()),
    ));
    out.extend_from_slice(&digits[int_len..]);
    out.extend(std::iter::repeat_n(b'0', 8usize.saturating_sub(scale)));
}

/// Appends a `["px","qty"]` level, with a comma before it unless it is the first of its array.
fn write_level(out: &mut Vec<u8>, first: bool, price: Decimal, amount: Decimal) {
    if !first {
        out.push(b',');
    }
    out.extend_from_slice(b"[\"");
    write_decimal(out, price);
    out.extend_from_slice(b"\",\"");
    write_decimal(out, amount);
    out.extend_from_slice(b"\"]");
}

/// Appends a u64 in decimal.
fn write_u64(out: &mut Vec<u8>, value: u64) {
    let mut digits = [0u8; 20];
    let mut rest = value;
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}
