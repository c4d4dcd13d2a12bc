//! The capture file format of the recordings (cryptofeed's): a header line
//! `<url> <-> <connect epoch>`, then one message a line, `<epoch seconds>: <JSON>`; REST answers
//! as `<url> -> <epoch seconds>: <JSON>`. Cold path: tools and tests read captures with it.
//!
//! Two recordings in this format serve tests, benchmarks and the demo:
//! - [`testdata_dir`]: the synthetic recording committed in the repository
//!   (`testdata/binance-spot-synthetic/`, written by `venue-sim synth`). Always there.
//! - [`corpus_dir`]: the real Binance Spot recordings, an optional extra: `$LEVIBOT_CORPUS_DIR`,
//!   or `../shared/corpus/binance-spot` beside the repository when it exists.

use std::path::{Path, PathBuf};

/// The environment variable that points at the real Binance Spot recordings.
pub const CORPUS_DIR_ENV: &str = "LEVIBOT_CORPUS_DIR";

/// The repository's root (the workspace this crate is built in).
fn repository_root() -> &'static Path {
    // CARGO_MANIFEST_DIR is <root>/gateway.
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The synthetic recording committed in the repository: `testdata/binance-spot-synthetic/`.
pub fn testdata_dir() -> PathBuf {
    repository_root().join("testdata/binance-spot-synthetic")
}

/// The real Binance Spot recordings, if this machine has them: `$LEVIBOT_CORPUS_DIR` (an error
/// names it if it is set but not a directory), else `../shared/corpus/binance-spot` beside the
/// repository. `Ok(None)`: not here; tests that need them say so and are left out.
pub fn corpus_dir() -> Result<Option<PathBuf>, String> {
    if let Some(dir) = std::env::var_os(CORPUS_DIR_ENV) {
        let dir = PathBuf::from(dir);
        if dir.as_os_str().is_empty() {
            return Ok(None);
        }
        return match dir.is_dir() {
            true => Ok(Some(dir)),
            false => Err(format!(
                "{CORPUS_DIR_ENV}={}: not a directory",
                dir.display()
            )),
        };
    }
    let beside = repository_root().join("../shared/corpus/binance-spot");
    Ok(beside.is_dir().then_some(beside))
}

/// Prefix of the name of every test that needs the real recordings: `scripts/test` leaves them
/// out by this name, and counts them, when [`corpus_dir`] finds none.
pub const REAL_CORPUS_TEST_PREFIX: &str = "real_corpus_";

/// The real Binance recordings, for a test or benchmark that compares against real venue data:
/// `None`, after printing to stderr that `test` is left out and why, when this machine has none.
/// A misconfigured `$LEVIBOT_CORPUS_DIR` or an unreadable file panics (a test helper: such a
/// run must fail, not pass by skipping).
pub fn real_corpus_for(test: &str) -> Option<Recording> {
    match corpus_dir() {
        Ok(Some(dir)) => match Recording::in_dir(&dir) {
            Ok(recording) => Some(recording),
            Err(e) => panic!("{test}: the real corpus in {}: {e}", dir.display()),
        },
        Ok(None) => {
            eprintln!(
                "{test}: left out: the real Binance recordings are not here (set \
                 {CORPUS_DIR_ENV}, or put them in ../shared/corpus/binance-spot)"
            );
            None
        }
        Err(e) => panic!("{test}: {e}"),
    }
}

/// One line of a capture.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CaptureLine<'a> {
    /// 1-based line number in the file.
    pub line: usize,
    /// Byte offset of the line in the file.
    pub offset: usize,
    /// The request URL, for REST answers.
    pub url: Option<&'a str>,
    /// Receive time, seconds since the Unix epoch.
    pub epoch_seconds: f64,
    /// The same, exactly, in nanoseconds (digits past the ninth decimal are dropped).
    pub epoch_ns: u64,
    /// The message exactly as recorded.
    pub body: &'a [u8],
}

/// A line that is not in the capture format.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("capture line {line} (byte offset {offset}): {reason}")]
pub struct CaptureError {
    pub line: usize,
    pub offset: usize,
    pub reason: &'static str,
}

/// The lines of a capture that carry a message, in order. The `<->` header line and blank lines
/// are skipped; any other line that does not parse is an error (the iteration goes on after it).
pub fn capture_lines(data: &[u8]) -> impl Iterator<Item = Result<CaptureLine<'_>, CaptureError>> {
    let mut offset = 0;
    data.split(|&b| b == b'\n')
        .enumerate()
        .filter_map(move |(index, raw)| {
            let line_offset = offset;
            offset += raw.len() + 1;
            parse_capture_line(raw, index + 1, line_offset)
        })
}

