//! Session-level checks on the venue's messages, on the fake clock of `fix_session.rs`: which
//! CompID a mismatch names, a Logon that resets the venue's numbers (and a flag on any other
//! message that does not), a Heartbeat that needs no answer; and the Binance Logon's signature
//! over the longest header values.

use levibot_gateway::fix::{
    DisconnectReason, FixSession, SessionConfig, SessionEvent, SessionSeqNums, checksum,
};

mod support;

use support::*;

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
    let mut session = FixSession::new(
        SessionConfig {
            reset_seq_num: false,
            ..config()
        },
        table().clone(),
        SessionSeqNums {
            next_sender: 40,
            next_target: 50,
        },
    )
    .unwrap();
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
