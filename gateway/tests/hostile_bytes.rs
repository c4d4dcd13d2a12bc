//! Issue 12: bytes from outside never stop LeviBot. Regression tests of what the fuzzers (and a
//! reading of the readers) found, on stable: each one panicked, buffered without a bound or held
//! the thread before its fix. The crashing inputs are also kept in `fuzz/regressions/<target>/`,
//! replayed by `levibot-fuzzing`'s tests.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use levibot_gateway::instrument::{InstrumentError, parse_exchange_info};
use levibot_gateway::ws::{
    CONTROL_FRAMES_PER_READ_MAX, HTTP_BODY_LEN_MAX, HTTP_CHUNK_LINE_LEN_MAX, HTTP_CHUNKS_MAX,
    HTTP_HEAD_LEN_MAX, HttpError, WsClient, WsConfig, accept_key, http_get, read_response_bytes,
};

const TIMEOUT: Duration = Duration::from_secs(10);

fn listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "request head cut short");
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

/// Serves one HTTP request with `answer`, then closes.
fn http_server(answer: Vec<u8>) -> (SocketAddr, thread::JoinHandle<()>) {
    let (listener, addr) = listener();
    let handle = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        read_head(&mut stream);
        // The client may stop reading (and close) at the first error.
        let _ = stream.write_all(&answer);
    });
    (addr, handle)
}

const CHUNKED_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";

fn chunked(rest: &[u8]) -> Vec<u8> {
    let mut bytes = CHUNKED_HEAD.to_vec();
    bytes.extend_from_slice(rest);
    bytes
}

// ---- the REST depth snapshot reader (gateway/src/ws/http.rs) ----

/// The issue's abort: a chunk size of 16 hex digits after a first chunk made
/// `body.len() + size` wrap and a slice index panic in `read_chunked`.
#[test]
fn rest_chunk_size_near_u64_max_is_body_too_large_not_a_panic() {
    let answer = chunked(b"1\r\na\r\nFFFFFFFFFFFFFFFF\r\nabc\r\n0\r\n\r\n");
    let (addr, server) = http_server(answer.clone());
    match http_get(addr, "h", "/api/v3/depth?symbol=NKNUSDT", TIMEOUT) {
        Err(HttpError::BodyTooLarge { len, .. }) => assert_eq!(len, u64::MAX),
        other => panic!("{other:?}"),
    }
    server.join().unwrap();
    // The same answer sans-IO, in reads of every size.
    for read_len in [1, 2, 7, 4096] {
        assert!(matches!(
            read_response_bytes("/", &answer, read_len),
            Err(HttpError::BodyTooLarge { len: u64::MAX, .. })
        ));
    }
    // A size alone over the bound.
    let answer = chunked(format!("{:x}\r\n", HTTP_BODY_LEN_MAX + 1).as_bytes());
    assert!(matches!(
        read_response_bytes("/", &answer, 64),
        Err(HttpError::BodyTooLarge { .. })
    ));
}

#[test]
fn rest_endless_chunk_extensions_are_an_error_at_the_line() {
    // One line that never ends.
    let mut rest = b"3\r\nabc\r\n1;ext=".to_vec();
    rest.extend(std::iter::repeat_n(b'x', 10 * HTTP_CHUNK_LINE_LEN_MAX));
    let err = read_response_bytes("/d", &chunked(&rest), 512).unwrap_err();
    match &err {
        HttpError::Chunk { at: 8, why, .. } => assert!(why.contains("chunk size line"), "{err}"),
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string().contains("at byte 8 after the head"),
        "{err}"
    );
    // A complete line, but over the bound (arrived in one read).
    let mut rest = b"1;".to_vec();
    rest.extend(std::iter::repeat_n(b'x', HTTP_CHUNK_LINE_LEN_MAX));
    rest.extend_from_slice(b"\r\na\r\n0\r\n\r\n");
    assert!(matches!(
        read_response_bytes("/", &chunked(&rest), 1 << 20),
        Err(HttpError::Chunk { at: 0, .. })
    ));
}

