//! Where a backtest's market data comes from: venue messages in the venue's own bytes (Binance
//! Spot's combined-stream JSON and REST depth snapshots), each with the time it was received
//! and, where the input knows it, the time the venue made it. The engine decodes these bytes
//! with the live decoder; the simulated venue decodes them too, at the venue's time.
//!
//! Every reader streams from disk: memory does not grow with the input's length (one message
//! at a time, in a buffer reused from one message to the next).

pub mod capture;
pub mod decoded;
pub mod journal;
pub mod synthetic;
pub mod tardis;

use std::path::PathBuf;

use levibot_shm::layout::RecordType;

/// What one input message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    /// A market-data stream message (a combined-stream wrapper `{"stream":..,"data":..}`).
    Stream,
    /// A REST depth snapshot body (`{"lastUpdateId":..,"bids":..,"asks":..}`) of one symbol.
    Snapshot,
    /// What the operator or the daemon did to trading at this time in a replayed journal:
    /// `bytes` is one [`TradingChange`] code. No venue message.
    Trading,
    /// A stream message as the live feed decoded and journaled it: `bytes` is one or more
    /// records of this type, back to back (a depth update's chunks). Read from a journal with
    /// [`InputSpec::decoded`]: no decoding, on either side ([`decoded::market_records`]).
    Decoded(RecordType),
}

/// A change of trading a journal recorded, as an [`InputKind::Trading`] event's one byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum TradingChange {
    /// The daemon started: it trades nothing until it resumes.
    Halt = 1,
    /// Halted and every open order cancelled (a kill).
    HaltAndCancelAll = 2,
    Resume = 3,
}

impl TradingChange {
    pub fn from_code(code: u8) -> Option<TradingChange> {
        match code {
            1 => Some(TradingChange::Halt),
            2 => Some(TradingChange::HaltAndCancelAll),
            3 => Some(TradingChange::Resume),
            _ => None,
        }
    }
}

/// One message, borrowed from the reader's buffer until the next call.
#[derive(Clone, Copy, Debug)]
pub struct InputEvent<'a> {
    pub kind: InputKind,
    /// When it was received, ns since the Unix epoch (the engine sees it then).
    pub recv_ns: u64,
    /// When the venue made it, ns since the Unix epoch, if the input says so apart from the
    /// bytes (Tardis' `timestamp`); `None`: the venue time comes from the message itself
    /// (`E`/`T`) or the feed latency model.
    pub exchange_ns: Option<u64>,
    /// The symbol of a snapshot (upper case, as the venue spells it); `None` for a stream
    /// message, whose bytes name it.
    pub symbol: Option<&'a str>,
    pub bytes: &'a [u8],
}

/// Why an input could not be read: names the file and where in it.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A line or row that is not what the format says, with its 1-based line number (0: the
    /// input as a whole, such as a journal; an empty path: the command line).
    #[error("{}", located(path, *line, problem))]
    Format {
        path: PathBuf,
        line: u64,
        problem: String,
    },
}

/// `path:line: problem`, leaving out what is not known.
fn located(path: &std::path::Path, line: u64, problem: &str) -> String {
    match (path.as_os_str().is_empty(), line) {
        (true, _) => problem.to_owned(),
        (false, 0) => format!("{}: {problem}", path.display()),
        (false, line) => format!("{}:{line}: {problem}", path.display()),
    }
}

/// A reader of input messages, oldest first by `recv_ns` (a reader whose input goes back in
/// time says so with an error naming the line, rather than reorder it).
pub trait InputSource {
    /// The next message, or `None` at the end.
    fn next_event(&mut self) -> Result<Option<InputEvent<'_>>, InputError>;
}

/// Which input a run reads, as the command line gives it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InputSpec {
    /// A capture directory.
    pub capture: Option<PathBuf>,
    /// Tardis CSV files.
    pub tardis_book: Option<PathBuf>,
    pub tardis_trades: Option<PathBuf>,
    /// A LeviBot journal directory.
    pub journal: Option<PathBuf>,
    /// With `journal`: replay the records the live feed decoded, not its raw bytes (REST
    /// snapshots, journaled only raw, still come raw).
    pub decoded: bool,
}

impl InputSpec {
    /// [`open`](Self::open) for `instruments` (a run's config's), by their symbols in id order.
    pub fn open_for(
        &self,
        instruments: &levibot_gateway::instrument::InstrumentTable,
    ) -> Result<Box<dyn InputSource>, InputError> {
        let symbols: Vec<String> = instruments.iter().map(|i| i.symbol.to_string()).collect();
        let symbols: Vec<&str> = symbols.iter().map(String::as_str).collect();
        self.open(&symbols)
    }

    /// Opens the input, reading the messages of `symbols` (Tardis files hold many symbols;
    /// the other inputs name theirs in the venue's bytes).
    pub fn open(&self, symbols: &[&str]) -> Result<Box<dyn InputSource>, InputError> {
        let given = [
            self.capture.is_some(),
            self.tardis_book.is_some() || self.tardis_trades.is_some(),
            self.journal.is_some(),
        ];
        let no_input = || InputError::Format {
            path: PathBuf::new(),
            line: 0,
            problem: "give one input: --capture DIR, --tardis-book/--tardis-trades FILE, \
                      --journal DIR, or --archive DIR|s3://BUCKET/PREFIX"
                .into(),
        };
        if given.iter().filter(|g| **g).count() != 1 {
            return Err(no_input());
        }
        if let Some(dir) = &self.capture {
            return Ok(Box::new(capture::CaptureSource::open(dir)?));
        }
        if let Some(dir) = &self.journal {
            let source = match self.decoded {
                true => journal::JournalSource::open_decoded(dir, symbols)?,
                false => journal::JournalSource::open(dir)?,
            };
            return Ok(Box::new(source));
        }
        if self.decoded {
            return Err(InputError::Format {
                path: PathBuf::new(),
                line: 0,
                problem: "decoded records come from a journal: give --journal DIR or --archive"
                    .into(),
            });
        }
        Ok(Box::new(tardis::TardisSource::open(
            self.tardis_book.as_deref(),
            self.tardis_trades.as_deref(),
            symbols,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_input_error_says_where_as_far_as_it_is_known() {
        let at = |path: &str, line| {
            InputError::Format {
                path: PathBuf::from(path),
                line,
                problem: "bad".into(),
            }
            .to_string()
        };
        assert_eq!(at("/x/book.csv", 7), "/x/book.csv:7: bad");
        assert_eq!(at("/x/journal", 0), "/x/journal: bad");
        assert_eq!(at("", 0), "bad");
    }
}
