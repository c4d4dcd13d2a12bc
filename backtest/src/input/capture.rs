//! A capture in the corpus's format (`gateway::capture`), streamed from disk: a directory with
//! stream files (`*.ws.*`: a `<->` header line, then `<epoch>: <message>` lines) and REST
//! files (`*.http.*`: `<url> -> <epoch>: <body>` lines, the depth snapshots). Every file is
//! read one line at a time and the files are merged by receive time, so memory does not grow
//! with the capture's length. Gzip'd files (`.gz`) are read as they are.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use levibot_gateway::capture::{parse_capture_line, url_query_param};

use super::{InputError, InputEvent, InputKind, InputSource};

/// Longest line a capture may have (a REST snapshot of 5,000 levels a side is about 300 KB).
pub const CAPTURE_LINE_LEN_MAX: usize = 8 << 20;

/// One file of a capture, at its current line.
struct CaptureFile {
    path: PathBuf,
    reader: Box<dyn BufRead>,
    /// The current line (without its newline).
    line: Vec<u8>,
    line_no: u64,
    offset: u64,
    /// Whether `line` holds a message not handed out yet.
    ready: bool,
    recv_ns: u64,
    kind: InputKind,
    /// Byte range of the message in `line`, and of the snapshot's symbol.
    body: (usize, usize),
    symbol: (usize, usize),
    done: bool,
}

impl CaptureFile {
    fn open(path: &Path, kind: InputKind) -> Result<CaptureFile, InputError> {
        let io = |source| InputError::Io {
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let reader: Box<dyn BufRead> = if path.extension().is_some_and(|e| e == "gz") {
            Box::new(BufReader::with_capacity(1 << 16, GzDecoder::new(file)))
        } else {
            Box::new(BufReader::with_capacity(1 << 16, file))
        };
        let mut f = CaptureFile {
            path: path.to_owned(),
            reader,
            line: Vec::with_capacity(4096),
            line_no: 0,
            offset: 0,
            ready: false,
            recv_ns: 0,
            kind,
            body: (0, 0),
            symbol: (0, 0),
            done: false,
        };
        f.advance()?;
        Ok(f)
    }

    fn format_error(&self, problem: impl Into<String>) -> InputError {
        InputError::Format {
            path: self.path.clone(),
            line: self.line_no,
            problem: problem.into(),
        }
    }

    /// Reads lines until the next message (or the end).
    fn advance(&mut self) -> Result<(), InputError> {
        self.ready = false;
        while !self.done {
            self.offset += self.line.len() as u64 + u64::from(self.line_no > 0);
            self.line.clear();
            let limit = CAPTURE_LINE_LEN_MAX as u64 + 1;
            let read = (&mut self.reader)
                .take(limit)
                .read_until(b'\n', &mut self.line)
                .map_err(|source| InputError::Io {
                    path: self.path.clone(),
                    source,
                })?;
            if read == 0 {
                self.done = true;
                break;
            }
            self.line_no += 1;
            if self.line.last() == Some(&b'\n') {
                self.line.pop();
            } else if self.line.len() > CAPTURE_LINE_LEN_MAX {
                return Err(
                    self.format_error(format!("a line longer than {CAPTURE_LINE_LEN_MAX} bytes"))
                );
            }
            let parsed = match parse_capture_line(&self.line, self.line_no as usize, 0) {
                None => continue,
                Some(Err(e)) => return Err(self.format_error(e.reason)),
                Some(Ok(parsed)) => parsed,
            };
            let start = |part: &[u8]| part.as_ptr() as usize - self.line.as_ptr() as usize;
            let body_start = start(parsed.body);
            self.body = (body_start, body_start + parsed.body.len());
            self.recv_ns = parsed.epoch_ns;
            if self.kind == InputKind::Snapshot {
                let Some(symbol) = parsed.url.and_then(|u| url_query_param(u, "symbol")) else {
                    return Err(self.format_error("a REST line whose URL has no symbol="));
                };
                let s = start(symbol.as_bytes());
                self.symbol = (s, s + symbol.len());
            }
            self.ready = true;
            break;
        }
        Ok(())
    }

    fn event(&self) -> InputEvent<'_> {
        let symbol = (self.kind == InputKind::Snapshot)
            .then(|| std::str::from_utf8(&self.line[self.symbol.0..self.symbol.1]).ok())
            .flatten();
        InputEvent {
            kind: self.kind,
            recv_ns: self.recv_ns,
            exchange_ns: None,
            symbol,
            bytes: &self.line[self.body.0..self.body.1],
        }
    }
}

