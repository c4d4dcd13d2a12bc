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
//! handler said no), `denied` (this peer may not use the socket), `bad_request` (not a request
//! of this protocol, too long, too slow) or `busy` (all connection slots taken, or the daemon is
//! stopping). Fields are only ever added: readers ignore unknown ones and default missing ones.
//!
//! Who may connect. The socket file's mode decides (connecting needs write permission); it is
//! set between `bind` and `listen`, and until `listen` every connect is refused, so nobody ever
//! connects under the umask's mode. Behind that, in case the mode is loosened, the server checks
//! the peer's credentials (`SO_PEERCRED`, plus the peer's supplementary groups) against an
//! [`AccessPolicy`] and answers `denied` to anyone else.
//!
//! Limits: a request line is at most [`REQUEST_LEN_MAX`] bytes and must arrive within
//! [`REQUEST_READ_TIMEOUT`]; a response is written within [`RESPONSE_WRITE_TIMEOUT`]; at most
//! [`CONNECTIONS_MAX`] connections are served at once (the next ones get `busy`). Each
//! connection has its own thread because `kill` blocks until the venue confirmed the cancels:
//! `status` must not wait behind it. The accept thread polls a non-blocking listener every
//! [`ACCEPT_POLL_INTERVAL`] and is unparked by [`ControlServer::shutdown`].
//!
//! Everything here is cold path.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustix::io::Errno;
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
use serde::{Deserialize, Serialize};

/// The version of the wire format; a daemon answers requests of another version with
/// `bad_request`, and a client refuses responses of another version.
pub const PROTOCOL_VERSION: u32 = 1;
/// The longest request line the server reads, in bytes, without its newline.
pub const REQUEST_LEN_MAX: usize = 4096;
/// The longest response line the client reads, in bytes (a status with many instruments).
pub const RESPONSE_LEN_MAX: usize = 1 << 20;
/// Connections served at once; each holds a thread.
pub const CONNECTIONS_MAX: usize = 8;
/// How long a client has to send its whole request line.
pub const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the server waits for a client to take its response.
pub const RESPONSE_WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the accept thread looks for new connections (shutdown wakes it at once).
pub const ACCEPT_POLL_INTERVAL: Duration = Duration::from_millis(50);
/// The socket's default mode: the daemon's user and group.
pub const SOCKET_MODE_DEFAULT: u32 = 0o660;
/// Pending connections the kernel queues before `accept`.
const LISTEN_BACKLOG: i32 = 16;
/// How long a client waits between connection attempts while the daemon's backlog is full.
const CONNECT_RETRY_INTERVAL: Duration = Duration::from_millis(10);
/// The most bytes read from `/proc/<pid>/status`, `/etc/passwd` or `/etc/group`.
const SYSTEM_FILE_LEN_MAX: u64 = 1 << 20;

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
                .ok_or_else(|| format!("\"protocol\" must be a number, not {v}"))?,
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
}

impl Response {
    pub fn success(message: impl Into<String>) -> Response {
        Response {
            protocol: PROTOCOL_VERSION,
            ok: true,
            error: None,
            message: message.into(),
            status: None,
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
}

/// Who is on the other end of a connection (`SO_PEERCRED`: its effective ids when it
/// connected).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub gid: u32,
    pub pid: i32,
}

/// Who may use the socket beyond what its file mode allows: a peer whose uid is in `uids`, or
/// whose effective or supplementary group is in `gids`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessPolicy {
    pub uids: Vec<u32>,
    pub gids: Vec<u32>,
}

impl AccessPolicy {
    /// Root, the daemon's effective user, and members of its effective group (the group new
    /// files, the socket among them, get).
    pub fn daemon_default() -> AccessPolicy {
        let euid = rustix::process::geteuid().as_raw();
        let egid = rustix::process::getegid().as_raw();
        let mut uids = vec![0, euid];
        uids.dedup();
        AccessPolicy {
            uids,
            gids: vec![egid],
        }
    }

