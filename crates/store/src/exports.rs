//! Exports of recordings to one composed file: what was asked (recording,
//! layout), where it stands (`queued` → `running` → `ready` | `failed`) and
//! how far it got. The files are the server's; deleting a recording deletes
//! its export rows (ON DELETE CASCADE), not the files.
//!
//! One export per (recording, layout) may be queued or running at a time: a
//! unique partial index makes a second request a [`StoreError::Conflict`],
//! whichever of two concurrent requests comes second.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SubsecRound, Utc};
use uuid::Uuid;

use crate::pool::on_pool;
use crate::{Page, Paging, Store, StoreError, TimeKey};

const EXPORT_COLUMNS: &str =
    "id, recording_id, layout, state, progress, requested_by, bytes, error, created_at, updated_at";

/// How the tracks are composed into one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(rename_all = "lowercase")
)]
pub enum ExportLayout {
    /// Every video track tiled, audio mixed.
    Grid,
    /// One video large (the screen share, else the host's camera), the
    /// other cameras in a strip; audio mixed.
    Speaker,
    /// Audio only, mixed.
    Audio,
}

impl ExportLayout {
    pub const ALL: [ExportLayout; 3] = [
        ExportLayout::Grid,
        ExportLayout::Speaker,
        ExportLayout::Audio,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ExportLayout::Grid => "grid",
            ExportLayout::Speaker => "speaker",
            ExportLayout::Audio => "audio",
        }
    }
}

impl fmt::Display for ExportLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ExportLayout {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "grid" => Ok(ExportLayout::Grid),
            "speaker" => Ok(ExportLayout::Speaker),
            "audio" => Ok(ExportLayout::Audio),
            other => Err(format!(
                "unknown layout {other:?} (expected grid, speaker or audio)"
            )),
        }
    }
}

/// Where an export is in its life; `ready` and `failed` are final.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(rename_all = "lowercase")
)]
pub enum ExportState {
    Queued,
    Running,
    Ready,
    Failed,
}

impl ExportState {
    pub const ALL: [ExportState; 4] = [
        ExportState::Queued,
        ExportState::Running,
        ExportState::Ready,
        ExportState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ExportState::Queued => "queued",
            ExportState::Running => "running",
            ExportState::Ready => "ready",
            ExportState::Failed => "failed",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, ExportState::Ready | ExportState::Failed)
    }
}

impl fmt::Display for ExportState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ExportState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "queued" => Ok(ExportState::Queued),
            "running" => Ok(ExportState::Running),
            "ready" => Ok(ExportState::Ready),
            "failed" => Ok(ExportState::Failed),
            other => Err(format!("unknown export state {other:?}")),
        }
    }
}

