//! `fix_session`: the FIX session state machine (`FixSession`, sans-IO) driven by a sequence of
//! operations drawn from the fuzzer's bytes: the venue's Logon, Heartbeat, TestRequest,
//! ResendRequest (any 7 and 16), SequenceReset (any 36, with or without 123 and 43), Logout,
//! ExecutionReport, Reject, garbage bytes and cut messages, interleaved with our orders, our
//! Logout, disconnects and logons again, and the clock moving (timers polled). Sequence numbers
//! are near the edges (1, `SEQ_NUM_MAX`) as often as anywhere.
//!
//! Checked after every step: no panic; our next MsgSeqNum and the next expected stay within
//! `1..=SEQ_NUM_MAX + 1` (the "+ 1" is "none left") and every MsgSeqNum we write is within
//! `1..=SEQ_NUM_MAX`; the outbound buffer holds whole valid messages, at most `OUTBOUND_BUF_LEN`
//! bytes; queued events stay within `QUEUED_EVENTS_MAX` and are drained; `handle` always makes
//! progress on a buffer it can read.

use levibot_gateway::fix::{
    FixSession, OUTBOUND_BUF_LEN, QUEUED_EVENTS_MAX, SEQ_NUM_MAX, SessionConfig, SessionSeqNums,
    SessionState, checksum, parse_message, value_u64,
};
use levibot_shm::records::{OrderRequest, ord_type, order_kind, side, time_in_force};

use crate::byte_source::ByteSource;
use crate::decode::instruments;

const SEC: u64 = 1_000_000_000;
/// 2024-02-29T12:00:00Z.
const T0: u64 = 1_709_208_000 * SEC;
const HEART_BT_INT_S: u32 = 30;

fn session(seq: SessionSeqNums) -> FixSession {
    let config = SessionConfig {
        sender_comp_id: "LEVI".into(),
        target_comp_id: "EXEC".into(),
        heart_bt_int_s: HEART_BT_INT_S,
        reset_seq_num: false,
        binance_logon: None,
    };
    FixSession::new(config, instruments().clone(), seq).expect("a valid config")
}

/// A venue message (EXEC -> LEVI) with its header, BodyLength and CheckSum.
fn peer(msg_type: &str, seq: u64, extra_header: &str, body: &str) -> Vec<u8> {
    let body = format!(
        "35={msg_type}|34={seq}|49=EXEC|52=20240229-12:00:00.000|56=LEVI|{extra_header}{body}"
    )
    .replace('|', "\x01");
    let mut msg = format!("8=FIX.4.4\x019={}\x01{body}", body.len()).into_bytes();
    let sum = checksum(&msg);
    msg.extend_from_slice(format!("10={sum:03}\x01").as_bytes());
    msg
}

fn order(src: &mut ByteSource<'_>, next_id: &mut u64) -> OrderRequest {
    *next_id += 1;
    let instrument_id = u32::from(src.u8() % 3); // 2: unknown
    OrderRequest {
        client_order_id: *next_id,
        orig_client_order_id: next_id.saturating_sub(u64::from(src.u8() % 4)),
        px: i64::from(src.u16()) * 10,
        qty: i64::from(src.u16()),
        instrument_id,
        kind: [
            order_kind::NEW,
            order_kind::CANCEL,
            order_kind::REPLACE,
            order_kind::MASS_CANCEL,
        ][usize::from(src.u8() % 4)],
        side: if src.bool() { side::BUY } else { side::SELL },
        ord_type: if src.bool() {
            ord_type::LIMIT
        } else {
            ord_type::MARKET
        },
        time_in_force: [time_in_force::GTC, time_in_force::IOC, time_in_force::FOK]
            [usize::from(src.u8() % 3)],
        ..OrderRequest::default()
    }
}