    /// Whether `peer`, with its supplementary `groups`, may use the socket.
    pub fn allows(&self, peer: &Peer, groups: &[u32]) -> bool {
        self.uids.contains(&peer.uid)
            || self.gids.contains(&peer.gid)
            || groups.iter().any(|g| self.gids.contains(g))
    }
}

impl Default for AccessPolicy {
    fn default() -> AccessPolicy {
        AccessPolicy::daemon_default()
    }
}

/// What the daemon does for each command. `Ok(message)` and `Err(reason)` become the response;
/// `kill` may block (until the venue confirmed the cancels or the deadline passed): each
/// connection has its own thread.
pub trait ControlHandler: Send + Sync + 'static {
    fn status(&self) -> StatusReport;
    fn kill(&self, peer: &Peer) -> Result<String, String>;
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

/// The control socket's server: an accept thread and a thread per connection.
pub struct ControlServer {
    path: PathBuf,
    /// (device, inode) of the socket file we bound: we remove only that file at shutdown.
    file_id: (u64, u64),
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

struct Shared {
    path: PathBuf,
    policy: AccessPolicy,
    handler: Arc<dyn ControlHandler>,
    stopping: AtomicBool,
    connections: AtomicUsize,
}

impl ControlServer {
    /// Creates the socket at `path` with file mode `mode` (e.g. [`SOCKET_MODE_DEFAULT`]) and
    /// starts serving. A socket file that nobody answers on (a dead daemon's) is replaced; a
    /// live one is an error ([`ControlError::InUse`]), and so is any other kind of file.
    pub fn bind(
        path: &Path,
        mode: u32,
        policy: AccessPolicy,
        handler: Arc<dyn ControlHandler>,
    ) -> Result<ControlServer, ControlError> {
        if mode & !0o777 != 0 {
            return Err(ControlError::InvalidMode {
                path: path.to_owned(),
                mode,
            });
        }
        let addr = socket_addr(path)?;
        remove_stale(path, &addr)?;
        let fd = unix_socket().map_err(io_error(path, "create the socket"))?;
        rustix::net::bind(&fd, &addr).map_err(|errno| match errno {
            // Someone bound it between our check and our bind.
            Errno::ADDRINUSE => ControlError::InUse {
                path: path.to_owned(),
            },
            errno => io_error(path, "bind")(errno),
        })?;
        // The file is ours from here: remove it if anything below fails.
        let mut file = RemoveOnDrop(Some(path));
        // Before `listen`: until then every connect is refused, so the umask's mode never
        // lets anybody in.
        rustix::fs::chmod(path, rustix::fs::Mode::from_raw_mode(mode))
            .map_err(io_error(path, "set the socket's mode"))?;
        let meta = fs::symlink_metadata(path).map_err(|source| ControlError::Io {
            path: path.to_owned(),
            action: "inspect the new socket",
            source,
        })?;
        rustix::net::listen(&fd, LISTEN_BACKLOG).map_err(io_error(path, "listen"))?;
        let listener = UnixListener::from(fd);
        let shared = Arc::new(Shared {
            path: path.to_owned(),
            policy,
            handler,
            stopping: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
        });
        let accept = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("levibot-ctl-accept".into())
                .spawn(move || accept_loop(&listener, &shared))
                .map_err(|source| ControlError::Io {
                    path: path.to_owned(),
                    action: "start the accept thread",
                    source,
                })?
        };
        file.0 = None;
        tracing::info!(path = %path.display(), mode = format_args!("{mode:04o}"), "control socket listening");
        Ok(ControlServer {
            path: path.to_owned(),
            file_id: (meta.dev(), meta.ino()),
            shared,
            accept: Some(accept),
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops accepting, joins the accept thread and removes the socket file. Connections
    /// already being served finish on their own threads (a request that arrives after this
    /// gets `busy`). Dropping the server does the same.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(accept) = self.accept.take() else {
            return;
        };
        self.shared.stopping.store(true, Ordering::Release);
        accept.thread().unpark();
        if accept.join().is_err() {
            tracing::warn!(path = %self.path.display(), "control socket's accept thread panicked");
        }
        // A successor may have replaced the file (after finding ours dead): leave its file be.
        match fs::symlink_metadata(&self.path) {
            Ok(meta) if (meta.dev(), meta.ino()) == self.file_id => {
                if let Err(e) = fs::remove_file(&self.path) {
                    tracing::warn!(path = %self.path.display(), error = %e, "could not remove the control socket");
                }
            }
            _ => {}
        }
        tracing::info!(path = %self.path.display(), "control socket closed");
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Removes a half-set-up socket file if `bind` fails after creating it.
struct RemoveOnDrop<'a>(Option<&'a Path>);

impl Drop for RemoveOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(path) = self.0 {
            let _ = fs::remove_file(path);
        }
    }
}

