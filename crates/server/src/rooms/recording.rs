//! Recording a live room: hosts start and stop it (`start-recording`,
//! `stop-recording`, or over HTTP); a room may start it by itself when its
//! session goes live (`autoRecord`). While it runs, every producer of the
//! room — those there at the start and those that come later — is recorded
//! into a track; it stops with the session at the latest. Everyone in the
//! room is told (`recording-started`, `recording-stopped`), and the store
//! keeps its state (`recording` → `ready` | `failed`).

use std::sync::Arc;

use chrono::Utc;
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;
use vtp_store::{FinishedRecording, NewRecording, RecordingState, RoomRole};

use super::{LiveRoom, Peer, ProducerInfo, RoomHub, SignalCode, SignalError};
use crate::recording::{ActiveRecording, RecordingError, TrackOwner};

/// The answer to `start-recording` and `stop-recording`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordingAck {
    pub recording_id: Uuid,
}

impl From<RecordingError> for SignalError {
    fn from(err: RecordingError) -> Self {
        match err {
            RecordingError::DiskFull { .. } => {
                SignalError::new(SignalCode::Conflict, err.to_string())
            }
            RecordingError::Sfu(e) => e.into(),
            RecordingError::Unsupported(m) => SignalError::bad_request(m),
            RecordingError::Io(e) => SignalError::internal("recording files", e),
        }
    }
}

impl RoomHub {
    /// `start-recording` by a host of the room.
    pub async fn start_recording(
        &self,
        conn: &str,
        room_id: &str,
    ) -> Result<RecordingAck, SignalError> {
        self.with_member(conn, room_id, async |hub, _, slot, peer_id| {
            let live = slot.live_mut(room_id)?;
            let caller = live
                .peer(&peer_id)
                .ok_or_else(|| SignalError::not_in_room(room_id))?;
            if caller.role != RoomRole::Host {
                return Err(SignalError::forbidden("only hosts may record the room"));
            }
            let started_by = Some(caller.user_id);
            hub.start_recording_in(live, started_by).await
        })
        .await
    }

    /// `stop-recording` by a host of the room.
    pub async fn stop_recording(
        &self,
        conn: &str,
        room_id: &str,
    ) -> Result<RecordingAck, SignalError> {
        self.with_member(conn, room_id, async |hub, _, slot, peer_id| {
            let live = slot.live_mut(room_id)?;
            let is_host = live.peer(&peer_id).map(|p| p.role) == Some(RoomRole::Host);
            if !is_host {
                return Err(SignalError::forbidden("only hosts may stop the recording"));
            }
            hub.stop_recording_in(live).await
        })
        .await
    }

    /// Starts or stops the recording of a live room over HTTP; the caller
    /// was checked to be a host of the room. `start` = false stops.
    pub async fn set_recording_by(
        &self,
        room_id: &str,
        user_id: Uuid,
        start: bool,
    ) -> Result<RecordingAck, SignalError> {
        let arc = self
            .existing_slot(room_id)
            .ok_or_else(|| SignalError::conflict("the room is not live: nobody is in it"))?;
        let mut slot = arc.lock().await;
        let live = slot
            .live
            .as_mut()
            .ok_or_else(|| SignalError::conflict("the room is not live: nobody is in it"))?;
        if start {
            self.start_recording_in(live, Some(user_id)).await
        } else {
            self.stop_recording_in(live).await
        }
    }

    /// Starts recording every producer of the room.
    pub(crate) async fn start_recording_in(
        &self,
        live: &mut LiveRoom,
        started_by: Option<Uuid>,
    ) -> Result<RecordingAck, SignalError> {
        if let Some(active) = &live.recording {
            return Err(SignalError::conflict(format!(
                "the room is already being recorded ({})",
                active.id
            )));
        }
        let now = Utc::now();
        let row = self
            .store
            .create_recording(
                &NewRecording {
                    room_id: live.room.id.clone(),
                    session_id: live.session_id,
                    started_by,
                },
                now,
            )
            .await?;
        let mut active = match ActiveRecording::create(
            &self.config.recording,
            row.id,
            &live.room.id,
            live.session_id,
            now,
        ) {
            Ok(active) => active,
            Err(e) => {
                self.finish_row(
                    row.id,
                    RecordingState::Failed,
                    0,
                    0,
                    None,
                    Some(&e.to_string()),
                )
                .await;
                return Err(e.into());
            }
        };
        for peer in &live.peers {
            for producer in &peer.producers {
                let owner = owner_of(peer, producer);
                if let Err(e) = active
                    .add_track(&self.media, &live.router_id, &producer.producer_id, owner)
                    .await
                {
                    tracing::warn!(error = %e, producer_id = %producer.producer_id, "producer not recorded");
                }
            }
        }
        let id = active.id;
        live.recording = Some(active);
        tracing::info!(room_id = %live.room.id, recording_id = %id, "recording started");
        self.publish(
            live.conns_except(None),
            "recording-started",
            json!({ "recordingId": id }),
        );
        Ok(RecordingAck { recording_id: id })
    }

