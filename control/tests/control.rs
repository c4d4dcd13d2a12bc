//! The control socket: every command, its limits, stale and live sockets, who may connect and
//! who may trade.
//!
//! The permission tests need root (to switch one thread to uid 65534); they print why and pass
//! when not run as root.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use levibot_control::{
    self as control, AccessPolicy, CONNECTIONS_MAX, ControlError, ControlHandler, ControlServer,
    InstrumentStatus, KILL_LANE_MAX, KillReport, ModelStatus, Peer, REQUEST_LEN_MAX, Request,
    Response, ResponseError, SessionStatus, StatusReport,
};

const TIMEOUT: Duration = Duration::from_secs(10);
const NOBODY: u32 = 65534;
/// The readers' group in the role tests; not in /etc/group on any test machine.
const READERS_GID: u32 = 64_101;

/// Records every call; `kill` can be held until the test releases it.
#[derive(Default)]
struct Fake {
    calls: Mutex<Vec<(String, Peer)>>,
    /// Told each time a kill reaches the handler.
    kill_entered: Mutex<Option<mpsc::Sender<()>>>,
    /// While true, kills wait in the handler.
    kill_held: Mutex<bool>,
    kill_released: Condvar,
}

impl Fake {
    fn record(&self, call: String, peer: &Peer) {
        self.calls.lock().unwrap().push((call, *peer));
    }

    /// From now on kills wait in the handler until [`Fake::release_kills`]; the receiver hears
    /// of each one that arrived.
    fn hold_kills(&self) -> mpsc::Receiver<()> {
        let (entered, rx) = mpsc::channel();
        *self.kill_entered.lock().unwrap() = Some(entered);
        *self.kill_held.lock().unwrap() = true;
        rx
    }

    fn release_kills(&self) {
        *self.kill_held.lock().unwrap() = false;
        self.kill_released.notify_all();
    }

    fn calls(&self) -> Vec<String> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(|(c, _)| c.clone())
            .collect()
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
            connected: false,
            connects: 2,
            disconnects: 2,
        },
        instruments: vec![InstrumentStatus {
            symbol: "NKNUSDT".into(),
            position: "-120".into(),
            open_orders: 2,
            realised_pnl: "1.2345".into(),
            pnl: "2.5".into(),
            bid: Some("0.0351".into()),
            ask: None,
            model: Some(ModelStatus {
                sha256: "0f".repeat(32),
                path: "/etc/levibot/model.json".into(),
                in_use: true,
            }),
        }],
        open_orders: 2,
        orders_sent: 10,
        fills: 4,
        rejects: 1,
        reloads: 3,
    }
}

impl ControlHandler for Fake {
    fn status(&self) -> StatusReport {
        report()
    }

    fn kill(&self, peer: &Peer) -> KillReport {
        self.record("kill".into(), peer);
        if let Some(entered) = &*self.kill_entered.lock().unwrap() {
            let _ = entered.send(());
        }
        let held = self.kill_held.lock().unwrap();
        // Bounded, so that a broken test fails rather than hangs.
        let (held, wait) = self
            .kill_released
            .wait_timeout_while(held, Duration::from_secs(30), |held| *held)
            .unwrap();
        drop(held);
        assert!(!wait.timed_out(), "the test never released the kill");
        kill_report()
    }

    fn resume(&self, peer: &Peer) -> Result<String, String> {
        self.record("resume".into(), peer);
        Ok("trading resumed".into())
    }

    fn reload(&self, peer: &Peer) -> Result<String, String> {
        self.record("reload".into(), peer);
        Err("config line 3: risk.loss_max: not a decimal".into())
    }

    fn set(&self, peer: &Peer, key: &str, value: &str) -> Result<String, String> {
        self.record(format!("set {key} {value}"), peer);
        match key {
            "risk.loss_max" => Ok(format!("{key} = {value}")),
            _ => Err(format!("unknown setting {key}")),
        }
    }
}

/// Everything confirmed: two orders cancelled.
fn kill_report() -> KillReport {
    KillReport {
        halted: true,
        open_before: 2,
        cancelled_confirmed: 2,
        unconfirmed: 0,
        elapsed_ms: 12,
        deadline_ms: 5000,
    }
}

