//! Scheduled sessions (a room's timetable, kept on the room row) and the
//! subscribe links to a room's calendar feed.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use uuid::Uuid;

use crate::pool::on_pool;
use crate::{Room, Store, StoreError};

/// A room's timetable: when its sessions happen, in one time zone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Schedule {
    /// An IANA time zone name (`Europe/Berlin`); the entries' local times
    /// are in it, so a weekly class stays at 10:00 across daylight saving.
    pub time_zone: String,
    pub entries: Vec<ScheduleEntry>,
}

/// One series of sessions: a first session and how it repeats.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScheduleEntry {
    /// Local date and time of the first session (`2026-12-08T14:00:00`).
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "2026-12-08T14:00:00"))]
    pub start: NaiveDateTime,
    pub duration_minutes: u32,
    pub recurrence: Recurrence,
}

/// How a schedule entry repeats.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Recurrence {
    /// Once.
    None,
    /// Every week on these days (the first session's day among them), for
    /// ever, until a date (inclusive, local) or for a number of sessions.
    #[serde(rename_all = "camelCase")]
    Weekly {
        weekdays: Vec<Weekday>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Date))]
        until: Option<NaiveDate>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<u32>,
    },
}

/// A day of the week, as RFC 5545 names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    Mo,
    Tu,
    We,
    Th,
    Fr,
    Sa,
    Su,
}

impl Weekday {
    pub fn as_rfc5545(self) -> &'static str {
        match self {
            Weekday::Mo => "MO",
            Weekday::Tu => "TU",
            Weekday::We => "WE",
            Weekday::Th => "TH",
            Weekday::Fr => "FR",
            Weekday::Sa => "SA",
            Weekday::Su => "SU",
        }
    }

    pub fn from_chrono(day: chrono::Weekday) -> Self {
        match day {
            chrono::Weekday::Mon => Weekday::Mo,
            chrono::Weekday::Tue => Weekday::Tu,
            chrono::Weekday::Wed => Weekday::We,
            chrono::Weekday::Thu => Weekday::Th,
            chrono::Weekday::Fri => Weekday::Fr,
            chrono::Weekday::Sat => Weekday::Sa,
            chrono::Weekday::Sun => Weekday::Su,
        }
    }
}

/// A subscribe link to a room's calendar, issued to one user.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct CalendarFeed {
    pub id: Uuid,
    pub room_id: String,
    pub user_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

const FEED_COLUMNS: &str = "id, room_id, user_id, created_at, expires_at, revoked_at";

impl Store {
    /// Sets (or with `None` clears) a room's schedule.
    pub async fn set_room_schedule(
        &self,
        room_id: &str,
        schedule: Option<&Schedule>,
        now: DateTime<Utc>,
    ) -> Result<Room, StoreError> {
        let done = on_pool!(self, pool => sqlx::query(
            "UPDATE rooms SET schedule = $2, updated_at = $3 WHERE id = $1")
            .bind(room_id)
            .bind(schedule.map(Json))
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        self.room_by_id(room_id).await
    }

    /// The user's link to the room's calendar that is still good at `now`.
    pub async fn active_calendar_feed(
        &self,
        room_id: &str,
        user_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Option<CalendarFeed>, StoreError> {
        let sql = format!(
            "SELECT {FEED_COLUMNS} FROM calendar_feeds WHERE room_id = $1 AND user_id = $2 \
             AND revoked_at IS NULL AND expires_at > $3 ORDER BY created_at DESC LIMIT 1"
        );
        Ok(on_pool!(self, pool => sqlx::query_as(&sql)
            .bind(room_id)
            .bind(user_id)
            .bind(now)
            .fetch_optional(pool)
            .await)?)
    }

    pub async fn create_calendar_feed(
        &self,
        room_id: &str,
        user_id: Uuid,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<CalendarFeed, StoreError> {
        let sql = format!(
            "INSERT INTO calendar_feeds (id, room_id, user_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING {FEED_COLUMNS}"
        );
        Ok(on_pool!(self, pool => sqlx::query_as(&sql)
            .bind(Uuid::new_v4())
            .bind(room_id)
            .bind(user_id)
            .bind(now)
            .bind(expires_at)
            .fetch_one(pool)
            .await)?)
    }

    pub async fn calendar_feed(&self, id: Uuid) -> Result<CalendarFeed, StoreError> {
        let sql = format!("SELECT {FEED_COLUMNS} FROM calendar_feeds WHERE id = $1");
        let row: Option<CalendarFeed> =
            on_pool!(self, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)?;
        row.ok_or(StoreError::NotFound)
    }

    /// Revokes the user's links to the room's calendar; how many were live.
    pub async fn revoke_calendar_feeds(
        &self,
        room_id: &str,
        user_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query(
            "UPDATE calendar_feeds SET revoked_at = $3 \
             WHERE room_id = $1 AND user_id = $2 AND revoked_at IS NULL")
            .bind(room_id)
            .bind(user_id)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?)
    }
}
