//! The daemon's control socket: what `levictl status|kill|resume|reload|set` talk to.
//!
//! A Unix stream socket, by default `control.sock` in the journal directory
//! ([`levibot_shm::paths::control_socket_path`]). A connection carries one request and one
//! response, each one line of JSON, then closes:
//!
//! ```text
//! -> {"protocol":1,"command":"status"}
//! <- {"protocol":1,"ok":true,"message":"","status":{"pid":4242,"phase":"running",...}}
//! -> {"protocol":1,"command":"set","key":"risk.loss_max","value":"500"}
//! <- {"protocol":1,"ok":false,"error":"refused","message":"risk.loss_max: not a decimal"}
//! ```
//!
//! `protocol` is [`PROTOCOL_VERSION`] (a request without it is taken as version 1, so that
//! `socat` users need not type it). `error` is present only when `ok` is false: `refused` (the
//! handler said no, or a `kill` could not confirm everything: its `kill` report says what),
//! `denied` (this peer may not use the socket, or may not trade), `bad_request` (not a request
//! of this protocol, too long, too slow) or `busy` (all connection slots taken, or the daemon is
//! stopping). Fields are only ever added: readers ignore unknown ones and default missing ones.
//!
//! Who may do what. Readers may ask for `status`; operators may also `kill`, `resume`, `reload`
//! and `set` (operators who may trade are a smaller group than those who may read). The
//! [`AccessPolicy`] names them: root and the daemon's own user are operators; members of the
//! daemon's effective group (`levibot`, the journal's readers) are readers; members of the
//! operators' group (`levibot-ops`: the daemon builds its policy with
//! [`AccessPolicy::daemon_default_with_ops`] from [`group_gid`] of `daemon.control_ops_group`)
//! are operators. Without an operators' group only root and the daemon's user may trade. A
//! reader asking for a trading command is answered `denied`, with the group it needs named.
//!
//! Two gates. First the socket file's mode (connecting needs write permission): it is set
//! between `bind` and `listen`, and until `listen` every connect is refused, so nobody ever
//! connects under the umask's mode. The file belongs to the readers' group (the journal
//! directory is setgid `levibot`) with mode 0660, so both roles reach it and an operator is a
//! member of both groups: `levibot` to open the socket (and read the journal), `levibot-ops` to
//! trade. (One file mode cannot let two groups in, and a socket only operators could open would
//! shut readers out of `status`.) Then, per request, the server checks the peer's credentials
//! (`SO_PEERCRED`: uid and effective gid at connect, plus the supplementary groups in
//! `/proc/<pid>/status` if that process still has those ids) against the policy: a peer that
//! is neither reader nor operator is `denied` before its request is read, a reader asking to
//! trade after.
//!
//! Limits: a request line is at most [`REQUEST_LEN_MAX`] bytes and must arrive within
//! [`REQUEST_READ_TIMEOUT`]; a response is written within [`RESPONSE_WRITE_TIMEOUT`]. A
//! connection being served has a thread of its own because `kill` blocks until the venue
//! confirmed the cancels: `status` must not wait behind it. [`CONNECTIONS_MAX`] ordinary slots
//! (a thread each) are held from accept on, while the request is still arriving.
//!
//! `kill` gets through when those slots are full (say, eight clients connected and silent). A
//! connection accepted with no slot free waits in the overflow lane: the accept thread itself
//! reads its request line, non-blocking, within the same [`REQUEST_READ_TIMEOUT`]; the lane
//! holds at most [`OVERFLOW_MAX`] connections and answers the oldest `busy` when another comes.
//! A `kill` read there gets one of [`KILL_LANE_MAX`] threads kept for kills (or an ordinary
//! slot that came free); any other request gets a slot that came free, else `busy`. So the
//! socket never has more than 1 + `CONNECTIONS_MAX` + `KILL_LANE_MAX` threads, nor more than
//! `CONNECTIONS_MAX` + `KILL_LANE_MAX` + `OVERFLOW_MAX` connections; a kill is answered `busy`
//! only when `KILL_LANE_MAX` kills are already running with every slot taken, or when
//! `OVERFLOW_MAX` newer connections came in before its request line did. The accept thread
//! polls its non-blocking listener every [`ACCEPT_POLL_INTERVAL`] (every
//! [`OVERFLOW_POLL_INTERVAL`] while the overflow lane holds connections) and is unparked by
//! [`ControlServer::shutdown`].
//!
//! Here: the protocol's types and the line reader both sides share. `access`: [`Peer`],
//! [`AccessPolicy`], [`group_gid`]. `server`: [`ControlServer`]. `client`: [`request`] (and
//! [`exchange`], which hands back a response that is not `ok` as it came).
//!
//! Everything here is cold path.

