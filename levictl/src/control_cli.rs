//! `levictl status|kill|resume|reload|set`: one request on the daemon's control socket
//! (`levibot_control`).
//!
//! The socket is `--socket` (or `$LEVIBOT_SOCKET`), else `control.sock` in the journal
//! directory. Exit codes: 0 the daemon did it; 1 the daemon refused (its reason on stderr);
//! 2 the daemon could not be reached, did not let us in, or did not understand (the error and
//! what to do on stderr); 3 (`kill` only) the daemon took the kill but could not confirm
//! everything: orders still open at its cancel deadline, or the halt itself (what is confirmed
//! on stdout, the warning on stderr). clap's usage errors are 2 as well.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use levibot_control::{self as control, ControlError, KillReport, Request, Response, StatusReport};

/// `levictl kill`'s exit status when the daemon took the kill but could not confirm everything.
pub const KILL_UNCONFIRMED_EXIT: u8 = 3;
/// `levictl kill --help`: what its exit statuses mean.
pub const KILL_EXIT_HELP: &str = "Exit status:
  0  trading halted and every cancel confirmed by the venue
  3  the kill was taken but not everything is confirmed: orders still open at the daemon's
     cancel deadline, or the halt itself; check the venue before anything else
  1  the daemon refused
  2  the daemon could not be asked (no daemon, no permission, no answer in time: then the
     kill may still be in progress; see `levictl status`)";

/// The environment variable that names the control socket.
pub const SOCKET_ENV: &str = "LEVIBOT_SOCKET";
/// How long a command other than `kill` waits for the daemon.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `kill` waits by default: the daemon answers once the venue confirmed the cancels
/// or its cancel deadline passed.
const KILL_TIMEOUT_S_DEFAULT: u64 = 120;

#[derive(clap::Args, Debug)]
pub struct SocketArgs {
    /// The daemon's control socket [default: control.sock in the journal directory].
    #[arg(long, env = SOCKET_ENV, value_name = "PATH")]
    pub socket: Option<PathBuf>,
}

impl SocketArgs {
    fn path(&self, journal: &Path) -> PathBuf {
        self.socket
            .clone()
            .unwrap_or_else(|| levibot_shm::paths::control_socket_path(journal))
    }
}

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub socket: SocketArgs,
    /// Print the daemon's status report as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct KillArgs {
    #[command(flatten)]
    pub socket: SocketArgs,
    /// Print the daemon's response as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// How long to wait for the daemon's answer, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = KILL_TIMEOUT_S_DEFAULT)]
    pub timeout_s: u64,
}

#[derive(clap::Args, Debug)]
pub struct ResumeArgs {
    #[command(flatten)]
    pub socket: SocketArgs,
    /// Print the daemon's response as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct ReloadArgs {
    #[command(flatten)]
    pub socket: SocketArgs,
    /// Print the daemon's response as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct SetArgs {
    #[command(flatten)]
    pub socket: SocketArgs,
    /// Print the daemon's response as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// The setting, e.g. `risk.loss_max`.
    pub key: String,
    /// Its new value, e.g. `500` (the daemon checks it).
    #[arg(allow_hyphen_values = true)]
    pub value: String,
}

