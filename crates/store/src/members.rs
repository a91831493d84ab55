//! Classes: a room's members (student, co-teacher), the addresses added
//! before they had an account, and invitation links. Who may do what with
//! them is the server's business; this module stores and counts.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::pool::on_pool;
use crate::{
    Invitation, InvitationRefusal, MemberRole, NewInvitation, PendingMember, RoomMember, Store,
    StoreError,
};

#[derive(sqlx::FromRow)]
struct MemberRow {
    room_id: String,
    user_id: Uuid,
    email: String,
    display_name: String,
    role: String,
    added_at: DateTime<Utc>,
}

impl TryFrom<MemberRow> for RoomMember {
    type Error = StoreError;
    fn try_from(row: MemberRow) -> Result<Self, StoreError> {
        Ok(RoomMember {
            room_id: row.room_id,
            user_id: row.user_id,
            email: row.email,
            display_name: row.display_name,
            role: row.role.parse().map_err(StoreError::Corrupt)?,
            added_at: row.added_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct PendingRow {
    room_id: String,
    email: String,
    role: String,
    added_at: DateTime<Utc>,
}

impl TryFrom<PendingRow> for PendingMember {
    type Error = StoreError;
    fn try_from(row: PendingRow) -> Result<Self, StoreError> {
        Ok(PendingMember {
            room_id: row.room_id,
            email: row.email,
            role: row.role.parse().map_err(StoreError::Corrupt)?,
            added_at: row.added_at,
        })
    }
}

const INVITATION_COLUMNS: &str =
    "id, room_id, role, created_by, created_at, expires_at, max_uses, uses, revoked_at";

#[derive(sqlx::FromRow)]
struct InvitationRow {
    id: Uuid,
    room_id: String,
    role: String,
    created_by: Option<Uuid>,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    max_uses: Option<i64>,
    uses: i64,
    revoked_at: Option<DateTime<Utc>>,
}

impl TryFrom<InvitationRow> for Invitation {
    type Error = StoreError;
    fn try_from(row: InvitationRow) -> Result<Self, StoreError> {
        let count =
            |n: i64| u32::try_from(n).map_err(|_| StoreError::Corrupt(format!("count {n}")));
        Ok(Invitation {
            id: row.id,
            room_id: row.room_id,
            role: row.role.parse().map_err(StoreError::Corrupt)?,
            created_by: row.created_by,
            created_at: row.created_at,
            expires_at: row.expires_at,
            max_uses: row.max_uses.map(count).transpose()?,
            uses: count(row.uses)?,
            revoked_at: row.revoked_at,
        })
    }
}

const MEMBER_SELECT: &str = "SELECT m.room_id, m.user_id, u.email, u.display_name, m.role, m.added_at \
     FROM room_members m JOIN users u ON u.id = m.user_id";

/// A change meant for one row: [`StoreError::NotFound`] if it found none.
fn one_row(rows_affected: u64) -> Result<(), StoreError> {
    if rows_affected == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl Store {
    /// The user's role in the room, if they are a member.
    pub async fn member_role(
        &self,
        room_id: &str,
        user_id: Uuid,
    ) -> Result<Option<MemberRole>, StoreError> {
        let role: Option<String> = on_pool!(self, pool => sqlx::query_scalar(
            "SELECT role FROM room_members WHERE room_id = $1 AND user_id = $2")
            .bind(room_id)
            .bind(user_id)
            .fetch_optional(pool)
            .await)?;
        role.map(|r| r.parse().map_err(StoreError::Corrupt))
            .transpose()
    }

    /// Members plus pending members of the room (what its limit counts).
    pub async fn count_roster(&self, room_id: &str) -> Result<u64, StoreError> {
        let n: i64 = on_pool!(self, pool => sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM room_members WHERE room_id = $1) \
             + (SELECT COUNT(*) FROM room_pending_members WHERE room_id = $1)")
            .bind(room_id)
            .fetch_one(pool)
            .await)?;
        Ok(count(n))
    }

    /// Makes the user a member with `role`, or changes the role of a member.
    pub async fn put_member(
        &self,
        room_id: &str,
        user_id: Uuid,
        role: MemberRole,
        now: DateTime<Utc>,
    ) -> Result<RoomMember, StoreError> {
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO room_members (room_id, user_id, role, added_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (room_id, user_id) DO UPDATE SET role = excluded.role")
            .bind(room_id)
            .bind(user_id)
            .bind(role.as_str())
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ()))?;
        self.member(room_id, user_id).await
    }

    pub async fn member(&self, room_id: &str, user_id: Uuid) -> Result<RoomMember, StoreError> {
        let sql = format!("{MEMBER_SELECT} WHERE m.room_id = $1 AND m.user_id = $2");
        let row: Option<MemberRow> = on_pool!(self, pool => sqlx::query_as(&sql)
            .bind(room_id)
            .bind(user_id)
            .fetch_optional(pool)
            .await)?;
        row.ok_or(StoreError::NotFound)?.try_into()
    }

    /// Takes the user off the room's roster ([`StoreError::NotFound`] if
    /// they were not on it).
    pub async fn remove_member(&self, room_id: &str, user_id: Uuid) -> Result<(), StoreError> {
        let done = on_pool!(self, pool => sqlx::query(
            "DELETE FROM room_members WHERE room_id = $1 AND user_id = $2")
            .bind(room_id)
            .bind(user_id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        one_row(done)
    }

    /// The room's members by name, at most `limit`.
    pub async fn list_members(
        &self,
        room_id: &str,
        limit: u64,
    ) -> Result<Vec<RoomMember>, StoreError> {
        let sql = format!(
            "{MEMBER_SELECT} WHERE m.room_id = $1 ORDER BY LOWER(u.display_name), u.email LIMIT $2"
        );
        let rows: Vec<MemberRow> = on_pool!(self, pool => sqlx::query_as(&sql)
            .bind(room_id)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(pool)
            .await)?;
        rows.into_iter().map(RoomMember::try_from).collect()
    }

    /// Adds (or changes the role of) an address without an account yet.
    pub async fn put_pending_member(
        &self,
        room_id: &str,
        email: &str,
        role: MemberRole,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO room_pending_members (room_id, email, role, added_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (room_id, email) DO UPDATE SET role = excluded.role")
            .bind(room_id)
            .bind(email)
            .bind(role.as_str())
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    pub async fn remove_pending_member(
        &self,
        room_id: &str,
        email: &str,
    ) -> Result<(), StoreError> {
        let done = on_pool!(self, pool => sqlx::query(
            "DELETE FROM room_pending_members WHERE room_id = $1 AND email = $2")
            .bind(room_id)
            .bind(email)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        one_row(done)
    }

    pub async fn list_pending_members(
        &self,
        room_id: &str,
        limit: u64,
    ) -> Result<Vec<PendingMember>, StoreError> {
        let rows: Vec<PendingRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT room_id, email, role, added_at FROM room_pending_members WHERE room_id = $1 \
             ORDER BY email LIMIT $2")
            .bind(room_id)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(pool)
            .await)?;
        rows.into_iter().map(PendingMember::try_from).collect()
    }

    /// Turns the pending memberships of `email` into memberships of the
    /// account `user_id` (called when that account is created). Returns how
    /// many rooms it joined.
    pub async fn claim_pending_members(
        &self,
        email: &str,
        user_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let claimed = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let added = sqlx::query(
                "INSERT INTO room_members (room_id, user_id, role, added_at) \
                 SELECT room_id, $2, role, $3 FROM room_pending_members WHERE email = $1 \
                 ON CONFLICT (room_id, user_id) DO NOTHING")
                .bind(email)
                .bind(user_id)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query("DELETE FROM room_pending_members WHERE email = $1")
                .bind(email)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<u64, sqlx::Error>(added)
        })?;
        Ok(claimed)
    }

    pub async fn create_invitation(
        &self,
        new: &NewInvitation,
        now: DateTime<Utc>,
    ) -> Result<Invitation, StoreError> {
        let sql = format!(
            "INSERT INTO room_invitations (id, room_id, token_hash, role, created_by, created_at, \
             expires_at, max_uses, uses) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0) \
             RETURNING {INVITATION_COLUMNS}"
        );
        let row: InvitationRow = on_pool!(self, pool => sqlx::query_as(&sql)
            .bind(Uuid::new_v4())
            .bind(&new.room_id)
            .bind(&new.token_hash)
            .bind(new.role.as_str())
            .bind(new.created_by)
            .bind(now)
            .bind(new.expires_at)
            .bind(new.max_uses.map(i64::from))
            .fetch_one(pool)
            .await)?;
        row.try_into()
    }

    /// Invitation links of the room that still work (not revoked, not
    /// expired, not used up), newest first.
    pub async fn list_invitations(
        &self,
        room_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Invitation>, StoreError> {
        let sql = format!(
            "SELECT {INVITATION_COLUMNS} FROM room_invitations WHERE room_id = $1 \
             AND revoked_at IS NULL AND expires_at > $2 AND (max_uses IS NULL OR uses < max_uses) \
             ORDER BY created_at DESC, id DESC"
        );
        let rows: Vec<InvitationRow> = on_pool!(self, pool => sqlx::query_as(&sql)
            .bind(room_id)
            .bind(now)
            .fetch_all(pool)
            .await)?;
        rows.into_iter().map(Invitation::try_from).collect()
    }

    /// Revokes one of the room's links ([`StoreError::NotFound`] if it is
    /// not the room's or already revoked).
    pub async fn revoke_invitation(
        &self,
        room_id: &str,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let done = on_pool!(self, pool => sqlx::query(
            "UPDATE room_invitations SET revoked_at = $3 \
             WHERE room_id = $1 AND id = $2 AND revoked_at IS NULL")
            .bind(room_id)
            .bind(id)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        one_row(done)
    }

    /// The invitation a token's hash names, whatever its state.
    pub async fn invitation_by_hash(&self, token_hash: &str) -> Result<Invitation, StoreError> {
        let sql =
            format!("SELECT {INVITATION_COLUMNS} FROM room_invitations WHERE token_hash = $1");
        let row: Option<InvitationRow> = on_pool!(self, pool => sqlx::query_as(&sql)
            .bind(token_hash)
            .fetch_optional(pool)
            .await)?;
        row.ok_or(StoreError::NotFound)?.try_into()
    }

    /// Uses the link once: counts the use (atomically against its limit)
    /// and returns it, or says why it cannot be used. Membership is the
    /// caller's next step.
    pub async fn consume_invitation(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Result<Invitation, InvitationRefusal>, StoreError> {
        let sql = format!(
            "UPDATE room_invitations SET uses = uses + 1 WHERE token_hash = $1 \
             AND revoked_at IS NULL AND expires_at > $2 AND (max_uses IS NULL OR uses < max_uses) \
             RETURNING {INVITATION_COLUMNS}"
        );
        let row: Option<InvitationRow> = on_pool!(self, pool => sqlx::query_as(&sql)
            .bind(token_hash)
            .bind(now)
            .fetch_optional(pool)
            .await)?;
        if let Some(row) = row {
            return Ok(Ok(row.try_into()?));
        }
        Ok(Err(match self.invitation_by_hash(token_hash).await {
            Err(StoreError::NotFound) => InvitationRefusal::Unknown,
            Err(e) => return Err(e),
            Ok(i) => i.refusal(now).unwrap_or(InvitationRefusal::UsedUp),
        }))
    }

    /// Links of the room that still work (what its limit counts).
    pub async fn count_live_invitations(
        &self,
        room_id: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let n: i64 = on_pool!(self, pool => sqlx::query_scalar(
            "SELECT COUNT(*) FROM room_invitations WHERE room_id = $1 AND revoked_at IS NULL \
             AND expires_at > $2 AND (max_uses IS NULL OR uses < max_uses)")
            .bind(room_id)
            .bind(now)
            .fetch_one(pool)
            .await)?;
        Ok(count(n))
    }
}

impl Invitation {
    /// Why the link cannot be used at `now`, if it cannot.
    pub fn refusal(&self, now: DateTime<Utc>) -> Option<InvitationRefusal> {
        if self.revoked_at.is_some() {
            Some(InvitationRefusal::Revoked)
        } else if self.expires_at <= now {
            Some(InvitationRefusal::Expired)
        } else if self.max_uses.is_some_and(|max| self.uses >= max) {
            Some(InvitationRefusal::UsedUp)
        } else {
            None
        }
    }
}
