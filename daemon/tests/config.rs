//! `levibotd`'s config file: the shipped example parses into the reference configuration, and
//! every class of mistake is reported under its key, all at once.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use levibot_daemon::config::{
    self, ConfigErrors, DaemonConfig, EmptyJournal, FeatureSettings, LogFormat, Reconcile,
    StrategySettings, UNIT_TIMEOUT_START_S, UNIT_TIMEOUT_STOP_S,
};
use levibot_engine::features::{BarSource, FeatureConfig};
use levibot_engine::idle::IdleStrategy;
use levibot_engine::pipeline::{FeatureCadence, Layout, reference};
use levibot_engine::risk::quote;
use levibot_engine::runner::available_cores;
use levibot_gateway::ws::Stream;
use levibot_model::Objective;
use levibot_model::synthetic::{self, SyntheticModel};
use levibot_shm::records::FEATURE_NAMES;

/// The example config shipped in `systemd/`.
fn example_text() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd/levibot.toml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The gid of `name` in this machine's /etc/group, read independently of the config's reader.
fn gid_of(name: &str) -> Option<u32> {
    let text = std::fs::read_to_string("/etc/group").unwrap_or_default();
    text.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() >= 3 && fields[0] == name).then(|| fields[2].parse().ok())?
    })
}

/// A directory holding a config: the corpus exchangeInfo linked in as `exchangeInfo.json`.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    /// In the build's own scratch directory rather than /tmp: the journal's filesystem is
    /// checked against the example's 4096 MiB, and /tmp may be a small tmpfs.
    fn new() -> Setup {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let corpus = levibot_gateway::capture::testdata_dir().join("BINANCE.0");
        std::os::unix::fs::symlink(&corpus, dir.path().join("exchangeInfo.json")).unwrap();
        Setup { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The example with its paths in this directory and its core on this machine, edited by
    /// `edits` (each `(from, to)` must match).
    fn example(&self, edits: &[(&str, &str)]) -> String {
        let core = *available_cores().last().expect("a core");
        let mut text = example_text();
        let journal = self.path("journal").display().to_string();
        for (from, to) in [
            (
                "\"/etc/levibot/exchangeInfo.json\"",
                "\"exchangeInfo.json\"".to_owned(),
            ),
            (
                "\"/dev/shm/levibot/control.sock\"",
                format!("\"{journal}/control.sock\""),
            ),
            ("dir = \"/dev/shm/levibot\"", format!("dir = \"{journal}\"")),
            (
                "pipeline = { core = 1,",
                format!("pipeline = {{ core = {core},"),
            ),
        ] {
            assert!(text.contains(from), "the example has no {from}");
            text = text.replacen(from, &to, 1);
        }
        for (from, to) in edits {
            assert!(text.contains(from), "the example has no {from:?}");
            text = text.replacen(from, to, 1);
        }
        text
    }

    /// Writes `text` as `levibot.toml` and loads it.
    fn load(&self, text: &str) -> Result<DaemonConfig, ConfigErrors> {
        let path = self.path("levibot.toml");
        std::fs::write(&path, text).unwrap();
        config::load(&path)
    }

    /// Loads `text`, which must fail; returns the errors.
    fn errors(&self, text: &str) -> ConfigErrors {
        match self.load(text) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e,
        }
    }

    /// Writes a private file.
    fn secret(&self, name: &str, text: &str, mode: u32) -> PathBuf {
        use std::os::unix::fs::PermissionsExt as _;
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }
}

/// The problem at `key`, which must mention every one of `words`.
#[track_caller]
fn assert_problem(errors: &ConfigErrors, key: &str, words: &[&str]) {
    let Some(found) = errors.problems.iter().find(|p| p.key == key) else {
        panic!("no problem at {key}:\n{errors}");
    };
    for word in words {
        assert!(
            found.problem.contains(word),
            "{key}: {:?} does not say {word:?}",
            found.problem
        );
    }
}

#[test]
fn the_example_is_the_reference_configuration() {
    let setup = Setup::new();
    let config = setup
        .load(&setup.example(&[]))
        .unwrap_or_else(|e| panic!("{e}"));
    let journal = setup.path("journal");

    let d = &config.daemon;
    assert_eq!(d.control_socket, journal.join("control.sock"));
    assert_eq!(d.control_socket_mode, 0o660);
    assert_eq!(
        (d.log_level.as_str(), d.log_format),
        ("info", LogFormat::Text)
    );
    assert!(d.lock_memory);
    assert_eq!(d.cancel_deadline, Duration::from_secs(5));
    assert_eq!(d.start_timeout, Duration::from_secs(30));
    assert_eq!(d.heartbeat_timeout, Duration::from_secs(1));
    assert_eq!(d.reconcile, Reconcile::CancelAll);
    assert_eq!(d.empty_journal, EmptyJournal::Halt);
    assert_eq!(d.control_ops_group, "levibot-ops");
    assert_eq!(d.control_ops_gid, gid_of("levibot-ops"));

    let j = &config.journal;
    assert_eq!(
        (j.dir.as_path(), j.segment_size, j.prefault),
        (journal.as_path(), 64 << 20, true)
    );
    assert!(j.retention.compress);
    assert_eq!(j.retention.raw_segments_kept, 2);
    assert_eq!(j.retention.max_age, Some(Duration::from_secs(168 * 3600)));
    assert_eq!(j.retention.max_total_bytes, Some(4096 << 20));

    assert_eq!(config.exchange_info, setup.path("exchangeInfo.json"));
    let md = &config.market_data;
    assert_eq!(md.addr, "127.0.0.1:9443".parse().unwrap());
    assert_eq!(md.host, "127.0.0.1:9443");
    assert!(md.tls.is_none());
    assert_eq!(
        md.streams,
        [Stream::Depth100ms, Stream::BookTicker, Stream::AggTrade]
    );
    assert_eq!(
        (md.ping_interval, md.pong_timeout),
        (Duration::from_secs(20), Duration::from_secs(10))
    );
    let oe = &config.order_entry;
    assert_eq!(oe.addr, "127.0.0.1:9878".parse().unwrap());
    assert_eq!(oe.host, "127.0.0.1");
    assert!(oe.tls.is_none() && oe.credentials.is_none());
    assert_eq!(
        (
            oe.session.sender_comp_id.as_str(),
            oe.session.target_comp_id.as_str()
        ),
        ("LEVIBOT", "VENUE")
    );
    assert_eq!(oe.session.heart_bt_int_s, 30);
    assert!(!oe.session.reset_seq_num && oe.session.binance_logon.is_none());

    // The configured symbols only, numbered from 0.
    assert_eq!(config.instruments.len(), 1);
    let nkn = config.instruments.get(0).unwrap().clone();
    assert_eq!((nkn.id, nkn.symbol.as_str()), (0, "NKNUSDT"));
    assert_eq!(config.strategy_id, 1);
    // The example's numbers are the reference maker's and its risk limits, in file units.
    assert_eq!(
        config.strategy,
        StrategySettings::Maker(vec![reference::maker_params(&nkn)])
    );
    assert_eq!(config.risk_limits, reference::risk_limits(&nkn).unwrap());

    let Layout::Fused { pipeline } = config.layout else {
        panic!("{:?}", config.layout)
    };
    assert_eq!(pipeline.core_id, available_cores().last().copied());
    assert_eq!(pipeline.idle, IdleStrategy::BusySpin);
    assert!(config.text.contains("# levibotd's configuration"));
}

