//! `levibot-exporter` beside a trading `levibotd` (the demo's venue and config): every metric of
//! the contract is served and moves while it trades, the histogram counts equal the journal's
//! orders, `promtool check metrics` is clean on the live page, and a real Prometheus (Debian's
//! `prometheus`) scrapes it and answers a query for one of its series.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::harness::*;

/// Metric families a trading daemon makes the exporter serve (docs/metrics.md).
const FAMILIES: [&str; 32] = [
    "levibot_build_info",
    "levibot_daemon_up",
    "levibot_daemon_ready",
    "levibot_daemon_heartbeat_age_seconds",
    "levibot_trading_state",
    "levibot_kill_switch_engaged",
    "levibot_venue_connected",
    "levibot_venue_reconnects_total",
    "levibot_feed_messages_total",
    "levibot_feed_bytes_total",
    "levibot_feed_decode_errors_total",
    "levibot_feed_sequence_gaps_total",
    "levibot_book_resyncs_total",
    "levibot_orders_sent_total",
    "levibot_orders_acked_total",
    "levibot_orders_filled_total",
    "levibot_orders_cancelled_total",
    "levibot_risk_rejects_total",
    "levibot_position",
    "levibot_pnl",
    "levibot_open_orders",
    "levibot_model_info",
    "levibot_exposure",
    "levibot_agent_duty_cycles_total",
    "levibot_agent_cycle_max_seconds",
    "levibot_decode_seconds_bucket",
    "levibot_strategy_seconds_bucket",
    "levibot_risk_seconds_bucket",
    "levibot_encode_seconds_bucket",
    "levibot_tick_to_trade_seconds_bucket",
    "levibot_venue_ack_seconds_bucket",
    "levibot_journal_bytes",
];

pub(crate) struct Exporter {
    child: Child,
    pub(crate) addr: SocketAddr,
}

