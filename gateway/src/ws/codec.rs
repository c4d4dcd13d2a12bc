//! The sans-IO WebSocket connection (RFC 6455 sections 5 and 7): bytes in, events and bytes out.
//!
//! [`WsCodec`] owns three fixed buffers, allocated when it is made and never grown:
//!
//! - the receive buffer ([`RX_BUFFER_LEN`]): the transport reads socket bytes into
//!   [`WsCodec::read_buf`] and reports them with [`WsCodec::filled`]. A whole unfragmented frame
//!   is handed out in place (no copy); the buffer is compacted only when a partial frame sits near
//!   its end, and it always has room for one frame of [`FRAME_PAYLOAD_LEN_MAX`] bytes;
//! - the message buffer ([`WS_MESSAGE_LEN_MAX`]): fragments are reassembled there;
//! - the output buffer ([`TX_BUFFER_LEN`]): our masked frames (pongs, close, text we send)
//!   waiting for the transport to take them with [`WsCodec::output`] and
//!   [`WsCodec::consume_output`].
//!
//! [`WsCodec::poll_event`] parses the next frame: data messages come out whole, a ping queues its
//! pong (a newer ping replaces an unsent pong, as RFC 6455 5.5.3 allows), a Close is answered.
//! A protocol violation is a [`FrameError`] naming the byte offset of the frame in the stream;
//! the codec then queues a Close with the matching status code and stops reading.
//!
//! Mask keys come from a pool of [`MASK_POOL_LEN`] bytes refilled from the OS (`getrandom`)
//! every `MASK_POOL_LEN / 4` frames we send: a system call once per 64 pongs or closes, never on
//! the read path.

use super::frame::{HeaderError, Opcode, parse_header, write_masked_frame};
use super::{
    CONTROL_PAYLOAD_LEN_MAX, FRAME_HEADER_LEN_MAX, FRAME_PAYLOAD_LEN_MAX, MASK_POOL_LEN,
    RX_BUFFER_LEN, RX_COMPACT_FREE_MIN, TX_BUFFER_LEN, WS_MESSAGE_LEN_MAX,
};

/// Written over every buffer when the codec is made: a non-zero fill touches every page, so
/// that no first-touch page fault lands on the hot path (a zeroed allocation maps pages lazily).
const PREFAULT_FILL: u8 = 0xA5;

/// Close status codes (RFC 6455 7.4.1).
pub mod close_code {
    /// Normal closure.
    pub const NORMAL: u16 = 1000;
    /// The endpoint is going away (shutdown).
    pub const GOING_AWAY: u16 = 1001;
    /// A protocol error.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// A data type the endpoint cannot accept.
    pub const UNSUPPORTED_DATA: u16 = 1003;
    /// Data inconsistent with the message type (invalid UTF-8 in a text message).
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// A message too big to process.
    pub const MESSAGE_TOO_BIG: u16 = 1009;
}

/// Text or binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageKind {
    Text,
    Binary,
}

/// Where the codec is in the close handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodecState {
    /// Messages flow both ways.
    Open,
    /// We sent a Close and wait for the peer's.
    CloseSent,
    /// Both Closes seen (or a protocol error): no more frames are read; the TCP connection can
    /// go once [`WsCodec::output`] is empty.
    Closed,
}

/// Where mask keys come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaskKeys {
    /// The operating system's random source (RFC 6455 10.3 requires unpredictable keys).
    Os,
    /// Always this key: for tests that check exact bytes only.
    Fixed([u8; 4]),
}

/// Codec settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WsConfig {
    /// Check that text messages and close reasons are UTF-8, as RFC 6455 8.1 requires.
    pub validate_utf8: bool,
    pub mask_keys: MaskKeys,
}

impl Default for WsConfig {
    fn default() -> WsConfig {
        WsConfig {
            validate_utf8: true,
            mask_keys: MaskKeys::Os,
        }
    }
}

/// A peer's Close frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloseFrame<'a> {
    /// The status code, if the frame had one.
    pub code: Option<u16>,
    /// The reason's bytes (checked to be UTF-8 when `validate_utf8` is on).
    pub reason: &'a [u8],
}

