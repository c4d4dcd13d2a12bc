//! The gateway stage: each order encoded by the venue, journaled before its bytes leave
//! (write-ahead), then sent; and the venue's execution reports back, stamped and journaled.
//! Its own file because it is the pipeline's last stage, the one that faces the venue's
//! order entry.

use levibot_shm::codes::{label, reject_reason};
use levibot_shm::counters::{Counter, CountersWriter};
use levibot_shm::records::{ExecutionReport, Record, SentOrder, order_kind};
use levibot_shm::{Appender, ShmError};

use super::{StageClock, counter, rejected_report};
use crate::pipeline::StagedOrder;
use crate::pipeline::venue::Venue;

/// Hands orders to the venue (which encodes them), journals each one before its bytes leave,
/// then lets them leave; takes the venue's execution reports.
pub struct GatewayStage<V: Venue> {
    venue: V,
    appender: Appender,
    clock: StageClock,
    sent: Counter,
    encode_errors: Counter,
    reports: Counter,
    journal_errors: Counter,
}

impl<V: Venue> GatewayStage<V> {
    pub fn new(
        venue: V,
        appender: Appender,
        clock: StageClock,
        counters: &CountersWriter,
    ) -> Result<GatewayStage<V>, ShmError> {
        Ok(GatewayStage {
            venue,
            appender,
            clock,
            sent: counter(counters, label::GATEWAY_ORDERS_SENT)?,
            encode_errors: counter(counters, label::GATEWAY_ENCODE_ERRORS)?,
            reports: counter(counters, label::GATEWAY_REPORTS)?,
            journal_errors: counter(counters, label::GATEWAY_JOURNAL_ERRORS)?,
        })
    }

    pub fn venue(&self) -> &V {
        &self.venue
    }

    pub fn venue_mut(&mut self) -> &mut V {
        &mut self.venue
    }

    /// Encodes (through the venue), journals and sends one order. An order the venue cannot
    /// take comes back as a REJECTED report (for risk and the strategy), counted.
    #[inline]
    pub fn on_order(&mut self, staged: &StagedOrder) -> Result<SentOrder, ExecutionReport> {
        let start = self.clock.now_tsc();
        let queued = match self.venue.send(&staged.order, self.clock.unix_ns(start)) {
            Ok(queued) => queued,
            Err(_) => {
                self.encode_errors.increment();
                return Err(rejected_report(
                    &staged.order,
                    reject_reason::ENCODE,
                    self.clock.now_tsc(),
                ));
            }
        };
        let encoded_tsc = self.clock.now_tsc();
        let sent = SentOrder {
            request: staged.order,
            due_tsc: staged.due_tsc,
            recv_tsc: staged.recv_tsc,
            decoded_tsc: staged.decoded_tsc,
            strategy_start_tsc: staged.strategy_start_tsc,
            risk_start_tsc: staged.risk_start_tsc,
            encode_start_tsc: start,
            encoded_tsc,
            msg_seq_num: queued.msg_seq_num,
            encoded_len: queued.encoded_len,
            reserved: 0,
        };
        // Write-ahead: journaled before the bytes leave, so a crash never forgets a sent order.
        // If the journal cannot take it, the order is taken back and refused; only a venue
        // that cannot take it back lets it leave (counted either way). Cancels and status
        // requests leave anyway: on a full journal the daemon halts and cancels everything,
        // and an order left working that nobody watches is worse than a cancel recovery does
        // not know of (reconciliation cancels again, harmlessly).
        if self
            .appender
            .append(SentOrder::RECORD_TYPE, sent.to_bytes())
            .is_err()
        {
            self.journal_errors.increment();
            let reduces_risk = matches!(
                staged.order.kind,
                order_kind::CANCEL | order_kind::MASS_CANCEL | order_kind::MASS_STATUS
            );
            if !reduces_risk && self.venue.retract(&queued) {
                return Err(rejected_report(
                    &staged.order,
                    reject_reason::JOURNAL,
                    self.clock.now_tsc(),
                ));
            }
        }
        self.venue.flush(self.clock.unix_ns(encoded_tsc));
        self.sent.increment();
        Ok(sent)
    }

    /// Lets the venue do its I/O (send what is queued, read what arrived, timers): every duty
    /// cycle, orders or not.
    #[inline]
    pub fn poll_venue(&mut self) {
        let now = self.clock.now_tsc();
        self.venue.flush(self.clock.unix_ns(now));
    }

    /// The venue's next execution report, stamped and journaled.
    #[inline]
    pub fn poll_report(&mut self) -> Option<ExecutionReport> {
        let mut report = self.venue.poll_report()?;
        if report.recv_tsc == 0 {
            report.recv_tsc = self.clock.now_tsc();
        }
        self.reports.increment();
        if self
            .appender
            .append(ExecutionReport::RECORD_TYPE, report.to_bytes())
            .is_err()
        {
            self.journal_errors.increment();
        }
        Some(report)
    }
}
