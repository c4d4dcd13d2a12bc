//! The server side of the wire, sans IO: the HTTP/1.1 request head (a WebSocket upgrade or a
//! REST GET), its routes, the answers, unmasked frames out and masked client frames in
//! (RFC 6455 section 5). The frame header parsing, unmasking and the accept key are the
//! gateway's ([`parse_header`], [`apply_mask`], [`accept_key`]); what a server does differently
//! (it writes unmasked frames, and insists that the client's are masked) is here.

use levibot_gateway::ws::frame::{Opcode, apply_mask, parse_header};
use levibot_gateway::ws::path::{SNAPSHOT_LIMIT_MAX, STREAMS_PER_CONNECTION_MAX};
use levibot_gateway::ws::{CONTROL_PAYLOAD_LEN_MAX, accept_key, close_code};

/// Longest request head accepted.
pub const REQUEST_HEAD_LEN_MAX: usize = 8 * 1024;
/// Most headers in a request.
pub const REQUEST_HEADERS_MAX: usize = 32;
/// Longest client frame payload accepted (clients send only control frames and small requests).
pub const CLIENT_FRAME_LEN_MAX: usize = 64 * 1024;
/// The `limit` of a depth request without one (Binance's default).
pub const SNAPSHOT_LIMIT_DEFAULT: usize = 100;
/// Close code: the server is overloaded or the client too slow (RFC 6455 7.4.1, 1008 policy
/// violation: it did not keep up).
pub const CLOSE_POLICY_VIOLATION: u16 = 1008;
/// Close code: an unexpected condition (no pong in time).
pub const CLOSE_INTERNAL_ERROR: u16 = 1011;

/// What a request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /api/v3/depth?symbol=X&limit=N`.
    Depth { symbol: String, limit: usize },
    /// `GET /api/v3/exchangeInfo`, of every symbol (`symbols` empty), `?symbol=X`, or
    /// `?symbols=["X","Y"]` (percent-encoded, as Binance takes it).
    ExchangeInfo { symbols: Vec<String> },
    /// A WebSocket upgrade on `/stream?streams=a/b` (`combined`: each message in the
    /// `{"stream":..,"data":..}` wrapper) or `/ws/a/b` (the bare events).
    Stream {
        streams: Vec<String>,
        combined: bool,
        /// The client's `Sec-WebSocket-Key`.
        key: String,
    },
}

/// A request refused, with the HTTP status to answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("HTTP {status}: {message}")]
pub struct Refusal {
    pub status: u16,
    pub message: String,
}

impl Refusal {
    fn new(status: u16, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            message: message.into(),
        }
    }
}

/// The reason phrase of the statuses this server answers.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// A whole HTTP response with a body (`Connection: close`).
pub fn http_response(status: u16, content_type: &str, body: &str) -> Vec<u8> {
    let mut extra = "";
    if status == 426 {
        extra = "Sec-WebSocket-Version: 13\r\n";
    }
    format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{body}",
        reason_phrase(status),
        body.len()
    )
    .into_bytes()
}

/// A refusal as an HTTP response, its body in Binance's error shape.
pub fn refusal_response(refusal: &Refusal) -> Vec<u8> {
    let body = serde_json::json!({ "code": -1, "msg": refusal.message }).to_string();
    http_response(refusal.status, "application/json", &body)
}

/// The `101 Switching Protocols` answer to a client's `Sec-WebSocket-Key`.
pub fn upgrade_response(key: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        accept_key(key)
    )
    .into_bytes()
}

/// A query parameter's value (no percent-decoding: symbols and stream names need none).
fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

/// Longest `symbols=` list venue-sim takes (Binance's own limit is in its URL length).
const EXCHANGE_INFO_SYMBOLS_MAX: usize = 100;

/// `symbols=` of `/api/v3/exchangeInfo`: a JSON array of strings, percent-encoded.
fn symbol_list(encoded: &str) -> Result<Vec<String>, Refusal> {
    let bad = |why: &str| Refusal::new(400, format!("symbols={encoded}: {why}"));
    let mut decoded = Vec::with_capacity(encoded.len());
    let mut bytes = encoded.bytes();
    while let Some(b) = bytes.next() {
        if b != b'%' {
            decoded.push(b);
            continue;
        }
        let hex = [bytes.next(), bytes.next()];
        let value = match hex {
            [Some(h), Some(l)] => std::str::from_utf8(&[h, l])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok()),
            _ => None,
        };
        decoded.push(value.ok_or_else(|| bad("a bad %-escape"))?);
    }
    let list: Vec<String> =
        serde_json::from_slice(&decoded).map_err(|_| bad("not a JSON array of symbols"))?;
    if list.is_empty() || list.len() > EXCHANGE_INFO_SYMBOLS_MAX {
        return Err(bad("1 to 100 symbols"));
    }
    Ok(list.iter().map(|s| s.to_ascii_uppercase()).collect())
}

