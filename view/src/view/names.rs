//! The records' codes as names, for human lines and JSON fields alike: sides, order kinds and
//! types, times in force, FIX execution types and order statuses, daemon events and their
//! sources, trading states and risk checks.

use levibot_shm::codes::{RiskCheck, TradingState};
use levibot_shm::records::{
    TRADE_FLAG_BUYER_IS_MAKER, daemon_event, event_source, exec_type, ord_type, order_kind, side,
    time_in_force,
};

pub(super) fn side_name(code: u8) -> String {
    match code {
        side::BUY => "buy".into(),
        side::SELL => "sell".into(),
        other => other.to_string(),
    }
}

pub(super) fn kind_name(code: u8) -> String {
    match code {
        order_kind::NEW => "new".into(),
        order_kind::CANCEL => "cancel".into(),
        order_kind::REPLACE => "replace".into(),
        order_kind::MASS_CANCEL => "mass_cancel".into(),
        order_kind::MASS_STATUS => "mass_status".into(),
        other => other.to_string(),
    }
}

pub(super) fn ord_type_name(code: u8) -> String {
    match code {
        ord_type::MARKET => "market".into(),
        ord_type::LIMIT => "limit".into(),
        other => other.to_string(),
    }
}

pub(super) fn tif_name(code: u8) -> String {
    match code {
        time_in_force::GTC => "gtc".into(),
        time_in_force::IOC => "ioc".into(),
        time_in_force::FOK => "fok".into(),
        other => other.to_string(),
    }
}

/// A FIX char field (`150`, `39`) as its enum name, or the character itself.
fn fix_char(code: u8) -> String {
    if code.is_ascii_graphic() {
        (code as char).to_string()
    } else {
        code.to_string()
    }
}

pub(super) fn exec_type_name(code: u8) -> String {
    match code {
        exec_type::NEW => "new".into(),
        exec_type::CANCELED => "canceled".into(),
        exec_type::REPLACED => "replaced".into(),
        exec_type::REJECTED => "rejected".into(),
        exec_type::EXPIRED => "expired".into(),
        exec_type::TRADE => "trade".into(),
        exec_type::ORDER_STATUS => "order_status".into(),
        other => fix_char(other),
    }
}

/// FIX tag 39.
pub(super) fn ord_status_name(code: u8) -> String {
    match code {
        b'0' => "new".into(),
        b'1' => "partially_filled".into(),
        b'2' => "filled".into(),
        b'3' => "done_for_day".into(),
        b'4' => "canceled".into(),
        b'5' => "replaced".into(),
        b'6' => "pending_cancel".into(),
        b'7' => "stopped".into(),
        b'8' => "rejected".into(),
        b'9' => "suspended".into(),
        b'A' => "pending_new".into(),
        b'B' => "calculated".into(),
        b'C' => "expired".into(),
        b'D' => "accepted_for_bidding".into(),
        b'E' => "pending_replace".into(),
        other => fix_char(other),
    }
}

pub(super) fn event_name(code: u16) -> String {
    match code {
        daemon_event::STARTED => "started".into(),
        daemon_event::READY => "ready".into(),
        daemon_event::TRADING_STATE => "trading_state".into(),
        daemon_event::CANCEL_ALL => "cancel_all".into(),
        daemon_event::CANCEL_ALL_DONE => "cancel_all_done".into(),
        daemon_event::RELOADED => "reloaded".into(),
        daemon_event::RELOAD_REFUSED => "reload_refused".into(),
        daemon_event::LIMIT_SET => "limit_set".into(),
        daemon_event::RECOVERED => "recovered".into(),
        daemon_event::RECONCILED => "reconciled".into(),
        daemon_event::STOPPING => "stopping".into(),
        daemon_event::STOPPED => "stopped".into(),
        daemon_event::MASS_STATUS => "mass_status".into(),
        daemon_event::SELF_HALT => "self_halt".into(),
        daemon_event::JOURNAL_FAILED => "journal_failed".into(),
        daemon_event::UNARCHIVED_PRUNED => "unarchived_pruned".into(),
        other => format!("event_{other}"),
    }
}

pub(super) fn source_name(code: u16) -> String {
    match code {
        event_source::DAEMON => "daemon".into(),
        event_source::SIGNAL => "signal".into(),
        event_source::CONTROL_SOCKET => "control_socket".into(),
        other => format!("source_{other}"),
    }
}

/// The name of a trading state code (`risk.trading_state`, `TRADING_STATE` events).
pub fn trading_state_name(value: i64) -> Option<&'static str> {
    TradingState::from_code(value).map(TradingState::name)
}

pub(super) fn check_name(code: u16) -> String {
    RiskCheck::from_code(code).map_or_else(|| format!("check_{code}"), |c| c.name().to_owned())
}

pub(super) fn aggressor(flags: u32) -> &'static str {
    // The buyer was the maker: the aggressor sold.
    if flags & TRADE_FLAG_BUYER_IS_MAKER != 0 {
        "sell"
    } else {
        "buy"
    }
}
