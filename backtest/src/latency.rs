//! Order latency: constant, or sampled (with the run's seed) from the round trips a live
//! LeviBot journal measured, separately for new orders, cancels and replaces, and for the
//! first answer that is an acknowledgement vs one that is a fill.
//!
//! A round trip is measured from the gateway's `SentOrder` (its bytes ready, `encoded_tsc`) to
//! the receive stamp of the venue's first report about the request: for a new order, the
//! first report under its id (NEW, or TRADE when it filled at once); for a cancel, the
//! CANCELED report of the order it names or its REJECTED; for a replace, the REPLACED or
//! REJECTED report under its new id. The journal does not say how a round trip splits
//! between the way there and the way back: the model takes half each way.

use std::collections::HashMap;
use std::path::Path;

use levibot_shm::records::{ExecutionReport, Record, SentOrder, exec_type};
use levibot_shm::{StartAt, Tailer};

use crate::results::RequestKind;
use crate::venue::OrderLatency;

/// Round trips kept per kind (a uniform sample of a longer journal's, by reservoir).
pub const ROUND_TRIPS_KEPT_MAX: usize = 100_000;
/// Requests waiting for their first answer while a journal is read (older ones are dropped).
const UNANSWERED_MAX: usize = 1 << 16;

/// A request waiting for its answer: the client order id the answer comes under, and whether
/// the request is a cancel.
type WaitKey = (u64, bool);

/// Round trips measured in a journal, ns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoundTrips {
    pub new_ack: Vec<u64>,
    pub new_fill: Vec<u64>,
    pub cancel: Vec<u64>,
    pub replace: Vec<u64>,
    /// The first `ROUND_TRIPS_KEPT_MAX` of each kind in the order they were answered (new
    /// orders' acks and fills together): what `LatencyModel::Replayed` hands out.
    pub in_order: [Vec<u64>; 3],
}

impl RoundTrips {
    /// Reads the round trips of every request in the journal in `dir`.
    pub fn from_journal(dir: &Path) -> Result<RoundTrips, levibot_shm::ShmError> {
        let mut tailer = Tailer::open(dir, StartAt::Beginning)?;
        let mut trips = RoundTrips::default();
        let mut seen = [0u64; 4];
        // Sampling a long journal fairly needs randomness of its own, fixed: the same journal
        // always gives the same sample.
        let mut rng = fastrand::Rng::with_seed(0x01e7_1b07);
        // Keyed by the client order id whose first report answers the request, and whether
        // the request is a cancel (a cancel's answer comes under the order it cancels, which
        // may itself still wait for its own).
        // A cancel waits under two keys; each names the other.
        let mut waiting: HashMap<WaitKey, (RequestKind, u64, Option<WaitKey>)> = HashMap::new();
        loop {
            // Every segment of one writer run has its calibration; a request and its answer
            // are in one run.
            let calibration = tailer.calibration();
            let polled = tailer.poll(1024, |frame| {
                if frame.record_type == SentOrder::RECORD_TYPE {
                    let Some(sent) = SentOrder::from_bytes(frame.payload) else {
                        return;
                    };
                    let r = &sent.request;
                    let Some(kind) = RequestKind::of(r.kind) else {
                        return;
                    };
                    // A cancel is answered under the order it cancels.
                    let answered_under = match kind {
                        RequestKind::Cancel => r.orig_client_order_id,
                        RequestKind::New | RequestKind::Replace => r.client_order_id,
                    };
                    if waiting.len() >= UNANSWERED_MAX {
                        waiting.clear();
                    }
                    let cancel = kind == RequestKind::Cancel;
                    let (main, own) = ((answered_under, cancel), (r.client_order_id, true));
                    waiting.insert(main, (kind, sent.encoded_tsc, cancel.then_some(own)));
                    if cancel {
                        // A refused cancel answers under its own id.
                        waiting.insert(own, (kind, sent.encoded_tsc, Some(main)));
                    }
                } else if frame.record_type == ExecutionReport::RECORD_TYPE {
                    let Some(report) = ExecutionReport::from_bytes(frame.payload) else {
                        return;
                    };
                    let id = report.client_order_id;
                    let answered = match report.exec_type {
                        exec_type::CANCELED => waiting.remove(&(id, true)),
                        exec_type::REJECTED => waiting
                            .remove(&(id, true))
                            .or_else(|| waiting.remove(&(id, false))),
                        _ => waiting.remove(&(id, false)),
                    };
                    let Some((kind, sent_tsc, other)) = answered else {
                        return;
                    };
                    if let Some(other) = other {
                        waiting.remove(&other);
                    }
                    let ns = calibration.ticks_to_ns(report.recv_tsc.saturating_sub(sent_tsc));
                    let (slot, list) = match (kind, report.exec_type) {
                        (RequestKind::New, exec_type::TRADE) => (0, &mut trips.new_fill),
                        (RequestKind::New, _) => (1, &mut trips.new_ack),
                        (RequestKind::Cancel, _) => (2, &mut trips.cancel),
                        (RequestKind::Replace, _) => (3, &mut trips.replace),
                    };
                    keep(list, &mut seen[slot], ns as u64, &mut rng);
                    let in_order = &mut trips.in_order[kind as usize];
                    if in_order.len() < ROUND_TRIPS_KEPT_MAX {
                        in_order.push(ns as u64);
                    }
                }
            })?;
            if polled.frames == 0 && polled.writer_restart.is_none() {
                break;
            }
        }
        Ok(trips)
    }

