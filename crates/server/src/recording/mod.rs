//! Server-side recording (docs/protocol.md, "Recordings over HTTP"): each recorded producer is
//! tapped on the SFU (a subscriber with no network hop) and written by its
//! own thread into one WebM/Matroska file per track (`track`), next to a
//! `manifest.json` that says whose each track is and where it starts.
//!
//! Layout: `<data-dir>/recordings/<recording id>/manifest.json` and the
//! track files it names. The manifest is rewritten (atomically) whenever a
//! track starts or ends, so that after a crash `repair` knows every file.
//!
//! `storage` keeps finished recordings: on disk, or uploaded to an
//! S3-compatible bucket, and gives them back (downloads, local copies).
//!
//! Knows files, taps and the manifest; not rooms, permissions or
//! signalling (the room hub decides who records what and when), and not
//! the store (the hub records the state).

pub mod export;
mod file_claims;
pub mod repair;
pub mod storage;
pub mod track;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use thiserror::Error;
use uuid::Uuid;
use vtp_recording::{Codec, Manifest, ManifestTrack};
use vtp_sfu_driver::{SfuControl, SfuError};

use track::{TrackJob, TrackOutcome, TrackThread};

/// The file every recording directory has.
pub const MANIFEST_FILE: &str = "manifest.json";

/// Limits and places of recordings.
#[derive(Clone, Debug)]
pub struct RecordingConfig {
    /// Where recording directories go (`<data-dir>/recordings`).
    pub dir: PathBuf,
    /// Tracks stop growing once the recording is this long.
    pub max_duration: Duration,
    /// A track's file stops growing at this size.
    pub max_track_bytes: u64,
    /// Starting is refused when the disk has less free space than this.
    pub min_free_bytes: u64,
    /// Rung when a recording is `ready` (the uploader takes it from there).
    pub ready: storage::ReadySignal,
}

/// Why a recording could not start or a track could not be added.
#[derive(Debug, Error)]
pub enum RecordingError {
    #[error("not enough disk space to record: {free} bytes free, {needed} needed")]
    DiskFull { free: u64, needed: u64 },
    #[error("recording files: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Sfu(#[from] SfuError),
    #[error("cannot record {0}")]
    Unsupported(String),
}

/// Who produced a track, for the manifest.
#[derive(Clone, Debug)]
pub struct TrackOwner {
    pub peer_id: String,
    pub user_id: String,
    /// `appData.source` (`camera`, `mic`, `screen`, …).
    pub source: String,
}

struct RunningTrack {
    producer_id: String,
    tap_id: String,
    /// Index of its entry in the manifest.
    entry: usize,
    thread: TrackThread,
}

/// One room's recording in progress.
pub struct ActiveRecording {
    pub id: Uuid,
    config: RecordingConfig,
    dir: PathBuf,
    epoch: Instant,
    manifest: Manifest,
    running: Vec<RunningTrack>,
    /// Outcomes of tracks that already ended (by manifest entry).
    ended: Vec<(usize, TrackOutcome)>,
}

/// What a finished recording amounts to, for the store.
#[derive(Clone, Debug)]
pub struct RecordingSummary {
    pub bytes: u64,
    pub duration: Duration,
    pub manifest: Manifest,
    /// Why it failed (no track has anything playable), if it did.
    pub error: Option<String>,
}

