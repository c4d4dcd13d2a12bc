//! The WebSocket client: the sans-IO codec and the handshake against hand-made bytes, the
//! backoff, the path builders, and the mio client and the REST fetch against tiny servers on
//! 127.0.0.1. The counting allocator proves that reading messages allocates nothing.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use levibot_gateway::ws::frame::{self, Opcode};
use levibot_gateway::ws::{
    BACKOFF_MAX, BACKOFF_MIN, Backoff, ClientError, CodecState, Event, FRAME_PAYLOAD_LEN_MAX,
    FrameErrorKind, Handshake, HandshakeError, HttpError, MaskKeys, MessageKind, PathError,
    SendError, Stream, WS_MESSAGE_LEN_MAX, WsClient, WsCodec, WsConfig, accept_key, close_code,
    depth_snapshot_path, fetch_depth_snapshot, http_get, stream_path,
};

const TIMEOUT: Duration = Duration::from_secs(10);

fn fixed() -> WsConfig {
    WsConfig {
        validate_utf8: true,
        mask_keys: MaskKeys::Fixed([1, 2, 3, 4]),
    }
}

/// An unmasked server frame; `len_bytes` forces the length encoding (0 = minimal, 2, 8).
fn server_frame_with(fin: bool, opcode: u8, payload: &[u8], len_bytes: usize) -> Vec<u8> {
    let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
    let len = payload.len();
    match len_bytes {
        0 if len <= 125 => out.push(len as u8),
        0 | 2 if len <= 0xFFFF => {
            out.push(126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    out
}

fn server_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    server_frame_with(fin, opcode, payload, 0)
}

/// Parses one client frame (checks the mask bit, unmasks): (fin, opcode, payload, length).
fn client_frame(bytes: &[u8]) -> Option<(bool, u8, Vec<u8>, usize)> {
    let header = frame::parse_header(bytes).unwrap()?;
    let key = header.mask.expect("client frames are masked");
    let end = header.header_len + header.payload_len as usize;
    if bytes.len() < end {
        return None;
    }
    let mut payload = bytes[header.header_len..end].to_vec();
    frame::apply_mask(&mut payload, key, 0);
    Some((header.fin, header.opcode_bits, payload, end))
}

fn feed_all(codec: &mut WsCodec, bytes: &[u8]) {
    assert_eq!(codec.feed(bytes), bytes.len());
}

fn take_output(codec: &mut WsCodec) -> Vec<u8> {
    let out = codec.output().to_vec();
    codec.consume_output(out.len());
    out
}

fn next_message(codec: &mut WsCodec) -> (MessageKind, Vec<u8>) {
    match codec.poll_event().unwrap() {
        Some(Event::Message(kind, payload)) => (kind, payload.to_vec()),
        other => panic!("expected a message, got {other:?}"),
    }
}

// ---- codec ----

#[test]
fn client_frames_are_masked_exactly() {
    let mut codec = WsCodec::new(fixed());
    codec.send(MessageKind::Text, b"hello").unwrap();
    let key = [1u8, 2, 3, 4];
    let mut expected = vec![0x81, 0x80 | 5, 1, 2, 3, 4];
    expected.extend(b"hello".iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    assert_eq!(take_output(&mut codec), expected);
    assert!(!codec.wants_write());
}

#[test]
fn keepalive_pings_are_masked_control_frames_and_bounded() {
    let mut codec = WsCodec::new(fixed());
    codec.ping(b"ka").unwrap();
    let key = [1u8, 2, 3, 4];
    let mut expected = vec![0x89, 0x80 | 2, 1, 2, 3, 4];
    expected.extend(b"ka".iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    assert_eq!(take_output(&mut codec), expected);
    assert!(
        codec.ping(&[0u8; 126]).is_err(),
        "a control payload is at most 125 bytes"
    );
}

#[test]
fn os_mask_keys_are_not_repeated() {
    let mut codec = WsCodec::new(WsConfig::default());
    let mut keys = Vec::new();
    for _ in 0..200 {
        codec.send(MessageKind::Binary, b"x").unwrap();
        let out = take_output(&mut codec);
        let header = frame::parse_header(&out).unwrap().unwrap();
        keys.push(header.mask.unwrap());
        assert_eq!(client_frame(&out).unwrap().2, b"x");
    }
    keys.sort();
    keys.dedup();
    assert!(
        keys.len() > 190,
        "mask keys repeat: {} distinct of 200",
        keys.len()
    );
}

#[test]
fn lengths_125_126_65535_65536_in_both_directions() {
    for len in [0usize, 1, 125, 126, 127, 65535, 65536, 100_000] {
        let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        // Server to client, minimal length encoding.
        let mut codec = WsCodec::new(fixed());
        let bytes = server_frame(true, 0x2, &payload);
        let header_len = match len {
            0..=125 => 2,
            126..=65535 => 4,
            _ => 10,
        };
        assert_eq!(bytes.len(), header_len + len, "length {len}");
        feed_all(&mut codec, &bytes);
        assert_eq!(
            next_message(&mut codec),
            (MessageKind::Binary, payload.clone())
        );
        assert_eq!(codec.poll_event().unwrap(), None);
        // Client to server.
        let mut out = vec![0u8; len + 14];
        let n =
            frame::write_masked_frame(&mut out, Opcode::Binary, &payload, [9, 8, 7, 6]).unwrap();
        assert_eq!(n, header_len + 4 + len, "length {len}");
        let (fin, opcode, got, end) = client_frame(&out[..n]).unwrap();
        assert_eq!((fin, opcode, end), (true, 0x2, n));
        assert_eq!(got, payload);
    }
    // A non-minimal length encoding is accepted (the sender broke a MUST, but it is harmless).
    let mut codec = WsCodec::new(fixed());
    feed_all(&mut codec, &server_frame_with(true, 0x1, b"abc", 8));
    assert_eq!(
        next_message(&mut codec),
        (MessageKind::Text, b"abc".to_vec())
    );
}

#[test]
fn frames_arriving_byte_by_byte() {
    let mut codec = WsCodec::new(fixed());
    let mut bytes = server_frame(true, 0x1, &[b'a'; 300]);
    bytes.extend(server_frame(true, 0x1, b"second"));
    for (i, b) in bytes.iter().enumerate() {
        feed_all(&mut codec, &[*b]);
        let event = codec.poll_event().unwrap();
        if i == 303 {
            assert_eq!(
                event,
                Some(Event::Message(MessageKind::Text, &[b'a'; 300][..]))
            );
        } else if i == bytes.len() - 1 {
            assert_eq!(
                event,
                Some(Event::Message(MessageKind::Text, &b"second"[..]))
            );
        } else {
            assert_eq!(event, None, "byte {i}");
        }
    }
}

#[test]
fn fragmented_message_with_an_interleaved_ping() {
    let mut codec = WsCodec::new(fixed());
    let mut bytes = server_frame(false, 0x1, b"Hel");
    bytes.extend(server_frame(true, 0x9, b"p1"));
    bytes.extend(server_frame(false, 0x0, b"lo "));
    bytes.extend(server_frame(true, 0xA, b"unsolicited"));
    bytes.extend(server_frame(true, 0x0, b"world"));
    feed_all(&mut codec, &bytes);
    assert_eq!(codec.poll_event().unwrap(), Some(Event::Ping(&b"p1"[..])));
    assert_eq!(
        codec.poll_event().unwrap(),
        Some(Event::Pong(&b"unsolicited"[..]))
    );
    assert_eq!(
        next_message(&mut codec),
        (MessageKind::Text, b"Hello world".to_vec())
    );
    let out = take_output(&mut codec);
    let (fin, opcode, payload, end) = client_frame(&out).unwrap();
    assert_eq!(
        (fin, opcode, payload.as_slice(), end),
        (true, 0xA, &b"p1"[..], out.len())
    );
    let stats = codec.stats();
    assert_eq!(
        (
            stats.messages_in,
            stats.fragmented_messages_in,
            stats.pings_in,
            stats.pongs_in
        ),
        (1, 1, 1, 1)
    );
    // Binary fragments too, then an unfragmented message reuses nothing stale.
    let mut bytes = server_frame(false, 0x2, &[1, 2]);
    bytes.extend(server_frame(true, 0x0, &[3]));
    bytes.extend(server_frame(true, 0x2, &[4]));
    feed_all(&mut codec, &bytes);
    assert_eq!(
        next_message(&mut codec),
        (MessageKind::Binary, vec![1, 2, 3])
    );
    assert_eq!(next_message(&mut codec), (MessageKind::Binary, vec![4]));
}

#[test]
fn ping_is_answered_with_its_payload_and_a_newer_ping_replaces_an_unsent_pong() {
    let mut codec = WsCodec::new(fixed());
    let payload: Vec<u8> = (0..125).collect();
    feed_all(&mut codec, &server_frame(true, 0x9, &payload));
    assert_eq!(codec.poll_event().unwrap(), Some(Event::Ping(&payload[..])));
    let out = take_output(&mut codec);
    assert_eq!(client_frame(&out).unwrap().2, payload);

    feed_all(&mut codec, &server_frame(true, 0x9, b"old"));
    feed_all(&mut codec, &server_frame(true, 0x9, b"new"));
    while codec.poll_event().unwrap().is_some() {}
    let out = take_output(&mut codec);
    let (_, opcode, payload, end) = client_frame(&out).unwrap();
    assert_eq!(
        (opcode, payload.as_slice(), end),
        (0xA, &b"new"[..], out.len())
    );
    assert_eq!(codec.stats().pongs_replaced, 1);
}

#[test]
fn close_started_by_the_server_is_echoed() {
    let mut codec = WsCodec::new(fixed());
    let mut payload = 1001u16.to_be_bytes().to_vec();
    payload.extend_from_slice(b"bye");
    feed_all(&mut codec, &server_frame(true, 0x8, &payload));
    match codec.poll_event().unwrap() {
        Some(Event::Close(close)) => {
            assert_eq!((close.code, close.reason), (Some(1001), &b"bye"[..]))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(codec.state(), CodecState::Closed);
    let out = take_output(&mut codec);
    let (_, opcode, payload, _) = client_frame(&out).unwrap();
    assert_eq!(
        (opcode, payload.as_slice()),
        (0x8, &1001u16.to_be_bytes()[..])
    );
    assert_eq!(
        codec.send(MessageKind::Text, b"late"),
        Err(SendError::Closing)
    );
    feed_all(&mut codec, &server_frame(true, 0x1, b"after close"));
    assert_eq!(codec.poll_event().unwrap(), None);

    // A Close without a status code gets an empty Close.
    let mut codec = WsCodec::new(fixed());
    feed_all(&mut codec, &server_frame(true, 0x8, b""));
    match codec.poll_event().unwrap() {
        Some(Event::Close(close)) => assert_eq!(close.code, None),
        other => panic!("{other:?}"),
    }
    let out = take_output(&mut codec);
    assert_eq!(client_frame(&out).unwrap().2, b"");
}

#[test]
fn close_started_by_the_client() {
    let mut codec = WsCodec::new(fixed());
    codec.close(close_code::GOING_AWAY, b"shutdown").unwrap();
    assert_eq!(codec.state(), CodecState::CloseSent);
    let out = take_output(&mut codec);
    let (_, opcode, payload, _) = client_frame(&out).unwrap();
    assert_eq!(opcode, 0x8);
    assert_eq!(&payload[..2], &1001u16.to_be_bytes());
    assert_eq!(&payload[2..], b"shutdown");
    assert_eq!(codec.send(MessageKind::Text, b"x"), Err(SendError::Closing));
    codec.close(1000, b"again").unwrap(); // a no-op
    assert!(!codec.wants_write());
    // Messages still in flight are read; a ping is not answered any more.
    let mut bytes = server_frame(true, 0x1, b"in flight");
    bytes.extend(server_frame(true, 0x9, b"p"));
    bytes.extend(server_frame(true, 0x8, &1001u16.to_be_bytes()));
    feed_all(&mut codec, &bytes);
    assert_eq!(
        next_message(&mut codec),
        (MessageKind::Text, b"in flight".to_vec())
    );
    assert_eq!(codec.poll_event().unwrap(), Some(Event::Ping(&b"p"[..])));
    assert!(matches!(codec.poll_event().unwrap(), Some(Event::Close(_))));
    assert_eq!(codec.state(), CodecState::Closed);
    assert!(!codec.wants_write(), "no second Close");
    assert!(matches!(
        codec.close(1000, &[b'x'; 124]),
        Ok(()) // closed already: nothing to do
    ));
    let mut fresh = WsCodec::new(fixed());
    assert_eq!(
        fresh.close(1000, &[b'x'; 124]),
        Err(SendError::CloseReasonTooLong { len: 124 })
    );
}

/// Feeds `bytes` after a good 5-byte text frame; expects `kind` at byte offset 7 and a Close with
/// `code` in the output.
fn expect_error(bytes: &[u8], kind: FrameErrorKind, code: u16) {
    let mut codec = WsCodec::new(fixed());
    let mut all = server_frame(true, 0x1, b"fine!");
    all.extend_from_slice(bytes);
    codec.feed(&all);
    assert_eq!(next_message(&mut codec).1, b"fine!");
    let err = codec.poll_event().unwrap_err();
    assert_eq!(err.kind, kind, "{err}");
    assert_eq!(err.offset, 7, "{err}");
    assert!(err.to_string().contains("byte 7"), "{err}");
    assert_eq!(codec.state(), CodecState::Closed);
    assert_eq!(codec.poll_event().unwrap(), None, "nothing after an error");
    let out = take_output(&mut codec);
    let (_, opcode, payload, _) = client_frame(&out).unwrap();
    assert_eq!(
        (opcode, payload.as_slice()),
        (0x8, &code.to_be_bytes()[..]),
        "{kind:?}"
    );
}

#[test]
fn protocol_violations_are_typed_errors_with_offsets() {
    use FrameErrorKind as K;
    let over = FRAME_PAYLOAD_LEN_MAX as u64 + 1;
    let mut too_large = vec![0x82, 127];
    too_large.extend_from_slice(&over.to_be_bytes());
    expect_error(&too_large, K::FrameTooLarge { len: over }, 1009);
    let mut msb = vec![0x82, 127];
    msb.extend_from_slice(&(1u64 << 63).to_be_bytes());
    expect_error(&msb, K::LengthMsbSet, 1002);
    expect_error(&[0xC1, 0], K::ReservedBits(0b100), 1002);
    expect_error(&[0x83, 0], K::ReservedOpcode(3), 1002);
    expect_error(&[0x8B, 0], K::ReservedOpcode(0xB), 1002);
    expect_error(&[0x81, 0x80, 1, 2, 3, 4], K::MaskedFromServer, 1002);
    expect_error(
        &server_frame(true, 0x9, &[0; 126]),
        K::ControlTooLong {
            opcode: Opcode::Ping,
            len: 126,
        },
        1002,
    );
    expect_error(
        &server_frame(false, 0x9, b""),
        K::FragmentedControl(Opcode::Ping),
        1002,
    );
    expect_error(
        &server_frame(true, 0x0, b"x"),
        K::UnexpectedContinuation,
        1002,
    );
    expect_error(
        &server_frame(true, 0x1, b"ok\xFF"),
        K::InvalidUtf8 { at: 2 },
        1007,
    );
    expect_error(&server_frame(true, 0x8, &[3]), K::CloseOneByte, 1002);
    expect_error(
        &server_frame(true, 0x8, &1005u16.to_be_bytes()),
        K::InvalidCloseCode(1005),
        1002,
    );
    expect_error(
        &server_frame(true, 0x8, &999u16.to_be_bytes()),
        K::InvalidCloseCode(999),
        1002,
    );
    expect_error(
        &server_frame(true, 0x8, b"\x03\xe8\xC0"),
        K::InvalidCloseReason { at: 0 },
        1007,
    );

    // A new data frame inside a fragmented message: the offset is the new frame's.
    let mut codec = WsCodec::new(fixed());
    let mut bytes = server_frame(false, 0x1, b"abc"); // 5 bytes
    bytes.extend(server_frame(true, 0x2, b"x"));
    feed_all(&mut codec, &bytes);
    let err = codec.poll_event().unwrap_err();
    assert_eq!(
        (err.offset, err.kind),
        (5, K::ExpectedContinuation(Opcode::Binary))
    );

    // Fragments of a message over the limit, each frame within it.
    let mut codec = WsCodec::new(fixed());
    let half = vec![b'a'; WS_MESSAGE_LEN_MAX / 2 + 1];
    let first = server_frame(false, 0x1, &half);
    let first_len = first.len() as u64;
    feed_all(&mut codec, &first);
    assert_eq!(codec.poll_event().unwrap(), None);
    feed_all(&mut codec, &server_frame(true, 0x0, &half));
    let err = codec.poll_event().unwrap_err();
    assert_eq!(
        (err.offset, err.kind),
        (
            first_len,
            K::MessageTooLarge {
                len: 2 * half.len() as u64
            }
        )
    );

    // Invalid UTF-8 across fragments.
    let mut codec = WsCodec::new(fixed());
    let mut bytes = server_frame(false, 0x1, b"\xE2\x82");
    bytes.extend(server_frame(true, 0x0, b"\xAC ok")); // a euro sign split in two: fine
    bytes.extend(server_frame(false, 0x1, b"\xE2\x82"));
    bytes.extend(server_frame(true, 0x0, b"!"));
    feed_all(&mut codec, &bytes);
    assert_eq!(next_message(&mut codec).1, "\u{20AC} ok".as_bytes());
    assert_eq!(
        codec.poll_event().unwrap_err().kind,
        K::InvalidUtf8 { at: 0 }
    );

    // Without validation, bytes pass as they are.
    let mut codec = WsCodec::new(WsConfig {
        validate_utf8: false,
        ..fixed()
    });
    feed_all(&mut codec, &server_frame(true, 0x1, b"\xFF"));
    assert_eq!(next_message(&mut codec).1, b"\xFF");
}

#[test]
fn a_largest_frame_fits_wherever_it_starts() {
    let mut codec = WsCodec::new(fixed());
    let big = vec![b'z'; FRAME_PAYLOAD_LEN_MAX];
    let mut bytes = server_frame(true, 0x2, &[1; 1000]);
    bytes.extend(server_frame(true, 0x2, &big));
    bytes.extend(server_frame(true, 0x2, &[2; 70_000]));
    bytes.extend(server_frame(true, 0x2, &big));
    let mut fed = 0;
    let mut got = Vec::new();
    while got.len() < 4 {
        // Chunks of an odd size, as a socket would give them.
        let n = codec.feed(&bytes[fed..(fed + 77_777).min(bytes.len())]);
        fed += n;
        while let Some(Event::Message(_, payload)) = codec.poll_event().unwrap() {
            got.push(payload.len());
        }
        assert!(n > 0 || fed == bytes.len(), "stuck at byte {fed}");
    }
    assert_eq!(
        got,
        [1000, FRAME_PAYLOAD_LEN_MAX, 70_000, FRAME_PAYLOAD_LEN_MAX]
    );
}

#[test]
fn random_bytes_never_panic() {
    let seed = levibot_testkit::seed();
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut codec = WsCodec::new(fixed());
    for round in 0..3000 {
        if codec.state() != CodecState::Open {
            codec = WsCodec::new(fixed());
        }
        let mut bytes: Vec<u8> = Vec::new();
        for _ in 0..rng.usize(1..6) {
            if rng.bool() {
                // A plausible frame: a real header, perhaps bent.
                let opcode = [0u8, 1, 2, 8, 9, 10, 3][rng.usize(..7)];
                let len = [0usize, 1, 2, 125, 126, 300, 65536][rng.usize(..7)];
                let payload: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
                let mut frame = server_frame(rng.bool(), opcode, &payload);
                if rng.u8(..) < 20 {
                    let at = rng.usize(..frame.len());
                    frame[at] = rng.u8(..);
                }
                bytes.extend(frame);
            } else {
                bytes.extend((0..rng.usize(0..200)).map(|_| rng.u8(..)));
            }
        }
        let mut at = 0;
        while at < bytes.len() && codec.state() != CodecState::Closed {
            let end = (at + rng.usize(1..=bytes.len() - at)).min(bytes.len());
            at += codec.feed(&bytes[at..end]);
            loop {
                match codec.poll_event() {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(e) => {
                        assert!(e.offset <= codec.stats().bytes_in, "round {round}: {e}");
                        break;
                    }
                }
            }
            let out = codec.output().len();
            codec.consume_output(out);
        }
    }
}

// ---- handshake ----

#[test]
fn accept_key_of_the_rfc_example() {
    // RFC 6455 section 1.3.
    assert_eq!(
        accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
}

fn response(accept: &str, extra: &str) -> String {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n{extra}\r\n"
    )
}

#[test]
fn handshake_request_and_response() {
    let handshake = Handshake::new(
        "example.com:9443",
        "/stream?streams=a@trade",
        *b"the sample nonce",
    );
    assert_eq!(handshake.key(), "dGhlIHNhbXBsZSBub25jZQ==");
    let request = std::str::from_utf8(handshake.request()).unwrap();
    assert!(
        request.starts_with("GET /stream?streams=a@trade HTTP/1.1\r\n"),
        "{request}"
    );
    for header in [
        "Host: example.com:9443\r\n",
        "Upgrade: websocket\r\n",
        "Connection: Upgrade\r\n",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
        "Sec-WebSocket-Version: 13\r\n",
    ] {
        assert!(request.contains(header), "{header:?} in {request}");
    }
    assert!(request.ends_with("\r\n\r\n"));

    let good = response("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "");
    let mut with_frame = good.clone().into_bytes();
    with_frame.extend(server_frame(true, 1, b"hi"));
    assert_eq!(
        handshake.parse_response(&with_frame).unwrap(),
        Some(good.len())
    );
    for cut in [0, 10, good.len() - 1] {
        assert_eq!(
            handshake.parse_response(&good.as_bytes()[..cut]).unwrap(),
            None
        );
    }
    // Header names and the Upgrade token are case-insensitive; Connection is a token list.
    let relaxed = "HTTP/1.1 101 OK\r\nupgrade: WebSocket\r\nconnection: keep-alive, upgrade\r\nsec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    assert!(
        handshake
            .parse_response(relaxed.as_bytes())
            .unwrap()
            .is_some()
    );
}

#[test]
fn handshake_errors_name_what_was_wrong() {
    let handshake = Handshake::new("h", "/", *b"the sample nonce");
    let err = |text: &str| handshake.parse_response(text.as_bytes()).unwrap_err();
    match err(&response("AAAAAAAAAAAAAAAAAAAAAAAAAAA=", "")) {
        HandshakeError::BadAccept { expected, got } => {
            assert_eq!(expected, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
            assert_eq!(got, "AAAAAAAAAAAAAAAAAAAAAAAAAAA=");
        }
        other => panic!("{other:?}"),
    }
    match err("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n") {
        HandshakeError::Status { status, reason } => {
            assert_eq!((status, reason.as_str()), (403, "Forbidden"))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        err("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n"),
        HandshakeError::MissingHeader("Upgrade")
    );
    assert_eq!(
        err(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        ),
        HandshakeError::MissingHeader("Sec-WebSocket-Accept")
    );
    assert!(matches!(
        err("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n"),
        HandshakeError::BadHeader {
            name: "Upgrade",
            ..
        }
    ));
    assert!(matches!(
        err(&response(
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
            "Sec-WebSocket-Extensions: permessage-deflate\r\n"
        )),
        HandshakeError::BadHeader {
            name: "Sec-WebSocket-Extensions",
            ..
        }
    ));
    assert!(matches!(
        err("HTTP/1.1 1x1 Nope\r\n\r\n"),
        HandshakeError::Http { .. }
    ));
    let endless = format!("HTTP/1.1 101 OK\r\nX: {}", "y".repeat(9000));
    assert_eq!(err(&endless), HandshakeError::TooLarge);
}

// ---- backoff and paths ----

#[test]
fn backoff_grows_with_jitter_within_bounds_and_resets() {
    let seed = levibot_testkit::seed();
    let mut backoff = Backoff::new(seed);
    let mut previous_cap = Duration::ZERO;
    let mut delays = Vec::new();
    for attempt in 0..40 {
        let cap = backoff.cap();
        assert!(
            cap >= previous_cap && cap <= BACKOFF_MAX,
            "attempt {attempt}"
        );
        let delay = backoff.next_delay();
        assert!(
            delay >= BACKOFF_MIN && delay <= cap && delay >= cap / 2,
            "attempt {attempt}: {delay:?} cap {cap:?}"
        );
        previous_cap = cap;
        delays.push(delay);
    }
    assert_eq!(backoff.cap(), BACKOFF_MAX);
    assert_eq!(Backoff::new(seed).cap(), BACKOFF_MIN);
    assert_eq!(backoff.attempt(), 40);
    // Jitter: the capped delays are not all the same.
    let capped: Vec<_> = delays[20..].to_vec();
    assert!(capped.iter().any(|d| *d != capped[0]), "{capped:?}");
    // Deterministic for a seed.
    let mut again = Backoff::new(seed);
    let replay: Vec<_> = (0..40).map(|_| again.next_delay()).collect();
    assert_eq!(replay, delays);
    backoff.reset();
    assert_eq!((backoff.attempt(), backoff.cap()), (0, BACKOFF_MIN));
    assert!(backoff.next_delay() <= BACKOFF_MIN);
    let mut huge = Backoff::new(1);
    for _ in 0..100_000 {
        huge.next_delay();
    }
    assert_eq!(huge.cap(), BACKOFF_MAX);
}

#[test]
fn combined_stream_path() {
    let path = stream_path(
        &["NKNUSDT", "blzeth"],
        &[Stream::Depth100ms, Stream::BookTicker, Stream::Trade],
    )
    .unwrap();
    assert_eq!(
        path,
        "/stream?streams=nknusdt@depth@100ms/nknusdt@bookTicker/nknusdt@trade/blzeth@depth@100ms/blzeth@bookTicker/blzeth@trade"
    );
    assert_eq!(
        stream_path(
            &["a1"],
            &[Stream::Depth1000ms, Stream::AggTrade, Stream::Kline1m]
        )
        .unwrap(),
        "/stream?streams=a1@depth/a1@aggTrade/a1@kline_1m"
    );
    assert_eq!(stream_path(&[], &[Stream::Trade]), Err(PathError::Empty));
    assert_eq!(stream_path(&["a"], &[]), Err(PathError::Empty));
    assert!(matches!(
        stream_path(&["ok", "bad/sym"], &[Stream::Trade]),
        Err(PathError::BadSymbol { index: 1, .. })
    ));
    assert!(matches!(
        stream_path(&[""], &[Stream::Trade]),
        Err(PathError::BadSymbol { index: 0, .. })
    ));
    let many: Vec<String> = (0..513).map(|i| format!("s{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_eq!(
        stream_path(&many, &[Stream::Trade, Stream::BookTicker]),
        Err(PathError::TooManyStreams { count: 1026 })
    );
    assert_eq!(
        depth_snapshot_path("nknusdt", 1000).unwrap(),
        "/api/v3/depth?symbol=NKNUSDT&limit=1000"
    );
    assert_eq!(depth_snapshot_path("x", 0), Err(PathError::BadLimit(0)));
    assert_eq!(
        depth_snapshot_path("x", 5001),
        Err(PathError::BadLimit(5001))
    );
}

// ---- the client against a tiny server ----

/// Reads an HTTP request head; returns it.
fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "request head cut short");
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

/// Accepts one WebSocket connection: answers the handshake (with `accept` if given, else the
/// right one) and writes `first` right behind the response.
fn accept_ws(listener: &TcpListener, accept: Option<&str>, first: &[u8]) -> (TcpStream, String) {
    let (mut stream, _) = listener.accept().unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let head = read_head(&mut stream);
    let key = head
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .unwrap()
        .trim()
        .to_owned();
    let accept = accept.map_or_else(|| accept_key(&key), str::to_owned);
    let mut bytes = response(&accept, "").into_bytes();
    bytes.extend_from_slice(first);
    stream.write_all(&bytes).unwrap();
    (stream, head)
}

/// Reads one client frame from a blocking socket.
fn read_client_frame(stream: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some((fin, opcode, payload, end)) = client_frame(&buf) {
            assert!(fin);
            assert_eq!(end, buf.len(), "one frame at a time in these tests");
            return (opcode, payload);
        }
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "the client closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

#[test]
fn client_handshake_messages_ping_pong_and_server_close() {
    let (listener, addr) = listener();
    let server = thread::spawn(move || {
        let (mut stream, head) = accept_ws(&listener, None, &server_frame(true, 1, b"first"));
        assert!(head.starts_with("GET /stream?streams=nknusdt@bookTicker HTTP/1.1\r\n"));
        assert!(head.contains(&format!("Host: 127.0.0.1:{}\r\n", addr.port())));
        stream
            .write_all(&server_frame(true, 0x9, b"are you there"))
            .unwrap();
        let pong = read_client_frame(&mut stream);
        let mut bytes = server_frame(false, 0x1, b"frag");
        bytes.extend(server_frame(true, 0x9, b"again"));
        bytes.extend(server_frame(true, 0x0, b"mented"));
        stream.write_all(&bytes).unwrap();
        let pong2 = read_client_frame(&mut stream);
        // A large message, in pieces.
        let big = server_frame(true, 0x1, &vec![b'q'; 300_000]);
        for piece in big.chunks(50_000) {
            stream.write_all(piece).unwrap();
            thread::sleep(Duration::from_millis(5));
        }
        let mut close = 1000u16.to_be_bytes().to_vec();
        close.extend_from_slice(b"bye");
        stream.write_all(&server_frame(true, 0x8, &close)).unwrap();
        let close_reply = read_client_frame(&mut stream);
        (pong, pong2, close_reply)
    });

    let path = stream_path(&["NKNUSDT"], &[Stream::BookTicker]).unwrap();
    let host = format!("127.0.0.1:{}", addr.port());
    let mut tsc = 0u64;
    let mut stamp = || {
        tsc += 1;
        tsc
    };
    let mut client =
        WsClient::connect(addr, &host, &path, WsConfig::default(), TIMEOUT, &mut stamp).unwrap();
    let first = client
        .read_message(Some(TIMEOUT), &mut stamp)
        .unwrap()
        .unwrap();
    assert_eq!(
        (first.kind, first.payload),
        (MessageKind::Text, &b"first"[..])
    );
    assert_eq!(first.recv_tsc, 1, "stamped by the read that brought it");
    let second = client
        .read_message(Some(TIMEOUT), &mut stamp)
        .unwrap()
        .unwrap();
    assert_eq!(second.payload, b"fragmented");
    assert!(second.recv_tsc > 1);
    let big = client
        .read_message(Some(TIMEOUT), &mut stamp)
        .unwrap()
        .unwrap();
    assert_eq!(big.payload.len(), 300_000);
    match client.read_message(Some(TIMEOUT), &mut stamp) {
        Err(ClientError::Closed { code, reason, .. }) => {
            assert_eq!((code, reason.as_str()), (Some(1000), "bye"));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        client.read_message(Some(Duration::ZERO), &mut stamp),
        Err(ClientError::NotOpen { .. })
    ));
    let (pong, pong2, close_reply) = server.join().unwrap();
    assert_eq!(pong, (0xA, b"are you there".to_vec()));
    assert_eq!(pong2, (0xA, b"again".to_vec()));
    assert_eq!(close_reply, (0x8, 1000u16.to_be_bytes().to_vec()));
    assert_eq!(client.stats().pings_in, 2);
}

#[test]
fn client_timeouts_send_text_and_close_with_messages_in_flight() {
    let (listener, addr) = listener();
    let server = thread::spawn(move || {
        let (mut stream, _) = accept_ws(&listener, None, b"");
        // Nothing is sent before the client's text: its reads time out deterministically.
        let text = read_client_frame(&mut stream);
        let mut bytes = server_frame(true, 1, b"late news");
        // A message the client drops while it closes.
        bytes.extend(server_frame(true, 1, b"in flight"));
        stream.write_all(&bytes).unwrap();
        let close = read_client_frame(&mut stream);
        stream
            .write_all(&server_frame(true, 0x8, &close.1[..2]))
            .unwrap();
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
        (text, close)
    });
    let mut client =
        WsClient::connect(addr, "localhost", "/", WsConfig::default(), TIMEOUT, || 0).unwrap();
    // A zero timeout never waits; a short one waits that long.
    assert!(
        client
            .read_message(Some(Duration::ZERO), || 0)
            .unwrap()
            .is_none()
    );
    let start = std::time::Instant::now();
    let wait = Duration::from_millis(50);
    assert!(client.read_message(Some(wait), || 0).unwrap().is_none());
    assert!(start.elapsed() >= wait);
    let subscribe = "{\"method\":\"LIST_SUBSCRIPTIONS\",\"id\":1}";
    client.send_text(subscribe).unwrap();
    let got = client.read_message(Some(TIMEOUT), || 7).unwrap().unwrap();
    assert_eq!((got.payload, got.recv_tsc), (&b"late news"[..], 7));
    client
        .close(close_code::GOING_AWAY, "shutdown", TIMEOUT)
        .unwrap();
    let (text, close) = server.join().unwrap();
    assert_eq!(text, (0x1, subscribe.as_bytes().to_vec()));
    assert_eq!(close.0, 0x8);
    assert_eq!(&close.1[..2], &1001u16.to_be_bytes());
}

#[test]
fn client_sends_close_and_waits_for_the_answer() {
    let (listener, addr) = listener();
    let server = thread::spawn(move || {
        let (mut stream, _) = accept_ws(&listener, None, b"");
        let close = read_client_frame(&mut stream);
        stream
            .write_all(&server_frame(true, 0x8, &close.1[..2]))
            .unwrap();
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
        (close, rest.len())
    });
    let client =
        WsClient::connect(addr, "localhost", "/", WsConfig::default(), TIMEOUT, || 0).unwrap();
    client
        .close(close_code::GOING_AWAY, "shutdown", TIMEOUT)
        .unwrap();
    let ((opcode, payload), after) = server.join().unwrap();
    assert_eq!(opcode, 0x8);
    assert_eq!(&payload[..2], &1001u16.to_be_bytes());
    assert_eq!(&payload[2..], b"shutdown");
    assert_eq!(after, 0, "nothing after the Close");
}

#[test]
fn client_refuses_a_bad_accept_and_reports_eof_and_protocol_errors() {
    let (listener, addr) = listener();
    let server = thread::spawn(move || {
        let _bad = accept_ws(&listener, Some("AAAAAAAAAAAAAAAAAAAAAAAAAAA="), b"");
        // Then one that ends the TCP connection without a Close.
        let (stream, _) = accept_ws(&listener, None, &server_frame(true, 1, b"one"));
        drop(stream);
        // Then one that sends a masked frame.
        let (mut stream, _) = accept_ws(&listener, None, &[0x81, 0x80, 1, 2, 3, 4]);
        read_client_frame(&mut stream)
    });
    match WsClient::connect(addr, "h", "/", WsConfig::default(), TIMEOUT, || 0) {
        Err(ClientError::Handshake {
            source: HandshakeError::BadAccept { got, .. },
            ..
        }) => assert_eq!(got, "AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
        other => panic!("{other:?}"),
    }
    let mut client = WsClient::connect(addr, "h", "/", WsConfig::default(), TIMEOUT, || 0).unwrap();
    assert_eq!(
        client
            .read_message(Some(TIMEOUT), || 0)
            .unwrap()
            .unwrap()
            .payload,
        b"one"
    );
    match client.read_message(Some(TIMEOUT), || 0) {
        Err(ClientError::Eof { offset, .. }) => assert_eq!(offset, 5),
        other => panic!("{other:?}"),
    }
    let mut client = WsClient::connect(addr, "h", "/", WsConfig::default(), TIMEOUT, || 0).unwrap();
    match client.read_message(Some(TIMEOUT), || 0) {
        Err(ClientError::Frame { source, .. }) => {
            assert_eq!(
                (source.offset, source.kind),
                (0, FrameErrorKind::MaskedFromServer)
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        server.join().unwrap(),
        (0x8, 1002u16.to_be_bytes().to_vec())
    );
}

#[test]
fn client_connect_fails_with_io_error_when_nobody_listens() {
    let (listener, addr) = listener();
    drop(listener);
    let err = WsClient::connect(addr, "h", "/", WsConfig::default(), TIMEOUT, || 0).unwrap_err();
    assert!(
        matches!(err, ClientError::Io { op: "connect", .. }),
        "{err}"
    );
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}

// ---- REST ----

/// Serves one HTTP request with `answer`; returns the request head.
fn http_server(answer: Vec<u8>) -> (SocketAddr, thread::JoinHandle<String>) {
    let (listener, addr) = listener();
    let handle = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let head = read_head(&mut stream);
        for piece in answer.chunks(1000) {
            stream.write_all(piece).unwrap();
        }
        head
    });
    (addr, handle)
}

#[test]
fn rest_snapshot_with_content_length_chunked_and_to_the_end() {
    let body = format!(
        "{{\"lastUpdateId\":1,\"bids\":[{}],\"asks\":[]}}",
        "[\"1.0\",\"2.0\"],".repeat(3000).trim_end_matches(',')
    );
    let plain = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let (addr, server) = http_server(plain.into_bytes());
    let got = fetch_depth_snapshot(addr, "api.test", "nknusdt", 1000, TIMEOUT).unwrap();
    assert_eq!(got, body.as_bytes());
    let head = server.join().unwrap();
    assert!(
        head.starts_with("GET /api/v3/depth?symbol=NKNUSDT&limit=1000 HTTP/1.1\r\n"),
        "{head}"
    );
    assert!(head.contains("Host: api.test\r\n"));

    let mut chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for piece in body.as_bytes().chunks(4000) {
        chunked.extend(format!("{:x}\r\n", piece.len()).bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let (addr, _server) = http_server(chunked);
    assert_eq!(http_get(addr, "h", "/x", TIMEOUT).unwrap(), body.as_bytes());

    let mut to_end = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec();
    to_end.extend_from_slice(body.as_bytes());
    let (addr, _server) = http_server(to_end);
    assert_eq!(http_get(addr, "h", "/x", TIMEOUT).unwrap(), body.as_bytes());
}

#[test]
fn rest_errors_are_named() {
    let (addr, _s) = http_server(
        b"HTTP/1.1 429 Too Many Requests\r\nContent-Length: 28\r\n\r\n{\"code\":-1003,\"msg\":\"slow\"}\n"
            .to_vec(),
    );
    match http_get(addr, "h", "/api/v3/depth?symbol=X", TIMEOUT) {
        Err(HttpError::Status { status, body, path }) => {
            assert_eq!(status, 429);
            assert!(body.contains("-1003"));
            assert_eq!(path, "/api/v3/depth?symbol=X");
        }
        other => panic!("{other:?}"),
    }
    let (addr, _s) = http_server(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n".to_vec());
    assert!(matches!(
        http_get(addr, "h", "/", TIMEOUT),
        Err(HttpError::BodyTooLarge { len: 99999999, .. })
    ));
    let (addr, _s) = http_server(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort".to_vec());
    assert!(matches!(
        http_get(addr, "h", "/", TIMEOUT),
        Err(HttpError::Truncated {
            got: 5,
            expected: 10,
            ..
        })
    ));
    let (addr, _s) =
        http_server(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec());
    assert!(matches!(
        http_get(addr, "h", "/", TIMEOUT),
        Err(HttpError::Chunk { at: 0, .. })
    ));
    let (addr, _s) =
        http_server(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcdeXX".to_vec());
    assert!(matches!(
        http_get(addr, "h", "/", TIMEOUT),
        Err(HttpError::Chunk { at: 8, .. })
    ));
    let (addr, _s) = http_server(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\r\n".to_vec());
    assert!(matches!(
        http_get(addr, "h", "/", TIMEOUT),
        Err(HttpError::BadHeader {
            name: "Content-Encoding",
            ..
        })
    ));
    assert!(matches!(
        fetch_depth_snapshot(addr, "h", "bad sym", 10, TIMEOUT),
        Err(HttpError::Path(PathError::BadSymbol { .. }))
    ));
    // A server that never answers: the timeout, not a hang.
    let (listener, addr) = listener();
    let quiet = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        thread::sleep(Duration::from_millis(600));
        drop(stream);
    });
    assert!(matches!(
        http_get(addr, "h", "/", Duration::from_millis(200)),
        Err(HttpError::Timeout { .. })
    ));
    quiet.join().unwrap();
}

// ---- allocation ----

/// A burst of server frames: plain messages of several lengths, a fragmented one with a ping
/// inside, a pong.
fn mixed_frames() -> Vec<u8> {
    let mut bytes = Vec::new();
    for len in [10usize, 125, 126, 300, 70_000] {
        bytes.extend(server_frame(true, 0x1, &vec![b'm'; len]));
    }
    bytes.extend(server_frame(false, 0x1, b"frag"));
    bytes.extend(server_frame(true, 0x9, b"ping"));
    bytes.extend(server_frame(true, 0x0, b"mented"));
    bytes.extend(server_frame(true, 0xA, b"pong"));
    bytes
}

#[test]
fn reading_messages_does_not_allocate() {
    // The codec alone.
    let mut codec = WsCodec::new(WsConfig::default());
    let bytes = mixed_frames();
    let mut messages = 0u64;
    let mut pass = |codec: &mut WsCodec| {
        let mut at = 0;
        while at < bytes.len() {
            at += codec.feed(&bytes[at..(at + 4096).min(bytes.len())]);
            while let Some(event) = codec.poll_event().unwrap() {
                if let Event::Message(..) = event {
                    messages += 1;
                }
            }
            let n = codec.output().len();
            codec.consume_output(n);
        }
    };
    pass(&mut codec);
    let before = levibot_testkit::allocations();
    for _ in 0..200 {
        pass(&mut codec);
    }
    assert_eq!(
        levibot_testkit::allocations() - before,
        0,
        "codec allocations"
    );
    assert_eq!(messages, 201 * 6);

    // The client over a socket, pings answered on the way.
    const ROUNDS: usize = 300;
    let (listener, addr) = listener();
    let server = thread::spawn(move || {
        let (mut stream, _) = accept_ws(&listener, None, b"");
        let bytes = mixed_frames();
        for _ in 0..ROUNDS {
            stream.write_all(&bytes).unwrap();
        }
        stream
            .write_all(&server_frame(true, 0x8, &1000u16.to_be_bytes()))
            .unwrap();
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
        rest.len()
    });
    let mut client = WsClient::connect(addr, "h", "/", WsConfig::default(), TIMEOUT, || 0).unwrap();
    let first = client.read_message(Some(TIMEOUT), || 1).unwrap().unwrap();
    assert_eq!(first.payload.len(), 10);
    let before = levibot_testkit::allocations();
    let mut count = 1;
    loop {
        match client.read_message(Some(TIMEOUT), || 1) {
            Ok(Some(_)) => count += 1,
            Ok(None) => panic!("timed out after {count} messages"),
            Err(_) => break,
        }
    }
    // The Closed error carries the reason as a String: the one allocation, at the end.
    assert!(
        levibot_testkit::allocations() - before <= 1,
        "client allocations"
    );
    assert_eq!(count, ROUNDS * 6);
    assert_eq!(client.stats().pings_in, ROUNDS as u64);
    // ROUNDS pongs (or fewer: a newer ping may replace an unsent pong) and the Close.
    let written = server.join().unwrap();
    assert!(written >= 6 + 4 + 6, "{written}");
}

#[test]
fn a_reset_codec_reads_like_a_new_one() {
    let mut codec = WsCodec::new(fixed());
    // Mid-message, a pong pending, output queued, then a protocol error: all of it forgotten.
    feed_all(&mut codec, &server_frame(false, 0x1, b"frag"));
    feed_all(&mut codec, &server_frame(true, 0x9, b"ping"));
    assert!(matches!(codec.poll_event(), Ok(Some(Event::Ping(_)))));
    codec.send(MessageKind::Text, b"out").unwrap();
    feed_all(&mut codec, &[0xFF, 0x00]);
    assert!(codec.poll_event().is_err());
    codec.reset(fixed());
    let mut new = WsCodec::new(fixed());
    assert_eq!(codec.state(), new.state());
    assert_eq!(codec.stats(), new.stats());
    assert!(!codec.wants_write());
    let bytes = server_frame(true, 0x1, b"whole");
    feed_all(&mut codec, &bytes);
    feed_all(&mut new, &bytes);
    assert_eq!(next_message(&mut codec), next_message(&mut new));
    assert_eq!(codec.stats(), new.stats());
}
