//! The archiver's configuration file (TOML), read and checked. Every key is documented in
//! `systemd/levibot-archiver.toml`; a bad value is refused with the key's name.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Bytes read of a configuration or credentials file at most.
const CONFIG_LEN_MAX: u64 = 64 * 1024;
/// A target name's longest spelling (it goes into counter labels and the state file).
const TARGET_NAME_LEN_MAX: usize = 32;
/// A box name's longest spelling (it is a path component of every object).
const BOX_LEN_MAX: usize = 64;
/// The most targets one archiver copies to.
const TARGETS_MAX: usize = 8;
/// S3's smallest part (but the last) is 5 MiB; parts are held in memory one at a time.
const PART_SIZE_MIB_MIN: u64 = 5;
const PART_SIZE_MIB_MAX: u64 = 256;

/// A configuration the archiver refuses: the key, and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: larger than {CONFIG_LEN_MAX} bytes")]
    TooLarge { path: PathBuf },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: key `{key}`: {reason}")]
    Invalid {
        path: PathBuf,
        key: String,
        reason: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    journal_dir: PathBuf,
    state_dir: PathBuf,
    #[serde(rename = "box")]
    box_name: Option<String>,
    poll_interval_secs: Option<u64>,
    backoff_max_secs: Option<u64>,
    part_size_mib: Option<u64>,
    rate_limit_mib_per_sec: Option<u64>,
    request_timeout_secs: Option<u64>,
    #[serde(default)]
    target: Vec<RawTarget>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    name: String,
    dir: Option<PathBuf>,
    s3: Option<String>,
    endpoint: Option<String>,
    region: Option<String>,
    allow_http: Option<bool>,
    credentials_file: Option<PathBuf>,
}

/// The checked configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The journal directory, read only.
    pub journal_dir: PathBuf,
    /// Where the state file and the counters file live (writable by the archiver alone).
    pub state_dir: PathBuf,
    /// This box's name: the path component under each target's prefix.
    pub box_name: String,
    pub poll_interval: Duration,
    /// The longest wait between two attempts at a failing target.
    pub backoff_max: Duration,
    /// Multipart upload part size in bytes; also the size below which a file is one PUT.
    pub part_size: usize,
    /// Bytes per second read from the journal and sent, at most (`None`: no limit).
    pub rate_limit: Option<u64>,
    /// One request to an object store, at most.
    pub request_timeout: Duration,
    pub targets: Vec<TargetConfig>,
}

/// Where one copy of the archive goes.
#[derive(Clone, Debug)]
pub struct TargetConfig {
    /// A short name: counter labels and the state file use it.
    pub name: String,
    pub kind: TargetKind,
}

#[derive(Clone, Debug)]
pub enum TargetKind {
    /// A directory on durable disk.
    Dir { dir: PathBuf },
    /// An S3-compatible bucket.
    S3(S3Config),
}

#[derive(Clone, Debug)]
pub struct S3Config {
    pub bucket: String,
    /// The key prefix (no leading or trailing `/`; may be empty).
    pub prefix: String,
    pub endpoint: Option<String>,
    pub region: String,
    pub allow_http: bool,
    /// `None`: the standard AWS environment variables.
    pub credentials: Option<Credentials>,
}

/// Static credentials, read from `credentials_file`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// An S3 location as a configuration or a command line names it, before it is checked.
pub struct S3Parts<'a> {
    /// `s3://bucket[/prefix]`.
    pub url: &'a str,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub allow_http: bool,
    /// `None`: the standard AWS environment variables.
    pub credentials_file: Option<&'a Path>,
}

