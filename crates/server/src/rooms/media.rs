//! The media side of a room: each peer's transports, producers and
//! consumers on the SFU, who may publish what, and the notifications that
//! follow (`create-transport` … `set-preferred-layers` in docs/protocol.md).
//!
//! The SFU knows transports, producers and consumers by opaque ids; this
//! layer knows which peer owns each, and refuses to let a peer touch what is
//! not its own.

use serde::Serialize;
use serde_json::{Value, json};
use vtp_sfu::engine::EngineEvent;
use vtp_sfu::rtp::MediaKind;
use vtp_sfu_driver::{
    Consume, CreateTransport, DriverEvent, PreferredLayers, Produce, SfuError, SfuErrorCode,
};
use vtp_store::RoomRole;

use super::limits::{self, Source};
use super::{ActiveSpeakerView, LiveRoom, Peer, ProducerInfo, RoomHub, SignalCode, SignalError};

/// Transports one peer may hold (a send and a receive one, plus spares
/// for reconnection).
pub const MAX_TRANSPORTS_PER_PEER: usize = 4;
/// Producers one peer may hold (camera, microphone, screen, screen audio…).
pub const MAX_PRODUCERS_PER_PEER: usize = 8;

/// Which way a transport carries media, from the peer's point of view.
pub use vtp_sfu::engine::TransportDirection as Direction;

/// A transport a peer created.
#[derive(Clone, Debug)]
pub struct PeerTransport {
    pub id: String,
    pub direction: Direction,
}

/// A consumer a peer created, and the producer it receives.
#[derive(Clone, Debug)]
pub struct PeerConsumer {
    pub id: String,
    pub producer_id: String,
}

impl From<SfuError> for SignalError {
    fn from(err: SfuError) -> Self {
        let code = match err.code {
            SfuErrorCode::NotFound => SignalCode::NotFound,
            SfuErrorCode::Conflict => SignalCode::Conflict,
            SfuErrorCode::BadRequest => SignalCode::BadRequest,
            SfuErrorCode::RateLimited => SignalCode::RateLimited,
            SfuErrorCode::LimitReached => SignalCode::LimitReached,
            SfuErrorCode::Forbidden => SignalCode::Forbidden,
            SfuErrorCode::Unauthorized | SfuErrorCode::Unavailable | SfuErrorCode::Internal => {
                return SignalError::internal("sfu", err);
            }
        };
        SignalError::new(code, err.message)
    }
}

/// The answer to `restart-ice`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IceRestarted {
    pub ice_parameters: vtp_sfu::engine::IceParameters,
}

/// The answer to `produce`.
#[derive(Serialize)]
pub struct Produced {
    pub id: String,
}

/// The caller's peer in a live room.
fn caller<'a>(
    slot: &'a super::Slot,
    peer_id: &str,
    room_id: &str,
) -> Result<&'a Peer, SignalError> {
    slot.live
        .as_ref()
        .and_then(|l| l.peer(peer_id))
        .ok_or_else(|| SignalError::not_in_room(room_id))
}

impl Peer {
    fn require_transport(&self, transport_id: &str) -> Result<&PeerTransport, SignalError> {
        self.transports
            .iter()
            .find(|t| t.id == transport_id)
            .ok_or_else(|| {
                SignalError::not_found(format!("you have no transport {transport_id:?}"))
            })
    }

    fn require_consumer(&self, consumer_id: &str) -> Result<&PeerConsumer, SignalError> {
        self.consumers
            .iter()
            .find(|c| c.id == consumer_id)
            .ok_or_else(|| SignalError::not_found(format!("you have no consumer {consumer_id:?}")))
    }
}

fn own_transport<'a>(
    peer: &'a Peer,
    transport_id: &str,
    direction: Direction,
) -> Result<&'a PeerTransport, SignalError> {
    let transport = peer.require_transport(transport_id)?;
    if transport.direction != direction {
        return Err(SignalError::bad_request(format!(
            "transport {transport_id:?} is a {:?} transport",
            transport.direction
        )));
    }
    Ok(transport)
}