impl ActiveRecording {
    /// Where its files are written.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How long it has been running.
    pub fn elapsed(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// Creates the recording's directory and manifest, after checking the
    /// disk has room.
    pub fn create(
        config: &RecordingConfig,
        id: Uuid,
        room_id: &str,
        session_id: Uuid,
        started_at: DateTime<Utc>,
    ) -> Result<ActiveRecording, RecordingError> {
        std::fs::create_dir_all(&config.dir)?;
        if let Some(free) = free_bytes(&config.dir)
            && free < config.min_free_bytes
        {
            return Err(RecordingError::DiskFull {
                free,
                needed: config.min_free_bytes,
            });
        }
        let dir = config.dir.join(id.to_string());
        std::fs::create_dir_all(&dir)?;
        let manifest = Manifest::new(
            id.to_string(),
            room_id.to_owned(),
            session_id.to_string(),
            u64::try_from(started_at.timestamp_millis()).unwrap_or(0),
        );
        let recording = ActiveRecording {
            id,
            config: config.clone(),
            dir,
            epoch: Instant::now(),
            manifest,
            running: Vec::new(),
            ended: Vec::new(),
        };
        recording.write_manifest()?;
        Ok(recording)
    }

    /// Starts recording a producer of `router_id` into a file of its own.
    pub async fn add_track(
        &mut self,
        media: &Arc<dyn SfuControl>,
        router_id: &str,
        producer_id: &str,
        owner: TrackOwner,
    ) -> Result<(), RecordingError> {
        if self.running.iter().any(|t| t.producer_id == producer_id) {
            return Ok(());
        }
        let tap = media.open_tap(router_id, producer_id).await?;
        let codec = tap
            .info
            .codecs
            .iter()
            .find_map(|c| Codec::from_mime_type(&c.mime_type));
        let Some(codec) = codec else {
            let _ = media.close_tap(router_id, &tap.info.tap_id).await;
            return Err(RecordingError::Unsupported(format!(
                "producer {producer_id}: no recordable codec in {:?}",
                tap.info
                    .codecs
                    .iter()
                    .map(|c| &c.mime_type)
                    .collect::<Vec<_>>()
            )));
        };
        let payload_types = tap
            .info
            .codecs
            .iter()
            .filter(|c| Codec::from_mime_type(&c.mime_type) == Some(codec))
            .map(|c| c.payload_type)
            .collect();
        let entry = self.manifest.tracks.len();
        let file = format!(
            "{entry:02}-{}-{}.{}",
            sanitize(&owner.source),
            sanitize(&owner.peer_id),
            codec.file_extension()
        );
        let keyframe = {
            let media = media.clone();
            let (router, tap_id) = (router_id.to_owned(), tap.info.tap_id.clone());
            let runtime = tokio::runtime::Handle::current();
            Box::new(move || {
                let (media, router, tap_id) = (media.clone(), router.clone(), tap_id.clone());
                runtime.spawn(async move {
                    let _ = media.request_tap_keyframe(&router, &tap_id).await;
                });
            }) as Box<dyn Fn() + Send>
        };
        let thread = TrackThread::start(TrackJob {
            path: self.dir.join(&file),
            codec,
            payload_types,
            epoch: self.epoch,
            max_duration: Some(
                self.config
                    .max_duration
                    .saturating_sub(self.epoch.elapsed()),
            ),
            max_bytes: Some(self.config.max_track_bytes),
            packets: tap.packets,
            keyframe,
        });
        let thread = match thread {
            Ok(thread) => thread,
            Err(e) => {
                let _ = media.close_tap(router_id, &tap.info.tap_id).await;
                return Err(e.into());
            }
        };
        self.manifest.tracks.push(ManifestTrack {
            file,
            peer_id: owner.peer_id,
            user_id: owner.user_id,
            kind: codec.kind(),
            codec,
            source: owner.source,
            start_offset_ms: millis(self.epoch.elapsed()),
            duration_ms: 0,
            bytes: 0,
        });
        self.running.push(RunningTrack {
            producer_id: producer_id.to_owned(),
            tap_id: tap.info.tap_id,
            entry,
            thread,
        });
        self.write_manifest()?;
        Ok(())
    }

    /// A recorded producer closed: its track ends (its tap already did).
    pub async fn end_track(&mut self, producer_id: &str) {
        let Some(index) = self
            .running
            .iter()
            .position(|t| t.producer_id == producer_id)
        else {
            return;
        };
        let track = self.running.remove(index);
        track.thread.stop();
        let entry = track.entry;
        let outcome = join(track.thread).await;
        self.ended.push((entry, outcome));
        self.apply_outcomes();
        if let Err(e) = self.write_manifest() {
            tracing::warn!(error = %e, recording_id = %self.id, "manifest not updated");
        }
    }

    /// Stops every track, finalizes the files and writes the manifest.
    pub async fn stop(mut self, media: &Arc<dyn SfuControl>, router_id: &str) -> RecordingSummary {
        for track in &self.running {
            track.thread.stop();
            // Ends the packet stream too; the router may be gone already.
            let _ = media.close_tap(router_id, &track.tap_id).await;
        }
        for track in std::mem::take(&mut self.running) {
            let outcome = join(track.thread).await;
            self.ended.push((track.entry, outcome));
        }
        self.apply_outcomes();
        let mut error = None;
        if let Err(e) = self.write_manifest() {
            error = Some(format!("manifest: {e}"));
        }
        let playable = self.ended.iter().any(|(_, o)| o.error.is_none());
        if !playable && error.is_none() {
            error = Some(if self.ended.is_empty() {
                "nothing was recorded (no one published)".into()
            } else {
                self.ended
                    .iter()
                    .find_map(|(_, o)| o.error.clone())
                    .unwrap_or_default()
            });
        }
        RecordingSummary {
            bytes: self.manifest.tracks.iter().map(|t| t.bytes).sum(),
            duration: self.epoch.elapsed(),
            manifest: self.manifest,
            error,
        }
    }

    fn apply_outcomes(&mut self) {
        for (entry, outcome) in &self.ended {
            if let Some(track) = self.manifest.tracks.get_mut(*entry) {
                if let Some(offset) = outcome.start_offset {
                    track.start_offset_ms = millis(offset);
                }
                track.duration_ms = millis(outcome.duration);
                track.bytes = outcome.bytes;
            }
        }
    }

    fn write_manifest(&self) -> std::io::Result<()> {
        write_manifest(&self.dir, &self.manifest)
    }
}

/// Writes `manifest.json` atomically (a temporary file, then a rename).
pub fn write_manifest(dir: &Path, manifest: &Manifest) -> std::io::Result<()> {
    let json = manifest.to_json().map_err(std::io::Error::other)?;
    let tmp = dir.join(format!("{MANIFEST_FILE}.tmp"));
    std::fs::write(&tmp, json)?;
    std::fs::rename(tmp, dir.join(MANIFEST_FILE))
}

async fn join(thread: TrackThread) -> TrackOutcome {
    tokio::task::spawn_blocking(move || thread.join())
        .await
        .unwrap_or_else(|_| TrackOutcome {
            error: Some("the recorder thread could not be joined".into()),
            ..TrackOutcome::default()
        })
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A file-name-safe version of a client-given name.
fn sanitize(name: &str) -> String {
    let clean: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(40)
        .collect();
    if clean.is_empty() {
        "track".into()
    } else {
        clean
    }
}

/// Free bytes on the file system of `path` (None when it cannot be read).
fn free_bytes(path: &Path) -> Option<u64> {
    disk_space(path).map(|(free, _)| free)
}

/// Bytes free (to unprivileged users) and in all on the file system of
/// `path` (None when it cannot be read).
pub fn disk_space(path: &Path) -> Option<(u64, u64)> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c_path = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs is plain data, for which all-zero bytes are valid.
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c_path` is a valid NUL-terminated string and `stats` a
    // properly sized, writable statvfs for the call to fill.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), &mut stats) };
    (rc == 0).then(|| {
        (
            stats.f_bavail.saturating_mul(stats.f_frsize),
            stats.f_blocks.saturating_mul(stats.f_frsize),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_clients_cannot_escape_the_directory() {
        assert_eq!(sanitize("../../etc/passwd"), "etcpasswd");
        assert_eq!(sanitize(""), "track");
        assert_eq!(sanitize("camera"), "camera");
    }

    #[test]
    fn free_space_is_read() {
        assert!(free_bytes(Path::new("/")).is_some_and(|b| b > 0));
    }
}