/// Removes a socket file that nobody answers on; refuses to touch a live socket or a file that
/// is not a socket.
fn remove_stale(path: &Path, addr: &SocketAddrUnix) -> Result<(), ControlError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(ControlError::Io {
                path: path.to_owned(),
                action: "inspect the existing file",
                source,
            });
        }
    };
    if !meta.file_type().is_socket() {
        return Err(ControlError::NotSocket {
            path: path.to_owned(),
        });
    }
    let probe = unix_socket().map_err(io_error(path, "create a probe socket"))?;
    match rustix::net::connect(&probe, addr) {
        // AGAIN: its backlog is full, so somebody is listening.
        Ok(()) | Err(Errno::AGAIN) => Err(ControlError::InUse {
            path: path.to_owned(),
        }),
        Err(Errno::CONNREFUSED) => {
            tracing::info!(path = %path.display(), "removing a stale control socket (nobody answers on it)");
            match fs::remove_file(path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(source) => Err(ControlError::Io {
                    path: path.to_owned(),
                    action: "remove the stale socket",
                    source,
                }),
            }
        }
        Err(Errno::NOENT) => Ok(()),
        Err(errno) => Err(io_error(path, "probe the existing socket")(errno)),
    }
}

fn accept_loop(listener: &UnixListener, shared: &Arc<Shared>) {
    while !shared.stopping.load(Ordering::Acquire) {
        match listener.accept() {
            Ok((stream, _)) => admit(shared, stream),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::park_timeout(ACCEPT_POLL_INTERVAL);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                // E.g. out of file descriptors: wait rather than spin.
                tracing::warn!(path = %shared.path.display(), error = %e, "control socket accept failed");
                thread::park_timeout(ACCEPT_POLL_INTERVAL);
            }
        }
    }
}

/// Gives the connection a thread, or answers `busy` from the accept thread without blocking.
fn admit(shared: &Arc<Shared>, stream: UnixStream) {
    if shared.connections.fetch_add(1, Ordering::AcqRel) >= CONNECTIONS_MAX {
        shared.connections.fetch_sub(1, Ordering::AcqRel);
        tracing::warn!(path = %shared.path.display(), "control socket busy: {CONNECTIONS_MAX} connections already");
        answer_now(
            &stream,
            &Response::failure(
                ResponseError::Busy,
                format!("{CONNECTIONS_MAX} control connections are already being served"),
            ),
        );
        return;
    }
    let slot = Slot(Arc::clone(shared));
    let spawned = thread::Builder::new()
        .name("levibot-ctl-conn".into())
        .spawn(move || serve(&slot.0, stream));
    if let Err(e) = spawned {
        // The closure, and with it the slot and the stream, are dropped.
        tracing::warn!(path = %shared.path.display(), error = %e, "could not start a control connection thread");
    }
}

