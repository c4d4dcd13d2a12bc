//! The whole paging path with real components: the daemon halted trading by itself (a counters
//! file written here, as the daemon writes it) -> the real `levibot-exporter` -> Debian's
//! Prometheus, evaluating the shipped `systemd/monitoring/levibot.rules.yml` -> Debian's
//! Alertmanager, running the shipped `systemd/monitoring/alertmanager.yml` -> a Slack webhook
//! and a Discord webhook, both served here by a small HTTP server that records what it is sent.
//!
//! What the test changes, and nothing else: Prometheus's own config is the test's (scrape and
//! evaluate every second, the exporters and the Alertmanager on free loopback ports; the rule
//! file is the shipped one, loaded from the source tree). The Alertmanager config is a copy of
//! the shipped file with only where its receivers post rewritten: Slack's `api_url_file` names
//! a file of the test's, which holds the local URL, and Discord's `webhook_url` is the local
//! URL (Alertmanager 0.25, Debian 12's, has no `webhook_url_file`). Routes, `group_wait`,
//! inhibit rules and templates are as shipped.
//!
//! A second exporter, for a healthy daemon, is scraped by the same Prometheus: nothing may fire
//! for it. The kill switch alert that the halt also fires (after its 30 s) must be silenced by
//! the shipped inhibit rule. Every process is killed when the test ends, whatever happens.
//!
//! Needs Debian's `prometheus` and `prometheus-alertmanager` (scripts/install-test-deps
//! installs them); without them it is skipped, unless running as root (CI), where it fails.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use levibot_shm::codes::{counter_type, halt_reason};
use levibot_shm::counters::{Counter, CountersWriter};
use levibot_shm::paths::counters_path;
use levibot_shm::{Journal, JournalConfig, RetentionPolicy};
use serde_json::Value;

/// How long the pages may take (Prometheus's start, a scrape, the rule, the shipped 10 s
/// group_wait, the posts), on a loaded machine.
const PAGE_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a server may take to start answering.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const ALERT: &str = "LeviBotHaltedByDaemon";

fn monitoring_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd/monitoring")
}

// ------------------------------------------------------------------------------ processes

/// A child process, killed (and reaped) on drop; its output goes to a log file, shown when
/// the test fails.
struct Process {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Process {
    fn spawn(name: &'static str, command: &mut Command, log: PathBuf) -> Process {
        let out = std::fs::File::create(&log).unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Process { name, child, log }
    }

    /// The last lines of its log.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(30)..].join("\n");
        format!("--- {} ({}) ---\n{tail}", self.name, self.log.display())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `names` on PATH, else in /usr/bin or /usr/sbin.
fn find_binary(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path)
        .chain(["/usr/bin".into(), "/usr/sbin".into()])
        .collect();
    names
        .iter()
        .flat_map(|name| dirs.iter().map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// ------------------------------------------------------------------------------ the daemon side

/// A journal and a counters file as a daemon leaves them, with the counters given.
struct DaemonFiles {
    dir: tempfile::TempDir,
    journal: Journal,
    _writer: CountersWriter,
    _counters: Vec<Counter>,
}

impl DaemonFiles {
    fn new(counters: &[(&str, u32, i64)]) -> DaemonFiles {
        let dir = tempfile::Builder::new()
            .prefix("levibot-paging")
            .tempdir()
            .unwrap();
        let mut config = JournalConfig::new(dir.path());
        config.segment_size = 64 * 1024;
        config.prefault = false;
        config.retention = RetentionPolicy::keep_all();
        let journal = Journal::open(&config).unwrap();
        let writer =
            CountersWriter::create(counters_path(dir.path()), 16, journal.epoch()).unwrap();
        let counters = counters
            .iter()
            .map(|&(label, type_id, value)| {
                let counter = writer.allocate(label, type_id).unwrap();
                counter.set(value);
                counter
            })
            .collect();
        journal.heartbeat();
        DaemonFiles {
            dir,
            journal,
            _writer: writer,
            _counters: counters,
        }
    }
}

fn unix_now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Starts the real exporter on a free port; returns it and its address.
fn start_exporter(name: &'static str, journal: &Path, logs: &Path) -> (Process, SocketAddr) {
    let log = logs.join(format!("{name}.log"));
    let mut command = Command::new(env!("CARGO_BIN_EXE_levibot-exporter"));
    command
        .args(["--listen", "127.0.0.1:0", "--journal"])
        .arg(journal)
        .env("RUST_LOG", "info");
    // Its first stdout line is the address; the rest of its output goes to the log.
    let stderr = std::fs::File::create(&log).unwrap();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let process = Process { name, child, log };
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("{name}: first line {line:?}\n{}", process.log_tail()))
        .parse()
        .unwrap();
    (process, addr)
}

// ------------------------------------------------------------------------------ HTTP

/// GET `path` from `addr` as HTTP/1.0 (so the answer is never chunked): (status, body).
fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let response = String::from_utf8_lossy(&response);
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_owned());
    Ok((status, body))
}

