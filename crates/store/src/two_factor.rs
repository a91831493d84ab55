//! Two-factor sign-in: each account's TOTP secret (pending until a first
//! code confirms it), the last time step a code was accepted for, and
//! single-use recovery codes, stored hashed. The store keeps what it is
//! given (the server seals secrets before they come here); codes are
//! checked by the caller.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::pool::on_pool;
use crate::users::{USER_COLUMNS, UserRow};
use crate::{Store, StoreError, User};

/// An account's TOTP secret and whether it is in use.
pub struct TotpRecord {
    /// As the caller stored it (sealed by the server); never logged.
    pub secret: String,
    /// The last time step a code was accepted for.
    pub last_step: Option<i64>,
    /// Confirmed: the account signs in with it.
    pub enabled: bool,
}

impl std::fmt::Debug for TotpRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpRecord")
            .field("secret", &"***")
            .field("last_step", &self.last_step)
            .field("enabled", &self.enabled)
            .finish()
    }
}

#[derive(sqlx::FromRow)]
struct TotpRow {
    secret: String,
    last_step: Option<i64>,
    two_factor: bool,
}

impl Store {
    /// Starts (or restarts) an enrolment with a new secret. Refused with
    /// [`StoreError::Conflict`] while two-factor sign-in is on.
    pub async fn begin_totp(
        &self,
        user_id: Uuid,
        secret: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let done = on_pool!(self, pool => sqlx::query(
            "INSERT INTO user_totp (user_id, secret, last_step, created_at) \
             SELECT $1, $2, NULL, $3 FROM users WHERE id = $1 AND two_factor = FALSE \
             ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, last_step = NULL, \
             created_at = excluded.created_at")
            .bind(user_id)
            .bind(secret)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        if done == 0 {
            self.user_by_id(user_id).await?;
            return Err(StoreError::Conflict(
                "two-factor sign-in is already on: turn it off first".into(),
            ));
        }
        Ok(())
    }

    /// The account's TOTP secret, if it has one (pending or in use).
    pub async fn totp_of(&self, user_id: Uuid) -> Result<Option<TotpRecord>, StoreError> {
        let row: Option<TotpRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT t.secret, t.last_step, u.two_factor FROM user_totp t \
             JOIN users u ON u.id = t.user_id WHERE t.user_id = $1")
            .bind(user_id)
            .fetch_optional(pool)
            .await)?;
        Ok(row.map(|r| TotpRecord {
            secret: r.secret,
            last_step: r.last_step,
            enabled: r.two_factor,
        }))
    }

    /// Every stored TOTP secret not starting with `prefix`, with its
    /// account: what an upgrade must still seal.
    pub async fn totp_secrets_without_prefix(
        &self,
        prefix: &str,
    ) -> Result<Vec<(Uuid, String)>, StoreError> {
        // `substr` rather than LIKE: a prefix holding `%` or `_` stays literal.
        let rows: Vec<(Uuid, String)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT user_id, secret FROM user_totp WHERE substr(secret, 1, length($1)) <> $1")
            .bind(prefix)
            .fetch_all(pool)
            .await)?;
        Ok(rows)
    }

    /// Replaces the account's stored secret `old` by `new` (the same
    /// secret in another form); `false` when it is no longer `old`.
    pub async fn replace_totp_secret(
        &self,
        user_id: Uuid,
        old: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        let done = on_pool!(self, pool => sqlx::query(
            "UPDATE user_totp SET secret = $3 WHERE user_id = $1 AND secret = $2")
            .bind(user_id)
            .bind(old)
            .bind(new)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Records that a code of time step `step` was accepted, unless one of
    /// that step or a later one already was: `false` means a replay (or a
    /// code racing another of the same step) and must be refused.
    pub async fn claim_totp_step(&self, user_id: Uuid, step: i64) -> Result<bool, StoreError> {
        let done = on_pool!(self, pool => sqlx::query(
            "UPDATE user_totp SET last_step = $2 WHERE user_id = $1 \
             AND (last_step IS NULL OR last_step < $2)")
            .bind(user_id)
            .bind(step)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Turns two-factor sign-in on with the pending secret and replaces
    /// the recovery codes with `code_hashes`, in one transaction. Every
    /// session of the account ends (token epoch bumped, refresh tokens
    /// revoked): one opened with the password alone must not outlive it.
    pub async fn enable_totp(
        &self,
        user_id: Uuid,
        code_hashes: &[String],
        now: DateTime<Utc>,
    ) -> Result<User, StoreError> {
        let sql = format!(
            "UPDATE users SET two_factor = TRUE, token_epoch = token_epoch + 1, updated_at = $2 \
             WHERE id = $1 AND EXISTS (SELECT 1 FROM user_totp t WHERE t.user_id = $1) RETURNING {USER_COLUMNS}"
        );
        let row: Option<UserRow> = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let row = sqlx::query_as(&sql)
                .bind(user_id)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
            if row.is_some() {
                sqlx::query("UPDATE refresh_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL")
                    .bind(user_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
                for hash in code_hashes {
                    sqlx::query("INSERT INTO recovery_codes (id, user_id, code_hash) VALUES ($1, $2, $3)")
                        .bind(Uuid::new_v4())
                        .bind(user_id)
                        .bind(hash)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            tx.commit().await?;
            row
        });
        row.ok_or(StoreError::NotFound)?.try_into()
    }

    /// Spends a recovery code: `true` if it was the account's and unused.
    pub async fn use_recovery_code(
        &self,
        user_id: Uuid,
        code_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = on_pool!(self, pool => sqlx::query(
            "UPDATE recovery_codes SET used_at = $3 WHERE user_id = $1 AND code_hash = $2 \
             AND used_at IS NULL")
            .bind(user_id)
            .bind(code_hash)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done > 0)
    }

    /// Recovery codes the account has not used.
    pub async fn recovery_codes_left(&self, user_id: Uuid) -> Result<u64, StoreError> {
        let n: i64 = on_pool!(self, pool => sqlx::query_scalar(
            "SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL")
            .bind(user_id)
            .fetch_one(pool)
            .await)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Turns two-factor sign-in off: the secret and the recovery codes go.
    pub async fn disable_totp(
        &self,
        user_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<User, StoreError> {
        let sql = format!(
            "UPDATE users SET two_factor = FALSE, updated_at = $2 WHERE id = $1 RETURNING {USER_COLUMNS}"
        );
        let row: Option<UserRow> = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM user_totp WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            let row = sqlx::query_as(&sql)
                .bind(user_id)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
            tx.commit().await?;
            row
        });
        row.ok_or(StoreError::NotFound)?.try_into()
    }
}
