//! The engine's side of the simulated venue: a [`Venue`] (the gateway stage's seam) whose
//! orders are encoded as FIX 4.4 by the live encoder, then travel to the [`Exchange`] with
//! the order-entry latency, and whose reports come back with the response latency. Requests
//! and reports keep their order on the way (one session, one TCP stream).

use std::collections::VecDeque;

use levibot_engine::pipeline::{EncodedQueue, Queued, Venue, VenueSendError};
use levibot_gateway::fix::OrderEncoder;
use levibot_shm::records::{ExecutionReport, OrderRequest, exec_type};

use crate::clock::VirtualClock;
use crate::exchange::Exchange;
use crate::latency::LatencyModel;
use crate::results::{LatencyEvent, RequestKind, ResultEvent};

/// Latency of the order path, one way each, ns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderLatency {
    /// From our gateway to the venue's matching.
    pub entry_ns: u64,
    /// From the venue's matching back to our gateway.
    pub response_ns: u64,
}

/// What the engine's own work costs on the virtual clock (`--compute-time`): how long after
/// the event that caused it a request leaves. The engine's clock itself does not move for it:
/// the next event is still seen at its own time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ComputeTime {
    /// Free: a request leaves at the time of the event that caused it.
    #[default]
    Off,
    /// This long after, ns.
    Constant(u64),
    /// As long after as the engine took to make it in this run, on this machine's clock
    /// (decoding, books, strategy, risk and encoding, from the event's hand-over to the
    /// order's flush). A run is then not repeatable.
    Measured,
}

impl std::str::FromStr for ComputeTime {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "off" => Ok(ComputeTime::Off),
            "measured" => Ok(ComputeTime::Measured),
            us => match us.parse::<f64>() {
                Ok(us) if us.is_finite() && (0.0..=1e9).contains(&us) => {
                    Ok(ComputeTime::Constant((us * 1000.0).round() as u64))
                }
                _ => Err(format!(
                    "compute time {s}: `off`, `measured`, or µs (a number, at least 0)"
                )),
            },
        }
    }
}

impl std::fmt::Display for ComputeTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ComputeTime::Off => f.write_str("off"),
            ComputeTime::Measured => f.write_str("measured"),
            ComputeTime::Constant(ns) => write!(f, "{}", *ns as f64 / 1000.0),
        }
    }
}

/// Orders encoded and not flushed at most (the gateway flushes after each order).
const UNSENT_MAX: usize = 1 << 10;

/// A request on its way to the venue.
#[derive(Clone, Copy, Debug)]
struct InFlight {
    arrives_ns: u64,
    sent_ns: u64,
    order: OrderRequest,
    /// Its way there and its answer's way back.
    latency: OrderLatency,
}

/// The gateway's venue in a backtest.
pub struct BacktestVenue {
    /// Encoded and numbered, not flushed yet (they leave on the next flush, as a socket's
    /// would).
    orders: EncodedQueue,
    clock: VirtualClock,
    latency: LatencyModel,
    pub exchange: Exchange,
    in_flight: VecDeque<InFlight>,
    /// Reports on their way back, with their arrival time.
    reports: VecDeque<(u64, ExecutionReport)>,
    /// What the results get from the order path (latencies), besides the exchange's.
    pub results: Vec<ResultEvent>,
    compute: ComputeTime,
    /// With [`ComputeTime::Measured`]: when the engine was handed the event it works on.
    work_started: Option<std::time::Instant>,
}

impl BacktestVenue {
    pub fn new(
        encoder: OrderEncoder,
        exchange: Exchange,
        clock: VirtualClock,
        latency: LatencyModel,
    ) -> BacktestVenue {
        BacktestVenue {
            // The gateway flushes after every order it sends.
            orders: EncodedQueue::new(encoder, 1, UNSENT_MAX),
            clock,
            latency,
            exchange,
            in_flight: VecDeque::new(),
            reports: VecDeque::new(),
            results: Vec::new(),
            compute: ComputeTime::Off,
            work_started: None,
        }
    }

    /// Charges the engine's compute time to what it sends ([`ComputeTime`]).
    pub fn with_compute_time(mut self, compute: ComputeTime) -> BacktestVenue {
        self.compute = compute;
        self
    }

