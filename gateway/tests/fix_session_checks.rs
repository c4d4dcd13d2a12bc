//! Session-level checks on the venue's messages, on the fake clock of `fix_session.rs`: which
//! CompID a mismatch names, a Logon that resets the venue's numbers (and a flag on any other
//! message that does not), a Heartbeat that needs no answer; the Binance Logon's signature over
//! the longest header values; and report fields that only an odd message exercises (a one-byte
//! code that is not a code, the answer to a mass status request without orders). Over loopback,
//! the connection's edges: a close after our Logout, a write that fails, a socket that would
//! block, and a burst larger than the read buffer.

use levibot_gateway::fix::{
    CONNECTION_READ_BUF_LEN, ConnectionStatus, DisconnectReason, FixConnection, FixSession,
    INSTRUMENT_UNKNOWN, ReportError, SessionConfig, SessionEvent, SessionSeqNums, SessionState,
    checksum, parse_message,
};
use levibot_shm::records::{exec_type, report_flag, side};

use crate::support::*;

/// A venue message with the given SenderCompID (49) and TargetCompID (56).
fn from_to(sender: &str, target: &str, msg_type: &str, seq: u64) -> Vec<u8> {
    let body = format!(
        "35={msg_type}\x0134={seq}\x0149={sender}\x0152=20240229-12:00:00.000\x0156={target}\x01"
    );
    let mut msg = format!("8=FIX.4.4\x019={}\x01{body}", body.len()).into_bytes();
    let sum = checksum(&msg);
    msg.extend_from_slice(format!("10={sum:03}\x01").as_bytes());
    msg
}

#[test]
fn a_comp_id_mismatch_is_rejected_naming_the_wrong_tag() {
    for (sender, target, wrong_tag) in [("OTHER", "LEVI", "49"), ("EXEC", "OTHER", "56")] {
        let mut session = active();
        assert_eq!(
            feed(&mut session, &from_to(sender, target, "0", 2), T0),
            Some(SessionEvent::Disconnected(DisconnectReason::CompIdMismatch))
        );
        let out = drain(&mut session);
        assert_eq!(value(&out[0], 35), Some("3"), "a session Reject");
        assert_eq!(value(&out[0], 45), Some("2"), "of the venue's message 2");
        assert_eq!(value(&out[0], 371), Some(wrong_tag), "{sender} -> {target}");
        assert_eq!(value(&out[0], 373), Some("9"), "CompID problem");
        assert_eq!(value(&out[1], 35), Some("5"), "then a Logout");
    }
}

#[test]
fn a_venue_logon_that_resets_its_numbers_is_followed_and_no_other_message_resets_them() {
    // Restored numbers, no reset asked by us: the venue answers with a Logon that starts its
    // numbers again at 1 (ResetSeqNumFlag 141=Y).
    let mut session = configured_session(
        SessionConfig {
            reset_seq_num: false,
            ..config()
        },
        SessionSeqNums {
            next_sender: 40,
            next_target: 50,
        },
    );
    session.logon(T0).unwrap();
    let out = drain(&mut session);
    assert_eq!(value(&out[0], 34), Some("40"));
    assert_eq!(value(&out[0], 141), None);
    let event = feed(&mut session, &peer("A", 1, "98=0|108=30|141=Y|"), T0);
    assert!(
        matches!(event, Some(SessionEvent::LoggedOn { .. })),
        "{event:?}"
    );
    assert_eq!(session.seq_nums().next_target, 2);
    assert_eq!(session.seq_nums().next_sender, 41, "ours go on");

    // The flag on a Heartbeat means nothing: its number is taken as any other.
    assert_eq!(feed(&mut session, &peer("0", 2, "141=Y|"), T0), None);
    assert_eq!(session.seq_nums().next_target, 3);
}

#[test]
fn a_heartbeat_takes_its_number_and_is_answered_with_nothing() {
    let mut session = active();
    assert_eq!(feed(&mut session, &peer("0", 2, ""), T0), None);
    assert_eq!(drain(&mut session), Vec::<Fields>::new());
    assert_eq!(session.seq_nums().next_target, 3);
    assert_eq!(session.queued_events(), 0);
}

