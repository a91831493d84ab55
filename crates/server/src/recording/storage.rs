//! Where recordings' files are kept: the local data directory always
//! first (the recorder writes there), and an S3-compatible bucket when one
//! is configured (`--recording-s3-url`).
//!
//! With a bucket, a recording that becomes `ready` is uploaded (every
//! track file the manifest names, then `manifest.json`, each read back
//! with a HEAD that must show the local size). Only then does the store
//! say `remote`, and only after that is the local copy removed: a crash,
//! or a bucket that is down, leaves the recording `local` and served from
//! disk. [`RecordingFiles::run_uploads`] works through the store's list of
//! `ready`-but-`local` recordings at start-up, whenever a recording is
//! finalized, and on a timer, with a per-recording backoff after failures.
//!
//! Objects are named `<prefix>/<recording id>/<file name>`; the store keeps
//! each uploaded recording's `<prefix>/<recording id>`, so changing the
//! configured prefix later does not lose older recordings.
//!
//! The rest of the server reaches uploaded files through this type:
//! downloads (`remote_meta`, `read_range`, `presigned_url`), deletion of
//! any recording (`delete`), and [`RecordingFiles::local_copy`] for tools
//! that need files on disk (ffmpeg), which downloads a remote recording
//! into a temporary folder. Claims per recording (`file_claims`) keep an
//! upload or a deletion from removing files a local copy is reading.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::signer::Signer;
use object_store::{
    BackoffConfig, ClientOptions, GetOptions, GetRange, ObjectMeta, ObjectStore, RetryConfig,
    WriteMultipart,
};
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;
use uuid::Uuid;
use vtp_recording::Manifest;
use vtp_store::{StorageLocation, Store, StoreError};

use super::MANIFEST_FILE;
use super::file_claims::{Claim, InUse, Use};

/// Larger files are uploaded in parts of this size (S3's smallest part is
/// 5 MiB), at most two in flight; smaller ones in one PUT. Bounds the
/// memory of an upload.
const PART_BYTES: usize = 8 << 20;
/// Attempts per file before the recording's upload counts as failed (the
/// client also retries each request on transient errors, and the
/// recording is tried again with a backoff).
const FILE_ATTEMPTS: u32 = 2;
/// The longest a failed recording waits before its next attempt.
const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);
/// Recordings taken from the store's work list per pass.
const UPLOAD_BATCH: u32 = 32;
/// How long [`RecordingFiles::local_copy`] waits for an upload or a
/// deletion of the same recording to finish (a large upload takes a while).
const COPY_WAIT: Duration = Duration::from_secs(15 * 60);
/// How long a deletion waits for an upload attempt or a local copy of the
/// same recording to finish (an HTTP request is waiting on it).
const DELETE_WAIT: Duration = Duration::from_secs(10);
/// Where [`RecordingFiles::local_copy`] puts downloaded recordings.
const DOWNLOADS_DIR: &str = ".downloads";

/// Why storing or fetching a recording's files failed.
#[derive(Debug, Error)]
pub enum StorageError {
    #[error("bucket configuration: {0}")]
    Config(String),
    #[error("object storage: {0}")]
    Remote(#[from] object_store::Error),
    #[error("recording files: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("upload not confirmed: {0}")]
    NotConfirmed(String),
    #[error(
        "the recording's files are in use (an upload, a copy or a deletion); try again shortly"
    )]
    Busy,
}

/// The bucket's settings, from the configuration.
#[derive(Clone)]
pub struct BucketSettings {
    /// `s3://bucket` or `s3://bucket/prefix`.
    pub url: String,
    /// Another S3-compatible service (MinIO, moto, …); AWS when absent.
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key_id: Option<String>,
    /// Never printed (no `Debug` on this type for that reason).
    pub secret_access_key: Option<String>,
    /// Allow an `http://` endpoint (a loopback or private network service).
    pub allow_http: bool,
    /// Downloads redirect to a URL signed for this long instead of being
    /// proxied.
    pub presign_downloads: Option<Duration>,
}

struct Bucket {
    s3: Arc<AmazonS3>,
    /// Key prefix without slashes at either end; may be empty.
    prefix: String,
    /// `s3://bucket/prefix`, for logs.
    url: String,
    presign_downloads: Option<Duration>,
}

/// The recordings' files, on disk and (when configured) in a bucket.
pub struct RecordingFiles {
    /// `<data-dir>/recordings`.
    local_dir: PathBuf,
    bucket: Option<Bucket>,
    /// First delay after a failed upload (doubles per failure), and how
    /// often the work list is read.
    retry_after: Duration,
    wake: ReadySignal,
    in_use: Arc<InUse>,
}