/// What one frame (or the last fragment of a message) produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A whole data message.
    Message(MessageKind, &'a [u8]),
    /// A ping; its pong is queued already.
    Ping(&'a [u8]),
    /// A pong (unsolicited or not; nothing to do).
    Pong(&'a [u8]),
    /// The peer's Close; our answer is queued if we had not sent one.
    Close(CloseFrame<'a>),
}

/// Where an event's bytes are in the codec's buffers: see [`WsCodec::span`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    in_message: bool,
    start: usize,
    end: usize,
}

impl Span {
    fn rx(start: usize, end: usize) -> Span {
        Span {
            in_message: false,
            start,
            end,
        }
    }

    fn message(len: usize) -> Span {
        Span {
            in_message: true,
            start: 0,
            end: len,
        }
    }

    pub fn len(&self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

/// An [`Event`] whose bytes are [`Span`]s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawEvent {
    Message(MessageKind, Span),
    Ping(Span),
    Pong(Span),
    /// The status code and the reason.
    Close(Option<u16>, Span),
}

/// A protocol violation in the peer's bytes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("WebSocket frame at byte {offset} of the stream: {kind}")]
pub struct FrameError {
    /// Byte offset of the offending frame's first byte, counted from the first byte after the
    /// handshake response.
    pub offset: u64,
    pub kind: FrameErrorKind,
}

/// What was wrong with a frame.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameErrorKind {
    #[error("reserved bits RSV1-3 = {0:#05b} set without a negotiated extension")]
    ReservedBits(u8),
    #[error("reserved opcode {0:#x}")]
    ReservedOpcode(u8),
    #[error("a masked frame from the server (RFC 6455 5.1 forbids it)")]
    MaskedFromServer,
    #[error("a fragmented {0:?} frame (control frames cannot be fragmented)")]
    FragmentedControl(Opcode),
    #[error("a {opcode:?} frame of {len} bytes (control frames carry at most 125)")]
    ControlTooLong { opcode: Opcode, len: u64 },
    #[error("the 64-bit payload length has its most significant bit set")]
    LengthMsbSet,
    #[error("a frame of {len} bytes is over the {FRAME_PAYLOAD_LEN_MAX}-byte limit")]
    FrameTooLarge { len: u64 },
    #[error(
        "a fragmented message of at least {len} bytes is over the {WS_MESSAGE_LEN_MAX}-byte limit"
    )]
    MessageTooLarge { len: u64 },
    #[error("a new {0:?} frame inside a fragmented message (a continuation was expected)")]
    ExpectedContinuation(Opcode),
    #[error("a continuation frame outside a fragmented message")]
    UnexpectedContinuation,
    #[error("invalid UTF-8 at byte {at} of a text message")]
    InvalidUtf8 { at: usize },
    #[error("invalid UTF-8 at byte {at} of a close reason")]
    InvalidCloseReason { at: usize },
    #[error("a Close frame with a 1-byte payload (a status code takes 2)")]
    CloseOneByte,
    #[error("close status code {0} may not be sent on the wire")]
    InvalidCloseCode(u16),
}

impl FrameErrorKind {
    /// The status code of the Close we send back for it.
    pub fn close_code(&self) -> u16 {
        match self {
            FrameErrorKind::FrameTooLarge { .. } | FrameErrorKind::MessageTooLarge { .. } => {
                close_code::MESSAGE_TOO_BIG
            }
            FrameErrorKind::InvalidUtf8 { .. } | FrameErrorKind::InvalidCloseReason { .. } => {
                close_code::INVALID_PAYLOAD
            }
            _ => close_code::PROTOCOL_ERROR,
        }
    }
}

/// Why a frame of ours could not be queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("the connection is closing: no more data frames")]
    Closing,
    #[error("a {len}-byte frame does not fit in the {free} free bytes of the output buffer")]
    OutputFull { len: usize, free: usize },
    #[error("a close reason of {len} bytes (at most 123)")]
    CloseReasonTooLong { len: usize },
}

/// Counts kept by a codec.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CodecStats {
    pub bytes_in: u64,
    pub frames_in: u64,
    pub messages_in: u64,
    pub fragmented_messages_in: u64,
    pub pings_in: u64,
    pub pongs_in: u64,
    pub pongs_queued: u64,
    /// Unsent pongs replaced by a newer ping's.
    pub pongs_replaced: u64,
}

