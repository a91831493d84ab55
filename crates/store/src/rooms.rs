//! Rooms: the durable part (title, owner, settings, status). Who is in a
//! room right now is live state kept by the server, not here.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use uuid::Uuid;

use crate::model::like_pattern;
use crate::pool::on_pool;
use crate::{
    NewRoom, Page, Room, RoomKey, RoomPatch, RoomQuery, RoomSettings, RoomStatus, Store, StoreError,
};

const ROOM_COLUMNS: &str =
    "id, title, owner_id, status, settings, schedule, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct RoomRow {
    id: String,
    title: String,
    owner_id: Uuid,
    status: String,
    settings: Json<RoomSettings>,
    schedule: Option<Json<crate::Schedule>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<RoomRow> for Room {
    type Error = StoreError;
    fn try_from(row: RoomRow) -> Result<Room, StoreError> {
        Ok(Room {
            id: row.id,
            title: row.title,
            owner_id: row.owner_id,
            status: row.status.parse().map_err(StoreError::Corrupt)?,
            settings: row.settings.0,
            schedule: row.schedule.map(|s| s.0),
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

// $4: only rooms this user may see; $5: only rooms this user owns or is a
// member of. Every room has `settings.access` (the 0007 migration set it on
// older rooms); the COALESCE only keeps a hand-edited row members only.
const ROOM_FILTER: &str = "($1 IS NULL OR status = $1) AND ($2 IS NULL OR owner_id = $2) \
     AND ($3 IS NULL OR LOWER(title) LIKE $3 ESCAPE '\\') \
     AND ($4 IS NULL OR owner_id = $4 \
          OR COALESCE(settings ->> 'access', 'members') = 'signed_in' \
          OR EXISTS (SELECT 1 FROM room_members m WHERE m.room_id = rooms.id AND m.user_id = $4)) \
     AND ($5 IS NULL OR owner_id = $5 \
          OR EXISTS (SELECT 1 FROM room_members m WHERE m.room_id = rooms.id AND m.user_id = $5))";

impl Store {
    /// Creates a room in status `open`. A taken id gives [`StoreError::Conflict`].
    pub async fn create_room(&self, new: &NewRoom, now: DateTime<Utc>) -> Result<Room, StoreError> {
        let sql = format!(
            "INSERT INTO rooms (id, title, owner_id, status, settings, created_at, updated_at) \
             VALUES ($1, $2, $3, 'open', $4, $5, $5) RETURNING {ROOM_COLUMNS}"
        );
        let row: RoomRow = on_pool!(self, pool => sqlx::query_as(&sql)
            .bind(&new.id)
            .bind(&new.title)
            .bind(new.owner_id)
            .bind(Json(&new.settings))
            .bind(now)
            .fetch_one(pool)
            .await)
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => {
                StoreError::Conflict(format!("room id {:?} is taken", new.id))
            }
            other => other,
        })?;
        row.try_into()
    }

    pub async fn room_by_id(&self, id: &str) -> Result<Room, StoreError> {
        let sql = format!("SELECT {ROOM_COLUMNS} FROM rooms WHERE id = $1");
        let row: Option<RoomRow> =
            on_pool!(self, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)?;
        row.ok_or(StoreError::NotFound)?.try_into()
    }

    /// Rooms, newest first (by `created_at`, then id, both descending),
    /// filtered, a page at a time, with the number of matches.
    pub async fn list_rooms(&self, query: &RoomQuery) -> Result<Page<Room, RoomKey>, StoreError> {
        let status = query.status.map(RoomStatus::as_str);
        let search = query.search.as_deref().map(like_pattern);
        let (after_at, after_id) = query.paging.after().cloned().unzip();
        let list_sql = format!(
            "SELECT {ROOM_COLUMNS} FROM rooms WHERE {ROOM_FILTER} \
             AND ($6 IS NULL OR created_at < $6 OR (created_at = $6 AND id < $7)) \
             ORDER BY created_at DESC, id DESC LIMIT $8 OFFSET $9"
        );
        let count_sql = format!("SELECT COUNT(*) FROM rooms WHERE {ROOM_FILTER}");
        let (rows, total): (Vec<RoomRow>, i64) = on_pool!(self, pool => {
            let rows = sqlx::query_as(&list_sql)
                .bind(status)
                .bind(query.owner_id)
                .bind(search.as_deref())
                .bind(query.visible_to)
                .bind(query.member_of)
                .bind(after_at)
                .bind(after_id.as_deref())
                .bind(query.paging.fetch())
                .bind(query.paging.offset())
                .fetch_all(pool)
                .await?;
            let total = sqlx::query_scalar(&count_sql)
                .bind(status)
                .bind(query.owner_id)
                .bind(search.as_deref())
                .bind(query.visible_to)
                .bind(query.member_of)
                .fetch_one(pool)
                .await?;
            (rows, total)
        });
        let rooms = rows
            .into_iter()
            .map(Room::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::cut(rooms, &query.paging, |r| (r.created_at, r.id.clone())).with_total(total))
    }

    pub async fn update_room(
        &self,
        id: &str,
        patch: &RoomPatch,
        now: DateTime<Utc>,
    ) -> Result<Room, StoreError> {
        let sql = format!(
            "UPDATE rooms SET title = COALESCE($2, title), status = COALESCE($3, status), \
             settings = COALESCE($4, settings), updated_at = $5 WHERE id = $1 RETURNING {ROOM_COLUMNS}"
        );
        let row: Option<RoomRow> = on_pool!(self, pool => sqlx::query_as(&sql)
            .bind(id)
            .bind(patch.title.as_deref())
            .bind(patch.status.map(RoomStatus::as_str))
            .bind(patch.settings.as_ref().map(Json))
            .bind(now)
            .fetch_optional(pool)
            .await)?;
        row.ok_or(StoreError::NotFound)?.try_into()
    }

    pub async fn delete_room(&self, id: &str) -> Result<(), StoreError> {
        let done = on_pool!(self, pool => sqlx::query("DELETE FROM rooms WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}
