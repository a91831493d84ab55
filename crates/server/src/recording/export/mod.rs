//! Export of a finished recording to one composed file with Debian's
//! `ffmpeg`: `compose` builds the argument list and reads progress (pure),
//! `run` runs ffmpeg (bounded: threads, a deadline proportional to the
//! duration, killed when dropped), `queue` runs the HTTP API's exports one
//! (or a configured few) at a time, with their state in the store.
//!
//! Exports are written to `<data-dir>/exports/<recording id>/<export
//! id>.mp4` (see [`export_path`]); the recording's track files are read
//! from a [`RecordingFiles::local_copy`] (its own folder, or a download
//! from the bucket), held until ffmpeg is done.

pub mod compose;
pub mod queue;
pub mod run;

use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;
use uuid::Uuid;
use vtp_recording::Manifest;
use vtp_store::{ExportLayout, Recording, Store};

use super::storage::RecordingFiles;

pub use compose::{ComposeRequest, FfmpegPlan, ProgressParser};
pub use queue::ExportQueue;

/// What to say when ffmpeg is missing, everywhere.
pub const INSTALL_FFMPEG: &str =
    "exporting needs ffmpeg: install the Debian package `ffmpeg` (apt-get install ffmpeg)";

/// How exports run (shared by `vtp serve` and `vtp recording export`).
#[derive(Clone, Debug)]
pub struct ExportSettings {
    /// The ffmpeg program (a name looked up in `PATH`, or a path).
    pub ffmpeg: PathBuf,
    /// Threads ffmpeg may use for decoding, filtering and encoding each.
    pub threads: u32,
}

/// Why an export failed; the `Display` is meant for the person who asked
/// (it never contains a path or ffmpeg's own output, which go to the log).
#[derive(Debug, Error)]
pub enum ExportError {
    #[error("{INSTALL_FFMPEG}")]
    FfmpegMissing,
    #[error("nothing to export: {0}")]
    NothingToExport(String),
    #[error("the recording has {count} {kind} tracks; an export composes at most {max}")]
    TooManyTracks {
        kind: &'static str,
        count: usize,
        max: usize,
    },
    #[error("ffmpeg failed ({0})")]
    Ffmpeg(String),
    #[error("ffmpeg took longer than {} s and was stopped", .0.as_secs())]
    TimedOut(Duration),
    #[error("internal error (the server log says more)")]
    Internal,
    #[error("the recording's files cannot be read right now; try again later")]
    Files,
    #[error("export files: {0}")]
    Io(#[from] std::io::Error),
}

/// `<exports_dir>/<recording id>/`: every export of one recording.
pub fn exports_of(exports_dir: &Path, recording_id: Uuid) -> PathBuf {
    exports_dir.join(recording_id.to_string())
}

/// Where an export's finished file goes.
pub fn export_path(exports_dir: &Path, recording_id: Uuid, export_id: Uuid) -> PathBuf {
    exports_of(exports_dir, recording_id).join(format!("{export_id}.mp4"))
}

/// The manifest with only the tracks that can be read: plain file names
/// (never a path out of the directory) whose file exists and is not empty.
/// Left-out tracks are logged.
pub async fn readable_tracks(manifest: &Manifest, dir: &Path) -> Manifest {
    let mut kept = manifest.clone();
    kept.tracks.clear();
    for track in &manifest.tracks {
        let plain = !track.file.is_empty()
            && !track.file.starts_with('.')
            && !track.file.contains(['/', '\\'])
            && !track.file.contains("..");
        let size = if plain {
            tokio::fs::metadata(dir.join(&track.file))
                .await
                .ok()
                .filter(|m| m.is_file())
                .map(|m| m.len())
        } else {
            None
        };
        match size {
            Some(n) if n > 0 => kept.tracks.push(track.clone()),
            _ => tracing::warn!(recording_id = %manifest.recording_id, file = %track.file,
                "track left out of the export: no readable file"),
        }
    }
    kept
}

/// The deadline of an export of `duration_ms` of media: a minute, plus ten
/// times the duration (a loaded 2-core machine encodes 720p at several
/// times real time with `veryfast`; ten leaves room for a busy one).
pub fn deadline_for(duration_ms: u64) -> Duration {
    Duration::from_secs(60) + Duration::from_millis(duration_ms.saturating_mul(10))
}

/// Exports `recording` with `layout` into `output` (written as
/// `<output>.part`, renamed when whole, so a half-written file is never
/// taken for a finished one). Returns the file's size.
pub async fn export_to_file(
    store: &Store,
    files: &RecordingFiles,
    recording: &Recording,
    layout: ExportLayout,
    output: &Path,
    settings: &ExportSettings,
    on_progress: impl FnMut(f64),
) -> Result<u64, ExportError> {
    let manifest: Manifest = recording
        .manifest
        .clone()
        .and_then(|m| serde_json::from_value(m).ok())
        .ok_or_else(|| ExportError::NothingToExport("the recording has no manifest".into()))?;
    // Held until ffmpeg is done: the uploader cannot remove the folder,
    // and a download from the bucket is removed when it drops.
    let copy = files.local_copy(store, recording.id).await.map_err(|e| {
        tracing::warn!(recording_id = %recording.id, error = %e,
                "cannot get a recording's files to export");
        ExportError::Files
    })?;
    let dir = copy.dir().to_path_buf();
    let manifest = readable_tracks(&manifest, &dir).await;
    // The host whose camera `speaker` shows: who started the recording,
    // else the room's owner.
    let host = match recording.started_by {
        Some(user) => Some(user),
        None => store
            .room_by_id(&recording.room_id)
            .await
            .ok()
            .map(|r| r.owner_id),
    }
    .map(|id| id.to_string());
    let mut part = output.as_os_str().to_owned();
    part.push(".part");
    let part = PathBuf::from(part);
    let plan = compose::plan(&ComposeRequest {
        manifest: &manifest,
        dir: &dir,
        layout,
        host_user_id: host.as_deref(),
        recording_duration_ms: recording.duration_ms,
        output: &part,
        threads: settings.threads,
    })?;
    if let Some(parent) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(parent).await?;
    }
    let ran = run::run_ffmpeg(
        &settings.ffmpeg,
        &plan,
        deadline_for(plan.duration_ms),
        on_progress,
    )
    .await;
    if let Err(e) = ran {
        let _ = tokio::fs::remove_file(&part).await;
        return Err(e);
    }
    tokio::fs::rename(&part, output).await?;
    Ok(tokio::fs::metadata(output).await?.len())
}