/// Before: every chunk was kept in the read buffer and their number was not bounded, so 1-byte
/// chunks with long extensions buffered megabytes for a small body.
#[test]
fn rest_more_chunks_than_the_bound_is_an_error() {
    let mut rest = Vec::new();
    for _ in 0..HTTP_CHUNKS_MAX {
        rest.extend_from_slice(b"1;e=v\r\nx\r\n");
    }
    rest.extend_from_slice(b"0\r\n\r\n");
    let (addr, server) = http_server(chunked(&rest));
    let err = http_get(addr, "h", "/", TIMEOUT).unwrap_err();
    match &err {
        HttpError::Chunk { at, why, .. } => {
            assert_eq!(*at, HTTP_CHUNKS_MAX * 10, "{err}");
            assert!(why.contains("HTTP_CHUNKS_MAX"), "{err}");
        }
        other => panic!("{other:?}"),
    }
    server.join().unwrap();
    // One chunk fewer is a body.
    let mut rest = Vec::new();
    for _ in 0..HTTP_CHUNKS_MAX - 1 {
        rest.extend_from_slice(b"1;e=v\r\nx\r\n");
    }
    rest.extend_from_slice(b"0\r\n\r\n");
    let body = read_response_bytes("/", &chunked(&rest), 16 * 1024).unwrap();
    assert_eq!(body.len(), HTTP_CHUNKS_MAX - 1);
}

/// Before: a trailer after the last chunk was "no CRLF after the chunk data".
#[test]
fn rest_chunked_trailers_are_skipped_and_bounded() {
    let body = read_response_bytes(
        "/",
        &chunked(b"3\r\nabc\r\n0\r\nX-A: 1\r\nX-B: 2\r\n\r\n"),
        3,
    )
    .unwrap();
    assert_eq!(body, b"abc");
    // Trailers that never end.
    let mut rest = b"0\r\nX-A: ".to_vec();
    rest.extend(std::iter::repeat_n(b'y', 2 * HTTP_HEAD_LEN_MAX));
    let err = read_response_bytes("/", &chunked(&rest), 1000).unwrap_err();
    assert!(
        matches!(&err, HttpError::Chunk { at: 3, why, .. } if why.contains("trailers")),
        "{err:?}"
    );
    // Closed inside them.
    assert!(matches!(
        read_response_bytes("/", &chunked(b"0\r\nX-A: 1\r\n"), 5),
        Err(HttpError::Chunk { .. })
    ));
}

#[test]
fn rest_header_line_that_never_ends_is_head_too_large_with_its_offset() {
    let mut answer = b"HTTP/1.1 200 OK\r\nX-Long: ".to_vec();
    answer.extend(std::iter::repeat_n(b'z', 4 * HTTP_HEAD_LEN_MAX));
    match read_response_bytes("/", &answer, 4096) {
        Err(HttpError::HeadTooLarge { at, .. }) => {
            assert!(
                at > HTTP_HEAD_LEN_MAX && at <= HTTP_HEAD_LEN_MAX + 4096,
                "{at}"
            );
        }
        other => panic!("{other:?}"),
    }
    // A whole head over the bound, in one read.
    let mut answer = b"HTTP/1.1 200 OK\r\nX-Long: ".to_vec();
    answer.extend(std::iter::repeat_n(b'z', HTTP_HEAD_LEN_MAX));
    answer.extend_from_slice(b"\r\nContent-Length: 0\r\n\r\n");
    assert!(matches!(
        read_response_bytes("/", &answer, 1 << 20),
        Err(HttpError::HeadTooLarge { .. })
    ));
}

/// Before: the last of two different Content-Lengths won; `+5` was a length.
#[test]
fn rest_content_length_must_be_one_number() {
    let two = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde";
    assert!(matches!(
        read_response_bytes("/", two, 7),
        Err(HttpError::BadHeader {
            name: "Content-Length",
            why: "two different lengths",
            ..
        })
    ));
    let plus = b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nabcde";
    assert!(matches!(
        read_response_bytes("/", plus, 7),
        Err(HttpError::BadHeader {
            name: "Content-Length",
            ..
        })
    ));
    let huge = b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n";
    assert!(matches!(
        read_response_bytes("/", huge, 7),
        Err(HttpError::BadHeader { .. })
    ));
    let same = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nabcde";
    assert_eq!(read_response_bytes("/", same, 2).unwrap(), b"abcde");
}

