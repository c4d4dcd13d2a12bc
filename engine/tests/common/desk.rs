//! The risk tests' desk: an engine with reference prices, a clock, fresh client order ids, and
//! the requests and reports a test sends (`tests/risk.rs`, `tests/risk_reports.rs`,
//! `tests/risk_status.rs`).

use levibot_engine::risk::{RiskCheck, RiskEngine, RiskLimits};
use levibot_shm::records::{
    ExecutionReport, OrderRequest, RiskReject, exec_type, ord_type, order_kind, time_in_force,
};

use super::{A, B, limits};

/// Between two requests of a test: longer than the duplicate window.
pub const STEP_NS: u64 = 2_000_000;

/// An engine with a reference price of 100.00 on both instruments, and a clock.
pub struct Desk {
    pub risk: RiskEngine,
    pub next_id: u64,
    pub now_ns: u64,
}

pub fn desk_with(limits: RiskLimits) -> Desk {
    let mut risk = RiskEngine::new(limits).unwrap();
    risk.on_market(A, 9_990, 10_010);
    risk.on_market(B, 9_990, 10_010);
    Desk {
        risk,
        next_id: 1,
        now_ns: 1_000_000_000,
    }
}

pub fn desk() -> Desk {
    desk_with(limits())
}

pub fn order(instrument_id: u32, order_side: u8, px: i64, qty: i64) -> OrderRequest {
    OrderRequest {
        instrument_id,
        kind: order_kind::NEW,
        side: order_side,
        ord_type: ord_type::LIMIT,
        time_in_force: time_in_force::GTC,
        px,
        qty,
        ..OrderRequest::default()
    }
}

pub fn market(instrument_id: u32, order_side: u8, qty: i64) -> OrderRequest {
    OrderRequest {
        ord_type: ord_type::MARKET,
        time_in_force: time_in_force::IOC,
        px: 0,
        ..order(instrument_id, order_side, 0, qty)
    }
}

impl Desk {
    /// Sends `o` with a fresh client order id, `STEP_NS` after the previous request.
    pub fn send(&mut self, mut o: OrderRequest) -> Result<u64, RiskReject> {
        o.client_order_id = self.next_id;
        self.next_id += 1;
        self.now_ns += STEP_NS;
        self.risk.check(&o, self.now_ns).map(|()| o.client_order_id)
    }

    pub fn pass(&mut self, o: OrderRequest) -> u64 {
        self.send(o)
            .unwrap_or_else(|r| panic!("refused: {:?}", why(&r)))
    }

    /// The check, limit and value of a refusal.
    pub fn refuse(&mut self, o: OrderRequest) -> (RiskCheck, i64, i64) {
        match self.send(o) {
            Ok(id) => panic!("order {id} passed: {o:?}"),
            Err(r) => why(&r),
        }
    }

    pub fn cancel(&mut self, instrument_id: u32, target: u64) -> Result<u64, RiskReject> {
        self.send(OrderRequest {
            kind: order_kind::CANCEL,
            instrument_id,
            orig_client_order_id: target,
            ..OrderRequest::default()
        })
    }

    pub fn replace(&mut self, target: u64, o: OrderRequest) -> Result<u64, RiskReject> {
        self.send(OrderRequest {
            kind: order_kind::REPLACE,
            orig_client_order_id: target,
            ..o
        })
    }

    pub fn report(
        &mut self,
        client_order_id: u64,
        kind: u8,
        fill: Option<(i64, i64)>,
        leaves: i64,
    ) {
        let instrument_id = self
            .risk
            .open_order(client_order_id)
            .map_or(A, |o| o.instrument_id);
        let (last_px, last_qty) = fill.unwrap_or((0, 0));
        let report = ExecutionReport {
            client_order_id,
            instrument_id,
            exec_type: kind,
            last_px,
            last_qty,
            leaves_qty: leaves,
            ..ExecutionReport::default()
        };
        self.now_ns += 1_000;
        self.risk.on_execution(&report, self.now_ns);
    }

    pub fn fill(&mut self, client_order_id: u64, px: i64, qty: i64, leaves: i64) {
        self.report(client_order_id, exec_type::TRADE, Some((px, qty)), leaves);
    }
}

pub fn why(r: &RiskReject) -> (RiskCheck, i64, i64) {
    (RiskCheck::from_code(r.check).unwrap(), r.limit, r.value)
}
