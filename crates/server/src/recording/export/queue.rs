//! The server's export queue: exports asked for through the API wait in
//! the store (`queued`), run at most `max_concurrent` at a time in the
//! order they were asked (`running`, with progress), and end `ready` or
//! `failed`. The store is the truth, so the queue survives a restart: at
//! start-up exports a crash left `running` become `failed` (their partial
//! output is not trusted) and those still `queued` are queued again.
//!
//! Disk: a ready export replaces the earlier finished exports of the same
//! recording and layout, so a recording has at most one file per layout
//! (plus those being made).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use chrono::Utc;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use tokio::sync::{Semaphore, mpsc, watch};
use tracing::Instrument as _;
use uuid::Uuid;
use vtp_store::{ExportState, RecordingExport, Store, StoreError};

use super::super::storage::RecordingFiles;
use super::{ExportError, ExportSettings, export_path, export_to_file, exports_of, run};

/// Buckets (seconds) of `vtp_export_duration_seconds`: a class's export
/// takes from seconds to about its own length.
const DURATION_BUCKETS: [f64; 10] = [
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// How long exports ran, by outcome (`ready`, `failed`).
pub type ExportDurations = Family<[(&'static str, &'static str); 1], Histogram, fn() -> Histogram>;

/// How often a running export's progress is written to the store.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// Limits of the queue.
#[derive(Clone, Debug)]
pub struct QueueConfig {
    pub settings: ExportSettings,
    /// Exports running at once, server-wide.
    pub max_concurrent: usize,
    /// Exports queued or running at once, server-wide; more are refused.
    pub max_queued: u64,
    /// Where the recordings' track files are (on disk or in the bucket).
    pub files: Arc<RecordingFiles>,
    /// `<data-dir>/exports`.
    pub exports_dir: PathBuf,
    /// `export.ready` goes to webhook endpoints.
    pub webhooks: crate::webhooks::Webhooks,
}

/// Runs exports; cheap to share (`Arc`).
pub struct ExportQueue {
    store: Store,
    config: QueueConfig,
    /// `ffmpeg -version`'s first line; `None`: ffmpeg cannot be run, and
    /// exports are refused.
    ffmpeg: Option<String>,
    /// Export ids, in the order they run.
    sender: mpsc::UnboundedSender<Uuid>,
    durations: ExportDurations,
}

impl ExportQueue {
    /// Looks for ffmpeg, repairs what a crash left (see the module doc)
    /// and starts the dispatcher.
    pub async fn start(store: Store, config: QueueConfig) -> Arc<ExportQueue> {
        let ffmpeg = run::ffmpeg_version(&config.settings.ffmpeg).await;
        if ffmpeg.is_none() {
            tracing::warn!(ffmpeg = %config.settings.ffmpeg.display(), "{}", super::INSTALL_FFMPEG);
        }
        let reason = "the server stopped while this export was running";
        match store.fail_running_exports(reason, Utc::now()).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(exports = n, "exports cut by a restart marked failed"),
            Err(e) => tracing::error!(error = %e, "cannot repair exports left running"),
        }
        let (sender, receiver) = mpsc::unbounded_channel();
        let queue = Arc::new(ExportQueue {
            store,
            config,
            ffmpeg,
            sender,
            durations: Family::new_with_constructor(duration_histogram),
        });
        // Weak: the dispatcher ends when the server drops the queue (its
        // sender goes with it), instead of keeping it alive forever.
        tokio::spawn(dispatch(Arc::downgrade(&queue), receiver));
        match queue.store.exports_in_state(ExportState::Queued).await {
            Ok(waiting) => {
                for export in waiting {
                    queue.enqueue(export.id);
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot resume queued exports"),
        }
        queue
    }

    pub fn ffmpeg_available(&self) -> bool {
        self.ffmpeg.is_some()
    }

    /// One line for the start-up log.
    pub fn describe(&self) -> String {
        match &self.ffmpeg {
            Some(version) => format!(
                "exports: {version}; {} at a time, {} threads each, up to {} waiting",
                self.config.max_concurrent, self.config.settings.threads, self.config.max_queued
            ),
            None => format!("exports: off ({})", super::INSTALL_FFMPEG),
        }
    }

    /// How long exports ran (for `/metrics`).
    pub fn durations(&self) -> &ExportDurations {
        &self.durations
    }

    pub fn max_queued(&self) -> u64 {
        self.config.max_queued
    }

    /// The finished file of an export.
    pub fn file_of(&self, export: &RecordingExport) -> PathBuf {
        export_path(&self.config.exports_dir, export.recording_id, export.id)
    }

    /// Runs an export the store holds as `queued`, after those before it.
    pub fn enqueue(&self, export_id: Uuid) {
        // The dispatcher lives as long as the runtime; a send can only fail
        // at shutdown, when the export stays queued for the next start.
        let _ = self.sender.send(export_id);
    }

    /// Removes every export file of a recording (its rows go with it).
    pub async fn remove_files(&self, recording_id: Uuid) -> std::io::Result<()> {
        match tokio::fs::remove_dir_all(exports_of(&self.config.exports_dir, recording_id)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    async fn run_one(&self, id: Uuid) {
        match self.store.start_export(id, Utc::now()).await {
            Ok(true) => {}
            Ok(false) => return, // finished or deleted meanwhile
            Err(e) => {
                tracing::error!(error = %e, "cannot start an export");
                return;
            }
        }
        let started = Instant::now();
        let outcome = self.compose(id).await;
        let label = if outcome.is_ok() { "ready" } else { "failed" };
        self.durations
            .get_or_create(&[("outcome", label)])
            .observe(started.elapsed().as_secs_f64());
        let (result, path) = match &outcome {
            Ok((bytes, path)) => (Ok(*bytes), Some(path.as_path())),
            Err(e) => (Err(e.to_string()), None),
        };
        let finished = self
            .store
            .finish_export(
                id,
                result.as_ref().map(|b| *b).map_err(String::as_str),
                Utc::now(),
            )
            .await;
        match (finished, path) {
            (Ok(true), Some(_)) => {
                tracing::info!(outcome = ?result, "export ready");
                self.announce_ready(id).await;
                self.remove_superseded(id).await;
            }
            (Ok(true), None) => tracing::info!(outcome = ?result, "export failed"),
            // The row went with its recording: the file must not stay.
            (Ok(false), Some(path)) => remove_quietly(path).await,
            (Ok(false), None) => {}
            (Err(e), _) => tracing::error!(error = %e, "cannot store an export's outcome"),
        }
    }

    /// `export.ready` to webhook endpoints, with what a receiver needs to fetch it.
    async fn announce_ready(&self, id: Uuid) {
        match self.store.get_export(id).await {
            Ok(export) => self.config.webhooks.emit(
                crate::webhooks::WebhookEvent::ExportReady,
                serde_json::json!({
                    "exportId": export.id,
                    "recordingId": export.recording_id,
                    "layout": export.layout.as_str(),
                    "bytes": export.bytes,
                }),
            ),
            Err(e) => tracing::warn!(error = %e, "cannot read a ready export for its webhook"),
        }
    }

    /// A new ready export replaces the earlier finished ones of its
    /// recording and layout (rows and files), so that exporting again does
    /// not pile files up.
    async fn remove_superseded(&self, id: Uuid) {
        let removed = match self.store.get_export(id).await {
            Ok(kept) => self.store.delete_superseded_exports(&kept).await,
            Err(e) => Err(e),
        };
        match removed {
            Ok(old) => {
                for export in old {
                    if export.state == ExportState::Ready {
                        remove_quietly(&self.file_of(&export)).await;
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot remove superseded exports"),
        }
    }

    /// Composes the export's file; returns its size and path.
    async fn compose(&self, id: Uuid) -> Result<(u64, PathBuf), ExportError> {
        let export = self.store.get_export(id).await.map_err(store_error)?;
        let recording = self
            .store
            .get_recording(export.recording_id)
            .await
            .map_err(store_error)?;
        let path = self.file_of(&export);
        let (progress, mut latest) = watch::channel(0.0_f64);
        let writer = {
            let store = self.store.clone();
            tokio::spawn(async move {
                while latest.changed().await.is_ok() {
                    let p = *latest.borrow_and_update();
                    if let Err(e) = store.set_export_progress(id, p, Utc::now()).await {
                        tracing::warn!(error = %e, "cannot store an export's progress");
                    }
                    tokio::time::sleep(PROGRESS_EVERY).await;
                }
            })
        };
        let bytes = export_to_file(
            &self.store,
            &self.config.files,
            &recording,
            export.layout,
            &path,
            &self.config.settings,
            |p| {
                progress.send_replace(p);
            },
        )
        .await;
        drop(progress);
        let _ = writer.await;
        Ok((bytes?, path))
    }
}

/// Runs the queue's exports in the order they come, at most
/// `max_concurrent` at once.
async fn dispatch(queue: Weak<ExportQueue>, mut receiver: mpsc::UnboundedReceiver<Uuid>) {
    let max = match queue.upgrade() {
        Some(q) => q.config.max_concurrent.max(1),
        None => return,
    };
    let slots = Arc::new(Semaphore::new(max));
    while let Some(id) = receiver.recv().await {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let Some(queue) = queue.upgrade() else {
            return;
        };
        tokio::spawn(
            async move {
                queue.run_one(id).await;
                drop(permit);
            }
            .instrument(tracing::info_span!("export", export_id = %id)),
        );
    }
}

fn store_error(e: StoreError) -> ExportError {
    match e {
        StoreError::NotFound => ExportError::NothingToExport("the recording is gone".into()),
        other => {
            tracing::error!(error = %other, "store failure during an export");
            ExportError::Internal
        }
    }
}

async fn remove_quietly(path: &Path) {
    if let Err(e) = tokio::fs::remove_file(path).await {
        tracing::warn!(error = %e, "cannot remove an orphaned export file");
    }
}