/// A connection slot, given back when the connection's thread ends (even by a panic).
struct Slot(Arc<Shared>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Writes a short response on a fresh connection without ever blocking: it fits in the empty
/// socket buffer, and if it does not the client loses nothing it was promised.
fn answer_now(stream: &UnixStream, response: &Response) {
    let mut line = response.to_line();
    line.push('\n');
    let _ = stream.set_nonblocking(true);
    let _ = (&*stream).write(line.as_bytes());
}

fn serve(shared: &Shared, stream: UnixStream) {
    // Accepted sockets do not inherit O_NONBLOCK on Linux; make sure, since the timeouts below
    // rely on blocking reads.
    if stream.set_nonblocking(false).is_err() {
        return;
    }
    let peer = match rustix::net::sockopt::socket_peercred(&stream) {
        Ok(cred) => Peer {
            uid: cred.uid.as_raw(),
            gid: cred.gid.as_raw(),
            pid: cred.pid.as_raw_nonzero().get(),
        },
        Err(errno) => {
            tracing::warn!(path = %shared.path.display(), error = %errno, "control connection without peer credentials");
            return;
        }
    };
    let groups = supplementary_groups(&peer);
    if !shared.policy.allows(&peer, &groups) {
        tracing::warn!(
            path = %shared.path.display(),
            uid = peer.uid, gid = peer.gid, pid = peer.pid, groups = ?groups,
            "control connection refused: peer not in the access policy"
        );
        let message = format!(
            "uid {} (gid {}, pid {}) may not use this control socket; allowed: uids {:?}, \
             members of gids {:?}",
            peer.uid, peer.gid, peer.pid, shared.policy.uids, shared.policy.gids
        );
        write_response(&stream, &Response::failure(ResponseError::Denied, message));
        return;
    }
    let deadline = Instant::now() + REQUEST_READ_TIMEOUT;
    let request = match read_line(&stream, REQUEST_LEN_MAX, deadline) {
        Ok(line) => Request::from_line(&line),
        // A probe (another daemon checking whether this socket is alive) or a client that gave
        // up.
        Err(LineError::Eof) => return,
        Err(LineError::TooLong) => Err(format!("request line longer than {REQUEST_LEN_MAX} bytes")),
        Err(LineError::Timeout) => Err(format!(
            "no complete request line within {} s",
            REQUEST_READ_TIMEOUT.as_secs()
        )),
        Err(LineError::Io(e)) => {
            tracing::debug!(path = %shared.path.display(), error = %e, "control connection read failed");
            return;
        }
    };
    let response = match request {
        Err(reason) => {
            tracing::warn!(path = %shared.path.display(), uid = peer.uid, pid = peer.pid, %reason, "bad control request");
            Response::failure(ResponseError::BadRequest, reason)
        }
        Ok(_) if shared.stopping.load(Ordering::Acquire) => Response::failure(
            ResponseError::Busy,
            "the daemon's control socket is closing",
        ),
        Ok(request) => {
            let response = dispatch(&*shared.handler, &peer, &request);
            // Who changed what is worth keeping; status polls would only flood the log.
            if request == Request::Status {
                tracing::debug!(uid = peer.uid, pid = peer.pid, "control request: status");
            } else {
                tracing::info!(
                    command = request.name(), uid = peer.uid, pid = peer.pid, ok = response.ok,
                    message = %response.message, "control request"
                );
            }
            response
        }
    };
    write_response(&stream, &response);
}

fn dispatch(handler: &dyn ControlHandler, peer: &Peer, request: &Request) -> Response {
    match request {
        Request::Status => Response::status(handler.status()),
        Request::Kill => Response::from_outcome(handler.kill(peer)),
        Request::Resume => Response::from_outcome(handler.resume(peer)),
        Request::Reload => Response::from_outcome(handler.reload(peer)),
        Request::Set { key, value } => Response::from_outcome(handler.set(peer, key, value)),
    }
}

fn write_response(stream: &UnixStream, response: &Response) {
    let mut line = response.to_line();
    line.push('\n');
    let written = stream
        .set_write_timeout(Some(RESPONSE_WRITE_TIMEOUT))
        .and_then(|()| (&*stream).write_all(line.as_bytes()));
    if let Err(e) = written {
        tracing::debug!(error = %e, "control response not delivered");
    }
}

/// The peer's supplementary groups from `/proc/<pid>/status`, used only if that process still
/// has the effective uid and gid the kernel recorded at connect (so a reused pid, or another
/// thread's credentials, count for nothing).
fn supplementary_groups(peer: &Peer) -> Vec<u32> {
    let Ok(file) = fs::File::open(format!("/proc/{}/status", peer.pid)) else {
        return Vec::new();
    };
    let mut text = String::new();
    if file
        .take(SYSTEM_FILE_LEN_MAX)
        .read_to_string(&mut text)
        .is_err()
    {
        return Vec::new();
    }
    let ids = |name: &str| -> Vec<u32> {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .map(|rest| {
                rest.split_whitespace()
                    .filter_map(|id| id.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    // "Uid:" and "Gid:" list real, effective, saved and filesystem ids.
    if ids("Uid:").get(1) != Some(&peer.uid) || ids("Gid:").get(1) != Some(&peer.gid) {
        return Vec::new();
    }
    ids("Groups:")
}

enum LineError {
    /// The peer closed before sending anything.
    Eof,
    TooLong,
    Timeout,
    Io(io::Error),
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
        let newline = chunk[..n].iter().position(|&b| b == b'\n');
        line.extend_from_slice(&chunk[..newline.unwrap_or(n)]);
        if line.len() > len_max {
            return Err(LineError::TooLong);
        }
        if newline.is_some() {
            return Ok(line);
        }
    }
}

/// Sends `request` to the daemon at `path` and waits up to `timeout` for its answer. `Ok` only
/// if the daemon did it; its refusals, and every reason it could not be asked, are errors.
pub fn request(
    path: &Path,
    request: &Request,
    timeout: Duration,
) -> Result<Response, ControlError> {
    let deadline = Instant::now() + timeout;
    let timed_out = || ControlError::Timeout {
        path: path.to_owned(),
        timeout,
    };
    let protocol_error = |detail: String| ControlError::Protocol {
        path: path.to_owned(),
        detail,
    };
    let mut line = request.to_line();
    if line.len() > REQUEST_LEN_MAX {
        return Err(protocol_error(format!(
            "the request is {} bytes; the daemon reads at most {REQUEST_LEN_MAX}",
            line.len()
        )));
    }
    line.push('\n');
    let stream = connect(path, deadline, timeout)?;
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(timed_out());
    }
    let written = stream
        .set_write_timeout(Some(left))
        .and_then(|()| (&stream).write_all(line.as_bytes()));
    // A daemon that refuses this peer answers without reading: read its answer even when the
    // write failed.
    let reply = match read_line(&stream, RESPONSE_LEN_MAX, deadline) {
        Ok(reply) => reply,
        Err(LineError::Timeout) => return Err(timed_out()),
        Err(LineError::TooLong) => {
            return Err(protocol_error(format!(
                "response longer than {RESPONSE_LEN_MAX} bytes"
            )));
        }
        Err(LineError::Eof) => {
            let why = match written {
                Err(e) => format!("the daemon closed the connection ({e})"),
                Ok(()) => "the daemon closed the connection without answering".to_owned(),
            };
            return Err(protocol_error(why));
        }
        Err(LineError::Io(source)) => {
            return Err(ControlError::Io {
                path: path.to_owned(),
                action: "read the response",
                source,
            });
        }
    };
    let value: serde_json::Value = serde_json::from_slice(&reply)
        .map_err(|e| protocol_error(format!("the response is not JSON: {e}")))?;
    let protocol = value.get("protocol").and_then(serde_json::Value::as_u64);
    if protocol != Some(u64::from(PROTOCOL_VERSION)) {
        return Err(protocol_error(format!(
            "the daemon speaks protocol {}, this client {PROTOCOL_VERSION}: use the levictl of \
             the daemon's release",
            protocol.map_or_else(|| "(none)".to_owned(), |p| p.to_string())
        )));
    }
    let response: Response = serde_json::from_value(value)
        .map_err(|e| protocol_error(format!("not a response: {e}")))?;
    if response.ok {
        return Ok(response);
    }
    let path = path.to_owned();
    let message = response.message;
    Err(match response.error {
        Some(ResponseError::Refused) => ControlError::Refused { path, message },
        Some(ResponseError::Denied) => ControlError::Denied { path, message },
        Some(ResponseError::Busy) => ControlError::Busy { path, message },
        Some(ResponseError::BadRequest) | None => ControlError::Protocol {
            path,
            detail: format!("the daemon did not understand the request: {message}"),
        },
    })
}

/// Connects without ever blocking past `deadline` (a blocking connect waits as long as the
/// daemon's backlog is full).
fn connect(path: &Path, deadline: Instant, timeout: Duration) -> Result<UnixStream, ControlError> {
    let addr = socket_addr(path)?;
    let fd = unix_socket().map_err(io_error(path, "create the socket"))?;
    loop {
        match rustix::net::connect(&fd, &addr) {
            Ok(()) => break,
            Err(Errno::INTR) => {}
            Err(Errno::AGAIN) => {
                if Instant::now() >= deadline {
                    return Err(ControlError::Timeout {
                        path: path.to_owned(),
                        timeout,
                    });
                }
                thread::sleep(CONNECT_RETRY_INTERVAL);
            }
            // CONNREFUSED: the file is there but nobody listens (a dead daemon's socket).
            Err(errno @ (Errno::NOENT | Errno::NOTDIR | Errno::CONNREFUSED)) => {
                return Err(ControlError::NoSocket {
                    path: path.to_owned(),
                    source: errno.into(),
                });
            }
            Err(Errno::ACCESS | Errno::PERM) => {
                return Err(ControlError::PermissionDenied {
                    path: path.to_owned(),
                    hint: permission_hint(path),
                });
            }
            Err(errno) => return Err(io_error(path, "connect")(errno)),
        }
    }
    let stream = UnixStream::from(fd);
    stream
        .set_nonblocking(false)
        .map_err(|source| ControlError::Io {
            path: path.to_owned(),
            action: "configure the socket",
            source,
        })?;
    Ok(stream)
}

/// Explains a refused connect: the socket's mode, owner and group, who we are, and what to do.
fn permission_hint(path: &Path) -> String {
    let uid = rustix::process::geteuid().as_raw();
    let gid = rustix::process::getegid().as_raw();
    let me = format!(
        "you are uid {}, gid {}",
        named(uid, "/etc/passwd"),
        named(gid, "/etc/group")
    );
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) => {
            return format!(
                "its directory denies you access ({e}); {me}; ask for search permission on \
                 the directories above it, or run as root"
            );
        }
    };
    let owner = named(meta.uid(), "/etc/passwd");
    let group = named(meta.gid(), "/etc/group");
    let group_name = name_of(meta.gid(), "/etc/group").unwrap_or_else(|| meta.gid().to_string());
    let mut hint = format!(
        "the socket is mode {:04o}, owner uid {owner}, group gid {group}; {me}; connecting \
         needs write permission on it",
        meta.mode() & 0o7777
    );
    if meta.mode() & 0o020 != 0 {
        let _ = write!(
            hint,
            ": join group {group_name} (`sudo usermod -aG {group_name} $USER`, then log in \
             again), or run as its owner or root"
        );
    } else {
        let _ = write!(hint, ": run as its owner or root");
    }
    hint
}

/// `1000 (alice)`, or just `1000` if the file does not name it.
fn named(id: u32, file: &str) -> String {
    match name_of(id, file) {
        Some(name) => format!("{id} ({name})"),
        None => id.to_string(),
    }
}

/// The name of `id` in `/etc/passwd` or `/etc/group` (both have the id in their third field).
fn name_of(id: u32, file: &str) -> Option<String> {
    let mut text = String::new();
    fs::File::open(file)
        .ok()?
        .take(SYSTEM_FILE_LEN_MAX)
        .read_to_string(&mut text)
        .ok()?;
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let parsed: u32 = fields.nth(1)?.parse().ok()?;
        (parsed == id).then(|| name.to_owned())
    })
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

    #[test]
    fn the_policy_admits_listed_users_and_group_members() {
        let policy = AccessPolicy {
            uids: vec![0],
            gids: vec![998],
        };
        let peer = |uid, gid| Peer { uid, gid, pid: 1 };
        assert!(policy.allows(&peer(0, 5), &[]));
        assert!(policy.allows(&peer(1000, 998), &[]));
        assert!(policy.allows(&peer(1000, 1000), &[27, 998]));
        assert!(!policy.allows(&peer(1000, 1000), &[27]));
    }
}
