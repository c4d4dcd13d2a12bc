//! The simulated venue as the demo and the system tests set it up: three symbols (an extract
//! of Binance's exchangeInfo) with synthetic traders, market data and FIX on loopback ports,
//! and a `levibotd` config that trades the reference maker against it. `levibot-demo` runs it;
//! the daemon's, levictl's and the soak's tests start the same venue and config.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use levibot_gateway::instrument::{InstrumentTable, parse_exchange_info};

use crate::md_server::{FeedConfig, MdConfig};
use crate::sim::{SimVenue, SimVenueConfig};

/// The demo's instruments (an extract of Binance's exchangeInfo, from the corpus).
const EXCHANGE_INFO: &str = include_str!("../data/demo-exchangeInfo.json");
/// Symbols traded and where their prices start, in ticks (0.35, 57,000 and 3,500 USDT).
const SYMBOLS: [(&str, i64); 3] = [
    ("NKNUSDT", 3_500),
    ("BTCUSDT", 5_700_000),
    ("ETHUSDT", 350_000),
];
/// The demo's venue: its symbols at their prices, synthetic traders at `rate` actions a
/// second, market data and FIX on free loopback ports.
pub fn venue_config(seed: u64, rate: u32) -> Result<SimVenueConfig> {
    let all = parse_exchange_info(EXCHANGE_INFO.as_bytes()).context("demo exchangeInfo")?;
    let symbols: Vec<&str> = SYMBOLS.iter().map(|(s, _)| *s).collect();
    let instruments = InstrumentTable::select(&all, &symbols).context("demo instruments")?;
    Ok(SimVenueConfig {
        instruments,
        fair_ticks: SYMBOLS.iter().map(|(_, t)| *t).collect(),
        seed,
        md_addr: "127.0.0.1:0".parse()?,
        // REST on a port of its own, as Binance serves it from another host than its streams.
        rest_addr: Some("127.0.0.1:0".parse()?),
        md: MdConfig::default(),
        fix_addr: Some("127.0.0.1:0".parse()?),
        fix_comp_id: "VENUE".into(),
        feed: FeedConfig {
            rate,
            depth_interval: Duration::from_millis(100),
        },
    })
}

/// Starts the venue with books already filled by its traders.
pub fn start_venue(config: SimVenueConfig) -> Result<SimVenue> {
    let venue = SimVenue::start(config).context("starting the simulated venue")?;
    venue.core.run_flow(2_000);
    venue.core.flush_depth();
    Ok(venue)
}

/// Writes the demo's exchangeInfo and config (journal in `journal`) into `dir`; returns the
/// config's path.
pub fn write_config(dir: &Path, journal: &Path, venue: &SimVenue) -> Result<PathBuf> {
    let exchange_info = dir.join("demo-exchangeInfo.json");
    std::fs::write(&exchange_info, EXCHANGE_INFO)
        .with_context(|| format!("writing {}", exchange_info.display()))?;
    let config_path = dir.join("levibot-demo.toml");
    let text = demo_config(
        journal,
        &exchange_info,
        venue.md_addr(),
        venue.rest_addr(),
        venue.fix_addr().context("the venue has no FIX endpoint")?,
    );
    std::fs::write(&config_path, &text)
        .with_context(|| format!("writing {}", config_path.display()))?;
    Ok(config_path)
}

/// The demo's config: the reference maker on each symbol, fused on one unpinned thread that
/// backs off when idle (a demo shares the machine with the venue and a terminal).
pub fn demo_config(
    journal: &Path,
    exchange_info: &Path,
    md_addr: std::net::SocketAddr,
    rest_addr: std::net::SocketAddr,
    fix_addr: std::net::SocketAddr,
) -> String {
    let sizes = JournalSizes::for_dir(journal);
    let mut text = format!(
        r#"# Written by `levibot-demo` (levibot_sim::demo): the maker on three symbols against venue-sim.
[daemon]
log_level = "warn"
lock_memory = false
# A demo's journal is new every run: trade after reconciling (the service halts instead).
empty_journal = "trade"
cancel_deadline_ms = 5000
start_timeout_ms = 30000

[journal]
dir = "{journal}"
segment_size_mib = {segment_mib}
prefault = false
[journal.retention]
max_total_mib = {total_mib}
compress = {compress}

[venue]
exchange_info = "{exchange_info}"

[venue.market_data]
url = "ws://{md_addr}"
rest_url = "http://{rest_addr}"
streams = ["depth@100ms", "bookTicker", "aggTrade"]
ping_interval_ms = 5000
pong_timeout_ms = 5000

[venue.order_entry]
url = "tcp://{fix_addr}"
sender_comp_id = "LEVIBOT"
target_comp_id = "VENUE"
heart_bt_int_s = 30

[strategy]
kind = "maker"
id = 1

[risk]
open_orders_max = 64
gross_exposure_max = "100000"
net_exposure_max = "100000"
loss_max = "1000"
loss_state = "reduce_only"
order_rate = {{ count_max = 1000, window_ms = 10 }}
message_rate = {{ count_max = 1000, window_ms = 10 }}
fill_rate = {{ count_max = 100, window_ms = 1000 }}
duplicate_window_us = 50

[layout]
kind = "fused"
pipeline = {{ idle = "backoff" }}
"#,
        journal = journal.display(),
        exchange_info = exchange_info.display(),
        segment_mib = sizes.segment_mib,
        total_mib = sizes.total_mib,
        compress = sizes.compress,
    );
    for (symbol, qty) in [("NKNUSDT", "1000"), ("BTCUSDT", "0.01"), ("ETHUSDT", "0.1")] {
        text.push_str(&format!(
            r#"
[[instruments]]
symbol = "{symbol}"
collar_bps = 500
order_qty_max = "{qty}"
order_notional_max = "10000"
position_max = "{position}"
open_orders_max = 16
[instruments.maker]
half_spread_ticks = 2
quote_lots = 100
skew_ticks_per_quote = 1.0
requote_threshold_ticks = 0
inventory_max_lots = 1000
"#,
            position = double_decimal(qty),
        ));
    }
    text
}

/// The demo's journal sizes, fitted to the filesystem it is on (a demo on a small tmpfs still
/// runs, and meets a full filesystem as the daemon must: halted, cancelled, stopped).
struct JournalSizes {
    segment_mib: u64,
    total_mib: u64,
    /// Gzip finished segments: not on a small filesystem, where the compressed copy needs room
    /// the pruning has not freed yet.
    compress: bool,
}

impl JournalSizes {
    /// Segments of 64 MiB and 4 GiB in all, or, on a smaller filesystem, segments of an eighth
    /// of it (a power of two, at least 1 MiB) and half of it in all (at least two segments).
    fn for_dir(dir: &Path) -> JournalSizes {
        let fs_mib = dir
            .ancestors()
            .find_map(|d| rustix::fs::statvfs(d).ok())
            .map_or(u64::MAX, |s| s.f_blocks.saturating_mul(s.f_frsize) >> 20);
        let mut segment_mib = 64;
        while segment_mib > 1 && segment_mib * 8 > fs_mib {
            segment_mib /= 2;
        }
        JournalSizes {
            segment_mib,
            total_mib: (fs_mib / 2).clamp(2 * segment_mib, 4096),
            compress: fs_mib >= 64,
        }
    }
}

/// `qty` x 2, for decimal strings like "0.01".
fn double_decimal(qty: &str) -> String {
    let d: rust_decimal::Decimal = qty.parse().unwrap_or_default();
    (d * rust_decimal::Decimal::TWO).normalize().to_string()
}
