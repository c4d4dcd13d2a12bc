//! A local directory's files copied under a key prefix of a store, each verified by reading it
//! back: how `levictl export --format parquet` and `levibot-backtest run --parquet` write
//! Parquet straight to a bucket (they write locally first, then publish). Large files go up as
//! multipart uploads, one part in memory at a time, as the archiver's segments do.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::store::{RateLimit, Store, StoreError};

/// Files published at most.
pub const FILES_MAX: usize = 100_000;
/// Multipart part size (S3's least is 5 MiB).
pub const PART_SIZE: usize = 8 << 20;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{object}: read back {got} bytes, SHA-256 {got_sha256}; sent {sent} bytes, {sha256}")]
    Mismatch {
        object: String,
        sent: u64,
        sha256: String,
        got: u64,
        got_sha256: String,
    },
    #[error(
        "{object} is there already and this export does not write it (an earlier export of \
         that partition): remove the partition {partition} first, or export elsewhere"
    )]
    Stale { object: String, partition: String },
    #[error("more than {FILES_MAX} files to publish")]
    TooMany,
}

/// What was published.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Published {
    pub files: usize,
    pub bytes: u64,
    /// The keys written, relative to the store's prefix.
    pub keys: Vec<String>,
}

/// The files under `root` whose names end with `suffix`, as paths relative to it, sorted.
fn files_under(root: &Path, suffix: &str) -> Result<Vec<String>, PublishError> {
    let mut found = Vec::new();
    let mut todo = vec![root.to_owned()];
    while let Some(dir) = todo.pop() {
        let io = |source| PublishError::Io {
            path: dir.clone(),
            source,
        };
        for entry in std::fs::read_dir(&dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            let path = entry.path();
            if entry.file_type().map_err(io)?.is_dir() {
                todo.push(path);
            } else if let Ok(rel) = path.strip_prefix(root) {
                let rel = rel.to_string_lossy().into_owned();
                if rel.ends_with(suffix) {
                    found.push(rel);
                }
            }
            if found.len() > FILES_MAX {
                return Err(PublishError::TooMany);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Copies every file under `root` whose name ends with `suffix` to `<key_prefix>/<its path
/// under root>`, verified. Before anything is written, each partition directory that will
/// receive files (the file's directory) must hold no object this copy does not overwrite:
/// an earlier export's leftovers would be read as part of this one.
pub async fn publish_dir(
    store: &Store,
    root: &Path,
    suffix: &str,
    key_prefix: &str,
) -> Result<Published, PublishError> {
    let files = files_under(root, suffix)?;
    let key_of = |rel: &str| match key_prefix.is_empty() {
        true => rel.to_owned(),
        false => format!("{key_prefix}/{rel}"),
    };
    let keys: BTreeSet<String> = files.iter().map(|f| key_of(f)).collect();
    let partitions: BTreeSet<String> = keys
        .iter()
        .filter_map(|k| k.rsplit_once('/').map(|(dir, _)| dir.to_owned()))
        .collect();
    for partition in &partitions {
        for object in store.list(partition, FILES_MAX).await? {
            if !keys.contains(&object) {
                return Err(PublishError::Stale {
                    object: store.describe(&object),
                    partition: store.describe(partition),
                });
            }
        }
    }
    let mut published = Published::default();
    for rel in &files {
        let key = key_of(rel);
        let path = root.join(rel);
        let size = std::fs::metadata(&path)
            .map_err(|source| PublishError::Io {
                path: path.clone(),
                source,
            })?
            .len();
        let upload_id = store.begin(&key, size, PART_SIZE).await?;
        let sent = store
            .upload(
                &key,
                &path,
                upload_id.as_deref(),
                PART_SIZE,
                &mut RateLimit::new(None),
            )
            .await;
        let sent = match sent {
            Ok(sent) => sent,
            Err(e) => {
                let _ = store.abandon(&key, upload_id.as_deref()).await;
                return Err(e.into());
            }
        };
        let got = store.digest(&key).await?.unwrap_or(crate::store::Digested {
            size: 0,
            sha256: String::new(),
        });
        if got != sent {
            return Err(PublishError::Mismatch {
                object: store.describe(&key),
                sent: sent.size,
                sha256: sent.sha256,
                got: got.size,
                got_sha256: got.sha256,
            });
        }
        published.files += 1;
        published.bytes += sent.size;
        published.keys.push(key);
    }
    Ok(published)
}
