//! Users and their credentials.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::model::like_pattern;
use crate::pool::on_pool;
use crate::{
    Backend, Credentials, NewUser, Page, Role, Store, StoreError, TimeKey, User, UserPatch,
    UserQuery,
};

pub(crate) const USER_COLUMNS: &str = "id, email, display_name, role, disabled, token_epoch, two_factor, password_must_change, \
     created_at, updated_at";

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    id: Uuid,
    email: String,
    display_name: String,
    role: String,
    disabled: bool,
    token_epoch: i64,
    two_factor: bool,
    password_must_change: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;
    fn try_from(row: UserRow) -> Result<User, StoreError> {
        Ok(User {
            id: row.id,
            email: row.email,
            display_name: row.display_name,
            role: row.role.parse().map_err(StoreError::Corrupt)?,
            disabled: row.disabled,
            token_epoch: row.token_epoch,
            two_factor: row.two_factor,
            password_must_change: row.password_must_change,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct CredentialsRow {
    #[sqlx(flatten)]
    user: UserRow,
    password_hash: String,
}

/// Another active admin than the user `$1`.
const ANOTHER_ADMIN: &str =
    "EXISTS (SELECT 1 FROM users o WHERE o.role = 'admin' AND o.disabled = FALSE AND o.id <> $1)";

/// Serialises changes that may remove an admin (PostgreSQL; released at
/// the end of the transaction). The key is arbitrary but fixed.
const ADMIN_LOCK: &str = "SELECT pg_advisory_xact_lock(7405001)";

const LAST_ADMIN: &str = "this is the last active admin: make another admin first";

/// A user row still referenced by rooms.
fn owns_rooms(e: sqlx::Error) -> StoreError {
    match StoreError::from(e) {
        StoreError::Conflict(_) => {
            StoreError::Conflict("the user still owns rooms: delete or transfer them first".into())
        }
        other => other,
    }
}

const USER_FILTER: &str = "($1 IS NULL OR role = $1) AND ($2 IS NULL \
     OR LOWER(email) LIKE $2 ESCAPE '\\' OR LOWER(display_name) LIKE $2 ESCAPE '\\')";

/// A [`UserPatch`] applied: $2 name, $3 role, $4 disabled (each kept when
/// NULL), $5 the time; the caller adds the `WHERE` ($1 the id).
const PATCH_USER: &str = "UPDATE users SET display_name = COALESCE($2, display_name), \
     role = COALESCE($3, role), disabled = COALESCE($4, disabled), updated_at = $5";

impl Store {
    /// Creates a user. The e-mail must already be normalised by the caller;
    /// a duplicate gives [`StoreError::Conflict`].
    pub async fn create_user(&self, new: NewUser, now: DateTime<Utc>) -> Result<User, StoreError> {
        self.create_user_with(new, false, now).await
    }

    /// [`Store::create_user`]; with `must_change` the password is a
    /// temporary one the user must replace at first sign-in.
    pub async fn create_user_with(
        &self,
        new: NewUser,
        must_change: bool,
        now: DateTime<Utc>,
    ) -> Result<User, StoreError> {
        let sql = format!(
            "INSERT INTO users (id, email, display_name, password_hash, role, disabled, token_epoch, \
             password_must_change, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, FALSE, 0, $7, $6, $6) RETURNING {USER_COLUMNS}"
        );
        let row: UserRow = on_pool!(self, pool => sqlx::query_as(&sql)
            .bind(Uuid::new_v4())
            .bind(&new.email)
            .bind(&new.display_name)
            .bind(&new.password_hash)
            .bind(new.role.as_str())
            .bind(now)
            .bind(must_change)
            .fetch_one(pool)
            .await)
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => StoreError::Conflict("e-mail already registered".into()),
            other => other,
        })?;
        let user: User = row.try_into()?;
        // Rooms that added this address before it had an account: the new
        // account is their member now, however it was created.
        self.claim_pending_members(&user.email, user.id, now)
            .await?;
        Ok(user)
    }

    pub async fn user_by_id(&self, id: Uuid) -> Result<User, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        let row: Option<UserRow> =
            on_pool!(self, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)?;
        row.ok_or(StoreError::NotFound)?.try_into()
    }

    /// The user with this (normalised) e-mail and their password hash.
    pub async fn credentials_by_email(&self, email: &str) -> Result<Credentials, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS}, password_hash FROM users WHERE email = $1");
        let row: Option<CredentialsRow> =
            on_pool!(self, pool => sqlx::query_as(&sql).bind(email).fetch_optional(pool).await)?;
        let row = row.ok_or(StoreError::NotFound)?;
        Ok(Credentials {
            user: row.user.try_into()?,
            password_hash: row.password_hash,
        })
    }

    pub async fn credentials_by_id(&self, id: Uuid) -> Result<Credentials, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS}, password_hash FROM users WHERE id = $1");
        let row: Option<CredentialsRow> =
            on_pool!(self, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)?;
        let row = row.ok_or(StoreError::NotFound)?;
        Ok(Credentials {
            user: row.user.try_into()?,
            password_hash: row.password_hash,
        })
    }

    /// Users, oldest first (by `created_at`, then id), filtered, a page at
    /// a time, with the number of matches.
    pub async fn list_users(&self, query: &UserQuery) -> Result<Page<User, TimeKey>, StoreError> {
        let role = query.role.map(Role::as_str);
        let search = query.search.as_deref().map(like_pattern);
        let (after_at, after_id) = query.paging.after().copied().unzip();
        let list_sql = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE {USER_FILTER} \
             AND ($3 IS NULL OR created_at > $3 OR (created_at = $3 AND id > $4)) \
             ORDER BY created_at, id LIMIT $5 OFFSET $6"
        );
        let count_sql = format!("SELECT COUNT(*) FROM users WHERE {USER_FILTER}");
        let (rows, total): (Vec<UserRow>, i64) = on_pool!(self, pool => {
            let rows = sqlx::query_as(&list_sql)
                .bind(role)
                .bind(search.as_deref())
                .bind(after_at)
                .bind(after_id)
                .bind(query.paging.fetch())
                .bind(query.paging.offset())
                .fetch_all(pool)
                .await?;
            let total = sqlx::query_scalar(&count_sql)
                .bind(role)
                .bind(search.as_deref())
                .fetch_one(pool)
                .await?;
            (rows, total)
        });
        let users = rows
            .into_iter()
            .map(User::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::cut(users, &query.paging, |u| (u.created_at, u.id)).with_total(total))
    }

    pub async fn update_user(
        &self,
        id: Uuid,
        patch: &UserPatch,
        now: DateTime<Utc>,
    ) -> Result<User, StoreError> {
        let sql = format!("{PATCH_USER} WHERE id = $1 RETURNING {USER_COLUMNS}");
        let row: Option<UserRow> = on_pool!(self, pool => sqlx::query_as(&sql)
            .bind(id)
            .bind(patch.display_name.as_deref())
            .bind(patch.role.map(Role::as_str))
            .bind(patch.disabled)
            .bind(now)
            .fetch_optional(pool)
            .await)?;
        row.ok_or(StoreError::NotFound)?.try_into()
    }

    /// [`Store::update_user`], refused with [`StoreError::Conflict`] when it
    /// would leave no active admin (demoting or disabling the last one).
    /// The check and the change are one statement, and on PostgreSQL they
    /// run under a transaction-scoped advisory lock: two admins demoting
    /// each other at once are serialised, and the second sees the first's
    /// change (each statement of READ COMMITTED reads what was committed
    /// before it began). SQLite takes its write lock before the statement
    /// reads, which serialises the same way.
    pub async fn update_user_keeping_an_admin(
        &self,
        id: Uuid,
        patch: &UserPatch,
        now: DateTime<Utc>,
    ) -> Result<User, StoreError> {
        let sql = format!(
            "{PATCH_USER} WHERE id = $1 AND ( \
             NOT (role = 'admin' AND disabled = FALSE) \
             OR (COALESCE($3, role) = 'admin' AND COALESCE($4, disabled) = FALSE) \
             OR {ANOTHER_ADMIN}) RETURNING {USER_COLUMNS}"
        );
        let postgres = self.backend() == Backend::Postgres;
        let row: Option<UserRow> = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            if postgres {
                sqlx::query(ADMIN_LOCK).execute(&mut *tx).await?;
            }
            let row = sqlx::query_as(&sql)
                .bind(id)
                .bind(patch.display_name.as_deref())
                .bind(patch.role.map(Role::as_str))
                .bind(patch.disabled)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
            tx.commit().await?;
            row
        });
        match row {
            Some(row) => row.try_into(),
            None => Err(self.missing_or_last_admin(id).await),
        }
    }

    /// Why a guarded change touched no row: the user is gone, or is the
    /// last active admin.
    async fn missing_or_last_admin(&self, id: Uuid) -> StoreError {
        match self.user_by_id(id).await {
            Ok(_) => StoreError::Conflict(LAST_ADMIN.into()),
            Err(e) => e,
        }
    }

    /// Replaces the password hash, invalidates every access token (epoch bump)
    /// and revokes every refresh token of the user, in one transaction.
    pub async fn change_password(
        &self,
        id: Uuid,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<User, StoreError> {
        self.replace_password(id, password_hash, false, now).await
    }

    /// [`Store::change_password`] to a temporary password set by an admin:
    /// the user must change it at their next sign-in.
    pub async fn set_temporary_password(
        &self,
        id: Uuid,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<User, StoreError> {
        self.replace_password(id, password_hash, true, now).await
    }

    async fn replace_password(
        &self,
        id: Uuid,
        password_hash: &str,
        must_change: bool,
        now: DateTime<Utc>,
    ) -> Result<User, StoreError> {
        let sql = format!(
            "UPDATE users SET password_hash = $2, token_epoch = token_epoch + 1, updated_at = $3, \
             password_must_change = $4 WHERE id = $1 RETURNING {USER_COLUMNS}"
        );
        let row: Option<UserRow> = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let row = sqlx::query_as(&sql)
                .bind(id)
                .bind(password_hash)
                .bind(now)
                .bind(must_change)
                .fetch_optional(&mut *tx)
                .await?;
            sqlx::query("UPDATE refresh_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL")
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            row
        });
        row.ok_or(StoreError::NotFound)?.try_into()
    }

    /// Invalidates every access token of the user ("sign out everywhere").
    pub async fn bump_token_epoch(&self, id: Uuid, now: DateTime<Utc>) -> Result<(), StoreError> {
        let done = on_pool!(self, pool => sqlx::query(
            "UPDATE users SET token_epoch = token_epoch + 1, updated_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Deletes a user and their refresh tokens. Refused with
    /// [`StoreError::Conflict`] while the user still owns rooms.
    pub async fn delete_user(&self, id: Uuid) -> Result<(), StoreError> {
        let done = on_pool!(self, pool => sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
        .map_err(owns_rooms)?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// [`Store::delete_user`], refused with [`StoreError::Conflict`] when
    /// the user is the last active admin; check and delete are one
    /// statement, serialised as in [`Store::update_user_keeping_an_admin`].
    pub async fn delete_user_keeping_an_admin(&self, id: Uuid) -> Result<(), StoreError> {
        let sql = format!(
            "DELETE FROM users WHERE id = $1 AND (NOT (role = 'admin' AND disabled = FALSE) \
             OR {ANOTHER_ADMIN})"
        );
        let postgres = self.backend() == Backend::Postgres;
        let done = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            if postgres {
                sqlx::query(ADMIN_LOCK).execute(&mut *tx).await?;
            }
            let done = sqlx::query(&sql)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map(|r| r.rows_affected());
            tx.commit().await?;
            done
        })
        .map_err(owns_rooms)?;
        if done == 0 {
            return Err(self.missing_or_last_admin(id).await);
        }
        Ok(())
    }

    /// Admins who can still sign in; used to refuse removing the last one.
    pub async fn count_active_admins(&self) -> Result<u64, StoreError> {
        let n: i64 = on_pool!(self, pool => sqlx::query_scalar(
            "SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = FALSE")
            .fetch_one(pool)
            .await)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
