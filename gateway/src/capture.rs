//! The capture file format of the recordings in `../shared/corpus` (cryptofeed's): a header line
//! `<url> <-> <connect epoch>`, then one message a line, `<epoch seconds>: <JSON>`; REST answers
//! as `<url> -> <epoch seconds>: <JSON>`. Cold path: tools and tests read captures with it.

/// The Binance Spot recordings shipped beside the repository (`../shared/corpus/binance-spot`),
/// or `$LEVIBOT_CORPUS_DIR`: for tests, benchmarks and the demo.
pub fn corpus_dir() -> std::path::PathBuf {
    match std::env::var_os("LEVIBOT_CORPUS_DIR") {
        Some(dir) => dir.into(),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/corpus/binance-spot"),
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
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            if raw.iter().all(u8::is_ascii_whitespace) || find(raw, b" <-> ").is_some() {
                return None;
            }
            Some(parse_line(raw, index + 1, line_offset))
        })
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
    let epoch_seconds = std::str::from_utf8(&rest[..colon])
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|e| e.is_finite() && *e >= 0.0)
        .ok_or(error("the receive time is not a number of seconds"))?;
    Ok(CaptureLine {
        line,
        offset,
        url,
        epoch_seconds,
        body: &rest[colon + 2..],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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

/// A recording on disk, as in `../shared/corpus`: a stream capture, the REST depth snapshots taken
/// with it, and the venue's exchangeInfo. Cold path: tools, tests and benchmarks load it.
#[derive(Clone, Debug)]
pub struct Recording {
    pub stream_path: std::path::PathBuf,
    pub snapshots_path: std::path::PathBuf,
    pub exchange_info_path: std::path::PathBuf,
    pub stream: Vec<u8>,
    pub snapshots: Vec<u8>,
    pub exchange_info: Vec<u8>,
}

/// A recording that could not be read; names the file.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("{path}: {source}")]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Format {
        path: std::path::PathBuf,
        source: CaptureError,
    },
    #[error("{path}: {source}")]
    Instruments {
        path: std::path::PathBuf,
        source: crate::instrument::InstrumentError,
    },
    #[error("{path}: line {line}: a snapshot URL without a symbol= parameter")]
    SnapshotSymbol {
        path: std::path::PathBuf,
        line: usize,
    },
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
        stream: &std::path::Path,
        snapshots: &std::path::Path,
        exchange_info: &std::path::Path,
    ) -> Result<Recording, RecordingError> {
        let read = |path: &std::path::Path| {
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

    /// The Binance Spot corpus in [`corpus_dir`].
    pub fn corpus() -> Result<Recording, RecordingError> {
        let dir = corpus_dir();
        Recording::read(
            &dir.join("BINANCE.ws.1.0"),
            &dir.join("BINANCE.http.0.0"),
            &dir.join("BINANCE.0"),
        )
    }

    /// Every instrument of the exchangeInfo: its first line (a capture line or bare JSON; a
    /// recording may carry more lines after it, such as cryptofeed's configuration).
    pub fn instruments(&self) -> Result<Vec<crate::instrument::Instrument>, RecordingError> {
        let path = &self.exchange_info_path;
        let body = match capture_lines(&self.exchange_info).next() {
            Some(line) => {
                line.map_err(|source| RecordingError::Format {
                    path: path.clone(),
                    source,
                })?
                .body
            }
            None => &self.exchange_info[..],
        };
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
