//! The daemon's strategies: one per configured instrument, each with its own parameters.
//!
//! The pipeline hands every strategy the same parameter value from one mailbox (a strategy is
//! one `Copy` value, swapped whole between events). Each instrument's parameters are in its own
//! ticks and lots, so the daemon wraps each strategy in [`PerInstrument`], whose parameters are
//! [`ParamsByInstrument`]: a fixed array with a slot per instrument id, of which each strategy
//! takes its own. One reload is still one value, applied to every strategy between the same two
//! events.

use levibot_shm::records::ExecutionReport;

use levibot_engine::risk::RISK_INSTRUMENTS_MAX;
use levibot_engine::strategy::{MarketView, OrderSink, Strategy};

/// Instruments the daemon trades at most (each needs risk limits).
pub const TRADED_MAX: usize = RISK_INSTRUMENTS_MAX;

/// Parameters of every instrument's strategy, by instrument id (`None`: unchanged).
#[derive(Clone, Copy, Debug)]
pub struct ParamsByInstrument<P: Copy>(pub [Option<P>; TRADED_MAX]);

impl<P: Copy> ParamsByInstrument<P> {
    /// `params[i]` for instrument id `i`; `None` if there are more than [`TRADED_MAX`].
    pub fn from_slice(params: &[P]) -> Option<Self> {
        if params.len() > TRADED_MAX {
            return None;
        }
        let mut all = [None; TRADED_MAX];
        for (slot, p) in all.iter_mut().zip(params) {
            *slot = Some(*p);
        }
        Some(ParamsByInstrument(all))
    }
}

/// A strategy that trades one instrument and takes its own slot of [`ParamsByInstrument`].
pub struct PerInstrument<S: Strategy> {
    inner: S,
    instrument_id: u32,
}

impl<S: Strategy> PerInstrument<S> {
    pub fn new(inner: S, instrument_id: u32) -> Self {
        PerInstrument {
            inner,
            instrument_id,
        }
    }

    pub fn inner(&self) -> &S {
        &self.inner
    }
}

impl<S: Strategy> Strategy for PerInstrument<S> {
    type Params = ParamsByInstrument<S::Params>;

    fn name(&self) -> &str {
        self.inner.name()
    }

    #[inline]
    fn on_market(&mut self, view: &MarketView<'_>, out: &mut OrderSink) {
        self.inner.on_market(view, out);
    }

    #[inline]
    fn on_execution(&mut self, report: &ExecutionReport, out: &mut OrderSink) {
        self.inner.on_execution(report, out);
    }

    #[inline]
    fn on_timer(&mut self, now_ns: u64, out: &mut OrderSink) {
        self.inner.on_timer(now_ns, out);
    }

    fn uses_timer(&self) -> bool {
        self.inner.uses_timer()
    }

    fn output(&self) -> f64 {
        self.inner.output()
    }

    fn model_id(&self) -> u64 {
        self.inner.model_id()
    }

    fn start_from_position(&mut self, position: i64) {
        self.inner.start_from_position(position);
    }

    fn params(&self) -> Self::Params {
        let mut all = [None; TRADED_MAX];
        if let Some(slot) = all.get_mut(self.instrument_id as usize) {
            *slot = Some(self.inner.params());
        }
        ParamsByInstrument(all)
    }

    fn set_params(&mut self, params: Self::Params) {
        if let Some(Some(p)) = params.0.get(self.instrument_id as usize) {
            self.inner.set_params(*p);
        }
    }
}
