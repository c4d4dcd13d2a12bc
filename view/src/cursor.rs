//! Which records a command wants ([`Selection`]) and a reader that applies it ([`Cursor`]);
//! [`open_cursor`] seeks to the selection's start.

use std::path::Path;

use levibot_shm::{Position, RecordType, ShmError, StartAt, WriterRestart};

use crate::kind::RecordKind;
use crate::reader::{Event, FrameReader};
use crate::segments::Segments;
use crate::time::Bound;
use crate::view::{FrameDecoder, FrameMeta, View};

/// A `--to` time stops a scan once frames are this much later: frames of different writers are
/// in claim order, which is time order give or take a scheduling hiccup.
pub const TO_TIME_SLACK_NS: u64 = 1_000_000_000;

/// Which records a command wants.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Empty: every type.
    pub types: Vec<RecordType>,
    /// Compared case-insensitively.
    pub symbol: Option<String>,
    pub from: Option<Bound>,
    pub to: Option<Bound>,
    /// Frames at or after this position are past the scan (the journal's end when a scan that
    /// does not follow began).
    pub end: Option<u64>,
}

impl Selection {
    fn wants_frame(&self, meta: &FrameMeta) -> bool {
        if !self.types.is_empty() && !self.types.contains(&meta.record_type) {
            return false;
        }
        if self.symbol.is_some()
            && !RecordKind::from_record_type(meta.record_type)
                .is_some_and(RecordKind::has_instrument)
        {
            return false;
        }
        let after_from = match self.from {
            None => true,
            Some(Bound::Position(p)) => meta.position >= p,
            Some(Bound::Time(t)) => meta.unix_ns >= t,
        };
        let before_to = match self.to {
            None => true,
            Some(Bound::Position(p)) => meta.position < p,
            Some(Bound::Time(t)) => meta.unix_ns < t,
        };
        after_from && before_to
    }

    fn wants_view(&self, view: &View) -> bool {
        match &self.symbol {
            None => true,
            Some(symbol) => view
                .symbol()
                .is_some_and(|s| s.eq_ignore_ascii_case(symbol)),
        }
    }

    /// Whether a frame is past `to`, so that nothing after it can match.
    fn is_past(&self, meta: &FrameMeta) -> bool {
        if self.end.is_some_and(|end| meta.position >= end) {
            return true;
        }
        match self.to {
            None => false,
            Some(Bound::Position(p)) => meta.position >= p,
            Some(Bound::Time(t)) => meta.unix_ns >= t.saturating_add(TO_TIME_SLACK_NS),
        }
    }
}

/// What [`Cursor::step`] found.
#[derive(Debug)]
pub enum Step {
    View(Box<View>),
    /// A frame the selection does not want.
    Skipped,
    Restart(WriterRestart),
    Missing(ShmError),
    Idle,
    /// A frame past the selection's `to` (left unread).
    Past,
}

/// A [`FrameReader`] with a selection.
pub struct Cursor {
    pub reader: FrameReader,
    pub selection: Selection,
}

impl Cursor {
    pub fn step(&mut self, decoder: &mut FrameDecoder) -> Result<Step, ShmError> {
        let (meta, cal) = match self.reader.next_event()? {
            Event::Frame(meta, cal) => (meta, cal),
            Event::Restart(restart) => return Ok(Step::Restart(restart)),
            Event::Missing(e) => return Ok(Step::Missing(e)),
            Event::Idle => return Ok(Step::Idle),
        };
        if self.selection.is_past(&meta) {
            self.reader.unread();
            return Ok(Step::Past);
        }
        let payload = self.reader.payload();
        if !self.selection.wants_frame(&meta) {
            // Defs are learnt whatever is shown: later records need their symbols.
            decoder.learn(meta.record_type, payload);
            return Ok(Step::Skipped);
        }
        let view = decoder.decode(meta, cal, payload);
        Ok(if self.selection.wants_view(&view) {
            Step::View(Box::new(view))
        } else {
            Step::Skipped
        })
    }

    /// The next record the selection wants, or `None` at the end of a scan that does not
    /// follow (the journal's end, or past `to`). A missing segment (pruned while the scan ran)
    /// is handed to `on_missing` and passed over; writer restarts are passed over.
    pub fn next_view(
        &mut self,
        decoder: &mut FrameDecoder,
        mut on_missing: impl FnMut(&ShmError),
    ) -> Result<Option<Box<View>>, ShmError> {
        loop {
            match self.step(decoder)? {
                Step::View(view) => return Ok(Some(view)),
                Step::Skipped | Step::Restart(_) => {}
                Step::Missing(e) => on_missing(&e),
                Step::Idle | Step::Past => return Ok(None),
            }
        }
    }
}

/// Opens a cursor at `selection.from` (the journal's beginning without one), having learnt the
/// instrument defs of the newest run and of the run it starts in. The cursor's `selection.end`
/// is the journal's end at opening: clear it to follow.
pub fn open_cursor(
    dir: &Path,
    mut selection: Selection,
    decoder: &mut FrameDecoder,
) -> Result<Cursor, ShmError> {
    let Some(segments) = Segments::scan(dir)? else {
        let reader = FrameReader::open(dir, StartAt::Beginning)?;
        return Ok(Cursor { reader, selection });
    };
    let end = segments.end()?;
    segments.preload(segments.index_of(end), decoder)?;
    let (start, start_segment) = match selection.from {
        None => (StartAt::Beginning, segments.indexes.first().copied()),
        Some(Bound::Position(p)) => (StartAt::Position(Position(p)), Some(segments.index_of(p))),
        Some(Bound::Time(t)) => {
            let index = segments.segment_at_time(t)?;
            (StartAt::Position(segments.start_of(index)), Some(index))
        }
    };
    if let Some(index) = start_segment.filter(|&i| i != segments.index_of(end)) {
        segments.preload(index, decoder)?;
    }
    let reader = FrameReader::open(dir, start)?;
    selection.end = Some(end);
    Ok(Cursor { reader, selection })
}
