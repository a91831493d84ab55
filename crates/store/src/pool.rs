//! Connection pools for the two backends and the plumbing that lets one query
//! text serve both.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::StoreError;

pub(crate) static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// Which database a [`Store`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// How to open a [`Store`].
#[derive(Clone)]
pub struct StoreOptions {
    /// `sqlite://path/to/file.db` or `postgres://user:pass@host/db`.
    pub url: String,
    /// Upper bound on pooled connections (SQLite serialises writers anyway;
    /// extra connections only help concurrent readers).
    pub max_connections: u32,
    /// Apply pending migrations when opening.
    pub migrate: bool,
}

impl std::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreOptions")
            .field("url", &redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("migrate", &self.migrate)
            .finish()
    }
}

impl StoreOptions {
    pub fn new(url: impl Into<String>) -> Self {
        StoreOptions {
            url: url.into(),
            max_connections: 8,
            migrate: true,
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same block against whichever pool the store holds. Each arm is
/// compiled separately, so `sqlx::query(...)` and row decoding are checked for
/// both databases; the SQL text itself must be valid in both dialects (`$1`
/// placeholders work in SQLite too).
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {{
        let started = std::time::Instant::now();
        let result = match &$store.pool {
            $crate::pool::Pool::Sqlite($pool) => $body,
            $crate::pool::Pool::Postgres($pool) => $body,
        };
        $store.timings.observe(started.elapsed());
        result
    }};
}
pub(crate) use on_pool;

/// The durable state of VTP. Cheap to clone (it is a pool handle).
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) pool: Pool,
    description: String,
    /// Every query's duration (see `timings`).
    pub(crate) timings: std::sync::Arc<crate::timings::QueryTimings>,
}

impl Store {
    /// How long queries took so far (a histogram).
    pub fn query_timings(&self) -> crate::timings::QueryTimingsSnapshot {
        self.timings.snapshot()
    }

    /// Opens (and by default migrates) the database named by `options.url`.
    /// A SQLite file is created when missing; its directory must exist.
    pub async fn open(options: StoreOptions) -> Result<Store, StoreError> {
        let url = options.url.trim();
        let store = if url.starts_with("sqlite:") {
            let connect = SqliteConnectOptions::from_str(url)
                .map_err(|_| StoreError::UnsupportedUrl(redact_url(url)))?
                .create_if_missing(true)
                // WAL lets readers run while one writer commits; NORMAL
                // synchronous is durable across process crashes in WAL mode.
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true);
            let description = format!("sqlite {} (WAL)", connect.get_filename().display());
            let pool = SqlitePoolOptions::new()
                .max_connections(options.max_connections.max(1))
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(connect)
                .await?;
            Store {
                pool: Pool::Sqlite(pool),
                description,
                timings: Default::default(),
            }
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let connect = PgConnectOptions::from_str(url)
                .map_err(|_| StoreError::UnsupportedUrl(redact_url(url)))?;
            let description = format!(
                "postgresql {}@{}:{}/{}",
                connect.get_username(),
                connect.get_host(),
                connect.get_port(),
                connect.get_database().unwrap_or("(default)")
            );
            let pool = PgPoolOptions::new()
                .max_connections(options.max_connections.max(1))
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(connect)
                .await?;
            Store {
                pool: Pool::Postgres(pool),
                description,
                timings: Default::default(),
            }
        } else {
            return Err(StoreError::UnsupportedUrl(redact_url(url)));
        };
        if options.migrate {
            store.migrate().await?;
        }
        Ok(store)
    }

    /// Applies pending migrations; returns the schema version now in force.
    pub async fn migrate(&self) -> Result<i64, StoreError> {
        match &self.pool {
            Pool::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await?,
            Pool::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
        }
        Ok(self.schema_version())
    }

    /// The newest migration this build knows (after `migrate`, the one in force).
    pub fn schema_version(&self) -> i64 {
        let migrator = match &self.pool {
            Pool::Sqlite(_) => &SQLITE_MIGRATIONS,
            Pool::Postgres(_) => &POSTGRES_MIGRATIONS,
        };
        migrator.iter().map(|m| m.version).max().unwrap_or(0)
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Where the data lives, for start-up logs; never contains a password.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Round trip to the database, for readiness probes.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self, pool => { sqlx::query("SELECT 1").execute(pool).await?; });
        Ok(())
    }

    /// Waits for checked-out connections to come back and closes the pool.
    /// For SQLite this also checkpoints the WAL into the main file.
    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await)
    }
}

/// The URL without its password, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{}:***{}", &url[..scheme_end + 3], user, &url[at..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://h/db"), "postgres://h/db");
        assert_eq!(
            redact_url("sqlite://./data/vtp.db"),
            "sqlite://./data/vtp.db"
        );
    }
}
