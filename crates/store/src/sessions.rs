//! Live sessions, attendance and chat: the durable trace of what happened
//! in a room. The live state itself (who is connected now) is the server's.

use chrono::{DateTime, SubsecRound, Utc};
use uuid::Uuid;

use crate::pool::on_pool;
use crate::{
    ChatMessage, ChatQuery, LiveSession, NewChatMessage, NewParticipant, Page, Paging, Participant,
    RoomRole, RoomStatus, SessionSummary, Store, StoreError, TimeKey,
};

#[derive(sqlx::FromRow)]
struct SessionRow {
    id: Uuid,
    room_id: String,
    started_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
}

impl From<SessionRow> for LiveSession {
    fn from(r: SessionRow) -> Self {
        LiveSession {
            id: r.id,
            room_id: r.room_id,
            started_at: r.started_at,
            ended_at: r.ended_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct SummaryRow {
    #[sqlx(flatten)]
    session: SessionRow,
    participant_count: i64,
}

const PARTICIPANT_COLUMNS: &str =
    "id, session_id, user_id, peer_id, display_name, room_role, joined_at, left_at";

#[derive(sqlx::FromRow)]
struct ParticipantRow {
    id: Uuid,
    session_id: Uuid,
    user_id: Option<Uuid>,
    peer_id: String,
    display_name: String,
    room_role: String,
    joined_at: DateTime<Utc>,
    left_at: Option<DateTime<Utc>>,
}

impl TryFrom<ParticipantRow> for Participant {
    type Error = StoreError;
    fn try_from(r: ParticipantRow) -> Result<Self, StoreError> {
        Ok(Participant {
            id: r.id,
            session_id: r.session_id,
            user_id: r.user_id,
            peer_id: r.peer_id,
            display_name: r.display_name,
            room_role: r.room_role.parse().map_err(StoreError::Corrupt)?,
            joined_at: r.joined_at,
            left_at: r.left_at,
        })
    }
}

const CHAT_COLUMNS: &str = "id, room_id, session_id, user_id, peer_id, display_name, body, sent_at";

#[derive(sqlx::FromRow)]
struct ChatRow {
    id: Uuid,
    room_id: String,
    session_id: Uuid,
    user_id: Option<Uuid>,
    peer_id: String,
    display_name: String,
    body: String,
    sent_at: DateTime<Utc>,
}

impl From<ChatRow> for ChatMessage {
    fn from(r: ChatRow) -> Self {
        ChatMessage {
            id: r.id,
            room_id: r.room_id,
            session_id: r.session_id,
            user_id: r.user_id,
            peer_id: r.peer_id,
            display_name: r.display_name,
            body: r.body,
            sent_at: r.sent_at,
        }
    }
}

impl Store {
    /// Starts a session and marks the room live, in one transaction.
    pub async fn start_session(
        &self,
        room_id: &str,
        now: DateTime<Utc>,
    ) -> Result<LiveSession, StoreError> {
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let row: SessionRow = sqlx::query_as(
                "INSERT INTO live_sessions (id, room_id, started_at) VALUES ($1, $2, $3) \
                 RETURNING id, room_id, started_at, ended_at")
                .bind(Uuid::new_v4())
                .bind(room_id)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
            sqlx::query("UPDATE rooms SET status = 'live', updated_at = $2 WHERE id = $1")
                .bind(room_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(row.into())
        })
    }

    /// Ends a session: every participant still present leaves now, and the
    /// room takes `room_status` (open, or closed when a host closed it).
    pub async fn end_session(
        &self,
        session_id: Uuid,
        room_status: RoomStatus,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let room_id: Option<String> = sqlx::query_scalar(
                "UPDATE live_sessions SET ended_at = $2 WHERE id = $1 AND ended_at IS NULL RETURNING room_id")
                .bind(session_id)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
            sqlx::query("UPDATE participants SET left_at = $2 WHERE session_id = $1 AND left_at IS NULL")
                .bind(session_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            if let Some(room_id) = room_id {
                sqlx::query("UPDATE rooms SET status = $2, updated_at = $3 WHERE id = $1")
                    .bind(room_id)
                    .bind(room_status.as_str())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Closes what a crash left open: sessions without an end, participants
    /// without a leave time, rooms still marked live. Returns the number of
    /// sessions closed. Run at start-up, before anyone can join.
    pub async fn close_abandoned_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "UPDATE participants SET left_at = $1 WHERE left_at IS NULL AND session_id IN \
                 (SELECT id FROM live_sessions WHERE ended_at IS NULL)")
                .bind(now)
                .execute(&mut *tx)
                .await?;
            let closed = sqlx::query("UPDATE live_sessions SET ended_at = $1 WHERE ended_at IS NULL")
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query("UPDATE rooms SET status = 'open', updated_at = $1 WHERE status = 'live'")
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(closed)
        })
    }

    pub async fn session_by_id(&self, id: Uuid) -> Result<LiveSession, StoreError> {
        let row: Option<SessionRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT id, room_id, started_at, ended_at FROM live_sessions WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await)?;
        Ok(row.ok_or(StoreError::NotFound)?.into())
    }