#[test]
fn the_binance_logon_signs_the_longest_header_values_whole() {
    use ed25519_dalek::{Signature, Verifier, VerifyingKey};
    use levibot_gateway::fix::{
        BinanceLogon, COMP_ID_LEN_MAX, MessageHandling, SIGNATURE_BASE64_LEN, UtcTimestamp,
    };

    // Any key will do: the signature is checked with its public key, over a payload built here.
    let binance = BinanceLogon::new("KEY", &[7; 32], MessageHandling::Sequential).unwrap();
    let sender = "S".repeat(COMP_ID_LEN_MAX);
    let target = "T".repeat(COMP_ID_LEN_MAX);
    let time = UtcTimestamp::from_unix_ns(T0);
    let mut signature = [0u8; SIGNATURE_BASE64_LEN];
    binance.sign(
        sender.as_bytes(),
        target.as_bytes(),
        u64::MAX,
        &time,
        &mut signature,
    );

    let payload = format!(
        "A\x01{sender}\x01{target}\x0118446744073709551615\x01{}",
        time.as_str()
    );
    let bytes =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, signature).unwrap();
    let key = VerifyingKey::from_bytes(&binance.public_key()).unwrap();
    key.verify(payload.as_bytes(), &Signature::from_slice(&bytes).unwrap())
        .expect("the signature covers the whole payload");
}

/// Feeds one ExecutionReport with `body` as the venue's message `seq`.
fn report(session: &mut FixSession, seq: u64, body: &str) -> Option<SessionEvent> {
    feed(session, &peer("8", seq, body), T0)
}

#[test]
fn a_one_byte_code_that_is_not_a_letter_or_digit_is_refused() {
    let mut session = active();
    let ack = |exec: &str, status: &str| {
        format!("11=7|37=1|17=1|150={exec}|39={status}|54=1|55=NKNUSDT|14=0|151=1.5|")
    };
    for (seq, (exec, status, tag)) in [("#", "0", 150), ("0", " ", 39)].into_iter().enumerate() {
        match report(&mut session, seq as u64 + 2, &ack(exec, status)) {
            Some(SessionEvent::BadReport(ReportError::BadValue { tag: t, reason, .. })) => {
                assert_eq!(t, tag);
                assert_eq!(reason, "not a one-character code");
            }
            other => panic!("150={exec} 39={status}: {other:?}"),
        }
    }
}

#[test]
fn the_answer_without_orders_keeps_its_side_and_checks_its_order_id_and_side() {
    let mut session = active();
    let empty = |extra: &str| format!("37=NONE|17=1|150=I|39=8|14=0|151=0|911=0|912=Y|{extra}");
    match report(&mut session, 2, &empty("54=2|")) {
        Some(SessionEvent::Report(r)) => {
            assert_eq!(r.client_order_id, 0);
            assert_eq!(r.venue_order_id, 0);
            assert_eq!(r.instrument_id, INSTRUMENT_UNKNOWN);
            assert_eq!(r.exec_type, exec_type::ORDER_STATUS);
            assert_eq!(r.side, side::SELL);
            assert_eq!(r.flags, report_flag::LAST_OF_MASS_STATUS);
        }
        other => panic!("{other:?}"),
    }
    let bad_order_id = "37=x1|17=1|150=I|39=8|14=0|151=0|911=0|912=Y|";
    assert!(matches!(
        report(&mut session, 3, bad_order_id),
        Some(SessionEvent::BadReport(ReportError::BadValue {
            tag: 37,
            ..
        }))
    ));
    assert!(matches!(
        report(&mut session, 4, &empty("54=7|")),
        Some(SessionEvent::BadReport(ReportError::BadValue {
            tag: 54,
            ..
        }))
    ));
}

#[test]
fn an_order_cancel_reject_keeps_its_side_and_checks_it() {
    let mut session = active();
    let refusal = |extra: &str| format!("11=9|41=8|37=2|39=2|434=1|102=0|{extra}");
    match feed(&mut session, &peer("9", 2, &refusal("54=2|")), T0) {
        Some(SessionEvent::Report(r)) => {
            assert_eq!((r.client_order_id, r.side), (9, side::SELL));
            assert_eq!(r.exec_type, exec_type::REJECTED);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        feed(&mut session, &peer("9", 3, &refusal("54=B|")), T0),
        Some(SessionEvent::BadReport(ReportError::BadValue {
            tag: 54,
            ..
        }))
    ));
}

