//! Changes to a running daemon's config: what a reload may change
//! ([`DaemonConfig::reloadable_change`]), and `levictl set`'s one risk limit
//! ([`DaemonConfig::with_limit_set`]).

use std::fmt;

use levibot_engine::pipeline::Layout;

use super::reader::Problems;
use super::{ConfigErrors, DaemonConfig, edit, parse};

impl DaemonConfig {
    /// SIGHUP / `levictl reload`: `new` may differ from `self` only in risk limits and strategy
    /// parameters. Anything else that changed is a problem naming its key ("layout.kind: changed
    /// ...; needs a restart"), and nothing applies.
    pub fn reloadable_change(&self, new: &DaemonConfig) -> Result<(), ConfigErrors> {
        let mut p = Problems::default();
        fn same(p: &mut Problems, key: &str, was: &dyn fmt::Debug, now: &dyn fmt::Debug) {
            p.push(
                key,
                format!("changed from {was:?} to {now:?}; needs a restart"),
            );
        }
        macro_rules! same {
            ($key:expr, $was:expr, $now:expr) => {
                if $was != $now {
                    same(&mut p, $key, &$was, &$now);
                }
            };
        }
        let (a, b) = (&self.daemon, &new.daemon);
        same!("daemon.control_socket", a.control_socket, b.control_socket);
        same!(
            "daemon.control_socket_mode",
            a.control_socket_mode,
            b.control_socket_mode
        );
        same!("daemon.log_level", a.log_level, b.log_level);
        same!("daemon.log_format", a.log_format, b.log_format);
        same!("daemon.lock_memory", a.lock_memory, b.lock_memory);
        same!(
            "daemon.cancel_deadline_ms",
            a.cancel_deadline,
            b.cancel_deadline
        );
        same!("daemon.start_timeout_ms", a.start_timeout, b.start_timeout);
        same!(
            "daemon.heartbeat_timeout_ms",
            a.heartbeat_timeout,
            b.heartbeat_timeout
        );
        same!("daemon.reconcile", a.reconcile, b.reconcile);
        same!("daemon.empty_journal", a.empty_journal, b.empty_journal);
        same!(
            "daemon.control_ops_group",
            (&a.control_ops_group, a.control_ops_gid),
            (&b.control_ops_group, b.control_ops_gid)
        );

        same!("features", self.features, new.features);

        let (a, b) = (&self.journal, &new.journal);
        same!("journal.dir", a.dir, b.dir);
        same!(
            "journal.segment_size_mib",
            a.segment_size >> 20,
            b.segment_size >> 20
        );
        same!("journal.prefault", a.prefault, b.prefault);
        let (ra, rb) = (&a.retention, &b.retention);
        same!("journal.retention.compress", ra.compress, rb.compress);
        same!(
            "journal.retention.raw_segments_kept",
            ra.raw_segments_kept,
            rb.raw_segments_kept
        );
        same!("journal.retention.max_age_hours", ra.max_age, rb.max_age);
        same!(
            "journal.retention.max_total_mib",
            ra.max_total_bytes,
            rb.max_total_bytes
        );

        let symbols = |c: &DaemonConfig| c.instruments.iter().map(|i| i.symbol).collect::<Vec<_>>();
        let (sa, sb) = (symbols(self), symbols(new));
        if sa != sb {
            same!("instruments", sa, sb);
        } else {
            for (ia, ib) in self.instruments.iter().zip(new.instruments.iter()) {
                if ia != ib {
                    p.push(
                        "venue.exchange_info",
                        format!("the filters of {} changed; needs a restart", ia.symbol),
                    );
                }
            }
        }

        let (a, b) = (&self.market_data, &new.market_data);
        same!("venue.market_data.url", a.url, b.url);
        same!("venue.market_data.rest_url", a.rest_url, b.rest_url);
        same!("venue.market_data.streams", a.streams, b.streams);
        same!(
            "venue.market_data.ping_interval_ms",
            a.ping_interval,
            b.ping_interval
        );
        same!(
            "venue.market_data.pong_timeout_ms",
            a.pong_timeout,
            b.pong_timeout
        );
        same!(
            "venue.market_data.reconnect_after_s",
            a.reconnect_after,
            b.reconnect_after
        );
        same!("venue.market_data.ca_file", a.ca_file, b.ca_file);

        let (a, b) = (&self.order_entry, &new.order_entry);
        same!("venue.order_entry.url", a.url, b.url);
        same!("venue.order_entry.ca_file", a.ca_file, b.ca_file);
        same!("venue.credentials", a.credentials, b.credentials);
        let (sa, sb) = (&a.session, &b.session);
        same!(
            "venue.order_entry.sender_comp_id",
            sa.sender_comp_id,
            sb.sender_comp_id
        );
        same!(
            "venue.order_entry.target_comp_id",
            sa.target_comp_id,
            sb.target_comp_id
        );
        same!(
            "venue.order_entry.heart_bt_int_s",
            sa.heart_bt_int_s,
            sb.heart_bt_int_s
        );
        same!(
            "venue.order_entry.binance_logon",
            sa.binance_logon.is_some(),
            sb.binance_logon.is_some()
        );
        if sa.binance_logon.is_some()
            && sb.binance_logon.is_some()
            && sa.binance_logon != sb.binance_logon
        {
            // Secrets: named, never shown.
            p.push(
                "venue.credentials",
                "the API key or private key changed; needs a restart",
            );
        }

        same!("strategy.kind", self.strategy.kind(), new.strategy.kind());
        same!("strategy.id", self.strategy_id, new.strategy_id);

        let (la, lb) = (self.layout.runners(), new.layout.runners());
        let roles = |l: &[(&'static str, levibot_engine::runner::RunnerConfig)]| {
            l.iter().map(|(role, _)| *role).collect::<Vec<_>>()
        };
        if self.layout.is_fused() != new.layout.is_fused() || roles(&la) != roles(&lb) {
            let kind = |l: &Layout| if l.is_fused() { "fused" } else { "spread" };
            same(
                &mut p,
                "layout.kind",
                &kind(&self.layout),
                &kind(&new.layout),
            );
        } else {
            for ((role, ra), (_, rb)) in la.iter().zip(&lb) {
                same!(&format!("layout.{role}.core"), ra.core_id, rb.core_id);
                same!(&format!("layout.{role}.idle"), ra.idle, rb.idle);
            }
        }
        if p.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors {
                path: new.path.clone(),
                problems: p.0,
            })
        }
    }

    /// `levictl set`: this config with one risk limit set, validated whole. Keys are the file's:
    /// `risk.loss_max`, `risk.order_rate.count_max`, `instruments.NKNUSDT.collar_bps` (or
    /// `instruments[NKNUSDT].collar_bps`); only `[risk]` keys and the instruments' risk keys
    /// (`collar_bps`, `order_qty_max`, `order_notional_max`, `position_max`,
    /// `open_orders_max`) may be set. The result's `text` is the edited file, comments kept.
    pub fn with_limit_set(&self, key: &str, value: &str) -> Result<DaemonConfig, ConfigErrors> {
        let text = edit::set_limit(&self.text, key, value)
            .map_err(|(key, problem)| ConfigErrors::one(&self.path, &key, problem))?;
        let new = parse(&text, &self.path)?;
        self.reloadable_change(&new)?;
        Ok(new)
    }
}
