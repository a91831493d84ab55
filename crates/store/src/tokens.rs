//! Refresh tokens: stored hashed, rotated on every use, grouped in families so
//! that the re-use of a spent token (a sign it was stolen) revokes the whole
//! line of tokens descended from that sign-in.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::pool::on_pool;
use crate::{NewRefreshToken, RefreshToken, Store, StoreError};

const TOKEN_COLUMNS: &str = "id, user_id, family_id, created_at, expires_at";

#[derive(sqlx::FromRow)]
struct TokenRow {
    id: Uuid,
    user_id: Uuid,
    family_id: Uuid,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

impl From<TokenRow> for RefreshToken {
    fn from(r: TokenRow) -> Self {
        RefreshToken {
            id: r.id,
            user_id: r.user_id,
            family_id: r.family_id,
            created_at: r.created_at,
            expires_at: r.expires_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct TokenStateRow {
    user_id: Uuid,
    family_id: Uuid,
    used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

/// What presenting a refresh token led to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefreshClaim {
    /// The token was valid: it is now spent and `new` replaces it.
    Rotated {
        previous: RefreshToken,
        new: RefreshToken,
    },
    /// The token had already been used or revoked: its whole family is now revoked.
    Reused { user_id: Uuid, family_id: Uuid },
    /// The token is past its expiry.
    Expired,
    /// No such token.
    Unknown,
}

impl Store {
    pub async fn insert_refresh_token(
        &self,
        new: &NewRefreshToken,
        now: DateTime<Utc>,
    ) -> Result<RefreshToken, StoreError> {
        let sql = format!(
            "INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {TOKEN_COLUMNS}"
        );
        let row: TokenRow = on_pool!(self, pool => sqlx::query_as(&sql)
            .bind(Uuid::new_v4())
            .bind(new.user_id)
            .bind(new.family_id)
            .bind(&new.token_hash)
            .bind(now)
            .bind(new.expires_at)
            .fetch_one(pool)
            .await)?;
        Ok(row.into())
    }

    /// Spends the token with hash `token_hash` and, in the same transaction,
    /// stores its successor (`next_hash`, same family). Presenting a spent or
    /// revoked token revokes its family instead.
    pub async fn rotate_refresh_token(
        &self,
        token_hash: &str,
        next_hash: &str,
        next_expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<RefreshClaim, StoreError> {
        let claim_sql = format!(
            "UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL \
             AND revoked_at IS NULL AND expires_at > $2 RETURNING {TOKEN_COLUMNS}"
        );
        let insert_sql = format!(
            "INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {TOKEN_COLUMNS}"
        );
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let claimed: Option<TokenRow> = sqlx::query_as(&claim_sql)
                .bind(token_hash)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
            let outcome = if let Some(previous) = claimed {
                let new: TokenRow = sqlx::query_as(&insert_sql)
                    .bind(Uuid::new_v4())
                    .bind(previous.user_id)
                    .bind(previous.family_id)
                    .bind(next_hash)
                    .bind(now)
                    .bind(next_expires_at)
                    .fetch_one(&mut *tx)
                    .await?;
                RefreshClaim::Rotated { previous: previous.into(), new: new.into() }
            } else {
                let state: Option<TokenStateRow> = sqlx::query_as(
                    "SELECT user_id, family_id, used_at, revoked_at FROM refresh_tokens WHERE token_hash = $1",
                )
                .bind(token_hash)
                .fetch_optional(&mut *tx)
                .await?;
                match state {
                    None => RefreshClaim::Unknown,
                    Some(s) if s.used_at.is_some() || s.revoked_at.is_some() => {
                        sqlx::query(
                            "UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL",
                        )
                        .bind(s.family_id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                        RefreshClaim::Reused { user_id: s.user_id, family_id: s.family_id }
                    }
                    Some(_) => RefreshClaim::Expired,
                }
            };
            tx.commit().await?;
            Ok(outcome)
        })
    }

    /// Revokes the family of the token with this hash, if it belongs to
    /// `user_id` (sign-out of one device). Returns whether anything matched.
    pub async fn revoke_refresh_family_of(
        &self,
        token_hash: &str,
        user_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = on_pool!(self, pool => sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $3 WHERE revoked_at IS NULL AND family_id IN \
             (SELECT family_id FROM refresh_tokens WHERE token_hash = $1 AND user_id = $2)")
            .bind(token_hash)
            .bind(user_id)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done > 0)
    }

    /// Revokes every refresh token of a user (sign-out everywhere, disable).
    pub async fn revoke_user_refresh_tokens(
        &self,
        user_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let done = on_pool!(self, pool => sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL")
            .bind(user_id)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done)
    }

    /// Removes tokens that expired before `cutoff`; they can no longer be
    /// presented, so keeping them only grows the table.
    pub async fn delete_expired_refresh_tokens(
        &self,
        cutoff: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let done = on_pool!(self, pool => sqlx::query("DELETE FROM refresh_tokens WHERE expires_at < $1")
            .bind(cutoff)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done)
    }
}
