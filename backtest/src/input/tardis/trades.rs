//! The `trades` file: each row of a symbol read is one Binance `trade` message (see the parent
//! module's doc for the side and id decisions).

use std::path::Path;

use rust_decimal::Decimal;

use super::csv::{self, CsvReader};
use super::{Made, Symbols, TardisStats, write_decimal, write_u64};
use crate::input::{InputError, InputKind};

/// The columns read, in this order.
const COLUMNS: [&str; 7] = [
    "symbol",
    "timestamp",
    "local_timestamp",
    "id",
    "side",
    "price",
    "amount",
];
const SYMBOL: usize = 0;
const TIMESTAMP: usize = 1;
const ID: usize = 3;
const SIDE: usize = 4;
const PRICE: usize = 5;
const AMOUNT: usize = 6;

/// The taker's side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Buy,
    Sell,
    Unknown,
}

/// One row of a symbol read.
#[derive(Clone, Copy, Debug)]
struct Row {
    symbol: usize,
    timestamp: u64,
    local: u64,
    /// `None`: the id is not a u64.
    id: Option<u64>,
    side: Side,
    price: Decimal,
    amount: Decimal,
}

pub(super) struct TradeStream {
    csv: CsvReader,
    columns: [usize; 7],
    /// The row after the last one used; `None` with `ended` false: not read yet.
    ahead: Option<Row>,
    ended: bool,
}

impl TradeStream {
    pub(super) fn open(path: &Path) -> Result<TradeStream, InputError> {
        let (csv, columns) = CsvReader::open(path, COLUMNS)?;
        Ok(TradeStream {
            csv,
            columns,
            ahead: None,
            ended: false,
        })
    }

    pub(super) fn path(&self) -> &Path {
        self.csv.path()
    }

    #[cfg(test)]
    pub(super) fn buffer_capacity(&self) -> usize {
        self.csv.buffer_capacity()
    }

    /// `(local_timestamp, timestamp)` of the next trade, `None` at the end.
    pub(super) fn peek(
        &mut self,
        symbols: &mut Symbols,
        stats: &mut TardisStats,
    ) -> Result<Option<(u64, u64)>, InputError> {
        self.fill(symbols, stats)?;
        Ok(self.ahead.map(|row| (row.local, row.timestamp)))
    }

    /// Writes the next trade message into `out` (empty).
    pub(super) fn make(
        &mut self,
        symbols: &mut Symbols,
        stats: &mut TardisStats,
        out: &mut Vec<u8>,
    ) -> Result<Option<Made>, InputError> {
        self.fill(symbols, stats)?;
        let Some(row) = self.ahead.take() else {
            return Ok(None);
        };
        let state = &mut symbols.entries[row.symbol];
        state.trade_id = match row.id {
            Some(id) => id,
            None => {
                stats.trades_id_counted += 1;
                state.trade_id.saturating_add(1)
            }
        };
        let ms = row.timestamp / 1000;
        out.extend_from_slice(b"{\"stream\":\"");
        out.extend_from_slice(state.lower.as_bytes());
        out.extend_from_slice(b"@trade\",\"data\":{\"e\":\"trade\",\"E\":");
        write_u64(out, ms);
        out.extend_from_slice(b",\"s\":\"");
        out.extend_from_slice(state.upper.as_bytes());
        out.extend_from_slice(b"\",\"t\":");
        write_u64(out, state.trade_id);
        out.extend_from_slice(b",\"p\":\"");
        write_decimal(out, row.price);
        out.extend_from_slice(b"\",\"q\":\"");
        write_decimal(out, row.amount);
        out.extend_from_slice(b"\",\"T\":");
        write_u64(out, ms);
        // Buyer is maker when the taker sold; `unknown` is written as a taker buy.
        out.extend_from_slice(match row.side {
            Side::Sell => b",\"m\":true,\"M\":true}}",
            Side::Buy | Side::Unknown => b",\"m\":false,\"M\":true}}",
        });
        if row.side == Side::Unknown {
            stats.trades_side_unknown += 1;
        }
        stats.trades += 1;
        Ok(Some(Made {
            kind: InputKind::Stream,
            local_us: row.local,
            timestamp_us: row.timestamp,
            symbol: row.symbol,
        }))
    }

    /// Reads rows until one of a symbol read (or the end), into `ahead`.
    fn fill(&mut self, symbols: &mut Symbols, stats: &mut TardisStats) -> Result<(), InputError> {
        while self.ahead.is_none() && !self.ended {
            if !self.csv.next_row()? {
                self.ended = true;
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
            let side = match field(SIDE) {
                b"buy" => Side::Buy,
                b"sell" => Side::Sell,
                b"unknown" => Side::Unknown,
                other => {
                    let problem = format!("{} is not buy, sell or unknown", csv::shown(other));
                    return Err(csv.column_error("side", problem));
                }
            };
            self.ahead = Some(Row {
                symbol,
                timestamp: csv::parse_timestamp(field(TIMESTAMP))
                    .map_err(|p| csv.column_error("timestamp", p))?,
                local: csv.local(),
                id: csv::parse_u64(field(ID)),
                side,
                price: csv::parse_decimal(field(PRICE))
                    .map_err(|p| csv.column_error("price", p))?,
                amount: csv::parse_decimal(field(AMOUNT))
                    .map_err(|p| csv.column_error("amount", p))?,
            });
            stats.trade_rows += 1;
        }
        Ok(())
    }
}
