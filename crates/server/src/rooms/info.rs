//! `get-room-info`: the room's state (docs/protocol.md), plus VTP's media
//! statistics: each producer's `stats` and the caller's own `consumers`.
//!
//! Statistics come only from the SFU the room's session is on (one
//! `SfuControl::room` call, made after the room's lock is released and
//! bounded by [`SFU_STATS_TIMEOUT`]). When that SFU cannot be reached the
//! answer is given without them: producers have no `stats`, and the
//! caller's consumers carry only `{ consumerId, producerId, kind }`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;
use vtp_sfu::engine::{LayersSnapshot, ProducerSnapshot, RouterSnapshot, StreamStats};

use super::{ActiveSpeakerView, LiveRoom, PeerView, ProducerInfo, RoomHub, SignalError};

/// How long `get-room-info` waits for the SFU's statistics.
pub const SFU_STATS_TIMEOUT: Duration = Duration::from_secs(2);

/// The answer to `get-room-info`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomInfo {
    pub room_id: String,
    pub title: String,
    pub status: vtp_store::RoomStatus,
    pub created_at: DateTime<Utc>,
    pub peers: Vec<PeerView>,
    pub producers: Vec<RoomProducer>,
    pub recording: bool,
    pub session_id: Option<Uuid>,
    /// The caller's own consumers (empty for someone not in the room).
    pub consumers: Vec<ConsumerView>,
    /// Who speaks now (see `LiveRoom::active_speaker`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_speaker: Option<ActiveSpeakerView>,
}

/// A `ProducerInfo` with its statistics, when the SFU gave them.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomProducer {
    #[serde(flatten)]
    pub info: ProducerInfo,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<ProducerStatsView>,
}

/// A producer's statistics over its encodings.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProducerStatsView {
    /// The lowest score of its active encodings (0 when none is active).
    pub score: u8,
    /// Sum over its encodings, bits per second.
    pub bitrate: u64,
    /// Sum over its encodings.
    pub packets_lost: u64,
    /// The highest of its active encodings.
    pub fraction_lost: f64,
    /// The highest of its active encodings, milliseconds.
    pub jitter_ms: f64,
    /// Each simulcast encoding (absent for a single stream).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<LayerStatsView>,
}

/// One simulcast encoding of a producer.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LayerStatsView {
    /// Its index: the `spatialLayer` that selects it.
    pub spatial_layer: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rid: Option<String>,
    pub active: bool,
    pub bitrate: u64,
    pub score: u8,
}

/// One of the caller's consumers. Everything but the ids and `kind` comes
/// from the SFU and is absent when it could not be reached.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerView {
    pub consumer_id: String,
    pub producer_id: String,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_layers: Option<LayersSnapshot>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_layers: Option<LayersSnapshot>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<StreamStats>,
}

impl ProducerStatsView {
    fn of(p: &ProducerSnapshot) -> ProducerStatsView {
        let active: Vec<&StreamStats> = p
            .layers
            .iter()
            .filter(|l| l.active)
            .map(|l| &l.stats)
            .collect();
        let max = |f: fn(&StreamStats) -> f64| active.iter().map(|s| f(s)).fold(0.0, f64::max);
        ProducerStatsView {
            score: active.iter().map(|s| s.score).min().unwrap_or(0),
            bitrate: p.layers.iter().map(|l| l.stats.bitrate).sum(),
            packets_lost: p.layers.iter().map(|l| l.stats.packets_lost).sum(),
            fraction_lost: max(|s| s.fraction_lost),
            jitter_ms: max(|s| s.jitter_ms),
            layers: if p.layers.len() > 1 {
                p.layers
                    .iter()
                    .enumerate()
                    .map(|(i, l)| LayerStatsView {
                        spatial_layer: i,
                        rid: l.rid.clone(),
                        active: l.active,
                        bitrate: l.stats.bitrate,
                        score: l.stats.score,
                    })
                    .collect()
            } else {
                Vec::new()
            },
        }
    }
}

/// What `get-room-info` needs from the live room, taken under its lock.
struct LiveView {
    peers: Vec<PeerView>,
    session_id: Uuid,
    recording: bool,
    active_speaker: Option<ActiveSpeakerView>,
    router_id: String,
    /// The caller's consumers: (consumer id, producer id).
    consumers: Vec<(String, String)>,
}

