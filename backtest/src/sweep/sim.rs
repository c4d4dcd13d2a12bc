//! The simulation's settings, as `levibot-backtest run` takes them (its flags) and as a sweep
//! names them: `sim.<flag>` with the flag's dashes as underscores (`--order-latency-us` is
//! `sim.order_latency_us`).

use crate::exchange::{ExchangeConfig, QueueModel, SelfTradePrevention};
use crate::run::{FEED_GAP_MAX_NS, FeedLatency, RunConfig};
use crate::venue::{ComputeTime, OrderLatency};
use crate::window::Window;

/// The settings a sweep may vary, by their sweep names (without `sim.`).
pub const SIM_KEYS: [&str; 10] = [
    "order_latency_us",
    "response_latency_us",
    "feed_latency",
    "feed_gap_max_ms",
    "queue",
    "maker_fee_bps",
    "taker_fee_bps",
    "self_trade",
    "seed",
    "compute_time",
];

/// How a run is simulated, in the flags' units; [`SimSettings::run_config`] is the
/// [`RunConfig`]. The default is the flags' defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct SimSettings {
    /// `--order-latency-us`: gateway to matching, one way.
    pub order_latency_us: u64,
    /// `--response-latency-us` (`None`: the order latency).
    pub response_latency_us: Option<u64>,
    /// `--feed-latency`: `None` is `recorded`, else a constant lag in µs.
    pub feed_latency_us: Option<u64>,
    /// `--feed-gap-max-ms`.
    pub feed_gap_max_ms: u64,
    /// `--queue`.
    pub queue: QueueModel,
    /// `--maker-fee-bps` in millionths of the notional.
    pub maker_fee_ppm: i64,
    /// `--taker-fee-bps` in millionths of the notional.
    pub taker_fee_ppm: i64,
    /// `--self-trade`.
    pub self_trade: SelfTradePrevention,
    /// `--seed`.
    pub seed: u64,
    /// `--order-latency-from`: round trips to sample order latency from (not a sweep axis).
    pub order_round_trips: Option<std::sync::Arc<crate::latency::RoundTrips>>,
    /// `--order-latency-in-order`.
    pub order_latency_in_order: bool,
    /// `--compute-time`.
    pub compute_time: ComputeTime,
    /// Not `--no-market-journal` (not a sweep axis).
    pub journal_market: bool,
    /// `--trade-from`, `--until` (not a sweep axis).
    pub window: Window,
}

impl Default for SimSettings {
    fn default() -> Self {
        SimSettings {
            order_latency_us: 100,
            response_latency_us: None,
            feed_latency_us: None,
            feed_gap_max_ms: FEED_GAP_MAX_NS / 1_000_000,
            queue: QueueModel::RiskAverse,
            maker_fee_ppm: 0,
            taker_fee_ppm: 0,
            self_trade: SelfTradePrevention::ExpireTaker,
            seed: 1,
            order_round_trips: None,
            order_latency_in_order: false,
            compute_time: ComputeTime::Off,
            journal_market: true,
            window: Window::default(),
        }
    }
}

/// Basis points (at most two decimals, within ±10,000) as millionths.
pub fn bps_to_ppm(bps: f64) -> Result<i64, String> {
    let ppm = bps * 100.0;
    if ppm.is_finite() && ppm.abs() <= 1e6 && ppm.fract() == 0.0 {
        Ok(ppm as i64)
    } else {
        Err("basis points with at most two decimals, within ±10,000".to_owned())
    }
}

/// `--feed-latency`'s value: `recorded` (`None`) or a whole number of µs.
pub fn parse_feed_latency(value: &str) -> Result<Option<u64>, String> {
    match value {
        "recorded" => Ok(None),
        us => us
            .parse::<u64>()
            .map(Some)
            .map_err(|_| "`recorded` or a whole number of µs".to_owned()),
    }
}

fn whole(value: &str) -> Result<u64, String> {
    value
        .parse::<u64>()
        .map_err(|_| "a whole number, at least 0".to_owned())
}

fn bps(value: &str) -> Result<i64, String> {
    let bps = value
        .parse::<f64>()
        .map_err(|_| "a number of basis points".to_owned())?;
    bps_to_ppm(bps)
}