fn scratch() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    // Searchable by everyone, so that only the socket's own mode decides who gets in.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn serve(dir: &Path, mode: u32, policy: AccessPolicy) -> (ControlServer, Arc<Fake>) {
    let fake = Arc::new(Fake::default());
    let server = ControlServer::bind(&dir.join("control.sock"), mode, policy, fake.clone())
        .expect("bind the control socket");
    (server, fake)
}

/// Sends raw bytes and reads one response line (the server may close before reading all).
fn raw(path: &Path, bytes: &[u8]) -> Response {
    let mut stream = UnixStream::connect(path).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let _ = stream.write_all(bytes);
    read_response(stream)
}

fn read_response(stream: UnixStream) -> Response {
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
}

fn is_root() -> bool {
    let root = rustix::process::geteuid().is_root();
    if !root {
        eprintln!("skipped: needs root to switch uids (one thread becomes uid {NOBODY})");
    }
    root
}

/// Runs `f` on a new thread whose credentials are nobody's (uid and gid 65534, no
/// supplementary groups). The per-thread system calls leave every other thread as it was.
fn as_nobody<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    as_user(NOBODY, NOBODY, &[], f)
}

/// Runs `f` on a new thread with uid `uid`, effective gid `gid` and supplementary `groups`.
/// The server finds a peer's supplementary groups in `/proc/<pid>/status`, which shows the
/// process's main thread: the policy sees only such a thread's uid and effective gid (the
/// kernel's permission check on the socket file sees its supplementary groups too).
fn as_user<T: Send + 'static>(
    uid: u32,
    gid: u32,
    groups: &[u32],
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    use rustix::thread::{Gid, Uid, set_thread_groups, set_thread_res_gid, set_thread_res_uid};
    let groups: Vec<Gid> = groups.iter().map(|&g| Gid::from_raw(g)).collect();
    thread::spawn(move || {
        let gid = Gid::from_raw(gid);
        let uid = Uid::from_raw(uid);
        set_thread_groups(&groups).unwrap();
        set_thread_res_gid(gid, gid, gid).unwrap();
        set_thread_res_uid(uid, uid, uid).unwrap();
        assert_eq!(rustix::process::geteuid().as_raw(), uid.as_raw());
        f()
    })
    .join()
    .unwrap()
}

#[test]
fn every_command_round_trips() {
    let dir = scratch();
    let (server, fake) = serve(dir.path(), 0o660, AccessPolicy::default());
    let path = server.path().to_owned();

    let status = control::request(&path, &Request::Status, TIMEOUT).unwrap();
    assert!(status.ok);
    assert_eq!(status.status, Some(report()));

    let kill = control::request(&path, &Request::Kill, TIMEOUT).unwrap();
    assert_eq!(kill.message, kill_report().message());
    assert_eq!(kill.kill, Some(kill_report()));
    assert_eq!(kill.error, None);
    let resume = control::request(&path, &Request::Resume, TIMEOUT).unwrap();
    assert_eq!(resume.message, "trading resumed");
    let set = Request::Set {
        key: "risk.loss_max".into(),
        value: "5".into(),
    };
    assert_eq!(
        control::request(&path, &set, TIMEOUT).unwrap().message,
        "risk.loss_max = 5"
    );

    match control::request(&path, &Request::Reload, TIMEOUT) {
        Err(ControlError::Refused { message, .. }) => assert!(message.contains("line 3")),
        other => panic!("{other:?}"),
    }
    let unknown = Request::Set {
        key: "risk.nope".into(),
        value: "1".into(),
    };
    let refused = control::request(&path, &unknown, TIMEOUT).unwrap_err();
    assert!(matches!(refused, ControlError::Refused { .. }), "{refused}");
    assert!(refused.to_string().contains("unknown setting risk.nope"));

    assert_eq!(
        fake.calls(),
        [
            "kill",
            "resume",
            "set risk.loss_max 5",
            "reload",
            "set risk.nope 1"
        ]
    );
    let me = Peer {
        uid: rustix::process::geteuid().as_raw(),
        gid: rustix::process::getegid().as_raw(),
        pid: std::process::id() as i32,
    };
    assert!(fake.calls.lock().unwrap().iter().all(|(_, p)| *p == me));
}