/// The sans-IO client side of one WebSocket connection (after the handshake).
pub struct WsCodec {
    config: WsConfig,
    rx: Box<[u8]>,
    rx_start: usize,
    rx_end: usize,
    /// Stream offset of `rx[rx_start]`.
    rx_offset: u64,
    message: Box<[u8]>,
    message_len: usize,
    /// The kind of the fragmented message being reassembled.
    fragmented: Option<MessageKind>,
    tx: Box<[u8]>,
    tx_start: usize,
    tx_end: usize,
    /// The latest ping's payload, while its pong is not in `tx` yet.
    pong: [u8; CONTROL_PAYLOAD_LEN_MAX],
    pong_pending: Option<usize>,
    masks: [u8; MASK_POOL_LEN],
    masks_at: usize,
    state: CodecState,
    stats: CodecStats,
}

impl std::fmt::Debug for WsCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsCodec")
            .field("state", &self.state)
            .field("rx_buffered", &(self.rx_end - self.rx_start))
            .field("tx_pending", &(self.tx_end - self.tx_start))
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl WsCodec {
    /// A codec with its buffers allocated now.
    pub fn new(config: WsConfig) -> WsCodec {
        let mut codec = WsCodec {
            config,
            rx: vec![PREFAULT_FILL; RX_BUFFER_LEN].into_boxed_slice(),
            rx_start: 0,
            rx_end: 0,
            rx_offset: 0,
            message: vec![PREFAULT_FILL; WS_MESSAGE_LEN_MAX].into_boxed_slice(),
            message_len: 0,
            fragmented: None,
            tx: vec![PREFAULT_FILL; TX_BUFFER_LEN].into_boxed_slice(),
            tx_start: 0,
            tx_end: 0,
            pong: [0; CONTROL_PAYLOAD_LEN_MAX],
            pong_pending: None,
            masks: [0; MASK_POOL_LEN],
            masks_at: MASK_POOL_LEN,
            state: CodecState::Open,
            stats: CodecStats::default(),
        };
        codec.refill_masks();
        codec
    }

    /// The codec as [`new`](Self::new) makes it, for a new connection, keeping its buffers (no
    /// allocation; the old bytes stay in them but are never read: every index starts again).
    pub fn reset(&mut self, config: WsConfig) {
        self.config = config;
        self.rx_start = 0;
        self.rx_end = 0;
        self.rx_offset = 0;
        self.message_len = 0;
        self.fragmented = None;
        self.tx_start = 0;
        self.tx_end = 0;
        self.pong_pending = None;
        self.masks_at = MASK_POOL_LEN;
        self.state = CodecState::Open;
        self.stats = CodecStats::default();
        self.refill_masks();
    }

    pub fn state(&self) -> CodecState {
        self.state
    }

    pub fn stats(&self) -> CodecStats {
        self.stats
    }

    /// Bytes received and not parsed yet.
    pub fn buffered(&self) -> usize {
        self.rx_end - self.rx_start
    }

    /// Free space to read socket bytes into; never empty while the codec waits for bytes.
    pub fn read_buf(&mut self) -> &mut [u8] {
        if self.rx_start == self.rx_end {
            self.rx_start = 0;
            self.rx_end = 0;
        } else if self.rx_start > 0 && self.rx.len() - self.rx_end < RX_COMPACT_FREE_MIN {
            self.rx.copy_within(self.rx_start..self.rx_end, 0);
            self.rx_end -= self.rx_start;
            self.rx_start = 0;
        }
        &mut self.rx[self.rx_end..]
    }

    /// Records that `n` bytes were written at the start of [`read_buf`](Self::read_buf).
    pub fn filled(&mut self, n: usize) {
        assert!(self.rx_end + n <= self.rx.len(), "filled past read_buf");
        self.rx_end += n;
        self.stats.bytes_in += n as u64;
    }

    /// Copies as much of `bytes` as fits into the receive buffer; returns how much did.
    pub fn feed(&mut self, bytes: &[u8]) -> usize {
        let buf = self.read_buf();
        let n = bytes.len().min(buf.len());
        buf[..n].copy_from_slice(&bytes[..n]);
        self.filled(n);
        n
    }

    /// Bytes to send, oldest first (a pending pong is moved in first if it fits).
    pub fn output(&mut self) -> &[u8] {
        if let Some(len) = self.pong_pending {
            let key = self.mask_key();
            self.compact_tx();
            if let Some(n) = write_masked_frame(
                &mut self.tx[self.tx_end..],
                Opcode::Pong,
                &self.pong[..len],
                key,
            ) {
                self.tx_end += n;
                self.pong_pending = None;
                self.stats.pongs_queued += 1;
            }
        }
        &self.tx[self.tx_start..self.tx_end]
    }

    /// Whether anything waits to be sent.
    pub fn wants_write(&self) -> bool {
        self.tx_start < self.tx_end || self.pong_pending.is_some()
    }

    /// Records that the first `n` bytes of [`output`](Self::output) were sent.
    pub fn consume_output(&mut self, n: usize) {
        assert!(self.tx_start + n <= self.tx_end, "consumed past output");
        self.tx_start += n;
        if self.tx_start == self.tx_end {
            self.tx_start = 0;
            self.tx_end = 0;
        }
    }

    /// Queues one data message as a single masked frame.
    pub fn send(&mut self, kind: MessageKind, payload: &[u8]) -> Result<(), SendError> {
        if self.state != CodecState::Open {
            return Err(SendError::Closing);
        }
        let opcode = match kind {
            MessageKind::Text => Opcode::Text,
            MessageKind::Binary => Opcode::Binary,
        };
        self.queue(opcode, payload)
    }

    /// Queues a Ping with `payload` (at most 125 bytes): the keepalive a client sends to find
    /// out whether the server still answers.
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), SendError> {
        if self.state != CodecState::Open {
            return Err(SendError::Closing);
        }
        if payload.len() > CONTROL_PAYLOAD_LEN_MAX {
            return Err(SendError::OutputFull {
                len: payload.len(),
                free: CONTROL_PAYLOAD_LEN_MAX,
            });
        }
        self.queue(Opcode::Ping, payload)
    }

    /// Starts the close handshake with `code` and `reason` (at most 123 bytes). Does nothing if
    /// a Close was sent already.
    pub fn close(&mut self, code: u16, reason: &[u8]) -> Result<(), SendError> {
        if self.state != CodecState::Open {
            return Ok(());
        }
        if reason.len() > CONTROL_PAYLOAD_LEN_MAX - 2 {
            return Err(SendError::CloseReasonTooLong { len: reason.len() });
        }
        let mut payload = [0u8; CONTROL_PAYLOAD_LEN_MAX];
        payload[..2].copy_from_slice(&code.to_be_bytes());
        payload[2..2 + reason.len()].copy_from_slice(reason);
        self.queue(Opcode::Close, &payload[..2 + reason.len()])?;
        self.state = CodecState::CloseSent;
        Ok(())
    }

    /// Parses the next frame: `Ok(None)` when more bytes are needed (or the codec is closed).
    pub fn poll_event(&mut self) -> Result<Option<Event<'_>>, FrameError> {
        let raw = self.poll_raw()?;
        Ok(raw.map(|raw| self.resolve(raw)))
    }

    /// The bytes of a [`RawEvent`] just returned by [`poll_raw`](Self::poll_raw).
    pub fn resolve(&self, raw: RawEvent) -> Event<'_> {
        match raw {
            RawEvent::Message(kind, span) => Event::Message(kind, self.span(span)),
            RawEvent::Ping(span) => Event::Ping(self.span(span)),
            RawEvent::Pong(span) => Event::Pong(self.span(span)),
            RawEvent::Close(code, span) => Event::Close(CloseFrame {
                code,
                reason: self.span(span),
            }),
        }
    }

    /// The bytes of a span; valid until the next call that takes `&mut self`.
    pub fn span(&self, span: Span) -> &[u8] {
        match span.in_message {
            true => &self.message[span.start..span.end],
            false => &self.rx[span.start..span.end],
        }
    }

    /// [`poll_event`](Self::poll_event) without the borrow: the event's bytes as a [`Span`], for
    /// a caller that loops (a borrow returned from a loop would keep `self` borrowed).
    pub fn poll_raw(&mut self) -> Result<Option<RawEvent>, FrameError> {
        loop {
            if self.state == CodecState::Closed {
                return Ok(None);
            }
            let avail = &self.rx[self.rx_start..self.rx_end];
            let offset = self.rx_offset;
            let header = match parse_header(avail) {
                Ok(Some(header)) => header,
                Ok(None) => return Ok(None),
                Err(HeaderError::LengthMsbSet) => {
                    return Err(self.fail(offset, FrameErrorKind::LengthMsbSet));
                }
            };
            if header.rsv != 0 {
                return Err(self.fail(offset, FrameErrorKind::ReservedBits(header.rsv)));
            }
            let Some(opcode) = Opcode::from_bits(header.opcode_bits) else {
                let bits = header.opcode_bits;
                return Err(self.fail(offset, FrameErrorKind::ReservedOpcode(bits)));
            };
            if header.mask.is_some() {
                return Err(self.fail(offset, FrameErrorKind::MaskedFromServer));
            }
            let len = header.payload_len;
            if opcode.is_control() {
                if !header.fin {
                    return Err(self.fail(offset, FrameErrorKind::FragmentedControl(opcode)));
                }
                if len > CONTROL_PAYLOAD_LEN_MAX as u64 {
                    return Err(self.fail(offset, FrameErrorKind::ControlTooLong { opcode, len }));
                }
            }
            if len > FRAME_PAYLOAD_LEN_MAX as u64 {
                return Err(self.fail(offset, FrameErrorKind::FrameTooLarge { len }));
            }
            let len = len as usize;
            if avail.len() < header.header_len + len {
                return Ok(None);
            }
            let start = self.rx_start + header.header_len;
            let end = start + len;
            let frame_len = header.header_len + len;
            self.rx_start += frame_len;
            self.rx_offset += frame_len as u64;
            self.stats.frames_in += 1;
            match opcode {
                Opcode::Text | Opcode::Binary => {
                    let kind = if opcode == Opcode::Text {
                        MessageKind::Text
                    } else {
                        MessageKind::Binary
                    };
                    if self.fragmented.is_some() {
                        return Err(self.fail(offset, FrameErrorKind::ExpectedContinuation(opcode)));
                    }
                    if header.fin {
                        self.check_text(kind, start, end, offset)?;
                        self.stats.messages_in += 1;
                        return Ok(Some(RawEvent::Message(kind, Span::rx(start, end))));
                    }
                    self.message[..len].copy_from_slice(&self.rx[start..end]);
                    self.message_len = len;
                    self.fragmented = Some(kind);
                }
                Opcode::Continuation => {
                    let Some(kind) = self.fragmented else {
                        return Err(self.fail(offset, FrameErrorKind::UnexpectedContinuation));
                    };
                    let total = self.message_len + len;
                    if total > WS_MESSAGE_LEN_MAX {
                        let len = total as u64;
                        return Err(self.fail(offset, FrameErrorKind::MessageTooLarge { len }));
                    }
                    self.message[self.message_len..total].copy_from_slice(&self.rx[start..end]);
                    self.message_len = total;
                    if header.fin {
                        self.fragmented = None;
                        if kind == MessageKind::Text
                            && self.config.validate_utf8
                            && let Err(e) = std::str::from_utf8(&self.message[..total])
                        {
                            let at = e.valid_up_to();
                            return Err(self.fail(offset, FrameErrorKind::InvalidUtf8 { at }));
                        }
                        self.stats.messages_in += 1;
                        self.stats.fragmented_messages_in += 1;
                        return Ok(Some(RawEvent::Message(kind, Span::message(total))));
                    }
                }
                Opcode::Ping => {
                    self.stats.pings_in += 1;
                    if self.state == CodecState::Open {
                        if self.pong_pending.is_some() {
                            self.stats.pongs_replaced += 1;
                        }
                        self.pong[..len].copy_from_slice(&self.rx[start..end]);
                        self.pong_pending = Some(len);
                    }
                    return Ok(Some(RawEvent::Ping(Span::rx(start, end))));
                }
                Opcode::Pong => {
                    self.stats.pongs_in += 1;
                    return Ok(Some(RawEvent::Pong(Span::rx(start, end))));
                }
                Opcode::Close => {
                    let code = match len {
                        0 => None,
                        1 => return Err(self.fail(offset, FrameErrorKind::CloseOneByte)),
                        _ => {
                            let code = u16::from_be_bytes([self.rx[start], self.rx[start + 1]]);
                            if !close_code_valid(code) {
                                let kind = FrameErrorKind::InvalidCloseCode(code);
                                return Err(self.fail(offset, kind));
                            }
                            Some(code)
                        }
                    };
                    let reason_start = start + len.min(2);
                    if self.config.validate_utf8
                        && let Err(e) = std::str::from_utf8(&self.rx[reason_start..end])
                    {
                        let at = e.valid_up_to();
                        return Err(self.fail(offset, FrameErrorKind::InvalidCloseReason { at }));
                    }
                    if self.state == CodecState::Open {
                        // Echo the status code (RFC 6455 5.5.1); a Close without one gets an
                        // empty Close. Always fits: control frames are small and the output
                        // buffer is only ever full of our own control frames and sends.
                        let mut echo = [0u8; 2];
                        let echo_len = match code {
                            Some(code) => {
                                echo = code.to_be_bytes();
                                2
                            }
                            None => 0,
                        };
                        self.pong_pending = None;
                        let _ = self.queue(Opcode::Close, &echo[..echo_len]);
                    }
                    self.state = CodecState::Closed;
                    return Ok(Some(RawEvent::Close(code, Span::rx(reason_start, end))));
                }
            }
        }
    }

    fn check_text(
        &mut self,
        kind: MessageKind,
        start: usize,
        end: usize,
        offset: u64,
    ) -> Result<(), FrameError> {
        if kind == MessageKind::Text
            && self.config.validate_utf8
            && let Err(e) = std::str::from_utf8(&self.rx[start..end])
        {
            let at = e.valid_up_to();
            return Err(self.fail(offset, FrameErrorKind::InvalidUtf8 { at }));
        }
        Ok(())
    }

    /// A protocol error: queue a Close with its status code and stop reading.
    fn fail(&mut self, offset: u64, kind: FrameErrorKind) -> FrameError {
        if self.state == CodecState::Open {
            self.pong_pending = None;
            let _ = self.queue(Opcode::Close, &kind.close_code().to_be_bytes());
        }
        self.state = CodecState::Closed;
        FrameError { offset, kind }
    }

    fn compact_tx(&mut self) {
        if self.tx_start > 0 {
            self.tx.copy_within(self.tx_start..self.tx_end, 0);
            self.tx_end -= self.tx_start;
            self.tx_start = 0;
        }
    }

    fn queue(&mut self, opcode: Opcode, payload: &[u8]) -> Result<(), SendError> {
        let key = self.mask_key();
        self.compact_tx();
        let free = self.tx.len() - self.tx_end;
        match write_masked_frame(&mut self.tx[self.tx_end..], opcode, payload, key) {
            Some(n) => {
                self.tx_end += n;
                Ok(())
            }
            None => Err(SendError::OutputFull {
                len: payload.len() + FRAME_HEADER_LEN_MAX,
                free,
            }),
        }
    }

    fn mask_key(&mut self) -> [u8; 4] {
        if let MaskKeys::Fixed(key) = self.config.mask_keys {
            return key;
        }
        if self.masks_at + 4 > MASK_POOL_LEN {
            self.refill_masks();
        }
        let at = self.masks_at;
        self.masks_at += 4;
        [
            self.masks[at],
            self.masks[at + 1],
            self.masks[at + 2],
            self.masks[at + 3],
        ]
    }

    fn refill_masks(&mut self) {
        if self.config.mask_keys == MaskKeys::Os {
            // The kernel's random source does not fail on a supported Linux once booted; if it
            // does, the machine is unfit to run (an assertion, not an input error).
            getrandom::fill(&mut self.masks).expect("the OS random source failed");
        }
        self.masks_at = 0;
    }
}

/// Whether a received close code is allowed on the wire (RFC 6455 7.4.1-7.4.2, and the IANA
/// registry's 1012-1014).
pub fn close_code_valid(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}