/// Is `key` a valid `Sec-WebSocket-Key`: base64 of 16 bytes (24 characters ending in `==`)?
fn valid_key(key: &str) -> bool {
    let b = key.as_bytes();
    b.len() == 24
        && b.ends_with(b"==")
        && b[..22]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
        // The 22nd character carries only 2 bits of the 16th byte: its low 4 bits are 0.
        && b"AQgw".contains(&b[21])
}

fn stream_names(list: &str) -> Result<Vec<String>, Refusal> {
    let streams: Vec<String> = list
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if streams.is_empty() {
        return Err(Refusal::new(400, "no stream given"));
    }
    if streams.len() > STREAMS_PER_CONNECTION_MAX {
        return Err(Refusal::new(
            400,
            format!(
                "{} streams is over the {STREAMS_PER_CONNECTION_MAX} per connection",
                streams.len()
            ),
        ));
    }
    Ok(streams)
}

/// Parses the request head at the start of `buf`: `Ok(None)` while it is incomplete,
/// `Ok(Some((head_len, route)))` once it is whole and acceptable.
pub fn parse_request(buf: &[u8]) -> Result<Option<(usize, Route)>, Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; REQUEST_HEADERS_MAX];
    let mut request = httparse::Request::new(&mut headers);
    let head_len = match request.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() >= REQUEST_HEAD_LEN_MAX {
                return Err(Refusal::new(
                    431,
                    format!("request head over {REQUEST_HEAD_LEN_MAX} bytes"),
                ));
            }
            return Ok(None);
        }
        Err(e) => return Err(Refusal::new(400, format!("malformed request: {e}"))),
    };
    if request.method != Some("GET") {
        return Err(Refusal::new(
            405,
            format!("method {:?}: only GET is served", request.method),
        ));
    }
    let target = request.path.unwrap_or("");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let header = |name: &str| -> Option<&str> {
        request
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
            .map(str::trim)
    };

    if path == "/api/v3/depth" {
        let symbol = query_param(query, "symbol")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Refusal::new(400, "mandatory parameter 'symbol' was not sent"))?;
        let limit = match query_param(query, "limit") {
            None => SNAPSHOT_LIMIT_DEFAULT,
            Some(l) => l
                .parse::<usize>()
                .ok()
                .filter(|l| (1..=SNAPSHOT_LIMIT_MAX as usize).contains(l))
                .ok_or_else(|| {
                    Refusal::new(
                        400,
                        format!("limit {l:?} is not in 1..={SNAPSHOT_LIMIT_MAX}"),
                    )
                })?,
        };
        return Ok(Some((
            head_len,
            Route::Depth {
                symbol: symbol.to_ascii_uppercase(),
                limit,
            },
        )));
    }

    if path == "/api/v3/exchangeInfo" {
        let symbols = match (query_param(query, "symbol"), query_param(query, "symbols")) {
            (None, None) => Vec::new(),
            (Some(one), None) => vec![one.to_ascii_uppercase()],
            (None, Some(list)) => symbol_list(list)?,
            (Some(_), Some(_)) => {
                return Err(Refusal::new(400, "symbol and symbols cannot both be sent"));
            }
        };
        return Ok(Some((head_len, Route::ExchangeInfo { symbols })));
    }

    let (streams, combined) = if path == "/stream" {
        let list = query_param(query, "streams")
            .ok_or_else(|| Refusal::new(400, "/stream without a streams= parameter"))?;
        (stream_names(list)?, true)
    } else if let Some(list) = path.strip_prefix("/ws/") {
        (stream_names(list)?, false)
    } else {
        return Err(Refusal::new(404, format!("no such path: {path}")));
    };

    // RFC 6455 4.2.1: what the opening handshake must carry.
    if request.version != Some(1) {
        return Err(Refusal::new(400, "a WebSocket upgrade needs HTTP/1.1"));
    }
    let upgrade = header("Upgrade").unwrap_or("");
    if !upgrade
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case("websocket"))
    {
        return Err(Refusal::new(
            426,
            format!("{path} is a WebSocket endpoint: Upgrade: websocket is missing"),
        ));
    }
    let connection = header("Connection").unwrap_or("");
    if !connection
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
    {
        return Err(Refusal::new(
            400,
            "Connection header without the Upgrade token",
        ));
    }
    if header("Sec-WebSocket-Version") != Some("13") {
        return Err(Refusal::new(426, "Sec-WebSocket-Version must be 13"));
    }
    let key = header("Sec-WebSocket-Key")
        .filter(|k| valid_key(k))
        .ok_or_else(|| Refusal::new(400, "Sec-WebSocket-Key missing or not base64 of 16 bytes"))?;
    Ok(Some((
        head_len,
        Route::Stream {
            streams,
            combined,
            key: key.to_owned(),
        },
    )))
}

