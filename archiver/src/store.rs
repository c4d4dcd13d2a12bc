//! The two kinds of target behind one interface: a directory on durable disk (std::fs, with
//! fsync and rename) and an S3-compatible bucket (object_store's S3 client, multipart).
//!
//! Why std::fs and not object_store's `LocalFileSystem` for the directory: an archive on disk
//! is worth something only once it survives a power loss. `LocalFileSystem` writes a temporary
//! file and renames it, but does not fsync the file or the directory, so a crash can leave a
//! renamed but empty object behind. Here a file is written to `<name>.partial`, fsync'd,
//! renamed, and its directory fsync'd; then it is read back for its checksum.
//!
//! Files are streamed: never more than one part (`part_size`) of a segment is in memory.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::multipart::MultipartStore;
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig,
};
use sha2::{Digest, Sha256};

use crate::config::{S3Config, TargetKind};

/// Bytes read at a time from a file for the directory target and for checksums.
const CHUNK_LEN: usize = 1 << 20;
/// A manifest is read into memory: this is the most it may take.
pub const MANIFEST_LEN_MAX: usize = 64 << 20;

/// A target's failure, naming the object or file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {op}: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        source: std::io::Error,
    },
    #[error("{key}: {source}")]
    ObjectStore {
        key: String,
        source: object_store::Error,
    },
    #[error("{key}: larger than {max} bytes")]
    TooLarge { key: String, max: usize },
    #[error("building the S3 client: {0}")]
    Build(object_store::Error),
}

fn io<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        path: path.to_owned(),
        op,
        source,
    }
}

/// What was written or read back: size and SHA-256 (hex).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Digested {
    pub size: u64,
    pub sha256: String,
}

/// Hex of a SHA-256 digest.
pub fn hex(digest: &[u8]) -> String {
    use std::fmt::Write as _;
    digest.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Reads at most `bytes_per_sec` (averaged since it was made).
pub struct RateLimit {
    bytes_per_sec: Option<u64>,
    start: Instant,
    sent: u64,
}

impl RateLimit {
    pub fn new(bytes_per_sec: Option<u64>) -> RateLimit {
        RateLimit {
            bytes_per_sec,
            start: Instant::now(),
            sent: 0,
        }
    }

    /// Counts `n` bytes and waits until sending them keeps to the rate.
    pub async fn take(&mut self, n: usize) {
        self.sent += n as u64;
        if let Some(rate) = self.bytes_per_sec {
            let due = Duration::from_secs_f64(self.sent as f64 / rate as f64);
            let elapsed = self.start.elapsed();
            if due > elapsed {
                tokio::time::sleep(due - elapsed).await;
            }
        }
    }
}

/// Reads up to `buf.len()` bytes, fewer only at the end of the file.
fn read_full(file: &mut File, buf: &mut [u8], path: &Path) -> Result<usize, StoreError> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io(path, "read")(e)),
        }
    }
    Ok(filled)
}

/// A file read in chunks, each counted, hashed and held to a rate limit.
struct Source<'a> {
    file: File,
    path: &'a Path,
    hasher: Sha256,
    size: u64,
}

