//! Recordings: the durable record of what was recorded, where it stands
//! (`recording` → `finalizing` → `ready` | `failed`) and its manifest. The
//! files themselves are the server's; deleting a row does not touch them.
//!
//! Who may see a recording is decided here, in SQL, so that listing and
//! fetching one apply the same rule: admins; the room's owner; whoever was a
//! host of the recorded session; and, when the room's `recordingAccess` is
//! `participants` (the default, also when the setting is absent), anyone
//! who attended that session.

use chrono::{DateTime, SubsecRound, Utc};
use sqlx::types::Json;
use uuid::Uuid;

use crate::pool::on_pool;
use crate::{
    FinishedRecording, NewRecording, Page, Recording, RecordingFilter, RecordingState,
    RecordingViewer, Role, Store, StoreError, TimeKey,
};

// Unqualified so that RETURNING can use them too; in a SELECT over
// `recordings rec` they name rec's columns (the subqueries' are not in scope).
const RECORDING_COLUMNS: &str = "id, room_id, session_id, started_by, started_at, stopped_at, \
     state, bytes, duration_ms, manifest, error, updated_at";

/// The visibility rule, for a viewer bound as `$v` (user id, NULL: no
/// restriction) and `$a` (whether the viewer is an admin): the room's
/// owner, or someone who attended the session (as a host, or at all when
/// `recordingAccess` is `participants`) and may still see the room (its
/// member, or anyone signed in when its `access` is `signed_in`). `->>` on
/// the settings works on both backends (SQLite ≥ 3.38 reads `'key'` as
/// `'$.key'`).
fn visible(v: u8, a: u8) -> String {
    format!(
        "(${v} IS NULL OR ${a} OR EXISTS (SELECT 1 FROM rooms ro WHERE ro.id = rec.room_id AND \
         (ro.owner_id = ${v} OR (EXISTS (SELECT 1 FROM participants p \
         WHERE p.session_id = rec.session_id AND p.user_id = ${v} AND (p.room_role = 'host' \
         OR COALESCE(ro.settings ->> 'recordingAccess', 'participants') = 'participants')) \
         AND (COALESCE(ro.settings ->> 'access', 'members') = 'signed_in' \
         OR EXISTS (SELECT 1 FROM room_members m WHERE m.room_id = ro.id AND m.user_id = ${v}))))))"
    )
}