    pub fn is_empty(&self) -> bool {
        self.new_ack.is_empty() && self.cancel.is_empty() && self.replace.is_empty()
    }
}

/// Reservoir sampling: every round trip seen has the same chance to be kept.
fn keep(list: &mut Vec<u64>, seen: &mut u64, value: u64, rng: &mut fastrand::Rng) {
    *seen += 1;
    if list.len() < ROUND_TRIPS_KEPT_MAX {
        list.push(value);
    } else {
        let slot = rng.u64(0..*seen);
        if let Some(kept) = list.get_mut(slot as usize) {
            *kept = value;
        }
    }
}

/// How long requests and reports travel.
#[derive(Clone, Debug)]
pub enum LatencyModel {
    Constant(OrderLatency),
    /// The journal's round trips in the order its requests were sent: the n-th new order (or
    /// cancel, or replace) of the run takes the n-th new order's round trip, half each way; past
    /// the journal's, drawn as `Sampled`. Replaying a session, this gives each request the
    /// latency it had live for as long as the decisions are the same.
    Replayed {
        trips: std::sync::Arc<RoundTrips>,
        fallback: OrderLatency,
        rng: fastrand::Rng,
        next: [usize; 3],
    },
    /// Drawn from a journal's round trips (half each way), with a seeded generator. A kind
    /// the journal has none of falls back to `fallback`.
    Sampled {
        trips: std::sync::Arc<RoundTrips>,
        fallback: OrderLatency,
        rng: fastrand::Rng,
    },
}

impl LatencyModel {
    /// A request of `kind` leaves: how long it takes to reach the venue, and how long its
    /// acknowledgement (or refusal) takes back.
    pub fn request(&mut self, kind: Option<RequestKind>) -> OrderLatency {
        match self {
            LatencyModel::Constant(l) => *l,
            LatencyModel::Replayed {
                trips,
                fallback,
                rng,
                next,
            } => {
                let k = kind.unwrap_or(RequestKind::New) as usize;
                let replayed = trips.in_order[k].get(next[k]).copied();
                next[k] += 1;
                let list = match kind {
                    Some(RequestKind::New) | None => &trips.new_ack,
                    Some(RequestKind::Cancel) => &trips.cancel,
                    Some(RequestKind::Replace) => &trips.replace,
                };
                split(replayed.or_else(|| draw(list, rng)), *fallback)
            }
            LatencyModel::Sampled {
                trips,
                fallback,
                rng,
            } => {
                let list = match kind {
                    Some(RequestKind::New) | None => &trips.new_ack,
                    Some(RequestKind::Cancel) => &trips.cancel,
                    Some(RequestKind::Replace) => &trips.replace,
                };
                split(draw(list, rng), *fallback)
            }
        }
    }

    /// A new order filled on arrival: how long its fill report takes back, after `entry_ns`
    /// on the way there.
    pub fn fill_on_arrival(&mut self, entry_ns: u64, ack: OrderLatency) -> u64 {
        match self {
            LatencyModel::Constant(l) => l.response_ns,
            // The replayed round trip was this order's, fill or not.
            LatencyModel::Replayed { .. } => ack.response_ns,
            LatencyModel::Sampled { trips, rng, .. } => match draw(&trips.new_fill, rng) {
                Some(rt) => rt.saturating_sub(entry_ns),
                None => ack.response_ns,
            },
        }
    }

    /// A report the venue sends by itself (a resting order filled by the market): the way
    /// back of a new order's round trip.
    pub fn unsolicited(&mut self) -> u64 {
        match self {
            LatencyModel::Replayed {
                trips,
                fallback,
                rng,
                ..
            } => split(draw(&trips.new_ack, rng), *fallback).response_ns,
            _ => self.request(Some(RequestKind::New)).response_ns,
        }
    }
}

fn draw(list: &[u64], rng: &mut fastrand::Rng) -> Option<u64> {
    (!list.is_empty()).then(|| list[rng.usize(0..list.len())])
}