impl<'a> Source<'a> {
    fn open(path: &'a Path) -> Result<Source<'a>, StoreError> {
        Ok(Source {
            file: File::open(path).map_err(io(path, "open"))?,
            path,
            hasher: Sha256::new(),
            size: 0,
        })
    }

    /// The next chunk into `buf` (full but at the end): its length, 0 at the end.
    async fn chunk(&mut self, buf: &mut [u8], rate: &mut RateLimit) -> Result<usize, StoreError> {
        let n = read_full(&mut self.file, buf, self.path)?;
        rate.take(n).await;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn digested(self) -> Digested {
        Digested {
            size: self.size,
            sha256: hex(&self.hasher.finalize()),
        }
    }
}

/// A target.
pub enum Store {
    Dir { root: PathBuf },
    S3 { s3: Arc<AmazonS3>, prefix: String },
}

impl Store {
    /// Makes the client of a target (no request is sent yet).
    pub fn new(kind: &TargetKind, request_timeout: Duration) -> Result<Store, StoreError> {
        Ok(match kind {
            TargetKind::Dir { dir } => Store::Dir { root: dir.clone() },
            TargetKind::S3(s3) => Store::S3 {
                s3: Arc::new(s3_client(s3, request_timeout)?),
                prefix: s3.prefix.clone(),
            },
        })
    }

    /// A key as the store names it: the path under a directory target, or the object's key
    /// with the bucket's prefix.
    pub fn describe(&self, key: &str) -> String {
        match self {
            Store::Dir { root } => root.join(key).display().to_string(),
            Store::S3 { prefix, .. } => self.object_path(prefix, key).to_string(),
        }
    }

    fn object_path(&self, prefix: &str, key: &str) -> ObjectPath {
        if prefix.is_empty() {
            ObjectPath::from(key)
        } else {
            ObjectPath::from(format!("{prefix}/{key}"))
        }
    }

    /// Starts the upload of a file that takes more than one part: the multipart upload's id,
    /// to be recorded (so that a restart can abort it) before [`upload`](Store::upload).
    /// `None` when the file goes in one request, or to a directory.
    pub async fn begin(
        &self,
        key: &str,
        size: u64,
        part_size: usize,
    ) -> Result<Option<String>, StoreError> {
        match self {
            Store::S3 { s3, prefix } if size > part_size as u64 => {
                let path = self.object_path(prefix, key);
                let id =
                    s3.create_multipart(&path)
                        .await
                        .map_err(|source| StoreError::ObjectStore {
                            key: path.to_string(),
                            source,
                        })?;
                Ok(Some(id))
            }
            _ => Ok(None),
        }
    }

    /// Copies `file` to `key` (through the multipart upload `upload_id` when
    /// [`begin`](Store::begin) gave one), returning what was sent.
    pub async fn upload(
        &self,
        key: &str,
        file: &Path,
        upload_id: Option<&str>,
        part_size: usize,
        rate: &mut RateLimit,
    ) -> Result<Digested, StoreError> {
        let mut source = Source::open(file)?;
        match self {
            Store::Dir { root } => {
                let target = root.join(key);
                let dir = target.parent().unwrap_or(root);
                fs::create_dir_all(dir).map_err(io(dir, "create_dir_all"))?;
                let partial = partial_path(&target);
                let mut out = File::create(&partial).map_err(io(&partial, "create"))?;
                let mut buf = vec![0u8; CHUNK_LEN];
                loop {
                    let n = source.chunk(&mut buf, rate).await?;
                    if n == 0 {
                        break;
                    }
                    out.write_all(&buf[..n]).map_err(io(&partial, "write"))?;
                }
                out.sync_all().map_err(io(&partial, "fsync"))?;
                drop(out);
                fs::rename(&partial, &target).map_err(io(&target, "rename"))?;
                sync_dir(dir)?;
            }
            Store::S3 { s3, prefix } => {
                let path = self.object_path(prefix, key);
                let object_error = |source| StoreError::ObjectStore {
                    key: path.to_string(),
                    source,
                };
                let mut buf = vec![0u8; part_size];
                match upload_id {
                    None => {
                        let n = source.chunk(&mut buf, rate).await?;
                        buf.truncate(n);
                        s3.put(&path, PutPayload::from(buf))
                            .await
                            .map_err(object_error)?;
                    }
                    Some(id) => {
                        let id = id.to_owned();
                        let mut parts = Vec::new();
                        loop {
                            let n = source.chunk(&mut buf, rate).await?;
                            if n == 0 {
                                break;
                            }
                            let payload = PutPayload::from(buf[..n].to_vec());
                            let part = s3
                                .put_part(&path, &id, parts.len(), payload)
                                .await
                                .map_err(object_error)?;
                            parts.push(part);
                        }
                        s3.complete_multipart(&path, &id, parts)
                            .await
                            .map_err(object_error)?;
                    }
                }
            }
        }
        Ok(source.digested())
    }

    /// Gives up an upload a crash interrupted: aborts the multipart upload, removes a
    /// directory target's partial file. Neither existing any more is not an error.
    pub async fn abandon(&self, key: &str, upload_id: Option<&str>) -> Result<(), StoreError> {
        match self {
            Store::Dir { root } => {
                let partial = partial_path(&root.join(key));
                match fs::remove_file(&partial) {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(io(&partial, "remove")(e)),
                }
            }
            Store::S3 { s3, prefix } => {
                let Some(id) = upload_id else { return Ok(()) };
                let path = self.object_path(prefix, key);
                match s3.abort_multipart(&path, &id.to_owned()).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(source) => Err(StoreError::ObjectStore {
                        key: path.to_string(),
                        source,
                    }),
                }
            }
        }
    }

    /// Reads an object back and digests it; `None` if there is no such object.
    pub async fn digest(&self, key: &str) -> Result<Option<Digested>, StoreError> {
        self.read_object(key, |_| Ok(())).await
    }

    /// Copies an object into the file `out` (created or truncated), streamed, digesting what
    /// was written; `None` if there is no such object. The archive's readers check the digest
    /// against the manifest (`crate::read`).
    pub async fn download(&self, key: &str, out: &Path) -> Result<Option<Digested>, StoreError> {
        let mut file = File::create(out).map_err(io(out, "create"))?;
        let got = self
            .read_object(key, |chunk| file.write_all(chunk).map_err(io(out, "write")))
            .await?;
        file.sync_all().map_err(io(out, "fsync"))?;
        Ok(got)
    }

    /// Streams an object through `sink`, chunk by chunk, digesting it; `None` if there is no
    /// such object.
    async fn read_object(
        &self,
        key: &str,
        mut sink: impl FnMut(&[u8]) -> Result<(), StoreError>,
    ) -> Result<Option<Digested>, StoreError> {
        let (mut hasher, mut size) = (Sha256::new(), 0u64);
        let mut take = |chunk: &[u8]| {
            hasher.update(chunk);
            size += chunk.len() as u64;
            sink(chunk)
        };
        match self {
            Store::Dir { root } => {
                let path = root.join(key);
                let mut source = match File::open(&path) {
                    Ok(source) => source,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(io(&path, "open")(e)),
                };
                let mut buf = vec![0u8; CHUNK_LEN];
                loop {
                    let n = read_full(&mut source, &mut buf, &path)?;
                    if n == 0 {
                        break;
                    }
                    take(&buf[..n])?;
                }
            }
            Store::S3 { s3, prefix } => {
                let path = self.object_path(prefix, key);
                let object_error = |source| StoreError::ObjectStore {
                    key: path.to_string(),
                    source,
                };
                let mut stream = match s3.get(&path).await {
                    Ok(got) => got.into_stream(),
                    Err(object_store::Error::NotFound { .. }) => return Ok(None),
                    Err(e) => return Err(object_error(e)),
                };
                while let Some(chunk) = stream.next().await {
                    take(&chunk.map_err(object_error)?)?;
                }
            }
        }
        Ok(Some(Digested {
            size,
            sha256: hex(&hasher.finalize()),
        }))
    }

    /// The names of the "directories" right under `dir_key` (`""`: the target's root), sorted:
    /// a bucket's common prefixes, a directory's subdirectories. At most `max`.
    pub async fn list_dirs(&self, dir_key: &str, max: usize) -> Result<Vec<String>, StoreError> {
        let mut names = Vec::new();
        match self {
            Store::Dir { root } => {
                let dir = root.join(dir_key);
                let entries = match fs::read_dir(&dir) {
                    Ok(entries) => entries,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(names),
                    Err(e) => return Err(io(&dir, "read_dir")(e)),
                };
                for entry in entries {
                    let entry = entry.map_err(io(&dir, "read_dir"))?;
                    let path = entry.path();
                    if entry.file_type().map_err(io(&path, "stat"))?.is_dir() {
                        names.push(entry.file_name().to_string_lossy().into_owned());
                    }
                    if names.len() >= max {
                        break;
                    }
                }
            }
            Store::S3 { s3, prefix } => {
                let path = match (prefix.is_empty(), dir_key.is_empty()) {
                    (true, true) => None,
                    (false, true) => Some(ObjectPath::from(prefix.as_str())),
                    _ => Some(self.object_path(prefix, dir_key)),
                };
                let listed = s3
                    .list_with_delimiter(path.as_ref())
                    .await
                    .map_err(|source| StoreError::ObjectStore {
                        key: path.as_ref().map_or(String::new(), ToString::to_string),
                        source,
                    })?;
                names.extend(
                    listed
                        .common_prefixes
                        .iter()
                        .filter_map(|p| p.filename().map(str::to_owned))
                        .take(max),
                );
            }
        }
        names.sort();
        Ok(names)
    }

    /// Writes a small object (a manifest) whole: fsync and rename on a directory.
    pub async fn put_small(&self, key: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        match self {
            Store::Dir { root } => {
                let target = root.join(key);
                let dir = target.parent().unwrap_or(root);
                fs::create_dir_all(dir).map_err(io(dir, "create_dir_all"))?;
                write_atomically(&target, &bytes)
            }
            Store::S3 { s3, prefix } => {
                let path = self.object_path(prefix, key);
                s3.put(&path, PutPayload::from(bytes))
                    .await
                    .map(|_| ())
                    .map_err(|source| StoreError::ObjectStore {
                        key: path.to_string(),
                        source,
                    })
            }
        }
    }

    /// Reads a small object (a manifest) whole; `None` if there is none.
    pub async fn get_small(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Store::Dir { root } => {
                let path = root.join(key);
                let file = match File::open(&path) {
                    Ok(file) => file,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(io(&path, "open")(e)),
                };
                let mut bytes = Vec::new();
                file.take(MANIFEST_LEN_MAX as u64 + 1)
                    .read_to_end(&mut bytes)
                    .map_err(io(&path, "read"))?;
                if bytes.len() > MANIFEST_LEN_MAX {
                    return Err(StoreError::TooLarge {
                        key: path.display().to_string(),
                        max: MANIFEST_LEN_MAX,
                    });
                }
                Ok(Some(bytes))
            }
            Store::S3 { s3, prefix } => {
                let path = self.object_path(prefix, key);
                let object_error = |source| StoreError::ObjectStore {
                    key: path.to_string(),
                    source,
                };
                let got = match s3.get(&path).await {
                    Ok(got) => got,
                    Err(object_store::Error::NotFound { .. }) => return Ok(None),
                    Err(e) => return Err(object_error(e)),
                };
                if got.meta.size > MANIFEST_LEN_MAX as u64 {
                    return Err(StoreError::TooLarge {
                        key: path.to_string(),
                        max: MANIFEST_LEN_MAX,
                    });
                }
                Ok(Some(got.bytes().await.map_err(object_error)?.to_vec()))
            }
        }
    }