#[test]
fn the_socket_gets_the_mode_asked_for() {
    let dir = scratch();
    let (server, _) = serve(dir.path(), 0o640, AccessPolicy::default());
    let meta = std::fs::metadata(server.path()).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
    assert!(matches!(
        ControlServer::bind(
            &dir.path().join("other.sock"),
            0o4660,
            AccessPolicy::default(),
            Arc::new(Fake::default())
        ),
        Err(ControlError::InvalidMode { .. })
    ));
}

#[test]
fn a_blocked_kill_does_not_delay_status() {
    let dir = scratch();
    let (server, fake) = serve(dir.path(), 0o660, AccessPolicy::default());
    let path = server.path().to_owned();
    let entered = fake.hold_kills();

    let kill = {
        let path = path.clone();
        thread::spawn(move || control::request(&path, &Request::Kill, TIMEOUT))
    };
    entered
        .recv_timeout(TIMEOUT)
        .expect("kill reached the handler");

    let start = Instant::now();
    let status = control::request(&path, &Request::Status, Duration::from_secs(2)).unwrap();
    assert_eq!(status.status.unwrap().pid, 4242);
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    assert!(!kill.is_finished(), "the kill is still held by the handler");

    fake.release_kills();
    let kill = kill.join().unwrap().unwrap();
    assert_eq!(kill.kill, Some(kill_report()));
}

