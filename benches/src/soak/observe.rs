//! What the soak observes: the journal (one tailer for the whole run), the exporter's page, and
//! a process's memory and file descriptors.

use super::*;
use levibot_shm::codes::reject_reason;

/// What the journal holds, read incrementally by one tailer for the whole run (so segments
/// pruned or compressed later were already counted).
#[derive(Default)]
pub(super) struct JournalView {
    pub(super) tailer: Option<Tailer>,
    pub(super) frames: u64,
    pub(super) missing_segments: u64,
    pub(super) sent: u64,
    pub(super) sent_by_kind: BTreeMap<&'static str, u64>,
    /// Client order ids of every NEW and REPLACE sent.
    pub(super) known_ids: HashSet<u64>,
    pub(super) acked: u64,
    pub(super) filled: u64,
    pub(super) cancelled: u64,
    pub(super) rejected: u64,
    pub(super) rejects_by_reason: BTreeMap<String, u64>,
}

pub(super) fn kind_name(kind: u8) -> &'static str {
    match kind {
        order_kind::NEW => "new",
        order_kind::CANCEL => "cancel",
        order_kind::REPLACE => "replace",
        order_kind::MASS_CANCEL => "mass_cancel",
        order_kind::MASS_STATUS => "mass_status",
        _ => "other",
    }
}

pub(super) fn reject_reason_name(code: u32) -> String {
    match code {
        reject_reason::ENCODE => "encode".to_owned(),
        reject_reason::JOURNAL => "journal".to_owned(),
        reject_reason::LOST_IN_FLIGHT => "lost_in_flight".to_owned(),
        other => format!("venue_{other}"),
    }
}

impl JournalView {
    /// Reads every frame committed so far.
    pub(super) fn catch_up(&mut self, dir: &Path) -> Result<()> {
        if self.tailer.is_none() {
            self.tailer =
                Some(Tailer::open(dir, StartAt::Beginning).context("tailing the journal")?);
        }
        loop {
            let mut frames = Vec::new();
            let polled = self
                .tailer
                .as_mut()
                .expect("opened")
                .poll(4096, |f| frames.push((f.record_type, f.payload.to_vec())));
            match polled {
                Ok(p) if p.frames == 0 && p.writer_restart.is_none() => return Ok(()),
                Ok(_) => {}
                Err(ShmError::SegmentMissing { .. }) => self.missing_segments += 1,
                Err(e) => return Err(e).context("tailing the journal"),
            }
            for (record_type, payload) in frames {
                self.on_frame(record_type, &payload);
            }
        }
    }

    pub(super) fn on_frame(&mut self, record_type: levibot_shm::RecordType, payload: &[u8]) {
        self.frames += 1;
        if record_type == SentOrder::RECORD_TYPE {
            if let Some(sent) = SentOrder::from_bytes(payload) {
                self.sent += 1;
                *self
                    .sent_by_kind
                    .entry(kind_name(sent.request.kind))
                    .or_default() += 1;
                if matches!(sent.request.kind, order_kind::NEW | order_kind::REPLACE) {
                    self.known_ids.insert(sent.request.client_order_id);
                }
            }
        } else if record_type == ExecutionReport::RECORD_TYPE
            && let Some(r) = ExecutionReport::from_bytes(payload)
        {
            match r.exec_type {
                exec_type::NEW | exec_type::REPLACED => self.acked += 1,
                exec_type::TRADE => self.filled += 1,
                exec_type::CANCELED | exec_type::EXPIRED => self.cancelled += 1,
                exec_type::REJECTED => {
                    self.rejected += 1;
                    *self
                        .rejects_by_reason
                        .entry(reject_reason_name(r.reject_reason))
                        .or_default() += 1;
                }
                _ => {}
            }
        }
    }
}

/// The sum of every sample of `name` on an exposition page (all label sets).
pub(super) fn metric_sum(page: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in page.lines().filter(|l| !l.starts_with('#')) {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !(rest.starts_with(' ') || rest.starts_with('{')) {
            continue;
        }
        if let Some(v) = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) {
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}

pub(super) fn scrape(addr: SocketAddr) -> Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    if !response.starts_with("HTTP/1.1 200") {
        bail!("/metrics: {}", response.lines().next().unwrap_or(""));
    }
    Ok(response
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_owned()))
}

/// levibotd's memory (kB, from /proc/<pid>/status) and open descriptors.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct ProcSample {
    pub(super) vm_rss_kib: u64,
    pub(super) rss_anon_kib: u64,
    pub(super) rss_file_kib: u64,
    pub(super) rss_shmem_kib: u64,
    pub(super) fds: i64,
}

impl ProcSample {
    pub(super) fn read(pid: u32) -> Result<ProcSample> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("/proc/{pid}/status"))?;
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0)
        };
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .with_context(|| format!("/proc/{pid}/fd"))?
            .count() as i64;
        Ok(ProcSample {
            vm_rss_kib: field("VmRSS:"),
            rss_anon_kib: field("RssAnon:"),
            rss_file_kib: field("RssFile:"),
            rss_shmem_kib: field("RssShmem:"),
            fds,
        })
    }

    /// Resident memory that is the process's own: heap and stacks, and the pages of its files
    /// (the binary). The journal's shared segments (RssShmem) come and go with rollovers.
    pub(super) fn private_kib(&self) -> u64 {
        self.rss_anon_kib + self.rss_file_kib
    }

    pub(super) fn to_json(self) -> Value {
        json!({
            "vm_rss_kib": self.vm_rss_kib,
            "rss_anon_kib": self.rss_anon_kib,
            "rss_file_kib": self.rss_file_kib,
            "rss_shmem_kib": self.rss_shmem_kib,
            "fds": self.fds,
        })
    }
}
