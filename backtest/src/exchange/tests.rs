//! The simulated venue's tests. They drive [`Exchange`] as a run does, with Binance Spot bytes
//! (REST snapshots, combined-stream `depthUpdate`, `bookTicker`, `trade`, `aggTrade`) and
//! order requests, and check its reports, fills and position against figures worked out in the
//! test: quantities by hand, fees as `px x qty x rate`, queue estimates by the model's formula.
//!
//! The instruments are the committed exchangeInfo's NKNUSDT (tick 0.0001, lot 1, min notional
//! 10) and RUNEEUR (tick 0.001, lot 0.1); prices and quantities are integers of 1e-8, written
//! here in thousandths of a USDT (ten ticks) and lots: `px(3498)` is 3.498 USDT, `qty(5)` is
//! 5 NKN (17.49 USDT: three lots are the least an order there may hold).

mod book;
mod models;
mod post_only;
mod queue_fills;
mod random;
mod requests;
mod self_trade;
mod taker;

use levibot_gateway::capture::{exchange_info_body, testdata_dir};
use levibot_gateway::instrument::{InstrumentTable, parse_exchange_info};
use levibot_shm::records::{
    ExecutionReport, OrderRequest, exec_type, ord_type, order_kind, side, time_in_force,
};

use super::*;
use crate::input::InputKind;
use crate::results::{FillEvent, RequestKind};

pub(super) const NKN: u32 = 0;
pub(super) const RUNE: u32 = 1;
/// One unit of 1e-8 per whole quote or base asset.
pub(super) const UNIT: i64 = 100_000_000;
/// NKNUSDT's tick (0.0001) and lot (1 NKN) in units.
pub(super) const TICK: i64 = 10_000;
pub(super) const LOT: i64 = UNIT;
/// RUNEEUR's lot (0.1 RUNE) in units.
pub(super) const RUNE_LOT: i64 = 10_000_000;
pub(super) const MS: u64 = 1_000_000;
/// The venue time of the first event: 2023-11-14 22:13:20 UTC.
pub(super) const T0: u64 = 1_700_000_000_000 * MS;

/// NKNUSDT's price of `milli` thousandths of a USDT, in units.
pub(super) fn px(milli: i64) -> i64 {
    milli * 10 * TICK
}

/// `lots` NKN in units.
pub(super) fn qty(lots: i64) -> i64 {
    lots * LOT
}

pub(super) fn instruments() -> InstrumentTable {
    let bytes = std::fs::read(testdata_dir().join("BINANCE.0")).unwrap();
    let all = parse_exchange_info(exchange_info_body(&bytes).unwrap()).unwrap();
    InstrumentTable::select(&all, &["NKNUSDT", "RUNEEUR"]).unwrap()
}

/// `units` of 1e-8 as the venue writes them ("3.49800000").
pub(super) fn dec(units: i64) -> String {
    assert!(units >= 0);
    format!("{}.{:08}", units / UNIT, units % UNIT)
}