#[test]
fn bad_requests_get_errors_and_the_server_keeps_serving() {
    let dir = scratch();
    let (server, fake) = serve(dir.path(), 0o660, AccessPolicy::default());
    let path = server.path();

    let mut oversized = br#"{"command":"set","key":"a","value":""#.to_vec();
    oversized.resize(REQUEST_LEN_MAX * 3, b'x');
    oversized.extend_from_slice(b"\"}\n");
    let response = raw(path, &oversized);
    assert_eq!(response.error, Some(ResponseError::BadRequest));
    assert!(
        response.message.contains("longer than 4096"),
        "{response:?}"
    );

    // Exactly at the limit is still read (and then judged on its content).
    let mut at_limit = br#"{"command":"status","pad":""#.to_vec();
    at_limit.resize(REQUEST_LEN_MAX - 2, b' ');
    at_limit.extend_from_slice(b"\"}\n");
    assert_eq!(at_limit.len(), REQUEST_LEN_MAX + 1);
    let response = raw(path, &at_limit);
    assert!(!response.message.contains("longer than"), "{response:?}");

    let garbage = raw(path, b"\x00\xffhello\n");
    assert!(!garbage.ok);
    assert_eq!(garbage.error, Some(ResponseError::BadRequest));
    assert!(
        garbage.message.contains("not a JSON request"),
        "{garbage:?}"
    );

    let unknown = raw(path, b"{\"protocol\":1,\"command\":\"launch\"}\n");
    assert_eq!(unknown.error, Some(ResponseError::BadRequest));
    let newer = raw(path, b"{\"protocol\":2,\"command\":\"status\"}\n");
    assert!(newer.message.contains("protocol 2"), "{newer:?}");

    // Without a protocol field, and without a newline before the client's EOF: accepted.
    let mut stream = UnixStream::connect(path).unwrap();
    stream.write_all(br#"{"command":"resume"}"#).unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    assert_eq!(read_response(stream).message, "trading resumed");

    // The client refuses to send what the daemon would refuse to read.
    let long = Request::Set {
        key: "k".into(),
        value: "v".repeat(REQUEST_LEN_MAX),
    };
    assert!(matches!(
        control::request(path, &long, TIMEOUT),
        Err(ControlError::Protocol { .. })
    ));

    assert!(control::request(path, &Request::Status, TIMEOUT).is_ok());
    assert_eq!(fake.calls(), ["resume"]);
}

#[test]
fn connections_beyond_the_limit_are_busy_and_silent_clients_time_out() {
    let dir = scratch();
    let (server, _) = serve(dir.path(), 0o660, AccessPolicy::default());
    let path = server.path().to_owned();
    // Silent clients: each holds a slot until the read timeout.
    let silent: Vec<UnixStream> = (0..CONNECTIONS_MAX)
        .map(|_| UnixStream::connect(&path).unwrap())
        .collect();
    // Accepted after them (the backlog is first in, first out): no slot left.
    match control::request(&path, &Request::Status, TIMEOUT) {
        Err(ControlError::Busy { message, .. }) => assert!(message.contains("8 control")),
        other => panic!("{other:?}"),
    }
    let start = Instant::now();
    for stream in silent {
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        let response = read_response(stream);
        assert_eq!(response.error, Some(ResponseError::BadRequest));
        assert!(response.message.contains("within 5 s"), "{response:?}");
    }
    assert!(
        start.elapsed() < Duration::from_secs(7),
        "{:?}",
        start.elapsed()
    );
    // The slots come back as the connections' threads end.
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match control::request(&path, &Request::Status, TIMEOUT) {
            Ok(response) => break assert!(response.ok),
            Err(ControlError::Busy { .. }) if Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn a_stale_socket_is_replaced_and_a_live_one_is_not() {
    let dir = scratch();
    let path = dir.path().join("control.sock");
    // A dead daemon's socket: the file stays, nobody listens.
    drop(UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let (server, _) = serve(dir.path(), 0o660, AccessPolicy::default());
    assert!(control::request(&path, &Request::Status, TIMEOUT).is_ok());

    let second = ControlServer::bind(
        &path,
        0o660,
        AccessPolicy::default(),
        Arc::new(Fake::default()),
    );
    match second {
        Err(e @ ControlError::InUse { .. }) => {
            assert!(e.to_string().contains("already listening"), "{e}");
            assert!(e.to_string().contains(&path.display().to_string()), "{e}");
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("bound over a live daemon"),
    }
    // The first still serves, through the file it made.
    assert!(control::request(&path, &Request::Status, TIMEOUT).is_ok());
    drop(server);

    // Anything but a socket is left alone.
    std::fs::write(&path, "precious").unwrap();
    let refused = ControlServer::bind(
        &path,
        0o660,
        AccessPolicy::default(),
        Arc::new(Fake::default()),
    );
    assert!(matches!(refused, Err(ControlError::NotSocket { .. })));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious");
}

#[test]
fn shutdown_is_prompt_and_removes_the_socket() {
    let dir = scratch();
    let (server, _) = serve(dir.path(), 0o660, AccessPolicy::default());
    let path = server.path().to_owned();
    assert!(path.exists());
    let start = Instant::now();
    server.shutdown();
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    assert!(!path.exists());
    match control::request(&path, &Request::Status, TIMEOUT) {
        Err(e @ ControlError::NoSocket { .. }) => {
            let text = e.to_string();
            assert!(text.contains("is levibotd running"), "{text}");
            assert!(
                text.contains("LEVIBOT_JOURNAL") && text.contains("--socket"),
                "{text}"
            );
            assert!(text.contains(&path.display().to_string()), "{text}");
        }
        other => panic!("{other:?}"),
    }

    // Dropping does the same.
    let (server, _) = serve(dir.path(), 0o660, AccessPolicy::default());
    drop(server);
    assert!(!path.exists());
}

#[test]
fn a_replaced_socket_file_is_not_removed_by_the_old_server() {
    let dir = scratch();
    let (old, _) = serve(dir.path(), 0o660, AccessPolicy::default());
    let path = old.path().to_owned();
    // Someone removed our file and bound their own at the same path.
    std::fs::remove_file(&path).unwrap();
    let _theirs = UnixListener::bind(&path).unwrap();
    old.shutdown();
    assert!(path.exists());
}

#[test]
fn the_socket_mode_keeps_other_users_out() {
    if !is_root() {
        return;
    }
    let dir = scratch();
    let (server, fake) = serve(dir.path(), 0o660, AccessPolicy::default());
    let path = server.path().to_owned();
    let result = as_nobody(move || control::request(&path, &Request::Kill, TIMEOUT));
    match result {
        Err(e @ ControlError::PermissionDenied { .. }) => {
            let text = e.to_string();
            assert!(text.contains("mode 0660"), "{text}");
            assert!(text.contains("uid 65534"), "{text}");
            assert!(text.contains("join group"), "{text}");
        }
        other => panic!("{other:?}"),
    }
    assert!(fake.calls().is_empty());
}

#[test]
fn the_access_policy_refuses_a_peer_the_mode_lets_in() {
    if !is_root() {
        return;
    }
    let dir = scratch();
    let policy = AccessPolicy {
        uids: vec![0],
        read_gids: vec![0],
        ops_gids: vec![],
    };
    let (server, fake) = serve(dir.path(), 0o666, policy);
    let path = server.path().to_owned();
    let result = as_nobody(move || control::request(&path, &Request::Kill, TIMEOUT));
    match result {
        Err(e @ ControlError::Denied { .. }) => {
            let text = e.to_string();
            assert!(text.contains("uid 65534"), "{text}");
            assert!(text.contains("may not use this control socket"), "{text}");
        }
        other => panic!("{other:?}"),
    }
    assert!(fake.calls().is_empty());
    // Everyone else is still served.
    assert!(control::request(server.path(), &Request::Status, TIMEOUT).is_ok());
}

/// A group named in /etc/group other than root's, nobody's and the readers': the operators'
/// group of the role test (so that the refusal can be checked to name it).
fn some_named_group() -> (String, u32) {
    let text = std::fs::read_to_string("/etc/group").unwrap();
    text.lines()
        .find_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let gid: u32 = fields.nth(1)?.parse().ok()?;
            (![0, NOBODY, READERS_GID].contains(&gid)).then(|| (name.to_owned(), gid))
        })
        .expect("a group besides root's in /etc/group")
}

#[test]
fn readers_may_read_but_only_operators_trade() {
    if !is_root() {
        return;
    }
    let (ops_name, ops_gid) = some_named_group();
    assert_eq!(control::group_gid(&ops_name), Some(ops_gid));
    let dir = scratch();
    let policy = AccessPolicy {
        uids: vec![0],
        read_gids: vec![READERS_GID],
        ops_gids: vec![ops_gid],
    };
    let (server, fake) = serve(dir.path(), 0o660, policy);
    let path = server.path().to_owned();
    // As in the daemon's setgid journal directory: the socket belongs to the readers' group.
    rustix::fs::chown(&path, None, Some(rustix::fs::Gid::from_raw(READERS_GID))).unwrap();

    // A reader: status, and nothing else.
    let (status, trades) = {
        let path = path.clone();
        as_user(NOBODY, READERS_GID, &[], move || {
            let status = control::request(&path, &Request::Status, TIMEOUT);
            let trades = [
                Request::Kill,
                Request::Resume,
                Request::Reload,
                Request::Set {
                    key: "risk.loss_max".into(),
                    value: "5".into(),
                },
            ]
            .map(|r| (r.name(), control::request(&path, &r, TIMEOUT)));
            (status, trades)
        })
    };
    assert_eq!(status.unwrap().status, Some(report()));
    for (command, result) in trades {
        match result {
            Err(e @ ControlError::Denied { .. }) => {
                let text = e.to_string();
                let needs =
                    format!("{command} needs membership of group {ops_name} (gid {ops_gid})");
                assert!(text.contains(&needs), "{text}");
                assert!(text.contains("uid 65534"), "{text}");
            }
            other => panic!("{command}: {other:?}"),
        }
    }
    assert!(fake.calls().is_empty(), "{:?}", fake.calls());

    // An operator is in both groups: the readers' to open the socket, the operators' to trade.
    let [kill, resume, status] = {
        let path = path.clone();
        as_user(NOBODY, ops_gid, &[READERS_GID], move || {
            [Request::Kill, Request::Resume, Request::Status]
                .map(|r| control::request(&path, &r, TIMEOUT))
        })
    };
    assert_eq!(kill.unwrap().kill, Some(kill_report()));
    assert_eq!(resume.unwrap().message, "trading resumed");
    assert_eq!(status.unwrap().status, Some(report()));
    let calls = fake.calls.lock().unwrap().clone();
    let names: Vec<&str> = calls.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(names, ["kill", "resume"]);
    assert!(
        calls
            .iter()
            .all(|(_, p)| p.uid == NOBODY && p.gid == ops_gid),
        "{calls:?}"
    );
}

#[test]
fn a_kill_gets_through_while_idle_connections_hold_every_slot() {
    let dir = scratch();
    let (server, fake) = serve(dir.path(), 0o660, AccessPolicy::default());
    let path = server.path().to_owned();
    let start = Instant::now();
    // Silent clients: the first ones hold every ordinary slot until the read timeout, the
    // last two wait in the overflow lane.
    let _silent: Vec<UnixStream> = (0..CONNECTIONS_MAX + 2)
        .map(|_| UnixStream::connect(&path).unwrap())
        .collect();
    // Accepted after them (the backlog is first in, first out): no slot for a status.
    match control::request(&path, &Request::Status, TIMEOUT) {
        Err(ControlError::Busy { message, .. }) => {
            assert!(message.contains("8 control"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // A kill is served at once, not after the silent clients' timeout.
    let kill = control::request(&path, &Request::Kill, TIMEOUT).unwrap();
    assert_eq!(kill.kill, Some(kill_report()));

    // The kill lane has its bound: with that many kills held in the handler, one more is busy.
    let entered = fake.hold_kills();
    let held: Vec<_> = (0..KILL_LANE_MAX)
        .map(|_| {
            let path = path.clone();
            let kill = thread::spawn(move || control::request(&path, &Request::Kill, TIMEOUT));
            entered
                .recv_timeout(TIMEOUT)
                .expect("the kill reached the handler");
            kill
        })
        .collect();
    match control::request(&path, &Request::Kill, TIMEOUT) {
        Err(ControlError::Busy { message, .. }) => {
            assert!(message.contains("2 kills"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    fake.release_kills();
    for kill in held {
        assert_eq!(kill.join().unwrap().unwrap().kill, Some(kill_report()));
    }
    assert_eq!(fake.calls(), ["kill", "kill", "kill"]);
    // All of it while the silent clients still held their slots.
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn a_path_too_long_for_a_socket_is_named() {
    let path = PathBuf::from(format!("/tmp/{}/control.sock", "d".repeat(120)));
    match control::request(&path, &Request::Status, TIMEOUT) {
        Err(e @ ControlError::PathTooLong { .. }) => assert!(e.to_string().contains("ddd")),
        other => panic!("{other:?}"),
    }
}

/// The framing the fuzzer drives (`control::request_from_chunks`, fuzz target
/// `control_request`) is the server's: the same bytes, in any chunks, get the answer the socket
/// gives.
#[test]
fn request_from_chunks_frames_as_the_server_does() {
    let dir = scratch();
    let (server, _fake) = serve(dir.path(), 0o660, AccessPolicy::default());
    let mut oversized = br#"{"command":"status","pad":""#.to_vec();
    oversized.resize(REQUEST_LEN_MAX + 1, b' ');
    oversized.extend_from_slice(b"\"}\n");
    let cases: [&[u8]; 6] = [
        b"{\"command\":\"status\"}\n",
        b"{\"protocol\":1.0,\"command\":\"status\"}\n",
        b"{\"command\":\"set\",\"key\":\"risk.loss_max\",\"value\":\"5\"}\nmore",
        b"status\n",
        b"{\"command\":\"kill\",\"command\":\"launch\"}",
        &oversized,
    ];
    for bytes in cases {
        let whole = control::request_from_chunks([bytes]);
        for size in [1, 2, 7, 4096] {
            assert_eq!(control::request_from_chunks(bytes.chunks(size)), whole);
        }
        // Sent, then the client's EOF (a last line without a newline counts).
        let mut stream = UnixStream::connect(server.path()).unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        let _ = stream.write_all(bytes);
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let response = read_response(stream);
        match &whole {
            Ok(_) => assert_ne!(
                response.error,
                Some(ResponseError::BadRequest),
                "{response:?}"
            ),
            Err(reason) => {
                assert_eq!(response.error, Some(ResponseError::BadRequest));
                assert_eq!(&response.message, reason);
            }
        }
    }
    let not_whole = control::request_from_chunks([cases[1]]).unwrap_err();
    assert!(not_whole.contains("whole number"), "{not_whole}");
    assert!(
        control::request_from_chunks(std::iter::empty::<&[u8]>())
            .unwrap_err()
            .contains("closed")
    );
}