#[test]
fn defaults_fill_what_is_left_out() {
    let setup = Setup::new();
    let text = r#"
[venue]
exchange_info = "exchangeInfo.json"
market_data = { url = "ws://localhost:9443" }
order_entry = { url = "tcp://127.0.0.1:9878", sender_comp_id = "A", target_comp_id = "B" }
[strategy]
kind = "maker"
[risk]
open_orders_max = 8
gross_exposure_max = 1000
net_exposure_max = "500.5"
loss_max = "10"
loss_state = "halted"
order_rate = { count_max = 10, window_ms = 1000 }
message_rate = { count_max = 20, window_ms = 1000 }
fill_rate = { count_max = 5, window_ms = 1000 }
duplicate_window_us = 1000
[[instruments]]
symbol = "nknusdt"
collar_bps = 100
order_qty_max = "1000"
order_notional_max = "100"
position_max = "5000"
open_orders_max = 2
[layout]
kind = "fused"
pipeline = {}
"#;
    let dir = PathBuf::from(levibot_shm::paths::DEFAULT_DIR);
    // The journal's filesystem: /dev/shm here, unless this machine has none.
    let fs = dir
        .ancestors()
        .find_map(|d| rustix::fs::statvfs(d).ok())
        .unwrap();
    let fs_size = fs.f_blocks * fs.f_frsize;
    if fs_size < 3 * (64 << 20) + (1 << 20) {
        // Too small for three default segments (a container's 64 MiB /dev/shm): refused, naming
        // the segment size.
        let errors = setup.errors(text);
        assert_problem(&errors, "journal.segment_size_mib", &["do not fit"]);
        assert_eq!(errors.problems.len(), 1, "{errors}");
        eprintln!("skipped the rest: {} is too small", dir.display());
        return;
    }
    let config = setup.load(text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.journal.dir, dir);
    assert_eq!(config.daemon.control_socket, dir.join("control.sock"));
    assert_eq!(config.daemon.empty_journal, EmptyJournal::Halt);
    assert_eq!(config.daemon.control_ops_group, "levibot-ops");
    assert_eq!(config.daemon.control_ops_gid, gid_of("levibot-ops"));
    assert_eq!(config.daemon.cancel_deadline, Duration::from_secs(5));
    assert_eq!(config.daemon.start_timeout, Duration::from_secs(30));
    // 4096 MiB, or half of the filesystem when that is less (two segments at least).
    let half = (fs_size / 2) >> 20 << 20;
    assert_eq!(
        config.journal.retention.max_total_bytes,
        Some((4096 << 20).min(half).max(128 << 20))
    );
    assert_eq!(config.market_data.host, "localhost:9443");
    assert!(config.market_data.addr.ip().is_loopback());
    assert_eq!(
        config.risk_limits.net_exposure_max,
        quote(500) + quote(1) / 2
    );
    let nkn = config.instruments.get(0).unwrap();
    assert_eq!(
        config.strategy,
        StrategySettings::Maker(vec![reference::maker_params(nkn)])
    );
}

#[test]
fn the_signal_strategy_takes_its_parameters_in_lots_and_quote() {
    let setup = Setup::new();
    let signal = r#"[instruments.signal]
weights = { top_imbalance = 1.0, mid_momentum = -0.5 }
entry_threshold = 0.5
risk_budget = "5"
atr_multiple = 2
take_profit_atr = 2.0
stop_loss_atr = 1.0
qty_max_lots = 100
"#;
    let config = setup
        .load(&signal_example(&setup, signal))
        .unwrap_or_else(|e| panic!("{e}"));
    let StrategySettings::Signal(params) = &config.strategy else {
        panic!("{:?}", config.strategy)
    };
    let p = params[0];
    assert_eq!(p.weights, [1.0, 0.0, 0.0, -0.5]);
    assert_eq!((p.entry_threshold, p.atr_multiple), (0.5, 2.0));
    // NKNUSDT: lots of 1 NKN in units of 1e-8; 5 USDT over 1e-8 x 1e-8 units.
    assert_eq!(p.qty_max, 100 * 100_000_000);
    assert!(
        (p.risk_budget / 5e16 - 1.0).abs() < 1e-12,
        "{}",
        p.risk_budget
    );
}

/// The example with the signal strategy, its `[instruments.signal]` table `table`.
fn signal_example(setup: &Setup, table: &str) -> String {
    let mut text = setup.example(&[
        ("kind = \"maker\"", "kind = \"signal\""),
        ("\n[instruments.maker]\n", &format!("\n{table}")),
    ]);
    for key in [
        "half_spread_ticks = 2\n",
        "quote_lots = 100\n",
        "skew_ticks_per_quote = 1.0\n",
        "requote_threshold_ticks = 0\n",
        "inventory_max_lots = 1000\n",
        "post_only = false\n",
    ] {
        text = text.replacen(key, "", 1);
    }
    text
}

