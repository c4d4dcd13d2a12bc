//! `control_request`: the daemon's control socket, from the bytes a client sends to the
//! request the handler gets.
//!
//! The first byte picks how the rest arrives (in chunks of 1..=64 bytes, or whole); the rest is
//! what the client wrote. Checked:
//! - no panic, in the line framing, the protocol check or the request's JSON;
//! - the chunking does not matter (the same bytes in one chunk give the same answer);
//! - a request read re-serializes ([`Request::to_line`]) to one line that reads back as itself;
//! - the `bad_request` answer to anything else is one JSON line naming the problem;
//! - a `set` request's key and value, applied to a valid config as the daemon applies them
//!   (`DaemonConfig::with_limit_set`), give a config or problems with their key, never a panic.

use std::sync::OnceLock;

use levibot_control::{REQUEST_LEN_MAX, Request, Response, ResponseError, request_from_chunks};
use levibot_daemon::config::DaemonConfig;

/// A valid config (the `config` target's seed) for `set` requests to edit.
fn config() -> &'static DaemonConfig {
    static CONFIG: OnceLock<DaemonConfig> = OnceLock::new();
    CONFIG.get_or_init(crate::config::valid_config)
}

pub fn control_request(data: &[u8]) {
    let Some((&how, bytes)) = data.split_first() else {
        return;
    };
    let whole = request_from_chunks([bytes]);
    if how & 0x80 != 0 {
        let size = usize::from(how & 0x3f) + 1;
        let chunked = request_from_chunks(bytes.chunks(size));
        assert_eq!(chunked, whole, "chunks of {size} bytes read differently");
    }
    match whole {
        Ok(request) => {
            let line = request.to_line();
            assert!(
                !line.contains('\n'),
                "a request line with a newline: {line:?}"
            );
            assert_eq!(
                Request::from_line(line.as_bytes()).as_ref(),
                Ok(&request),
                "{line}"
            );
            let _ = (request.name(), request.role());
            if let Request::Set { key, value } = &request {
                set(key, value);
            }
        }
        Err(reason) => {
            assert!(!reason.is_empty());
            let response = Response::failure(ResponseError::BadRequest, reason.clone());
            let line = response.to_line();
            assert!(!line.contains('\n'), "a response line with a newline");
            let back: Response = serde_json::from_str(&line).expect("the response reads back");
            assert_eq!(back, response);
            // The line was at most REQUEST_LEN_MAX: so is what the answer quotes of it.
            assert!(
                reason.len() <= 2 * REQUEST_LEN_MAX + 512,
                "a {} byte answer to at most {REQUEST_LEN_MAX} bytes",
                reason.len()
            );
        }
    }
}

/// `levictl set <key> <value>` as the daemon's handler applies it.
fn set(key: &str, value: &str) {
    match config().with_limit_set(key, value) {
        Ok(new) => {
            assert!(new.reloadable_change(config()).is_ok());
            assert_eq!(new.path, config().path);
        }
        Err(errors) => {
            assert!(!errors.problems.is_empty());
            for problem in &errors.problems {
                assert!(
                    !problem.key.is_empty() || key.trim().is_empty(),
                    "set {key:?} {value:?}: a problem without a key: {}",
                    problem.problem
                );
            }
        }
    }
}
