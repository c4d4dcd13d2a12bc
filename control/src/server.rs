//! The control socket's server: the accept thread, the connection slots, the overflow lane
//! that lets a `kill` through when they are full, and the per-request access check (the limits
//! are in the parent module's doc).

use std::collections::VecDeque;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Instant;

use rustix::io::Errno;
use rustix::net::SocketAddrUnix;

use super::access::{self, AccessPolicy, Peer, Role};
use super::{
    ACCEPT_POLL_INTERVAL, CONNECTIONS_MAX, ControlError, ControlHandler, KILL_LANE_MAX, LineError,
    OVERFLOW_MAX, OVERFLOW_POLL_INTERVAL, REQUEST_LEN_MAX, REQUEST_READ_TIMEOUT,
    RESPONSE_WRITE_TIMEOUT, Request, Response, ResponseError, append_line, io_error, read_line,
    socket_addr, unix_socket,
};

/// Pending connections the kernel queues before `accept`.
const LISTEN_BACKLOG: i32 = 16;

/// The control socket's server: an accept thread (which also reads the overflow lane) and a
/// thread per connection served, in the ordinary slots or the kill lane.
pub struct ControlServer {
    path: PathBuf,
    /// (device, inode) of the socket file we bound: we remove only that file at shutdown.
    file_id: (u64, u64),
    shared: Arc<ServerState>,
    accept: Option<JoinHandle<()>>,
}

/// What the control server's accept thread and connection threads share.
struct ServerState {
    path: PathBuf,
    policy: AccessPolicy,
    handler: Arc<dyn ControlHandler>,
    stopping: AtomicBool,
    /// Threads in each lane.
    connections: AtomicUsize,
    kills: AtomicUsize,
}

