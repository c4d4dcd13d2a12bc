//! The soak's fault schedule: every venue-sim switch, once a round, in a seeded order.

use super::*;

/// splitmix64: the soak's schedules, reproducible from the printed seed.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    pub(super) fn millis(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from + self.below(to - from + 1))
    }

    pub(super) fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i as u64 + 1) as usize);
        }
    }
}

/// The venue's fault switches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fault {
    MdDrop,
    MdGap,
    MdMissedPongs,
    MdGarbage,
    MdBrokenFrame,
    FixDrop,
    FixGap,
    FixGarbage,
    FixLostOrder,
    FixMute,
    VenueIgnoresCancels,
    VenueRejects,
}

impl Fault {
    pub(super) const ALL: [Fault; 12] = [
        Fault::MdDrop,
        Fault::MdGap,
        Fault::MdMissedPongs,
        Fault::MdGarbage,
        Fault::MdBrokenFrame,
        Fault::FixDrop,
        Fault::FixGap,
        Fault::FixGarbage,
        Fault::FixLostOrder,
        Fault::FixMute,
        Fault::VenueIgnoresCancels,
        Fault::VenueRejects,
    ];

    pub(super) fn name(self) -> &'static str {
        match self {
            Fault::MdDrop => "md_drop",
            Fault::MdGap => "md_gap",
            Fault::MdMissedPongs => "md_missed_pongs",
            Fault::MdGarbage => "md_garbage",
            Fault::MdBrokenFrame => "md_broken_frame",
            Fault::FixDrop => "fix_drop",
            Fault::FixGap => "fix_seq_gap",
            Fault::FixGarbage => "fix_garbage",
            Fault::FixLostOrder => "fix_lost_order",
            Fault::FixMute => "fix_mute",
            Fault::VenueIgnoresCancels => "venue_ignores_cancels",
            Fault::VenueRejects => "venue_rejects",
        }
    }
}

/// The fault thread and the checker: the checker asks for a pause and waits until every
/// switch is off.
#[derive(Default)]
pub(super) struct FaultControl {
    pub(super) pause: AtomicBool,
    pub(super) paused: AtomicBool,
    pub(super) stop: AtomicBool,
    pub(super) injected: Mutex<BTreeMap<&'static str, u64>>,
}

impl FaultControl {
    /// Sleeps up to `d`; false if a pause or stop was asked for meanwhile.
    pub(super) fn sleep(&self, d: Duration) -> bool {
        let until = Instant::now() + d;
        while Instant::now() < until {
            if self.pause.load(Ordering::Acquire) || self.stop.load(Ordering::Acquire) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20).min(until - Instant::now()));
        }
        true
    }
}

/// Every switch off: md pings answered, FIX session faults (pending one-shots included)
/// cleared, cancels answered.
pub(super) fn clear_faults(venue: &SimVenue) {
    venue.md.faults().set_ignore_pings(false);
    if let Some(fix) = &venue.fix {
        fix.set_faults(FixFaults::default());
        fix.set_ignore_cancels(false);
    }
}

/// Cycles the venue's switches until stopped: each round every switch once, in a seeded
/// order, 0.4-2 s apart; switches that hold (missed pongs, mute, ignored cancels) are held
/// 1.5-3.5 s.
pub(super) fn fault_thread(venue: &SimVenue, control: &FaultControl, seed: u64) {
    let mut rng = Rng(seed ^ 0xfa17);
    let md = venue.md.faults();
    let fix = venue.fix.as_ref().expect("the soak's venue has FIX");
    let mut round = Fault::ALL;
    let mut next = round.len();
    while !control.stop.load(Ordering::Acquire) {
        if control.pause.load(Ordering::Acquire) {
            clear_faults(venue);
            control.paused.store(true, Ordering::Release);
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        control.paused.store(false, Ordering::Release);
        if next == round.len() {
            rng.shuffle(&mut round);
            next = 0;
        }
        let fault = round[next];
        next += 1;
        let hold = rng.millis(1_500, 3_500);
        match fault {
            Fault::MdDrop => md.drop_all_connections(),
            Fault::MdGap => md.skip_depth_messages(1 + rng.below(5) as u32),
            Fault::MdGarbage => md.send_garbage_text(),
            Fault::MdBrokenFrame => md.send_broken_frame(),
            Fault::FixDrop => fix.drop_all_connections(),
            Fault::FixGap => fix.set_faults(FixFaults {
                skip_seq_num: true,
                ..FixFaults::default()
            }),
            Fault::FixGarbage => fix.set_faults(FixFaults {
                garbage: true,
                ..FixFaults::default()
            }),
            Fault::FixLostOrder => fix.set_faults(FixFaults {
                lose_next_order: true,
                ..FixFaults::default()
            }),
            Fault::VenueRejects => fix.set_faults(FixFaults {
                reject_next_order: true,
                ..FixFaults::default()
            }),
            Fault::MdMissedPongs => {
                md.set_ignore_pings(true);
                control.sleep(hold);
                md.set_ignore_pings(false);
            }
            Fault::FixMute => {
                fix.set_faults(FixFaults {
                    mute: true,
                    ..FixFaults::default()
                });
                control.sleep(hold);
                fix.set_faults(FixFaults::default());
            }
            Fault::VenueIgnoresCancels => {
                fix.set_ignore_cancels(true);
                control.sleep(hold);
                fix.set_ignore_cancels(false);
            }
        }
        *lock(&control.injected).entry(fault.name()).or_default() += 1;
        control.sleep(rng.millis(400, 2_000));
    }
    clear_faults(venue);
}
