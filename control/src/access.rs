//! Who is on the other end of a control connection, and what they may ask for.
//!
//! Two roles ([`Role`]): readers may ask for `status`; operators may also `kill`, `resume`,
//! `reload` and `set`. The [`AccessPolicy`] lists them by uid and by group; the peer's ids come
//! from the kernel (`SO_PEERCRED`) and its supplementary groups from `/proc/<pid>/status`.
//! Groups are looked up in `/etc/group` only (what systemd-sysusers writes); a group that only
//! NSS (LDAP, sssd) knows is not found by [`group_gid`].

use std::fmt::Write as _;
use std::fs;
use std::io::Read;
use std::os::unix::net::UnixStream;

/// The most bytes read from `/proc/<pid>/status`, `/etc/passwd` or `/etc/group`.
pub(super) const SYSTEM_FILE_LEN_MAX: u64 = 1 << 20;

/// What a command needs: reading the daemon's state, or changing what it trades.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `status`.
    Read,
    /// `kill`, `resume`, `reload`, `set`.
    Trade,
}

/// Who is on the other end of a connection (`SO_PEERCRED`: its effective ids when it
/// connected).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub gid: u32,
    pub pid: i32,
}

impl Peer {
    /// The credentials the kernel recorded when the peer connected.
    pub(super) fn of(stream: &UnixStream) -> rustix::io::Result<Peer> {
        let cred = rustix::net::sockopt::socket_peercred(stream)?;
        Ok(Peer {
            uid: cred.uid.as_raw(),
            gid: cred.gid.as_raw(),
            pid: cred.pid.as_raw_nonzero().get(),
        })
    }
}

/// Who may use the socket beyond what its file mode allows, and for what.
///
/// A peer is known by its uid, or by its effective or supplementary groups. Users in `uids`
/// (root and the daemon's own user) may do everything. Members of `ops_gids` (the operators'
/// group, `levibot-ops`) may do everything too. Members of `read_gids` (the daemon's group,
/// `levibot`: the journal's readers) may only read. Anyone else is refused before their request
/// is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessPolicy {
    pub uids: Vec<u32>,
    pub read_gids: Vec<u32>,
    pub ops_gids: Vec<u32>,
}

impl AccessPolicy {
    /// Root, the daemon's effective user, and members of its effective group (the group new
    /// files, the socket among them, get) as readers; no operators' group, so only root and the
    /// daemon's user may trade.
    pub fn daemon_default() -> AccessPolicy {
        AccessPolicy::daemon_default_with_ops(None)
    }

    /// [`AccessPolicy::daemon_default`] plus the operators' group `ops_gid` (the daemon passes
    /// [`group_gid`] of `daemon.control_ops_group`; `None` when that group does not exist).
    pub fn daemon_default_with_ops(ops_gid: Option<u32>) -> AccessPolicy {
        let euid = rustix::process::geteuid().as_raw();
        let egid = rustix::process::getegid().as_raw();
        let mut uids = vec![0, euid];
        uids.dedup();
        AccessPolicy {
            uids,
            read_gids: vec![egid],
            ops_gids: ops_gid.into_iter().collect(),
        }
    }

    /// Whether `peer`, with its supplementary `groups`, may do what `role` needs. Operators
    /// may read as well.
    pub fn allows(&self, peer: &Peer, groups: &[u32], role: Role) -> bool {
        let member =
            |gids: &[u32]| gids.contains(&peer.gid) || groups.iter().any(|g| gids.contains(g));
        self.uids.contains(&peer.uid)
            || member(&self.ops_gids)
            || (role == Role::Read && member(&self.read_gids))
    }

    /// Why `peer` may not use the socket at all (the `denied` message).
    pub(super) fn connect_refusal(&self, peer: &Peer) -> String {
        let mut gids = self.read_gids.clone();
        gids.extend(&self.ops_gids);
        gids.dedup();
        format!(
            "uid {} (gid {}, pid {}) may not use this control socket; allowed: uids {:?}, \
             members of gids {:?}",
            peer.uid, peer.gid, peer.pid, self.uids, gids
        )
    }

    /// Why `peer`, a reader, may not run `command` (the `denied` message): names the group that
    /// it needs.
    pub(super) fn trade_refusal(&self, peer: &Peer, command: &str) -> String {
        let uids = self
            .uids
            .iter()
            .map(|u| named(*u, "/etc/passwd"))
            .collect::<Vec<_>>()
            .join(", ");
        let who = format!(
            "uid {} (gid {}, pid {}) may only read",
            peer.uid, peer.gid, peer.pid
        );
        if self.ops_gids.is_empty() {
            return format!(
                "{command} is only for uids {uids}: this daemon has no operators' group \
                 (daemon.control_ops_group names no group in /etc/group); {who}"
            );
        }
        let mut groups = String::new();
        for (n, gid) in self.ops_gids.iter().enumerate() {
            if n > 0 {
                groups.push_str(" or ");
            }
            match name_of(*gid, "/etc/group") {
                Some(name) => {
                    let _ = write!(groups, "group {name} (gid {gid})");
                }
                None => {
                    let _ = write!(groups, "gid {gid}");
                }
            }
        }
        format!("{command} needs membership of {groups} (or uids {uids}); {who}")
    }
}

impl Default for AccessPolicy {
    fn default() -> AccessPolicy {
        AccessPolicy::daemon_default()
    }
}

