//! A minimal blocking HTTP/1.1 GET for the REST depth snapshot (cold path: on connect and
//! resync). One request per connection (`Connection: close`); the body is read by
//! `Content-Length`, chunked transfer coding, or to the end of the stream, and is bounded by
//! [`HTTP_BODY_LEN_MAX`].

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};

use crate::tls::{TlsConfig, server_name_of_host};

use super::path::{PathError, depth_snapshot_path};
use super::{
    HTTP_BODY_LEN_MAX, HTTP_CHUNK_LINE_LEN_MAX, HTTP_CHUNKS_MAX, HTTP_HEAD_LEN_MAX,
    HTTP_HEADERS_MAX,
};

/// Bytes of an error response's body quoted in [`HttpError::Status`].
pub const HTTP_ERROR_BODY_QUOTED_MAX: usize = 256;
/// Read size of the blocking reads.
const HTTP_READ_CHUNK_LEN: usize = 16 * 1024;

/// Why a GET failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("GET {path} on {addr}: {source}")]
    Io {
        addr: SocketAddr,
        path: String,
        source: std::io::Error,
    },
    #[error("GET {path}: no answer within {timeout:?}")]
    Timeout { path: String, timeout: Duration },
    #[error("GET {path}: malformed response head at or before byte {at}: {error}")]
    Head {
        path: String,
        at: usize,
        error: String,
    },
    #[error(
        "GET {path}: the response head is over {HTTP_HEAD_LEN_MAX} bytes (no end of it in the first {at})"
    )]
    HeadTooLarge { path: String, at: usize },
    #[error("GET {path}: status {status}: {body}")]
    Status {
        path: String,
        status: u16,
        body: String,
    },
    #[error("GET {path}: header {name}: {value:?} ({why})")]
    BadHeader {
        path: String,
        name: &'static str,
        value: String,
        why: &'static str,
    },
    #[error(
        "GET {path}: a body of at least {len} bytes is over the {HTTP_BODY_LEN_MAX}-byte limit"
    )]
    BodyTooLarge { path: String, len: u64 },
    /// `at`: the offset from the first byte after the head.
    #[error("GET {path}: chunked body, at byte {at} after the head: {why}")]
    Chunk {
        path: String,
        at: usize,
        why: &'static str,
    },
    #[error("GET {path}: the connection closed after {got} of {expected} body bytes")]
    Truncated {
        path: String,
        got: usize,
        expected: usize,
    },
    #[error(transparent)]
    Path(#[from] PathError),
    #[error("GET {path}: TLS: {reason}")]
    Tls { path: String, reason: String },
}

/// Where a venue's REST API answers (Binance Spot: `https://api.binance.com`, a different host
/// from its streams'): the address to connect to, the `Host` header (`host[:port]`), and TLS
/// (`None`: plain HTTP).
#[derive(Clone, Debug)]
pub struct RestEndpoint {
    pub addr: SocketAddr,
    pub host: String,
    pub tls: Option<TlsConfig>,
}

/// Fetches `GET /api/v3/depth?symbol=<symbol>&limit=<limit>` from `addr` (`host` goes in the
/// `Host` header) and returns the body for `Decoder::decode_snapshot`.
pub fn fetch_depth_snapshot(
    addr: SocketAddr,
    host: &str,
    symbol: &str,
    limit: u32,
    timeout: Duration,
) -> Result<Vec<u8>, HttpError> {
    let path = depth_snapshot_path(symbol, limit)?;
    http_get(addr, host, &path, timeout)
}

/// [`fetch_depth_snapshot`] over HTTPS (`tls`: the roots or CA to trust), or over plain HTTP
/// with `None`: what a live feed fetches from a real venue.
pub fn fetch_depth_snapshot_over(
    addr: SocketAddr,
    host: &str,
    symbol: &str,
    limit: u32,
    timeout: Duration,
    tls: Option<&TlsConfig>,
) -> Result<Vec<u8>, HttpError> {
    let path = depth_snapshot_path(symbol, limit)?;
    get(addr, host, &path, timeout, tls)
}

/// `GET path` on `addr`; the body of a 200 answer. The whole exchange must end within `timeout`.
pub fn http_get(
    addr: SocketAddr,
    host: &str,
    path: &str,
    timeout: Duration,
) -> Result<Vec<u8>, HttpError> {
    get(addr, host, path, timeout, None)
}