impl SimSettings {
    /// Sets the setting `name` (one of [`SIM_KEYS`]) from its text as the flag takes it;
    /// `Err` says why not (the value is not named).
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        let value = value.trim();
        match name {
            "order_latency_us" => self.order_latency_us = whole(value)?,
            "response_latency_us" => self.response_latency_us = Some(whole(value)?),
            "feed_latency" => self.feed_latency_us = parse_feed_latency(value)?,
            "feed_gap_max_ms" => self.feed_gap_max_ms = whole(value)?,
            "queue" => self.queue = value.parse()?,
            "maker_fee_bps" => self.maker_fee_ppm = bps(value)?,
            "taker_fee_bps" => self.taker_fee_ppm = bps(value)?,
            "self_trade" => self.self_trade = value.parse()?,
            "seed" => self.seed = whole(value)?,
            "compute_time" => self.compute_time = value.parse()?,
            _ => {
                return Err(format!(
                    "not a simulation setting; one of: sim.{}",
                    SIM_KEYS.join(", sim.")
                ));
            }
        }
        Ok(())
    }

    /// The run's configuration.
    pub fn run_config(&self) -> RunConfig {
        let order_ns = self.order_latency_us.saturating_mul(1000);
        RunConfig {
            exchange: ExchangeConfig {
                queue: self.queue,
                maker_fee_ppm: self.maker_fee_ppm,
                taker_fee_ppm: self.taker_fee_ppm,
                self_trade: self.self_trade,
            },
            order_latency: OrderLatency {
                entry_ns: order_ns,
                response_ns: self
                    .response_latency_us
                    .map_or(order_ns, |us| us.saturating_mul(1000)),
            },
            feed_latency: match self.feed_latency_us {
                None => FeedLatency::Recorded {
                    gap_max_ns: self.feed_gap_max_ms.saturating_mul(1_000_000),
                },
                Some(us) => FeedLatency::Constant(us.saturating_mul(1000)),
            },
            seed: self.seed,
            order_round_trips: self.order_round_trips.clone(),
            order_latency_in_order: self.order_latency_in_order,
            compute_time: self.compute_time,
            journal_market: self.journal_market,
            window: self.window,
            ..RunConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_the_run_configs() {
        assert_eq!(SimSettings::default().run_config(), RunConfig::default());
    }

    #[test]
    fn every_key_is_set_from_its_flags_text() {
        let mut s = SimSettings::default();
        for (key, value) in [
            ("order_latency_us", "250"),
            ("feed_latency", "40"),
            ("queue", "power:2"),
            ("maker_fee_bps", "-0.25"),
            ("taker_fee_bps", "7.5"),
            ("self_trade", "expire_both"),
            ("seed", "9"),
            ("compute_time", "2.5"),
        ] {
            s.set(key, value).unwrap();
        }
        let c = s.run_config();
        assert_eq!(c.order_latency.entry_ns, 250_000);
        assert_eq!(c.order_latency.response_ns, 250_000);
        assert_eq!(c.feed_latency, FeedLatency::Constant(40_000));
        assert_eq!(c.exchange.queue, QueueModel::Power(2.0));
        assert_eq!(c.exchange.maker_fee_ppm, -25);
        assert_eq!(c.exchange.taker_fee_ppm, 750);
        assert_eq!(c.exchange.self_trade, SelfTradePrevention::ExpireBoth);
        assert_eq!(c.seed, 9);
        assert_eq!(c.compute_time, ComputeTime::Constant(2_500));
        s.set("compute_time", "measured").unwrap();
        assert_eq!(s.run_config().compute_time, ComputeTime::Measured);
        assert!(s.set("compute_time", "-1").is_err());
        s.set("response_latency_us", "30").unwrap();
        s.set("feed_latency", "recorded").unwrap();
        s.set("feed_gap_max_ms", "5").unwrap();
        let c = s.run_config();
        assert_eq!(c.order_latency.response_ns, 30_000);
        assert_eq!(
            c.feed_latency,
            FeedLatency::Recorded {
                gap_max_ns: 5_000_000
            }
        );
    }

    #[test]
    fn bad_values_and_names_say_why() {
        let mut s = SimSettings::default();
        assert!(
            s.set("maker_fee_bps", "0.001")
                .unwrap_err()
                .contains("two decimals")
        );
        assert!(
            s.set("maker_fee_bps", "x")
                .unwrap_err()
                .contains("basis points")
        );
        assert!(
            s.set("order_latency_us", "-1")
                .unwrap_err()
                .contains("whole")
        );
        assert!(
            s.set("feed_latency", "soon")
                .unwrap_err()
                .contains("recorded")
        );
        assert!(s.set("queue", "fifo").unwrap_err().contains("fifo"));
        assert!(
            s.set("self_trade", "no")
                .unwrap_err()
                .contains("expire_taker")
        );
        assert!(
            s.set("latency", "1")
                .unwrap_err()
                .contains("sim.order_latency_us")
        );
        assert_eq!(s, SimSettings::default());
    }
}