#[test]
fn a_signal_model_is_loaded_checked_and_named_by_its_sha256() {
    let setup = Setup::new();
    let rest = "entry_threshold = 0.5\nrisk_budget = \"5\"\natr_multiple = 2\n\
                take_profit_atr = 2.0\nstop_loss_atr = 1.0\nqty_max_lots = 100\n";
    let model_of = |features: &[&str]| {
        synthetic::model_json(&SyntheticModel {
            features,
            trees: 3,
            depth: 2,
            objective: Objective::SquaredError,
            base_score: 0.5,
            seed: 7,
        })
    };
    let good = model_of(&FEATURE_NAMES);
    let path = setup.path("model.json");
    std::fs::write(&path, &good).unwrap();
    let table = format!("[instruments.signal]\nmodel = \"model.json\"\n{rest}");
    let config = setup
        .load(&signal_example(&setup, &table))
        .unwrap_or_else(|e| panic!("{e}"));
    let StrategySettings::Signal(params) = &config.strategy else {
        panic!("{:?}", config.strategy)
    };
    let model = params[0].model.expect("the model");
    // Its id is its file's SHA-256, by an independent hash: sha256sum's.
    let sum = std::process::Command::new("sha256sum")
        .arg(&path)
        .output()
        .unwrap();
    let hex = String::from_utf8(sum.stdout).unwrap();
    assert_eq!(model.sha256_hex(), hex[..64]);
    assert_eq!(format!("{:016x}", model.id), hex[..16]);
    // NKNUSDT quotes in USDT at 1e-8.
    assert_eq!(params[0].price_unit, 1e-8);
    // The same bytes again (a reload, a sweep): the same model, not a second copy.
    let again = setup.load(&signal_example(&setup, &table)).unwrap();
    let StrategySettings::Signal(again) = &again.strategy else {
        panic!()
    };
    assert!(std::ptr::eq(again[0].model.unwrap(), model));

    let key = "instruments[NKNUSDT].signal.model";
    std::fs::write(&path, model_of(&synthetic::FEATURES[..])).unwrap();
    let errors = setup.errors(&signal_example(&setup, &table));
    assert_problem(&errors, key, &["model.json", "feature"]);
    std::fs::write(&path, &good[..good.len() / 2]).unwrap();
    let errors = setup.errors(&signal_example(&setup, &table));
    assert_problem(&errors, key, &["model.json"]);
    let errors = setup.errors(&signal_example(
        &setup,
        &format!("[instruments.signal]\nmodel = \"absent.json\"\n{rest}"),
    ));
    assert_problem(&errors, key, &["absent.json"]);
    std::fs::write(&path, &good).unwrap();
    let both = format!(
        "[instruments.signal]\nmodel = \"model.json\"\n\
         weights = {{ top_imbalance = 1.0 }}\n{rest}"
    );
    let errors = setup.errors(&signal_example(&setup, &both));
    assert_problem(
        &errors,
        "instruments[NKNUSDT].signal.weights",
        &["model", "one or the other"],
    );
}

#[test]
fn an_unknown_key_is_named_with_the_key_it_resembles() {
    let setup = Setup::new();
    let text = setup.example(&[("log_level = ", "lgo_level = ")]);
    let line = text
        .lines()
        .position(|l| l.starts_with("lgo_level"))
        .unwrap()
        + 1;
    let errors = setup.errors(&text);
    let at = format!("(line {line})");
    assert_problem(
        &errors,
        "daemon.lgo_level",
        &["unknown key", "log_level", &at],
    );
    let errors = setup.errors(&setup.example(&[("[journal.retention]", "[journal.retension]")]));
    assert_problem(&errors, "journal.retension", &["unknown key", "retention"]);
    assert_eq!(errors.problems.len(), 1, "{errors}");
}

#[test]
fn a_wrong_type_says_what_was_expected() {
    let setup = Setup::new();
    let errors =
        setup.errors(&setup.example(&[("heart_bt_int_s = 30", "heart_bt_int_s = \"30\"")]));
    assert_problem(
        &errors,
        "venue.order_entry.heart_bt_int_s",
        &["expected an integer", "string"],
    );
    let errors = setup.errors(&setup.example(&[("loss_max = \"1000\"", "loss_max = 1000.5")]));
    assert_problem(&errors, "risk.loss_max", &["float", "string"]);
}

#[test]
fn an_out_of_range_value_gives_the_range() {
    let setup = Setup::new();
    let errors =
        setup.errors(&setup.example(&[("cancel_deadline_ms = 5000", "cancel_deadline_ms = 0")]));
    assert_problem(
        &errors,
        "daemon.cancel_deadline_ms",
        &["0 is outside 1..=20000"],
    );
    let errors = setup.errors(&setup.example(&[("collar_bps = 500", "collar_bps = 20000")]));
    assert_problem(
        &errors,
        "instruments[NKNUSDT].collar_bps",
        &["20000", "1..=10000"],
    );
    let errors = setup
        .errors(&setup.example(&[("control_socket_mode = 0o660", "control_socket_mode = 0o666")]));
    assert_problem(&errors, "daemon.control_socket_mode", &["every user"]);
}

#[test]
fn a_core_not_on_this_machine_is_named() {
    let setup = Setup::new();
    let core = *available_cores().last().unwrap();
    let errors = setup.errors(&setup.example(&[(
        &format!("pipeline = {{ core = {core},"),
        "pipeline = { core = 100000,",
    )]));
    assert_problem(
        &errors,
        "layout.pipeline.core",
        &["100000", "not on this machine"],
    );
    let errors = setup.errors(&setup.example(&[("kind = \"fused\"", "kind = \"diagonal\"")]));
    assert_problem(&errors, "layout.kind", &["diagonal", "fused"]);
}

#[test]
fn binance_logon_needs_a_readable_private_credentials_file() {
    let setup = Setup::new();
    let logon = ("binance_logon = false", "binance_logon = true");
    let errors = setup.errors(&setup.example(&[logon]));
    assert_problem(
        &errors,
        "venue.credentials",
        &["required when", "binance_logon"],
    );

    let credentials = (
        "# credentials = \"/etc/levibot/credentials.toml\"",
        "credentials = \"credentials.toml\"",
    );
    let errors = setup.errors(&setup.example(&[logon, credentials]));
    assert_problem(
        &errors,
        "venue.credentials",
        &["credentials.toml", "No such file"],
    );

    // PKCS#8 of a known seed, as `openssl genpkey -algorithm ed25519` writes it.
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(&[3u8; 32]);
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(&der)
    );
    setup.secret("ed25519.pem", &pem, 0o600);
    let file = setup.secret(
        "credentials.toml",
        "api_key = \"k3y\"\nprivate_key_file = \"ed25519.pem\"\n",
        0o640,
    );
    let config = setup
        .load(&setup.example(&[logon, credentials]))
        .unwrap_or_else(|e| panic!("{e}"));
    let session = &config.order_entry.session;
    let binance = session.binance_logon.as_ref().expect("a Binance logon");
    assert_eq!(binance.api_key(), "k3y");
    assert!(
        session.reset_seq_num,
        "Binance requires ResetSeqNumFlag = Y"
    );
    assert_eq!(
        config.order_entry.credentials.as_deref(),
        Some(file.as_path())
    );

    // Open to every user: refused, as is a file without a key.
    setup.secret("credentials.toml", "api_key = \"k3y\"\n", 0o644);
    let errors = setup.errors(&setup.example(&[logon, credentials]));
    let all = errors.to_string();
    assert!(
        all.contains("other users") && all.contains("private_key_file"),
        "{all}"
    );
}

