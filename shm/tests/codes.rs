//! The journal's shared codes (`levibot_shm::codes`): every code and name is unique, each code
//! reads back as itself, the journaled values are the ones written in the design (a renumbered
//! code would misread every older journal), and every counter label fits a counter slot.

use std::collections::HashSet;

use levibot_shm::codes::{
    Phase, RiskCheck, TradingState, halt_reason, label, reject_reason, writer_id,
};
use levibot_shm::counters::COUNTER_LABEL_LEN_MAX;
use levibot_shm::records::SYMBOL_LEN_MAX;

fn assert_unique<T: std::hash::Hash + Eq + std::fmt::Debug>(
    what: &str,
    items: impl IntoIterator<Item = T>,
) {
    let mut seen = HashSet::new();
    for item in items {
        assert!(seen.insert(format!("{item:?}")), "{what}: {item:?} twice");
    }
}

#[test]
fn risk_checks_are_numbered_one_to_count_and_named_once() {
    for (i, check) in RiskCheck::ALL.into_iter().enumerate() {
        assert_eq!(usize::from(check.code()), i + 1, "{check:?}");
        assert_eq!(check.index(), i);
        assert_eq!(RiskCheck::from_code(check.code()), Some(check));
        assert_eq!(check.to_string(), check.name());
    }
    assert_eq!(RiskCheck::from_code(0), None);
    assert_eq!(RiskCheck::from_code(RiskCheck::COUNT as u16 + 1), None);
    assert_unique("risk check names", RiskCheck::ALL.map(RiskCheck::name));
    // Journaled codes, as the design wrote them down: a change here breaks older journals.
    assert_eq!(RiskCheck::InvalidOrder.code(), 1);
    assert_eq!(RiskCheck::PriceCollar.code(), 16);
    assert_eq!(RiskCheck::SelfTrade.code(), 20);
    assert_eq!(RiskCheck::MaxLoss.code(), 27);
    assert_eq!(RiskCheck::ReplacesPending.code(), 29);
}

#[test]
fn trading_states_read_back_by_code_and_by_name() {
    let codes: Vec<i64> = TradingState::ALL.iter().map(|s| s.code()).collect();
    assert_eq!(
        codes,
        [0, 1, 2],
        "0 active, 1 reduce-only, 2 halted: journaled"
    );
    for state in TradingState::ALL {
        assert_eq!(TradingState::from_code(state.code()), Some(state));
        assert_eq!(TradingState::from_name(state.name()), Some(state));
    }
    assert_eq!(TradingState::from_code(3), None);
    assert_eq!(TradingState::from_code(-1), None);
    assert_eq!(
        TradingState::from_name("reduce-only"),
        None,
        "one spelling: reduce_only"
    );
    assert_eq!(TradingState::ReduceOnly.name(), "reduce_only");
    assert!(TradingState::Active < TradingState::ReduceOnly);
    assert!(
        TradingState::ReduceOnly < TradingState::Halted,
        "trips only move towards halted"
    );
}

#[test]
fn phases_read_back_in_order() {
    let names: Vec<&str> = Phase::ALL.iter().map(|p| p.name()).collect();
    assert_eq!(
        names,
        [
            "starting",
            "recovering",
            "reconciling",
            "running",
            "stopping"
        ]
    );
    for (i, phase) in Phase::ALL.into_iter().enumerate() {
        assert_eq!(phase.code(), i as i64);
        assert_eq!(Phase::from_code(phase.code()), Some(phase));
    }
    assert_eq!(Phase::from_code(5), None);
    assert!(Phase::Reconciling < Phase::Running);
}