/// A capture directory's stream and REST files, merged by receive time (on a tie, the file
/// that sorts first by name: REST before streams, as `http` sorts before `ws`).
pub struct CaptureSource {
    files: Vec<CaptureFile>,
    /// The file whose message was handed out last: advanced on the next call.
    handed: Option<usize>,
}

impl CaptureSource {
    /// The capture in `dir`: every `*.http.*` and `*.ws.*` file (the exchangeInfo file is
    /// read by whoever needs instruments, not here).
    pub fn open(dir: &Path) -> Result<CaptureSource, InputError> {
        let entries = std::fs::read_dir(dir).map_err(|source| InputError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let mut paths = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| InputError::Io {
                path: dir.to_owned(),
                source,
            })?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let kind = if name.contains(".http.") {
                InputKind::Snapshot
            } else if name.contains(".ws.") {
                InputKind::Stream
            } else {
                continue;
            };
            paths.push((entry.path(), kind));
        }
        paths.sort_by(|a, b| a.0.cmp(&b.0));
        if !paths.iter().any(|(_, k)| *k == InputKind::Stream) {
            return Err(InputError::Format {
                path: dir.to_owned(),
                line: 0,
                problem: "no stream file (*.ws.*) in this capture directory".into(),
            });
        }
        let files = paths
            .iter()
            .map(|(path, kind)| CaptureFile::open(path, *kind))
            .collect::<Result<_, _>>()?;
        Ok(CaptureSource {
            files,
            handed: None,
        })
    }
}

impl InputSource for CaptureSource {
    fn next_event(&mut self) -> Result<Option<InputEvent<'_>>, InputError> {
        if let Some(i) = self.handed.take() {
            self.files[i].advance()?;
        }
        let next = self
            .files
            .iter()
            .enumerate()
            .filter(|(_, f)| f.ready)
            .min_by_key(|(i, f)| (f.recv_ns, *i))
            .map(|(i, _)| i);
        let Some(i) = next else {
            return Ok(None);
        };
        self.handed = Some(i);
        Ok(Some(self.files[i].event()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use levibot_gateway::capture::{Recording, testdata_dir};

    #[test]
    fn the_testdata_capture_streams_in_receive_order_with_its_snapshots() {
        let mut source = CaptureSource::open(&testdata_dir()).unwrap();
        let recording = Recording::testdata().unwrap();
        let expected_stream: Vec<Vec<u8>> = recording
            .messages()
            .map(|m| m.unwrap().body.to_vec())
            .collect();
        let snapshots = recording.snapshot_lines().unwrap().len();
        let (mut stream, mut rest, mut last) = (Vec::new(), 0, 0);
        while let Some(event) = source.next_event().unwrap() {
            assert!(event.recv_ns >= last, "receive times go back");
            last = event.recv_ns;
            match event.kind {
                InputKind::Stream => stream.push(event.bytes.to_vec()),
                InputKind::Trading | InputKind::Decoded(_) => {
                    panic!("a capture holds no trading changes, no decoded records")
                }
                InputKind::Snapshot => {
                    assert!(event.symbol.is_some());
                    assert!(event.bytes.starts_with(b"{\"lastUpdateId\""));
                    rest += 1;
                }
            }
        }
        assert_eq!(stream, expected_stream);
        assert_eq!(rest, snapshots);
    }

    #[test]
    fn a_bad_line_is_named_by_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("X.ws.1.0"),
            "wss://x <-> 1.0\n1.5: {\"a\":1}\nnot a line\n",
        )
        .unwrap();
        let mut source = CaptureSource::open(dir.path()).unwrap();
        let first = source.next_event().unwrap().unwrap();
        assert_eq!(
            (first.recv_ns, first.bytes),
            (1_500_000_000, &b"{\"a\":1}"[..])
        );
        let err = source.next_event().unwrap_err().to_string();
        assert!(err.contains("X.ws.1.0:3"), "{err}");
    }
}