/// Whether a peer of `role` may publish a `source` now, given the room's
/// settings. The label is checked against the kind (`limits::app_data`),
/// and a student's video is counted, not just labelled: one camera while
/// `allowStudentVideo`, one screen while `allowStudentScreen`, so with
/// cameras off a student has at most the one video stream the screen
/// permission grants, whatever it is labelled.
fn may_produce(live: &LiveRoom, peer: &Peer, source: Source) -> Result<(), SignalError> {
    if peer.role != RoomRole::Participant || source == Source::Mic {
        return Ok(());
    }
    let settings = &live.room.settings;
    let (allowed, what) = match source {
        Source::Screen => (settings.allow_student_screen, "share their screen"),
        _ => (settings.allow_student_video, "publish video"),
    };
    if !allowed {
        return Err(SignalError::forbidden(format!(
            "students may not {what} in this room"
        )));
    }
    if peer.producers.iter().any(|p| p.source == source) {
        return Err(SignalError::forbidden(format!(
            "students may {what} once: close the other {} first",
            if source == Source::Screen {
                "screen share"
            } else {
                "camera"
            }
        )));
    }
    Ok(())
}

impl RoomHub {
    /// A `create-transport` answer: the SFU's transport parameters, plus
    /// `iceServers` with `peer_id`'s own TURN credential when the server
    /// has TURN relays.
    pub fn transport_answer(
        &self,
        info: impl serde::Serialize,
        peer_id: &str,
    ) -> Result<Value, SignalError> {
        let mut answer =
            serde_json::to_value(info).map_err(|e| SignalError::internal("transport answer", e))?;
        if let (Some(turn), Some(fields)) = (&self.config.turn, answer.as_object_mut()) {
            let server = turn.ice_server(peer_id, std::time::SystemTime::now());
            fields.insert("iceServers".into(), serde_json::json!([server]));
        }
        Ok(answer)
    }

    /// `create-transport`: a WebRTC transport on the room's router.
    pub async fn create_transport(
        &self,
        conn: &str,
        room_id: &str,
        direction: Direction,
        sctp: bool,
    ) -> Result<Value, SignalError> {
        self.with_member(conn, room_id, async |hub, _, slot, peer_id| {
            let live = slot.live_mut(room_id)?;
            let router_id = live.router_id.clone();
            let peer = live
                .peer_mut(&peer_id)
                .ok_or_else(|| SignalError::not_in_room(room_id))?;
            if peer.transports.len() >= MAX_TRANSPORTS_PER_PEER {
                return Err(SignalError::forbidden(format!(
                    "at most {MAX_TRANSPORTS_PER_PEER} transports per peer"
                )));
            }
            let request = CreateTransport {
                peer_id: peer_id.clone(),
                direction,
                enable_sctp: sctp,
            };
            let info = hub.media.create_transport(&router_id, request).await?;
            peer.transports.push(PeerTransport {
                id: info.id.clone(),
                direction,
            });
            hub.transport_answer(info, &peer_id)
        })
        .await
    }

    /// `restart-ice`: new ICE credentials for one of the caller's
    /// transports (after a network change); DTLS and media carry on.
    pub async fn restart_ice(
        &self,
        conn: &str,
        room_id: &str,
        transport_id: &str,
    ) -> Result<IceRestarted, SignalError> {
        self.with_member(conn, room_id, async |hub, _, slot, peer_id| {
            caller(slot, &peer_id, room_id)?.require_transport(transport_id)?;
            let router_id = slot.live_mut(room_id)?.router_id.clone();
            let ice_parameters = hub.media.restart_ice(&router_id, transport_id).await?;
            Ok(IceRestarted { ice_parameters })
        })
        .await
    }