#[test]
fn an_unknown_symbol_names_the_exchange_info() {
    let setup = Setup::new();
    let errors = setup.errors(&setup.example(&[("symbol = \"NKNUSDT\"", "symbol = \"NOPEUSDT\"")]));
    assert_problem(
        &errors,
        "instruments[NOPEUSDT].symbol",
        &["NOPEUSDT", "not in exchangeInfo", "exchangeInfo.json"],
    );
    let twice = "\n[[instruments]]\nsymbol = \"nknusdt\"\n[layout]";
    let errors = setup.errors(&setup.example(&[("\n[layout]", twice)]));
    assert_problem(&errors, "instruments[NKNUSDT].symbol", &["twice"]);
    let errors = setup.errors(&setup.example(&[("\"exchangeInfo.json\"", "\"missing.json\"")]));
    assert_problem(
        &errors,
        "venue.exchange_info",
        &["missing.json", "No such file"],
    );
}

#[test]
fn urls_need_their_scheme() {
    let setup = Setup::new();
    let errors = setup.errors(&setup.example(&[
        (
            "url = \"ws://127.0.0.1:9443\"",
            "url = \"http://127.0.0.1:9443\"",
        ),
        (
            "url = \"tcp://127.0.0.1:9878\"",
            "url = \"udp://127.0.0.1:9878\"",
        ),
    ]));
    assert_problem(&errors, "venue.market_data.url", &["scheme", "ws://"]);
    assert_problem(
        &errors,
        "venue.order_entry.url",
        &["udp", "tcp://host:port"],
    );
    // A CA file only means something with TLS.
    let errors = setup.errors(&setup.example(&[(
        "# ca_file = \"/etc/levibot/ca.pem\"",
        "ca_file = \"ca.pem\"",
    )]));
    assert_problem(&errors, "venue.market_data.ca_file", &["TLS"]);
}

#[test]
fn segment_sizes_are_powers_of_two() {
    let setup = Setup::new();
    let errors =
        setup.errors(&setup.example(&[("segment_size_mib = 64", "segment_size_mib = 48")]));
    assert_problem(&errors, "journal.segment_size_mib", &["48", "power of two"]);
    let errors =
        setup.errors(&setup.example(&[("segment_size_mib = 64", "segment_size_mib = 4096")]));
    assert_problem(&errors, "journal.segment_size_mib", &["1..=1024"]);
}

#[test]
fn invalid_risk_limits_are_refused_under_their_key() {
    let setup = Setup::new();
    // More open orders in one instrument than in all: the risk engine's own check.
    let errors = setup.errors(&setup.example(&[("open_orders_max = 16", "open_orders_max = 100")]));
    assert_problem(
        &errors,
        "instruments[NKNUSDT].open_orders_max",
        &["100", "1..=64"],
    );
    // A duplicate window holding more orders than risk remembers.
    let errors = setup
        .errors(&setup.example(&[("duplicate_window_us = 50", "duplicate_window_us = 60000000")]));
    assert_problem(&errors, "risk.duplicate_window_us", &["remembered"]);
    // Not a whole number of the base asset's units, and not a number.
    let errors = setup.errors(&setup.example(&[
        (
            "order_qty_max = \"1000\"",
            "order_qty_max = \"0.000000001\"",
        ),
        ("position_max = \"2000\"", "position_max = \"lots\""),
    ]));
    assert_problem(
        &errors,
        "instruments[NKNUSDT].order_qty_max",
        &["whole number"],
    );
    assert_problem(&errors, "instruments[NKNUSDT].position_max", &["decimal"]);
    // A quote larger than an order may be.
    let errors = setup.errors(&setup.example(&[("quote_lots = 100", "quote_lots = 5000")]));
    assert_problem(
        &errors,
        "instruments[NKNUSDT].maker.quote_lots",
        &["order_qty_max"],
    );
}