    /// The keys (relative to the target, like those given to `upload`) of every object under
    /// `dir_key`, sorted; a directory target's partial files included. At most `max`.
    pub async fn list(&self, dir_key: &str, max: usize) -> Result<Vec<String>, StoreError> {
        let mut keys = Vec::new();
        match self {
            Store::Dir { root } => {
                let mut todo = vec![root.join(dir_key)];
                while let Some(dir) = todo.pop() {
                    let entries = match fs::read_dir(&dir) {
                        Ok(entries) => entries,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(io(&dir, "read_dir")(e)),
                    };
                    for entry in entries {
                        let entry = entry.map_err(io(&dir, "read_dir"))?;
                        let path = entry.path();
                        if entry.file_type().map_err(io(&path, "stat"))?.is_dir() {
                            todo.push(path);
                        } else if let Ok(rel) = path.strip_prefix(root) {
                            keys.push(rel.to_string_lossy().into_owned());
                        }
                        if keys.len() >= max {
                            break;
                        }
                    }
                }
            }
            Store::S3 { s3, prefix } => {
                let path = self.object_path(prefix, dir_key);
                let mut stream = s3.list(Some(&path));
                while let Some(meta) = stream.next().await {
                    let meta = meta.map_err(|source| StoreError::ObjectStore {
                        key: path.to_string(),
                        source,
                    })?;
                    let full = meta.location.to_string();
                    let rel = match prefix.is_empty() {
                        true => full.as_str(),
                        false => full.strip_prefix(prefix.as_str()).unwrap_or(&full),
                    };
                    keys.push(rel.trim_start_matches('/').to_owned());
                    if keys.len() >= max {
                        break;
                    }
                }
            }
        }
        keys.sort();
        Ok(keys)
    }
}

