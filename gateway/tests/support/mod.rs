//! Helpers shared by the FIX session tests (`fix_session.rs`, `fix_session_resend.rs`): the
//! instrument table, a session and its config, a scripted venue's messages, a fake clock.

#![allow(dead_code)]

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::OnceLock;
use std::time::Duration;

use levibot_gateway::capture::Recording;
use levibot_gateway::fix::{
    FixConnection, FixSession, SessionConfig, SessionEvent, SessionSeqNums, SessionState, checksum,
    parse_message,
};
use levibot_gateway::instrument::{Instrument, InstrumentTable};
use levibot_shm::records::{OrderRequest, ord_type, order_kind, side, time_in_force};

pub const SEC: u64 = 1_000_000_000;
/// 2024-02-29T12:00:00Z.
pub const T0: u64 = 1_709_208_000 * SEC;
pub const HEART_BT_INT_S: u32 = 30;
/// HeartBtInt + 20 %.
pub const GRACE: u64 = 36 * SEC;

pub fn table() -> &'static InstrumentTable {
    static TABLE: OnceLock<InstrumentTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let instruments = Recording::testdata().unwrap().instruments().unwrap();
        InstrumentTable::new(instruments).unwrap()
    })
}

pub fn nknusdt() -> &'static Instrument {
    table().find(b"NKNUSDT").unwrap()
}

pub fn config() -> SessionConfig {
    SessionConfig {
        sender_comp_id: "LEVI".into(),
        target_comp_id: "EXEC".into(),
        heart_bt_int_s: HEART_BT_INT_S,
        reset_seq_num: false,
        binance_logon: None,
    }
}

pub fn session_with(seq: SessionSeqNums) -> FixSession {
    configured_session(config(), seq)
}

/// A session with `config` (on the test table) and `seq`.
pub fn configured_session(config: SessionConfig, seq: SessionSeqNums) -> FixSession {
    FixSession::new(config, table().clone(), seq).unwrap()
}

/// One message as `(tag, value)` pairs.
pub type Fields = Vec<(u32, String)>;

pub fn value(fields: &Fields, tag: u32) -> Option<&str> {
    fields
        .iter()
        .find(|(t, _)| *t == tag)
        .map(|(_, v)| v.as_str())
}

/// Takes everything the session wrote, as messages.
pub fn drain(session: &mut FixSession) -> Vec<Fields> {
    let mut out = Vec::new();
    let mut bytes = session.outbound();
    while !bytes.is_empty() {
        let msg = parse_message(bytes).expect("the session writes valid messages");
        out.push(
            msg.fields()
                .map(|(t, v)| (t, String::from_utf8(v.to_vec()).unwrap()))
                .collect(),
        );
        bytes = &bytes[msg.as_bytes().len()..];
    }
    let len = session.outbound().len();
    session.consume_outbound(len);
    out
}

/// A message from the venue (EXEC -> LEVI): `body` is `tag=value|..` after the header.
pub fn peer_with(msg_type: &str, seq: u64, extra_header: &str, body: &str) -> Vec<u8> {
    let body = format!(
        "35={msg_type}|34={seq}|49=EXEC|52=20240229-12:00:00.000|56=LEVI|{extra_header}{body}"
    )
    .replace('|', "\x01");
    let mut msg = format!("8=FIX.4.4\x019={}\x01{body}", body.len()).into_bytes();
    let sum = checksum(&msg);
    msg.extend_from_slice(format!("10={sum:03}\x01").as_bytes());
    msg
}

pub fn peer(msg_type: &str, seq: u64, body: &str) -> Vec<u8> {
    peer_with(msg_type, seq, "", body)
}

/// Hands one whole message to the session.
pub fn feed(session: &mut FixSession, bytes: &[u8], now_ns: u64) -> Option<SessionEvent> {
    let handled = session.handle(bytes, now_ns);
    assert_eq!(handled.consumed, bytes.len(), "one whole message");
    handled.event
}

/// A session logged on at T0: we sent seq 1, the venue answered with its seq 1.
pub fn active() -> FixSession {
    let mut session = session_with(SessionSeqNums::default());
    session.logon(T0).unwrap();
    drain(&mut session);
    let event = feed(&mut session, &peer("A", 1, "98=0|108=30|"), T0);
    assert_eq!(
        event,
        Some(SessionEvent::LoggedOn {
            heart_bt_int_s: HEART_BT_INT_S
        })
    );
    assert_eq!(session.state(), SessionState::Active);
    session
}

pub fn limit_buy(client_order_id: u64) -> OrderRequest {
    OrderRequest {
        client_order_id,
        px: levibot_gateway::decimal::parse_units(b"0.3513", nknusdt().price_scale).unwrap(),
        qty: levibot_gateway::decimal::parse_units(b"1.5", nknusdt().qty_scale).unwrap(),
        instrument_id: nknusdt().id,
        kind: order_kind::NEW,
        side: side::BUY,
        ord_type: ord_type::LIMIT,
        time_in_force: time_in_force::GTC,
        ..OrderRequest::default()
    }
}

/// A new session, its connection to a scripted venue on loopback, and the venue's end of it
/// (whose reads give up after 10 ms).
pub fn connected_to_venue() -> (FixSession, FixConnection, TcpStream) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let session = session_with(SessionSeqNums::default());
    let conn = FixConnection::connect(listener.local_addr().unwrap()).unwrap();
    let (venue, _) = listener.accept().unwrap();
    venue
        .set_read_timeout(Some(Duration::from_millis(10)))
        .unwrap();
    (session, conn, venue)
}