use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::io::Errno;
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
use serde::{Deserialize, Serialize};

mod access;
mod client;
mod server;

pub use access::{AccessPolicy, Peer, Role, group_gid};
pub use client::{exchange, into_result, request};
pub use server::ControlServer;

/// The version of the wire format; a daemon answers requests of another version with
/// `bad_request`, and a client refuses responses of another version.
pub const PROTOCOL_VERSION: u32 = 1;
/// The longest request line the server reads, in bytes, without its newline.
pub const REQUEST_LEN_MAX: usize = 4096;
/// The longest response line the client reads, in bytes (a status with many instruments).
pub const RESPONSE_LEN_MAX: usize = 1 << 20;
/// Ordinary connection slots: connections served at once, each with its thread.
pub const CONNECTIONS_MAX: usize = 8;
/// Threads kept for `kill` requests that arrive while every ordinary slot is taken.
pub const KILL_LANE_MAX: usize = 2;
/// Connections waiting in the overflow lane (no thread: the accept thread reads them).
pub const OVERFLOW_MAX: usize = 16;
/// How long a client has to send its whole request line.
pub const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the server waits for a client to take its response.
pub const RESPONSE_WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the accept thread looks for new connections (shutdown wakes it at once).
pub const ACCEPT_POLL_INTERVAL: Duration = Duration::from_millis(50);
/// How often it reads the overflow lane's connections while there are any.
pub const OVERFLOW_POLL_INTERVAL: Duration = Duration::from_millis(2);
/// The socket's default mode: the daemon's user and group.
pub const SOCKET_MODE_DEFAULT: u32 = 0o660;

/// A request: the JSON object's `command` names the variant.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Request {
    /// The daemon's state ([`StatusReport`]).
    Status,
    /// Kill switch: halt trading and cancel every open order; answered once the venue
    /// confirmed the cancels or the deadline passed.
    Kill,
    /// Lift the kill switch.
    Resume,
    /// Reload risk limits and strategy parameters from the config file.
    Reload,
    /// Set one setting, e.g. `risk.loss_max` to `500`.
    Set { key: String, value: String },
}

impl Request {
    /// What the peer must be to ask for it: `status` reads, everything else trades.
    pub fn role(&self) -> Role {
        match self {
            Request::Status => Role::Read,
            Request::Kill | Request::Resume | Request::Reload | Request::Set { .. } => Role::Trade,
        }
    }

    /// The command's name on the wire.
    pub fn name(&self) -> &'static str {
        match self {
            Request::Status => "status",
            Request::Kill => "kill",
            Request::Resume => "resume",
            Request::Reload => "reload",
            Request::Set { .. } => "set",
        }
    }

    /// The request as one line of JSON, without the newline.
    pub fn to_line(&self) -> String {
        #[derive(Serialize)]
        struct Line<'a> {
            protocol: u32,
            #[serde(flatten)]
            request: &'a Request,
        }
        serde_json::to_string(&Line {
            protocol: PROTOCOL_VERSION,
            request: self,
        })
        .expect("a request always serializes")
    }

    /// Parses one request line; the error is the text of a `bad_request` response.
    pub fn from_line(line: &[u8]) -> Result<Request, String> {
        let mut value: serde_json::Value =
            serde_json::from_slice(line).map_err(|e| format!("not a JSON request: {e}"))?;
        let object = value
            .as_object_mut()
            .ok_or_else(|| "a request is a JSON object".to_owned())?;
        let protocol = match object.remove("protocol") {
            None => u64::from(PROTOCOL_VERSION),
            Some(v) => v
                .as_u64()
                .ok_or_else(|| format!("\"protocol\" must be a whole number such as 1, not {v}"))?,
        };
        if protocol != u64::from(PROTOCOL_VERSION) {
            return Err(format!(
                "protocol {protocol} is not spoken here (this daemon speaks protocol \
                 {PROTOCOL_VERSION}): use the levictl of the daemon's release"
            ));
        }
        serde_json::from_value(value).map_err(|e| format!("not a request: {e}"))
    }
}

