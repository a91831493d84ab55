//! `vtp backup` and `vtp restore` for the embedded database, and the lock
//! that keeps a restore from pulling the database out from under a running
//! server.
//!
//! What a whole backup of a node is (docs/deploy.md): the database (this
//! command, or `pg_dump`), plus the data directory's `jwt-secret` (without
//! it every session ends at restore), `acme/` (certificates) and
//! `recordings/` and `exports/` (large, append-only: copy them with the
//! usual file tools; a recording's files are complete once it is `ready`).

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use chrono::Utc;
use vtp_store::{BackupSummary, Store, StoreOptions, inspect_backup, sqlite_file};

use crate::config::{BackupArgs, RestoreArgs, StoreArgs};

/// Held by `vtp serve` for its whole life: an exclusive lock on
/// `<data-dir>/vtp.lock`, released by the OS when the process ends (even
/// killed), so a stale lock file never blocks anything.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    pub fn acquire(data_dir: &Path) -> anyhow::Result<DataDirLock> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
        let path = data_dir.join("vtp.lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(DataDirLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => bail!(
                "another vtp is running on the data directory {} (stop it first)",
                data_dir.display()
            ),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(e).with_context(|| format!("cannot lock {}", path.display()))
            }
        }
    }
}

fn describe(summary: &BackupSummary) -> String {
    format!(
        "schema version {}, {} users, {} rooms, {} recordings",
        summary.schema_version, summary.users, summary.rooms, summary.recordings
    )
}

fn embedded_database(store: &StoreArgs) -> anyhow::Result<PathBuf> {
    match sqlite_file(&store.database_url()) {
        Some(file) => Ok(file),
        None => bail!(
            "this is not the embedded SQLite database: back up PostgreSQL with pg_dump and restore it with pg_restore (docs/deploy.md)"
        ),
    }
}

/// `vtp backup FILE`: a consistent copy of the database while VTP serves.
pub async fn backup(args: &BackupArgs) -> anyhow::Result<()> {
    let database = embedded_database(&args.store)?;
    if !database.is_file() {
        bail!("there is no database at {}", database.display());
    }
    let mut options = StoreOptions::new(args.store.database_url());
    options.max_connections = 1;
    // A backup copies what is there; it never migrates.
    options.migrate = false;
    let store = Store::open(options)
        .await
        .context("cannot open the store")?;
    // Written beside its final name and renamed when whole, so a backup
    // file that exists is a complete one.
    let partial = partial_name(&args.file);
    let _ = std::fs::remove_file(&partial);
    let result = store.backup_to(&partial).await;
    store.close().await;
    let summary = result.context("the backup failed")?;
    if args.file.exists() {
        let _ = std::fs::remove_file(&partial);
        bail!("{} exists already: choose a new file", args.file.display());
    }
    sync_file(&partial)?;
    std::fs::rename(&partial, &args.file)
        .with_context(|| format!("cannot write {}", args.file.display()))?;
    println!("wrote {} ({})", args.file.display(), describe(&summary));
    println!(
        "also keep {}, {} (apart from the backup), acme/, recordings/ and exports/ of the data directory (docs/deploy.md)",
        crate::auth::tokens::JWT_SECRET_FILE,
        crate::auth::sealing::SECRETS_KEY_FILE
    );
    Ok(())
}

/// `vtp restore FILE`: replaces the database with a backup (the current one
/// is kept beside it), then migrates it forward.
pub async fn restore(args: &RestoreArgs) -> anyhow::Result<()> {
    let database = embedded_database(&args.store)?;
    let _lock = DataDirLock::acquire(&args.store.data_dir)?;
    let summary = inspect_backup(&args.file)
        .await
        .with_context(|| format!("{} cannot be restored", args.file.display()))?;
    println!("{}: {}", args.file.display(), describe(&summary));

    let stamp = Utc::now().format("%Y%m%dT%H%M%SZ");
    if database.exists() {
        // The database with its WAL and shared-memory files moves aside as
        // one set: a WAL left behind would be replayed into the restored file.
        for suffix in ["", "-wal", "-shm"] {
            let from = with_suffix(&database, suffix);
            if from.exists() {
                let to = with_suffix(&database, &format!(".before-restore-{stamp}{suffix}"));
                std::fs::rename(&from, &to)
                    .with_context(|| format!("cannot move {} aside", from.display()))?;
                if suffix.is_empty() {
                    println!("the database it replaces is kept as {}", to.display());
                }
            }
        }
    }
    let partial = partial_name(&database);
    std::fs::copy(&args.file, &partial)
        .with_context(|| format!("cannot copy {} into place", args.file.display()))?;
    sync_file(&partial)?;
    std::fs::rename(&partial, &database)
        .with_context(|| format!("cannot write {}", database.display()))?;

    let mut options = StoreOptions::new(args.store.database_url());
    options.max_connections = 1;
    let store = Store::open(options)
        .await
        .context("the restored database does not open")?;
    println!(
        "restored into {} (schema now at version {})",
        store.description(),
        store.schema_version()
    );
    store.close().await;
    Ok(())
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn partial_name(path: &Path) -> PathBuf {
    with_suffix(path, ".part")
}

fn sync_file(path: &Path) -> anyhow::Result<()> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot sync {}", path.display()))
}