impl LiveView {
    fn of(live: &LiveRoom, conn: &str) -> LiveView {
        LiveView {
            peers: live.views(),
            session_id: live.session_id,
            recording: live.recording.is_some(),
            active_speaker: live.current_speaker(),
            router_id: live.router_id.clone(),
            consumers: live
                .peer_of_conn(conn)
                .map(|p| {
                    p.consumers
                        .iter()
                        .map(|c| (c.id.clone(), c.producer_id.clone()))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

impl RoomHub {
    /// What `get-participants` answers: the peers of the room `conn` is
    /// in (`not_found` for a connection that has not joined it).
    pub async fn room_peers(
        &self,
        conn: &str,
        room_id: &str,
    ) -> Result<Vec<PeerView>, SignalError> {
        self.with_member(conn, room_id, async |_, _, slot, _| {
            Ok(slot.live(room_id)?.views())
        })
        .await
    }

    async fn stored_room(&self, room_id: &str) -> Result<vtp_store::Room, SignalError> {
        match self.store.room_by_id(room_id).await {
            Ok(room) => Ok(room),
            Err(vtp_store::StoreError::NotFound) => {
                Err(SignalError::not_found(format!("no room {room_id:?}")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// What `get-room-info` answers to connection `conn`, which must be in
    /// the room (`not_found` otherwise, as for every room request).
    pub async fn room_info(&self, conn: &str, room_id: &str) -> Result<RoomInfo, SignalError> {
        let live = self
            .with_member(conn, room_id, async |_, _, slot, _| {
                Ok(Some(LiveView::of(slot.live(room_id)?, conn)))
            })
            .await?;
        let room = self.stored_room(room_id).await?;
        let snapshot = match &live {
            Some(live) => self.media_snapshot(&live.router_id).await,
            None => None,
        };
        let (peers, session_id, recording, active_speaker, own) = match live {
            Some(l) => (
                l.peers,
                Some(l.session_id),
                l.recording,
                l.active_speaker,
                l.consumers,
            ),
            None => (Vec::new(), None, false, None, Vec::new()),
        };
        let producers: Vec<RoomProducer> = peers
            .iter()
            .flat_map(|p| p.producers.iter().cloned())
            .map(|info| {
                let stats = snapshot
                    .as_ref()
                    .and_then(|s| s.producers.iter().find(|p| p.id == info.producer_id))
                    .map(ProducerStatsView::of);
                RoomProducer { info, stats }
            })
            .collect();
        let consumers = own
            .into_iter()
            .filter_map(|(consumer_id, producer_id)| {
                let kind = producers
                    .iter()
                    .find(|p| p.info.producer_id == producer_id)?
                    .info
                    .kind
                    .clone();
                let snap = snapshot
                    .as_ref()
                    .and_then(|s| s.consumers.iter().find(|c| c.id == consumer_id));
                Some(ConsumerView {
                    consumer_id,
                    producer_id,
                    kind,
                    paused: snap.map(|c| c.paused),
                    preferred_layers: snap.map(|c| c.preferred_layers),
                    current_layers: snap.and_then(|c| c.current_layers),
                    stats: snap.map(|c| c.stats.clone()),
                })
            })
            .collect();
        Ok(RoomInfo {
            room_id: room.id,
            title: room.title,
            status: room.status,
            created_at: room.created_at,
            peers,
            producers,
            recording,
            session_id,
            active_speaker,
            consumers,
        })
    }

    /// The SFU's view of a session's router, or `None` (logged) when it
    /// cannot be had in time.
    pub(super) async fn media_snapshot(&self, router_id: &str) -> Option<RouterSnapshot> {
        match tokio::time::timeout(SFU_STATS_TIMEOUT, self.media.room(router_id)).await {
            Ok(Ok(snapshot)) => Some(snapshot),
            Ok(Err(e)) => {
                tracing::warn!(router_id, error = %e, "room statistics unavailable");
                None
            }
            Err(_) => {
                tracing::warn!(router_id, "room statistics timed out");
                None
            }
        }
    }
}