/// GET that answers JSON; `Value::Null` when the server is not answering (yet).
fn get_json(addr: SocketAddr, path: &str) -> Value {
    match http_get(addr, path) {
        Ok((200, body)) => serde_json::from_str(&body).unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

/// Percent-encoding of a query parameter's value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Waits until `addr` answers `path` with 200.
fn wait_ready(addr: SocketAddr, path: &str, process: &Process) {
    let until = Instant::now() + START_TIMEOUT;
    while !matches!(http_get(addr, path), Ok((200, _))) {
        assert!(
            Instant::now() < until,
            "{} never answered {path} on {addr}\n{}",
            process.name,
            process.log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A POST the webhook server received.
#[derive(Clone, Debug)]
struct Post {
    path: String,
    body: Value,
}

/// The Slack and Discord webhooks: an HTTP server on 127.0.0.1 that answers every POST with
/// 200 and records it. Stopped (and joined) on drop.
struct Webhooks {
    addr: SocketAddr,
    posts: Arc<Mutex<Vec<Post>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Webhooks {
    fn start() -> Webhooks {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let posts = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (posts, stop) = (Arc::clone(&posts), Arc::clone(&stop));
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::Acquire) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    if let Some(post) = serve_one(stream) {
                        posts.lock().unwrap().push(post);
                    }
                }
            })
        };
        Webhooks {
            addr,
            posts,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn posts(&self) -> Vec<Post> {
        self.posts.lock().unwrap().clone()
    }
}

impl Drop for Webhooks {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Wakes the accept.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads one request (Content-Length or chunked body), answers 200 "ok".
fn serve_one(mut stream: TcpStream) -> Option<Post> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let (mut length, mut chunked) = (0usize, false);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse().ok()?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).ok()?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        body.resize(length, 0);
        reader.read_exact(&mut body).ok()?;
    }
    let _ = stream.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
    );
    (method == "POST").then(|| Post {
        path,
        body: serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned())),
    })
}

/// A Slack post (`attachments`: title and text) for `alert` on `instance` that says `reason`.
fn slack_page(post: &Post, alert: &str, instance: &str, reason: &str) -> bool {
    post.path == "/slack"
        && post.body["attachments"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|a| {
                let title = a["title"].as_str().unwrap_or_default();
                let text = a["text"].as_str().unwrap_or_default();
                title.contains(alert) && title.contains(instance) && text.contains(reason)
            })
}

/// A Discord post (`embeds`: title and description) for `alert` on `instance` that says
/// `reason`.
fn discord_page(post: &Post, alert: &str, instance: &str, reason: &str) -> bool {
    post.path == "/discord"
        && post.body["embeds"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| {
                let title = e["title"].as_str().unwrap_or_default();
                let text = e["description"].as_str().unwrap_or_default();
                title.contains(alert) && title.contains(instance) && text.contains(reason)
            })
}

// ------------------------------------------------------------------------------ configs