#[derive(sqlx::FromRow)]
struct RecordingRow {
    id: Uuid,
    room_id: String,
    session_id: Uuid,
    started_by: Option<Uuid>,
    started_at: DateTime<Utc>,
    stopped_at: Option<DateTime<Utc>>,
    state: String,
    bytes: i64,
    duration_ms: i64,
    manifest: Option<Json<serde_json::Value>>,
    error: Option<String>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<RecordingRow> for Recording {
    type Error = StoreError;
    fn try_from(r: RecordingRow) -> Result<Self, StoreError> {
        Ok(Recording {
            id: r.id,
            room_id: r.room_id,
            session_id: r.session_id,
            started_by: r.started_by,
            started_at: r.started_at,
            stopped_at: r.stopped_at,
            state: r.state.parse().map_err(StoreError::Corrupt)?,
            bytes: u64::try_from(r.bytes).unwrap_or(0),
            duration_ms: u64::try_from(r.duration_ms).unwrap_or(0),
            manifest: r.manifest.map(|m| m.0),
            error: r.error,
            updated_at: r.updated_at,
        })
    }
}

/// Sizes are `u64` in Rust and `BIGINT` in SQL; no file reaches 2^63 bytes.
fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn viewer_binds(viewer: Option<&RecordingViewer>) -> (Option<Uuid>, bool) {
    match viewer {
        Some(v) => (Some(v.user_id), v.role == Role::Admin),
        None => (None, true),
    }
}

impl Store {
    /// Starts a recording in state `recording`. The session must exist and be
    /// the room's; a second running recording of the same session is a
    /// [`StoreError::Conflict`].
    pub async fn create_recording(
        &self,
        new: &NewRecording,
        now: DateTime<Utc>,
    ) -> Result<Recording, StoreError> {
        // Microseconds on both backends (PostgreSQL's precision), so that
        // pagination cursors compare the same everywhere.
        let now = now.trunc_subsecs(6);
        let session = self.session_by_id(new.session_id).await?;
        if session.room_id != new.room_id {
            return Err(StoreError::Conflict(format!(
                "session {} is not a session of room {:?}",
                new.session_id, new.room_id
            )));
        }
        let sql = format!(
            "INSERT INTO recordings (id, room_id, session_id, started_by, started_at, state, \
             bytes, duration_ms, updated_at) VALUES ($1, $2, $3, $4, $5, 'recording', 0, 0, $5) \
             RETURNING {RECORDING_COLUMNS}"
        );
        let row: RecordingRow = on_pool!(self, pool => sqlx::query_as(&sql)
            .bind(Uuid::new_v4())
            .bind(&new.room_id)
            .bind(new.session_id)
            .bind(new.started_by)
            .bind(now)
            .fetch_one(pool)
            .await)
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(m) if m == "already exists" => {
                StoreError::Conflict("this session is already being recorded".into())
            }
            other => other,
        })?;
        row.try_into()
    }

    pub async fn get_recording(&self, id: Uuid) -> Result<Recording, StoreError> {
        let sql = format!("SELECT {RECORDING_COLUMNS} FROM recordings rec WHERE rec.id = $1");
        let row: Option<RecordingRow> =
            on_pool!(self, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)?;
        row.ok_or(StoreError::NotFound)?.try_into()
    }

    /// Whether `viewer` may see the recording (false also when it does not exist).
    pub async fn recording_visible_to(
        &self,
        id: Uuid,
        viewer: &RecordingViewer,
    ) -> Result<bool, StoreError> {
        let sql = format!(
            "SELECT COUNT(*) FROM recordings rec WHERE rec.id = $1 AND {}",
            visible(2, 3)
        );
        let (user, admin) = viewer_binds(Some(viewer));
        let n: i64 = on_pool!(self, pool => sqlx::query_scalar(&sql)
            .bind(id)
            .bind(user)
            .bind(admin)
            .fetch_one(pool)
            .await)?;
        Ok(n > 0)
    }

    /// Sizes and manifest while the recording runs (or finalizes). Returns
    /// false, changing nothing, once it is `ready` or `failed` (or gone).
    pub async fn update_recording_progress(
        &self,
        id: Uuid,
        bytes: u64,
        duration_ms: u64,
        manifest: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = on_pool!(self, pool => sqlx::query(
            "UPDATE recordings SET bytes = $2, duration_ms = $3, manifest = $4, updated_at = $5 \
             WHERE id = $1 AND state IN ('recording', 'finalizing')")
            .bind(id)
            .bind(to_i64(bytes))
            .bind(to_i64(duration_ms))
            .bind(Json(manifest))
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done > 0)
    }

    /// Compare-and-set of the state: moves the recording from `from` to `to`
    /// only if it is still in `from`, so that of two actors (a stop request
    /// and the recorder failing, or two start-up repairs) exactly one wins.
    /// Returns whether this call made the change. Leaving `recording` sets
    /// `stopped_at` (once); `error` is kept when given. A backward move
    /// (anything out of `ready`/`failed`, or back to `recording`) is a
    /// [`StoreError::Conflict`].
    pub async fn set_recording_state(
        &self,
        id: Uuid,
        from: RecordingState,
        to: RecordingState,
        now: DateTime<Utc>,
        error: Option<&str>,
    ) -> Result<bool, StoreError> {
        if !from.can_become(to) {
            return Err(StoreError::Conflict(format!(
                "a recording cannot go from {from} to {to}"
            )));
        }
        let now = now.trunc_subsecs(6);
        let done = on_pool!(self, pool => sqlx::query(
            "UPDATE recordings SET state = $3, updated_at = $4, error = COALESCE($5, error), \
             stopped_at = COALESCE(stopped_at, $4) WHERE id = $1 AND state = $2")
            .bind(id)
            .bind(from.as_str())
            .bind(to.as_str())
            .bind(now)
            .bind(error)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done > 0)
    }

    /// The last word on a recording: final state (`ready` or `failed`),
    /// sizes, manifest, error. Only a recording still `recording` or
    /// `finalizing` is finished; returns false (changing nothing) if it was
    /// already final, so that it is finished once.
    pub async fn finish_recording(
        &self,
        id: Uuid,
        outcome: &FinishedRecording,
    ) -> Result<bool, StoreError> {
        if !outcome.state.is_final() {
            return Err(StoreError::Conflict(format!(
                "a recording finishes ready or failed, not {}",
                outcome.state
            )));
        }
        let stopped_at = outcome.stopped_at.trunc_subsecs(6);
        let done = on_pool!(self, pool => sqlx::query(
            "UPDATE recordings SET state = $2, stopped_at = COALESCE(stopped_at, $3), bytes = $4, \
             duration_ms = $5, manifest = COALESCE($6, manifest), error = $7, updated_at = $3 \
             WHERE id = $1 AND state IN ('recording', 'finalizing')")
            .bind(id)
            .bind(outcome.state.as_str())
            .bind(stopped_at)
            .bind(to_i64(outcome.bytes))
            .bind(to_i64(outcome.duration_ms))
            .bind(outcome.manifest.as_ref().map(Json))
            .bind(outcome.error.as_deref())
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done > 0)
    }

    /// Every recording in `state`, oldest first: at start-up, those left
    /// `recording` or `finalizing` by a crash, to repair.
    pub async fn recordings_in_state(
        &self,
        state: RecordingState,
    ) -> Result<Vec<Recording>, StoreError> {
        let sql = format!(
            "SELECT {RECORDING_COLUMNS} FROM recordings rec WHERE rec.state = $1 \
             ORDER BY rec.started_at, rec.id"
        );
        let rows: Vec<RecordingRow> = on_pool!(self, pool => sqlx::query_as(&sql)
            .bind(state.as_str())
            .fetch_all(pool)
            .await)?;
        rows.into_iter().map(Recording::try_from).collect()
    }

    /// How many recordings are in each state and their bytes, for
    /// operators' metrics (states with none are absent).
    pub async fn count_recordings_by_state(
        &self,
    ) -> Result<Vec<(RecordingState, u64, u64)>, StoreError> {
        let rows: Vec<(String, i64, i64)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT state, COUNT(*), CAST(COALESCE(SUM(bytes), 0) AS BIGINT) \
             FROM recordings GROUP BY state")
            .fetch_all(pool)
            .await)?;
        Ok(rows
            .into_iter()
            .filter_map(|(state, n, bytes)| {
                let state = RecordingState::parse(&state).ok()?;
                Some((
                    state,
                    u64::try_from(n).ok()?,
                    u64::try_from(bytes).unwrap_or(0),
                ))
            })
            .collect())
    }

    /// Recordings, newest first (by `started_at`, then id, both
    /// descending), only those the viewer may see, a page at a time.
    pub async fn list_recordings(
        &self,
        filter: &RecordingFilter,
    ) -> Result<Page<Recording, TimeKey>, StoreError> {
        let (after_at, after_id) = filter.paging.after().copied().unzip();
        let (user, admin) = viewer_binds(filter.visible_to.as_ref());
        let sql = format!(
            "SELECT {RECORDING_COLUMNS} FROM recordings rec WHERE ($1 IS NULL OR rec.room_id = $1) \
             AND ($2 IS NULL OR rec.started_at < $2 OR (rec.started_at = $2 AND rec.id < $3)) \
             AND {} ORDER BY rec.started_at DESC, rec.id DESC LIMIT $6 OFFSET $7",
            visible(4, 5)
        );
        let rows: Vec<RecordingRow> = on_pool!(self, pool => sqlx::query_as(&sql)
            .bind(filter.room_id.as_deref())
            .bind(after_at)
            .bind(after_id)
            .bind(user)
            .bind(admin)
            .bind(filter.paging.fetch())
            .bind(filter.paging.offset())
            .fetch_all(pool)
            .await)?;
        let recordings = rows
            .into_iter()
            .map(Recording::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::cut(recordings, &filter.paging, |r: &Recording| {
            (r.started_at, r.id)
        }))
    }

    /// Deletes the row (the caller removes the files).
    pub async fn delete_recording(&self, id: Uuid) -> Result<(), StoreError> {
        let done = on_pool!(self, pool => sqlx::query("DELETE FROM recordings WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}
