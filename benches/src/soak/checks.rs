//! The soak's checks, run while the system is quiet: no unknown order, positions equal the
//! venue's, the exporter's totals equal the journal's, memory and fds flat.

use super::*;
use levibot_shm::codes::label;

impl Soak<'_> {
    /// Every working order of ours at the venue is one the daemon journaled (write-ahead: the
    /// journal has it before the venue does, so the venue is read first).
    fn check_known_orders(&mut self) -> Result<usize> {
        let working = self.venue_working();
        let mut view = lock(self.view);
        view.catch_up(&self.journal)?;
        let unknown: Vec<u64> = working
            .iter()
            .copied()
            .filter(|id| !view.known_ids.contains(id))
            .collect();
        if !unknown.is_empty() {
            return Err(failed(
                "unknown_orders",
                format!("orders working at the venue the daemon never sent: {unknown:?}"),
            ));
        }
        Ok(working.len())
    }

    /// Makes the system quiet (faults off, kill, every cancel confirmed) and checks it.
    pub(super) fn quiet_check(&mut self, resume_after: bool) -> Result<()> {
        let at_s = self.elapsed_s();
        progress(&format!("check {} at {at_s:.0} s", self.checks.len() + 1));
        self.faults.pause.store(true, Ordering::Release);
        self.wait_until("faults_off", "the fault thread to pause", WAIT, |s| {
            Ok(s.faults.paused.load(Ordering::Acquire) || s.faults.stop.load(Ordering::Acquire))
        })?;
        clear_faults(self.venue);
        self.wait_until("sessions_up", "both venue sessions connected", WAIT, |s| {
            let c = s.counters();
            Ok(
                c.get(label::MARKET_DATA_UP) == Some(&1)
                    && c.get(label::ORDER_ENTRY_UP) == Some(&1),
            )
        })?;
        // A self-halt found now is resumed first, so the kill below is the operator's.
        self.handle_self_halt()?;
        std::thread::sleep(Duration::from_millis(300));
        let working_before_kill = self.check_known_orders()?;

        // Quiet: halted, every cancel confirmed; neither side has an order open.
        self.kill()?;
        self.wait_until(
            "unknown_orders",
            "no order open at the venue nor in the daemon after the kill",
            WAIT,
            |s| {
                let open = s.counter(label::RISK_OPEN_ORDERS);
                Ok(open == 0 && s.venue_working().is_empty())
            },
        )?;
        if self.counter(label::RISK_TRADING_STATE) != 2 {
            return Err(failed("kill", "the daemon is not halted after the kill"));
        }

        // Positions: the daemon's equal the venue's (reports may still be on their way).
        let symbols = self.symbols.clone();
        let positions = |s: &mut Self| -> Vec<(String, i64, i64)> {
            let c = s.counters();
            symbols
                .iter()
                .enumerate()
                .map(|(id, symbol)| {
                    let venue = s
                        .venue
                        .core
                        .with_engine(|e| e.position_of(FIRST_OWNER, id as u32));
                    let ours = c
                        .get(&label::risk_position_units(symbol))
                        .copied()
                        .unwrap_or(0);
                    (symbol.clone(), ours, venue)
                })
                .collect()
        };
        let until = Instant::now() + Duration::from_secs(20);
        let positions = loop {
            let p = positions(self);
            if p.iter().all(|(_, ours, venue)| ours == venue) {
                break p;
            }
            if Instant::now() >= until {
                return Err(failed(
                    "positions",
                    format!("(symbol, daemon, venue): {p:?}"),
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        };

        // The exporter's counts equal the journal's (both follow the same journal).
        let until = Instant::now() + WAIT;
        let (orders_sent, fills) = loop {
            let page = scrape(self.exporter_addr);
            let sent_counter = self.counter(label::GATEWAY_ORDERS_SENT);
            let fills_counter = self.counter(label::ORDER_ENTRY_FILLS);
            let mut view = lock(self.view);
            view.catch_up(&self.journal)?;
            let ours = [
                ("levibot_orders_sent_total", view.sent),
                ("levibot_tick_to_trade_seconds_count", view.sent),
                ("levibot_orders_acked_total", view.acked),
                ("levibot_orders_filled_total", view.filled),
                ("levibot_orders_cancelled_total", view.cancelled),
                ("levibot_orders_rejected_total", view.rejected),
            ];
            let mut differ = Vec::new();
            match &page {
                Ok(page) => {
                    for (name, journal) in ours {
                        let exported = metric_sum(page, name).unwrap_or(0.0);
                        if exported != journal as f64 {
                            differ.push(format!("{name} {exported} != journal {journal}"));
                        }
                    }
                }
                Err(e) => differ.push(format!("scrape: {e:#}")),
            }
            if sent_counter != view.sent as i64 {
                differ.push(format!(
                    "counter gateway.orders_sent {sent_counter} != journal {}",
                    view.sent
                ));
            }
            if fills_counter != view.filled as i64 {
                differ.push(format!(
                    "counter venue.order_entry.fills {fills_counter} != journal {}",
                    view.filled
                ));
            }
            if differ.is_empty() {
                break (view.sent, view.filled);
            }
            drop(view);
            if Instant::now() >= until {
                return Err(failed("exporter", differ.join("; ")));
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        if lock(self.view).missing_segments > 0 {
            return Err(failed(
                "exporter",
                "journal segments were pruned before the soak read them",
            ));
        }

        // Memory and descriptors, against the first check's.
        let proc = ProcSample::read(self.daemon.id())?;
        if proc.vm_rss_kib > self.rss_max.vm_rss_kib {
            self.rss_max = proc;
        }
        self.fds_max = self.fds_max.max(proc.fds);
        match self.baseline {
            None => self.baseline = Some(proc),
            Some(base) => {
                let bound =
                    (base.private_kib() as f64 * (1.0 + RSS_GROWTH_MAX)) as u64 + RSS_SLACK_KIB;
                if proc.private_kib() > bound {
                    return Err(failed(
                        "memory",
                        format!(
                            "levibotd's resident memory (anon + file) {} KiB > bound {bound} KiB \
                             (warm-up {} KiB)",
                            proc.private_kib(),
                            base.private_kib()
                        ),
                    ));
                }
                if (proc.fds - base.fds).abs() > FDS_SLACK {
                    return Err(failed(
                        "fds",
                        format!(
                            "levibotd has {} fds open, {} at warm-up",
                            proc.fds, base.fds
                        ),
                    ));
                }
            }
        }
        let exporter = self.exporter_pid.and_then(|pid| ProcSample::read(pid).ok());
        self.checks.push(Check {
            at_s,
            proc,
            exporter,
            working_before_kill,
            orders_sent,
            fills,
            positions: positions.iter().map(|(s, p, _)| (s.clone(), *p)).collect(),
        });
        progress(&format!(
            "check {} passed: rss {} KiB (anon {} KiB), {} fds, {} orders sent, {} fills",
            self.checks.len(),
            proc.vm_rss_kib,
            proc.rss_anon_kib,
            proc.fds,
            orders_sent,
            fills
        ));
        if resume_after {
            self.resume()?;
            self.faults.pause.store(false, Ordering::Release);
        }
        Ok(())
    }
}