/// What the server makes of the bytes a client sent, in the chunks they arrived in, before it
/// closed: the line framing of [`ControlServer`] (up to the first newline, at most
/// [`REQUEST_LEN_MAX`] bytes, a last line without a newline counting), then
/// [`Request::from_line`]. The error is the text of the `bad_request` response. For the fuzzer
/// and tests: the server itself reads its socket with the same framing.
pub fn request_from_chunks<'a>(
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Request, String> {
    let mut line = Vec::new();
    for chunk in chunks {
        if let Some(done) = append_line(&mut line, chunk, REQUEST_LEN_MAX) {
            done.map_err(|e| e.reason())?;
            return Request::from_line(&line);
        }
    }
    if line.is_empty() {
        Err(LineError::Eof.reason())
    } else {
        Request::from_line(&line)
    }
}

/// Why a response is not `ok`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ResponseError {
    /// The handler refused the command (its reason is the message).
    Refused,
    /// The peer's credentials are not in the daemon's [`AccessPolicy`].
    Denied,
    /// Not a request of this protocol, too long, or too slow to arrive.
    BadRequest,
    /// Every connection slot is taken, or the daemon is stopping.
    Busy,
}

/// A response: one line of JSON.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub protocol: u32,
    pub ok: bool,
    /// Why not `ok`; absent when `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ResponseError>,
    /// What was done, or why not.
    #[serde(default)]
    pub message: String,
    /// The answer to `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusReport>,
    /// The answer to `kill`: what the venue confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill: Option<KillReport>,
}

impl Response {
    pub fn success(message: impl Into<String>) -> Response {
        Response {
            protocol: PROTOCOL_VERSION,
            ok: true,
            error: None,
            message: message.into(),
            status: None,
            kill: None,
        }
    }

    pub fn status(report: StatusReport) -> Response {
        Response {
            status: Some(report),
            ..Response::success("")
        }
    }

    pub fn failure(error: ResponseError, message: impl Into<String>) -> Response {
        Response {
            protocol: PROTOCOL_VERSION,
            ok: false,
            error: Some(error),
            message: message.into(),
            status: None,
            kill: None,
        }
    }

    /// The answer to `kill`: `ok` only when trading is halted and the venue confirmed every
    /// cancel; the message says what is confirmed either way.
    pub fn kill(report: KillReport) -> Response {
        let ok = report.halted && report.unconfirmed == 0;
        let message = report.message();
        Response {
            kill: Some(report),
            ..if ok {
                Response::success(message)
            } else {
                Response::failure(ResponseError::Refused, message)
            }
        }
    }

    /// A handler's answer: `Ok(message)` or `Err(reason)` (refused).
    pub fn from_outcome(outcome: Result<String, String>) -> Response {
        match outcome {
            Ok(message) => Response::success(message),
            Err(reason) => Response::failure(ResponseError::Refused, reason),
        }
    }

    /// The response as one line of JSON, without the newline.
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("a response always serializes")
    }
}

/// The daemon's state, as `levictl status` shows it. Prices, positions and PnL are decimal
/// strings (exact, in the instrument's units).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(default)]
pub struct StatusReport {
    pub pid: u32,
    pub version: String,
    /// `starting`, `recovering`, `reconciling`, `running` or `stopping`.
    pub phase: String,
    /// `active`, `reduce_only` or `halted`.
    pub trading_state: String,
    /// Why the daemon halted trading by itself (`levibot_shm::records::halt_reason` names:
    /// `empty_journal`, `reconcile_unconfirmed`, ...); `none` when it did not, and a sentence
    /// for people in `halt_detail`.
    pub halt_reason: String,
    pub halt_detail: String,
    pub uptime_s: u64,
    pub journal_dir: String,
    pub config_path: String,
    pub market_data: SessionStatus,
    pub order_entry: SessionStatus,
    pub instruments: Vec<InstrumentStatus>,
    pub open_orders: u32,
    pub orders_sent: u64,
    pub fills: u64,
    pub rejects: u64,
    pub reloads: u64,
}

/// What a kill achieved, counted only from what the venue confirmed.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(default)]
pub struct KillReport {
    /// Risk took the halt: nothing new can pass it.
    pub halted: bool,
    /// Open orders when the kill began.
    pub open_before: u32,
    /// Orders whose cancel (or fill) the venue confirmed.
    pub cancelled_confirmed: u32,
    /// Orders still open when the deadline passed: nobody can vouch for them.
    pub unconfirmed: u32,
    /// How long the kill waited for the venue.
    pub elapsed_ms: u64,
    /// The deadline it waited at most (`daemon.cancel_deadline_ms`).
    pub deadline_ms: u64,
}

