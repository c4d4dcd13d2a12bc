//! `levictl status|kill|resume|reload|set` as an operator runs them, against a control server
//! in this process with a fake daemon behind it: outputs and exit codes (0 done, 1 refused,
//! 2 could not ask).

use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use levibot_engine::daemon::control::{
    AccessPolicy, ControlHandler, ControlServer, InstrumentStatus, Peer, SessionStatus,
    StatusReport,
};

#[derive(Default)]
struct Fake {
    calls: Mutex<Vec<String>>,
}

impl Fake {
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

fn report() -> StatusReport {
    StatusReport {
        pid: 4242,
        version: "0.1.0".into(),
        phase: "running".into(),
        trading_state: "active".into(),
        uptime_s: 3723,
        journal_dir: "/dev/shm/levibot".into(),
        config_path: "/etc/levibot/levibot.toml".into(),
        market_data: SessionStatus {
            connected: true,
            connects: 1,
            disconnects: 0,
        },
        order_entry: SessionStatus {
            connected: true,
            connects: 1,
            disconnects: 0,
        },
        instruments: vec![InstrumentStatus {
            symbol: "NKNUSDT".into(),
            position: "-120".into(),
            open_orders: 2,
            realised_pnl: "1.2345".into(),
            pnl: "1.5".into(),
            bid: Some("0.0351".into()),
            ask: Some("0.0352".into()),
        }],
        open_orders: 2,
        orders_sent: 10,
        fills: 4,
        rejects: 1,
        reloads: 0,
    }
}

impl ControlHandler for Fake {
    fn status(&self) -> StatusReport {
        report()
    }
    fn kill(&self, _: &Peer) -> Result<String, String> {
        self.calls.lock().unwrap().push("kill".into());
        Ok("halted; 2 orders cancelled".into())
    }
    fn resume(&self, _: &Peer) -> Result<String, String> {
        self.calls.lock().unwrap().push("resume".into());
        Ok("trading resumed".into())
    }
    fn reload(&self, _: &Peer) -> Result<String, String> {
        self.calls.lock().unwrap().push("reload".into());
        Err("config line 3: risk.loss_max: not a decimal".into())
    }
    fn set(&self, _: &Peer, key: &str, value: &str) -> Result<String, String> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("set {key} {value}"));
        match key {
            "risk.loss_max" => Ok(format!("{key} = {value}")),
            _ => Err(format!("unknown setting {key}")),
        }
    }
}

/// A daemon stand-in at `control.sock` in a fresh directory.
fn daemon() -> (tempfile::TempDir, ControlServer, Arc<Fake>) {
    let dir = tempfile::tempdir().unwrap();
    let fake = Arc::new(Fake::default());
    let server = ControlServer::bind(
        &levibot_shm::paths::control_socket_path(dir.path()),
        0o660,
        AccessPolicy::default(),
        fake.clone(),
    )
    .unwrap();
    (dir, server, fake)
}

/// levictl with a clean environment: no inherited socket or journal.
fn levictl(socket: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_levictl"));
    command
        .env_remove("LEVIBOT_SOCKET")
        .env_remove("LEVIBOT_JOURNAL")
        .args(args)
        .arg("--socket")
        .arg(socket);
    command.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited, not killed")
}

#[test]
fn status_prints_the_report_as_json_and_as_a_summary() {
    let (_dir, server, _) = daemon();
    let out = levictl(server.path(), &["status", "--json"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let json: StatusReport = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(json, report());

    let out = levictl(server.path(), &["status"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let summary = text(&out.stdout);
    assert!(
        summary.starts_with("levibotd 0.1.0 (pid 4242), up 1h02m03s\n"),
        "{summary}"
    );
    assert!(summary.contains("phase          running\n"), "{summary}");
    assert!(summary.contains("trading state  active\n"), "{summary}");
    let nkn = summary.lines().find(|l| l.contains("NKNUSDT")).unwrap();
    for cell in ["-120", "2", "1.2345", "0.0351", "0.0352"] {
        assert!(nkn.contains(cell), "{nkn}");
    }
    assert!(
        summary.contains("open orders 2, orders sent 10, fills 4, rejects 1, reloads 0"),
        "{summary}"
    );
}

#[test]
fn commands_reach_the_daemon_and_refusals_exit_1() {
    let (_dir, server, fake) = daemon();
    let socket = server.path();

    let out = levictl(socket, &["kill"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "halted; 2 orders cancelled\n");

    let out = levictl(socket, &["kill", "--json"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(json["ok"], true);
    assert_eq!(json["protocol"], 1);
    assert_eq!(json["message"], "halted; 2 orders cancelled");

    let out = levictl(socket, &["set", "risk.loss_max", "5"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "risk.loss_max = 5\n");
    // A negative value is a value, not a flag.
    let out = levictl(socket, &["set", "risk.loss_max", "-5"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));

    let out = levictl(socket, &["set", "risk.nope", "1"]);
    assert_eq!(code(&out), 1);
    assert!(text(&out.stdout).is_empty());
    assert!(
        text(&out.stderr).contains("refused: unknown setting risk.nope"),
        "{}",
        text(&out.stderr)
    );

    let out = levictl(socket, &["reload"]);
    assert_eq!(code(&out), 1);
    assert!(
        text(&out.stderr).contains("not a decimal"),
        "{}",
        text(&out.stderr)
    );

    let out = levictl(socket, &["resume"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "trading resumed\n");

    assert_eq!(
        fake.calls(),
        [
            "kill",
            "kill",
            "set risk.loss_max 5",
            "set risk.loss_max -5",
            "set risk.nope 1",
            "reload",
            "resume"
        ]
    );
}

#[test]
fn the_socket_comes_from_the_journal_or_the_environment() {
    let (dir, server, fake) = daemon();
    let out = Command::new(env!("CARGO_BIN_EXE_levictl"))
        .env_remove("LEVIBOT_SOCKET")
        .arg("--journal")
        .arg(dir.path())
        .arg("resume")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let out = Command::new(env!("CARGO_BIN_EXE_levictl"))
        .env("LEVIBOT_JOURNAL", "/nonexistent")
        .env("LEVIBOT_SOCKET", server.path())
        .arg("resume")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(fake.calls(), ["resume", "resume"]);
}

#[test]
fn no_daemon_exits_2_with_hints() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("control.sock");
    for args in [&["status"][..], &["kill"], &["set", "risk.loss_max", "5"]] {
        let out = levictl(&socket, args);
        assert_eq!(code(&out), 2, "{args:?}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains(&socket.display().to_string()), "{stderr}");
        assert!(stderr.contains("is levibotd running?"), "{stderr}");
        assert!(stderr.contains("--socket"), "{stderr}");
        assert!(text(&out.stdout).is_empty());
    }

    // A dead daemon's socket file: nobody answers.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let out = levictl(&socket, &["status"]);
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains("is levibotd running?"));

    // Usage errors are 2 as well (clap's).
    let out = levictl(&socket, &["set", "risk.loss_max"]);
    assert_eq!(code(&out), 2);
}