/// [`http_get`] over TLS: the server's certificate is checked against `tls` for the host name
/// of `host` (its port dropped).
pub fn https_get(
    addr: SocketAddr,
    host: &str,
    path: &str,
    timeout: Duration,
    tls: &TlsConfig,
) -> Result<Vec<u8>, HttpError> {
    get(addr, host, path, timeout, Some(tls))
}

/// The connection of one GET: plain, or TLS over the same blocking socket.
enum Conn {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Conn {
    fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(tcp) => tcp,
            Conn::Tls(stream) => &stream.sock,
        }
    }
}

impl std::io::Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(tcp) => tcp.read(buf),
            Conn::Tls(stream) => stream.read(buf),
        }
    }
}

impl std::io::Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(tcp) => tcp.write(buf),
            Conn::Tls(stream) => stream.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Plain(tcp) => tcp.flush(),
            Conn::Tls(stream) => stream.flush(),
        }
    }
}

fn get(
    addr: SocketAddr,
    host: &str,
    path: &str,
    timeout: Duration,
    tls: Option<&TlsConfig>,
) -> Result<Vec<u8>, HttpError> {
    let deadline = Instant::now() + timeout;
    let io = |source| HttpError::Io {
        addr,
        path: path.to_owned(),
        source,
    };
    let timed_out = || HttpError::Timeout {
        path: path.to_owned(),
        timeout,
    };
    let tcp = TcpStream::connect_timeout(&addr, timeout).map_err(io)?;
    tcp.set_nodelay(true).map_err(io)?;
    tcp.set_write_timeout(Some(timeout)).map_err(io)?;
    // The handshake runs inside the first write and read, under the same timeouts.
    tcp.set_read_timeout(Some(timeout)).map_err(io)?;
    let mut stream = match tls {
        None => Conn::Plain(tcp),
        Some(tls) => {
            let name = ServerName::try_from(server_name_of_host(host).to_owned()).map_err(|e| {
                HttpError::Tls {
                    path: path.to_owned(),
                    reason: format!("server name {host:?}: {e}"),
                }
            })?;
            let conn =
                ClientConnection::new(Arc::clone(tls.client_config()), name).map_err(|e| {
                    HttpError::Tls {
                        path: path.to_owned(),
                        reason: e.to_string(),
                    }
                })?;
            Conn::Tls(Box::new(StreamOwned::new(conn, tcp)))
        }
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\n\
         Host: {host}\r\n\
         User-Agent: levibot\r\n\
         Accept: application/json\r\n\
         Connection: close\r\n\
         \r\n"
    );
    stream.write_all(request.as_bytes()).map_err(io)?;

    // Reads more bytes into `buf`; 0 at the end of the stream.
    let read_more = |buf: &mut Vec<u8>| -> Result<usize, HttpError> {
        let left = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(timed_out)?;
        stream.tcp().set_read_timeout(Some(left)).map_err(io)?;
        let at = buf.len();
        buf.resize(at + HTTP_READ_CHUNK_LEN, 0);
        match stream.read(&mut buf[at..]) {
            Ok(n) => {
                buf.truncate(at + n);
                Ok(n)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                buf.truncate(at);
                Err(timed_out())
            }
            Err(e) => {
                buf.truncate(at);
                Err(io(e))
            }
        }
    };
    read_response(path, read_more)
}

/// [`read_response`] over bytes in memory, handed over `read_len` (at least 1) bytes at a time,
/// then the end of the stream: what a server that sent `bytes` and closed would produce. For
/// tests and the fuzzer.
pub fn read_response_bytes(
    path: &str,
    bytes: &[u8],
    read_len: usize,
) -> Result<Vec<u8>, HttpError> {
    let read_len = read_len.max(1);
    let mut rest = bytes;
    read_response(path, |buf: &mut Vec<u8>| {
        let n = rest.len().min(read_len);
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        Ok(n)
    })
}