fn partial_path(target: &Path) -> PathBuf {
    let mut name = target.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir, "fsync dir"))
}

/// Writes `bytes` to `path` through a temporary file, fsync'd, renamed, the directory fsync'd.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    write_atomically_with(path, bytes, None).map(|_| ())
}

/// [`write_atomically`] a file for others to read: given `mode` and, if it may, group `gid`,
/// both before the rename (a reader never opens it with other permissions). Returns whether
/// it has the group (false: the chown was refused; the file is written all the same).
pub fn write_atomically_shared(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    gid: Option<u32>,
) -> Result<bool, StoreError> {
    write_atomically_with(path, bytes, Some((mode, gid)))
}

fn write_atomically_with(
    path: &Path,
    bytes: &[u8],
    share: Option<(u32, Option<u32>)>,
) -> Result<bool, StoreError> {
    use std::os::unix::fs::PermissionsExt;
    let partial = partial_path(path);
    let mut out = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&partial)
        .map_err(io(&partial, "create"))?;
    out.write_all(bytes).map_err(io(&partial, "write"))?;
    let mut chowned = true;
    if let Some((mode, gid)) = share {
        out.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(io(&partial, "chmod"))?;
        chowned = gid.is_none_or(|g| std::os::unix::fs::fchown(&out, None, Some(g)).is_ok());
    }
    out.sync_all().map_err(io(&partial, "fsync"))?;
    drop(out);
    fs::rename(&partial, path).map_err(io(path, "rename"))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))?;
    Ok(chowned)
}

