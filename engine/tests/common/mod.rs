//! The risk tests' instruments and limits (`tests/risk*.rs`), and their desk ([`desk`]).

// Each test binary uses part of it.
#[allow(dead_code)]
pub mod desk;

use levibot_engine::risk::{InstrumentLimits, RateLimit, RiskLimits, TradingState, quote};
use levibot_gateway::decimal::Scale;
use levibot_gateway::instrument::Symbol;

pub const A: u32 = 0;
pub const B: u32 = 1;

/// Prices in cents (0.01), quantities in thousandths (0.001): a notional of `px x qty` units is
/// `px x qty x 10^-5` USDT. Tick 0.05, lot 0.01.
pub fn instrument(symbol: &str) -> InstrumentLimits {
    InstrumentLimits {
        symbol: Symbol::from_ascii(symbol.as_bytes()).unwrap(),
        quote_asset: Symbol::from_ascii(b"USDT").unwrap(),
        price_scale: Scale {
            mantissa: 1,
            exp: 2,
        },
        qty_scale: Scale {
            mantissa: 1,
            exp: 3,
        },
        tick_units: 5,
        lot_units: 10,
        price_min_units: 100,
        price_max_units: 1_000_000,
        qty_min_units: 10,
        qty_max_units: 100_000,
        // 0.01 USDT: px x qty >= 10^3
        notional_min: quote(1) / 100,
        collar_bps: 100,
        order_qty_max_units: 10_000,
        // px x qty <= 10^8: 10.000 at 100.00
        order_notional_max: quote(1_000),
        position_max_units: 20_000,
        open_orders_max: 8,
    }
}

pub fn limits() -> RiskLimits {
    let mut l = RiskLimits::default();
    l.instruments[A as usize] = Some(instrument("AAAUSDT"));
    l.instruments[B as usize] = Some(instrument("BBBUSDT"));
    l.open_orders_max = 12;
    // At a reference of 100.00, one quantity unit is worth 0.1 USDT: 20.000 is 2,000 USDT.
    l.gross_exposure_max = quote(3_000);
    l.net_exposure_max = quote(2_500);
    l.loss_max = quote(100);
    l.loss_state = TradingState::Halted;
    l.order_rate = RateLimit {
        count_max: 1_000,
        window_ns: 1_000_000_000,
    };
    l.message_rate = RateLimit {
        count_max: 1_000,
        window_ns: 1_000_000_000,
    };
    l.fill_rate = RateLimit {
        count_max: 50,
        window_ns: 1_000_000_000,
    };
    l.duplicate_window_ns = 1_000_000;
    l
}
