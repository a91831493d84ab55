//! Backups of the embedded SQLite database, taken while the server runs,
//! and the checks a backup file passes before it may replace a database.
//!
//! `VACUUM INTO` writes a new, compact database file from one read
//! transaction: the copy is consistent (as of that transaction's start),
//! writers carry on meanwhile under WAL, and the file is a plain SQLite
//! database (no WAL to ship along). PostgreSQL has its own tools
//! (`pg_dump`), which a copy through this pool could not beat.

use std::collections::HashMap;
use std::path::Path;

use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

use crate::pool::{Pool, SQLITE_MIGRATIONS};
use crate::{Store, StoreError};

/// What a backup holds, read without changing it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupSummary {
    /// The newest migration applied to it.
    pub schema_version: i64,
    pub users: i64,
    pub rooms: i64,
    pub recordings: i64,
}

impl Store {
    /// Writes a consistent copy of this SQLite store to `dest`, which must
    /// not exist yet, while the store keeps serving.
    pub async fn backup_to(&self, dest: &Path) -> Result<BackupSummary, StoreError> {
        let Pool::Sqlite(pool) = &self.pool else {
            return Err(StoreError::Backup(
                "a PostgreSQL store is backed up with pg_dump (see docs/deploy.md)".into(),
            ));
        };
        if dest.exists() {
            return Err(StoreError::Backup(format!(
                "{} exists already: choose a new file",
                dest.display()
            )));
        }
        let dest_text = dest
            .to_str()
            .ok_or_else(|| StoreError::Backup("the backup file's path is not UTF-8".into()))?;
        sqlx::query("VACUUM INTO $1")
            .bind(dest_text)
            .execute(pool)
            .await?;
        inspect_backup(dest).await
    }
}

/// Checks that `file` is a whole VTP database this build can take: SQLite's
/// integrity check passes, and every migration applied to it is one this
/// build has, unchanged (a backup from a newer or different build is
/// refused rather than half understood). Opens the file read-only.
pub async fn inspect_backup(file: &Path) -> Result<BackupSummary, StoreError> {
    if !file.is_file() {
        return Err(StoreError::Backup(format!(
            "{} is not a file",
            file.display()
        )));
    }
    let options = SqliteConnectOptions::new()
        .filename(file)
        .read_only(true)
        .create_if_missing(false);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .map_err(|e| {
            StoreError::Backup(format!(
                "{} cannot be opened as SQLite: {e}",
                file.display()
            ))
        })?;
    let result = summarize(&pool, file).await;
    pool.close().await;
    result
}

async fn summarize(pool: &sqlx::SqlitePool, file: &Path) -> Result<BackupSummary, StoreError> {
    let not_vtp = |why: String| {
        StoreError::Backup(format!("{} is not a VTP database: {why}", file.display()))
    };
    let check: String = sqlx::query_scalar("PRAGMA quick_check")
        .fetch_one(pool)
        .await
        .map_err(|e| not_vtp(e.to_string()))?;
    if check != "ok" {
        return Err(StoreError::Backup(format!(
            "{} is damaged (SQLite says: {check})",
            file.display()
        )));
    }
    let applied = sqlx::query(
        "SELECT version, checksum FROM _sqlx_migrations WHERE success ORDER BY version",
    )
    .fetch_all(pool)
    .await
    .map_err(|e| not_vtp(e.to_string()))?;
    let known: HashMap<i64, &[u8]> = SQLITE_MIGRATIONS
        .iter()
        .map(|m| (m.version, m.checksum.as_ref()))
        .collect();
    let mut schema_version = 0;
    for row in &applied {
        let version: i64 = row.try_get("version")?;
        let checksum: Vec<u8> = row.try_get("checksum")?;
        match known.get(&version) {
            Some(ours) if *ours == checksum.as_slice() => {
                schema_version = schema_version.max(version)
            }
            Some(_) => {
                return Err(StoreError::Backup(format!(
                    "migration {version} of this backup differs from this build's: it comes from another build of VTP"
                )));
            }
            None => {
                return Err(StoreError::Backup(format!(
                    "migration {version} of this backup is newer than this build: restore it with that release or a newer one"
                )));
            }
        }
    }
    if applied.is_empty() {
        return Err(not_vtp("no migrations were ever applied to it".into()));
    }
    let count = |table: &'static str| async move {
        sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table}"))
            .fetch_one(pool)
            .await
            .and_then(|row| row.try_get::<i64, _>("n"))
    };
    Ok(BackupSummary {
        schema_version,
        users: count("users").await?,
        rooms: count("rooms").await?,
        recordings: count("recordings").await?,
    })
}

/// The database file a `sqlite:` URL names (`None` for other databases,
/// or an in-memory SQLite).
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    use std::str::FromStr as _;
    if !url.trim().starts_with("sqlite:") {
        return None;
    }
    let options = SqliteConnectOptions::from_str(url.trim()).ok()?;
    let file = options.get_filename();
    (file != Path::new(":memory:")).then(|| file.to_path_buf())
}