impl Exporter {
    pub(crate) fn start(journal: &std::path::Path) -> Exporter {
        let mut child = Command::new(levibot_testkit::workspace_bin(
            "levibot-exporter",
            "levibot-exporter",
        ))
        .arg("--journal")
        .arg(journal)
        .args(["--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("first line: {line:?}"))
            .parse()
            .unwrap();
        Exporter { child, addr }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET `path` from `addr`: (status, body).
pub(crate) fn get_http(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_owned());
    (status, body)
}

/// The value of the first sample line of `name` (with `labels` in it, if given).
pub(crate) fn sample(page: &str, name: &str, labels: &str) -> Option<f64> {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| {
            (l.starts_with(&format!("{name} ")) || l.starts_with(&format!("{name}{{")))
                && l.contains(labels)
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn the_exporter_serves_a_trading_daemon_and_prometheus_scrapes_it() {
    let dir = tempfile::tempdir().unwrap();
    let (venue, config) = venue_and_config(dir.path(), levibot_testkit::seed());
    let mut daemon = Daemon::start(&config, dir.path());
    daemon.wait_running();
    daemon.wait_for("orders", |c| get(c, "gateway.orders_sent") > 5);
    let exporter = Exporter::start(dir.path());

    // Ready once it has read the daemon's state; every family served.
    let until = Instant::now() + TIMEOUT;
    while get_http(exporter.addr, "/readyz").0 != 200 {
        assert!(
            Instant::now() < until,
            "{:?}",
            get_http(exporter.addr, "/readyz")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(get_http(exporter.addr, "/healthz").0, 200);
    let (status, first) = get_http(exporter.addr, "/metrics");
    assert_eq!(status, 200);
    for family in FAMILIES {
        assert!(first.contains(family), "{family} missing:\n{first}");
    }
    // The maker votes with no model (a signal strategy's live model: tests/research_live.rs).
    for symbol in ["NKNUSDT", "BTCUSDT", "ETHUSDT"] {
        let series = format!("symbol=\"{symbol}\",model_id=\"none\"");
        assert_eq!(
            sample(&first, "levibot_model_info", &series),
            Some(1.0),
            "{first}"
        );
    }

    // They move while it trades.
    daemon.wait_for("more orders", |c| get(c, "gateway.orders_sent") > 40);
    std::thread::sleep(Duration::from_millis(500));
    let (_, second) = get_http(exporter.addr, "/metrics");
    for (name, labels) in [
        ("levibot_orders_sent_total", ""),
        ("levibot_orders_acked_total", ""),
        ("levibot_feed_messages_total", "depth"),
        ("levibot_feed_bytes_total", "depth"),
        ("levibot_tick_to_trade_seconds_count", ""),
        ("levibot_agent_duty_cycles_total", ""),
    ] {
        let (a, b) = (
            sample(&first, name, labels).unwrap_or_else(|| panic!("{name}:\n{first}")),
            sample(&second, name, labels).unwrap_or_else(|| panic!("{name}:\n{second}")),
        );
        assert!(b > a, "{name}{{{labels}}} did not grow: {a} -> {b}");
    }

    // promtool reads the live page as Prometheus would.
    let promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .output_with_input(second.as_bytes());
    assert!(
        promtool.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&promtool.stdout),
        String::from_utf8_lossy(&promtool.stderr)
    );

    // A real Prometheus scrapes it and answers a query.
    let prom_port = free_port();
    let prom_dir = dir.path().join("prometheus");
    std::fs::create_dir_all(&prom_dir).unwrap();
    std::fs::write(
        prom_dir.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: levibot-exporter\n    static_configs:\n      - targets: ['{}']\n",
            exporter.addr
        ),
    )
    .unwrap();
    let mut prometheus = Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            prom_dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            prom_dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus (Debian package; scripts/install-test-deps installs it)");
    let prom_addr: SocketAddr = format!("127.0.0.1:{prom_port}").parse().unwrap();
    let until = Instant::now() + TIMEOUT;
    let answer = loop {
        if TcpStream::connect(prom_addr).is_ok() {
            let (status, body) =
                get_http(prom_addr, "/api/v1/query?query=levibot_orders_sent_total");
            if status == 200 && body.contains("\"value\"") {
                break body;
            }
        }
        assert!(Instant::now() < until, "Prometheus never had the series");
        std::thread::sleep(Duration::from_millis(250));
    };
    let _ = prometheus.kill();
    let _ = prometheus.wait();
    assert!(answer.contains("levibot_orders_sent_total"), "{answer}");
    assert!(answer.contains("levibot-exporter"), "{answer}");

    // Stopped: the histogram counts equal the journal's orders.
    daemon.signal(rustix::process::Signal::TERM);
    assert_eq!(daemon.wait().code(), Some(0));
    let sent = sent_orders(dir.path()).len() as f64;
    let until = Instant::now() + TIMEOUT;
    loop {
        let (_, page) = get_http(exporter.addr, "/metrics");
        let counted = sample(&page, "levibot_tick_to_trade_seconds_count", "");
        if counted == Some(sent) {
            assert_eq!(sample(&page, "levibot_orders_sent_total", ""), Some(sent));
            break;
        }
        assert!(
            Instant::now() < until,
            "histogram count {counted:?}, journal {sent}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    venue.stop();
}

/// `Command::output` with bytes on standard input.
trait OutputWithInput {
    fn output_with_input(&mut self, input: &[u8]) -> std::process::Output;
}

impl OutputWithInput for Command {
    fn output_with_input(&mut self, input: &[u8]) -> std::process::Output {
        let mut child = self
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("promtool (Debian package prometheus; scripts/install-test-deps installs it)");
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    }
}

/// `levibot-demo` serves the exporter itself: its live page passes `promtool check metrics`.
#[test]
fn the_demo_serves_metrics_promtool_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let mut demo = Command::new(levibot_testkit::workspace_bin(
        "levibot-demo",
        "levibot-demo",
    ))
    .args(["--duration", "10", "--plain"])
    .args(["--exporter-listen", "127.0.0.1:0", "--journal"])
    .arg(dir.path().join("demo"))
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(demo.stdout.take().unwrap()).lines();
    let addr: SocketAddr = loop {
        let line = lines
            .next()
            .expect("the demo ended before its exporter listened")
            .unwrap();
        // The demo says where its exporter listens: "metrics: http://ADDR/metrics ...".
        if let Some(rest) = line.split("metrics: http://").nth(1) {
            break rest.split('/').next().unwrap().parse().unwrap();
        }
    };
    // Let it trade a little, then take the page.
    let until = Instant::now() + TIMEOUT;
    let page = loop {
        let (status, page) = get_http(addr, "/metrics");
        if status == 200 && sample(&page, "levibot_orders_sent_total", "").unwrap_or(0.0) > 5.0 {
            break page;
        }
        assert!(Instant::now() < until, "the demo never traded:\n{page}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let out = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .output_with_input(page.as_bytes());
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Drain its output so it is never blocked on a full pipe, and let it finish.
    for line in lines.by_ref() {
        let _ = line;
    }
    assert!(demo.wait().unwrap().success());
}
