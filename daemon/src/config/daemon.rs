//! `[daemon]`: the control socket and who may trade on it, logging, memory locking, and the
//! start and stop timeouts, checked against the service unit's own.

use std::path::Path;
use std::time::Duration;

use levibot_shm::paths;

use super::reader::{self, Base, Problems, Section};
use super::{DaemonSettings, EmptyJournal, LogFormat, Reconcile, host};

/// Longest `daemon.log_level`.
pub const LOG_LEVEL_LEN_MAX: usize = 1024;
/// Longest Unix socket path (`sun_path` is 108 bytes with the NUL).
pub const CONTROL_SOCKET_PATH_LEN_MAX: usize = 107;
/// Default `daemon.control_ops_group`.
pub const CONTROL_OPS_GROUP_DEFAULT: &str = "levibot-ops";
/// `TimeoutStartSec=` of `systemd/levibot.service`, in seconds (a test reads the unit).
pub const UNIT_TIMEOUT_START_S: u64 = 120;
/// `TimeoutStopSec=` of `systemd/levibot.service`, in seconds (a test reads the unit).
pub const UNIT_TIMEOUT_STOP_S: u64 = 30;
/// What the waits on the venue leave of each unit timeout for the rest (recovery, starting or
/// stopping the agents, the journal's flush).
pub const UNIT_TIMEOUT_MARGIN_S: u64 = 10;
/// Largest `daemon.cancel_deadline_ms`: a stop finishes within `TimeoutStopSec=`.
pub const CANCEL_DEADLINE_MS_MAX: u64 = (UNIT_TIMEOUT_STOP_S - UNIT_TIMEOUT_MARGIN_S) * 1000;
/// Largest `daemon.start_timeout_ms + 2 x daemon.cancel_deadline_ms`: a start reports READY=1
/// within `TimeoutStartSec=`.
pub const START_BUDGET_MS: u64 = (UNIT_TIMEOUT_START_S - UNIT_TIMEOUT_MARGIN_S) * 1000;

pub(super) fn log_level(value: &toml::Value) -> Result<String, String> {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    let text = reader::string(LOG_LEVEL_LEN_MAX)(value)?;
    for directive in text.split(',') {
        let directive = directive.trim();
        if directive.is_empty() {
            return Err(format!("{text:?} has an empty directive"));
        }
        // Span and field filters (`target[span{field=x}]=debug`) are tracing's to check.
        if directive.contains(['[', '{']) {
            continue;
        }
        if let Some((target, level)) = directive.rsplit_once('=')
            && (target.is_empty() || !LEVELS.contains(&level.to_ascii_lowercase().as_str()))
        {
            return Err(format!(
                "{directive:?} is not target=level with a level of {}",
                LEVELS.join(", ")
            ));
        }
        let target_chars = |b: u8| b.is_ascii_alphanumeric() || b"_:-.=".contains(&b);
        if !directive.bytes().all(target_chars) {
            return Err(format!("{directive:?} is not a tracing filter directive"));
        }
    }
    Ok(text)
}