fn levels_json(levels: &[(i64, i64)]) -> String {
    let each: Vec<String> = levels
        .iter()
        .map(|(p, q)| format!(r#"["{}","{}"]"#, dec(*p), dec(*q)))
        .collect();
    format!("[{}]", each.join(","))
}

pub(super) fn symbol_of(instrument_id: u32) -> &'static str {
    ["NKNUSDT", "RUNEEUR"][instrument_id as usize]
}

pub(super) fn depth_json(
    instrument_id: u32,
    event_ms: u64,
    first: u64,
    last: u64,
    bids: &[(i64, i64)],
    asks: &[(i64, i64)],
) -> String {
    let s = symbol_of(instrument_id);
    format!(
        r#"{{"stream":"{}@depth@100ms","data":{{"e":"depthUpdate","E":{event_ms},"s":"{s}","U":{first},"u":{last},"b":{},"a":{}}}}}"#,
        s.to_lowercase(),
        levels_json(bids),
        levels_json(asks)
    )
}

/// A `trade` message; `seller_took`: the taker sold (`m: true`, the bids traded).
pub(super) fn trade_json(
    instrument_id: u32,
    time_ms: u64,
    p: i64,
    q: i64,
    seller_took: bool,
) -> String {
    let s = symbol_of(instrument_id);
    format!(
        r#"{{"stream":"{}@trade","data":{{"e":"trade","E":{time_ms},"s":"{s}","t":7,"p":"{}","q":"{}","T":{time_ms},"m":{seller_took},"M":true}}}}"#,
        s.to_lowercase(),
        dec(p),
        dec(q)
    )
}

pub(super) fn agg_trade_json(
    instrument_id: u32,
    time_ms: u64,
    p: i64,
    q: i64,
    seller_took: bool,
) -> String {
    let s = symbol_of(instrument_id);
    format!(
        r#"{{"stream":"{}@aggTrade","data":{{"e":"aggTrade","E":{time_ms},"s":"{s}","a":3,"p":"{}","q":"{}","f":3,"l":3,"T":{time_ms},"m":{seller_took},"M":true}}}}"#,
        s.to_lowercase(),
        dec(p),
        dec(q)
    )
}

pub(super) fn ticker_json(instrument_id: u32, bid: i64, ask: i64) -> String {
    let s = symbol_of(instrument_id);
    format!(
        r#"{{"stream":"{}@bookTicker","data":{{"u":9,"s":"{s}","b":"{}","B":"1.00000000","a":"{}","A":"1.00000000"}}}}"#,
        s.to_lowercase(),
        dec(bid),
        dec(ask)
    )
}

pub(super) fn snapshot_json(
    last_update_id: u64,
    bids: &[(i64, i64)],
    asks: &[(i64, i64)],
) -> String {
    format!(
        r#"{{"lastUpdateId":{last_update_id},"bids":{},"asks":{}}}"#,
        levels_json(bids),
        levels_json(asks)
    )
}

/// NKNUSDT levels given in thousandths of a USDT and lots.
pub(super) fn nkn_levels(levels: &[(i64, i64)]) -> Vec<(i64, i64)> {
    levels.iter().map(|(p, q)| (px(*p), qty(*q))).collect()
}

pub(super) fn request(kind: u8, id: u64) -> OrderRequest {
    OrderRequest {
        client_order_id: id,
        kind,
        instrument_id: NKN,
        ..OrderRequest::default()
    }
}

/// A new NKNUSDT limit order.
pub(super) fn limit(id: u64, order_side: u8, px: i64, qty: i64, tif: u8) -> OrderRequest {
    OrderRequest {
        px,
        qty,
        side: order_side,
        ord_type: ord_type::LIMIT,
        time_in_force: tif,
        ..request(order_kind::NEW, id)
    }
}

pub(super) fn buy(id: u64, milli: i64, lots: i64) -> OrderRequest {
    limit(id, side::BUY, px(milli), qty(lots), time_in_force::GTC)
}

pub(super) fn sell(id: u64, milli: i64, lots: i64) -> OrderRequest {
    limit(id, side::SELL, px(milli), qty(lots), time_in_force::GTC)
}

pub(super) fn market(id: u64, order_side: u8, lots: i64) -> OrderRequest {
    OrderRequest {
        qty: qty(lots),
        side: order_side,
        ord_type: ord_type::MARKET,
        time_in_force: time_in_force::IOC,
        ..request(order_kind::NEW, id)
    }
}

pub(super) fn cancel(id: u64, orig: u64) -> OrderRequest {
    OrderRequest {
        orig_client_order_id: orig,
        ..request(order_kind::CANCEL, id)
    }
}

pub(super) fn replace(id: u64, orig: u64, milli: i64, lots: i64) -> OrderRequest {
    OrderRequest {
        orig_client_order_id: orig,
        px: px(milli),
        qty: qty(lots),
        ..request(order_kind::REPLACE, id)
    }
}

/// What a test checks of a report: (client order id, exec type, last px, last qty, cum qty,
/// leaves qty, ord status).
pub(super) type Brief = (u64, u8, i64, i64, i64, i64, u8);

pub(super) fn brief(r: &ExecutionReport) -> Brief {
    (
        r.client_order_id,
        r.exec_type,
        r.last_px,
        r.last_qty,
        r.cum_qty,
        r.leaves_qty,
        r.ord_status,
    )
}

/// The report of order `id` accepted with `leaves` working.
pub(super) fn new_ack(id: u64, leaves: i64) -> Brief {
    (id, exec_type::NEW, 0, 0, 0, leaves, b'0')
}

pub(super) fn trade_report(id: u64, p: i64, q: i64, cum: i64, leaves: i64) -> Brief {
    let status = if leaves == 0 { b'2' } else { b'1' };
    (id, exec_type::TRADE, p, q, cum, leaves, status)
}

/// The venue under test with a clock: every call happens 1 ms after the last.
pub(super) struct Venue {
    pub ex: Exchange,
    pub t_ns: u64,
    /// The last depth update id of each instrument (snapshots and diffs continue it).
    update_ids: [u64; 2],
    /// Results drained but not yet taken by [`Venue::fills`] or [`Venue::rejects`].
    results: Vec<ResultEvent>,
}

impl Venue {
    pub fn new(config: ExchangeConfig) -> Venue {
        Venue {
            ex: Exchange::new(&instruments(), config).unwrap(),
            t_ns: T0,
            update_ids: [100, 100],
            results: Vec::new(),
        }
    }

    /// Risk-averse queue, no fees, expire_taker.
    pub fn plain() -> Venue {
        Venue::new(ExchangeConfig::default())
    }

    pub fn tick(&mut self) -> u64 {
        self.t_ns += MS;
        self.t_ns
    }

    fn ms(&self) -> u64 {
        self.t_ns / MS
    }

    pub fn stream(&mut self, json: &str) {
        let t = self.tick();
        self.ex
            .on_market(InputKind::Stream, None, json.as_bytes(), t);
    }

    pub fn snapshot_of(&mut self, instrument_id: u32, bids: &[(i64, i64)], asks: &[(i64, i64)]) {
        let t = self.tick();
        let json = snapshot_json(self.update_ids[instrument_id as usize], bids, asks);
        let symbol = symbol_of(instrument_id);
        self.ex
            .on_market(InputKind::Snapshot, Some(symbol), json.as_bytes(), t);
    }

    /// An NKNUSDT snapshot, levels in thousandths and lots.
    pub fn snapshot(&mut self, bids: &[(i64, i64)], asks: &[(i64, i64)]) {
        self.snapshot_of(NKN, &nkn_levels(bids), &nkn_levels(asks));
    }

    pub fn depth_of(&mut self, instrument_id: u32, bids: &[(i64, i64)], asks: &[(i64, i64)]) {
        let id = &mut self.update_ids[instrument_id as usize];
        *id += 1;
        let u = *id;
        let json = depth_json(instrument_id, self.ms() + 1, u, u, bids, asks);
        self.stream(&json);
    }

    /// An NKNUSDT depth update in sequence, levels in thousandths and lots.
    pub fn depth(&mut self, bids: &[(i64, i64)], asks: &[(i64, i64)]) {
        self.depth_of(NKN, &nkn_levels(bids), &nkn_levels(asks));
    }

    /// An NKNUSDT `trade` of `q` units at `milli`; `seller_took`: `m: true`.
    pub fn trade_units(&mut self, milli: i64, q: i64, seller_took: bool) {
        let json = trade_json(NKN, self.ms() + 1, px(milli), q, seller_took);
        self.stream(&json);
    }

    pub fn trade(&mut self, milli: i64, lots: i64, seller_took: bool) {
        self.trade_units(milli, qty(lots), seller_took);
    }

    /// A seller took `lots` from the bids at `milli`.
    pub fn sold(&mut self, milli: i64, lots: i64) {
        self.trade(milli, lots, true);
    }

    /// A buyer took `lots` from the asks at `milli`.
    pub fn bought(&mut self, milli: i64, lots: i64) {
        self.trade(milli, lots, false);
    }

    pub fn ticker(&mut self, bid_milli: i64, ask_milli: i64) {
        let json = ticker_json(NKN, px(bid_milli), px(ask_milli));
        self.stream(&json);
    }

    pub fn send(&mut self, order: &OrderRequest) {
        let t = self.tick();
        self.ex.on_request(order, t);
    }

    /// The reports since the last call.
    pub fn reports(&mut self) -> Vec<ExecutionReport> {
        self.ex.drain_answers().map(|a| a.report).collect()
    }

    pub fn briefs(&mut self) -> Vec<Brief> {
        self.reports().iter().map(brief).collect()
    }

    /// The results since the last call (of this, or whatever [`Venue::fills`] and
    /// [`Venue::rejects`] left).
    pub fn results(&mut self) -> Vec<ResultEvent> {
        self.results.extend(self.ex.drain_results());
        std::mem::take(&mut self.results)
    }

    /// The results since the last call that `pick` takes; the rest stay for the next call.
    fn take_results<T>(&mut self, pick: impl Fn(&ResultEvent) -> Option<T>) -> Vec<T> {
        let mut taken = Vec::new();
        let mut rest = Vec::new();
        for e in self.results() {
            match pick(&e) {
                Some(t) => taken.push(t),
                None => rest.push(e),
            }
        }
        self.results = rest;
        taken
    }

    /// The fills since the last call.
    pub fn fills(&mut self) -> Vec<FillEvent> {
        self.take_results(|e| match e {
            ResultEvent::Fill(f) => Some(*f),
            _ => None,
        })
    }

    /// (order, px, qty, maker) of the fills since the last call.
    pub fn fill_briefs(&mut self) -> Vec<(u64, i64, i64, bool)> {
        self.fills()
            .iter()
            .map(|f| (f.client_order_id, f.px, f.qty, f.maker))
            .collect()
    }

    /// The reject reasons since the last call.
    pub fn rejects(&mut self) -> Vec<&'static str> {
        self.take_results(|e| match e {
            ResultEvent::Reject { reason, .. } => Some(*reason),
            _ => None,
        })
    }

    /// Drops the reports and results so far.
    pub fn clear(&mut self) {
        self.reports();
        self.results();
    }

    /// Market quantity the venue estimates ahead of working order `id`, in lots.
    pub fn ahead(&self, id: u64) -> f64 {
        self.ex.core.orders[&id].pos.front / LOT as f64
    }

    pub fn working(&self) -> Vec<u64> {
        self.ex.working_order_ids()
    }

    pub fn position(&self) -> i64 {
        self.ex.position(NKN)
    }
}