/// The gid of group `name` in `/etc/group`; `None` if no such group (or the file is
/// unreadable). For `daemon.control_ops_group`.
pub fn group_gid(name: &str) -> Option<u32> {
    gid_in(&read_system_file("/etc/group")?, name)
}

/// The gid of `name` in the text of a group file (`name:password:gid:members`).
fn gid_in(text: &str, name: &str) -> Option<u32> {
    if name.is_empty() {
        return None;
    }
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != name {
            return None;
        }
        fields.nth(1)?.parse().ok()
    })
}

/// The peer's supplementary groups from `/proc/<pid>/status`, used only if that process still
/// has the effective uid and gid the kernel recorded at connect (so a reused pid, or another
/// thread's credentials, count for nothing).
pub(super) fn supplementary_groups(peer: &Peer) -> Vec<u32> {
    let Some(text) = read_system_file(&format!("/proc/{}/status", peer.pid)) else {
        return Vec::new();
    };
    let ids = |name: &str| -> Vec<u32> {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .map(|rest| {
                rest.split_whitespace()
                    .filter_map(|id| id.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    // "Uid:" and "Gid:" list real, effective, saved and filesystem ids.
    if ids("Uid:").get(1) != Some(&peer.uid) || ids("Gid:").get(1) != Some(&peer.gid) {
        return Vec::new();
    }
    ids("Groups:")
}

/// `1000 (alice)`, or just `1000` if the file does not name it.
pub(super) fn named(id: u32, file: &str) -> String {
    match name_of(id, file) {
        Some(name) => format!("{id} ({name})"),
        None => id.to_string(),
    }
}

/// The name of `id` in `/etc/passwd` or `/etc/group` (both have the id in their third field).
pub(super) fn name_of(id: u32, file: &str) -> Option<String> {
    read_system_file(file)?.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let parsed: u32 = fields.nth(1)?.parse().ok()?;
        (parsed == id).then(|| name.to_owned())
    })
}

/// A system file's text, at most [`SYSTEM_FILE_LEN_MAX`] bytes of it.
fn read_system_file(path: &str) -> Option<String> {
    let mut text = String::new();
    fs::File::open(path)
        .ok()?
        .take(SYSTEM_FILE_LEN_MAX)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(uid: u32, gid: u32) -> Peer {
        Peer { uid, gid, pid: 1 }
    }

    #[test]
    fn readers_read_and_operators_trade() {
        let policy = AccessPolicy {
            uids: vec![0],
            read_gids: vec![998],
            ops_gids: vec![997],
        };
        for role in [Role::Read, Role::Trade] {
            assert!(policy.allows(&peer(0, 5), &[], role));
            // Operators, by effective or supplementary group.
            assert!(policy.allows(&peer(1000, 997), &[], role));
            assert!(policy.allows(&peer(1000, 1000), &[998, 997], role));
            assert!(!policy.allows(&peer(1000, 1000), &[27], role));
        }
        // Readers only read.
        assert!(policy.allows(&peer(1000, 998), &[], Role::Read));
        assert!(policy.allows(&peer(1000, 1000), &[27, 998], Role::Read));
        assert!(!policy.allows(&peer(1000, 998), &[], Role::Trade));
        assert!(!policy.allows(&peer(1000, 1000), &[27, 998], Role::Trade));
    }

    #[test]
    fn without_an_operators_group_only_the_listed_users_trade() {
        let policy = AccessPolicy::daemon_default();
        assert!(policy.ops_gids.is_empty());
        let me = rustix::process::geteuid().as_raw();
        let group = rustix::process::getegid().as_raw();
        assert!(policy.allows(&peer(me, group), &[], Role::Trade));
        assert!(policy.allows(&peer(0, 0), &[], Role::Trade));
        let stranger = me.wrapping_add(1).max(1);
        assert!(policy.allows(&peer(stranger, group), &[], Role::Read));
        assert!(!policy.allows(&peer(stranger, group), &[], Role::Trade));
        let refusal = policy.trade_refusal(&peer(stranger, group), "kill");
        assert!(refusal.contains("no operators' group"), "{refusal}");
        assert_eq!(
            AccessPolicy::daemon_default_with_ops(Some(4242)).ops_gids,
            [4242]
        );
    }

    #[test]
    fn a_trade_refusal_names_the_group_needed() {
        // Group 0 is named in every /etc/group.
        let policy = AccessPolicy {
            uids: vec![0],
            read_gids: vec![998],
            ops_gids: vec![0, 64_123],
        };
        let refusal = policy.trade_refusal(&peer(1000, 998), "set");
        assert!(
            refusal.starts_with("set needs membership of group root (gid 0) or gid 64123"),
            "{refusal}"
        );
        assert!(
            refusal.contains("uid 1000 (gid 998, pid 1) may only read"),
            "{refusal}"
        );
    }

    #[test]
    fn groups_are_found_by_name() {
        let text = "root:x:0:\nlevibot:x:998:levibot-exporter\nlevibot-ops:x:997:alice,bob\n\
                    broken:x:\nodd:x:nan:\n";
        assert_eq!(gid_in(text, "levibot"), Some(998));
        assert_eq!(gid_in(text, "levibot-ops"), Some(997));
        assert_eq!(gid_in(text, "levibot-o"), None);
        assert_eq!(gid_in(text, "broken"), None);
        assert_eq!(gid_in(text, "odd"), None);
        assert_eq!(gid_in(text, ""), None);
        assert_eq!(group_gid("root"), Some(0));
        assert_eq!(group_gid("no-such-group-levibot"), None);
    }
}
