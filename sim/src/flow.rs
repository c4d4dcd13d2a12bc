//! Synthetic order flow for the simulated venue: traders who rest limit orders around a
//! random-walking fair price, cancel their oldest ones, and now and then cross the spread with
//! an IOC, so that prices move and trades print. Deterministic for a seed.

use std::collections::VecDeque;

use levibot_shm::records::{ord_type, side, time_in_force};

use super::matching::{MatchingEngine, NewOrder};

/// The owner id of the synthetic traders' orders.
pub const SYNTHETIC_OWNER: u32 = u32::MAX;
/// Synthetic orders resting per instrument before the oldest is cancelled.
pub const SYNTHETIC_RESTING_MAX: usize = 64;
/// Furthest a passive order rests from the fair price, ticks.
pub const SYNTHETIC_SPREAD_TICKS_MAX: i64 = 10;

/// What the synthetic traders do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowAction {
    Submit(NewOrder),
    Cancel {
        client_order_id: u64,
        orig_client_order_id: u64,
    },
}

/// The synthetic traders of every instrument.
#[derive(Debug)]
pub struct SyntheticFlow {
    rng: u64,
    /// Fair price of each instrument, ticks.
    fair_ticks: Vec<i64>,
    resting: Vec<VecDeque<u64>>,
    next_client_order_id: u64,
    next_instrument: usize,
}

impl SyntheticFlow {
    /// Flow around `fair_ticks[i]` for instrument `i`.
    pub fn new(fair_ticks: Vec<i64>, seed: u64) -> SyntheticFlow {
        let n = fair_ticks.len();
        SyntheticFlow {
            rng: seed | 1,
            fair_ticks,
            resting: vec![VecDeque::new(); n],
            next_client_order_id: 1,
            next_instrument: 0,
        }
    }

    fn random(&mut self) -> u64 {
        // xorshift64*: deterministic and cheap.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// The next action, for the instruments in turn. `None` if there is no instrument.
    pub fn next(&mut self, engine: &MatchingEngine) -> Option<FlowAction> {
        let n = self.fair_ticks.len();
        if n == 0 {
            return None;
        }
        let id = self.next_instrument;
        self.next_instrument = (id + 1) % n;
        let (tick, _) = engine.grid(id as u32)?;
        let id_client = self.next_client_order_id;
        self.next_client_order_id += 1;
        if self.resting[id].len() >= SYNTHETIC_RESTING_MAX {
            let orig = self.resting[id].pop_front()?;
            return Some(FlowAction::Cancel {
                client_order_id: id_client,
                orig_client_order_id: orig,
            });
        }
        let r = self.random();
        // The fair price walks a tick at a time, staying above a floor.
        let fair = &mut self.fair_ticks[id];
        match r % 5 {
            0 => *fair += 1,
            1 if *fair > 2 * SYNTHETIC_SPREAD_TICKS_MAX => *fair -= 1,
            _ => {}
        }
        let fair = *fair;
        let buy = (r >> 8) & 1 == 1;
        let aggressive = (r >> 9).is_multiple_of(8);
        let distance = 1 + ((r >> 12) % SYNTHETIC_SPREAD_TICKS_MAX as u64) as i64;
        let ticks = match (buy, aggressive) {
            (true, false) => fair - distance,
            (false, false) => fair + distance,
            (true, true) => fair + 2,
            (false, true) => fair - 2,
        };
        let px = ticks * tick;
        let min_qty = engine.min_qty_at(id as u32, px)?;
        let qty = min_qty * (1 + ((r >> 20) % 5) as i64);
        let order = NewOrder {
            owner: SYNTHETIC_OWNER,
            client_order_id: id_client,
            instrument_id: id as u32,
            side: if buy { side::BUY } else { side::SELL },
            ord_type: ord_type::LIMIT,
            time_in_force: if aggressive {
                time_in_force::IOC
            } else {
                time_in_force::GTC
            },
            px,
            qty,
            post_only: false,
        };
        if !aggressive {
            self.resting[id].push_back(id_client);
        }
        Some(FlowAction::Submit(order))
    }

    /// Applies `action` to `engine`.
    pub fn apply(engine: &mut MatchingEngine, action: FlowAction) -> super::matching::Outcome {
        match action {
            FlowAction::Submit(order) => engine.submit(order),
            FlowAction::Cancel {
                client_order_id,
                orig_client_order_id,
            } => engine.cancel(SYNTHETIC_OWNER, client_order_id, orig_client_order_id),
        }
    }
}