/// One line of a capture (without its `\n`), 1-based line `line` at byte `offset` of its
/// file: `None` for a `<->` header or a blank line, else the message or why the line is not
/// one. For readers that stream a capture from disk rather than hold it.
pub fn parse_capture_line(
    raw: &[u8],
    line: usize,
    offset: usize,
) -> Option<Result<CaptureLine<'_>, CaptureError>> {
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    if raw.iter().all(u8::is_ascii_whitespace) || find(raw, b" <-> ").is_some() {
        return None;
    }
    Some(parse_line(raw, line, offset))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn parse_line(raw: &[u8], line: usize, offset: usize) -> Result<CaptureLine<'_>, CaptureError> {
    let error = |reason| CaptureError {
        line,
        offset,
        reason,
    };
    let (url, rest) = match find(raw, b" -> ") {
        Some(at) => (
            Some(std::str::from_utf8(&raw[..at]).map_err(|_| error("the URL is not UTF-8"))?),
            &raw[at + 4..],
        ),
        None => (None, raw),
    };
    let colon = find(rest, b": ").ok_or(error("no '<epoch>: ' before the message"))?;
    let time = &rest[..colon];
    let not_seconds = error("the receive time is not a number of seconds");
    let epoch_seconds = std::str::from_utf8(time)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|e| e.is_finite() && *e >= 0.0)
        .ok_or(not_seconds.clone())?;
    let epoch_ns = seconds_to_ns(time).ok_or(not_seconds)?;
    Ok(CaptureLine {
        line,
        offset,
        url,
        epoch_seconds,
        epoch_ns,
        body: &rest[colon + 2..],
    })
}

/// `seconds[.fraction]` as nanoseconds, exactly (fraction digits past the ninth dropped);
/// `None` if it is not that or does not fit.
fn seconds_to_ns(text: &[u8]) -> Option<u64> {
    let (whole, fraction) = match text.iter().position(|&b| b == b'.') {
        Some(dot) => (&text[..dot], &text[dot + 1..]),
        None => (text, &[][..]),
    };
    if whole.is_empty() || !whole.iter().chain(fraction).all(u8::is_ascii_digit) {
        return None;
    }
    let mut ns: u64 = 0;
    for &d in whole {
        ns = ns.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    let mut fraction_ns: u64 = 0;
    for i in 0..9 {
        let digit = fraction.get(i).map_or(0, |d| u64::from(d - b'0'));
        fraction_ns = fraction_ns * 10 + digit;
    }
    ns.checked_mul(1_000_000_000)?.checked_add(fraction_ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receive_times_in_nanoseconds_are_exact() {
        assert_eq!(
            seconds_to_ns(b"1700000000.154"),
            Some(1_700_000_000_154_000_000)
        );
        assert_eq!(seconds_to_ns(b"3"), Some(3_000_000_000));
        assert_eq!(seconds_to_ns(b"1.0000000019"), Some(1_000_000_001));
        assert_eq!(seconds_to_ns(b"1e9"), None);
        assert_eq!(seconds_to_ns(b".5"), None);
        assert_eq!(seconds_to_ns(b"99999999999999999999"), None);
    }

    #[test]
    fn reads_stream_and_rest_lines() {
        let data = b"wss://x/stream?streams=a <-> 1.5\n2.25: {\"a\":1}\n\nhttps://x/depth -> 3: {}\nbad line\n";
        let lines: Vec<_> = capture_lines(data).collect();
        assert_eq!(lines.len(), 3);
        let first = lines[0].as_ref().unwrap();
        assert_eq!(
            (first.line, first.url, first.epoch_seconds, first.body),
            (2, None, 2.25, &b"{\"a\":1}"[..])
        );
        let rest = lines[1].as_ref().unwrap();
        assert_eq!((rest.url, rest.body), (Some("https://x/depth"), &b"{}"[..]));
        let err = lines[2].as_ref().unwrap_err();
        assert_eq!((err.line, err.offset), (5, 73));
    }
}

/// A recording and where it was found, for a benchmark or tool that says which data it used.
#[derive(Clone, Debug)]
pub struct FoundRecording {
    pub recording: Recording,
    pub dir: PathBuf,
    /// The real Binance recordings (else the repository's synthetic one).
    pub real: bool,
}

impl FoundRecording {
    /// `real Binance Spot recordings` or `synthetic recording (venue-sim synth)`: what a
    /// benchmark prints beside its figures, and its JSON's `data.source`.
    pub fn source(&self) -> &'static str {
        match self.real {
            true => "real Binance Spot recordings",
            false => "synthetic recording (venue-sim synth)",
        }
    }
}

/// The real Binance recordings when this machine has them ([`corpus_dir`]), else the
/// repository's synthetic recording ([`testdata_dir`]).
pub fn real_or_testdata() -> Result<FoundRecording, RecordingError> {
    let (dir, real) = match corpus_dir().map_err(RecordingError::CorpusDir)? {
        Some(dir) => (dir, true),
        None => (testdata_dir(), false),
    };
    let dir = dir.canonicalize().unwrap_or(dir);
    Ok(FoundRecording {
        recording: Recording::in_dir(&dir)?,
        dir,
        real,
    })
}

/// The exchangeInfo document in a file: bare JSON (what `GET /api/v3/exchangeInfo` answers),
/// or the first capture line (`<url> -> <epoch>: <json>`, as a recording holds it; more lines,
/// such as cryptofeed's configuration, may follow). Every tool that reads exchangeInfo takes both.
pub fn exchange_info_body(bytes: &[u8]) -> Result<&[u8], CaptureError> {
    let starts_json = bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'{');
    if starts_json {
        return Ok(bytes);
    }
    match capture_lines(bytes).next() {
        Some(line) => Ok(line?.body),
        None => Err(CaptureError {
            line: 1,
            offset: 0,
            reason: "empty: neither JSON nor a capture line",
        }),
    }
}