impl S3Config {
    /// Checks an S3 location and reads its credentials (the file, or the AWS environment's
    /// presence). A refusal names the key (`s3`, `endpoint`, `credentials_file`) and why: the
    /// archiver's configuration and the archive's readers (`crate::read`) check alike.
    pub fn new(parts: S3Parts<'_>) -> Result<S3Config, (&'static str, String)> {
        let url = parts.url;
        let (bucket, prefix) = parse_s3_url(url)
            .ok_or_else(|| ("s3", format!("{url:?}: not s3://bucket[/prefix]")))?;
        if let Some(endpoint) = &parts.endpoint {
            let http = endpoint.starts_with("http://");
            if !http && !endpoint.starts_with("https://") {
                return Err((
                    "endpoint",
                    format!("{endpoint:?}: an http:// or https:// URL"),
                ));
            }
            if http && !parts.allow_http {
                return Err((
                    "endpoint",
                    "plain http:// needs allow_http = true (loopback tests only)".into(),
                ));
            }
        }
        let credentials =
            match parts.credentials_file {
                Some(file) => Some(read_credentials(file).map_err(|reason| {
                    ("credentials_file", format!("{}: {reason}", file.display()))
                })?),
                None => {
                    if std::env::var_os("AWS_ACCESS_KEY_ID").is_none()
                        || std::env::var_os("AWS_SECRET_ACCESS_KEY").is_none()
                    {
                        return Err((
                        "credentials_file",
                        "not set, and AWS_ACCESS_KEY_ID or AWS_SECRET_ACCESS_KEY is not in the \
                         environment"
                            .into(),
                    ));
                    }
                    None
                }
            };
        Ok(S3Config {
            bucket,
            prefix,
            endpoint: parts.endpoint,
            region: parts.region.unwrap_or_else(|| "us-east-1".to_owned()),
            allow_http: parts.allow_http,
            credentials,
        })
    }
}

fn read_bounded(path: &Path) -> Result<String, ConfigError> {
    use std::io::Read;
    let read = |source| ConfigError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read)?;
    let mut text = String::new();
    file.take(CONFIG_LEN_MAX + 1)
        .read_to_string(&mut text)
        .map_err(read)?;
    if text.len() as u64 > CONFIG_LEN_MAX {
        return Err(ConfigError::TooLarge {
            path: path.to_owned(),
        });
    }
    Ok(text)
}

/// This machine's host name, the default box name.
pub fn host_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

/// Whether `name` may be a box's name: the path component of its objects under a prefix.
pub fn is_box_name(name: &str) -> bool {
    is_safe_name(name, BOX_LEN_MAX)
}