/// Rung when a recording becomes `ready`, so that it is uploaded at once
/// rather than at the uploader's next tick. The room hub holds a clone
/// (in its `RecordingConfig`).
#[derive(Clone, Debug, Default)]
pub struct ReadySignal(Arc<Notify>);

impl ReadySignal {
    pub fn notify(&self) {
        self.0.notify_one();
    }
}

impl std::fmt::Debug for RecordingFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingFiles")
            .field("local_dir", &self.local_dir)
            .field("bucket", &self.bucket.as_ref().map(|b| &b.url))
            .finish()
    }
}

/// `s3://bucket/some/prefix` → (`bucket`, `some/prefix`).
pub fn parse_bucket_url(url: &str) -> Result<(String, String), StorageError> {
    let bad = || {
        StorageError::Config(format!(
            "{url:?} is not an s3://bucket or s3://bucket/prefix URL"
        ))
    };
    let rest = url.trim().strip_prefix("s3://").ok_or_else(bad)?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let bucket_ok = !bucket.is_empty()
        && bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    if !bucket_ok {
        return Err(bad());
    }
    let prefix = prefix.trim_matches('/');
    if prefix.split('/').any(|part| part == "." || part == "..") {
        return Err(bad());
    }
    Ok((bucket.to_owned(), prefix.to_owned()))
}

impl RecordingFiles {
    /// Files under `local_dir` only, or also in the bucket of `settings`.
    pub fn new(
        local_dir: PathBuf,
        settings: Option<&BucketSettings>,
        retry_after: Duration,
        wake: ReadySignal,
    ) -> Result<RecordingFiles, StorageError> {
        let bucket = settings.map(connect).transpose()?;
        Ok(RecordingFiles {
            local_dir,
            bucket,
            retry_after: retry_after.max(Duration::from_millis(10)),
            wake,
            in_use: Arc::default(),
        })
    }

    /// Removes what an earlier run's [`local_copy`](Self::local_copy)s
    /// left behind (a crash skips their clean-up). Only the server calls
    /// it, at start: `vtp recording export` makes copies while it may run.
    pub fn remove_leftover_downloads(&self) {
        let _ = std::fs::remove_dir_all(self.local_dir.join(DOWNLOADS_DIR));
    }

    /// One line for the start-up log.
    pub fn describe(&self) -> String {
        match &self.bucket {
            None => format!("kept in {}", self.local_dir.display()),
            Some(b) => format!(
                "written to {}, then uploaded to {} (downloads {})",
                self.local_dir.display(),
                b.url,
                if b.presign_downloads.is_some() {
                    "redirected to presigned URLs"
                } else {
                    "proxied"
                }
            ),
        }
    }

    /// `<data-dir>/recordings/<id>`, where the recorder writes.
    pub fn local_dir(&self, id: Uuid) -> PathBuf {
        self.local_dir.join(id.to_string())
    }

    /// Uploads every `ready` recording still on local disk, until the task
    /// is aborted. Returns at once when no bucket is configured.
    pub async fn run_uploads(self: Arc<Self>, store: Store) {
        if self.bucket.is_none() {
            return;
        }
        // Per recording: failures so far and when it may be tried again.
        let mut failed: HashMap<Uuid, (u32, Instant)> = HashMap::new();
        loop {
            self.upload_pass(&store, &mut failed).await;
            tokio::select! {
                () = self.wake.0.notified() => {}
                () = tokio::time::sleep(self.retry_after) => {}
            }
        }
    }