impl KillReport {
    /// One line for people: what is confirmed, and what is not.
    pub fn message(&self) -> String {
        let halted = if self.halted {
            "halted"
        } else {
            "NOT halted (the agents did not take the command)"
        };
        if self.unconfirmed == 0 {
            format!(
                "{halted}; {} of {} open orders cancelled, confirmed by the venue in {} ms",
                self.cancelled_confirmed, self.open_before, self.elapsed_ms
            )
        } else {
            format!(
                "{halted}; {} of {} open orders confirmed cancelled; {} still UNCONFIRMED after \
                 the {} ms deadline",
                self.cancelled_confirmed, self.open_before, self.unconfirmed, self.deadline_ms
            )
        }
    }
}

/// A venue session (market data or order entry).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(default)]
pub struct SessionStatus {
    pub connected: bool,
    pub connects: u64,
    pub disconnects: u64,
}

/// One instrument's line of the status.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(default)]
pub struct InstrumentStatus {
    pub symbol: String,
    pub position: String,
    pub open_orders: u32,
    pub realised_pnl: String,
    /// Realised + marked to the book.
    pub pnl: String,
    pub bid: Option<String>,
    pub ask: Option<String>,
    /// The model its strategy votes with (a `signal` strategy's; `None` for other strategies).
    pub model: Option<ModelStatus>,
}

/// The model of an instrument's `signal` strategy, as the config in force names it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(default)]
pub struct ModelStatus {
    /// The model file's SHA-256, 64 hex digits; empty when the strategy votes with its weights.
    pub sha256: String,
    pub path: String,
    /// Whether the strategy has taken it (it does at its next event after a start or reload).
    pub in_use: bool,
}

/// What the daemon does for each command. `Ok(message)` and `Err(reason)` become the response;
/// `kill` may block (until the venue confirmed the cancels or the deadline passed): each
/// connection has its own thread.
pub trait ControlHandler: Send + Sync + 'static {
    fn status(&self) -> StatusReport;
    fn kill(&self, peer: &Peer) -> KillReport;
    fn resume(&self, peer: &Peer) -> Result<String, String>;
    fn reload(&self, peer: &Peer) -> Result<String, String>;
    fn set(&self, peer: &Peer, key: &str, value: &str) -> Result<String, String>;
}

/// What went wrong with the control socket, on either side. Each names the socket's path.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(
        "control socket {}: the path is longer than a Unix socket address allows \
         (108 bytes); choose a shorter one",
        .path.display()
    )]
    PathTooLong { path: PathBuf },
    #[error(
        "control socket {}: mode {mode:#o} has bits beyond the permissions (0o777)",
        .path.display()
    )]
    InvalidMode { path: PathBuf, mode: u32 },
    #[error(
        "control socket {}: a daemon is already listening on it (another levibotd on this \
         journal?)",
        .path.display()
    )]
    InUse { path: PathBuf },
    #[error("control socket {}: the file exists and is not a socket; not removing it", .path.display())]
    NotSocket { path: PathBuf },
    #[error("control socket {}: {action}: {source}", .path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        source: io::Error,
    },
    #[error(
        "no daemon at control socket {}: {source}; is levibotd running? point levictl at its \
         journal with --journal or LEVIBOT_JOURNAL, or at its socket with --socket or \
         LEVIBOT_SOCKET",
        .path.display()
    )]
    NoSocket { path: PathBuf, source: io::Error },
    #[error("permission denied on control socket {}: {hint}", .path.display())]
    PermissionDenied { path: PathBuf, hint: String },
    #[error("the daemon at {} does not let this user in: {message}", .path.display())]
    Denied { path: PathBuf, message: String },
    #[error("the daemon at {} refused: {message}", .path.display())]
    Refused { path: PathBuf, message: String },
    #[error("the daemon at {} is busy: {message}; try again", .path.display())]
    Busy { path: PathBuf, message: String },
    #[error("no answer from the daemon at {} within {:.1} s", .path.display(), .timeout.as_secs_f64())]
    Timeout { path: PathBuf, timeout: Duration },
    #[error("control socket {}: protocol error: {detail}", .path.display())]
    Protocol { path: PathBuf, detail: String },
}

fn io_error(path: &Path, action: &'static str) -> impl FnOnce(Errno) -> ControlError {
    let path = path.to_owned();
    move |errno| ControlError::Io {
        path,
        action,
        source: errno.into(),
    }
}