    /// `connect-transport`: the peer's DTLS parameters.
    pub async fn connect_transport(
        &self,
        conn: &str,
        room_id: &str,
        transport_id: &str,
        dtls: Value,
    ) -> Result<(), SignalError> {
        self.with_member(conn, room_id, async |hub, _, slot, peer_id| {
            let peer = caller(slot, &peer_id, room_id)?;
            peer.require_transport(transport_id)?;
            let router_id = slot.live_mut(room_id)?.router_id.clone();
            Ok(hub
                .media
                .connect_transport(&router_id, transport_id, dtls)
                .await?)
        })
        .await
    }

    /// `produce`: starts receiving a track from the peer; the others get
    /// `new-producer`.
    pub async fn produce(
        &self,
        conn: &str,
        room_id: &str,
        transport_id: &str,
        kind: MediaKind,
        rtp_parameters: Value,
        app_data: Value,
    ) -> Result<Produced, SignalError> {
        self.with_member(conn, room_id, async |hub, _, slot, peer_id| {
            let source = limits::app_data(&app_data, kind)?;
            let live = slot.live_mut(room_id)?;
            let peer = live
                .peer(&peer_id)
                .ok_or_else(|| SignalError::not_in_room(room_id))?;
            may_produce(live, peer, source)?;
            own_transport(peer, transport_id, Direction::Send)?;
            if peer.producers.len() >= MAX_PRODUCERS_PER_PEER {
                return Err(SignalError::forbidden(format!(
                    "at most {MAX_PRODUCERS_PER_PEER} producers per peer"
                )));
            }
            let in_room: usize = live.peers.iter().map(|p| p.producers.len()).sum();
            if in_room >= limits::MAX_PRODUCERS_PER_ROOM {
                return Err(SignalError::new(
                    SignalCode::LimitReached,
                    format!(
                        "at most {} producers in a room",
                        limits::MAX_PRODUCERS_PER_ROOM
                    ),
                ));
            }
            let request = Produce {
                peer_id: peer_id.clone(),
                transport_id: transport_id.to_owned(),
                kind,
                rtp_parameters,
                app_data: app_data.clone(),
            };
            let id = hub.media.produce(&live.router_id, request).await?.id;
            let info = ProducerInfo {
                producer_id: id.clone(),
                peer_id: peer_id.clone(),
                kind: kind_name(kind).to_string(),
                paused: false,
                app_data,
                source,
            };
            hub.publish(
                live.conns_except(Some(&peer_id)),
                "new-producer",
                serde_json::to_value(&info).unwrap_or(Value::Null),
            );
            if let Some(peer) = live.peer_mut(&peer_id) {
                peer.producers.push(info);
            }
            hub.record_new_producer(live, &peer_id, &id).await;
            Ok(Produced { id })
        })
        .await
    }

    /// `consume`: a consumer of another peer's producer, created paused.
    pub async fn consume(
        &self,
        conn: &str,
        room_id: &str,
        transport_id: &str,
        producer_id: &str,
        rtp_capabilities: Value,
    ) -> Result<Value, SignalError> {
        self.with_member(conn, room_id, async |hub, _, slot, peer_id| {
            let live = slot.live_mut(room_id)?;
            if !live
                .peers
                .iter()
                .any(|p| p.producers.iter().any(|x| x.producer_id == producer_id))
            {
                return Err(SignalError::not_found(format!(
                    "no producer {producer_id:?} in this room"
                )));
            }
            let peer = live
                .peer(&peer_id)
                .ok_or_else(|| SignalError::not_in_room(room_id))?;
            own_transport(peer, transport_id, Direction::Recv)?;
            if peer.consumers.len() >= limits::MAX_CONSUMERS_PER_PEER {
                return Err(SignalError::new(
                    SignalCode::LimitReached,
                    format!(
                        "at most {} consumers per peer: close some first",
                        limits::MAX_CONSUMERS_PER_PEER
                    ),
                ));
            }
            let request = Consume {
                peer_id: peer_id.clone(),
                transport_id: transport_id.to_owned(),
                producer_id: producer_id.to_owned(),
                rtp_capabilities,
            };
            let info = hub.media.consume(&live.router_id, request).await?;
            if let Some(peer) = live.peer_mut(&peer_id) {
                peer.consumers.push(PeerConsumer {
                    id: info.id.clone(),
                    producer_id: producer_id.to_string(),
                });
            }
            serde_json::to_value(info).map_err(|e| SignalError::internal("consumer answer", e))
        })
        .await
    }

