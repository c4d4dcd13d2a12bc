//! `levictl status|kill|resume|reload|set` as an operator runs them, against a control server
//! in this process with a fake daemon behind it: outputs and exit codes (0 done, 1 refused,
//! 2 could not ask, 3 a kill not fully confirmed).

use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use levibot_control::{
    AccessPolicy, ControlHandler, ControlServer, InstrumentStatus, KillReport, Peer, SessionStatus,
    StatusReport,
};

#[derive(Default)]
struct Fake {
    calls: Mutex<Vec<String>>,
    /// What the next kills report (default: everything confirmed).
    kill_report: Mutex<Option<KillReport>>,
    /// What status reports (default: [`report`]).
    status: Mutex<Option<StatusReport>>,
}

impl Fake {
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

/// Everything confirmed: two orders cancelled.
fn confirmed() -> KillReport {
    KillReport {
        halted: true,
        open_before: 2,
        cancelled_confirmed: 2,
        unconfirmed: 0,
        elapsed_ms: 12,
        deadline_ms: 5000,
    }
}

fn report() -> StatusReport {
    StatusReport {
        pid: 4242,
        version: "0.1.0".into(),
        phase: "running".into(),
        trading_state: "active".into(),
        halt_reason: "none".into(),
        halt_detail: String::new(),
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
            model: None,
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
        self.status.lock().unwrap().clone().unwrap_or_else(report)
    }
    fn kill(&self, _: &Peer) -> KillReport {
        self.calls.lock().unwrap().push("kill".into());
        self.kill_report
            .lock()
            .unwrap()
            .clone()
            .unwrap_or_else(confirmed)
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
    assert!(text(&out.stdout).starts_with("halted                 yes\n"));

    let out = levictl(socket, &["kill", "--json"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(json["ok"], true);
    assert_eq!(json["protocol"], 1);
    assert_eq!(json["message"], confirmed().message());

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
fn kill_exits_0_when_everything_is_confirmed_and_3_when_not() {
    let (_dir, server, fake) = daemon();
    let socket = server.path();

    let out = levictl(socket, &["kill"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "halted                 yes\n\
         open orders at kill    2\n\
         cancels confirmed      2 (by the venue, in 12 ms)\n\
         unconfirmed            0\n"
    );
    assert!(text(&out.stderr).is_empty(), "{}", text(&out.stderr));

    // The deadline passed with one order unconfirmed: the kill was taken, not completed.
    *fake.kill_report.lock().unwrap() = Some(KillReport {
        halted: true,
        open_before: 3,
        cancelled_confirmed: 2,
        unconfirmed: 1,
        elapsed_ms: 5001,
        deadline_ms: 5000,
    });
    let out = levictl(socket, &["kill"]);
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("halted                 yes\n"), "{stdout}");
    assert!(stdout.contains("open orders at kill    3\n"), "{stdout}");
    assert!(stdout.contains("cancels confirmed      2 "), "{stdout}");
    assert!(
        stdout.contains("unconfirmed            1 (still open at the 5000 ms deadline)"),
        "{stdout}"
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("1 order(s) still UNCONFIRMED after the 5000 ms deadline"),
        "{stderr}"
    );

    let out = levictl(socket, &["kill", "--json"]);
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(json["ok"], false);
    assert_eq!(json["kill"]["halted"], true);
    assert_eq!(json["kill"]["cancelled_confirmed"], 2);
    assert_eq!(json["kill"]["unconfirmed"], 1);

    // The halt itself not taken: 3 as well, and said so.
    *fake.kill_report.lock().unwrap() = Some(KillReport {
        halted: false,
        ..confirmed()
    });
    let out = levictl(socket, &["kill"]);
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("halted                 NO\n"));
    assert!(
        text(&out.stderr).contains("NOT confirmed halted"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(fake.calls(), ["kill", "kill", "kill", "kill"]);
}

#[test]
fn status_says_why_the_daemon_halted() {
    let (_dir, server, fake) = daemon();
    *fake.status.lock().unwrap() = Some(StatusReport {
        trading_state: "halted".into(),
        halt_reason: "empty_journal".into(),
        halt_detail: "the journal was empty at start: reconciled, waiting for an operator".into(),
        ..report()
    });
    let out = levictl(server.path(), &["status"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let summary = text(&out.stdout);
    assert!(
        summary.contains(
            "trading state  halted\nhalted by the daemon: empty_journal — the journal was empty \
             at start: reconciled, waiting for an operator; resume with levictl resume\n"
        ),
        "{summary}"
    );
    let out = levictl(server.path(), &["status", "--json"]);
    let json: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(json["halt_reason"], "empty_journal");

    // Not halted by the daemon: no such line.
    *fake.status.lock().unwrap() = None;
    let out = levictl(server.path(), &["status"]);
    assert!(
        !text(&out.stdout).contains("halted by"),
        "{}",
        text(&out.stdout)
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
