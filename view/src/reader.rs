//! Reading a journal one frame at a time ([`FrameReader`]), each frame with the calibration and
//! the epoch of its own segment.

use std::path::Path;

use levibot_shm::{ShmError, StartAt, Tailer, TscCalibration, WriterRestart};

use crate::view::FrameMeta;

/// What [`FrameReader::next_event`] found.
#[derive(Debug)]
pub enum Event {
    /// A frame; its payload is [`FrameReader::payload`] until the next call.
    Frame(FrameMeta, TscCalibration),
    /// The frames that follow are of a new writer run (or a new journal).
    Restart(WriterRestart),
    /// A segment was missing (pruned while we were behind); reading went on after it.
    Missing(ShmError),
    /// Nothing more for now.
    Idle,
}

/// Reads a journal one frame at a time, so that each frame comes with the calibration and the
/// epoch of its own segment (a batch could cross into a new writer run). The payload is copied
/// into a reused buffer (at most `PAYLOAD_LEN_MAX`).
pub struct FrameReader {
    tailer: Tailer,
    buf: Vec<u8>,
    last: Option<(FrameMeta, TscCalibration)>,
    /// The last frame, to be handed out again (see [`unread`](Self::unread)).
    replay: bool,
    /// A frame read in the same poll as a restart, handed out after the restart.
    pending: bool,
}

impl FrameReader {
    pub fn open(dir: &Path, start: StartAt) -> Result<FrameReader, ShmError> {
        Ok(FrameReader {
            tailer: Tailer::open(dir, start)?,
            buf: Vec::new(),
            last: None,
            replay: false,
            pending: false,
        })
    }

    pub fn tailer(&self) -> &Tailer {
        &self.tailer
    }

    pub fn payload(&self) -> &[u8] {
        &self.buf
    }

    /// Hands the last frame out again on the next call (a scan that read one frame too far).
    pub fn unread(&mut self) {
        self.replay = self.last.is_some();
    }

    pub fn next_event(&mut self) -> Result<Event, ShmError> {
        if self.replay || self.pending {
            self.replay = false;
            self.pending = false;
            let (meta, cal) = self.last.expect("a frame was read");
            return Ok(Event::Frame(meta, cal));
        }
        let mut got = None;
        let buf = &mut self.buf;
        let polled = match self.tailer.poll(1, |frame| {
            buf.clear();
            buf.extend_from_slice(frame.payload);
            got = Some((
                frame.position,
                frame.record_type,
                frame.writer_id,
                frame.sequence,
                frame.tsc,
            ));
        }) {
            Ok(polled) => polled,
            Err(missing @ ShmError::SegmentMissing { .. }) => return Ok(Event::Missing(missing)),
            Err(e) => return Err(e),
        };
        if let Some((position, record_type, writer_id, sequence, tsc)) = got {
            // One frame per poll: the tailer is still on the frame's segment.
            let cal = self.tailer.calibration();
            let meta = FrameMeta {
                position: position.0,
                record_type,
                writer_id,
                sequence,
                tsc,
                unix_ns: cal.to_unix_ns(tsc),
                epoch: self.tailer.epoch(),
            };
            self.last = Some((meta, cal));
            if let Some(restart) = polled.writer_restart {
                self.pending = true;
                return Ok(Event::Restart(restart));
            }
            return Ok(Event::Frame(meta, cal));
        }
        Ok(match polled.writer_restart {
            Some(restart) => Event::Restart(restart),
            None => Event::Idle,
        })
    }
}
