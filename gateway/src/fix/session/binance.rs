//! Binance's signed Logon: [`BinanceLogon`] adds RawDataLength (95) and RawData (96), the
//! base64 of an Ed25519 signature, Username (553, the API key) and MessageHandling (25035) to
//! our Logon.
//!
//! The signed payload, as Binance's FIX API documentation gives it, is five header values of
//! the Logon itself joined by SOH:
//!
//! ```text
//! MsgType (35) "A" | SenderCompID (49) | TargetCompID (56) | MsgSeqNum (34) | SendingTime (52)
//! ```
//!
//! signed with pure Ed25519 (no prehash); the 64-byte signature is base64 (standard alphabet,
//! padded: 88 characters). Binance also requires ResetSeqNumFlag (141) = Y on its FIX API;
//! the caller sets [`SessionConfig::reset_seq_num`](super::SessionConfig) accordingly.

use base64::Engine as _;
use ed25519_dalek::{SECRET_KEY_LENGTH, SIGNATURE_LENGTH, Signer as _, SigningKey};

use crate::fix::encode::COMP_ID_LEN_MAX;
use crate::fix::{SOH, UTC_TIMESTAMP_LEN, UtcTimestamp, msg_type};

/// Longest API key, in bytes (Binance's are 64 characters).
pub const API_KEY_LEN_MAX: usize = 128;

/// Length of the base64 of a signature: 64 bytes -> 88 characters with padding.
pub const SIGNATURE_BASE64_LEN: usize = SIGNATURE_LENGTH.div_ceil(3) * 4;

/// Longest signed payload: `A|<sender>|<target>|<seq, 20 digits>|<time>`.
const PAYLOAD_LEN_MAX: usize =
    1 + 1 + COMP_ID_LEN_MAX + 1 + COMP_ID_LEN_MAX + 1 + 20 + 1 + UTC_TIMESTAMP_LEN;

/// MessageHandling (25035): whether Binance may process our messages out of order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageHandling {
    /// `1`: possibly reordered, faster.
    Unordered,
    /// `2`: processed in MsgSeqNum order.
    Sequential,
}

impl MessageHandling {
    /// The FIX value.
    pub fn code(self) -> u8 {
        match self {
            MessageHandling::Unordered => b'1',
            MessageHandling::Sequential => b'2',
        }
    }
}

/// Why a [`BinanceLogon`] could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BinanceLogonError {
    #[error("the API key is {len} bytes long; 1 to {API_KEY_LEN_MAX} expected")]
    ApiKeyLength { len: usize },
    #[error("the API key has byte {byte:#04x} at offset {offset}: printable ASCII expected")]
    ApiKeyByte { offset: usize, byte: u8 },
}

/// The credentials of a Binance FIX session: the API key and its Ed25519 private key. `Debug`
/// shows neither secret.
#[derive(Clone, PartialEq, Eq)]
pub struct BinanceLogon {
    api_key: String,
    signing_key: SigningKey,
    message_handling: MessageHandling,
}

impl std::fmt::Debug for BinanceLogon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BinanceLogon")
            .field("api_key", &"<redacted>")
            .field("message_handling", &self.message_handling)
            .finish_non_exhaustive()
    }
}

impl BinanceLogon {
    /// `api_key` (sent as Username, 553) and the 32-byte Ed25519 private key (seed) registered
    /// with it.
    pub fn new(
        api_key: &str,
        secret_key: &[u8; SECRET_KEY_LENGTH],
        message_handling: MessageHandling,
    ) -> Result<BinanceLogon, BinanceLogonError> {
        if api_key.is_empty() || api_key.len() > API_KEY_LEN_MAX {
            return Err(BinanceLogonError::ApiKeyLength { len: api_key.len() });
        }
        if let Some((offset, byte)) = api_key
            .bytes()
            .enumerate()
            .find(|&(_, b)| !b.is_ascii_graphic())
        {
            return Err(BinanceLogonError::ApiKeyByte { offset, byte });
        }
        Ok(BinanceLogon {
            api_key: api_key.to_owned(),
            signing_key: SigningKey::from_bytes(secret_key),
            message_handling,
        })
    }

    /// The API key (Username, 553).
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// MessageHandling (25035).
    pub fn message_handling(&self) -> MessageHandling {
        self.message_handling
    }

    /// The public key matching the private key, as registered with Binance.
    pub fn public_key(&self) -> [u8; 32] {
        self.signing_key.verifying_key().to_bytes()
    }

    /// The base64 signature of the Logon with these header values, into `out`.
    pub fn sign(
        &self,
        sender_comp_id: &[u8],
        target_comp_id: &[u8],
        msg_seq_num: u64,
        sending_time: &UtcTimestamp,
        out: &mut [u8; SIGNATURE_BASE64_LEN],
    ) {
        let mut payload = [0u8; PAYLOAD_LEN_MAX];
        let mut len = 0;
        let mut seq_digits = [0u8; 20];
        let seq = u64_digits(msg_seq_num, &mut seq_digits);
        for (i, part) in [
            msg_type::LOGON,
            sender_comp_id,
            target_comp_id,
            seq,
            sending_time.as_bytes(),
        ]
        .into_iter()
        .enumerate()
        {
            if i > 0 {
                payload[len] = SOH;
                len += 1;
            }
            payload[len..len + part.len()].copy_from_slice(part);
            len += part.len();
        }
        let signature = self.signing_key.sign(&payload[..len]).to_bytes();
        let written = base64::engine::general_purpose::STANDARD
            .encode_slice(signature, out)
            .expect("SIGNATURE_BASE64_LEN holds the base64 of a signature");
        debug_assert_eq!(written, SIGNATURE_BASE64_LEN);
    }
}

/// `value` in decimal, in `out`.
fn u64_digits(mut value: u64, out: &mut [u8; 20]) -> &[u8] {
    let mut at = out.len();
    loop {
        at -= 1;
        out[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            return &out[at..];
        }
    }
}