    /// A room's sessions, newest first (by `started_at`, then id, both
    /// descending), with head counts, a page at a time, with their number.
    pub async fn list_sessions(
        &self,
        room_id: &str,
        paging: &Paging<TimeKey>,
    ) -> Result<Page<SessionSummary, TimeKey>, StoreError> {
        let (after_at, after_id) = paging.after().copied().unzip();
        let (rows, total): (Vec<SummaryRow>, i64) = on_pool!(self, pool => {
            let rows = sqlx::query_as(
                "SELECT s.id, s.room_id, s.started_at, s.ended_at, \
                 (SELECT COUNT(DISTINCT p.user_id) + COUNT(*) - COUNT(p.user_id) \
                  FROM participants p WHERE p.session_id = s.id) AS participant_count \
                 FROM live_sessions s WHERE s.room_id = $1 \
                 AND ($2 IS NULL OR s.started_at < $2 OR (s.started_at = $2 AND s.id < $3)) \
                 ORDER BY s.started_at DESC, s.id DESC LIMIT $4 OFFSET $5")
                .bind(room_id)
                .bind(after_at)
                .bind(after_id)
                .bind(paging.fetch())
                .bind(paging.offset())
                .fetch_all(pool)
                .await?;
            let total = sqlx::query_scalar("SELECT COUNT(*) FROM live_sessions WHERE room_id = $1")
                .bind(room_id)
                .fetch_one(pool)
                .await?;
            (rows, total)
        });
        let sessions = rows
            .into_iter()
            .map(|r| SessionSummary {
                session: r.session.into(),
                participant_count: u64::try_from(r.participant_count).unwrap_or(0),
            })
            .collect();
        Ok(Page::cut(sessions, paging, |s: &SessionSummary| {
            (s.session.started_at, s.session.id)
        })
        .with_total(total))
    }

    pub async fn add_participant(
        &self,
        new: &NewParticipant,
        now: DateTime<Utc>,
    ) -> Result<Participant, StoreError> {
        let sql = format!(
            "INSERT INTO participants (id, session_id, user_id, peer_id, display_name, room_role, joined_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {PARTICIPANT_COLUMNS}"
        );
        let row: ParticipantRow = on_pool!(self, pool => sqlx::query_as(&sql)
            .bind(Uuid::new_v4())
            .bind(new.session_id)
            .bind(new.user_id)
            .bind(&new.peer_id)
            .bind(&new.display_name)
            .bind(new.room_role.as_str())
            .bind(now)
            .fetch_one(pool)
            .await)?;
        row.try_into()
    }