/// A path component we write: ASCII letters, digits, `.`, `_`, `-`, not starting with `.`.
fn is_safe_name(name: &str, len_max: usize) -> bool {
    !name.is_empty()
        && name.len() <= len_max
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl Config {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = read_bounded(path)?;
        Config::parse(path, &text)
    }

    /// Checks a configuration's text; `path` names it in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let invalid = |key: &str, reason: String| ConfigError::Invalid {
            path: path.to_owned(),
            key: key.to_owned(),
            reason,
        };
        for (key, dir) in [
            ("journal_dir", &raw.journal_dir),
            ("state_dir", &raw.state_dir),
        ] {
            if !dir.is_absolute() {
                return Err(invalid(key, "must be an absolute path".into()));
            }
        }
        if raw.state_dir.starts_with(&raw.journal_dir) {
            return Err(invalid(
                "state_dir",
                "must not be inside journal_dir (the archiver never writes there)".into(),
            ));
        }
        let box_name = match raw.box_name {
            Some(name) => name,
            None => host_name().ok_or_else(|| {
                invalid(
                    "box",
                    "not set, and this machine's host name is unknown".into(),
                )
            })?,
        };
        if !is_safe_name(&box_name, BOX_LEN_MAX) {
            return Err(invalid(
                "box",
                format!(
                    "{box_name:?}: 1 to {BOX_LEN_MAX} ASCII letters, digits, '.', '_' or '-', \
                     not starting with '.'"
                ),
            ));
        }
        let secs = |key: &str, value: Option<u64>, default: u64, max: u64| {
            let value = value.unwrap_or(default);
            if value == 0 || value > max {
                return Err(invalid(key, format!("{value}: must be 1 to {max} seconds")));
            }
            Ok(Duration::from_secs(value))
        };
        let poll_interval = secs("poll_interval_secs", raw.poll_interval_secs, 10, 3600)?;
        let backoff_max = secs("backoff_max_secs", raw.backoff_max_secs, 300, 3600)?;
        let request_timeout = secs("request_timeout_secs", raw.request_timeout_secs, 300, 3600)?;
        let part_size_mib = raw.part_size_mib.unwrap_or(8);
        if !(PART_SIZE_MIB_MIN..=PART_SIZE_MIB_MAX).contains(&part_size_mib) {
            return Err(invalid(
                "part_size_mib",
                format!("{part_size_mib}: must be {PART_SIZE_MIB_MIN} to {PART_SIZE_MIB_MAX}"),
            ));
        }
        let rate_limit = match raw.rate_limit_mib_per_sec {
            None | Some(0) => None,
            Some(mib) if mib > 100_000 => {
                return Err(invalid(
                    "rate_limit_mib_per_sec",
                    format!("{mib}: at most 100000 (0 or unset: no limit)"),
                ));
            }
            Some(mib) => Some(mib << 20),
        };
        if raw.target.is_empty() {
            return Err(invalid(
                "target",
                "at least one [[target]] is needed".into(),
            ));
        }
        if raw.target.len() > TARGETS_MAX {
            return Err(invalid("target", format!("at most {TARGETS_MAX} targets")));
        }
        let mut names = BTreeSet::new();
        let mut targets = Vec::with_capacity(raw.target.len());
        for (i, target) in raw.target.into_iter().enumerate() {
            let key = |k: &str| format!("target[{i}].{k}");
            let invalid_at = |k: &str, reason: String| invalid(&key(k), reason);
            if !is_safe_name(&target.name, TARGET_NAME_LEN_MAX) || target.name.contains('.') {
                return Err(invalid_at(
                    "name",
                    format!(
                        "{:?}: 1 to {TARGET_NAME_LEN_MAX} ASCII letters, digits, '_' or '-'",
                        target.name
                    ),
                ));
            }
            if !names.insert(target.name.clone()) {
                return Err(invalid_at(
                    "name",
                    format!("{:?} is used twice", target.name),
                ));
            }
            let kind = match (target.dir, target.s3) {
                (Some(_), Some(_)) | (None, None) => {
                    return Err(invalid_at(
                        "dir",
                        "set exactly one of `dir` and `s3`".into(),
                    ));
                }
                (Some(dir), None) => {
                    if !dir.is_absolute() {
                        return Err(invalid_at("dir", "must be an absolute path".into()));
                    }
                    if dir.starts_with(&raw.journal_dir) {
                        return Err(invalid_at("dir", "must not be inside journal_dir".into()));
                    }
                    for k in ["endpoint", "region", "allow_http", "credentials_file"] {
                        let set = match k {
                            "endpoint" => target.endpoint.is_some(),
                            "region" => target.region.is_some(),
                            "allow_http" => target.allow_http.is_some(),
                            _ => target.credentials_file.is_some(),
                        };
                        if set {
                            return Err(invalid_at(k, "only for an `s3` target".into()));
                        }
                    }
                    TargetKind::Dir { dir }
                }
                (None, Some(url)) => TargetKind::S3(
                    S3Config::new(S3Parts {
                        url: &url,
                        endpoint: target.endpoint,
                        region: target.region,
                        allow_http: target.allow_http.unwrap_or(false),
                        credentials_file: target.credentials_file.as_deref(),
                    })
                    .map_err(|(k, reason)| invalid_at(k, reason))?,
                ),
            };
            targets.push(TargetConfig {
                name: target.name,
                kind,
            });
        }
        Ok(Config {
            journal_dir: raw.journal_dir,
            state_dir: raw.state_dir,
            box_name,
            poll_interval,
            backoff_max,
            part_size: (part_size_mib << 20) as usize,
            rate_limit,
            request_timeout,
            targets,
        })
    }
}

/// `s3://bucket[/prefix]` into the bucket and the prefix without its outer slashes.
fn parse_s3_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-'));
    let prefix = prefix.trim_matches('/');
    let prefix_ok = prefix.len() <= 512
        && prefix
            .split('/')
            .all(|part| prefix.is_empty() || (!part.is_empty() && part != "." && part != ".."));
    (bucket_ok && prefix_ok).then(|| (bucket.to_owned(), prefix.to_owned()))
}

/// A credentials file: TOML with `access_key_id`, `secret_access_key` and optionally
/// `session_token`, readable by its owner (and group) only.
fn read_credentials(path: &Path) -> Result<Credentials, String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| e.to_string())?
        .permissions()
        .mode();
    if mode & 0o007 != 0 {
        return Err(format!(
            "mode {:o}: readable by others; chmod o-rwx",
            mode & 0o777
        ));
    }
    let text = read_bounded(path).map_err(|e| e.to_string())?;
    toml::from_str(&text).map_err(|e| e.to_string())
}