/// Reads one HTTP/1.1 response (`path`: the request's, for the errors) and returns the body of
/// a 200 answer. `read_more` appends the next bytes the server sent to its buffer and returns
/// how many, 0 at the end of the stream (sans-IO: [`http_get`] reads a socket, the tests and
/// the fuzzer a slice).
///
/// Every length is checked before it is used, and what is buffered is bounded whatever the
/// server sends: the head by [`HTTP_HEAD_LEN_MAX`], the body by [`HTTP_BODY_LEN_MAX`], and for
/// a chunked body each chunk size line (extensions included) by [`HTTP_CHUNK_LINE_LEN_MAX`],
/// the number of chunks by [`HTTP_CHUNKS_MAX`] and the trailers by [`HTTP_HEAD_LEN_MAX`]; each
/// excess is an error that names it and its byte offset (plus at most one read's bytes
/// buffered past a bound before it is seen).
pub fn read_response(
    path: &str,
    mut read_more: impl FnMut(&mut Vec<u8>) -> Result<usize, HttpError>,
) -> Result<Vec<u8>, HttpError> {
    let mut buf = Vec::with_capacity(HTTP_READ_CHUNK_LEN);
    let (head_len, status, body_len, chunked) = loop {
        let mut headers = [httparse::EMPTY_HEADER; HTTP_HEADERS_MAX];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&buf) {
            Ok(httparse::Status::Complete(n)) => {
                if n > HTTP_HEAD_LEN_MAX {
                    return Err(HttpError::HeadTooLarge {
                        path: path.to_owned(),
                        at: n,
                    });
                }
                let status = response.code.unwrap_or(0);
                let mut body_len: Option<u64> = None;
                let mut chunked = false;
                for h in response.headers.iter() {
                    let value = String::from_utf8_lossy(h.value);
                    let bad = |name, why| HttpError::BadHeader {
                        path: path.to_owned(),
                        name,
                        value: value.clone().into_owned(),
                        why,
                    };
                    if h.name.eq_ignore_ascii_case("Content-Length") {
                        let digits = value.trim();
                        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                            return Err(bad("Content-Length", "not a number"));
                        }
                        let len: u64 = digits
                            .parse()
                            .map_err(|_| bad("Content-Length", "over 2^64 - 1"))?;
                        if body_len.is_some_and(|first| first != len) {
                            return Err(bad("Content-Length", "two different lengths"));
                        }
                        body_len = Some(len);
                    } else if h.name.eq_ignore_ascii_case("Transfer-Encoding") {
                        if !value.trim().eq_ignore_ascii_case("chunked") {
                            return Err(bad("Transfer-Encoding", "only chunked is supported"));
                        }
                        chunked = true;
                    } else if h.name.eq_ignore_ascii_case("Content-Encoding")
                        && !value.trim().eq_ignore_ascii_case("identity")
                    {
                        return Err(bad("Content-Encoding", "none was accepted"));
                    }
                }
                break (n, status, body_len, chunked);
            }
            Ok(httparse::Status::Partial) => {
                if buf.len() > HTTP_HEAD_LEN_MAX {
                    return Err(HttpError::HeadTooLarge {
                        path: path.to_owned(),
                        at: buf.len(),
                    });
                }
                if read_more(&mut buf)? == 0 {
                    return Err(HttpError::Head {
                        path: path.to_owned(),
                        at: buf.len(),
                        error: "the connection closed inside the head".to_owned(),
                    });
                }
            }
            Err(error) => {
                return Err(HttpError::Head {
                    path: path.to_owned(),
                    at: buf.len(),
                    error: error.to_string(),
                });
            }
        }
    };
    let too_large = |len: u64| HttpError::BodyTooLarge {
        path: path.to_owned(),
        len,
    };
    buf.drain(..head_len);
    let body = if chunked {
        read_chunked(path, buf, &mut read_more)?
    } else if let Some(len) = body_len {
        let len = match usize::try_from(len) {
            Ok(len) if len <= HTTP_BODY_LEN_MAX => len,
            _ => return Err(too_large(len)),
        };
        while buf.len() < len {
            if read_more(&mut buf)? == 0 {
                return Err(HttpError::Truncated {
                    path: path.to_owned(),
                    got: buf.len(),
                    expected: len,
                });
            }
        }
        buf.truncate(len);
        buf
    } else {
        loop {
            if buf.len() > HTTP_BODY_LEN_MAX {
                return Err(too_large(buf.len() as u64));
            }
            if read_more(&mut buf)? == 0 {
                break;
            }
        }
        buf
    };
    if status != 200 {
        let quoted = &body[..body.len().min(HTTP_ERROR_BODY_QUOTED_MAX)];
        return Err(HttpError::Status {
            path: path.to_owned(),
            status,
            body: String::from_utf8_lossy(quoted).into_owned(),
        });
    }
    Ok(body)
}

