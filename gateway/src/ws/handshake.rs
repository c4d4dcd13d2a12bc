//! The opening handshake (RFC 6455 section 4.1), sans IO: the HTTP/1.1 upgrade request and the
//! check of the server's response. Cold path: it may allocate.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha1::{Digest as _, Sha1};

use super::{HANDSHAKE_HEADERS_MAX, HANDSHAKE_RESPONSE_LEN_MAX};

/// The GUID appended to the key before hashing (RFC 6455 section 1.3).
pub const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Why the server's handshake response was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error("handshake response: malformed HTTP at or before byte {at}: {error}")]
    Http { at: usize, error: String },
    #[error(
        "handshake response: the head is over {HANDSHAKE_RESPONSE_LEN_MAX} bytes without its end"
    )]
    TooLarge,
    #[error("handshake response: status {status} {reason:?}, expected 101 Switching Protocols")]
    Status { status: u16, reason: String },
    #[error("handshake response: no {0} header")]
    MissingHeader(&'static str),
    #[error("handshake response: header {name}: {value:?} ({why})")]
    BadHeader {
        name: &'static str,
        value: String,
        why: &'static str,
    },
    #[error("handshake response: Sec-WebSocket-Accept is {got:?}, expected {expected:?}")]
    BadAccept { expected: String, got: String },
}

/// The `Sec-WebSocket-Accept` value a server must answer to `key` (the base64 key as sent).
pub fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(WEBSOCKET_GUID.as_bytes());
    BASE64.encode(sha.finalize())
}

/// A handshake in progress: the key we sent, and what the answer must carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handshake {
    key: String,
    request: Vec<u8>,
}

impl Handshake {
    /// The upgrade request for `path` (with its query) on `host` (`host` or `host:port`, as the
    /// `Host` header wants it), with a `Sec-WebSocket-Key` from the 16 bytes of `nonce` (random:
    /// see [`random_nonce`]).
    pub fn new(host: &str, path: &str, nonce: [u8; 16]) -> Handshake {
        let key = BASE64.encode(nonce);
        let request = format!(
            "GET {path} HTTP/1.1\r\n\
             Host: {host}\r\n\
             Upgrade: websocket\r\n\
             Connection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\n\
             Sec-WebSocket-Version: 13\r\n\
             User-Agent: levibot\r\n\
             \r\n"
        )
        .into_bytes();
        Handshake { key, request }
    }

    /// The request bytes to send.
    pub fn request(&self) -> &[u8] {
        &self.request
    }

    /// The `Sec-WebSocket-Key` sent.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Checks the response at the start of `buf`: `Ok(None)` while its head is incomplete,
    /// `Ok(Some(n))` once it is complete and valid, `n` being the length of the head (bytes after
    /// it are already WebSocket frames).
    pub fn parse_response(&self, buf: &[u8]) -> Result<Option<usize>, HandshakeError> {
        let mut headers = [httparse::EMPTY_HEADER; HANDSHAKE_HEADERS_MAX];
        let mut response = httparse::Response::new(&mut headers);
        let head_len = match response.parse(buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => {
                if buf.len() >= HANDSHAKE_RESPONSE_LEN_MAX {
                    return Err(HandshakeError::TooLarge);
                }
                return Ok(None);
            }
            Err(error) => {
                return Err(HandshakeError::Http {
                    at: buf.len(),
                    error: error.to_string(),
                });
            }
        };
        let status = response.code.unwrap_or(0);
        if status != 101 {
            return Err(HandshakeError::Status {
                status,
                reason: response.reason.unwrap_or("").to_owned(),
            });
        }
        let header = |name: &'static str| -> Result<&str, HandshakeError> {
            let h = response
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .ok_or(HandshakeError::MissingHeader(name))?;
            std::str::from_utf8(h.value)
                .map(str::trim)
                .map_err(|_| HandshakeError::BadHeader {
                    name,
                    value: String::from_utf8_lossy(h.value).into_owned(),
                    why: "not UTF-8",
                })
        };
        let upgrade = header("Upgrade")?;
        if !upgrade.eq_ignore_ascii_case("websocket") {
            return Err(HandshakeError::BadHeader {
                name: "Upgrade",
                value: upgrade.to_owned(),
                why: "expected websocket",
            });
        }
        let connection = header("Connection")?;
        if !connection
            .split(',')
            .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
        {
            return Err(HandshakeError::BadHeader {
                name: "Connection",
                value: connection.to_owned(),
                why: "expected the Upgrade token",
            });
        }
        let got = header("Sec-WebSocket-Accept")?;
        let expected = accept_key(&self.key);
        if got != expected {
            return Err(HandshakeError::BadAccept {
                expected,
                got: got.to_owned(),
            });
        }
        // We asked for no extension and no subprotocol: a server that picks one fails us.
        for name in ["Sec-WebSocket-Extensions", "Sec-WebSocket-Protocol"] {
            if let Ok(value) = header(name) {
                return Err(HandshakeError::BadHeader {
                    name,
                    value: value.to_owned(),
                    why: "none was requested",
                });
            }
        }
        Ok(Some(head_len))
    }
}

/// 16 bytes from the operating system's random source, for a `Sec-WebSocket-Key`.
pub fn random_nonce() -> Result<[u8; 16], getrandom::Error> {
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce)?;
    Ok(nonce)
}
