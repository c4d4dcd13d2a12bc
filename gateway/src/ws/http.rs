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
use super::{HTTP_BODY_LEN_MAX, HTTP_HEAD_LEN_MAX, HTTP_HEADERS_MAX};

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
    #[error("GET {path}: the response head is over {HTTP_HEAD_LEN_MAX} bytes")]
    HeadTooLarge { path: String },
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
    #[error("GET {path}: bad chunk at body byte {at}: {why}")]
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
    let mut read_more = |buf: &mut Vec<u8>| -> Result<usize, HttpError> {
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
                Err(timed_out())
            }
            Err(e) => Err(io(e)),
        }
    };

    let mut buf = Vec::with_capacity(HTTP_READ_CHUNK_LEN);
    let (head_len, status, body_len, chunked) = loop {
        let mut headers = [httparse::EMPTY_HEADER; HTTP_HEADERS_MAX];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&buf) {
            Ok(httparse::Status::Complete(n)) => {
                let status = response.code.unwrap_or(0);
                let mut body_len = None;
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
                        let len: u64 = value
                            .trim()
                            .parse()
                            .map_err(|_| bad("Content-Length", "not a number"))?;
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
        if len > HTTP_BODY_LEN_MAX as u64 {
            return Err(too_large(len));
        }
        let len = len as usize;
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
        while read_more(&mut buf)? > 0 {
            if buf.len() > HTTP_BODY_LEN_MAX {
                return Err(too_large(buf.len() as u64));
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

/// Decodes a chunked body; `raw` holds what was read after the head.
fn read_chunked(
    path: &str,
    mut raw: Vec<u8>,
    read_more: &mut impl FnMut(&mut Vec<u8>) -> Result<usize, HttpError>,
) -> Result<Vec<u8>, HttpError> {
    let mut body = Vec::new();
    let mut at = 0; // parse position in `raw`
    let chunk_error = |at, why| HttpError::Chunk {
        path: path.to_owned(),
        at,
        why,
    };
    loop {
        match httparse::parse_chunk_size(&raw[at..]) {
            Ok(httparse::Status::Complete((size_len, size))) => {
                if body.len() as u64 + size > HTTP_BODY_LEN_MAX as u64 {
                    return Err(HttpError::BodyTooLarge {
                        path: path.to_owned(),
                        len: body.len() as u64 + size,
                    });
                }
                let size = size as usize;
                let data = at + size_len;
                // The chunk's data and its CRLF.
                while raw.len() < data + size + 2 {
                    if read_more(&mut raw)? == 0 {
                        return Err(chunk_error(at, "the connection closed inside a chunk"));
                    }
                }
                if &raw[data + size..data + size + 2] != b"\r\n" {
                    return Err(chunk_error(data + size, "no CRLF after the chunk data"));
                }
                body.extend_from_slice(&raw[data..data + size]);
                at = data + size + 2;
                if size == 0 {
                    // The last chunk; trailers are not used by the venues we read.
                    return Ok(body);
                }
            }
            Ok(httparse::Status::Partial) => {
                if raw.len() - at > HTTP_HEAD_LEN_MAX {
                    return Err(chunk_error(at, "a chunk size line that does not end"));
                }
                if read_more(&mut raw)? == 0 {
                    return Err(chunk_error(
                        at,
                        "the connection closed before the last chunk",
                    ));
                }
            }
            Err(_) => return Err(chunk_error(at, "an invalid chunk size line")),
        }
    }
}