#[test]
fn a_toml_syntax_error_gives_line_and_column() {
    let setup = Setup::new();
    let text = setup.example(&[("prefault = true", "prefault = ture")]);
    let line = text
        .lines()
        .position(|l| l.starts_with("prefault = ture"))
        .unwrap()
        + 1;
    let errors = setup.errors(&text);
    assert_eq!(errors.problems.len(), 1, "{errors}");
    assert_eq!(errors.problems[0].key, "");
    let expected = format!("line {line}, column 12");
    assert!(errors.problems[0].problem.contains(&expected), "{errors}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let setup = Setup::new();
    let core = *available_cores().last().unwrap();
    let text = setup.example(&[
        ("log_level = ", "lgo_level = "),
        ("heart_bt_int_s = 30", "heart_bt_int_s = \"30\""),
        ("cancel_deadline_ms = 5000", "cancel_deadline_ms = 0"),
        ("symbol = \"NKNUSDT\"", "symbol = \"NOPEUSDT\""),
        (
            &format!("pipeline = {{ core = {core},"),
            "pipeline = { core = 100000,",
        ),
        ("segment_size_mib = 64", "segment_size_mib = 48"),
    ]);
    let errors = setup.errors(&text);
    let keys: Vec<&str> = errors.problems.iter().map(|p| p.key.as_str()).collect();
    for key in [
        "daemon.lgo_level",
        "venue.order_entry.heart_bt_int_s",
        "daemon.cancel_deadline_ms",
        "instruments[NOPEUSDT].symbol",
        "layout.pipeline.core",
        "journal.segment_size_mib",
    ] {
        assert!(keys.contains(&key), "{key} missing:\n{errors}");
    }
    assert_eq!(errors.problems.len(), 6, "{errors}");
    // One line per problem: "<file>: <key>: <problem>".
    let printed = errors.to_string();
    let file = setup.path("levibot.toml").display().to_string();
    assert_eq!(printed.lines().count(), 6);
    assert!(
        printed.lines().all(|l| l.starts_with(&format!("{file}: "))),
        "{printed}"
    );
}

#[test]
fn an_unreadable_file_is_one_problem() {
    let errors = config::load(Path::new("/nonexistent/levibot.toml")).unwrap_err();
    assert_eq!(errors.problems.len(), 1);
    assert_eq!(errors.problems[0].key, "");
    assert!(
        errors
            .to_string()
            .starts_with("/nonexistent/levibot.toml: "),
        "{errors}"
    );
}

#[test]
fn a_reload_may_change_only_limits_and_strategy_parameters() {
    let setup = Setup::new();
    let old = setup.load(&setup.example(&[])).unwrap();
    let limits = setup
        .load(&setup.example(&[
            ("loss_max = \"1000\"", "loss_max = \"250\""),
            ("collar_bps = 500", "collar_bps = 300"),
            ("half_spread_ticks = 2", "half_spread_ticks = 5"),
            ("# Distance from the fair price", "# changed comment"),
        ]))
        .unwrap();
    old.reloadable_change(&limits).unwrap();
    assert_eq!(limits.risk_limits.loss_max, quote(250));

    let core = *available_cores().last().unwrap();
    let spread = setup
        .load(&setup.example(&[(
            &format!("kind = \"fused\"\npipeline = {{ core = {core}, idle = \"busy_spin\" }}"),
            "kind = \"spread\"\nfeed = {}\nstrategy = {}\nrisk = {}\ngateway = {}",
        )]))
        .unwrap_or_else(|e| panic!("{e}"));
    let errors = old.reloadable_change(&spread).unwrap_err();
    assert_problem(&errors, "layout.kind", &["changed", "restart"]);

    let logs = setup
        .load(&setup.example(&[("log_level = \"info\"", "log_level = \"debug\"")]))
        .unwrap();
    let errors = old.reloadable_change(&logs).unwrap_err();
    assert_problem(&errors, "daemon.log_level", &["info", "debug", "restart"]);
    assert_eq!(errors.problems.len(), 1, "{errors}");
}

#[test]
fn the_features_section_sets_their_parameters_and_journal_and_names_bad_values() {
    let setup = Setup::new();
    let example = setup.load(&setup.example(&[])).unwrap();
    assert_eq!(example.features, FeatureSettings::default());
    let set = setup
        .load(&setup.example(&[
            ("journal = \"off\"", "journal = \"250ms\""),
            ("mid_half_life_ms = 1000", "mid_half_life_ms = 2000"),
            ("atr_source = \"mid\"", "atr_source = \"trade\""),
        ]))
        .unwrap();
    assert_eq!(
        set.features.journal,
        FeatureCadence::Every {
            interval_ns: 250_000_000
        }
    );
    assert_eq!(set.features.config.mid_half_life_ns, 2_000_000_000);
    assert_eq!(set.features.config.atr_source, BarSource::Trade);
    assert_eq!(
        set.features.config.atr_bars,
        FeatureConfig::DEFAULT.atr_bars
    );
    // Changing them needs a restart: the books' features would start over.
    let errors = example.reloadable_change(&set).unwrap_err();
    assert_problem(&errors, "features", &["changed", "restart"]);

    let errors = setup.errors(&setup.example(&[
        ("journal = \"off\"", "journal = \"often\""),
        ("atr_bars = 14", "atr_bars = 0"),
        ("atr_source = \"mid\"", "atr_source = \"last\""),
        (
            "trade_flow_half_life_ms = 5000",
            "trade_flow_half_life_ms = \"5s\"",
        ),
    ]));
    assert_problem(&errors, "features.journal", &["often", "\"book\"", "100ms"]);
    assert_problem(&errors, "features.atr_bars", &["0 is outside 1..=10000"]);
    assert_problem(&errors, "features.atr_source", &["\"mid\" or \"trade\""]);
    assert_problem(&errors, "features.trade_flow_half_life_ms", &["integer"]);
    let errors = setup.errors(&setup.example(&[("journal = \"off\"", "journal = \"0ms\"")]));
    assert_problem(&errors, "features.journal", &["between 1ms and 3600s"]);
}

#[test]
fn levictl_set_edits_one_risk_limit_and_revalidates() {
    let setup = Setup::new();
    let config = setup.load(&setup.example(&[])).unwrap();

    let lower = config.with_limit_set("risk.loss_max", "500").unwrap();
    assert_eq!(lower.risk_limits.loss_max, quote(500));
    assert!(lower.text.contains("loss_max = \"500\""), "{}", lower.text);
    assert!(
        lower.text.contains("# Largest loss (realised"),
        "comments are kept"
    );
    config.reloadable_change(&lower).unwrap();

    let narrow = lower
        .with_limit_set("instruments.NKNUSDT.collar_bps", "300")
        .unwrap();
    let nkn = narrow.risk_limits.instruments[0].unwrap();
    assert_eq!(nkn.collar_bps, 300);
    assert_eq!(
        narrow.risk_limits.loss_max,
        quote(500),
        "the first edit stays"
    );
    let same = lower
        .with_limit_set("instruments[NKNUSDT].collar_bps", "300")
        .unwrap();
    assert_eq!(same.text, narrow.text);
    let rate = config
        .with_limit_set("risk.order_rate.count_max", "10")
        .unwrap();
    assert_eq!(rate.risk_limits.order_rate.count_max, 10);

    let refused = |key: &str, value: &str| config.with_limit_set(key, value).unwrap_err();
    assert_problem(&refused("risk.nope", "1"), "risk.nope", &["not a settable"]);
    assert_problem(
        &refused("daemon.log_level", "debug"),
        "daemon.log_level",
        &["not a settable"],
    );
    assert_problem(
        &refused("instruments.NKNUSDT.collar_bps", "0"),
        "instruments[NKNUSDT].collar_bps",
        &["outside 1..=10000"],
    );
    assert_problem(
        &refused("instruments.NKNUSDT.collar_bps", "wide"),
        "instruments[NKNUSDT].collar_bps",
        &["not an integer"],
    );
    assert_problem(
        &refused("risk.loss_state", "active"),
        "risk.loss_state",
        &["reduce_only"],
    );
}

#[test]
fn an_empty_journal_halts_unless_told_to_trade() {
    let setup = Setup::new();
    let line = "empty_journal = \"halt\"\n";
    let config = setup
        .load(&setup.example(&[(line, "")]))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        config.daemon.empty_journal,
        EmptyJournal::Halt,
        "the default"
    );
    let trade = setup
        .load(&setup.example(&[(line, "empty_journal = \"trade\"\n")]))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(trade.daemon.empty_journal, EmptyJournal::Trade);
    // Needs a restart, as every [daemon] key.
    let errors = config.reloadable_change(&trade).unwrap_err();
    assert_problem(&errors, "daemon.empty_journal", &["restart"]);

    let errors = setup.errors(&setup.example(&[(line, "empty_journal = \"resume\"\n")]));
    assert_problem(
        &errors,
        "daemon.empty_journal",
        &["\"resume\"", "\"halt\"", "\"trade\""],
    );
    assert_eq!(errors.problems.len(), 1, "{errors}");
    let errors = setup.errors(&setup.example(&[(line, "empty_journal = true\n")]));
    assert_problem(&errors, "daemon.empty_journal", &["expected", "boolean"]);
}

