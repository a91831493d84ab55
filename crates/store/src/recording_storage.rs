//! Where a recording's files live (migration 0004): on the recording
//! node's disk (`local`) or in the S3-compatible bucket (`remote`, under a
//! key prefix). The uploader's work list is the `ready` recordings still
//! `local`; a recording becomes `remote` only once every object is
//! confirmed uploaded, so a crash or an unreachable bucket leaves it
//! `local` (and downloadable from disk) until an upload succeeds.
//!
//! Kept apart from `recordings` (the recording's life) because storage is a
//! concern of its own: the queries here never change a recording's state.

use chrono::{DateTime, SubsecRound, Utc};
use uuid::Uuid;

use crate::pool::on_pool;
use crate::{Store, StoreError};

/// Where a recording's files are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageLocation {
    /// `<data-dir>/recordings/<id>/` on the node that recorded it.
    Local,
    /// Objects named `<prefix><file name>` in the configured bucket.
    Remote { prefix: String },
}

/// A recording's storage, as the uploader and downloads need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingStorage {
    pub id: Uuid,
    pub location: StorageLocation,
    /// When the upload was confirmed (`Remote` only).
    pub uploaded_at: Option<DateTime<Utc>>,
    /// Failed uploads so far.
    pub upload_attempts: u64,
    /// Why the last upload failed, for operators.
    pub upload_error: Option<String>,
}

#[derive(sqlx::FromRow)]
struct StorageRow {
    id: Uuid,
    storage: String,
    remote_prefix: Option<String>,
    uploaded_at: Option<DateTime<Utc>>,
    upload_attempts: i64,
    upload_error: Option<String>,
}

impl TryFrom<StorageRow> for RecordingStorage {
    type Error = StoreError;
    fn try_from(r: StorageRow) -> Result<Self, StoreError> {
        let location = match (r.storage.as_str(), r.remote_prefix) {
            ("local", _) => StorageLocation::Local,
            ("remote", Some(prefix)) => StorageLocation::Remote { prefix },
            (other, _) => {
                return Err(StoreError::Corrupt(format!(
                    "recording {}: storage {other:?} without a usable prefix",
                    r.id
                )));
            }
        };
        Ok(RecordingStorage {
            id: r.id,
            location,
            uploaded_at: r.uploaded_at,
            upload_attempts: u64::try_from(r.upload_attempts).unwrap_or(0),
            upload_error: r.upload_error,
        })
    }
}

const STORAGE_COLUMNS: &str =
    "id, storage, remote_prefix, uploaded_at, upload_attempts, upload_error";

impl Store {
    /// Where the recording's files are ([`StoreError::NotFound`] when it
    /// does not exist).
    pub async fn recording_storage(&self, id: Uuid) -> Result<RecordingStorage, StoreError> {
        let sql = format!("SELECT {STORAGE_COLUMNS} FROM recordings WHERE id = $1");
        let row: Option<StorageRow> =
            on_pool!(self, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)?;
        row.ok_or(StoreError::NotFound)?.try_into()
    }

    /// `ready` recordings whose files are still on local disk, at most
    /// `limit`: fewest failed uploads first, then longest waiting, so that
    /// recordings that keep failing cannot hold back the others.
    pub async fn recordings_awaiting_upload(&self, limit: u32) -> Result<Vec<Uuid>, StoreError> {
        let ids: Vec<Uuid> = on_pool!(self, pool => sqlx::query_scalar(
            "SELECT id FROM recordings WHERE state = 'ready' AND storage = 'local' \
             ORDER BY upload_attempts, updated_at, id LIMIT $1")
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await)?;
        Ok(ids)
    }

    /// Records that every file of a `ready`, `local` recording is in the
    /// bucket under `prefix`. Returns false, changing nothing, when the
    /// recording is gone (deleted meanwhile), not `ready`, or already
    /// `remote`: the caller must then not remove the local copy on its
    /// account.
    pub async fn mark_recording_uploaded(
        &self,
        id: Uuid,
        prefix: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let now = now.trunc_subsecs(6);
        let done = on_pool!(self, pool => sqlx::query(
            "UPDATE recordings SET storage = 'remote', remote_prefix = $2, uploaded_at = $3, \
             upload_error = NULL WHERE id = $1 AND state = 'ready' AND storage = 'local'")
            .bind(id)
            .bind(prefix)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done > 0)
    }

    /// Counts a failed upload and keeps its reason (the recording stays
    /// `local`).
    pub async fn note_upload_failure(&self, id: Uuid, error: &str) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query(
            "UPDATE recordings SET upload_attempts = upload_attempts + 1, upload_error = $2 \
             WHERE id = $1")
            .bind(id)
            .bind(error)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }
}
