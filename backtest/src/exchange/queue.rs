//! Where our resting order stands in its price level's queue, estimated from L2 data (which
//! shows each level's total, not the orders in it). The models and their names follow
//! hftbacktest's (docs: "Order Fill", "Queue Models"), so a quant can set the same model on
//! both engines:
//!
//! - `risk_averse` (hftbacktest's `RiskAdverseQueueModel`): only trades at our price move us
//!   forward; a level that shrinks below what we think is ahead of us caps it
//!   (`front = min(front, level)`). The most conservative: cancellations are taken to be
//!   behind us.
//! - the probabilistic family (hftbacktest's `ProbQueueModel`): a decrease of the level not
//!   explained by trades is split between ahead and behind us. With `front` ahead and
//!   `back = level - front` behind, `p` is the probability that the decrease came from
//!   behind; `front' = front - (1 - p) x decrease + min(back - p x decrease, 0)`, capped by the
//!   new level. Trades at our price since the last depth change are taken off the decrease
//!   first (they were already counted). `p` by family:
//!   - `power:n` (`PowerProbQueueFunc`): `f(back) / (f(back) + f(front))`, `f(x) = x^n`;
//!   - `power2:n` (`PowerProbQueueFunc2`): `f(back) / f(back + front)`;
//!   - `power3:n` (`PowerProbQueueFunc3`): `1 - f(front / (front + back))`;
//!   - `log` (`LogProbQueueFunc`): `f(back) / (f(back) + f(front))`, `f(x) = ln(1 + x)`;
//!   - `log2` (`LogProbQueueFunc2`): `f(back) / f(back + front)`.
//!
//! Quantities are the instrument's quantity units as `f64` (an estimate, not money); the
//! probability `p` is taken on them in the base asset, as hftbacktest's are (`ln(1 + x)` is not
//! the same function of 5 NKN as of 500,000,000 units of 1e-8 NKN).

use std::fmt;
use std::str::FromStr;

/// A queue-position model, by its name in config and on the command line.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum QueueModel {
    RiskAverse,
    Power(f64),
    Power2(f64),
    Power3(f64),
    Log,
    Log2,
}

/// An order's estimated place in its level's queue.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct QueuePos {
    /// Market quantity ahead of us (units); negative: trades reached past us by that much.
    pub front: f64,
    /// Trades at our price since the last depth change of the level.
    pub traded_since_depth: f64,
}

impl QueueModel {
    /// A trade of `traded` at our price, of which `reaching` went through the queue ahead of
    /// us (the rest, earlier orders of ours took). The level's next change is measured against
    /// all of `traded`: the recorded level lost all of it, whoever took it.
    pub fn on_trade(&self, pos: &mut QueuePos, reaching: f64, traded: f64) {
        pos.front -= reaching;
        pos.traded_since_depth += traded;
    }

    /// The level's market quantity changed from `prev` to `new`; `unit` is one quantity unit
    /// in the base asset (the probability is taken on base-asset quantities, as hftbacktest's).
    pub fn on_depth(&self, pos: &mut QueuePos, prev: f64, new: f64, unit: f64) {
        let traded = std::mem::take(&mut pos.traded_since_depth);
        let p = match *self {
            QueueModel::RiskAverse => {
                pos.front = pos.front.min(new);
                return;
            }
            _ => {
                let decrease = prev - new - traded;
                if decrease <= 0.0 {
                    pos.front = pos.front.min(new);
                    return;
                }
                let front = pos.front.max(0.0);
                let back = (prev - front).max(0.0);
                let mut p = self.prob_behind(front * unit, back * unit);
                if !p.is_finite() {
                    p = 1.0;
                }
                let p = p.clamp(0.0, 1.0);
                (p, decrease, front, back)
            }
        };
        let (p, decrease, front, back) = p;
        let estimate = front - (1.0 - p) * decrease + (back - p * decrease).min(0.0);
        pos.front = estimate.min(new);
    }

    /// The probability that a decrease came from behind us.
    fn prob_behind(&self, front: f64, back: f64) -> f64 {
        let ln = |x: f64| (1.0 + x).ln();
        match *self {
            QueueModel::RiskAverse => 0.0,
            QueueModel::Power(n) => back.powf(n) / (back.powf(n) + front.powf(n)),
            QueueModel::Power2(n) => back.powf(n) / (back + front).powf(n),
            QueueModel::Power3(n) => 1.0 - (front / (front + back)).powf(n),
            QueueModel::Log => ln(back) / (ln(back) + ln(front)),
            QueueModel::Log2 => ln(back) / ln(back + front),
        }
    }
}