/// One export of a recording.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordingExport {
    pub id: Uuid,
    pub recording_id: Uuid,
    pub layout: ExportLayout,
    pub state: ExportState,
    /// 0..1; 1 once ready.
    pub progress: f64,
    /// Who asked for it; `None` once the account is deleted.
    pub requested_by: Option<Uuid>,
    /// Size of the finished file (0 until ready).
    pub bytes: u64,
    /// Why it failed, in words meant for the person who asked.
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct ExportRow {
    id: Uuid,
    recording_id: Uuid,
    layout: String,
    state: String,
    progress: f64,
    requested_by: Option<Uuid>,
    bytes: i64,
    error: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<ExportRow> for RecordingExport {
    type Error = StoreError;
    fn try_from(r: ExportRow) -> Result<Self, StoreError> {
        Ok(RecordingExport {
            id: r.id,
            recording_id: r.recording_id,
            layout: r.layout.parse().map_err(StoreError::Corrupt)?,
            state: r.state.parse().map_err(StoreError::Corrupt)?,
            progress: r.progress.clamp(0.0, 1.0),
            requested_by: r.requested_by,
            bytes: u64::try_from(r.bytes).unwrap_or(0),
            error: r.error,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

impl Store {
    /// Queues an export. The recording must exist (else `NotFound`); one
    /// already queued or running with the same layout is a `Conflict`.
    pub async fn create_export(
        &self,
        recording_id: Uuid,
        layout: ExportLayout,
        requested_by: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> Result<RecordingExport, StoreError> {
        let now = now.trunc_subsecs(6);
        let sql = format!(
            "INSERT INTO recording_exports (id, recording_id, layout, state, progress, \
             requested_by, bytes, created_at, updated_at) \
             VALUES ($1, $2, $3, 'queued', 0, $4, 0, $5, $5) RETURNING {EXPORT_COLUMNS}"
        );
        let row: ExportRow = on_pool!(self, pool => sqlx::query_as(&sql)
            .bind(Uuid::new_v4())
            .bind(recording_id)
            .bind(layout.as_str())
            .bind(requested_by)
            .bind(now)
            .fetch_one(pool)
            .await)
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(m) if m == "already exists" => StoreError::Conflict(format!(
                "an export of this recording with layout {layout} is already queued or running"
            )),
            StoreError::Conflict(_) => StoreError::NotFound,
            other => other,
        })?;
        row.try_into()
    }

    pub async fn get_export(&self, id: Uuid) -> Result<RecordingExport, StoreError> {
        let sql = format!("SELECT {EXPORT_COLUMNS} FROM recording_exports WHERE id = $1");
        let row: Option<ExportRow> =
            on_pool!(self, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)?;
        row.ok_or(StoreError::NotFound)?.try_into()
    }

    /// A recording's exports, newest first (by `created_at`, then id, both
    /// descending), a page at a time.
    pub async fn list_exports(
        &self,
        recording_id: Uuid,
        paging: &Paging<TimeKey>,
    ) -> Result<Page<RecordingExport, TimeKey>, StoreError> {
        let (after_at, after_id) = paging.after().copied().unzip();
        let sql = format!(
            "SELECT {EXPORT_COLUMNS} FROM recording_exports WHERE recording_id = $1 \
             AND ($2 IS NULL OR created_at < $2 OR (created_at = $2 AND id < $3)) \
             ORDER BY created_at DESC, id DESC LIMIT $4 OFFSET $5"
        );
        let rows: Vec<ExportRow> = on_pool!(self, pool => sqlx::query_as(&sql)
            .bind(recording_id)
            .bind(after_at)
            .bind(after_id)
            .bind(paging.fetch())
            .bind(paging.offset())
            .fetch_all(pool)
            .await)?;
        let exports = rows
            .into_iter()
            .map(RecordingExport::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::cut(exports, paging, |e: &RecordingExport| {
            (e.created_at, e.id)
        }))
    }

    /// Every export in `state`, oldest first: at start-up, the queue to
    /// resume.
    pub async fn exports_in_state(
        &self,
        state: ExportState,
    ) -> Result<Vec<RecordingExport>, StoreError> {
        let sql = format!(
            "SELECT {EXPORT_COLUMNS} FROM recording_exports WHERE state = $1 \
             ORDER BY created_at, id"
        );
        let rows: Vec<ExportRow> = on_pool!(self, pool => sqlx::query_as(&sql)
            .bind(state.as_str())
            .fetch_all(pool)
            .await)?;
        rows.into_iter().map(RecordingExport::try_from).collect()
    }

    /// How many exports are in each state, for operators' metrics (states
    /// with none are absent).
    pub async fn count_exports_by_state(&self) -> Result<Vec<(ExportState, u64)>, StoreError> {
        let rows: Vec<(String, i64)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT state, COUNT(*) FROM recording_exports GROUP BY state")
            .fetch_all(pool)
            .await)?;
        Ok(rows
            .into_iter()
            .filter_map(|(state, n)| {
                let state = ExportState::ALL.into_iter().find(|s| s.as_str() == state)?;
                Some((state, u64::try_from(n).ok()?))
            })
            .collect())
    }

    /// How many exports wait or run, server-wide (the queue's length).
    pub async fn count_active_exports(&self) -> Result<u64, StoreError> {
        let n: i64 = on_pool!(self, pool => sqlx::query_scalar(
            "SELECT COUNT(*) FROM recording_exports WHERE state IN ('queued', 'running')")
            .fetch_one(pool)
            .await)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// `queued` → `running`. Returns false (changing nothing) if the export
    /// is no longer queued (or is gone with its recording).
    pub async fn start_export(&self, id: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let done = on_pool!(self, pool => sqlx::query(
            "UPDATE recording_exports SET state = 'running', progress = 0, updated_at = $2 \
             WHERE id = $1 AND state = 'queued'")
            .bind(id)
            .bind(now.trunc_subsecs(6))
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done > 0)
    }

    /// Progress of a running export (clamped to 0..1). Returns false once it
    /// is no longer running.
    pub async fn set_export_progress(
        &self,
        id: Uuid,
        progress: f64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let progress = if progress.is_finite() {
            progress.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let done = on_pool!(self, pool => sqlx::query(
            "UPDATE recording_exports SET progress = $2, updated_at = $3 \
             WHERE id = $1 AND state = 'running'")
            .bind(id)
            .bind(progress)
            .bind(now.trunc_subsecs(6))
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done > 0)
    }

    /// The last word on an export: `ready` with its size, or `failed` with
    /// the reason. Only an export still queued or running is finished;
    /// returns false (changing nothing) otherwise, also when it is gone.
    pub async fn finish_export(
        &self,
        id: Uuid,
        outcome: Result<u64, &str>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        // A failed export keeps the progress it reached, for the curious.
        let (state, progress, bytes, error) = match outcome {
            Ok(bytes) => (ExportState::Ready, Some(1.0_f64), bytes, None),
            Err(reason) => (ExportState::Failed, None, 0, Some(reason)),
        };
        let done = on_pool!(self, pool => sqlx::query(
            "UPDATE recording_exports SET state = $2, progress = COALESCE($3, progress), bytes = $4, error = $5, updated_at = $6 \
             WHERE id = $1 AND state IN ('queued', 'running')")
            .bind(id)
            .bind(state.as_str())
            .bind(progress)
            .bind(i64::try_from(bytes).unwrap_or(i64::MAX))
            .bind(error)
            .bind(now.trunc_subsecs(6))
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done > 0)
    }

    /// Deletes the finished exports (`ready` or `failed`) of `keep`'s
    /// recording and layout other than `keep`, so that a new export replaces
    /// the old ones instead of piling up. Returns the deleted exports (the
    /// caller removes their files).
    pub async fn delete_superseded_exports(
        &self,
        keep: &RecordingExport,
    ) -> Result<Vec<RecordingExport>, StoreError> {
        let sql = format!(
            "DELETE FROM recording_exports WHERE recording_id = $1 AND layout = $2 AND id <> $3 \
             AND state IN ('ready', 'failed') RETURNING {EXPORT_COLUMNS}"
        );
        let rows: Vec<ExportRow> = on_pool!(self, pool => sqlx::query_as(&sql)
            .bind(keep.recording_id)
            .bind(keep.layout.as_str())
            .bind(keep.id)
            .fetch_all(pool)
            .await)?;
        rows.into_iter().map(RecordingExport::try_from).collect()
    }

    /// At start-up: exports a crash left `running` become `failed` with
    /// `reason` (their partial output is not trusted). Returns how many.
    pub async fn fail_running_exports(
        &self,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let done = on_pool!(self, pool => sqlx::query(
            "UPDATE recording_exports SET state = 'failed', error = $1, updated_at = $2 \
             WHERE state = 'running'")
            .bind(reason)
            .bind(now.trunc_subsecs(6))
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done)
    }
}