    /// One pass over the work list: each recording not waiting out a
    /// backoff is uploaded.
    async fn upload_pass(
        self: &Arc<Self>,
        store: &Store,
        failed: &mut HashMap<Uuid, (u32, Instant)>,
    ) {
        let ids = match store.recordings_awaiting_upload(UPLOAD_BATCH).await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the recordings to upload");
                return;
            }
        };
        failed.retain(|id, _| ids.contains(id));
        for id in ids {
            if failed.get(&id).is_some_and(|(_, at)| *at > Instant::now()) {
                continue;
            }
            // On a task of its own, so that a panic (a bug in a client
            // library) fails this upload, not the uploader.
            let mut upload = {
                let (files, store) = (self.clone(), store.clone());
                AbortOnDrop(tokio::spawn(async move { files.upload(&store, id).await }))
            };
            let result = (&mut upload.0).await.unwrap_or_else(|e| {
                Err(StorageError::NotConfirmed(format!(
                    "the upload panicked: {e}"
                )))
            });
            match result {
                Ok(()) => {
                    failed.remove(&id);
                }
                // Being deleted or copied: next pass.
                Err(StorageError::Busy) => {}
                Err(e) => {
                    let attempts = failed.get(&id).map_or(1, |(n, _)| n + 1);
                    let delay = self
                        .retry_after
                        .saturating_mul(1 << (attempts - 1).min(16))
                        .min(MAX_BACKOFF);
                    tracing::warn!(recording_id = %id, attempts, error = %e,
                        retry_in_ms = delay.as_millis() as u64, "recording upload failed");
                    let _ = store.note_upload_failure(id, &e.to_string()).await;
                    failed.insert(id, (attempts, Instant::now() + delay));
                }
            }
        }
    }

    /// Uploads one recording, records it as `remote`, then removes the
    /// local copy. The files the manifest names that were never written
    /// are skipped (there is nothing to keep).
    pub async fn upload(&self, store: &Store, id: Uuid) -> Result<(), StorageError> {
        let bucket = self.bucket()?;
        let _claim = self
            .in_use
            .claim(id, Use::Exclusive)
            .ok_or(StorageError::Busy)?;
        let dir = self.local_dir(id);
        let manifest = tokio::fs::read_to_string(dir.join(MANIFEST_FILE)).await?;
        let manifest = Manifest::from_json(&manifest)
            .map_err(|e| StorageError::NotConfirmed(format!("unreadable manifest: {e}")))?;
        let prefix = bucket.recording_prefix(id);
        let mut names: Vec<String> = manifest
            .tracks
            .into_iter()
            .map(|t| t.file)
            .filter(|name| is_plain_name(name) && name != MANIFEST_FILE)
            .collect();
        // The manifest last: a listing that shows it shows a whole recording.
        names.push(MANIFEST_FILE.to_owned());
        let started = Instant::now();
        let mut bytes = 0;
        for name in &names {
            let path = dir.join(name);
            let len = match tokio::fs::metadata(&path).await {
                Ok(m) => m.len(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    tracing::info!(recording_id = %id, file = %name, "no such file: not uploaded");
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let key = prefix.child(name.as_str());
            upload_file(bucket, &path, &key, len).await?;
            bytes += len;
        }
        if !store
            .mark_recording_uploaded(id, prefix.as_ref(), chrono::Utc::now())
            .await?
        {
            return match store.recording_storage(id).await {
                // Deleted while it was uploading: the objects must go too.
                Err(StoreError::NotFound) => {
                    delete_prefix(bucket, &prefix).await?;
                    Ok(())
                }
                Ok(_) => Ok(()), // another uploader won, or it is no longer ready
                Err(e) => Err(e.into()),
            };
        }
        tracing::info!(recording_id = %id, files = names.len(), bytes,
            seconds = started.elapsed().as_secs_f32(), bucket = %bucket.url, "recording uploaded");
        if let Err(e) = tokio::fs::remove_dir_all(&dir).await {
            tracing::warn!(recording_id = %id, error = %e, "uploaded recording's local copy not removed");
        }
        Ok(())
    }

    /// Size and version of an uploaded file; `None` when there is no such object.
    pub async fn remote_meta(
        &self,
        prefix: &str,
        name: &str,
    ) -> Result<Option<ObjectMeta>, StorageError> {
        let bucket = self.bucket()?;
        match bucket.s3.head(&object_path(prefix, name)).await {
            Ok(meta) => Ok(Some(meta)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The sizes of a recording's uploaded files, by name.
    pub async fn remote_sizes(&self, prefix: &str) -> Result<HashMap<String, u64>, StorageError> {
        let bucket = self.bucket()?;
        let prefix = ObjectPath::from(prefix);
        let objects: Vec<ObjectMeta> = bucket.s3.list(Some(&prefix)).try_collect().await?;
        Ok(objects
            .into_iter()
            .filter_map(|m| Some((m.location.filename()?.to_owned(), m.size)))
            .collect())
    }

    /// `range` of an uploaded file, as a stream of chunks.
    pub async fn read_range(
        &self,
        prefix: &str,
        name: &str,
        range: Range<u64>,
    ) -> Result<BoxStream<'static, std::io::Result<Bytes>>, StorageError> {
        let bucket = self.bucket()?;
        let options = GetOptions {
            range: Some(GetRange::Bounded(range)),
            ..GetOptions::default()
        };
        let result = bucket
            .s3
            .get_opts(&object_path(prefix, name), options)
            .await?;
        Ok(result.into_stream().map_err(std::io::Error::other).boxed())
    }

    /// A URL that downloads an uploaded file without credentials, when
    /// downloads are configured to redirect (`None`: proxy them).
    pub async fn presigned_url(
        &self,
        prefix: &str,
        name: &str,
    ) -> Result<Option<String>, StorageError> {
        let bucket = self.bucket()?;
        let Some(valid_for) = bucket.presign_downloads else {
            return Ok(None);
        };
        let url = bucket
            .s3
            .signed_url(reqwest::Method::GET, &object_path(prefix, name), valid_for)
            .await?;
        Ok(Some(url.to_string()))
    }

    /// Removes a recording's files wherever they are: the local directory
    /// and, with a bucket, every object under its prefix (also those of an
    /// upload that did not finish).
    pub async fn delete(&self, store: &Store, id: Uuid) -> Result<(), StorageError> {
        let _claim = self.claim(id, Use::Exclusive, DELETE_WAIT).await?;
        // The bucket first: if it cannot be reached, the local files (of a
        // recording not yet uploaded) are still there to serve.
        let stored = match store.recording_storage(id).await {
            Ok(s) => Some(s.location),
            Err(StoreError::NotFound) => None,
            Err(e) => return Err(e.into()),
        };
        if let Some(bucket) = &self.bucket {
            delete_prefix(bucket, &bucket.recording_prefix(id)).await?;
        }
        if let Some(StorageLocation::Remote { prefix }) = stored {
            let bucket = self.bucket()?;
            delete_prefix(bucket, &ObjectPath::from(prefix)).await?;
        }
        match tokio::fs::remove_dir_all(self.local_dir(id)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The recording's files in a local folder, for tools that need files
    /// (ffmpeg). A recording on local disk is given as it is; an uploaded
    /// one is downloaded into a temporary folder that is removed when the
    /// returned [`LocalCopy`] is dropped.
    pub async fn local_copy(&self, store: &Store, id: Uuid) -> Result<LocalCopy, StorageError> {
        // Shared with other copies; waits out an upload (which removes the
        // local files at its end) or a deletion.
        let claim = self.claim(id, Use::Shared, COPY_WAIT).await?;
        let prefix = match store.recording_storage(id).await?.location {
            StorageLocation::Local => {
                return Ok(LocalCopy {
                    dir: self.local_dir(id),
                    temporary: false,
                    _claim: Some(claim),
                });
            }
            StorageLocation::Remote { prefix } => prefix,
        };
        drop(claim); // the download is ours alone
        let bucket = self.bucket()?;
        let dir = self
            .local_dir
            .join(DOWNLOADS_DIR)
            .join(format!("{id}-{}", Uuid::new_v4()));
        tokio::fs::create_dir_all(&dir).await?;
        // From here on, dropping the copy cleans up, also on error.
        let copy = LocalCopy {
            dir,
            temporary: true,
            _claim: None,
        };
        let objects: Vec<ObjectMeta> = bucket
            .s3
            .list(Some(&ObjectPath::from(prefix)))
            .try_collect()
            .await?;
        for meta in objects {
            let Some(name) = meta.location.filename().filter(|n| is_plain_name(n)) else {
                continue;
            };
            let mut file = tokio::fs::File::create(copy.dir.join(name)).await?;
            let mut chunks = bucket.s3.get(&meta.location).await?.into_stream();
            while let Some(chunk) = chunks.next().await {
                file.write_all(&chunk?).await?;
            }
            file.flush().await?;
        }
        Ok(copy)
    }

    /// Claims the recording's files, waiting at most `patience` for
    /// others to release them.
    async fn claim(&self, id: Uuid, how: Use, patience: Duration) -> Result<Claim, StorageError> {
        let waited = Instant::now();
        loop {
            if let Some(claim) = self.in_use.claim(id, how) {
                return Ok(claim);
            }
            if waited.elapsed() > patience {
                return Err(StorageError::Busy);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn bucket(&self) -> Result<&Bucket, StorageError> {
        self.bucket
            .as_ref()
            .ok_or_else(|| StorageError::Config("no bucket is configured".into()))
    }
}

/// Ends an upload's task when the uploader is stopped (at shutdown): the
/// recording stays `local` and is uploaded again at the next start.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A recording's files in a local folder (see [`RecordingFiles::local_copy`]).
#[derive(Debug)]
pub struct LocalCopy {
    dir: PathBuf,
    /// Downloaded for this copy: removed on drop.
    temporary: bool,
    /// For the recording's own folder: keeps the uploader from removing
    /// it, and deletion from happening, while the copy is in use.
    _claim: Option<Claim>,
}

impl LocalCopy {
    /// The folder holding the track files and `manifest.json`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for LocalCopy {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Bucket {
    fn recording_prefix(&self, id: Uuid) -> ObjectPath {
        ObjectPath::from(self.prefix.as_str()).child(id.to_string())
    }
}

fn connect(settings: &BucketSettings) -> Result<Bucket, StorageError> {
    let (bucket_name, prefix) = parse_bucket_url(&settings.url)?;
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(&bucket_name)
        .with_region(&settings.region)
        .with_allow_http(settings.allow_http)
        .with_client_options(
            ClientOptions::new()
                .with_allow_http(settings.allow_http)
                .with_connect_timeout(Duration::from_secs(5))
                .with_timeout(Duration::from_secs(120)),
        )
        .with_retry(RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: 3,
            retry_timeout: Duration::from_secs(30),
        });
    if let Some(endpoint) = &settings.endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    if let Some(key) = &settings.access_key_id {
        builder = builder.with_access_key_id(key);
    }
    if let Some(secret) = &settings.secret_access_key {
        builder = builder.with_secret_access_key(secret);
    }
    let s3 = builder
        .build()
        .map_err(|e| StorageError::Config(e.to_string()))?;
    let url = if prefix.is_empty() {
        format!("s3://{bucket_name}")
    } else {
        format!("s3://{bucket_name}/{prefix}")
    };
    Ok(Bucket {
        s3: Arc::new(s3),
        prefix,
        url,
        presign_downloads: settings.presign_downloads,
    })
}

/// Uploads one file (in parts when large), retrying a few times, then
/// confirms it with a HEAD that must show the local size.
async fn upload_file(
    bucket: &Bucket,
    path: &Path,
    key: &ObjectPath,
    len: u64,
) -> Result<(), StorageError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match put_file(bucket, path, key, len).await {
            Ok(()) => {
                let stored = bucket.s3.head(key).await?;
                if stored.size == len {
                    return Ok(());
                }
                return Err(StorageError::NotConfirmed(format!(
                    "{key}: {} bytes stored, {len} on disk",
                    stored.size
                )));
            }
            Err(e) if attempt < FILE_ATTEMPTS => {
                tracing::debug!(%key, attempt, error = %e, "upload failed; retrying");
                tokio::time::sleep(Duration::from_millis(500) * attempt).await;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn put_file(
    bucket: &Bucket,
    path: &Path,
    key: &ObjectPath,
    len: u64,
) -> Result<(), StorageError> {
    let mut file = tokio::fs::File::open(path).await?;
    if len <= PART_BYTES as u64 {
        let mut data = Vec::with_capacity(PART_BYTES.min(len as usize));
        file.read_to_end(&mut data).await?;
        bucket.s3.put(key, data.into()).await?;
        return Ok(());
    }
    let mut parts =
        WriteMultipart::new_with_chunk_size(bucket.s3.put_multipart(key).await?, PART_BYTES);
    let mut chunk = vec![0u8; 1 << 20];
    loop {
        // At most two parts in flight: memory stays bounded whatever the size.
        let read = match parts.wait_for_capacity(2).await {
            Ok(()) => file.read(&mut chunk).await.map_err(StorageError::from),
            Err(e) => Err(e.into()),
        };
        match read {
            Ok(0) => break,
            Ok(n) => parts.write(&chunk[..n]),
            Err(e) => {
                // Frees the parts already stored.
                let _ = parts.abort().await;
                return Err(e);
            }
        }
    }
    parts.finish().await?;
    Ok(())
}

async fn delete_prefix(bucket: &Bucket, prefix: &ObjectPath) -> Result<(), StorageError> {
    let objects: Vec<ObjectMeta> = bucket.s3.list(Some(prefix)).try_collect().await?;
    for meta in objects {
        match bucket.s3.delete(&meta.location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn object_path(prefix: &str, name: &str) -> ObjectPath {
    ObjectPath::from(prefix).child(name)
}

/// A file name with no path in it (what the recorder writes).
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && !name.contains(['/', '\\'])
        && !name.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_urls() {
        assert_eq!(
            parse_bucket_url("s3://recs").unwrap(),
            ("recs".into(), "".into())
        );
        assert_eq!(
            parse_bucket_url("s3://recs/a/b/").unwrap(),
            ("recs".into(), "a/b".into())
        );
        for bad in [
            "recs",
            "s3://",
            "s3:///x",
            "s3://Recs",
            "http://x/y",
            "s3://r/../x",
        ] {
            assert!(parse_bucket_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn plain_names() {
        assert!(is_plain_name("00-camera-p1.webm"));
        for bad in ["", ".hidden", "a/b", "a\\b", "a\nb"] {
            assert!(!is_plain_name(bad), "{bad:?}");
        }
    }
}