fn socket_addr(path: &Path) -> Result<SocketAddrUnix, ControlError> {
    SocketAddrUnix::new(path).map_err(|errno| match errno {
        Errno::NAMETOOLONG => ControlError::PathTooLong {
            path: path.to_owned(),
        },
        errno => io_error(path, "make the socket address")(errno),
    })
}

fn unix_socket() -> Result<OwnedFd, Errno> {
    rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )
}

enum LineError {
    /// The peer closed before sending anything.
    Eof,
    TooLong,
    Timeout,
    Io(io::Error),
}

impl LineError {
    /// The `bad_request` text for a request line that did not come.
    fn reason(&self) -> String {
        match self {
            LineError::Eof => "the connection closed before a request".to_owned(),
            LineError::TooLong => format!("request line longer than {REQUEST_LEN_MAX} bytes"),
            LineError::Timeout => format!(
                "no complete request line within {} s",
                REQUEST_READ_TIMEOUT.as_secs()
            ),
            LineError::Io(e) => format!("the request could not be read: {e}"),
        }
    }
}

/// Adds `bytes` to `line` up to a newline: `Some(Ok)` once the line is complete, `Some(Err)`
/// once it is longer than `len_max`, `None` while more may come.
fn append_line(line: &mut Vec<u8>, bytes: &[u8], len_max: usize) -> Option<Result<(), LineError>> {
    let newline = bytes.iter().position(|&b| b == b'\n');
    line.extend_from_slice(&bytes[..newline.unwrap_or(bytes.len())]);
    if line.len() > len_max {
        return Some(Err(LineError::TooLong));
    }
    newline.map(|_| Ok(()))
}

/// Reads one line of at most `len_max` bytes (without its newline) by `deadline`, however
/// slowly it trickles in. A last line without a newline counts when the peer closes.
fn read_line(stream: &UnixStream, len_max: usize, deadline: Instant) -> Result<Vec<u8>, LineError> {
    let mut line = Vec::with_capacity(512);
    let mut chunk = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(LineError::Timeout);
        }
        stream.set_read_timeout(Some(left)).map_err(LineError::Io)?;
        let n = match (&*stream).read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(LineError::Timeout);
            }
            Err(e) => return Err(LineError::Io(e)),
        };
        if n == 0 {
            return if line.is_empty() {
                Err(LineError::Eof)
            } else {
                Ok(line)
            };
        }
        if let Some(done) = append_line(&mut line, &chunk[..n], len_max) {
            return done.map(|()| line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_through_their_lines() {
        for request in [
            Request::Status,
            Request::Kill,
            Request::Resume,
            Request::Reload,
            Request::Set {
                key: "risk.loss_max".into(),
                value: "500".into(),
            },
        ] {
            let line = request.to_line();
            assert!(line.starts_with("{\"protocol\":1,\"command\":"), "{line}");
            let reads = request == Request::Status;
            assert_eq!(request.role() == Role::Read, reads, "{line}");
            assert_eq!(Request::from_line(line.as_bytes()), Ok(request));
        }
    }

    #[test]
    fn request_lines_are_checked() {
        assert_eq!(
            Request::from_line(br#"{"command":"status"}"#),
            Ok(Request::Status)
        );
        // Fields a later client may add are ignored.
        assert_eq!(
            Request::from_line(br#"{"protocol":1,"command":"status","verbose":true}"#),
            Ok(Request::Status)
        );
        let newer = Request::from_line(br#"{"protocol":2,"command":"status"}"#).unwrap_err();
        assert!(newer.contains("protocol 2"), "{newer}");
        assert!(Request::from_line(br#"{"command":"launch"}"#).is_err());
        assert!(Request::from_line(br#"{"command":"set","key":"a"}"#).is_err());
        assert!(Request::from_line(b"[1]").is_err());
        assert!(Request::from_line(b"status").is_err());
    }

    #[test]
    fn responses_omit_what_they_lack_and_default_what_is_missing() {
        assert_eq!(
            Response::success("done").to_line(),
            r#"{"protocol":1,"ok":true,"message":"done"}"#
        );
        assert_eq!(
            Response::failure(ResponseError::BadRequest, "x").to_line(),
            r#"{"protocol":1,"ok":false,"error":"bad_request","message":"x"}"#
        );
        let sparse: Response =
            serde_json::from_str(r#"{"protocol":1,"ok":true,"status":{"pid":7,"later":1}}"#)
                .unwrap();
        assert_eq!(sparse.status.unwrap().pid, 7);
    }
}
