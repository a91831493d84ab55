use thiserror::Error;

/// Everything that can go wrong in the store, in terms the caller can act on.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The row asked for does not exist.
    #[error("not found")]
    NotFound,
    /// A uniqueness or reference rule would be broken (duplicate e-mail or
    /// room id, deleting a user who still owns rooms, ...).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A stored value cannot be read back (unknown role string, bad JSON).
    /// Points at a migration or a hand edit gone wrong, never at user input.
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// The database URL is not one this build understands.
    #[error("unsupported database URL (expected sqlite:… or postgres://…): {0}")]
    UnsupportedUrl(String),
    /// A backup cannot be taken, or a file cannot be restored; says why.
    #[error("{0}")]
    Backup(String),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Database(sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict("already exists".into())
            }
            // SQLite reports ON DELETE RESTRICT with an extended code (1811)
            // that sqlx does not classify, hence the message check.
            sqlx::Error::Database(db)
                if db.is_foreign_key_violation()
                    || db.message().contains("FOREIGN KEY constraint failed") =>
            {
                StoreError::Conflict("still referenced by other records".into())
            }
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
                StoreError::Corrupt(err.to_string())
            }
            _ => StoreError::Database(err),
        }
    }
}
