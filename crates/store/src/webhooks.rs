//! Webhooks: the endpoints an admin registered and the outbox of their
//! deliveries. An event becomes one outbox row per subscribed endpoint in
//! the same statement, so nothing is lost if the process stops before the
//! request goes out; rows of one endpoint are delivered in id order, the
//! next only once the one before is delivered (or given up on).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::pool::on_pool;
use crate::{Page, Paging, Store, StoreError};

/// A registered endpoint.
#[derive(Clone, PartialEq)]
pub struct WebhookEndpoint {
    pub id: Uuid,
    pub url: String,
    /// The events it receives.
    pub events: Vec<String>,
    /// The HMAC key of its signatures; shown to the admin once.
    pub secret: String,
    pub enabled: bool,
    /// Why it was turned off (persistent failure, by an admin).
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for WebhookEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookEndpoint")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("secret", &"***")
            .field("enabled", &self.enabled)
            .field("disabled_reason", &self.disabled_reason)
            .finish()
    }
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Not delivered yet (waiting for its turn or its next attempt).
    Pending,
    Delivered,
    /// Given up after the last attempt.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "pending" => Ok(DeliveryState::Pending),
            "delivered" => Ok(DeliveryState::Delivered),
            "failed" => Ok(DeliveryState::Failed),
            other => Err(StoreError::Corrupt(format!(
                "unknown delivery state {other:?}"
            ))),
        }
    }
}

/// One row of the outbox: an event for one endpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookDelivery {
    /// Increasing: the order of delivery per endpoint.
    pub id: i64,
    pub endpoint_id: Uuid,
    /// The same for every endpoint the event went to.
    pub event_id: Uuid,
    pub event: String,
    /// The JSON body, as signed and sent.
    pub body: String,
    pub state: DeliveryState,
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    /// The HTTP status of the last attempt, if one answered.
    pub last_status: Option<u16>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A delivery due now, with where it goes.
#[derive(Clone, Debug)]
pub struct DueDelivery {
    pub delivery: WebhookDelivery,
    pub url: String,
    /// Never logged.
    pub secret: String,
}

/// What an attempt came to.
#[derive(Clone, Debug)]
pub enum AttemptOutcome {
    Delivered {
        status: u16,
    },
    /// Try again at `retry_at`.
    Retry {
        status: Option<u16>,
        error: String,
        retry_at: DateTime<Utc>,
    },
    /// The last attempt: the delivery fails and the endpoint is turned off.
    GiveUp {
        status: Option<u16>,
        error: String,
    },
}

/// The key of the delivery log: newest first by creation time, then id.
pub type DeliveryKey = (DateTime<Utc>, i64);