/// `[daemon]`.
pub(super) fn daemon(
    p: &mut Problems,
    mut s: Section<'_>,
    base: Base<'_>,
    journal_dir: Option<&Path>,
) -> Option<DaemonSettings> {
    let socket_key = s.key("control_socket");
    let control_socket = s.optional(p, "control_socket", reader::path(base.dir));
    let control_socket_mode = s.or(p, "control_socket_mode", 0o660, |v| {
        let mode = reader::int(0..=0o777)(v)?;
        if mode & 0o007 != 0 {
            return Err(format!(
                "0o{mode:03o} lets every user of the machine connect (and kill or set limits); \
                 use a group, e.g. 0o660"
            ));
        }
        Ok(mode)
    });
    let ops_key = s.key("control_ops_group");
    let control_ops_group = s.optional(p, "control_ops_group", host::group_name);
    let log_level = s.or(p, "log_level", "info".to_owned(), log_level);
    let log_format = s.or(
        p,
        "log_format",
        LogFormat::Text,
        reader::choice(&[("text", LogFormat::Text), ("json", LogFormat::Json)]),
    );
    let lock_memory = s.or(p, "lock_memory", true, reader::boolean);
    let ms = |v: Option<i64>| v.map(|ms| Duration::from_millis(ms as u64));
    let cancel_deadline = s.or(p, "cancel_deadline_ms", 5_000, cancel_deadline_ms);
    let start_key = s.key("start_timeout_ms");
    let start_timeout = s.or(p, "start_timeout_ms", 30_000, start_timeout_ms);
    let heartbeat_timeout = s.or(p, "heartbeat_timeout_ms", 1_000, reader::int(10..=60_000));
    let reconcile = s.or(
        p,
        "reconcile",
        Reconcile::CancelAll,
        reader::choice(&[
            ("cancel_all", Reconcile::CancelAll),
            ("mass_status", Reconcile::MassStatus),
        ]),
    );
    let empty_journal = s.or(
        p,
        "empty_journal",
        EmptyJournal::Halt,
        reader::choice(&[("halt", EmptyJournal::Halt), ("trade", EmptyJournal::Trade)]),
    );
    s.finish(p);

    let mut ok = true;
    if let (Some(start), Some(cancel)) = (start_timeout, cancel_deadline)
        && (start + 2 * cancel) as u64 > START_BUDGET_MS
    {
        p.push(
            start_key,
            format!(
                "{start} + 2 x daemon.cancel_deadline_ms ({cancel}) = {} ms is more than \
                 {START_BUDGET_MS}: start-up waits start_timeout_ms for the sessions and books, \
                 then reconciles (a mass status and a cancel-all, each up to \
                 cancel_deadline_ms) before READY=1, within the unit's \
                 TimeoutStartSec={UNIT_TIMEOUT_START_S}s (systemd/levibot.service) less \
                 {UNIT_TIMEOUT_MARGIN_S} s; at most {} with this cancel deadline",
                start + 2 * cancel,
                START_BUDGET_MS as i64 - 2 * cancel
            ),
        );
        ok = false;
    }
    let control_ops = match control_ops_group {
        Some(Some(name)) => match levibot_control::group_gid(&name) {
            Some(gid) => Some((name, Some(gid))),
            None => {
                p.push(
                    ops_key,
                    format!(
                        "no group {name:?} in {}; create it (`groupadd --system {name}`, or a \
                         `g` line in levibot.sysusers) or name another",
                        host::GROUP_FILE
                    ),
                );
                None
            }
        },
        // Absent: the default group if this machine has it (a development machine may not).
        Some(None) => Some((
            CONTROL_OPS_GROUP_DEFAULT.to_owned(),
            levibot_control::group_gid(CONTROL_OPS_GROUP_DEFAULT),
        )),
        None => None,
    };
    let control_socket = match control_socket? {
        Some(path) => path,
        // The journal's problem is reported already.
        None => paths::control_socket_path(journal_dir?),
    };
    let len = control_socket.as_os_str().len();
    if len > CONTROL_SOCKET_PATH_LEN_MAX {
        p.push(
            socket_key,
            format!(
                "{} is {len} bytes long; a Unix socket path has at most \
                 {CONTROL_SOCKET_PATH_LEN_MAX}",
                control_socket.display()
            ),
        );
        return None;
    }
    let (control_ops_group, control_ops_gid) = control_ops?;
    if !ok {
        return None;
    }
    Some(DaemonSettings {
        control_socket,
        control_socket_mode: control_socket_mode? as u32,
        control_ops_group,
        control_ops_gid,
        log_level: log_level?,
        log_format: log_format?,
        lock_memory: lock_memory?,
        cancel_deadline: ms(cancel_deadline)?,
        start_timeout: ms(start_timeout)?,
        heartbeat_timeout: ms(heartbeat_timeout)?,
        reconcile: reconcile?,
        empty_journal: empty_journal?,
    })
}

/// `daemon.cancel_deadline_ms`: a stop waits this long for the cancels, then stops the agents
/// and flushes the journal, all within the unit's `TimeoutStopSec=`.
fn cancel_deadline_ms(value: &toml::Value) -> Result<i64, String> {
    let max = CANCEL_DEADLINE_MS_MAX as i64;
    reader::int(1..=max)(value).map_err(|e| match value.as_integer() {
        Some(n) if n > max => format!(
            "{e}: a stop (SIGTERM) waits this long for the venue's cancels, then stops the \
             agents and flushes the journal, all within the unit's \
             TimeoutStopSec={UNIT_TIMEOUT_STOP_S}s (systemd/levibot.service); \
             {UNIT_TIMEOUT_MARGIN_S} s are kept for the rest, or systemd kills the daemon \
             mid-cancel"
        ),
        _ => e,
    })
}

/// `daemon.start_timeout_ms` alone (with the cancel deadline: checked in [`daemon`]).
fn start_timeout_ms(value: &toml::Value) -> Result<i64, String> {
    let max = START_BUDGET_MS as i64;
    reader::int(1..=max)(value).map_err(|e| match value.as_integer() {
        Some(n) if n > max => format!(
            "{e}: start-up waits this long for the sessions and books, then reconciles (twice \
             daemon.cancel_deadline_ms at most) before READY=1, within the unit's \
             TimeoutStartSec={UNIT_TIMEOUT_START_S}s (systemd/levibot.service) less \
             {UNIT_TIMEOUT_MARGIN_S} s"
        ),
        _ => e,
    })
}