#[test]
fn the_ops_group_must_exist_when_named() {
    let setup = Setup::new();
    let commented = "# control_ops_group = \"levibot-ops\"";
    let errors = setup
        .errors(&setup.example(&[(commented, "control_ops_group = \"levibot-no-such-group\"")]));
    assert_problem(
        &errors,
        "daemon.control_ops_group",
        &["no group \"levibot-no-such-group\" in /etc/group"],
    );
    assert_eq!(errors.problems.len(), 1, "{errors}");

    // Every Linux machine has root.
    let root = setup
        .load(&setup.example(&[(commented, "control_ops_group = \"root\"")]))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(root.daemon.control_ops_group, "root");
    assert_eq!(root.daemon.control_ops_gid, Some(0));

    // Left out: the default group if this machine has it, and no problem if it does not.
    let default = setup
        .load(&setup.example(&[]))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(default.daemon.control_ops_gid, gid_of("levibot-ops"));
    let errors = default.reloadable_change(&root).unwrap_err();
    assert_problem(&errors, "daemon.control_ops_group", &["root", "restart"]);

    for (bad, says) in [
        ("\"0\"", "gid"),
        ("\"ops:x\"", "not a group name"),
        ("7", "string"),
    ] {
        let errors =
            setup.errors(&setup.example(&[(commented, &format!("control_ops_group = {bad}"))]));
        assert_problem(&errors, "daemon.control_ops_group", &[says]);
    }
}

#[test]
fn the_timeouts_fit_in_the_units() {
    let setup = Setup::new();
    // A stop: the cancel deadline, then the agents and the journal, within TimeoutStopSec.
    let errors = setup
        .errors(&setup.example(&[("cancel_deadline_ms = 5000", "cancel_deadline_ms = 25000")]));
    assert_problem(
        &errors,
        "daemon.cancel_deadline_ms",
        &[
            "25000",
            "1..=20000",
            "TimeoutStopSec=30s",
            "levibot.service",
        ],
    );
    assert_eq!(errors.problems.len(), 1, "{errors}");

    // A start: the start timeout, then a mass status and a cancel-all, within TimeoutStartSec.
    let errors =
        setup.errors(&setup.example(&[("start_timeout_ms = 30000", "start_timeout_ms = 110000")]));
    assert_problem(
        &errors,
        "daemon.start_timeout_ms",
        &[
            "110000",
            "cancel_deadline_ms (5000)",
            "120000",
            "TimeoutStartSec=120s",
            "levibot.service",
            "at most 100000",
        ],
    );
    assert_eq!(errors.problems.len(), 1, "{errors}");
    let errors =
        setup.errors(&setup.example(&[("start_timeout_ms = 30000", "start_timeout_ms = 600000")]));
    assert_problem(
        &errors,
        "daemon.start_timeout_ms",
        &["600000 is outside 1..=110000", "TimeoutStartSec=120s"],
    );

    // The limits themselves are accepted.
    let edge = setup
        .load(&setup.example(&[
            ("cancel_deadline_ms = 5000", "cancel_deadline_ms = 20000"),
            ("start_timeout_ms = 30000", "start_timeout_ms = 70000"),
        ]))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(edge.daemon.cancel_deadline, Duration::from_secs(20));
    assert_eq!(edge.daemon.start_timeout, Duration::from_secs(70));
    setup
        .load(&setup.example(&[("start_timeout_ms = 30000", "start_timeout_ms = 100000")]))
        .unwrap_or_else(|e| panic!("{e}"));
}

/// A systemd time span as the unit writes it (`120s`, `2min`, `90`), in seconds.
fn seconds(span: &str) -> u64 {
    let span = span.trim();
    let (number, unit) = span.split_at(
        span.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(span.len()),
    );
    let n: u64 = number.parse().unwrap_or_else(|e| panic!("{span:?}: {e}"));
    match unit.trim() {
        "" | "s" | "sec" => n,
        "min" | "m" => n * 60,
        other => panic!("{span:?}: unit {other:?} not handled here"),
    }
}

#[test]
fn the_unit_timeouts_are_the_services() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd/levibot.service");
    let unit = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let setting = |name: &str| {
        let found: Vec<u64> = unit
            .lines()
            .filter_map(|l| l.trim().strip_prefix(name)?.strip_prefix('='))
            .map(seconds)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "{name}= once in {}: {found:?}",
            path.display()
        );
        found[0]
    };
    assert_eq!(setting("TimeoutStartSec"), UNIT_TIMEOUT_START_S);
    assert_eq!(setting("TimeoutStopSec"), UNIT_TIMEOUT_STOP_S);
    // Neither a refused config nor a full journal is restarted: either would only loop.
    let prevent: Vec<&str> = unit
        .lines()
        .filter_map(|l| l.trim().strip_prefix("RestartPreventExitStatus="))
        .flat_map(str::split_whitespace)
        .collect();
    let journal_full = levibot_shm::codes::halt_reason::JOURNAL_EXIT_STATUS.to_string();
    for status in ["2", journal_full.as_str()] {
        assert!(
            prevent.contains(&status),
            "RestartPreventExitStatus= lacks {status}: {prevent:?}"
        );
    }
}