/// The S3 client of a target. Its own retries are few and short: the archiver's loop retries
/// with a longer backoff, so that an outage costs one failed attempt per backoff, not a
/// client stuck in retries.
fn s3_client(config: &S3Config, request_timeout: Duration) -> Result<AmazonS3, StoreError> {
    // TLS with ring, as the rest of LeviBot (object_store's own provider, aws-lc-rs, is left
    // out); for every program that makes a client (the archiver, the archive's readers).
    // Installing fails only if one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(&config.bucket)
        .with_region(&config.region)
        .with_allow_http(config.allow_http)
        .with_retry(RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(200),
                max_backoff: Duration::from_secs(5),
                base: 2.0,
            },
            max_retries: 3,
            retry_timeout: Duration::from_secs(30),
        })
        .with_client_options(
            ClientOptions::new()
                .with_allow_http(config.allow_http)
                .with_connect_timeout(Duration::from_secs(10))
                .with_timeout(request_timeout),
        );
    if let Some(endpoint) = &config.endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    if let Some(credentials) = &config.credentials {
        builder = builder
            .with_access_key_id(&credentials.access_key_id)
            .with_secret_access_key(&credentials.secret_access_key);
        if let Some(token) = &credentials.session_token {
            builder = builder.with_token(token);
        }
    }
    builder.build().map_err(StoreError::Build)
}