/// A recording on disk: a stream capture, the REST depth snapshots taken
/// with it, and the venue's exchangeInfo. Cold path: tools, tests and benchmarks load it.
#[derive(Clone, Debug)]
pub struct Recording {
    pub stream_path: PathBuf,
    pub snapshots_path: PathBuf,
    pub exchange_info_path: PathBuf,
    pub stream: Vec<u8>,
    pub snapshots: Vec<u8>,
    pub exchange_info: Vec<u8>,
}

/// A recording that could not be read; names the file.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Format { path: PathBuf, source: CaptureError },
    #[error("{path}: {source}")]
    Instruments {
        path: PathBuf,
        source: crate::instrument::InstrumentError,
    },
    #[error("the real corpus: {0}")]
    CorpusDir(String),
    #[error("{path}: line {line}: a snapshot URL without a symbol= parameter")]
    SnapshotSymbol { path: PathBuf, line: usize },
}

/// A REST depth snapshot line and the symbol its URL asked for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SnapshotLine<'a> {
    pub symbol: &'a str,
    pub line: CaptureLine<'a>,
}

/// The value of a URL query parameter.
pub fn url_query_param<'a>(url: &'a str, name: &str) -> Option<&'a str> {
    let query = url.split_once('?')?.1;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

impl Recording {
    /// Reads the three files.
    pub fn read(
        stream: &Path,
        snapshots: &Path,
        exchange_info: &Path,
    ) -> Result<Recording, RecordingError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| RecordingError::Read {
                path: path.to_owned(),
                source,
            })
        };
        Ok(Recording {
            stream: read(stream)?,
            snapshots: read(snapshots)?,
            exchange_info: read(exchange_info)?,
            stream_path: stream.to_owned(),
            snapshots_path: snapshots.to_owned(),
            exchange_info_path: exchange_info.to_owned(),
        })
    }

    /// The recording in `dir`, under the corpus's file names.
    pub fn in_dir(dir: &Path) -> Result<Recording, RecordingError> {
        Recording::read(
            &dir.join("BINANCE.ws.1.0"),
            &dir.join("BINANCE.http.0.0"),
            &dir.join("BINANCE.0"),
        )
    }

    /// The synthetic recording committed in the repository ([`testdata_dir`]).
    pub fn testdata() -> Result<Recording, RecordingError> {
        Recording::in_dir(&testdata_dir())
    }

    /// Every instrument of the exchangeInfo (bare JSON or a capture line: [`exchange_info_body`]).
    pub fn instruments(&self) -> Result<Vec<crate::instrument::Instrument>, RecordingError> {
        let path = &self.exchange_info_path;
        let body =
            exchange_info_body(&self.exchange_info).map_err(|source| RecordingError::Format {
                path: path.clone(),
                source,
            })?;
        crate::instrument::parse_exchange_info(body).map_err(|source| RecordingError::Instruments {
            path: path.clone(),
            source,
        })
    }

    /// The instruments the snapshots are for, as a table (in snapshot order, each once).
    pub fn snapshot_instruments(
        &self,
    ) -> Result<crate::instrument::InstrumentTable, RecordingError> {
        let mut symbols: Vec<&str> = Vec::new();
        for s in self.snapshot_lines()? {
            if !symbols.contains(&s.symbol) {
                symbols.push(s.symbol);
            }
        }
        crate::instrument::InstrumentTable::select(&self.instruments()?, &symbols).map_err(
            |source| RecordingError::Instruments {
                path: self.exchange_info_path.clone(),
                source,
            },
        )
    }

    /// The stream messages, in order.
    pub fn messages(&self) -> impl Iterator<Item = Result<CaptureLine<'_>, CaptureError>> {
        capture_lines(&self.stream)
    }

    /// The snapshot lines with their symbols, in file order.
    pub fn snapshot_lines(&self) -> Result<Vec<SnapshotLine<'_>>, RecordingError> {
        let path = &self.snapshots_path;
        capture_lines(&self.snapshots)
            .map(|line| {
                let line = line.map_err(|source| RecordingError::Format {
                    path: path.clone(),
                    source,
                })?;
                let symbol = line.url.and_then(|u| url_query_param(u, "symbol")).ok_or(
                    RecordingError::SnapshotSymbol {
                        path: path.clone(),
                        line: line.line,
                    },
                )?;
                Ok(SnapshotLine { symbol, line })
            })
            .collect()
    }
}