    /// The engine is handed an event now: what it sends until the next is charged from here.
    pub fn begin_engine_work(&mut self) {
        if self.compute == ComputeTime::Measured {
            // The one reading of the machine's clock in a backtest, asked for by
            // `--compute-time measured` (which says the run is then not repeatable).
            #[allow(clippy::disallowed_methods)]
            let now = std::time::Instant::now();
            self.work_started = Some(now);
        }
    }

    /// How long after the event what the engine sends now leaves, ns.
    fn compute_charge_ns(&self) -> u64 {
        match self.compute {
            ComputeTime::Off => 0,
            ComputeTime::Constant(ns) => ns,
            ComputeTime::Measured => self
                .work_started
                .map_or(0, |t| t.elapsed().as_nanos().min(u64::MAX as u128) as u64),
        }
    }

    /// When the next request reaches the venue.
    pub fn next_arrival_ns(&self) -> Option<u64> {
        self.in_flight.front().map(|f| f.arrives_ns)
    }

    /// When the next report reaches our gateway.
    pub fn next_report_ns(&self) -> Option<u64> {
        self.reports.front().map(|(t, _)| *t)
    }

    /// The venue handles the requests that have reached it by `now_ns`.
    pub fn deliver_requests(&mut self, now_ns: u64) {
        while let Some(f) = self.in_flight.front().copied() {
            if f.arrives_ns > now_ns {
                break;
            }
            self.in_flight.pop_front();
            self.exchange.on_request(&f.order, f.arrives_ns);
            let kind = RequestKind::of(f.order.kind);
            if let Some(kind) = kind {
                self.results.push(ResultEvent::Latency(LatencyEvent {
                    kind,
                    sent_ns: f.sent_ns,
                    answered_ns: f.arrives_ns + f.latency.response_ns,
                }));
            }
            // Its answers travel back with its latency; a fill on arrival with a fill's.
            let fill_back = (kind == Some(RequestKind::New))
                .then(|| self.latency.fill_on_arrival(f.latency.entry_ns, f.latency));
            let ack_back = f.latency.response_ns;
            queue_answers(
                &mut self.reports,
                &mut self.exchange,
                |report| match fill_back {
                    Some(back) if report.exec_type == exec_type::TRADE => back,
                    _ => ack_back,
                },
            );
        }
    }

    /// Moves the exchange's new reports onto the way back: those it made by itself (the
    /// market filled a resting order), each with a way back of its own.
    pub fn collect_answers(&mut self) {
        let latency = &mut self.latency;
        queue_answers(&mut self.reports, &mut self.exchange, |_| {
            latency.unsolicited()
        });
    }
}

/// Moves `exchange`'s new reports onto `reports`, each arriving `back(report)` after the
/// venue made it, and never before the one made earlier (one session: they arrive in order).
fn queue_answers(
    reports: &mut VecDeque<(u64, ExecutionReport)>,
    exchange: &mut Exchange,
    mut back: impl FnMut(&ExecutionReport) -> u64,
) {
    let mut last = reports.back().map_or(0, |(t, _)| *t);
    for answer in exchange.drain_answers() {
        last = (answer.venue_ns + back(&answer.report)).max(last);
        reports.push_back((last, answer.report));
    }
}

impl Venue for BacktestVenue {
    fn send(
        &mut self,
        order: &OrderRequest,
        sending_time_unix_ns: u64,
    ) -> Result<Queued, VenueSendError> {
        Ok(self.orders.push(order, sending_time_unix_ns)?.0)
    }

    fn retract(&mut self, queued: &Queued) -> bool {
        self.orders.retract(queued)
    }

    fn flush(&mut self, _now_ns: u64) {
        let now = self.clock.now_ns() + self.compute_charge_ns();
        let mut last = self.in_flight.back().map_or(0, |f| f.arrives_ns);
        while let Some(order) = self.orders.pop() {
            let latency = self.latency.request(RequestKind::of(order.kind));
            // Requests reach the venue in the order sent (one session).
            last = (now + latency.entry_ns).max(last);
            self.in_flight.push_back(InFlight {
                arrives_ns: last,
                sent_ns: now,
                order,
                latency,
            });
        }
    }

    fn may_have_report(&self) -> bool {
        self.next_report_ns()
            .is_some_and(|arrives| arrives <= self.clock.now_ns())
    }

    fn poll_report(&mut self) -> Option<ExecutionReport> {
        let (arrives, _) = self.reports.front()?;
        if *arrives > self.clock.now_ns() {
            return None;
        }
        self.reports.pop_front().map(|(_, r)| r)
    }
}