/// The shipped Alertmanager config with only its receivers' destinations changed: Slack's
/// URL file and Discord's URL. Panics if the shipped file no longer has them where expected.
fn alertmanager_config(shipped: &str, slack_url_file: &Path, discord_url: &str) -> String {
    let (mut slack, mut discord) = (0, 0);
    let mut out = String::new();
    for line in shipped.lines() {
        let indent = &line[..line.len() - line.trim_start().len()];
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix("- api_url_file:") {
            assert!(!rest.trim().is_empty());
            out.push_str(&format!(
                "{indent}- api_url_file: '{}'",
                slack_url_file.display()
            ));
            slack += 1;
        } else if trimmed.starts_with("- webhook_url:") {
            out.push_str(&format!("{indent}- webhook_url: '{discord_url}'"));
            discord += 1;
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    assert!(
        slack >= 1 && discord == 1,
        "the shipped alertmanager.yml changed shape: {slack} Slack api_url_file, {discord} \
         Discord webhook_url (expected >= 1 and 1)"
    );
    out
}

fn prometheus_config(rules: &Path, exporters: &[SocketAddr], alertmanager: SocketAddr) -> String {
    let targets = exporters
        .iter()
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\n\
         rule_files:\n  - '{rules}'\n\
         alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['{alertmanager}']\n\
         scrape_configs:\n  - job_name: levibot-exporter\n    static_configs:\n      - targets: [{targets}]\n",
        rules = rules.display(),
    )
}

// ------------------------------------------------------------------------------ the test

#[test]
fn a_halt_by_the_daemon_pages_slack_and_discord_with_its_reason() {
    let started = Instant::now();
    let (Some(prometheus_bin), Some(alertmanager_bin)) = (
        find_binary(&["prometheus"]),
        find_binary(&["prometheus-alertmanager", "alertmanager"]),
    ) else {
        let why = "Debian's prometheus and prometheus-alertmanager are not installed \
                   (scripts/install-test-deps installs them)";
        assert!(!rustix::process::geteuid().is_root(), "{why}");
        eprintln!("SKIP the paging test: {why}");
        return;
    };
    let work = tempfile::Builder::new()
        .prefix("levibot-paging-servers")
        .tempdir()
        .unwrap();
    let logs = work.path();

    // The daemon halted by itself after a start on an empty journal; it runs (phase 3), and
    // risk is halted (2). Another box trades normally.
    let halted = DaemonFiles::new(&[
        ("daemon.phase", counter_type::STATE, 3),
        ("risk.trading_state", counter_type::STATE, 2),
        (
            "daemon.halt_reason",
            counter_type::STATE,
            halt_reason::EMPTY_JOURNAL,
        ),
        ("daemon.self_halts", counter_type::EVENTS, 1),
    ]);
    let healthy = DaemonFiles::new(&[
        ("daemon.phase", counter_type::STATE, 3),
        ("risk.trading_state", counter_type::STATE, 0),
        ("daemon.halt_reason", counter_type::STATE, halt_reason::NONE),
        ("daemon.checkpoints", counter_type::EVENTS, 1),
        (
            "daemon.last_checkpoint_unix_s",
            counter_type::GAUGE,
            unix_now_s(),
        ),
    ]);
    let (halted_exporter, halted_addr) = start_exporter("exporter-halted", halted.dir.path(), logs);
    let (healthy_exporter, healthy_addr) =
        start_exporter("exporter-healthy", healthy.dir.path(), logs);
    // The exporter names the halt at /readyz too.
    let until = Instant::now() + START_TIMEOUT;
    loop {
        let (_, body) = http_get(halted_addr, "/readyz").unwrap();
        if body.contains("trading halted by the daemon itself: empty_journal") {
            break;
        }
        assert!(
            Instant::now() < until,
            "/readyz: {body}\n{}",
            halted_exporter.log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let webhooks = Webhooks::start();
    let slack_url_file = work.path().join("slack-webhook-url");
    std::fs::write(&slack_url_file, webhooks.url("/slack")).unwrap();
    let shipped = std::fs::read_to_string(monitoring_dir().join("alertmanager.yml")).unwrap();
    let am_config = work.path().join("alertmanager.yml");
    std::fs::write(
        &am_config,
        alertmanager_config(&shipped, &slack_url_file, &webhooks.url("/discord")),
    )
    .unwrap();
    let am_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let alertmanager = Process::spawn(
        "alertmanager",
        Command::new(&alertmanager_bin)
            .arg(format!("--config.file={}", am_config.display()))
            .arg(format!(
                "--storage.path={}",
                work.path().join("am-data").display()
            ))
            .arg(format!("--web.listen-address={am_addr}"))
            // No cluster: no gossip port, no waiting for peers to settle.
            .arg("--cluster.listen-address="),
        logs.join("alertmanager.log"),
    );

    let rules = monitoring_dir()
        .join("levibot.rules.yml")
        .canonicalize()
        .unwrap();
    let prom_config = work.path().join("prometheus.yml");
    std::fs::write(
        &prom_config,
        prometheus_config(&rules, &[halted_addr, healthy_addr], am_addr),
    )
    .unwrap();
    let prom_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let prometheus = Process::spawn(
        "prometheus",
        Command::new(&prometheus_bin)
            .arg(format!("--config.file={}", prom_config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                work.path().join("prom-data").display()
            ))
            .arg(format!("--web.listen-address={prom_addr}")),
        logs.join("prometheus.log"),
    );
    wait_ready(am_addr, "/-/ready", &alertmanager);
    wait_ready(prom_addr, "/-/ready", &prometheus);

    let all_logs = |posts: &[Post]| {
        format!(
            "webhook posts: {posts:#?}\nPrometheus alerts: {}\nAlertmanager alerts: {}\n{}\n{}\n{}\n{}",
            get_json(prom_addr, "/api/v1/alerts"),
            get_json(am_addr, "/api/v2/alerts"),
            prometheus.log_tail(),
            alertmanager.log_tail(),
            halted_exporter.log_tail(),
            healthy_exporter.log_tail(),
        )
    };

    // Both pages arrive, each naming the alert, the box and the reason.
    let halted_instance = halted_addr.to_string();
    let until = started + PAGE_TIMEOUT;
    let paged_after = loop {
        // A live daemon beats; not needed for the alert, but what the exporter sees is a
        // running daemon then.
        halted.journal.heartbeat();
        healthy.journal.heartbeat();
        let posts = webhooks.posts();
        let slack = posts
            .iter()
            .any(|p| slack_page(p, ALERT, &halted_instance, "empty_journal"));
        let discord = posts
            .iter()
            .any(|p| discord_page(p, ALERT, &halted_instance, "empty_journal"));
        if slack && discord {
            break started.elapsed();
        }
        assert!(
            Instant::now() < until,
            "no Slack and Discord pages for {ALERT} within {PAGE_TIMEOUT:?} (slack {slack}, \
             discord {discord})\n{}",
            all_logs(&posts)
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    eprintln!("paged on Slack and Discord {paged_after:.1?} after the test started");
    let posts = webhooks.posts();
    let slack = posts.iter().find(|p| p.path == "/slack").unwrap();
    assert_eq!(
        slack.body["channel"], "#levibot-page",
        "the page went to the paging channel: {slack:#?}"
    );

    // Nothing fired for the healthy box, though Prometheus has its series.
    let healthy_instance = healthy_addr.to_string();
    let healthy_series = get_json(
        prom_addr,
        &format!(
            "/api/v1/query?query={}",
            encode(&format!(
                "levibot_daemon_halt_reason{{instance=\"{healthy_instance}\"}}"
            ))
        ),
    );
    let series = healthy_series["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        series.len(),
        halt_reason::ALL.len() - 1,
        "every reason but none, for the healthy box: {healthy_series}"
    );
    assert!(
        series.iter().all(|s| s["value"][1] == "0"),
        "{healthy_series}"
    );
    let firing = get_json(
        prom_addr,
        &format!(
            "/api/v1/query?query={}",
            encode(&format!("ALERTS{{alertname=\"{ALERT}\"}}"))
        ),
    );
    let firing_instances: Vec<&str> = firing["data"]["result"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["metric"]["instance"].as_str())
        .collect();
    assert_eq!(
        firing_instances,
        [halted_instance.as_str()],
        "{ALERT} only for the halted box: {firing}"
    );
    assert!(
        !posts
            .iter()
            .any(|p| p.body.to_string().contains(&healthy_instance)),
        "a page for the healthy box:\n{}",
        all_logs(&posts)
    );

    // The same halt engages the kill switch, whose alert fires after its 30 s: the shipped
    // inhibit rule silences it (one halt, one page).
    let filter = encode("alertname=\"LeviBotKillSwitchEngaged\"");
    let kill_switch = loop {
        halted.journal.heartbeat();
        healthy.journal.heartbeat();
        let alerts = get_json(am_addr, &format!("/api/v2/alerts?filter={filter}"));
        let alert = alerts.as_array().and_then(|a| a.first()).cloned();
        if let Some(alert) = &alert
            && alert["status"]["state"] == "suppressed"
        {
            break alert.clone();
        }
        assert!(
            Instant::now() < until,
            "LeviBotKillSwitchEngaged never reached Alertmanager inhibited by {ALERT}: \
             {alert:#?}\n{}",
            all_logs(&webhooks.posts())
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(kill_switch["labels"]["instance"], halted_instance.as_str());
    assert!(
        kill_switch["status"]["inhibitedBy"]
            .as_array()
            .is_some_and(|by| !by.is_empty()),
        "{kill_switch:#}"
    );
    let posts = webhooks.posts();
    assert!(
        !posts
            .iter()
            .any(|p| p.body.to_string().contains("LeviBotKillSwitchEngaged")),
        "the kill switch paged too:\n{}",
        all_logs(&posts)
    );
    eprintln!(
        "the kill switch alert was inhibited; the test took {:.1?}",
        started.elapsed()
    );
}
