//! A view as one line for people, like journalctl: time, type, what happened ([`View::human`]).
//! Without the instrument's def, prices and quantities show as integer units (`3512u`).

use std::fmt::Write as _;

use levibot_shm::codes::halt_reason;
use levibot_shm::records::{
    Level, OrderRequest, daemon_event, event_source, exec_type, feature_flag, model_id_hex,
    ord_type, order_flag, order_kind,
};

use super::names::{
    aggressor, check_name, event_name, exec_type_name, ord_status_name, side_name, source_name,
    tif_name, trading_state_name,
};
use super::{Body, View};
use crate::instrument::Unit;
use crate::time::{format_duration_ns, format_unix_ns};

/// Characters of a raw message or config text shown on a human line.
pub const HUMAN_TEXT_CHARS_MAX: usize = 160;

/// Text for people: control characters escaped, at most `chars_max` characters.
fn clip(text: &str, chars_max: usize) -> String {
    let mut out = String::new();
    for (n, c) in text.chars().enumerate() {
        if n == chars_max {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

impl View {
    fn px_text(&self, units: i64) -> String {
        match self
            .instrument
            .as_ref()
            .and_then(|i| i.price.decimal(units))
        {
            Some(d) => d.to_string(),
            None => format!("{units}u"),
        }
    }

    fn qty_text(&self, units: i64) -> String {
        match self.instrument.as_ref().and_then(|i| i.qty.decimal(units)) {
            Some(d) => d.to_string(),
            None => format!("{units}u"),
        }
    }

    fn symbol_text(&self, instrument_id: u32) -> String {
        match &self.instrument {
            Some(i) => i.symbol.to_string(),
            None if instrument_id == u32::MAX => "ALL".into(),
            None => format!("#{instrument_id}"),
        }
    }

    /// One line for people: time, type, what happened.
    pub fn human(&self) -> String {
        let label = match self.kind {
            Some(kind) => kind.name().to_ascii_uppercase(),
            None => format!("{:#06x}", self.meta.record_type.0),
        };
        let mut line = format!("{}  {label:<16}  ", format_unix_ns(self.meta.unix_ns));
        self.human_body(&mut line);
        line.truncate(line.trim_end().len());
        line
    }

    fn human_body(&self, out: &mut String) {
        // `write!` to a String cannot fail.
        let _ = match &self.body {
            Body::BookTicker(r) => write!(
                out,
                "{} bid {} @ {}  ask {} @ {}  update={}",
                self.symbol_text(r.instrument_id),
                self.qty_text(r.bid_qty),
                self.px_text(r.bid_px),
                self.qty_text(r.ask_qty),
                self.px_text(r.ask_px),
                r.update_id
            ),
            Body::DepthDiff(r) => {
                let top = |levels: &[Level]| {
                    levels.first().map_or("-".to_owned(), |l| {
                        format!("{} @ {}", self.qty_text(l.qty), self.px_text(l.px))
                    })
                };
                write!(
                    out,
                    "{} U={} u={} bids {} (first {})  asks {} (first {})  chunk {}/{}",
                    self.symbol_text(r.instrument_id),
                    r.first_update_id,
                    r.final_update_id,
                    r.bid_count,
                    top(r.bids()),
                    r.ask_count,
                    top(r.asks()),
                    u32::from(r.chunk) + 1,
                    r.chunk_count
                )
            }
            Body::Trade(r) => write!(
                out,
                "{} {} {} @ {}  id={}",
                self.symbol_text(r.instrument_id),
                aggressor(r.flags).to_ascii_uppercase(),
                self.qty_text(r.qty),
                self.px_text(r.px),
                r.trade_id
            ),
            Body::AggTrade(r) => write!(
                out,
                "{} {} {} @ {}  agg={} trades {}..{}",
                self.symbol_text(r.instrument_id),
                aggressor(r.flags).to_ascii_uppercase(),
                self.qty_text(r.qty),
                self.px_text(r.px),
                r.agg_id,
                r.first_trade_id,
                r.last_trade_id
            ),
            Body::RawMessage { header, bytes } => write!(
                out,
                "source={} {} bytes  {}",
                header.source_id,
                bytes.len(),
                clip(&String::from_utf8_lossy(bytes), HUMAN_TEXT_CHARS_MAX)
            ),
            Body::InstrumentDef(r) => {
                let unit = |mantissa, exp| {
                    Unit { mantissa, exp }
                        .decimal(1)
                        .map_or("?".to_owned(), |d| d.to_string())
                };
                write!(
                    out,
                    "{} id={} price_unit={} qty_unit={}",
                    self.symbol_text(r.instrument_id),
                    r.instrument_id,
                    unit(r.price_mantissa, r.price_exp),
                    unit(r.qty_mantissa, r.qty_exp)
                )
            }
            Body::OrderRequest(r) => {
                self.human_order(out, r);
                write!(out, "  clid={}", r.client_order_id)
            }
            Body::OrderSent(r) => {
                self.human_order(out, &r.request);
                let _ = write!(
                    out,
                    "  clid={} seq={}",
                    r.request.client_order_id, r.msg_seq_num
                );
                match self.span_ns(r.recv_tsc, r.encoded_tsc) {
                    Some(t2t) => write!(out, " t2t={}", format_duration_ns(t2t)),
                    None => Ok(()),
                }
            }
            Body::RiskReject(r) => {
                self.human_order(out, &r.request);
                write!(
                    out,
                    "  check={} limit={} value={} clid={}",
                    check_name(r.check),
                    r.limit,
                    r.value,
                    r.request.client_order_id
                )
            }
            Body::ExecutionReport(r) => {
                let _ = write!(
                    out,
                    "{} {} {}",
                    self.symbol_text(r.instrument_id),
                    exec_type_name(r.exec_type).to_ascii_uppercase(),
                    side_name(r.side).to_ascii_uppercase()
                );
                if r.exec_type == exec_type::TRADE || r.last_qty != 0 {
                    let _ = write!(
                        out,
                        " {} @ {}",
                        self.qty_text(r.last_qty),
                        self.px_text(r.last_px)
                    );
                }
                let _ = write!(
                    out,
                    "  px={} cum={} leaves={} status={} clid={} venue_id={}",
                    self.px_text(r.px),
                    self.qty_text(r.cum_qty),
                    self.qty_text(r.leaves_qty),
                    ord_status_name(r.ord_status).to_ascii_uppercase(),
                    r.client_order_id,
                    r.venue_order_id
                );
                if r.exec_type == exec_type::REJECTED || r.reject_reason != 0 {
                    let _ = write!(out, " reason={}", r.reject_reason);
                }
                Ok(())
            }
            Body::FeatureSnapshot(r) => {
                // Prices as the asset's, rounded for reading; `levictl tail --json` has them whole.
                let px = |units: f64| match &self.instrument {
                    Some(i) => format!("{:.8}", i.price.float(units)),
                    None => format!("{units:.1}u"),
                };
                let _ = write!(
                    out,
                    "{} mid={} micro={} imb={:.4} ewma={} atr={} flow={:.4} mom={} out={:.6}",
                    self.symbol_text(r.instrument_id),
                    px(r.mid),
                    px(r.microprice),
                    r.top_imbalance,
                    px(r.ewma_mid),
                    px(r.atr),
                    r.trade_flow_imbalance,
                    px(r.momentum),
                    r.output
                );
                if r.model_id != 0 {
                    let _ = write!(out, " model={}", model_id_hex(r.model_id));
                }
                if r.flags & feature_flag::BOOK_SYNCED == 0 {
                    let _ = write!(out, " unsynced");
                }
                if r.flags & feature_flag::PAUSED != 0 {
                    let _ = write!(out, " paused");
                }
                Ok(())
            }
            Body::FixSeqNums(r) => write!(
                out,
                "next_sender={} next_target={}",
                r.next_sender, r.next_target
            ),
            Body::DaemonEvent(r) => {
                let _ = write!(out, "{}", event_name(r.kind).to_ascii_uppercase());
                match (r.kind, trading_state_name(r.value)) {
                    (daemon_event::TRADING_STATE, Some(state)) => {
                        let _ = write!(out, " {state}");
                    }
                    (daemon_event::SELF_HALT, _) if halt_reason::name(r.value).is_some() => {
                        let _ = write!(out, " {}", halt_reason::name(r.value).unwrap_or("?"));
                    }
                    _ => {
                        let _ = write!(out, " value={}", r.value);
                    }
                }
                if r.source != event_source::DAEMON {
                    let _ = write!(out, "  source={}", source_name(r.source));
                }
                if r.source == event_source::CONTROL_SOCKET {
                    let _ = write!(out, " uid={}", r.peer_uid);
                }
                Ok(())
            }
            Body::ModelInForce { header, path } => {
                let symbol = self.symbol_text(header.instrument_id);
                if header.model_id == 0 {
                    let _ = write!(out, "{symbol} weights (no model)");
                } else {
                    let _ = write!(
                        out,
                        "{symbol} model={} sha256={} {}",
                        model_id_hex(header.model_id),
                        header.sha256_hex(),
                        clip(path, HUMAN_TEXT_CHARS_MAX)
                    );
                }
                if header.reload != 0 {
                    let _ = write!(out, "  reload={}", header.reload);
                }
                Ok(())
            }
            Body::ConfigText(bytes) => {
                let text = String::from_utf8_lossy(bytes);
                let first = text.lines().map(str::trim).find(|l| !l.is_empty());
                write!(
                    out,
                    "{} bytes, {} lines  {}",
                    bytes.len(),
                    text.lines().count(),
                    clip(first.unwrap_or(""), HUMAN_TEXT_CHARS_MAX)
                )
            }
            Body::Invalid { len } => write!(out, "invalid ({len} bytes)"),
            Body::Unknown { len } => write!(out, "{len} bytes"),
        };
    }

    fn human_order(&self, out: &mut String, r: &OrderRequest) {
        let symbol = self.symbol_text(r.instrument_id);
        let side = side_name(r.side).to_ascii_uppercase();
        let _ = match r.kind {
            order_kind::NEW | order_kind::REPLACE => {
                let kind = if r.kind == order_kind::REPLACE {
                    "REPLACE "
                } else {
                    ""
                };
                let _ = write!(out, "{symbol} {kind}{side} {}", self.qty_text(r.qty));
                if r.ord_type == ord_type::MARKET {
                    write!(out, " MARKET")
                } else {
                    let post_only = if r.flags & order_flag::POST_ONLY != 0 {
                        " POST_ONLY"
                    } else {
                        ""
                    };
                    write!(
                        out,
                        " @ {} {}{post_only}",
                        self.px_text(r.px),
                        tif_name(r.time_in_force).to_ascii_uppercase()
                    )
                }
            }
            order_kind::CANCEL => write!(out, "{symbol} CANCEL {side}"),
            order_kind::MASS_CANCEL => write!(out, "{symbol} MASS_CANCEL"),
            order_kind::MASS_STATUS => write!(out, "{symbol} MASS_STATUS"),
            other => write!(out, "{symbol} kind={other} {side}"),
        };
        if r.orig_client_order_id != 0 {
            let _ = write!(out, " orig={}", r.orig_client_order_id);
        }
    }
}