    /// `pause-consumer` / `resume-consumer`.
    pub async fn set_consumer_paused(
        &self,
        conn: &str,
        room_id: &str,
        consumer_id: &str,
        paused: bool,
    ) -> Result<(), SignalError> {
        self.with_member(conn, room_id, async |hub, _, slot, peer_id| {
            let peer = caller(slot, &peer_id, room_id)?;
            peer.require_consumer(consumer_id)?;
            let router_id = slot.live_mut(room_id)?.router_id.clone();
            Ok(hub
                .media
                .set_consumer_paused(&router_id, consumer_id, paused)
                .await?)
        })
        .await
    }

    /// `set-preferred-layers` for the caller's own consumer: the SFU
    /// switches it at the next keyframe of the best active layers up to
    /// these, and `consumer-layers-changed` tells the caller when it has.
    pub async fn set_preferred_layers(
        &self,
        conn: &str,
        room_id: &str,
        consumer_id: &str,
        layers: PreferredLayers,
    ) -> Result<(), SignalError> {
        self.with_member(conn, room_id, async |hub, _, slot, peer_id| {
            let peer = caller(slot, &peer_id, room_id)?;
            peer.require_consumer(consumer_id)?;
            let router_id = slot.live_mut(room_id)?.router_id.clone();
            Ok(hub
                .media
                .set_consumer_preferred_layers(&router_id, consumer_id, layers)
                .await?)
        })
        .await
    }

    /// `close-consumer`.
    pub async fn close_consumer(
        &self,
        conn: &str,
        room_id: &str,
        consumer_id: &str,
    ) -> Result<(), SignalError> {
        self.with_member(conn, room_id, async |hub, _, slot, peer_id| {
            let live = slot.live_mut(room_id)?;
            let router_id = live.router_id.clone();
            let peer = live
                .peer_mut(&peer_id)
                .ok_or_else(|| SignalError::not_in_room(room_id))?;
            let index = peer
                .consumers
                .iter()
                .position(|c| c.id == consumer_id)
                .ok_or_else(|| {
                    SignalError::not_found(format!("you have no consumer {consumer_id:?}"))
                })?;
            peer.consumers.remove(index);
            hub.media.close_consumer(&router_id, consumer_id).await?;
            Ok(())
        })
        .await
    }

    /// `pause-producer` / `resume-producer` by its owner; the others are told.
    pub async fn set_producer_paused(
        &self,
        conn: &str,
        room_id: &str,
        producer_id: &str,
        paused: bool,
    ) -> Result<(), SignalError> {
        self.with_member(conn, room_id, async |hub, _, slot, peer_id| {
            let live = slot.live_mut(room_id)?;
            let owns = live
                .peer(&peer_id)
                .is_some_and(|p| p.producers.iter().any(|x| x.producer_id == producer_id));
            if !owns {
                return Err(SignalError::not_found(format!(
                    "you have no producer {producer_id:?}"
                )));
            }
            hub.pause_producer_in(live, &peer_id, producer_id, paused)
                .await
        })
        .await
    }

    /// Pauses or resumes a producer on the SFU and tells the room.
    pub(crate) async fn pause_producer_in(
        &self,
        live: &mut LiveRoom,
        owner: &str,
        producer_id: &str,
        paused: bool,
    ) -> Result<(), SignalError> {
        let current = live
            .peer(owner)
            .and_then(|p| p.producers.iter().find(|x| x.producer_id == producer_id))
            .map(|x| x.paused);
        if current.is_none_or(|now| now == paused) {
            return Ok(());
        }
        self.media
            .set_producer_paused(&live.router_id, producer_id, paused)
            .await?;
        if let Some(info) = live.peer_mut(owner).and_then(|p| {
            p.producers
                .iter_mut()
                .find(|x| x.producer_id == producer_id)
        }) {
            info.paused = paused;
        }
        let event = if paused {
            "producer-paused"
        } else {
            "producer-resumed"
        };
        self.publish(
            live.conns_except(None),
            event,
            json!({ "producerId": producer_id, "peerId": owner }),
        );
        Ok(())
    }