#[derive(sqlx::FromRow)]
struct EndpointRow {
    id: Uuid,
    url: String,
    events: String,
    secret: String,
    enabled: bool,
    disabled_reason: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<EndpointRow> for WebhookEndpoint {
    fn from(r: EndpointRow) -> Self {
        WebhookEndpoint {
            id: r.id,
            url: r.url,
            events: r
                .events
                .split(',')
                .filter(|e| !e.is_empty())
                .map(str::to_string)
                .collect(),
            secret: r.secret,
            enabled: r.enabled,
            disabled_reason: r.disabled_reason,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: i64,
    endpoint_id: Uuid,
    event_id: Uuid,
    event: String,
    body: String,
    state: String,
    attempts: i32,
    next_attempt_at: DateTime<Utc>,
    last_status: Option<i32>,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

impl TryFrom<DeliveryRow> for WebhookDelivery {
    type Error = StoreError;
    fn try_from(r: DeliveryRow) -> Result<Self, StoreError> {
        Ok(WebhookDelivery {
            id: r.id,
            endpoint_id: r.endpoint_id,
            event_id: r.event_id,
            event: r.event,
            body: r.body,
            state: DeliveryState::parse(&r.state)?,
            attempts: u32::try_from(r.attempts).unwrap_or(0),
            next_attempt_at: r.next_attempt_at,
            last_status: r.last_status.and_then(|s| u16::try_from(s).ok()),
            last_error: r.last_error,
            created_at: r.created_at,
            finished_at: r.finished_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct DueRow {
    #[sqlx(flatten)]
    delivery: DeliveryRow,
    url: String,
    secret: String,
}

const ENDPOINT_COLUMNS: &str =
    "id, url, events, secret, enabled, disabled_reason, created_at, updated_at";
const DELIVERY_COLUMNS: &str = "d.id, d.endpoint_id, d.event_id, d.event, d.body, d.state, \
     d.attempts, d.next_attempt_at, d.last_status, d.last_error, d.created_at, d.finished_at";

fn events_column(events: &[String]) -> String {
    format!(",{},", events.join(","))
}

impl Store {
    /// Registers an endpoint, unless `max` are registered already
    /// ([`StoreError::Conflict`]).
    pub async fn create_webhook_endpoint(
        &self,
        url: &str,
        events: &[String],
        secret: &str,
        max: u32,
        now: DateTime<Utc>,
    ) -> Result<WebhookEndpoint, StoreError> {
        let sql = format!(
            "INSERT INTO webhook_endpoints ({ENDPOINT_COLUMNS}) \
             SELECT $1, $2, $3, $4, TRUE, NULL, $5, $5 \
             WHERE (SELECT COUNT(*) FROM webhook_endpoints) < $6 RETURNING {ENDPOINT_COLUMNS}"
        );
        let row: Option<EndpointRow> = on_pool!(self, pool => sqlx::query_as(&sql)
            .bind(Uuid::new_v4())
            .bind(url)
            .bind(events_column(events))
            .bind(secret)
            .bind(now)
            .bind(i64::from(max))
            .fetch_optional(pool)
            .await)?;
        row.map(WebhookEndpoint::from).ok_or_else(|| {
            StoreError::Conflict(format!("at most {max} webhook endpoints: delete one first"))
        })
    }

    /// Every endpoint, oldest first (there are few: their number is capped).
    pub async fn list_webhook_endpoints(&self) -> Result<Vec<WebhookEndpoint>, StoreError> {
        let sql =
            format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY created_at, id");
        let rows: Vec<EndpointRow> =
            on_pool!(self, pool => sqlx::query_as(&sql).fetch_all(pool).await)?;
        Ok(rows.into_iter().map(WebhookEndpoint::from).collect())
    }

    pub async fn webhook_endpoint(&self, id: Uuid) -> Result<WebhookEndpoint, StoreError> {
        let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1");
        let row: EndpointRow =
            on_pool!(self, pool => sqlx::query_as(&sql).bind(id).fetch_one(pool).await)?;
        Ok(row.into())
    }

    /// Turns an endpoint on (its pending deliveries resume) or off, with a reason.
    pub async fn set_webhook_endpoint_enabled(
        &self,
        id: Uuid,
        enabled: bool,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<WebhookEndpoint, StoreError> {
        let sql = format!(
            "UPDATE webhook_endpoints SET enabled = $2, disabled_reason = $3, updated_at = $4 \
             WHERE id = $1 RETURNING {ENDPOINT_COLUMNS}"
        );
        let row: EndpointRow = on_pool!(self, pool => sqlx::query_as(&sql)
            .bind(id)
            .bind(enabled)
            .bind(if enabled { None } else { reason })
            .bind(now)
            .fetch_one(pool)
            .await)?;
        Ok(row.into())
    }

    /// Deletes an endpoint and its deliveries.
    pub async fn delete_webhook_endpoint(&self, id: Uuid) -> Result<(), StoreError> {
        let done = on_pool!(self, pool => sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Puts an event in the outbox of every enabled endpoint that takes it;
    /// returns how many rows that made.
    pub async fn enqueue_webhook_event(
        &self,
        event_id: Uuid,
        event: &str,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let done = on_pool!(self, pool => sqlx::query(
            "INSERT INTO webhook_deliveries (endpoint_id, event_id, event, body, state, attempts, \
             next_attempt_at, created_at) \
             SELECT id, $1, $2, $3, 'pending', 0, $4, $4 FROM webhook_endpoints \
             WHERE enabled AND events LIKE '%,' || $2 || ',%' ORDER BY created_at, id")
            .bind(event_id)
            .bind(event)
            .bind(body)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done)
    }

    /// The head of each enabled endpoint's queue, if it is due by `now`:
    /// at most one per endpoint, so that each endpoint gets its events in order.
    pub async fn due_webhook_deliveries(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS}, e.url, e.secret FROM webhook_deliveries d \
             JOIN webhook_endpoints e ON e.id = d.endpoint_id \
             WHERE e.enabled AND d.state = 'pending' AND d.next_attempt_at <= $1 \
             AND d.id = (SELECT MIN(h.id) FROM webhook_deliveries h \
                         WHERE h.endpoint_id = d.endpoint_id AND h.state = 'pending') \
             ORDER BY d.id"
        );
        let rows: Vec<DueRow> =
            on_pool!(self, pool => sqlx::query_as(&sql).bind(now).fetch_all(pool).await)?;
        rows.into_iter()
            .map(|r| {
                Ok(DueDelivery {
                    delivery: r.delivery.try_into()?,
                    url: r.url,
                    secret: r.secret,
                })
            })
            .collect()
    }

    /// When the next head of an enabled endpoint's queue falls due, if any.
    pub async fn next_webhook_attempt(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let next: Option<(Option<DateTime<Utc>>,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT MIN(d.next_attempt_at) FROM webhook_deliveries d \
             JOIN webhook_endpoints e ON e.id = d.endpoint_id \
             WHERE e.enabled AND d.state = 'pending' \
             AND d.id = (SELECT MIN(h.id) FROM webhook_deliveries h \
                         WHERE h.endpoint_id = d.endpoint_id AND h.state = 'pending')")
            .fetch_optional(pool)
            .await)?;
        Ok(next.and_then(|(at,)| at))
    }

    /// Records an attempt. Giving up fails the delivery and turns its
    /// endpoint off (in one transaction), so that it stops piling up.
    pub async fn record_webhook_attempt(
        &self,
        delivery_id: i64,
        outcome: &AttemptOutcome,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (state, status, error, next) = match outcome {
            AttemptOutcome::Delivered { status } => {
                (DeliveryState::Delivered, Some(*status), None, now)
            }
            AttemptOutcome::Retry {
                status,
                error,
                retry_at,
            } => (
                DeliveryState::Pending,
                *status,
                Some(error.as_str()),
                *retry_at,
            ),
            AttemptOutcome::GiveUp { status, error } => {
                (DeliveryState::Failed, *status, Some(error.as_str()), now)
            }
        };
        let finished = (state != DeliveryState::Pending).then_some(now);
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let endpoint: Option<(Uuid,)> = sqlx::query_as(
                "UPDATE webhook_deliveries SET state = $2, attempts = attempts + 1, \
                 last_status = $3, last_error = $4, next_attempt_at = $5, finished_at = $6 \
                 WHERE id = $1 RETURNING endpoint_id")
                .bind(delivery_id)
                .bind(state.as_str())
                .bind(status.map(i32::from))
                .bind(error)
                .bind(next)
                .bind(finished)
                .fetch_optional(&mut *tx)
                .await?;
            if let (Some((endpoint_id,)), DeliveryState::Failed) = (endpoint, state) {
                sqlx::query(
                    "UPDATE webhook_endpoints SET enabled = FALSE, disabled_reason = $2, \
                     updated_at = $3 WHERE id = $1")
                    .bind(endpoint_id)
                    .bind(format!("turned off after delivery {delivery_id} failed: {}",
                        error.unwrap_or("")))
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok::<(), sqlx::Error>(())
        })?;
        Ok(())
    }

    /// An endpoint's delivery log, newest first.
    pub async fn list_webhook_deliveries(
        &self,
        endpoint_id: Uuid,
        paging: &Paging<DeliveryKey>,
    ) -> Result<Page<WebhookDelivery, DeliveryKey>, StoreError> {
        let (after_at, after_id) = paging.after().copied().unzip();
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d WHERE d.endpoint_id = $1 \
             AND ($2 IS NULL OR d.created_at < $2 OR (d.created_at = $2 AND d.id < $3)) \
             ORDER BY d.created_at DESC, d.id DESC LIMIT $4 OFFSET $5"
        );
        let rows: Vec<DeliveryRow> = on_pool!(self, pool => sqlx::query_as(&sql)
            .bind(endpoint_id)
            .bind(after_at)
            .bind(after_id)
            .bind(paging.fetch())
            .bind(paging.offset())
            .fetch_all(pool)
            .await)?;
        let items = rows
            .into_iter()
            .map(WebhookDelivery::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::cut(items, paging, |d: &WebhookDelivery| {
            (d.created_at, d.id)
        }))
    }

    /// Deletes finished deliveries older than `older_than`; returns how many went.
    pub async fn prune_webhook_deliveries(
        &self,
        older_than: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let gone = on_pool!(self, pool => sqlx::query(
            "DELETE FROM webhook_deliveries WHERE state <> 'pending' AND created_at < $1")
            .bind(older_than)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(gone)
    }
}
