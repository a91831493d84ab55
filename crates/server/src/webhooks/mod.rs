//! Webhooks (docs/operations.md, "Webhooks"): events of the platform
//! (`room.started`, `participant.joined`, `recording.ready`, ...) posted as
//! signed JSON to the endpoints an admin registered.
//!
//! The path of an event: [`Webhooks::emit`] (never blocks, never fails the
//! caller) → a bounded channel → one writer task that puts it in the store's
//! outbox, one row per subscribed endpoint, in the order emitted → the
//! deliverer ([`deliver`]), which sends the head of each endpoint's queue,
//! retries with exponential back-off, and after the last attempt gives up
//! on the row and turns the endpoint off.

pub mod deliver;
pub mod sign;
pub mod target;

use std::sync::Arc;

use chrono::Utc;
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};
use uuid::Uuid;
use vtp_store::Store;

/// The events an endpoint may subscribe to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookEvent {
    RoomStarted,
    RoomEnded,
    ParticipantJoined,
    ParticipantLeft,
    RecordingReady,
    ExportReady,
    UserCreated,
}

impl WebhookEvent {
    pub const ALL: [WebhookEvent; 7] = [
        WebhookEvent::RoomStarted,
        WebhookEvent::RoomEnded,
        WebhookEvent::ParticipantJoined,
        WebhookEvent::ParticipantLeft,
        WebhookEvent::RecordingReady,
        WebhookEvent::ExportReady,
        WebhookEvent::UserCreated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::RoomStarted => "room.started",
            WebhookEvent::RoomEnded => "room.ended",
            WebhookEvent::ParticipantJoined => "participant.joined",
            WebhookEvent::ParticipantLeft => "participant.left",
            WebhookEvent::RecordingReady => "recording.ready",
            WebhookEvent::ExportReady => "export.ready",
            WebhookEvent::UserCreated => "user.created",
        }
    }

    pub fn parse(name: &str) -> Option<WebhookEvent> {
        WebhookEvent::ALL.into_iter().find(|e| e.as_str() == name)
    }
}

/// The largest body an event may have; a larger one is dropped (logged).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Events waiting to be written to the outbox; past it, new ones are dropped (logged).
const QUEUE: usize = 4096;

struct Queued {
    id: Uuid,
    event: WebhookEvent,
    body: String,
}

/// Where events are emitted. Cheap to clone; the default (tests of the
/// room logic) drops every event.
#[derive(Clone, Default)]
pub struct Webhooks {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    queue: mpsc::Sender<Queued>,
    /// Wakes the deliverer when the outbox got rows (or an endpoint was turned on).
    wake: Arc<Notify>,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks")
            .field("enabled", &self.inner.is_some())
            .finish()
    }
}

impl Webhooks {
    /// Starts the outbox writer and the deliverer on `store`.
    pub fn start(store: Store, config: deliver::DeliveryConfig) -> Webhooks {
        let (queue, mut rx) = mpsc::channel::<Queued>(QUEUE);
        let wake = Arc::new(Notify::new());
        let writer_store = store.clone();
        let writer_wake = wake.clone();
        tokio::spawn(async move {
            while let Some(item) = rx.recv().await {
                match writer_store
                    .enqueue_webhook_event(item.id, item.event.as_str(), &item.body, Utc::now())
                    .await
                {
                    Ok(0) => {}
                    Ok(_) => writer_wake.notify_one(),
                    Err(e) => tracing::error!(
                        error = %e, event = item.event.as_str(), event_id = %item.id,
                        "could not put a webhook event in the outbox"
                    ),
                }
            }
        });
        tokio::spawn(deliver::run(store, config, wake.clone()));
        Webhooks {
            inner: Some(Arc::new(Inner { queue, wake })),
        }
    }

    /// Emits an event with `data` (its body's `data` object); returns
    /// at once. The body is `{ id, type, createdAt, data }`.
    pub fn emit(&self, event: WebhookEvent, data: Value) {
        let Some(inner) = &self.inner else {
            return;
        };
        let id = Uuid::new_v4();
        let body = json!({
            "id": id,
            "type": event.as_str(),
            "createdAt": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "data": data,
        })
        .to_string();
        if body.len() > MAX_BODY_BYTES {
            tracing::error!(
                event = event.as_str(),
                bytes = body.len(),
                "webhook body too large: dropped"
            );
            return;
        }
        if inner.queue.try_send(Queued { id, event, body }).is_err() {
            tracing::warn!(event = event.as_str(), "webhook queue full: event dropped");
        }
    }

    /// Tells the deliverer to look at the outbox now (an endpoint was turned on).
    pub fn wake(&self) {
        if let Some(inner) = &self.inner {
            inner.wake.notify_one();
        }
    }
}