impl fmt::Display for QueueModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueueModel::RiskAverse => write!(f, "risk_averse"),
            QueueModel::Power(n) => write!(f, "power:{n}"),
            QueueModel::Power2(n) => write!(f, "power2:{n}"),
            QueueModel::Power3(n) => write!(f, "power3:{n}"),
            QueueModel::Log => write!(f, "log"),
            QueueModel::Log2 => write!(f, "log2"),
        }
    }
}

impl FromStr for QueueModel {
    type Err = String;

    fn from_str(s: &str) -> Result<QueueModel, String> {
        let (name, n) = match s.split_once(':') {
            Some((name, n)) => {
                let n: f64 = n
                    .parse()
                    .ok()
                    .filter(|n: &f64| n.is_finite() && *n > 0.0)
                    .ok_or_else(|| {
                        format!("queue model {s}: the exponent must be a positive number")
                    })?;
                (name, Some(n))
            }
            None => (s, None),
        };
        match (name, n) {
            ("risk_averse", None) => Ok(QueueModel::RiskAverse),
            ("log", None) => Ok(QueueModel::Log),
            ("log2", None) => Ok(QueueModel::Log2),
            ("power", Some(n)) => Ok(QueueModel::Power(n)),
            ("power2", Some(n)) => Ok(QueueModel::Power2(n)),
            ("power3", Some(n)) => Ok(QueueModel::Power3(n)),
            _ => Err(format!(
                "queue model {s}: one of risk_averse, log, log2, power:N, power2:N, power3:N"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn risk_averse_moves_only_on_trades_and_caps_at_the_level() {
        let m = QueueModel::RiskAverse;
        let mut pos = QueuePos {
            front: 10.0,
            ..QueuePos::default()
        };
        m.on_depth(&mut pos, 12.0, 11.0, 1.0); // a cancel: taken to be behind us
        assert_eq!(pos.front, 10.0);
        m.on_trade(&mut pos, 4.0, 4.0);
        assert_eq!(pos.front, 6.0);
        m.on_depth(&mut pos, 8.0, 3.0, 1.0); // the level is smaller than what was ahead
        assert_eq!(pos.front, 3.0);
        m.on_depth(&mut pos, 3.0, 30.0, 1.0); // joiners go behind
        assert_eq!(pos.front, 3.0);
    }

    #[test]
    fn probabilistic_models_split_a_decrease_by_their_formula() {
        // front 10, back 30, the level falls by 8 with no trade.
        for (model, p) in [
            (QueueModel::Power(2.0), 900.0 / (900.0 + 100.0)),
            (QueueModel::Power2(2.0), 900.0 / 1600.0),
            (QueueModel::Power3(2.0), 1.0 - (10.0f64 / 40.0).powi(2)),
            (QueueModel::Log, 31f64.ln() / (31f64.ln() + 11f64.ln())),
            (QueueModel::Log2, 31f64.ln() / 41f64.ln()),
        ] {
            let mut pos = QueuePos {
                front: 10.0,
                ..QueuePos::default()
            };
            model.on_depth(&mut pos, 40.0, 32.0, 1.0);
            let expected = 10.0 - (1.0 - p) * 8.0;
            assert!(
                (pos.front - expected).abs() < 1e-12,
                "{model}: {} vs {expected}",
                pos.front
            );
        }
    }

    #[test]
    fn trades_are_not_counted_twice_when_the_depth_shows_them() {
        let m = QueueModel::Power(3.0);
        let mut pos = QueuePos {
            front: 10.0,
            ..QueuePos::default()
        };
        m.on_trade(&mut pos, 5.0, 5.0);
        m.on_depth(&mut pos, 40.0, 35.0, 1.0); // the level fell by exactly the trade
        assert_eq!(pos.front, 5.0);
        assert_eq!(pos.traded_since_depth, 0.0);
    }

    #[test]
    fn names_round_trip_and_bad_ones_say_what_is_allowed() {
        for name in [
            "risk_averse",
            "log",
            "log2",
            "power:2",
            "power2:0.5",
            "power3:3",
        ] {
            assert_eq!(name.parse::<QueueModel>().unwrap().to_string(), name);
        }
        for bad in ["power", "power:-1", "log:2", "fifo"] {
            let err = bad.parse::<QueueModel>().unwrap_err();
            assert!(err.contains(bad), "{err}");
        }
    }
}
