//! Throw-away databases for tests (feature `testing`).
//!
//! The backend is chosen by the environment so that one test suite covers
//! both: with `VTP_TEST_POSTGRES_URL` set (an admin URL such as
//! `postgres://postgres@127.0.0.1:5432/postgres`) every [`TestDatabase`] is a
//! fresh PostgreSQL database, dropped when the value is dropped (also when the
//! test panics); otherwise it is a SQLite file in a fresh temporary directory.

use std::path::{Path, PathBuf};

use sqlx::Connection;
use uuid::Uuid;

use crate::{Store, StoreError, StoreOptions};

/// Environment variable that switches test databases to PostgreSQL.
pub const POSTGRES_ENV: &str = "VTP_TEST_POSTGRES_URL";

/// A temporary directory removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> std::io::Result<TempDir> {
        let path = std::env::temp_dir().join(format!("{prefix}-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path)?;
        Ok(TempDir(path))
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[derive(Debug)]
enum Owned {
    // Held only so that the directory is removed when the database is dropped.
    Sqlite(#[allow(dead_code)] TempDir),
    Postgres { admin_url: String, name: String },
}

/// A database that exists for the lifetime of this value.
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
    owned: Owned,
}

impl TestDatabase {
    pub async fn new() -> Result<TestDatabase, StoreError> {
        match std::env::var(POSTGRES_ENV) {
            Ok(admin_url) if !admin_url.trim().is_empty() => {
                let name = format!("vtp_t_{}", Uuid::new_v4().simple());
                let mut admin = sqlx::PgConnection::connect(&admin_url).await?;
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut admin)
                    .await?;
                admin.close().await?;
                let url = replace_database(&admin_url, &name);
                Ok(TestDatabase {
                    url,
                    owned: Owned::Postgres { admin_url, name },
                })
            }
            _ => {
                let dir = TempDir::new("vtp-test-db")
                    .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
                let url = format!("sqlite://{}", dir.path().join("vtp.db").display());
                Ok(TestDatabase {
                    url,
                    owned: Owned::Sqlite(dir),
                })
            }
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Opens a migrated store on this database.
    pub async fn open(&self) -> Result<Store, StoreError> {
        Store::open(StoreOptions::new(self.url.clone())).await
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Owned::Postgres { admin_url, name } = &self.owned {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Drop may run inside a runtime; do the async work on a thread of its own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(rt) = rt {
                    rt.block_on(async {
                        if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url).await {
                            let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                            let _ = sqlx::query(&sql).execute(&mut admin).await;
                            let _ = admin.close().await;
                        }
                    });
                }
            })
            .join();
        }
    }
}

/// `postgres://u@h:5432/old?x` → `postgres://u@h:5432/new?x`.
fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_database_name() {
        assert_eq!(
            super::replace_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            super::replace_database("postgres://h", "x"),
            "postgres://h/x"
        );
        assert_eq!(
            super::replace_database("postgres://h/db?sslmode=disable", "x"),
            "postgres://h/x?sslmode=disable"
        );
    }
}
