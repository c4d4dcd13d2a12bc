//! `ws_client`: any bytes as what a server sends on a WebSocket connection, into the client's
//! sans-IO `WsCodec` (frames, fragmentation, ping/pong, close), in reads of sizes drawn from the
//! input, with our own sends and pings interleaved. No panic; every event is within its bound
//! (a message at most `WS_MESSAGE_LEN_MAX`, a control payload at most 125 bytes); the output
//! buffer stays within `TX_BUFFER_LEN` and holds only whole, masked, valid client frames; after
//! an error or a Close nothing more is read. Round trip: a data frame the codec encodes, unmasked,
//! decodes to the same message.

use levibot_gateway::ws::codec::Span;
use levibot_gateway::ws::frame::{Opcode, apply_mask, parse_header};
use levibot_gateway::ws::{
    CONTROL_PAYLOAD_LEN_MAX, CodecState, Event, MaskKeys, MessageKind, SEND_PAYLOAD_LEN_MAX,
    TX_BUFFER_LEN, WS_MESSAGE_LEN_MAX, WsCodec, WsConfig,
};

use crate::byte_source::ByteSource;

pub fn ws_client(data: &[u8]) {
    let mut src = ByteSource::new(data);
    let config = WsConfig {
        validate_utf8: src.bool(),
        mask_keys: MaskKeys::Fixed([src.u8(), src.u8(), src.u8(), src.u8()]),
    };
    let mut codec = codec(0, config);
    let mut closed_seen = false;
    while !src.is_empty() {
        match src.u8() % 8 {
            // Our own frames, to mix the output buffer.
            0 => {
                let payload = src.bytes(200);
                let _ = codec.send(MessageKind::Binary, payload);
            }
            1 => {
                let payload = src.bytes(CONTROL_PAYLOAD_LEN_MAX + 2);
                let _ = codec.ping(payload);
            }
            2 => {
                let code = src.u16();
                let reason = src.bytes(130);
                let _ = codec.close(code, reason);
            }
            // The transport takes some of the output's frames (whole ones: what is left must
            // still parse from its start).
            3 => {
                let out = codec.output();
                let ends = check_output(out);
                let take = usize::from(src.u8()) % (ends.len() + 1);
                let n = if take == 0 { 0 } else { ends[take - 1] };
                codec.consume_output(n);
            }
            // Server bytes, then every event they make.
            _ => {
                let bytes = src.bytes(4096);
                let fed = codec.feed(bytes);
                assert!(fed <= bytes.len());
                loop {
                    let before = codec.state();
                    match codec.poll_event() {
                        Ok(Some(event)) => {
                            assert!(!closed_seen, "an event after the Close");
                            match event {
                                Event::Message(_, payload) => {
                                    assert!(payload.len() <= WS_MESSAGE_LEN_MAX)
                                }
                                Event::Ping(p) | Event::Pong(p) => {
                                    assert!(p.len() <= CONTROL_PAYLOAD_LEN_MAX)
                                }
                                Event::Close(close) => {
                                    assert!(close.reason.len() <= CONTROL_PAYLOAD_LEN_MAX - 2);
                                    closed_seen = true;
                                }
                            }
                        }
                        Ok(None) => break,
                        Err(error) => {
                            assert_ne!(before, CodecState::Closed);
                            assert_eq!(codec.state(), CodecState::Closed);
                            assert!(error.to_string().contains("byte"));
                            assert!(error.offset <= codec.stats().bytes_in);
                            break;
                        }
                    }
                }
            }
        }
        assert!(codec.output().len() <= TX_BUFFER_LEN);
        if codec.state() == CodecState::Closed {
            assert!(matches!(codec.poll_event(), Ok(None)));
        }
    }
    check_output(codec.output());
    round_trip(data);
}

/// Codec `i` of this thread, reset: made once (`new` allocates and touches megabytes, which
/// would be most of a run's time), `reset` for every input.
fn codec(i: usize, config: WsConfig) -> std::cell::RefMut<'static, WsCodec> {
    thread_local! {
        static CODECS: &'static [std::cell::RefCell<Option<WsCodec>>; 3] =
            Box::leak(Box::new([const { std::cell::RefCell::new(None) }; 3]));
    }
    let cell = CODECS.with(|codecs| &codecs[i]);
    let mut codec = std::cell::RefMut::map(cell.borrow_mut(), |c| {
        c.get_or_insert_with(|| WsCodec::new(config))
    });
    codec.reset(config);
    codec
}

/// The output holds whole masked frames with FIN set, control ones at most 125 bytes. Returns
/// where each frame ends.
fn check_output(out: &[u8]) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut at = 0;
    while at < out.len() {
        let rest = &out[at..];
        let header = parse_header(rest)
            .expect("our own header")
            .expect("whole frames only");
        assert!(header.fin && header.mask.is_some() && header.rsv == 0);
        let opcode = Opcode::from_bits(header.opcode_bits).expect("a known opcode");
        if opcode.is_control() {
            assert!(header.payload_len <= CONTROL_PAYLOAD_LEN_MAX as u64);
        }
        let end = header.header_len + header.payload_len as usize;
        assert!(end <= rest.len(), "a frame cut in the output");
        at += end;
        ends.push(at);
    }
    ends
}

/// The input as one binary and one text message sent by a codec, unmasked as a server would
/// send them, read back by another.
fn round_trip(data: &[u8]) {
    let payload = &data[..data.len().min(SEND_PAYLOAD_LEN_MAX)];
    let text = String::from_utf8_lossy(payload);
    let text = &text.as_bytes()[..text.len().min(SEND_PAYLOAD_LEN_MAX)];
    let fixed = WsConfig {
        validate_utf8: true,
        mask_keys: MaskKeys::Fixed([0x12, 0x34, 0x56, 0x78]),
    };
    let mut sender = codec(1, fixed);
    let mut receiver = codec(2, fixed);
    for (kind, payload) in [(MessageKind::Binary, payload), (MessageKind::Text, text)] {
        sender
            .send(kind, payload)
            .expect("one frame fits the empty output buffer");
        let out = sender.output().to_vec();
        let len = out.len();
        sender.consume_output(len);
        let header = parse_header(&out).unwrap().unwrap();
        let key = header.mask.unwrap();
        // The server's unmasked frame: the header without the mask bit and key.
        let mut frame = out[..header.header_len - 4].to_vec();
        frame[1] &= 0x7F;
        let mut body = out[header.header_len..].to_vec();
        apply_mask(&mut body, key, 0);
        frame.extend_from_slice(&body);
        assert_eq!(receiver.feed(&frame), frame.len());
        let raw = receiver.poll_raw();
        let Ok(Some(levibot_gateway::ws::codec::RawEvent::Message(got_kind, span))) = raw else {
            // Invalid UTF-8 only when the text was cut in a sequence.
            assert!(kind == MessageKind::Text && std::str::from_utf8(payload).is_err());
            return;
        };
        let span: Span = span;
        assert_eq!(got_kind, kind);
        assert_eq!(
            receiver.span(span),
            payload,
            "an encoded frame decodes to itself"
        );
    }
}