#[test]
fn retention_must_fit_in_the_journals_filesystem() {
    let Some(tmpfs) = levibot_testkit::Tmpfs::mount("16m") else {
        return;
    };
    let setup = Setup::new();
    // The journal in the 16 MiB tmpfs, not made yet: its mount point is what is examined.
    let dir = format!("dir = \"{}\"", setup.path("journal").display());
    let small = format!("dir = \"{}/levibot\"", tmpfs.path().display());
    let segments_of = |mib: u32| {
        (
            "segment_size_mib = 64".to_owned(),
            format!("segment_size_mib = {mib}"),
        )
    };
    let load = |edits: &[(String, String)]| {
        let mut all = vec![(dir.clone(), small.clone())];
        all.extend_from_slice(edits);
        let pairs: Vec<(&str, &str)> = all.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        setup.load(&setup.example(&pairs))
    };
    let total = |mib: &str| ("max_total_mib = 4096".to_owned(), mib.to_owned());

    // 64 MiB of segments can never be kept in 16 MiB.
    let errors = load(&[segments_of(1), total("max_total_mib = 64")]).unwrap_err();
    assert_problem(
        &errors,
        "journal.retention.max_total_mib",
        &["64 MiB", "tmpfs, 16 MiB", "retention", "at most 14 MiB"],
    );
    assert_eq!(errors.problems.len(), 1, "{errors}");
    // What fits is accepted.
    let fits =
        load(&[segments_of(1), total("max_total_mib = 14")]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(fits.journal.retention.max_total_bytes, Some(14 << 20));
    // Left out: half the filesystem rather than 4096.
    let default = load(&[segments_of(1), total("")]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(default.journal.retention.max_total_bytes, Some(8 << 20));
    // Waiting for the archive: the hard limit must fit too; left out, what fits.
    let archive = (
        "# archive_watermark = \"/var/lib/levibot-archiver/archived.watermark\"".to_owned(),
        "archive_watermark = \"/nonexistent/archived.watermark\"".to_owned(),
    );
    let hard = |mib: u32| {
        (
            "# hard_max_total_mib = 8192".to_owned(),
            format!("hard_max_total_mib = {mib}"),
        )
    };
    let errors = load(&[
        segments_of(1),
        total("max_total_mib = 8"),
        archive.clone(),
        hard(15),
    ])
    .unwrap_err();
    assert_problem(
        &errors,
        "journal.retention.hard_max_total_mib",
        &["15 MiB does not fit", "at most 14 MiB"],
    );
    let waits = load(&[segments_of(1), total("max_total_mib = 8"), archive])
        .unwrap_or_else(|e| panic!("{e}"));
    let gate = waits.journal.retention.archive.expect("waits");
    assert_eq!(
        gate.hard_max_total_bytes,
        14 << 20,
        "twice 8 MiB does not fit"
    );
    // Segments too large to keep three (and the counters file): the segment size is named.
    let errors = load(&[segments_of(8), total("max_total_mib = 16")]).unwrap_err();
    assert_problem(
        &errors,
        "journal.segment_size_mib",
        &["8 MiB segments", "tmpfs, 16 MiB", "three"],
    );
    assert_eq!(errors.problems.len(), 1, "{errors}");
    // The example's 64 MiB segments and 4096 MiB: the segments first.
    let errors = load(&[]).unwrap_err();
    assert_problem(&errors, "journal.segment_size_mib", &["64 MiB segments"]);
}

/// `parse_with` for the fuzzer and offline checks: host names are checked for their form but
/// not looked up, and nothing outside `files_under` is opened or inspected.
#[test]
fn parse_with_can_skip_dns_and_confine_files() {
    let setup = Setup::new();
    let offline = config::ParseOptions {
        resolve_hosts: false,
        files_under: Some(setup.dir.path().to_owned()),
    };
    let parse = |text: &str| config::parse_with(text, &setup.path("levibot.toml"), &offline);
    // A name that no resolver knows is accepted without a lookup; IP literals keep their address.
    let text = setup.example(&[
        ("ws://127.0.0.1:9443", "ws://md.levibot.invalid:9443"),
        ("tcp://127.0.0.1:9878", "tcp://[::1]:9878"),
    ]);
    let parsed = parse(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(parsed.market_data.addr, "0.0.0.0:9443".parse().unwrap());
    assert_eq!(parsed.market_data.host, "md.levibot.invalid:9443");
    assert_eq!(parsed.order_entry.addr, "[::1]:9878".parse().unwrap());
    // A host that is not a name is refused under its key, unresolved.
    let errors =
        parse(&setup.example(&[("tcp://127.0.0.1:9878", "tcp://bad_host!:9878")])).unwrap_err();
    assert_problem(&errors, "venue.order_entry.url", &["not a host name"]);
    // Files outside the directory are problems under their keys, never opened.
    let errors = parse(&setup.example(&[
        ("\"exchangeInfo.json\"", "\"/etc/passwd\""),
        (
            "[venue]\n",
            "[venue]\ncredentials = \"../credentials.toml\"\n",
        ),
    ]))
    .unwrap_err();
    assert_problem(&errors, "venue.exchange_info", &["/etc/passwd", "outside"]);
    assert_problem(&errors, "venue.credentials", &["outside"]);
    // So is the journal's default directory.
    let journal = setup.path("journal").display().to_string();
    let errors = parse(&setup.example(&[(&format!("dir = \"{journal}\"\n"), "")])).unwrap_err();
    assert_problem(&errors, "journal.dir", &["/dev/shm/levibot", "outside"]);
}

#[test]
fn the_rest_url_has_its_own_host_and_port_or_follows_the_stream_url() {
    let setup = Setup::new();
    // Left out: the stream URL's host and port, over plain HTTP as the stream is plain ws://.
    let derived = setup.load(&setup.example(&[])).unwrap();
    // The feed's request weight comes from the exchangeInfo's rateLimits (6000 a minute).
    let weight = derived
        .request_weight
        .expect("rateLimits in the exchangeInfo");
    assert_eq!((weight.limit, weight.window.as_secs()), (6000, 60));
    let md = &derived.market_data;
    assert_eq!(md.rest_url, None);
    assert_eq!(md.rest.addr, "127.0.0.1:9443".parse().unwrap());
    assert_eq!(md.rest.host, "127.0.0.1:9443");
    assert!(md.rest.tls.is_none() && md.tls.is_none());

    let rest_line = "# rest_url = \"http://127.0.0.1:9443\"";
    let own = setup
        .load(&setup.example(&[(rest_line, "rest_url = \"http://127.0.0.1:8080\"")]))
        .unwrap();
    let md = &own.market_data;
    assert_eq!(md.rest_url.as_deref(), Some("http://127.0.0.1:8080"));
    assert_eq!(md.rest.addr, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(md.addr, "127.0.0.1:9443".parse().unwrap());
    // HTTPS for REST while the streams are plain: TLS (the web's roots) for REST only.
    let https = setup
        .load(&setup.example(&[(rest_line, "rest_url = \"https://127.0.0.1\"")]))
        .unwrap();
    assert_eq!(
        https.market_data.rest.addr,
        "127.0.0.1:443".parse().unwrap()
    );
    assert!(https.market_data.rest.tls.is_some() && https.market_data.tls.is_none());
    assert_eq!(
        https.market_data.rest.host, "127.0.0.1",
        "the Host header drops the default port"
    );

    for (url, words) in [
        ("ftp://127.0.0.1:21", &["scheme", "http://"][..]),
        (
            "http://127.0.0.1:8080/api/v3",
            &["path", "http[s]://host[:port]"][..],
        ),
        ("http://127.0.0.1:0", &["port"][..]),
        ("http://:80", &["no host"][..]),
    ] {
        let errors = setup.errors(&setup.example(&[(rest_line, &format!("rest_url = \"{url}\""))]));
        assert_problem(&errors, "venue.market_data.rest_url", words);
    }
    // Where the books come from is not a limit: a reload refuses to change it.
    let errors = derived.reloadable_change(&own).unwrap_err();
    assert_problem(&errors, "venue.market_data.rest_url", &["restart"]);
}

#[test]
fn the_feed_replaces_its_connection_before_binances_24_hours() {
    let setup = Setup::new();
    let example = setup.load(&setup.example(&[])).unwrap();
    let day = Duration::from_secs(23 * 3600 + 30 * 60);
    assert_eq!(example.market_data.reconnect_after, day);
    let line = "reconnect_after_s = 84600";
    let left_out = setup.load(&setup.example(&[(line, "")])).unwrap();
    assert_eq!(left_out.market_data.reconnect_after, day);
    let short = setup
        .load(&setup.example(&[(line, "reconnect_after_s = 2")]))
        .unwrap();
    assert_eq!(short.market_data.reconnect_after, Duration::from_secs(2));
    for bad in ["0", "86401", "\"1h\""] {
        let errors = setup.errors(&setup.example(&[(line, &format!("reconnect_after_s = {bad}"))]));
        assert_problem(&errors, "venue.market_data.reconnect_after_s", &[]);
    }
    let errors = example.reloadable_change(&short).unwrap_err();
    assert_problem(&errors, "venue.market_data.reconnect_after_s", &["restart"]);
}

/// Found by the config fuzzer (`fuzz/regressions/config/empty-quoted-table-name`): `['']` was an
/// unknown key reported under an empty key path, so the operator's line named no key. A key that
/// is not a bare TOML name is quoted as TOML writes it.
#[test]
fn a_key_that_is_not_a_bare_name_is_quoted_in_its_problem() {
    let setup = Setup::new();
    let errors = setup.errors(&format!("{}\n['']\n", setup.example(&[])));
    assert_problem(&errors, "\"\"", &["unknown key"]);
    let errors = setup.errors(&setup.example(&[(
        "[venue.market_data]\n",
        "[venue.market_data]\n\"a.b c\" = 1\n",
    )]));
    assert_problem(&errors, "venue.market_data.\"a.b c\"", &["unknown key"]);
    assert!(
        errors.problems.iter().all(|p| !p.key.is_empty()),
        "{errors}"
    );
}

#[test]
fn retention_that_waits_for_the_archive_names_its_keys() {
    let setup = Setup::new();
    let watermark = "# archive_watermark = \"/var/lib/levibot-archiver/archived.watermark\"";
    let hard = "# hard_max_total_mib = 8192";
    // Left out (the example): prune by age and size alone.
    let config = setup.load(&setup.example(&[])).unwrap();
    assert_eq!(config.journal.retention.archive, None);

    // The watermark named, the hard limit given.
    let on = watermark.trim_start_matches("# ");
    let config = setup
        .load(&setup.example(&[(watermark, on), (hard, "hard_max_total_mib = 6000")]))
        .unwrap_or_else(|e| panic!("{e}"));
    let gate = config
        .journal
        .retention
        .archive
        .expect("waits for the archive");
    assert_eq!(
        gate.watermark,
        Path::new("/var/lib/levibot-archiver/archived.watermark")
    );
    assert_eq!(gate.hard_max_total_bytes, 6000 << 20);
    // Left out: twice max_total_mib (the scratch dir's filesystem holds 8 GiB and more, or
    // the most it holds).
    let config = setup.load(&setup.example(&[(watermark, on)])).unwrap();
    let gate = config.journal.retention.archive.unwrap();
    assert!(
        gate.hard_max_total_bytes <= 8192 << 20 && gate.hard_max_total_bytes >= 4096 << 20,
        "{gate:?}"
    );

    // Below the soft limit.
    let errors =
        setup.errors(&setup.example(&[(watermark, on), (hard, "hard_max_total_mib = 100")]));
    assert_problem(
        &errors,
        "journal.retention.hard_max_total_mib",
        &["100 MiB", "below max_total_mib (4096 MiB)"],
    );
    // A hard limit with no archive to wait for.
    let errors = setup.errors(&setup.example(&[(hard, "hard_max_total_mib = 6000")]));
    assert_problem(
        &errors,
        "journal.retention.hard_max_total_mib",
        &["only with archive_watermark"],
    );
    // Misspelt, and of the wrong type: each names its key.
    let errors = setup.errors(&setup.example(&[(
        watermark,
        "archive_watermarks = \"/var/lib/levibot-archiver/archived.watermark\"",
    )]));
    assert_problem(
        &errors,
        "journal.retention.archive_watermarks",
        &["unknown key"],
    );
    let errors = setup.errors(&setup.example(&[(watermark, "archive_watermark = 1")]));
    assert_problem(&errors, "journal.retention.archive_watermark", &["path"]);
    assert_eq!(errors.problems.len(), 1, "{errors}");
}