/// Decodes a chunked body (RFC 9112 7.1); `raw` holds what was read after the head. Bytes are
/// dropped from `raw` as each chunk is taken, so it holds at most one chunk and one read more.
/// Offsets in errors count from the first byte after the head.
fn read_chunked(
    path: &str,
    mut raw: Vec<u8>,
    read_more: &mut impl FnMut(&mut Vec<u8>) -> Result<usize, HttpError>,
) -> Result<Vec<u8>, HttpError> {
    let mut body = Vec::new();
    // Offset of raw[0] from the first byte after the head.
    let mut base = 0usize;
    let mut chunks = 0usize;
    let chunk_error = |at, why| HttpError::Chunk {
        path: path.to_owned(),
        at,
        why,
    };
    loop {
        // The chunk size line: hex size, extensions, CRLF.
        let (line_len, size) = loop {
            match httparse::parse_chunk_size(&raw) {
                Ok(httparse::Status::Complete((line_len, _)))
                    if line_len > HTTP_CHUNK_LINE_LEN_MAX =>
                {
                    return Err(chunk_error(base, CHUNK_LINE_TOO_LONG));
                }
                Ok(httparse::Status::Complete(line)) => break line,
                Ok(httparse::Status::Partial) => {
                    if raw.len() > HTTP_CHUNK_LINE_LEN_MAX {
                        return Err(chunk_error(base, CHUNK_LINE_TOO_LONG));
                    }
                    if read_more(&mut raw)? == 0 {
                        return Err(chunk_error(
                            base.saturating_add(raw.len()),
                            "the connection closed before the last chunk",
                        ));
                    }
                }
                Err(_) => return Err(chunk_error(base, "an invalid chunk size line")),
            }
        };
        chunks += 1;
        if chunks > HTTP_CHUNKS_MAX {
            return Err(chunk_error(base, "more chunks than HTTP_CHUNKS_MAX"));
        }
        let total = (body.len() as u64).checked_add(size);
        let size = match total {
            // size <= total <= HTTP_BODY_LEN_MAX: it fits a usize, and the sums below cannot
            // overflow.
            Some(total) if total <= HTTP_BODY_LEN_MAX as u64 => size as usize,
            _ => {
                return Err(HttpError::BodyTooLarge {
                    path: path.to_owned(),
                    len: total.unwrap_or(u64::MAX),
                });
            }
        };
        if size == 0 {
            // The last chunk, then the trailer section (ignored) and its empty line.
            raw.drain(..line_len);
            base = base.saturating_add(line_len);
            return read_trailers(path, raw, base, read_more).map(|()| body);
        }
        // The chunk's data and its CRLF.
        let data_end = line_len + size;
        let chunk_end = data_end + 2;
        while raw.len() < chunk_end {
            if read_more(&mut raw)? == 0 {
                return Err(chunk_error(
                    base.saturating_add(raw.len()),
                    "the connection closed inside a chunk",
                ));
            }
        }
        if &raw[data_end..chunk_end] != b"\r\n" {
            return Err(chunk_error(
                base.saturating_add(data_end),
                "no CRLF after the chunk data",
            ));
        }
        body.extend_from_slice(&raw[line_len..data_end]);
        raw.drain(..chunk_end);
        base = base.saturating_add(chunk_end);
    }
}

const CHUNK_LINE_TOO_LONG: &str =
    "a chunk size line (extensions included) longer than HTTP_CHUNK_LINE_LEN_MAX";

/// Skips the trailer section after the last chunk: header lines up to an empty line, at most
/// [`HTTP_HEAD_LEN_MAX`] bytes. `raw` starts right after the last chunk's size line, at byte
/// `base` after the head.
fn read_trailers(
    path: &str,
    mut raw: Vec<u8>,
    base: usize,
    read_more: &mut impl FnMut(&mut Vec<u8>) -> Result<usize, HttpError>,
) -> Result<(), HttpError> {
    let chunk_error = |at, why| HttpError::Chunk {
        path: path.to_owned(),
        at,
        why,
    };
    loop {
        let mut headers = [httparse::EMPTY_HEADER; HTTP_HEADERS_MAX];
        match httparse::parse_headers(&raw, &mut headers) {
            Ok(httparse::Status::Complete((len, _))) if len > HTTP_HEAD_LEN_MAX => {
                return Err(chunk_error(base, TRAILERS_TOO_LONG));
            }
            Ok(httparse::Status::Complete(_)) => return Ok(()),
            Ok(httparse::Status::Partial) => {
                if raw.len() > HTTP_HEAD_LEN_MAX {
                    return Err(chunk_error(base, TRAILERS_TOO_LONG));
                }
                if read_more(&mut raw)? == 0 {
                    return Err(chunk_error(
                        base.saturating_add(raw.len()),
                        "the connection closed inside the trailers",
                    ));
                }
            }
            Err(_) => return Err(chunk_error(base, "a malformed trailer section")),
        }
    }
}

const TRAILERS_TOO_LONG: &str = "trailers longer than HTTP_HEAD_LEN_MAX";