pub fn status(args: &StatusArgs, journal: &Path) -> anyhow::Result<ExitCode> {
    let path = args.socket.path(journal);
    let response = match control::request(&path, &Request::Status, REQUEST_TIMEOUT) {
        Ok(response) => response,
        Err(e) => return Ok(failed(&e)),
    };
    let Some(report) = response.status else {
        eprintln!(
            "levictl: the daemon at {} answered status without a report",
            path.display()
        );
        return Ok(ExitCode::from(2));
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", render_status(&report));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn kill(args: &KillArgs, journal: &Path) -> anyhow::Result<ExitCode> {
    let path = args.socket.path(journal);
    // `exchange`: a kill that could not confirm everything is not `ok`, and its report is
    // what the operator needs most.
    let answer = control::exchange(&path, &Request::Kill, Duration::from_secs(args.timeout_s));
    match answer.map(|response| (response.kill.clone(), response)) {
        Ok((Some(report), response)) => {
            if args.json {
                println!("{}", serde_json::to_string(&response)?);
            } else {
                print!("{}", render_kill(&report));
            }
            if response.ok {
                return Ok(ExitCode::SUCCESS);
            }
            if !report.halted {
                eprintln!(
                    "levictl: trading is NOT confirmed halted: the daemon's agents did not take \
                     the halt; stop the daemon (systemctl stop levibot) and check the venue"
                );
            }
            if report.unconfirmed > 0 {
                eprintln!(
                    "levictl: {} order(s) still UNCONFIRMED after the {} ms deadline: nobody \
                     can vouch for them; check them at the venue before you resume",
                    report.unconfirmed, report.deadline_ms
                );
            }
            Ok(ExitCode::from(KILL_UNCONFIRMED_EXIT))
        }
        // A daemon that did not take the kill, or one without reports.
        Ok((None, response)) => match control::into_result(&path, response) {
            Ok(response) => print_response(&response, args.json),
            Err(e) => Ok(failed(&e)),
        },
        Err(e @ ControlError::Timeout { .. }) => {
            let code = failed(&e);
            eprintln!(
                "levictl: the kill may still be in progress: check `levictl status` \
                 (trading state, open orders)"
            );
            Ok(code)
        }
        Err(e) => Ok(failed(&e)),
    }
}

pub fn resume(args: &ResumeArgs, journal: &Path) -> anyhow::Result<ExitCode> {
    simple(&args.socket.path(journal), &Request::Resume, args.json)
}

pub fn reload(args: &ReloadArgs, journal: &Path) -> anyhow::Result<ExitCode> {
    simple(&args.socket.path(journal), &Request::Reload, args.json)
}

pub fn set(args: &SetArgs, journal: &Path) -> anyhow::Result<ExitCode> {
    let request = Request::Set {
        key: args.key.clone(),
        value: args.value.clone(),
    };
    simple(&args.socket.path(journal), &request, args.json)
}

fn simple(path: &Path, request: &Request, json: bool) -> anyhow::Result<ExitCode> {
    match control::request(path, request, REQUEST_TIMEOUT) {
        Ok(response) => print_response(&response, json),
        Err(e) => Ok(failed(&e)),
    }
}

fn print_response(response: &Response, json: bool) -> anyhow::Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string(response)?);
    } else if !response.message.is_empty() {
        println!("{}", response.message);
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints why, and picks the exit code: 1 if the daemon refused, 2 if we could not ask.
fn failed(error: &ControlError) -> ExitCode {
    eprintln!("levictl: {error}");
    match error {
        ControlError::Refused { .. } => ExitCode::from(1),
        _ => ExitCode::from(2),
    }
}

/// The human summary of `levictl status`.
pub fn render_status(r: &StatusReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "levibotd {} (pid {}), up {}",
        r.version,
        r.pid,
        duration(r.uptime_s)
    );
    let _ = writeln!(out, "phase          {}", r.phase);
    let _ = writeln!(out, "trading state  {}", r.trading_state);
    if !r.halt_reason.is_empty() && r.halt_reason != "none" {
        let detail = if r.halt_detail.is_empty() {
            String::new()
        } else {
            format!(" — {}", r.halt_detail)
        };
        let _ = writeln!(
            out,
            "halted by the daemon: {}{detail}; resume with levictl resume",
            r.halt_reason
        );
    }
    let session = |s: &control::SessionStatus| {
        format!(
            "{} (connects {}, disconnects {})",
            if s.connected {
                "connected"
            } else {
                "DISCONNECTED"
            },
            s.connects,
            s.disconnects
        )
    };
    let _ = writeln!(out, "market data    {}", session(&r.market_data));
    let _ = writeln!(out, "order entry    {}", session(&r.order_entry));
    let _ = writeln!(out, "journal        {}", r.journal_dir);
    let _ = writeln!(out, "config         {}", r.config_path);
    if r.instruments.is_empty() {
        let _ = writeln!(out, "instruments    none");
    } else {
        let header = [
            "SYMBOL",
            "POSITION",
            "OPEN",
            "REALISED PNL",
            "PNL",
            "BID",
            "ASK",
        ];
        let rows: Vec<[String; 7]> = r
            .instruments
            .iter()
            .map(|i| {
                [
                    i.symbol.clone(),
                    i.position.clone(),
                    i.open_orders.to_string(),
                    i.realised_pnl.clone(),
                    i.pnl.clone(),
                    i.bid.clone().unwrap_or_else(|| "-".into()),
                    i.ask.clone().unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.len());
            }
        }
        let line = |cells: &[&str]| {
            let mut line = String::from(" ");
            for (n, (cell, width)) in cells.iter().zip(widths).enumerate() {
                // The symbol reads left to right; numbers line up on the right.
                if n == 0 {
                    let _ = write!(line, " {cell:<width$}");
                } else {
                    let _ = write!(line, "  {cell:>width$}");
                }
            }
            line
        };
        let _ = writeln!(out, "instruments");
        let _ = writeln!(out, "{}", line(&header));
        for row in &rows {
            let cells: Vec<&str> = row.iter().map(String::as_str).collect();
            let _ = writeln!(out, "{}", line(&cells));
        }
        let symbol_width = widths[0];
        let models: Vec<_> = r
            .instruments
            .iter()
            .filter_map(|i| i.model.as_ref().map(|m| (&i.symbol, m)))
            .collect();
        if !models.is_empty() {
            let _ = writeln!(out, "models");
        }
        for (symbol, m) in models {
            let what = if m.sha256.is_empty() {
                "weights (no model)".to_owned()
            } else {
                format!("sha256 {}  {}", m.sha256, m.path)
            };
            let pending = if m.in_use {
                ""
            } else {
                "  (pending: the strategy takes it at its next event)"
            };
            let _ = writeln!(out, "  {symbol:<symbol_width$}  {what}{pending}");
        }
    }
    let _ = writeln!(
        out,
        "totals         open orders {}, orders sent {}, fills {}, rejects {}, reloads {}",
        r.open_orders, r.orders_sent, r.fills, r.rejects, r.reloads
    );
    out
}

