//! `ws_server`: venue-sim's server side of RFC 6455 (`tools::venue::md_server::wire`), fed
//! what a client sends, the way its connection thread feeds it.
//!
//! Byte 0: bits 0-5 (+1) are the size of the chunks the bytes arrive in; bit 6 skips the
//! opening handshake (the rest is frames only); bit 7 makes every chunk one byte. The rest is
//! the client's bytes: the request head (an upgrade or a REST GET), then masked frames. Checked:
//! - no panic, in `parse_request`, the answers, `FrameReader` and the close, ping and pong
//!   answers;
//! - bounded buffers: the head is refused once [`REQUEST_HEAD_LEN_MAX`] bytes did not complete
//!   it, and the frame reader holds less than one frame of at most [`CLIENT_FRAME_LEN_MAX`]
//!   bytes between reads;
//! - a head found in a prefix is the same once more bytes arrived; a route's values are in
//!   their ranges; a protocol error's offset is within the bytes received;
//! - a ping's pong, and a close's echo, are frames of at most a control frame's payload.

use levibot_gateway::ws::CONTROL_PAYLOAD_LEN_MAX;
use levibot_gateway::ws::frame::{Opcode, parse_header};
use levibot_gateway::ws::path::{SNAPSHOT_LIMIT_MAX, STREAMS_PER_CONNECTION_MAX};
use levibot_sim::md_server::wire::{
    self, CLIENT_FRAME_LEN_MAX, ClientFrame, FrameReader, REQUEST_HEAD_LEN_MAX, Route,
};

/// The longest frame header (2 + 8 length bytes + 4 mask bytes).
const FRAME_HEADER_LEN_MAX: usize = 14;

pub fn ws_server(data: &[u8]) {
    let Some((&how, bytes)) = data.split_first() else {
        return;
    };
    let chunk = if how & 0x80 != 0 {
        1
    } else {
        usize::from(how & 0x3f) + 1
    };
    let mut chunks = bytes.chunks(chunk);
    let mut reader = FrameReader::default();
    let mut received = 0u64;
    if how & 0x40 == 0 {
        // The opening handshake: bytes accumulate until the head is whole or refused.
        let mut buf = Vec::new();
        let (head_len, route) = loop {
            match wire::parse_request(&buf) {
                Ok(Some(found)) => break found,
                Ok(None) => assert!(buf.len() < REQUEST_HEAD_LEN_MAX, "a head past the limit"),
                Err(refusal) => {
                    assert!((400..600).contains(&refusal.status), "{refusal}");
                    let answer = wire::refusal_response(&refusal);
                    assert!(answer.starts_with(b"HTTP/1.1 "));
                    return;
                }
            }
            let Some(next) = chunks.next() else {
                return;
            };
            assert!(buf.len() < REQUEST_HEAD_LEN_MAX + chunk);
            buf.extend_from_slice(next);
        };
        assert!(head_len <= buf.len());
        // The same head is found with more bytes after it.
        let mut longer = buf.clone();
        longer.extend_from_slice(b"\x81\x80more");
        assert_eq!(
            wire::parse_request(&longer),
            Ok(Some((head_len, route.clone())))
        );
        match route {
            Route::Depth { symbol, limit } => {
                assert!(!symbol.is_empty());
                assert!((1..=SNAPSHOT_LIMIT_MAX as usize).contains(&limit));
                return;
            }
            Route::ExchangeInfo { symbols } => {
                assert!(symbols.len() <= 100);
                return;
            }
            Route::Stream { streams, key, .. } => {
                assert!((1..=STREAMS_PER_CONNECTION_MAX).contains(&streams.len()));
                assert!(streams.iter().all(|s| !s.is_empty() && !s.contains('/')));
                let answer = wire::upgrade_response(&key);
                assert!(answer.ends_with(b"\r\n\r\n"));
            }
        }
        let after = &buf[head_len..];
        received += after.len() as u64;
        reader.feed(after);
        if !read_frames(&mut reader, received) {
            return;
        }
    }
    for next in chunks {
        received += next.len() as u64;
        reader.feed(next);
        if !read_frames(&mut reader, received) {
            return;
        }
    }
}

/// Reads every whole frame, answering as the server does; `false` once the connection ends.
fn read_frames(reader: &mut FrameReader, received: u64) -> bool {
    let mut out = Vec::new();
    loop {
        match reader.next_frame() {
            Ok(None) => {
                assert!(
                    reader.buffered() < FRAME_HEADER_LEN_MAX + CLIENT_FRAME_LEN_MAX,
                    "{} bytes held for one frame",
                    reader.buffered()
                );
                assert_eq!(reader.offset() + reader.buffered() as u64, received);
                return true;
            }
            Ok(Some(ClientFrame::Ping(payload))) => {
                assert!(payload.len() <= CONTROL_PAYLOAD_LEN_MAX);
                out.clear();
                wire::write_frame(&mut out, Opcode::Pong, &payload);
                let header = parse_header(&out).expect("a pong header").expect("whole");
                assert_eq!(header.header_len + header.payload_len as usize, out.len());
                assert_eq!(&out[header.header_len..], &payload[..]);
            }
            Ok(Some(ClientFrame::Pong(payload))) => {
                assert!(payload.len() <= CONTROL_PAYLOAD_LEN_MAX);
            }
            Ok(Some(ClientFrame::Close(code))) => {
                out.clear();
                wire::write_close(&mut out, code.unwrap_or(1000), "");
                assert!(out.len() <= 2 + CONTROL_PAYLOAD_LEN_MAX);
                return false;
            }
            Ok(Some(ClientFrame::Data)) => {}
            Err(e) => {
                assert!(e.offset <= received, "{e}");
                out.clear();
                wire::write_close(&mut out, e.code, e.why);
                assert!(out.len() <= 2 + CONTROL_PAYLOAD_LEN_MAX);
                return false;
            }
        }
    }
}
