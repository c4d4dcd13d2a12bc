//! The session's outbound buffer, on the fake clock of `fix_session.rs`: a short write leaves
//! the rest in order, a full buffer refuses an order naming the room it has, the room a partial
//! write frees is reused (the unsent bytes move to the front), and a message that fills the
//! buffer exactly fits. Also the session's accessors that the daemon's recovery relies on.

use levibot_gateway::fix::{FixSession, SessionError, SessionSeqNums, SessionState, parse_message};

use crate::support::*;

/// The buffer's size as documented (64 KiB), written here rather than read from the crate, so
/// that a wrong constant fails.
const BUFFER_BYTES: usize = 64 * 1024;

/// Queues orders (client order ids from `first_id`) without sending any, until the buffer
/// refuses one; returns that order's id and the error's (len, free).
fn fill(session: &mut FixSession, first_id: u64) -> (u64, usize, usize) {
    for id in first_id.. {
        match session.send_order(&limit_buy(id), T0) {
            Ok(_) => {}
            Err(SessionError::OutboundFull { len, free }) => return (id, len, free),
            Err(other) => panic!("order {id}: {other}"),
        }
    }
    unreachable!()
}

/// The ClOrdID (11) and MsgSeqNum (34) of each whole message in `bytes`.
fn orders_in(bytes: &[u8]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let message = parse_message(rest).expect("whole messages");
        let field = |tag: u32| String::from_utf8(message.get(tag).unwrap().to_vec()).unwrap();
        out.push((field(11), field(34)));
        rest = &rest[message.as_bytes().len()..];
    }
    out
}

#[test]
fn a_short_write_leaves_the_rest_in_order() {
    let mut session = active();
    for id in [7, 8] {
        session.send_order(&limit_buy(id), T0).unwrap();
    }
    let before = session.outbound().to_vec();
    // The socket took 10 bytes, then the rest of the first message.
    session.consume_outbound(10);
    assert_eq!(session.outbound(), &before[10..]);
    let first_len = parse_message(&before).unwrap().as_bytes().len();
    session.consume_outbound(first_len - 10);
    assert_eq!(orders_in(session.outbound()), [("8".into(), "3".into())]);
    let left = session.outbound().len();
    session.consume_outbound(left);
    assert!(session.outbound().is_empty());
}

#[test]
fn a_full_buffer_refuses_naming_its_room_and_reuses_what_a_partial_write_freed() {
    let mut session = active();
    let (refused, len, free) = fill(&mut session, 1000);
    assert!(free < len, "free {free}, needed {len}");
    assert_eq!(
        session.outbound().len() + free,
        BUFFER_BYTES,
        "what waits and what is free make the whole buffer"
    );
    let queued = orders_in(session.outbound());
    assert_eq!(queued.len() as u64, refused - 1000);
    let next_seq = session.seq_nums().next_sender;

    // The socket takes all but one of the bytes the order lacks (part of the first message):
    // the freed bytes count as room (the rest moves to the front), and it is one byte short.
    session.consume_outbound(len - free - 1);
    let waiting = session.outbound().to_vec();
    match session.send_order(&limit_buy(refused), T0) {
        Err(SessionError::OutboundFull { len: l, free: f }) => {
            assert_eq!((l, f), (len, len - 1));
            assert_eq!(f, BUFFER_BYTES - waiting.len());
        }
        other => panic!("expected a full buffer, got {other:?}"),
    }
    assert_eq!(session.outbound(), &waiting[..], "a refusal writes nothing");
    assert_eq!(
        session.seq_nums().next_sender,
        next_seq,
        "nor uses a number"
    );

    // One more byte sent: the order fits exactly, and the buffer is full.
    session.consume_outbound(1);
    let waiting = session.outbound().to_vec();
    let seq = session.send_order(&limit_buy(refused), T0).unwrap();
    assert_eq!(seq, next_seq);
    assert_eq!(session.outbound().len(), BUFFER_BYTES);
    assert_eq!(&session.outbound()[..waiting.len()], &waiting[..]);
    assert_eq!(
        orders_in(&session.outbound()[waiting.len()..]),
        [(refused.to_string(), seq.to_string())]
    );

    // From the first whole message on, every order waits once, in the order it was queued.
    let all = session.outbound();
    let first_whole = all.windows(5).position(|w| w == b"8=FIX").unwrap();
    let ids: Vec<u64> = orders_in(&all[first_whole..])
        .into_iter()
        .map(|(id, _)| id.parse().unwrap())
        .collect();
    assert_eq!(ids, (ids[0]..=refused).collect::<Vec<_>>());
    assert!(ids[0] <= 1001, "at most the first order was sent: {ids:?}");
}

#[test]
fn sequence_numbers_are_replaced_only_while_disconnected_and_the_instruments_are_the_ones_given() {
    let mut session = session_with(SessionSeqNums::default());
    assert_eq!(session.state(), SessionState::Disconnected);
    let restored = SessionSeqNums {
        next_sender: 41,
        next_target: 17,
    };
    session.set_seq_nums(restored).unwrap();
    assert_eq!(session.seq_nums(), restored);
    assert_eq!(
        session.instruments().find(b"NKNUSDT").map(|i| i.id),
        Some(nknusdt().id)
    );

    let mut session = active();
    let before = session.seq_nums();
    assert!(matches!(
        session.set_seq_nums(restored),
        Err(SessionError::NotActive {
            state: SessionState::Active
        })
    ));
    assert_eq!(session.seq_nums(), before);
}