#[test]
fn writer_ids_and_halt_reasons_are_unique() {
    assert_unique("writer ids", writer_id::ALL.map(|(id, _)| id));
    assert_unique("writer names", writer_id::ALL.map(|(_, n)| n));
    assert_eq!(writer_id::name(writer_id::GATEWAY), Some("gateway"));
    assert_eq!(writer_id::name(0), None);
    assert_unique("halt reasons", halt_reason::ALL.map(|(c, _)| c));
    assert_unique("halt reason names", halt_reason::ALL.map(|(_, n)| n));
    assert_eq!(
        halt_reason::name(halt_reason::GAP_UNFILLED),
        Some("gap_unfilled")
    );
    assert_eq!(halt_reason::name(99), None);
}

#[test]
fn reject_reasons_name_ours_and_number_the_venues() {
    assert_eq!(reject_reason::name(reject_reason::ENCODE), "encode");
    assert_eq!(reject_reason::name(reject_reason::JOURNAL), "journal");
    assert_eq!(
        reject_reason::name(reject_reason::LOST_IN_FLIGHT),
        "lost_in_flight"
    );
    // OrdRejReason 3 (exceeds limit) and a session reject (SessionRejectReason 5) by number.
    assert_eq!(reject_reason::name(3), "3");
    assert_eq!(reject_reason::name(reject_reason::SESSION_BASE + 5), "1005");
}

#[test]
fn every_label_fits_a_counter_slot_with_the_longest_symbol() {
    let symbol = "S".repeat(SYMBOL_LEN_MAX);
    let mut labels = vec![
        label::risk_position_units(&symbol),
        label::risk_open_orders(&symbol),
        label::risk_pnl_microquote(&symbol),
        label::risk_realised_pnl_microquote(&symbol),
        label::book(&symbol, label::BOOK_SYNCED),
        label::book(&symbol, label::BOOK_BID_PX),
        label::book(&symbol, label::BOOK_ASK_PX),
        label::strategy_model_id(&symbol),
        label::agent("gateway", label::AGENT_CYCLE_NS_MAX),
        label::ring_full("strategy_to_risk"),
        label::JOURNAL_RETENTION_ARCHIVE_HELD.to_owned(),
        label::JOURNAL_RETENTION_ARCHIVE_HELD_BYTES.to_owned(),
        label::JOURNAL_RETENTION_UNARCHIVED_PRUNED.to_owned(),
        label::JOURNAL_RETENTION_WATERMARK_UNREADABLE.to_owned(),
    ];
    labels.extend(RiskCheck::ALL.map(label::risk_reject));
    // The archiver's, with the longest target name its configuration accepts (32).
    let target = "t".repeat(32);
    labels.extend(
        [
            label::ARCHIVE_SEGMENTS,
            label::ARCHIVE_BYTES,
            label::ARCHIVE_LAG_SECONDS,
            label::ARCHIVE_FAILURES,
            label::ARCHIVE_PENDING,
        ]
        .map(|field| label::archive(&target, field)),
    );
    for l in &labels {
        assert!(l.len() <= COUNTER_LABEL_LEN_MAX, "{l}: {} bytes", l.len());
    }
    assert_eq!(
        label::risk_reject(RiskCheck::SelfTrade),
        "risk.reject.self_trade"
    );
    assert_eq!(
        label::book("BTCUSDT", label::BOOK_SYNCED),
        "book.BTCUSDT.synced"
    );
    assert_eq!(label::agent("feed", label::AGENT_WORK), "agent.feed.work");
    assert_eq!(
        label::strategy_model_id("BTCUSDT"),
        "strategy.model_id.BTCUSDT"
    );
    assert_eq!(label::ring_full("to_risk"), "ring.to_risk.full");
    assert!(label::risk_position_units("X").starts_with(label::RISK_POSITION_UNITS_PREFIX));
}

#[test]
fn microquotes_print_as_exact_decimals() {
    assert_eq!(label::microquote_text(0), "0.000000");
    assert_eq!(label::microquote_text(1_234_567), "1.234567");
    assert_eq!(label::microquote_text(-5), "-0.000005");
    assert_eq!(label::microquote_text(i64::MIN), "-9223372036854.775808");
}