#[test]
fn rest_body_to_the_end_is_bounded() {
    let mut answer = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
    answer.extend(std::iter::repeat_n(b'b', HTTP_BODY_LEN_MAX + 1));
    assert!(matches!(
        read_response_bytes("/", &answer, 1 << 16),
        Err(HttpError::BodyTooLarge { .. })
    ));
    answer.pop();
    let body = read_response_bytes("/", &answer, 1 << 16).unwrap();
    assert_eq!(body.len(), HTTP_BODY_LEN_MAX);
}

// ---- WsClient::read_message (gateway/src/ws/client.rs) ----

fn server_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() <= 125);
    let mut out = vec![0x80 | opcode, payload.len() as u8];
    out.extend_from_slice(payload);
    out
}

/// Before: a peer sending pings without end kept `read_message` (and the fused hot thread that
/// calls it with a zero timeout) in its loop; it now hands the thread back after
/// `CONTROL_FRAMES_PER_READ_MAX` control frames, and the message behind them comes next.
#[test]
fn ws_client_returns_to_the_caller_during_a_ping_flood() {
    let (listener, addr) = listener();
    let pings = 10 * CONTROL_FRAMES_PER_READ_MAX;
    let server = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        let head = read_head(&mut stream);
        let key = head
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .unwrap()
            .trim()
            .to_owned();
        let mut bytes = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
            accept_key(&key)
        )
        .into_bytes();
        for i in 0..pings {
            if i % 2 == 0 {
                bytes.extend(server_frame(0x9, b"ping"));
            } else {
                bytes.extend(server_frame(0xA, b"pong"));
            }
        }
        bytes.extend(server_frame(0x1, b"the message"));
        stream.write_all(&bytes).unwrap();
        // Swallow the pongs until the client goes.
        let mut sink = [0u8; 4096];
        while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
    });
    let mut client =
        WsClient::connect(addr, "h", "/ws", WsConfig::default(), TIMEOUT, || 0).unwrap();
    let mut returned_empty = 0;
    let message = loop {
        match client.read_message(None, || 1).unwrap() {
            Some(message) => break message.payload.to_vec(),
            None => returned_empty += 1,
        }
        assert!(returned_empty <= pings, "no progress");
    };
    assert_eq!(message, b"the message");
    assert!(
        returned_empty >= pings / CONTROL_FRAMES_PER_READ_MAX - 1,
        "read_message returned to the caller only {returned_empty} times in {pings} control frames"
    );
    drop(client);
    server.join().unwrap();
}

// ---- exchangeInfo (gateway/src/instrument.rs, decimal.rs) ----

fn exchange_info(base_precision: &str, tick_size: &str) -> String {
    format!(
        r#"{{"symbols":[{{"symbol":"NKNUSDT","status":"TRADING","baseAsset":"NKN","baseAssetPrecision":{base_precision},"quoteAsset":"USDT","quoteAssetPrecision":8,"filters":[
  {{"filterType":"PRICE_FILTER","minPrice":"0.0001","maxPrice":"1000","tickSize":"{tick_size}"}},
  {{"filterType":"LOT_SIZE","minQty":"1","maxQty":"9000000","stepSize":"1"}},
  {{"filterType":"MIN_NOTIONAL","minNotional":"10"}}]}}]}}"#
    )
}

/// Before: `Decimal::new` panicked on a precision over 28 decimals.
#[test]
fn exchange_info_precision_over_28_decimals_is_an_error_not_a_panic() {
    assert!(parse_exchange_info(exchange_info("8", "0.0001").as_bytes()).is_ok());
    for precision in ["19", "29", "255"] {
        let err = parse_exchange_info(exchange_info(precision, "0.0001").as_bytes()).unwrap_err();
        assert!(
            matches!(&err, InstrumentError::Symbol { symbol, what }
                if symbol == "NKNUSDT" && what.contains("baseAssetPrecision")),
            "{err}"
        );
    }
}

/// Before: a tick size near Decimal's maximum over a unit of 10^-8 overflowed the division
/// (rust_decimal's `/` panics).
#[test]
fn exchange_info_tick_size_that_overflows_the_division_is_an_error() {
    let err = parse_exchange_info(exchange_info("8", "79228162514264337593543950335").as_bytes())
        .unwrap_err();
    assert!(
        matches!(&err, InstrumentError::Symbol { what, .. } if what.contains("tickSize")),
        "{err}"
    );
}