/// Appends one unmasked frame (FIN set) to `out`, as a server sends them.
pub fn write_frame(out: &mut Vec<u8>, opcode: Opcode, payload: &[u8]) {
    write_raw_frame(out, 0x80 | opcode as u8, payload);
}

/// Appends an unmasked frame whose first byte (FIN, RSV, opcode) is `b0`, as given: also for
/// deliberately broken frames.
pub fn write_raw_frame(out: &mut Vec<u8>, b0: u8, payload: &[u8]) {
    out.push(b0);
    match payload.len() {
        len @ 0..=125 => out.push(len as u8),
        len @ 126..=0xFFFF => {
            out.push(126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            out.push(127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
}

/// Appends a Close frame with `code` and `reason` (truncated to fit a control frame).
pub fn write_close(out: &mut Vec<u8>, code: u16, reason: &str) {
    let mut payload = code.to_be_bytes().to_vec();
    let room = CONTROL_PAYLOAD_LEN_MAX - 2;
    let mut end = reason.len().min(room);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    write_frame(out, Opcode::Close, &payload);
}

/// A control frame from a client (data frames are read and dropped: this server takes no
/// requests over the socket).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientFrame {
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    /// The close code, if the client gave one.
    Close(Option<u16>),
    /// A data frame, ignored.
    Data,
}

/// A client frame that breaks RFC 6455: the connection ends with `code`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("client frame at stream byte {offset}: {why} (close {code})")]
pub struct ProtocolError {
    pub offset: u64,
    pub code: u16,
    pub why: &'static str,
}

/// Reads a client's frames from the bytes received.
#[derive(Debug, Default)]
pub struct FrameReader {
    buf: Vec<u8>,
    /// Stream offset of `buf[0]`.
    offset: u64,
}

impl FrameReader {
    /// Takes received bytes.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received and not yet read as a frame. After [`next_frame`](Self::next_frame)
    /// returned `Ok(None)`, less than one frame: at most a header and
    /// [`CLIENT_FRAME_LEN_MAX`] payload bytes.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Stream offset of the next frame: the bytes read as frames so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next whole frame, `Ok(None)` if more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<ClientFrame>, ProtocolError> {
        let error = |code, why| ProtocolError {
            offset: self.offset,
            code,
            why,
        };
        let header = match parse_header(&self.buf) {
            Ok(Some(h)) => h,
            Ok(None) => return Ok(None),
            Err(_) => {
                return Err(error(
                    close_code::PROTOCOL_ERROR,
                    "64-bit length with its top bit set",
                ));
            }
        };
        let Some(key) = header.mask else {
            return Err(error(close_code::PROTOCOL_ERROR, "unmasked client frame"));
        };
        if header.rsv != 0 {
            return Err(error(
                close_code::PROTOCOL_ERROR,
                "RSV bits set without an extension",
            ));
        }
        let Some(opcode) = Opcode::from_bits(header.opcode_bits) else {
            return Err(error(close_code::PROTOCOL_ERROR, "reserved opcode"));
        };
        if header.payload_len > CLIENT_FRAME_LEN_MAX as u64 {
            return Err(error(
                close_code::MESSAGE_TOO_BIG,
                "frame over CLIENT_FRAME_LEN_MAX",
            ));
        }
        if opcode.is_control()
            && (!header.fin || header.payload_len > CONTROL_PAYLOAD_LEN_MAX as u64)
        {
            return Err(error(
                close_code::PROTOCOL_ERROR,
                "fragmented or oversized control frame",
            ));
        }
        let total = header.header_len + header.payload_len as usize;
        if self.buf.len() < total {
            return Ok(None);
        }
        let mut payload = self.buf[header.header_len..total].to_vec();
        apply_mask(&mut payload, key, 0);
        let frame = match opcode {
            Opcode::Ping => ClientFrame::Ping(payload),
            Opcode::Pong => ClientFrame::Pong(payload),
            Opcode::Close => match payload.len() {
                0 => ClientFrame::Close(None),
                1 => {
                    return Err(error(
                        close_code::PROTOCOL_ERROR,
                        "a one-byte close payload",
                    ));
                }
                _ => ClientFrame::Close(Some(u16::from_be_bytes([payload[0], payload[1]]))),
            },
            Opcode::Text | Opcode::Binary | Opcode::Continuation => ClientFrame::Data,
        };
        self.buf.drain(..total);
        self.offset += total as u64;
        Ok(Some(frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use levibot_gateway::ws::frame::write_masked_frame;

    #[test]
    fn routes_and_refusals() {
        let ws = b"GET /stream?streams=nknusdt@depth@100ms/nknusdt@bookTicker HTTP/1.1\r\nHost: x\r\n\
                   Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
                   Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        let (n, route) = parse_request(ws).unwrap().unwrap();
        assert_eq!(n, ws.len());
        assert_eq!(
            route,
            Route::Stream {
                streams: vec!["nknusdt@depth@100ms".into(), "nknusdt@bookTicker".into()],
                combined: true,
                key: "dGhlIHNhbXBsZSBub25jZQ==".into()
            }
        );
        assert_eq!(parse_request(&ws[..40]).unwrap(), None);
        let rest = b"GET /api/v3/depth?symbol=nknusdt&limit=5 HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(
            parse_request(rest).unwrap().unwrap().1,
            Route::Depth {
                symbol: "NKNUSDT".into(),
                limit: 5
            }
        );
        let status = |req: &[u8]| parse_request(req).unwrap_err().status;
        assert_eq!(status(b"GET /ws/a HTTP/1.1\r\nHost: x\r\n\r\n"), 426);
        assert_eq!(status(b"GET /nope HTTP/1.1\r\n\r\n"), 404);
        assert_eq!(status(b"POST /stream?streams=a HTTP/1.1\r\n\r\n"), 405);
        assert_eq!(status(b"GET /api/v3/depth?limit=5 HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(
            status(b"GET /api/v3/depth?symbol=A&limit=0 HTTP/1.1\r\n\r\n"),
            400
        );
        let bad_key = b"GET /ws/a HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                        Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n";
        assert_eq!(status(bad_key), 400);
    }

    #[test]
    fn exchange_info_takes_one_symbol_a_percent_encoded_list_or_none() {
        let route = |target: &str| {
            let req = format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n");
            parse_request(req.as_bytes()).map(|r| r.map(|(_, route)| route))
        };
        let symbols = |list: &[&str]| {
            Ok(Some(Route::ExchangeInfo {
                symbols: list.iter().map(|s| s.to_string()).collect(),
            }))
        };
        assert_eq!(route("/api/v3/exchangeInfo"), symbols(&[]));
        assert_eq!(
            route("/api/v3/exchangeInfo?symbol=btcusdt"),
            symbols(&["BTCUSDT"])
        );
        assert_eq!(
            route("/api/v3/exchangeInfo?symbols=%5B%22BTCUSDT%22,%22ethusdt%22%5D"),
            symbols(&["BTCUSDT", "ETHUSDT"])
        );
        for bad in [
            "/api/v3/exchangeInfo?symbols=%5B%22A%22",
            "/api/v3/exchangeInfo?symbols=%5",
            "/api/v3/exchangeInfo?symbols=%zz",
            "/api/v3/exchangeInfo?symbols=%5B%5D",
            "/api/v3/exchangeInfo?symbol=A&symbols=%5B%22A%22%5D",
        ] {
            assert_eq!(route(bad).unwrap_err().status, 400, "{bad}");
        }
    }

    #[test]
    fn the_rfc_example_key() {
        let answer = String::from_utf8(upgrade_response("dGhlIHNhbXBsZSBub25jZQ==")).unwrap();
        assert!(answer.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    }

    #[test]
    fn client_frames() {
        let mut reader = FrameReader::default();
        let mut buf = [0u8; 256];
        let n = write_masked_frame(&mut buf, Opcode::Ping, b"hi", [1, 2, 3, 4]).unwrap();
        reader.feed(&buf[..n - 1]);
        assert_eq!(reader.next_frame(), Ok(None));
        reader.feed(&buf[n - 1..n]);
        assert_eq!(
            reader.next_frame(),
            Ok(Some(ClientFrame::Ping(b"hi".to_vec())))
        );
        let n =
            write_masked_frame(&mut buf, Opcode::Close, &1000u16.to_be_bytes(), [9; 4]).unwrap();
        reader.feed(&buf[..n]);
        assert_eq!(
            reader.next_frame(),
            Ok(Some(ClientFrame::Close(Some(1000))))
        );
        let mut unmasked = Vec::new();
        write_frame(&mut unmasked, Opcode::Text, b"x");
        reader.feed(&unmasked);
        assert_eq!(reader.next_frame().unwrap_err().code, 1002);
    }
}