#[test]
fn a_connect_still_in_progress_is_waited_for_not_an_error() {
    use std::net::{Ipv4Addr, TcpListener, TcpStream};
    use std::time::Duration;

    use levibot_gateway::fix::{ConnectionStatus, FixConnection};

    // A listener that never accepts, its accept queue filled: the kernel drops the next SYN,
    // so our connect stays in progress (as to a distant venue) until it is accepted.
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut held = Vec::new();
    while held.len() < 4096 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
            Ok(stream) => held.push(stream),
            Err(_) => break, // the queue is full
        }
    }
    assert!(held.len() < 4096, "the accept queue never filled");
    let mut session = active();
    let mut conn = FixConnection::connect(addr).unwrap();
    for _ in 0..3 {
        let status = conn.poll(&mut session, T0, |_| {}).unwrap();
        assert_eq!(status, ConnectionStatus::Connecting);
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// How long a loopback test waits for what it expects.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Polls `conn` until the venue's end has read one whole message; checks its type.
fn venue_reads(
    conn: &mut FixConnection,
    session: &mut FixSession,
    venue: &mut std::net::TcpStream,
    kind: &[u8],
) {
    use std::io::Read;
    let deadline = std::time::Instant::now() + TIMEOUT;
    let mut received = Vec::new();
    loop {
        conn.poll(session, T0, |_| {}).unwrap();
        let mut buf = [0u8; 1024];
        if let Ok(n) = venue.read(&mut buf) {
            received.extend_from_slice(&buf[..n]);
        }
        if let Ok(message) = parse_message(&received) {
            assert_eq!(message.msg_type(), kind);
            assert_eq!(message.as_bytes().len(), received.len(), "one message");
            return;
        }
        assert!(std::time::Instant::now() < deadline, "no {kind:?}");
    }
}

/// A session logged on over loopback with a scripted venue: the session, its connection, and
/// the venue's end.
fn logged_on_over_loopback() -> (FixSession, FixConnection, std::net::TcpStream) {
    use std::io::Write;
    let (mut session, mut conn, mut venue) = connected_to_venue();
    venue_reads(&mut conn, &mut session, &mut venue, b"A");
    venue.write_all(&peer("A", 1, "98=0|108=30|")).unwrap();
    let deadline = std::time::Instant::now() + TIMEOUT;
    while session.state() != SessionState::Active {
        conn.poll(&mut session, T0, |_| {}).unwrap();
        assert!(std::time::Instant::now() < deadline, "no LoggedOn");
    }
    (session, conn, venue)
}

/// Polls `conn` (without an error) until it is closed and the session disconnected.
fn poll_until_closed(conn: &mut FixConnection, session: &mut FixSession, why_not: &str) {
    let deadline = std::time::Instant::now() + TIMEOUT;
    while conn.poll(session, T0, |_| {}).unwrap() != ConnectionStatus::Closed {
        assert!(std::time::Instant::now() < deadline, "{why_not}");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert_eq!(session.state(), SessionState::Disconnected);
}

#[test]
fn after_the_logout_handshake_we_close_without_waiting_for_the_venue_to() {
    use std::io::Write;
    let (mut session, mut conn, mut venue) = logged_on_over_loopback();
    // We log out; the venue answers and keeps its end of the connection open.
    session.logout(T0).unwrap();
    venue_reads(&mut conn, &mut session, &mut venue, b"5");
    venue.write_all(&peer("5", 2, "")).unwrap();
    poll_until_closed(&mut conn, &mut session, "we never closed our end");
}

#[test]
fn a_write_that_fails_is_reported_by_the_poll_that_met_it() {
    use std::io::Write;
    let (mut session, mut conn, mut venue) = logged_on_over_loopback();
    // Our sending side fails (shut down here; a dead route or a reset would do the same) while
    // the venue's side is open. Its TestRequest makes the session write a Heartbeat.
    conn.stream_mut()
        .shutdown(std::net::Shutdown::Write)
        .unwrap();
    venue.write_all(&peer("1", 2, "112=ping|")).unwrap();
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        let polled = conn.poll(&mut session, T0, |_| {});
        if session.seq_nums().next_target == 3 {
            // The same poll that handled the TestRequest says the answer could not be written.
            assert!(polled.is_err(), "{polled:?}");
            break;
        }
        polled.unwrap();
        assert!(
            std::time::Instant::now() < deadline,
            "the TestRequest never arrived"
        );
    }
}

#[test]
fn a_socket_that_would_block_keeps_the_rest_for_the_next_poll() {
    // The venue reads nothing: orders fill its receive buffer and our send buffer, until a
    // write would block. That is no error; what is left waits in the session.
    let (mut session, mut conn, _venue) = logged_on_over_loopback();
    let deadline = std::time::Instant::now() + TIMEOUT;
    let mut id = 1000;
    loop {
        while session.send_order(&limit_buy(id), T0).is_ok() {
            id += 1;
        }
        let polled = conn.poll(&mut session, T0, |_| {});
        assert_eq!(polled.unwrap(), ConnectionStatus::Open);
        if !session.outbound().is_empty() {
            break; // the socket took only part: it would block
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the socket never filled"
        );
    }
    assert_eq!(session.state(), SessionState::Active);
}

#[test]
fn a_venue_that_resets_the_connection_has_gone_away_as_if_it_closed() {
    // The venue closes with our Logon unread in its buffer: the kernel answers with a reset
    // (RST), not a close (FIN). Both are the venue going away.
    let (mut session, mut conn, venue) = connected_to_venue();
    let deadline = std::time::Instant::now() + TIMEOUT;
    while conn.status() == ConnectionStatus::Connecting {
        conn.poll(&mut session, T0, |_| {}).unwrap();
        assert!(std::time::Instant::now() < deadline, "never connected");
    }
    assert_eq!(session.state(), SessionState::LogonSent);
    while !session.outbound().is_empty() {
        conn.poll(&mut session, T0, |_| {}).unwrap();
        assert!(std::time::Instant::now() < deadline, "the Logon never left");
    }
    std::thread::sleep(std::time::Duration::from_millis(20));
    drop(venue);
    poll_until_closed(&mut conn, &mut session, "the reset was not noticed");
}

#[test]
fn one_poll_handles_every_whole_message_it_read() {
    use std::io::Write;
    let (mut session, mut conn, mut venue) = logged_on_over_loopback();
    let three = [peer("0", 2, ""), peer("0", 3, ""), peer("0", 4, "")].concat();
    venue.write_all(&three).unwrap();
    // Wait for all three on our side of loopback, then one poll.
    std::thread::sleep(std::time::Duration::from_millis(50));
    conn.poll(&mut session, T0, |_| {}).unwrap();
    assert_eq!(session.seq_nums().next_target, 5);
}

#[test]
fn a_venue_sending_more_than_the_read_buffer_holds_is_read_in_turns_and_nothing_is_lost() {
    use std::io::Write;
    let (mut session, mut conn, venue) = logged_on_over_loopback();
    // Reports worth two and a half read buffers, written at once; the venue keeps its end open.
    // Their lengths vary with the id, so one is cut at the end of a full buffer.
    let report = |seq: u64, id: u64| {
        peer(
            "8",
            seq,
            &format!("11={id}|37={id}|17={id}|150=0|39=0|54=1|55=NKNUSDT|14=0|151=1.5|"),
        )
    };
    let mut stream = Vec::new();
    let mut reports = 0u64;
    while stream.len() < 5 * CONNECTION_READ_BUF_LEN / 2 {
        stream.extend(report(2 + reports, reports));
        reports += 1;
    }
    let mut writer = venue.try_clone().unwrap();
    let writing = std::thread::spawn(move || writer.write_all(&stream).unwrap());
    // No room for reports: the buffer fills, to its last byte, and a full buffer is not the
    // venue closing.
    for _ in 0..100 {
        let status = conn.poll_bounded(&mut session, T0, 0, |_| {}).unwrap();
        assert_eq!(status, ConnectionStatus::Open);
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert_eq!(session.seq_nums().next_target, 2, "nothing handled yet");
    // Room for 7 at a time: every report arrives, in order, and the connection stays open (the
    // cut report is completed from the next read). The first poll, with a full buffer, hands
    // over 7, not one message per poll.
    let mut ids = Vec::new();
    let deadline = std::time::Instant::now() + TIMEOUT;
    let mut polls = 0;
    while (ids.len() as u64) < reports {
        let status = conn
            .poll_bounded(&mut session, T0, 7, |event| {
                if let SessionEvent::Report(report) = event {
                    ids.push(report.client_order_id);
                }
            })
            .unwrap();
        polls += 1;
        if polls == 1 {
            assert_eq!(ids.len(), 7, "reports from the first poll with room");
        }
        assert_eq!(
            status,
            ConnectionStatus::Open,
            "after {} reports",
            ids.len()
        );
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {reports} reports",
            ids.len()
        );
    }
    assert_eq!(ids, (0..reports).collect::<Vec<_>>());
    assert_eq!(session.seq_nums().next_target, 2 + reports);
    assert_eq!(session.state(), SessionState::Active);
    writing.join().unwrap();
    drop(venue);
}