    /// Stops the room's recording and finalizes it.
    pub(crate) async fn stop_recording_in(
        &self,
        live: &mut LiveRoom,
    ) -> Result<RecordingAck, SignalError> {
        let active = live
            .recording
            .take()
            .ok_or_else(|| SignalError::conflict("the room is not being recorded"))?;
        let id = self.finish_recording(active, &live.router_id).await;
        self.publish(
            live.conns_except(None),
            "recording-stopped",
            json!({ "recordingId": id }),
        );
        Ok(RecordingAck { recording_id: id })
    }

    /// Finalizes a recording and records its outcome in the store.
    pub(crate) async fn finish_recording(&self, active: ActiveRecording, router_id: &str) -> Uuid {
        let id = active.id;
        let summary = active.stop(&self.media, router_id).await;
        let state = if summary.error.is_none() {
            RecordingState::Ready
        } else {
            RecordingState::Failed
        };
        let manifest = serde_json::to_value(&summary.manifest).ok();
        self.finish_row(
            id,
            state,
            summary.bytes,
            u64::try_from(summary.duration.as_millis()).unwrap_or(u64::MAX),
            manifest,
            summary.error.as_deref(),
        )
        .await;
        tracing::info!(recording_id = %id, state = state.as_str(), bytes = summary.bytes, "recording finished");
        if state == RecordingState::Ready {
            self.config().recording.ready.notify();
            self.config().webhooks.emit(
                crate::webhooks::WebhookEvent::RecordingReady,
                serde_json::json!({
                    "recordingId": id,
                    "bytes": summary.bytes,
                    "durationMs": u64::try_from(summary.duration.as_millis()).unwrap_or(u64::MAX),
                }),
            );
        }
        id
    }

    async fn finish_row(
        &self,
        id: Uuid,
        state: RecordingState,
        bytes: u64,
        duration_ms: u64,
        manifest: Option<serde_json::Value>,
        error: Option<&str>,
    ) {
        let outcome = FinishedRecording {
            stopped_at: Utc::now(),
            state,
            bytes,
            duration_ms,
            manifest,
            error: error.map(str::to_owned),
        };
        if let Err(e) = self.store.finish_recording(id, &outcome).await {
            tracing::error!(error = %e, recording_id = %id, "could not record the recording's outcome");
        }
    }

    /// A new producer in a recorded room gets its track.
    pub(crate) async fn record_new_producer(
        &self,
        live: &mut LiveRoom,
        peer_id: &str,
        producer_id: &str,
    ) {
        let Some(peer) = live.peer(peer_id) else {
            return;
        };
        let Some(info) = peer.producers.iter().find(|p| p.producer_id == producer_id) else {
            return;
        };
        let owner = owner_of(peer, info);
        let router_id = live.router_id.clone();
        let media: Arc<_> = self.media.clone();
        if let Some(active) = live.recording.as_mut()
            && let Err(e) = active
                .add_track(&media, &router_id, producer_id, owner)
                .await
        {
            tracing::warn!(error = %e, producer_id, "producer not recorded");
        }
    }

    /// A recorded producer closed: its track ends.
    pub(crate) async fn end_recorded_producer(&self, live: &mut LiveRoom, producer_id: &str) {
        if let Some(active) = live.recording.as_mut() {
            active.end_track(producer_id).await;
        }
    }
}

/// Who a recorded track belongs to, for the manifest.
fn owner_of(peer: &Peer, producer: &ProducerInfo) -> TrackOwner {
    TrackOwner {
        peer_id: peer.peer_id.clone(),
        user_id: peer.user_id.to_string(),
        source: source_of(&producer.app_data, &producer.kind),
    }
}

/// What the client said the producer is; its kind otherwise.
fn source_of(app_data: &serde_json::Value, kind: &str) -> String {
    app_data
        .get("source")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| {
            if kind == "audio" {
                "mic".into()
            } else {
                "camera".into()
            }
        })
}
