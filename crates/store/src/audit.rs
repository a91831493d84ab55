//! The audit log: one row per security-relevant event (sign-in failures,
//! role changes, removals, recording downloads, ...), with who did it, to
//! what, from where and when. Rows name accounts without a reference, so
//! that the log outlives them; retention is by age and count
//! ([`Store::prune_audit_events`]).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::pool::on_pool;
use crate::{Page, Paging, Store, StoreError, TimeKey};

/// One event of the audit log.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEvent {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    /// A stable name (`auth.sign_in_failed`, `user.role_changed`, ...).
    pub event: String,
    /// The account that did it, if known.
    pub actor_id: Option<Uuid>,
    /// Its e-mail at the time (or the e-mail a failed sign-in tried).
    pub actor: Option<String>,
    /// What it was done to: `user:<id>`, `room:<id>`, `recording:<id>`, ...
    pub target: Option<String>,
    /// The client address.
    pub address: Option<String>,
    /// A small JSON object with the rest (a new role, a reason, ...).
    pub detail: Option<serde_json::Value>,
}

/// Which audit events to read; every filter is optional.
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    pub event: Option<String>,
    pub actor_id: Option<Uuid>,
    /// At or after.
    pub since: Option<DateTime<Utc>>,
    /// Before.
    pub until: Option<DateTime<Utc>>,
    /// Newest first: by `at`, then id, both descending.
    pub paging: Paging<TimeKey>,
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    id: Uuid,
    at: DateTime<Utc>,
    event: String,
    actor_id: Option<Uuid>,
    actor: Option<String>,
    target: Option<String>,
    address: Option<String>,
    detail: Option<String>,
}

impl From<AuditRow> for AuditEvent {
    fn from(r: AuditRow) -> Self {
        AuditEvent {
            id: r.id,
            at: r.at,
            event: r.event,
            actor_id: r.actor_id,
            actor: r.actor,
            target: r.target,
            address: r.address,
            // Written by `insert_audit_event` only; unreadable JSON is shown as a string.
            detail: r
                .detail
                .map(|d| serde_json::from_str(&d).unwrap_or(serde_json::Value::String(d))),
        }
    }
}

const AUDIT_COLUMNS: &str = "id, at, event, actor_id, actor, target, address, detail";

impl Store {
    pub async fn insert_audit_event(&self, event: &AuditEvent) -> Result<(), StoreError> {
        let detail = event.detail.as_ref().map(|d| d.to_string());
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO audit_events (id, at, event, actor_id, actor, target, address, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(event.id)
            .bind(event.at)
            .bind(&event.event)
            .bind(event.actor_id)
            .bind(&event.actor)
            .bind(&event.target)
            .bind(&event.address)
            .bind(detail)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// A page of the audit log, newest first.
    pub async fn list_audit_events(
        &self,
        query: &AuditQuery,
    ) -> Result<Page<AuditEvent, TimeKey>, StoreError> {
        let (after_at, after_id) = query.paging.after().copied().unzip();
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_events WHERE ($1 IS NULL OR event = $1) \
             AND ($2 IS NULL OR actor_id = $2) AND ($3 IS NULL OR at >= $3) \
             AND ($4 IS NULL OR at < $4) \
             AND ($5 IS NULL OR at < $5 OR (at = $5 AND id < $6)) \
             ORDER BY at DESC, id DESC LIMIT $7 OFFSET $8"
        );
        let rows: Vec<AuditRow> = on_pool!(self, pool => sqlx::query_as(&sql)
            .bind(&query.event)
            .bind(query.actor_id)
            .bind(query.since)
            .bind(query.until)
            .bind(after_at)
            .bind(after_id)
            .bind(query.paging.fetch())
            .bind(query.paging.offset())
            .fetch_all(pool)
            .await)?;
        let events = rows.into_iter().map(AuditEvent::from).collect();
        Ok(Page::cut(events, &query.paging, |e: &AuditEvent| {
            (e.at, e.id)
        }))
    }

    /// Deletes events older than `older_than` and all but the newest
    /// `keep` others; returns how many went.
    pub async fn prune_audit_events(
        &self,
        older_than: DateTime<Utc>,
        keep: u64,
    ) -> Result<u64, StoreError> {
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        let cutoff: Option<(DateTime<Utc>,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT at FROM audit_events ORDER BY at DESC, id DESC LIMIT 1 OFFSET $1")
            .bind(keep)
            .fetch_optional(pool)
            .await)?;
        // Past the count, everything at or before the `keep`+1-th newest goes.
        let cutoff = match cutoff {
            Some((at,)) => older_than.max(at + chrono::Duration::nanoseconds(1)),
            None => older_than,
        };
        let gone = on_pool!(self, pool => sqlx::query("DELETE FROM audit_events WHERE at < $1")
            .bind(cutoff)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(gone)
    }
}