pub fn fix_session(data: &[u8]) {
    let mut src = ByteSource::new(data);
    let seq = SessionSeqNums {
        next_sender: src.near(SEQ_NUM_MAX).clamp(1, SEQ_NUM_MAX),
        next_target: src.near(SEQ_NUM_MAX).clamp(1, SEQ_NUM_MAX),
    };
    let mut s = session(seq);
    let mut now = T0;
    let mut next_id = 0u64;
    let mut last_sent_id = 0u64;
    let _ = s.logon(now);
    check(&mut s, &mut src);
    while !src.is_empty() {
        let expected = s.seq_nums().next_target;
        // The venue's MsgSeqNum: mostly the expected one.
        let their_seq = match src.u8() % 8 {
            0 => src.near(SEQ_NUM_MAX),
            1 => expected.saturating_sub(u64::from(src.u8() % 3) + 1),
            2 => expected.saturating_add(u64::from(src.u8() % 5) + 1),
            _ => expected,
        };
        let poss_dup = if src.u8().is_multiple_of(8) {
            "43=Y|122=20240229-11:59:59.000|"
        } else {
            ""
        };
        let msg: Option<Vec<u8>> = match src.u8() % 16 {
            0 => Some(peer("A", their_seq, poss_dup, "98=0|108=30|")),
            1 => Some(peer("0", their_seq, poss_dup, "")),
            2 => Some(peer(
                "0",
                their_seq,
                poss_dup,
                &format!("112={}|", src.u8()),
            )),
            3 => Some(peer(
                "1",
                their_seq,
                poss_dup,
                &format!("112=T{}|", src.u8()),
            )),
            4 => {
                let begin = src.near(expected);
                let end = if src.bool() { 0 } else { src.near(SEQ_NUM_MAX) };
                Some(peer(
                    "2",
                    their_seq,
                    poss_dup,
                    &format!("7={begin}|16={end}|"),
                ))
            }
            5 => {
                let new_seq = src.near(expected);
                let gap_fill = match src.u8() % 3 {
                    0 => "123=Y|",
                    1 => "123=N|",
                    _ => "",
                };
                Some(peer(
                    "4",
                    their_seq,
                    poss_dup,
                    &format!("{gap_fill}36={new_seq}|"),
                ))
            }
            6 => Some(peer("5", their_seq, poss_dup, "58=bye|")),
            7 | 8 => {
                let id = if src.bool() {
                    last_sent_id
                } else {
                    src.near(next_id)
                };
                let exec = [b'0', b'1', b'2', b'4', b'5', b'8', b'F', b'I', b'Z']
                    [usize::from(src.u8() % 9)] as char;
                let symbol = ["NKNUSDT", "RUNEEUR", "BTCUSDT"][usize::from(src.u8() % 3)];
                let body = format!(
                    "11={id}|37={}|17=e{}|150={exec}|39={exec}|55={symbol}|54=1|44=0.3513|38=1.5|14={}|151=0.5|31=0.3513|32=1|",
                    src.u16(),
                    src.u16(),
                    ["1", "0.00000001", "x", "99999999999999999999"][usize::from(src.u8() % 4)],
                );
                Some(peer("8", their_seq, poss_dup, &body))
            }
            9 => {
                let ref_seq = src.near(s.seq_nums().next_sender);
                Some(peer(
                    "3",
                    their_seq,
                    poss_dup,
                    &format!("45={ref_seq}|371=44|373=5|"),
                ))
            }
            10 => {
                // Order cancel reject.
                Some(peer(
                    "9",
                    their_seq,
                    poss_dup,
                    &format!(
                        "11={}|41={last_sent_id}|37=1|39=8|434=1|102=1|",
                        next_id + 1
                    ),
                ))
            }
            // Garbage, or a valid message cut or with a byte changed.
            11 => Some(src.bytes(300).to_vec()),
            12 => {
                let mut m = peer("0", their_seq, "", "");
                let at = usize::from(src.u16()) % m.len();
                if src.bool() {
                    m.truncate(at);
                } else {
                    m[at] ^= src.u8() | 1;
                }
                Some(m)
            }
            // Our side.
            13 => {
                let order = order(&mut src, &mut next_id);
                if s.send_order(&order, now).is_ok() {
                    last_sent_id = order.client_order_id;
                }
                None
            }
            14 => {
                match src.u8() % 4 {
                    0 => {
                        let _ = s.logout(now);
                    }
                    1 => {
                        s.on_disconnected();
                        let _ = s.logon(now);
                    }
                    2 => {
                        let _ = s.logon(now);
                    }
                    _ => {
                        // The transport sends part of the outbound bytes.
                        let len = s.outbound().len();
                        s.consume_outbound(usize::from(src.u16()) % (len + 1));
                    }
                }
                None
            }
            _ => {
                now = now.saturating_add(u64::from(src.u16()) * (SEC / 100));
                let _ = s.poll_timers(now);
                None
            }
        };
        if let Some(bytes) = msg {
            feed(&mut s, &bytes, now);
        }
        check(&mut s, &mut src);
    }
}

/// Hands `bytes` to the session until it takes nothing more.
fn feed(s: &mut FixSession, mut bytes: &[u8], now: u64) {
    while !bytes.is_empty() {
        while s.take_event().is_some() {}
        let handled = s.handle(bytes, now);
        assert!(handled.consumed <= bytes.len());
        if handled.consumed == 0 {
            // Only a message still arriving is left waiting.
            assert!(
                matches!(
                    parse_message(bytes),
                    Err(levibot_gateway::fix::FixParseError::Incomplete { .. })
                ) || s.queued_events() > 0,
                "handle took nothing of a readable buffer"
            );
            break;
        }
        bytes = &bytes[handled.consumed..];
    }
}

fn check(s: &mut FixSession, src: &mut ByteSource<'_>) {
    let seq = s.seq_nums();
    assert!((1..=SEQ_NUM_MAX + 1).contains(&seq.next_sender), "{seq:?}");
    assert!((1..=SEQ_NUM_MAX + 1).contains(&seq.next_target), "{seq:?}");
    assert!(s.queued_events() <= QUEUED_EVENTS_MAX);
    let mut drained = 0;
    while s.take_event().is_some() {
        drained += 1;
        assert!(drained <= QUEUED_EVENTS_MAX, "events are not drained");
    }
    let out = s.outbound();
    assert!(out.len() <= OUTBOUND_BUF_LEN);
    // Whole messages (the transport may have taken part of the first one).
    let mut rest = out;
    if let Some(start) = find(rest, b"8=FIX.4.4\x01") {
        rest = &rest[start..];
    } else {
        rest = &[];
    }
    while !rest.is_empty() {
        let msg = parse_message(rest).expect("the session writes valid messages");
        let seq_num = msg
            .get(34)
            .and_then(value_u64)
            .expect("every message has a MsgSeqNum");
        assert!((1..=SEQ_NUM_MAX).contains(&seq_num), "MsgSeqNum {seq_num}");
        rest = &rest[msg.as_bytes().len()..];
    }
    // Mostly the transport takes everything.
    if !src.u8().is_multiple_of(4) {
        let len = s.outbound().len();
        s.consume_outbound(len);
    }
    if s.state() == SessionState::Closed && src.u8().is_multiple_of(2) {
        s.on_disconnected();
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