/// What `levictl kill` confirms, one fact a line.
pub fn render_kill(r: &KillReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "halted                 {}",
        if r.halted { "yes" } else { "NO" }
    );
    let _ = writeln!(out, "open orders at kill    {}", r.open_before);
    let _ = writeln!(
        out,
        "cancels confirmed      {} (by the venue, in {} ms)",
        r.cancelled_confirmed, r.elapsed_ms
    );
    let unconfirmed = if r.unconfirmed == 0 {
        "0".to_owned()
    } else {
        format!(
            "{} (still open at the {} ms deadline)",
            r.unconfirmed, r.deadline_ms
        )
    };
    let _ = writeln!(out, "unconfirmed            {unconfirmed}");
    out
}

/// `3d04h05m06s`, leading zero units left out.
fn duration(seconds: u64) -> String {
    let (d, h, m, s) = (
        seconds / 86_400,
        seconds / 3600 % 24,
        seconds / 60 % 60,
        seconds % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m{s:02}s"),
        (0, _, _) => format!("{h}h{m:02}m{s:02}s"),
        _ => format!("{d}d{h:02}h{m:02}m{s:02}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use levibot_control::{InstrumentStatus, ModelStatus, SessionStatus};

    #[test]
    fn a_kill_report_says_what_is_confirmed() {
        let mut report = KillReport {
            halted: true,
            open_before: 3,
            cancelled_confirmed: 3,
            unconfirmed: 0,
            elapsed_ms: 40,
            deadline_ms: 5000,
        };
        assert_eq!(
            render_kill(&report),
            "halted                 yes\n\
             open orders at kill    3\n\
             cancels confirmed      3 (by the venue, in 40 ms)\n\
             unconfirmed            0\n"
        );
        report.cancelled_confirmed = 1;
        report.unconfirmed = 2;
        report.halted = false;
        let text = render_kill(&report);
        assert!(text.starts_with("halted                 NO\n"), "{text}");
        assert!(
            text.contains("unconfirmed            2 (still open at the 5000 ms deadline)"),
            "{text}"
        );
    }

    #[test]
    fn the_status_says_why_the_daemon_halted() {
        let mut report = StatusReport {
            trading_state: "halted".into(),
            halt_reason: "empty_journal".into(),
            halt_detail: "the journal was empty at start".into(),
            ..StatusReport::default()
        };
        let text = render_status(&report);
        assert!(
            text.contains(
                "trading state  halted\nhalted by the daemon: empty_journal — the journal was \
                 empty at start; resume with levictl resume\n"
            ),
            "{text}"
        );
        report.halt_reason = "none".into();
        assert!(!render_status(&report).contains("halted by"));
    }

    #[test]
    fn durations_read_like_uptime() {
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(61), "1m01s");
        assert_eq!(duration(3723), "1h02m03s");
        assert_eq!(duration(90_061), "1d01h01m01s");
    }

    #[test]
    fn the_status_has_one_line_per_instrument_in_columns() {
        let report = StatusReport {
            pid: 7,
            version: "0.1.0".into(),
            phase: "running".into(),
            trading_state: "halted".into(),
            uptime_s: 61,
            market_data: SessionStatus {
                connected: true,
                connects: 1,
                disconnects: 0,
            },
            instruments: vec![
                InstrumentStatus {
                    symbol: "NKNUSDT".into(),
                    position: "-120".into(),
                    open_orders: 2,
                    realised_pnl: "1.5".into(),
                    pnl: "1.75".into(),
                    bid: Some("0.0351".into()),
                    ask: None,
                    model: Some(ModelStatus {
                        sha256: "ab".repeat(32),
                        path: "/etc/levibot/model.json".into(),
                        in_use: false,
                    }),
                },
                InstrumentStatus {
                    symbol: "BTCUSDT".into(),
                    position: "0.001".into(),
                    model: Some(ModelStatus {
                        in_use: true,
                        ..ModelStatus::default()
                    }),
                    ..InstrumentStatus::default()
                },
            ],
            open_orders: 2,
            ..StatusReport::default()
        };
        let text = render_status(&report);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "levibotd 0.1.0 (pid 7), up 1m01s");
        assert!(text.contains("trading state  halted\n"), "{text}");
        assert!(
            text.contains("market data    connected (connects 1, disconnects 0)"),
            "{text}"
        );
        assert!(text.contains("order entry    DISCONNECTED"), "{text}");
        let header = lines.iter().position(|l| l.contains("SYMBOL")).unwrap();
        let nkn = lines[header + 1];
        let btc = lines[header + 2];
        assert!(nkn.starts_with("  NKNUSDT"), "{text}");
        assert!(nkn.ends_with("0.0351    -"), "{text}");
        assert_eq!(nkn.len(), btc.len(), "{text}");
        assert_eq!(lines[header].len(), nkn.len(), "{text}");
        assert_eq!(lines[header + 3], "models", "{text}");
        assert_eq!(
            lines[header + 4],
            format!(
                "  NKNUSDT  sha256 {}  /etc/levibot/model.json  (pending: the strategy takes it \
                 at its next event)",
                "ab".repeat(32)
            ),
            "{text}"
        );
        assert_eq!(lines[header + 5], "  BTCUSDT  weights (no model)", "{text}");
        assert!(
            lines
                .last()
                .unwrap()
                .starts_with("totals         open orders 2,")
        );
    }
}