    /// `close-producer` by its owner: the others get `producer-closed`, and
    /// the owners of its consumers `consumer-closed` (from the SFU's events).
    pub async fn close_producer(
        &self,
        conn: &str,
        room_id: &str,
        producer_id: &str,
    ) -> Result<(), SignalError> {
        self.with_member(conn, room_id, async |hub, _, slot, peer_id| {
            let live = slot.live_mut(room_id)?;
            let peer = live
                .peer_mut(&peer_id)
                .ok_or_else(|| SignalError::not_in_room(room_id))?;
            let index = peer
                .producers
                .iter()
                .position(|x| x.producer_id == producer_id)
                .ok_or_else(|| {
                    SignalError::not_found(format!("you have no producer {producer_id:?}"))
                })?;
            peer.producers.remove(index);
            hub.end_recorded_producer(live, producer_id).await;
            hub.media
                .close_producer(&live.router_id, producer_id)
                .await?;
            hub.publish(
                live.conns_except(Some(&peer_id)),
                "producer-closed",
                json!({ "producerId": producer_id, "peerId": peer_id }),
            );
            Ok(())
        })
        .await
    }

    /// Closes everything a departing peer had on the SFU and tells the others
    /// its producers are gone.
    pub(crate) async fn release_media(&self, live: &mut LiveRoom, peer: &Peer) {
        self.release_sfu_peer(live, &peer.peer_id, &peer.producers)
            .await;
    }

    /// Closes what `peer_id` has on the SFU (its transports, and so its
    /// producers and consumers), telling the others its `producers` are gone.
    async fn release_sfu_peer(
        &self,
        live: &mut LiveRoom,
        peer_id: &str,
        producers: &[ProducerInfo],
    ) {
        for producer in producers {
            self.end_recorded_producer(live, &producer.producer_id)
                .await;
            self.publish(
                live.conns_except(Some(peer_id)),
                "producer-closed",
                json!({ "producerId": producer.producer_id, "peerId": peer_id }),
            );
        }
        if let Err(e) = self.media.remove_peer(&live.router_id, peer_id).await {
            tracing::debug!(error = %e, %peer_id, "sfu peer already gone");
        }
    }

    /// A new page took back a place kept for its peer (`join-room` with
    /// `fresh`): the old page's transports, producers and consumers are
    /// dead with it. They are closed (the others are told its producers
    /// went) and the peer starts again with nothing on the SFU, so the new
    /// page's transports count from zero. Without this a teacher who
    /// reloads twice within the grace period hits the transport limit.
    pub(crate) async fn reset_peer_media(
        &self,
        live: &mut LiveRoom,
        peer_id: &str,
    ) -> Result<(), SignalError> {
        let Some(peer) = live.peer_mut(peer_id) else {
            return Ok(());
        };
        let producers = std::mem::take(&mut peer.producers);
        peer.transports.clear();
        peer.consumers.clear();
        self.release_sfu_peer(live, peer_id, &producers).await;
        self.media.add_peer(&live.router_id, peer_id).await?;
        Ok(())
    }