impl ControlServer {
    /// Creates the socket at `path` with file mode `mode` (e.g.
    /// [`SOCKET_MODE_DEFAULT`](super::SOCKET_MODE_DEFAULT)) and starts serving. A socket file
    /// that nobody answers on (a dead daemon's) is replaced; a live one is an error
    /// ([`ControlError::InUse`]), and so is any other kind of file.
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
        let shared = Arc::new(ServerState {
            path: path.to_owned(),
            policy,
            handler,
            stopping: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
            kills: AtomicUsize::new(0),
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

/// Accepts at most this many connections before it reads the overflow lane again.
const ACCEPTS_PER_ROUND: usize = LISTEN_BACKLOG as usize;

fn accept_loop(listener: &UnixListener, shared: &Arc<ServerState>) {
    let mut overflow = Overflow::default();
    while !shared.stopping.load(Ordering::Acquire) {
        let mut accepted = 0;
        while accepted < ACCEPTS_PER_ROUND {
            match listener.accept() {
                Ok((stream, _)) => {
                    accepted += 1;
                    admit(shared, stream, &mut overflow);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // E.g. out of file descriptors: wait rather than spin.
                    tracing::warn!(path = %shared.path.display(), error = %e, "control socket accept failed");
                    break;
                }
            }
        }
        overflow.read(shared);
        // A full round may have left more in the backlog: go on at once.
        if accepted < ACCEPTS_PER_ROUND {
            thread::park_timeout(if overflow.waiting.is_empty() {
                ACCEPT_POLL_INTERVAL
            } else {
                OVERFLOW_POLL_INTERVAL
            });
        }
    }
    for waiting in overflow.waiting.drain(..) {
        answer_now(&waiting.stream, &closing());
    }
}

/// Gives the connection an ordinary slot and its thread, or puts it in the overflow lane.
fn admit(shared: &Arc<ServerState>, stream: UnixStream, overflow: &mut Overflow) {
    match Slot::take(shared, Lane::Ordinary) {
        Some(slot) => spawn(shared, slot, stream, None),
        None => overflow.push(shared, stream),
    }
}

/// Starts the connection's thread, which holds `slot` until it ends.
fn spawn(shared: &ServerState, slot: Slot, stream: UnixStream, request: Option<Request>) {
    let name = match slot.lane {
        Lane::Ordinary => "levibot-ctl-conn",
        Lane::Kill => "levibot-ctl-kill",
    };
    let spawned = thread::Builder::new()
        .name(name.into())
        .spawn(move || serve(&slot.shared, stream, request));
    if let Err(e) = spawned {
        // The closure, and with it the slot and the stream, are dropped.
        tracing::warn!(path = %shared.path.display(), error = %e, "could not start a control connection thread");
    }
}

/// Which threads a connection is served on: the ordinary slots, or those kept for `kill`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lane {
    Ordinary,
    Kill,
}

impl ServerState {
    fn lane(&self, lane: Lane) -> (&AtomicUsize, usize) {
        match lane {
            Lane::Ordinary => (&self.connections, CONNECTIONS_MAX),
            Lane::Kill => (&self.kills, KILL_LANE_MAX),
        }
    }
}

/// A thread's place in a lane, given back when the thread ends (even by a panic).
struct Slot {
    shared: Arc<ServerState>,
    lane: Lane,
}

impl Slot {
    fn take(shared: &Arc<ServerState>, lane: Lane) -> Option<Slot> {
        let (count, max) = shared.lane(lane);
        if count.fetch_add(1, Ordering::AcqRel) >= max {
            count.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Slot {
            shared: Arc::clone(shared),
            lane,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.shared.lane(self.lane).0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Connections accepted while every ordinary slot was taken, waiting for their request line
/// (read by the accept thread, without blocking), oldest first.
#[derive(Default)]
struct Overflow {
    waiting: VecDeque<Waiting>,
}

struct Waiting {
    stream: UnixStream,
    line: Vec<u8>,
    deadline: Instant,
}

impl Overflow {
    /// Takes a connection in; if the lane is full, the oldest waiting one is answered `busy`.
    fn push(&mut self, shared: &ServerState, stream: UnixStream) {
        if stream.set_nonblocking(true).is_err() {
            return;
        }
        if self.waiting.len() >= OVERFLOW_MAX
            && let Some(oldest) = self.waiting.pop_front()
        {
            tracing::warn!(path = %shared.path.display(), "control socket busy: the overflow lane is full");
            answer_now(&oldest.stream, &busy(false));
        }
        self.waiting.push_back(Waiting {
            stream,
            line: Vec::new(),
            deadline: Instant::now() + REQUEST_READ_TIMEOUT,
        });
    }

    /// Reads what arrived on each waiting connection; a complete request is decided on.
    fn read(&mut self, shared: &Arc<ServerState>) {
        let now = Instant::now();
        let mut n = 0;
        while n < self.waiting.len() {
            let waiting = &mut self.waiting[n];
            let outcome = match read_available(&waiting.stream, &mut waiting.line) {
                None if now >= waiting.deadline => Some(Err(LineError::Timeout)),
                outcome => outcome,
            };
            match outcome {
                None => n += 1,
                Some(outcome) => {
                    let waiting = self.waiting.remove(n).expect("n is in range");
                    let line = outcome.map(|()| waiting.line);
                    decide(shared, waiting.stream, line);
                }
            }
        }
    }
}

/// What an overflow connection's request gets: a kill, a thread of the kill lane (or an
/// ordinary slot that came free); anything else, an ordinary slot that came free, or `busy`.
fn decide(shared: &Arc<ServerState>, stream: UnixStream, line: Result<Vec<u8>, LineError>) {
    let request = match line {
        Ok(line) => Request::from_line(&line),
        Err(LineError::Eof | LineError::Io(_)) => return,
        Err(e) => Err(e.reason()),
    };
    let request = match request {
        Ok(request) => request,
        Err(reason) => {
            tracing::warn!(path = %shared.path.display(), %reason, "bad control request");
            answer_now(
                &stream,
                &Response::failure(ResponseError::BadRequest, reason),
            );
            return;
        }
    };
    let kill = request == Request::Kill;
    let slot = if kill {
        Slot::take(shared, Lane::Kill).or_else(|| Slot::take(shared, Lane::Ordinary))
    } else {
        Slot::take(shared, Lane::Ordinary)
    };
    match slot {
        Some(slot) => spawn(shared, slot, stream, Some(request)),
        None => {
            tracing::warn!(path = %shared.path.display(), command = request.name(), "control socket busy: every slot taken");
            answer_now(&stream, &busy(kill));
        }
    }
}

fn busy(kill: bool) -> Response {
    let message = if kill {
        format!(
            "{CONNECTIONS_MAX} control connections and {KILL_LANE_MAX} kills are already being \
             served"
        )
    } else {
        format!("{CONNECTIONS_MAX} control connections are already being served")
    };
    Response::failure(ResponseError::Busy, message)
}

fn closing() -> Response {
    Response::failure(
        ResponseError::Busy,
        "the daemon's control socket is closing",
    )
}

/// Writes a short response on a fresh connection without ever blocking: it fits in the empty
/// socket buffer, and if it does not the client loses nothing it was promised.
fn answer_now(stream: &UnixStream, response: &Response) {
    let mut line = response.to_line();
    line.push('\n');
    let _ = stream.set_nonblocking(true);
    let _ = (&*stream).write(line.as_bytes());
}

/// Serves one connection on its thread: checks the peer, reads its request (unless the
/// overflow lane did), checks the peer may ask for it, and answers.
fn serve(shared: &ServerState, stream: UnixStream, request: Option<Request>) {
    // Accepted sockets do not inherit O_NONBLOCK on Linux, but the overflow lane sets it; the
    // timeouts below rely on blocking I/O.
    if stream.set_nonblocking(false).is_err() {
        return;
    }
    let peer = match Peer::of(&stream) {
        Ok(peer) => peer,
        Err(errno) => {
            tracing::warn!(path = %shared.path.display(), error = %errno, "control connection without peer credentials");
            return;
        }
    };
    let groups = access::supplementary_groups(&peer);
    if !shared.policy.allows(&peer, &groups, Role::Read) {
        tracing::warn!(
            path = %shared.path.display(),
            uid = peer.uid, gid = peer.gid, pid = peer.pid, groups = ?groups,
            "control connection refused: peer not in the access policy"
        );
        let message = shared.policy.connect_refusal(&peer);
        write_response(&stream, &Response::failure(ResponseError::Denied, message));
        return;
    }
    let request = match request {
        Some(request) => Ok(request),
        None => match read_line(
            &stream,
            REQUEST_LEN_MAX,
            Instant::now() + REQUEST_READ_TIMEOUT,
        ) {
            Ok(line) => Request::from_line(&line),
            // A probe (another daemon checking whether this socket is alive) or a client that
            // gave up.
            Err(LineError::Eof) => return,
            Err(LineError::Io(e)) => {
                tracing::debug!(path = %shared.path.display(), error = %e, "control connection read failed");
                return;
            }
            Err(e) => Err(e.reason()),
        },
    };
    let response = match request {
        Err(reason) => {
            tracing::warn!(path = %shared.path.display(), uid = peer.uid, pid = peer.pid, %reason, "bad control request");
            Response::failure(ResponseError::BadRequest, reason)
        }
        Ok(_) if shared.stopping.load(Ordering::Acquire) => closing(),
        Ok(request) if !shared.policy.allows(&peer, &groups, request.role()) => {
            tracing::warn!(
                path = %shared.path.display(), command = request.name(),
                uid = peer.uid, gid = peer.gid, pid = peer.pid, groups = ?groups,
                "control request denied: the peer may only read"
            );
            let message = shared.policy.trade_refusal(&peer, request.name());
            Response::failure(ResponseError::Denied, message)
        }
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
        Request::Kill => Response::kill(handler.kill(peer)),
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

/// Reads what has arrived of a request line on a non-blocking stream: `None` while it is
/// incomplete. A last line without a newline counts when the peer closes.
fn read_available(stream: &UnixStream, line: &mut Vec<u8>) -> Option<Result<(), LineError>> {
    let mut chunk = [0u8; 4096];
    loop {
        let n = match (&*stream).read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
            Err(e) => return Some(Err(LineError::Io(e))),
        };
        if n == 0 {
            return Some(if line.is_empty() {
                Err(LineError::Eof)
            } else {
                Ok(())
            });
        }
        if let Some(done) = append_line(line, &chunk[..n], REQUEST_LEN_MAX) {
            return Some(done);
        }
    }
}
