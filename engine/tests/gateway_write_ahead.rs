//! Write-ahead holds even when the journal fails: an order whose `SentOrder` append fails is
//! taken back from the venue before its bytes leave and refused (REJECTED,
//! `reject_reason::JOURNAL`), so no new order ever reaches the venue unjournaled. Cancels leave
//! anyway: they only take risk away.

use levibot_engine::pipeline::{AckVenue, GatewayStage, StageClock, StagedOrder, Venue};
use levibot_gateway::capture::Recording;
use levibot_gateway::fix::OrderEncoder;
use levibot_gateway::instrument::InstrumentTable;
use levibot_shm::codes::reject_reason;
use levibot_shm::counters::CountersWriter;
use levibot_shm::layout::SEGMENT_SIZE_MIN;
use levibot_shm::records::{OrderRequest, exec_type, ord_type, order_kind, side, time_in_force};
use levibot_shm::{Journal, JournalConfig, RecordType, RetentionPolicy};

#[test]
fn an_order_the_journal_cannot_take_never_leaves() {
    let all = Recording::testdata().unwrap().instruments().unwrap();
    let table = InstrumentTable::select(&all, &["NKNUSDT"]).unwrap();
    let nkn = table.get(0).unwrap().clone();
    let dir = tempfile::tempdir().unwrap();
    let journal_dir = dir.path().join("journal");
    let journal = Journal::open(&JournalConfig {
        dir: journal_dir.clone(),
        segment_size: SEGMENT_SIZE_MIN,
        prefault: false,
        retention: RetentionPolicy::keep_all(),
    })
    .unwrap();
    let counters = CountersWriter::create(dir.path().join("counters.lvc"), 64, 1).unwrap();
    let encoder = OrderEncoder::new("LEVIBOT", "VENUE", &table).unwrap();
    let clock = StageClock {
        clock: quanta::Clock::new(),
        calibration: journal.calibration(),
    };
    let mut gateway = GatewayStage::new(
        AckVenue::new(encoder, 1),
        journal.appender(4).unwrap(),
        clock,
        &counters,
    )
    .unwrap();
    let order = |client_order_id: u64| StagedOrder {
        order: OrderRequest {
            client_order_id,
            px: 3_500 * nkn.tick_units,
            qty: 100 * nkn.lot_units,
            instrument_id: 0,
            strategy_id: 1,
            kind: order_kind::NEW,
            side: side::BUY,
            ord_type: ord_type::LIMIT,
            time_in_force: time_in_force::GTC,
            ..OrderRequest::default()
        },
        ..StagedOrder::default()
    };

    // While the journal takes it, the order leaves and is acknowledged.
    let sent = gateway.on_order(&order(1)).unwrap();
    assert_eq!(sent.msg_seq_num, 1);
    assert_eq!(gateway.venue().sent, 1);

    // Take the directory away, then fill what segments are mapped: the next append must roll
    // over and cannot create a segment.
    std::fs::remove_dir_all(&journal_dir).unwrap();
    let mut filler = journal.appender(9).unwrap();
    let chunk = vec![0u8; 1024];
    let mut appended = 0;
    while filler.append(RecordType(0x999), &chunk).is_ok() {
        appended += 1;
        assert!(appended < 1 << 20, "the journal never ran out");
    }
    let refused = gateway.on_order(&order(2)).err();
    let report = refused.expect("an append failed and the order was refused");
    assert_eq!(report.exec_type, exec_type::REJECTED);
    assert_eq!(report.reject_reason, reject_reason::JOURNAL);
    // Nothing of it left: the venue acknowledges only what was journaled, and the refused
    // order's sequence number is the next one used.
    let venue_sent = gateway.venue().sent;
    gateway.poll_venue();
    assert_eq!(gateway.venue().sent, venue_sent);
    let mut acked = 0;
    while let Some(r) = gateway.poll_report() {
        assert_ne!(r.client_order_id, report.client_order_id);
        acked += 1;
    }
    assert_eq!(acked as u64, venue_sent);
    let next = gateway.venue_mut().send(&order(100).order, 0).unwrap();
    assert_eq!(next.msg_seq_num, venue_sent + 1);
    gateway.venue_mut().retract(&next);

    // Cancels are the exception: on a full journal the daemon halts and cancels everything,
    // and a cancel that stayed home would leave orders working that nobody watches. They
    // leave without their write-ahead record (counted), and the venue answers them.
    let sent_before = gateway.venue().sent;
    for (id, kind) in [(200, order_kind::CANCEL), (201, order_kind::MASS_CANCEL)] {
        let mut cancel = order(id);
        cancel.order.kind = kind;
        cancel.order.orig_client_order_id = 1;
        let left = gateway.on_order(&cancel);
        assert!(left.is_ok(), "a {kind} cancel was held back: {left:?}");
    }
    assert_eq!(gateway.venue().sent, sent_before + 2);
    // A new order is still held back.
    let refused = gateway.on_order(&order(202)).expect_err("refused");
    assert_eq!(refused.reject_reason, reject_reason::JOURNAL);
}