    /// Turns the SFU's events into notifications for the peers concerned.
    pub async fn run_media_events(
        self: std::sync::Arc<Self>,
        mut events: tokio::sync::mpsc::UnboundedReceiver<DriverEvent>,
    ) {
        while let Some(DriverEvent { router_id, event }) = events.recv().await {
            let Some(room_id) = self.room_of_router(&router_id) else {
                continue;
            };
            let Some(arc) = self.existing_slot(&room_id) else {
                continue;
            };
            let mut slot = arc.lock().await;
            let Some(live) = slot.live.as_mut() else {
                continue;
            };
            if live.router_id != router_id {
                continue;
            }
            match event {
                EngineEvent::ConsumerClosed {
                    consumer_id,
                    producer_id,
                    ..
                } => {
                    if let Some(peer) = live
                        .peers
                        .iter_mut()
                        .find(|p| p.consumers.iter().any(|c| c.id == consumer_id))
                    {
                        peer.consumers.retain(|c| c.id != consumer_id);
                        let conns = peer.conn.clone().into_iter().collect();
                        self.publish(
                            conns,
                            "consumer-closed",
                            json!({ "consumerId": consumer_id, "producerId": producer_id }),
                        );
                    }
                }
                EngineEvent::ConsumerPaused { consumer_id } => {
                    self.tell_consumer_owner(live, &consumer_id, "consumer-paused")
                }
                EngineEvent::ConsumerResumed { consumer_id } => {
                    self.tell_consumer_owner(live, &consumer_id, "consumer-resumed")
                }
                EngineEvent::ConsumerLayersChanged {
                    consumer_id,
                    spatial_layer,
                    temporal_layer,
                } => self.tell_consumer_owner_with(
                    live,
                    &consumer_id,
                    "consumer-layers-changed",
                    json!({
                        "consumerId": consumer_id,
                        "spatialLayer": spatial_layer,
                        "temporalLayer": temporal_layer,
                    }),
                ),
                EngineEvent::ProducerClosed { producer_id, .. } => {
                    // Closed by the SFU itself (its transport failed): tell the room.
                    if let Some(peer) = live
                        .peers
                        .iter_mut()
                        .find(|p| p.producers.iter().any(|x| x.producer_id == producer_id))
                    {
                        peer.producers.retain(|x| x.producer_id != producer_id);
                        let owner = peer.peer_id.clone();
                        self.publish(
                            live.conns_except(Some(&owner)),
                            "producer-closed",
                            json!({ "producerId": producer_id, "peerId": owner }),
                        );
                        self.end_recorded_producer(live, &producer_id).await;
                    }
                }
                EngineEvent::ProducerLayersNeeded {
                    producer_id,
                    max_spatial_layer,
                } => {
                    // Only the publisher may act on it (its encoders).
                    if let Some(peer) = live
                        .peers
                        .iter()
                        .find(|p| p.producers.iter().any(|x| x.producer_id == producer_id))
                    {
                        self.publish(
                            peer.conn.clone().into_iter().collect(),
                            "producer-layers-needed",
                            json!({ "producerId": producer_id, "maxSpatialLayer": max_spatial_layer }),
                        );
                    }
                }
                EngineEvent::ActiveSpeaker {
                    producer_id,
                    volume,
                } => {
                    if let Some(peer) = live
                        .peers
                        .iter()
                        .find(|p| p.producers.iter().any(|x| x.producer_id == producer_id))
                    {
                        let speaker = ActiveSpeakerView {
                            peer_id: peer.peer_id.clone(),
                            producer_id,
                            volume,
                        };
                        self.publish(live.conns_except(None), "active-speaker", json!(speaker));
                        live.active_speaker = Some(speaker);
                    }
                }
                EngineEvent::TransportClosed { transport_id, .. } => {
                    for peer in &mut live.peers {
                        peer.transports.retain(|t| t.id != transport_id);
                    }
                }
                _ => {}
            }
        }
    }

    fn tell_consumer_owner(&self, live: &LiveRoom, consumer_id: &str, event: &'static str) {
        let payload = json!({ "consumerId": consumer_id });
        self.tell_consumer_owner_with(live, consumer_id, event, payload);
    }

    fn tell_consumer_owner_with(
        &self,
        live: &LiveRoom,
        consumer_id: &str,
        event: &'static str,
        payload: Value,
    ) {
        if let Some(peer) = live
            .peers
            .iter()
            .find(|p| p.consumers.iter().any(|c| c.id == consumer_id))
        {
            self.publish(peer.conn.clone().into_iter().collect(), event, payload);
        }
    }
}

pub fn kind_name(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Audio => "audio",
        MediaKind::Video => "video",
    }
}
