//! The control socket's client: one request, one response, never blocking past its timeout.

use std::fmt::Write as _;
use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use rustix::io::Errno;

use super::access::{name_of, named};
use super::{
    ControlError, LineError, PROTOCOL_VERSION, REQUEST_LEN_MAX, RESPONSE_LEN_MAX, Request,
    Response, ResponseError, io_error, read_line, socket_addr, unix_socket,
};

/// How long a client waits between connection attempts while the daemon's backlog is full.
const CONNECT_RETRY_INTERVAL: Duration = Duration::from_millis(10);

/// Sends `request` to the daemon at `path` and waits up to `timeout` for its answer. `Ok` only
/// if the daemon did it; its refusals, and every reason it could not be asked, are errors.
pub fn request(
    path: &Path,
    request: &Request,
    timeout: Duration,
) -> Result<Response, ControlError> {
    into_result(path, exchange(path, request, timeout)?)
}

/// Like [`request`], but the daemon's answer comes back as it is, `ok` or not: a `kill` that
/// could not confirm everything still carries its [`KillReport`](super::KillReport). Only the
/// reasons the daemon could not be asked are errors.
pub fn exchange(
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
    serde_json::from_value(value).map_err(|e| protocol_error(format!("not a response: {e}")))
}

/// A response of the daemon at `path` as a result: `Ok` if it did it, else its refusal as an
/// error.
pub fn into_result(path: &Path, response: Response) -> Result<Response, ControlError> {
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
