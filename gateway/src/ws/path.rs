//! Binance's combined-stream path (`/stream?streams=a/b/c`) and the REST depth snapshot path.
//! Cold path (connect time): these allocate.

/// Most streams on one connection (Binance Spot's limit).
pub const STREAMS_PER_CONNECTION_MAX: usize = 1024;
/// Longest symbol accepted (Binance symbols are at most 20 characters).
pub const SYMBOL_LEN_MAX: usize = 20;
/// Most levels a REST depth snapshot may ask for (Binance's `limit` maximum).
pub const SNAPSHOT_LIMIT_MAX: u32 = 5000;

/// A market-data stream of one symbol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// `<symbol>@depth@100ms`: diffs every 100 ms.
    Depth100ms,
    /// `<symbol>@depth`: diffs every second.
    Depth1000ms,
    /// `<symbol>@bookTicker`.
    BookTicker,
    /// `<symbol>@trade`.
    Trade,
    /// `<symbol>@aggTrade`.
    AggTrade,
    /// `<symbol>@kline_1m`.
    Kline1m,
}

impl Stream {
    /// The suffix after `<symbol>@`.
    pub fn suffix(self) -> &'static str {
        match self {
            Stream::Depth100ms => "depth@100ms",
            Stream::Depth1000ms => "depth",
            Stream::BookTicker => "bookTicker",
            Stream::Trade => "trade",
            Stream::AggTrade => "aggTrade",
            Stream::Kline1m => "kline_1m",
        }
    }
}

/// Why a path could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("no streams: give at least one symbol and one stream kind")]
    Empty,
    #[error("{count} streams is over the {STREAMS_PER_CONNECTION_MAX} per connection")]
    TooManyStreams { count: usize },
    #[error("symbol {symbol:?} (index {index}): {why}")]
    BadSymbol {
        index: usize,
        symbol: String,
        why: &'static str,
    },
    #[error("snapshot limit {0} is not in 1..={SNAPSHOT_LIMIT_MAX}")]
    BadLimit(u32),
}

fn check_symbol(index: usize, symbol: &str) -> Result<(), PathError> {
    let bad = |why| PathError::BadSymbol {
        index,
        symbol: symbol.to_owned(),
        why,
    };
    if symbol.is_empty() {
        return Err(bad("empty"));
    }
    if symbol.len() > SYMBOL_LEN_MAX {
        return Err(bad("longer than SYMBOL_LEN_MAX"));
    }
    if !symbol.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(bad("not ASCII letters and digits"));
    }
    Ok(())
}

/// `/stream?streams=<symbol>@<kind>/...`, symbol by symbol, each with every kind in order;
/// symbols lowercased as Binance wants them (`NKNUSDT` and `nknusdt` are the same).
///
/// ```
/// use levibot_gateway::ws::{Stream, stream_path};
/// let path = stream_path(&["NKNUSDT", "blzeth"], &[Stream::Depth100ms, Stream::BookTicker]);
/// assert_eq!(
///     path.unwrap(),
///     "/stream?streams=nknusdt@depth@100ms/nknusdt@bookTicker/blzeth@depth@100ms/blzeth@bookTicker"
/// );
/// ```
pub fn stream_path(symbols: &[&str], streams: &[Stream]) -> Result<String, PathError> {
    let count = symbols.len() * streams.len();
    if count == 0 {
        return Err(PathError::Empty);
    }
    if count > STREAMS_PER_CONNECTION_MAX {
        return Err(PathError::TooManyStreams { count });
    }
    let mut path = String::from("/stream?streams=");
    for (index, symbol) in symbols.iter().enumerate() {
        check_symbol(index, symbol)?;
        for stream in streams {
            if !path.ends_with('=') {
                path.push('/');
            }
            path.extend(symbol.chars().map(|c| c.to_ascii_lowercase()));
            path.push('@');
            path.push_str(stream.suffix());
        }
    }
    Ok(path)
}

/// `/api/v3/depth?symbol=<SYMBOL>&limit=<limit>` (symbol uppercased).
pub fn depth_snapshot_path(symbol: &str, limit: u32) -> Result<String, PathError> {
    check_symbol(0, symbol)?;
    if limit == 0 || limit > SNAPSHOT_LIMIT_MAX {
        return Err(PathError::BadLimit(limit));
    }
    Ok(format!(
        "/api/v3/depth?symbol={}&limit={limit}",
        symbol.to_ascii_uppercase()
    ))
}