    /// Records that a participant left (once; later calls change nothing).
    pub async fn participant_left(
        &self,
        participant_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query("UPDATE participants SET left_at = $2 WHERE id = $1 AND left_at IS NULL")
            .bind(participant_id)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Keeps the attendance record's role in step with promotions.
    pub async fn set_participant_role(
        &self,
        participant_id: Uuid,
        role: RoomRole,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query("UPDATE participants SET room_role = $2 WHERE id = $1")
            .bind(participant_id)
            .bind(role.as_str())
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Everyone who attended a session, in order of arrival.
    pub async fn session_participants(
        &self,
        session_id: Uuid,
    ) -> Result<Vec<Participant>, StoreError> {
        let sql = format!(
            "SELECT {PARTICIPANT_COLUMNS} FROM participants WHERE session_id = $1 ORDER BY joined_at, id"
        );
        let rows: Vec<ParticipantRow> =
            on_pool!(self, pool => sqlx::query_as(&sql).bind(session_id).fetch_all(pool).await)?;
        rows.into_iter().map(Participant::try_from).collect()
    }

    pub async fn insert_chat_message(
        &self,
        new: &NewChatMessage,
        now: DateTime<Utc>,
    ) -> Result<ChatMessage, StoreError> {
        // Microseconds on both backends (PostgreSQL's precision), so that
        // pagination cursors compare the same everywhere.
        let now = now.trunc_subsecs(6);
        let sql = format!(
            "INSERT INTO chat_messages (id, room_id, session_id, user_id, peer_id, display_name, body, sent_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {CHAT_COLUMNS}"
        );
        let row: ChatRow = on_pool!(self, pool => sqlx::query_as(&sql)
            .bind(Uuid::new_v4())
            .bind(&new.room_id)
            .bind(new.session_id)
            .bind(new.user_id)
            .bind(&new.peer_id)
            .bind(&new.display_name)
            .bind(&new.body)
            .bind(now)
            .fetch_one(pool)
            .await)?;
        Ok(row.into())
    }

    /// Chat messages, newest first (by `sent_at`, then id, both
    /// descending), a page at a time.
    pub async fn chat_messages(
        &self,
        query: &ChatQuery,
    ) -> Result<Page<ChatMessage, TimeKey>, StoreError> {
        let (after_at, after_id) = query.paging.after().copied().unzip();
        let sql = format!(
            "SELECT {CHAT_COLUMNS} FROM chat_messages WHERE room_id = $1 AND ($2 IS NULL OR session_id = $2) \
             AND ($3 IS NULL OR sent_at < $3 OR (sent_at = $3 AND id < $4)) \
             AND ($7 IS NULL OR session_id IN (SELECT session_id FROM participants WHERE user_id = $7)) \
             ORDER BY sent_at DESC, id DESC LIMIT $5 OFFSET $6"
        );
        let rows: Vec<ChatRow> = on_pool!(self, pool => sqlx::query_as(&sql)
            .bind(&query.room_id)
            .bind(query.session_id)
            .bind(after_at)
            .bind(after_id)
            .bind(query.paging.fetch())
            .bind(query.paging.offset())
            .bind(query.attended_by)
            .fetch_all(pool)
            .await)?;
        let messages = rows.into_iter().map(ChatMessage::from).collect();
        Ok(Page::cut(messages, &query.paging, |m: &ChatMessage| {
            (m.sent_at, m.id)
        }))
    }
}

impl Store {
    /// One chat message, by id.
    pub async fn chat_message(&self, id: Uuid) -> Result<ChatMessage, StoreError> {
        let sql = format!("SELECT {CHAT_COLUMNS} FROM chat_messages WHERE id = $1");
        let row: Option<ChatRow> = on_pool!(self, pool => sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(pool)
            .await)?;
        row.map(ChatMessage::from).ok_or(StoreError::NotFound)
    }

    /// Whether the user was a participant of this session.
    pub async fn user_attended_session(
        &self,
        user_id: Uuid,
        session_id: Uuid,
    ) -> Result<bool, StoreError> {
        let n: i64 = on_pool!(self, pool => sqlx::query_scalar(
            "SELECT COUNT(*) FROM participants WHERE user_id = $1 AND session_id = $2")
            .bind(user_id)
            .bind(session_id)
            .fetch_one(pool)
            .await)?;
        Ok(n > 0)
    }

    /// Whether the user was ever a participant of the room (any session).
    pub async fn user_attended_room(
        &self,
        user_id: Uuid,
        room_id: &str,
    ) -> Result<bool, StoreError> {
        let n: i64 = on_pool!(self, pool => sqlx::query_scalar(
            "SELECT COUNT(*) FROM participants p JOIN live_sessions s ON s.id = p.session_id \
             WHERE p.user_id = $1 AND s.room_id = $2")
            .bind(user_id)
            .bind(room_id)
            .fetch_one(pool)
            .await)?;
        Ok(n > 0)
    }
}