fn split(round_trip: Option<u64>, fallback: OrderLatency) -> OrderLatency {
    match round_trip {
        Some(rt) => OrderLatency {
            entry_ns: rt / 2,
            response_ns: rt - rt / 2,
        },
        None => fallback,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::VirtualClock;
    use levibot_shm::records::{OrderRequest, SentOrder, order_kind};
    use levibot_shm::{Journal, JournalConfig};

    /// A journal whose requests were answered after known delays (virtual clock: one tick a
    /// ns): new 1 acked after 300 µs, new 2 filled at once after 500 µs, a cancel of 1 after
    /// 200 µs, a replace after 700 µs; and new 5, never answered.
    fn journal_with_round_trips(dir: &Path) {
        let clock = VirtualClock::starting_at(1_700_000_000_000_000_000);
        let journal = Journal::open_with_clock(
            &JournalConfig {
                segment_size: 1 << 20,
                prefault: false,
                ..JournalConfig::new(dir)
            },
            clock.journal_clock(7),
        )
        .unwrap();
        let mut gateway = journal.appender(4).unwrap();
        let sent = |kind, id, orig, at: u64| SentOrder {
            request: OrderRequest {
                kind,
                client_order_id: id,
                orig_client_order_id: orig,
                ..OrderRequest::default()
            },
            encoded_tsc: at,
            ..SentOrder::default()
        };
        let report = |id, exec, at| ExecutionReport {
            client_order_id: id,
            exec_type: exec,
            recv_tsc: at,
            ..ExecutionReport::default()
        };
        let mut put_sent = |s: SentOrder| {
            gateway
                .append(SentOrder::RECORD_TYPE, s.to_bytes())
                .unwrap();
        };
        put_sent(sent(order_kind::NEW, 1, 0, 1_000));
        put_sent(sent(order_kind::NEW, 2, 0, 2_000));
        put_sent(sent(order_kind::NEW, 5, 0, 2_500));
        put_sent(sent(order_kind::CANCEL, 3, 1, 10_000));
        put_sent(sent(order_kind::REPLACE, 4, 2, 20_000));
        let mut reports = journal.appender(5).unwrap();
        for r in [
            report(1, exec_type::NEW, 301_000),
            report(2, exec_type::TRADE, 502_000),
            report(1, exec_type::CANCELED, 210_000),
            report(4, exec_type::REPLACED, 720_000),
            // Not a first answer: counted once only.
            report(1, exec_type::CANCELED, 999_000),
        ] {
            reports
                .append(ExecutionReport::RECORD_TYPE, r.to_bytes())
                .unwrap();
        }
    }

    #[test]
    fn round_trips_are_read_by_kind_and_answer() {
        let dir = tempfile::tempdir().unwrap();
        journal_with_round_trips(dir.path());
        let trips = RoundTrips::from_journal(dir.path()).unwrap();
        assert_eq!(trips.new_ack, vec![300_000]);
        assert_eq!(trips.new_fill, vec![500_000]);
        assert_eq!(trips.cancel, vec![200_000]);
        assert_eq!(trips.replace, vec![700_000]);
        assert_eq!(trips.in_order[0], vec![300_000, 500_000]);
    }

    #[test]
    fn replayed_latency_hands_out_the_journals_round_trips_in_order_then_draws() {
        let dir = tempfile::tempdir().unwrap();
        journal_with_round_trips(dir.path());
        let trips = std::sync::Arc::new(RoundTrips::from_journal(dir.path()).unwrap());
        let fallback = OrderLatency {
            entry_ns: 1,
            response_ns: 1,
        };
        let mut model = LatencyModel::Replayed {
            trips: trips.clone(),
            fallback,
            rng: fastrand::Rng::with_seed(1),
            next: [0; 3],
        };
        let half = |rt: u64| OrderLatency {
            entry_ns: rt / 2,
            response_ns: rt - rt / 2,
        };
        assert_eq!(model.request(Some(RequestKind::New)), half(300_000));
        assert_eq!(model.request(Some(RequestKind::Cancel)), half(200_000));
        assert_eq!(model.request(Some(RequestKind::New)), half(500_000));
        // Past the journal's: drawn from its acks.
        assert_eq!(model.request(Some(RequestKind::New)), half(300_000));
        // A kind the journal has none of would take the fallback.
        let mut sampled = LatencyModel::Sampled {
            trips: std::sync::Arc::new(RoundTrips::default()),
            fallback,
            rng: fastrand::Rng::with_seed(1),
        };
        assert_eq!(sampled.request(Some(RequestKind::Replace)), fallback);
        // Sampled draws come from the kind's own round trips; a fill on arrival from fills.
        let mut sampled = LatencyModel::Sampled {
            trips,
            fallback,
            rng: fastrand::Rng::with_seed(3),
        };
        for _ in 0..20 {
            assert_eq!(sampled.request(Some(RequestKind::Replace)), half(700_000));
        }
        assert_eq!(sampled.fill_on_arrival(100_000, half(300_000)), 400_000);
    }
}
