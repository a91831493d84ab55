//! Room logic: the registry of live rooms, joining and leaving, presence,
//! the reconnect grace period, and the attendance trace in the store.
//!
//! This layer knows users, rooms and connections by id. It does not know
//! sockets or Socket.IO: everything it has to tell someone goes out as a
//! [`Delivery`] on the [`Bus`]. It does not know HTTP either; both the
//! signalling layer and the HTTP API call it.

mod actions;
mod error;
mod host_tools;
mod info;
pub mod limits;
mod media;
mod model;
mod overview;
mod presence;
mod recording;
mod revoke;
pub mod schedule;
mod spotlight;
mod waiting;
#[cfg(test)]
mod worst_case;

use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use vtp_store::{
    MemberRole, NewParticipant, Role, Room, RoomAccess, RoomRole, RoomStatus, Store, User,
};

pub use actions::{ChatHistory, HostAction};
pub use error::{SignalCode, SignalError};
pub use host_tools::{LoweredAll, MutedAll, REACTION_BURST, REACTIONS};
pub use info::{ConsumerView, LayerStatsView, ProducerStatsView, RoomInfo, RoomProducer};
pub use media::{Direction, PeerConsumer, PeerTransport, Produced};
pub use model::*;
pub use overview::{Health, ParticipantOverview, RecordingInProgress, RoomOverview};
pub use recording::RecordingAck;
pub use revoke::SESSION_REVOKED;
pub use spotlight::{SpotlightSource, SpotlightView};
pub use waiting::{JoinAnswer, MAX_WAITING, WaitStatus, WaitTarget, WaitingAnswer, WaitingView};

use crate::bus::{Bus, ConnId, Delivery};
use crate::rate_limit::RateLimiter;
use crate::webhooks::WebhookEvent;
use vtp_sfu_driver::SfuControl;

/// Tunables of the room logic.
#[derive(Clone, Debug)]
pub struct HubConfig {
    /// How long a disconnected peer keeps its place before it leaves.
    pub reconnect_grace: Duration,
    /// Chat messages a peer may send in a burst, refilled at one per second.
    pub chat_burst: u32,
    /// Chat messages `join-room` returns at most (within
    /// `limits::CHAT_ON_JOIN_BYTES` whatever this is).
    pub chat_history_on_join: usize,
    /// Where recordings go, and their limits.
    pub recording: crate::recording::RecordingConfig,
    /// TURN relays named in every `create-transport` answer.
    pub turn: Option<crate::turn::TurnConfig>,
    /// Room, participant and recording events to webhook endpoints.
    pub webhooks: crate::webhooks::Webhooks,
    /// Host actions that the audit log keeps (removals, closing).
    pub audit: crate::audit::Audit,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            reconnect_grace: Duration::from_secs(15),
            chat_burst: 5,
            chat_history_on_join: limits::CHAT_ON_JOIN_MESSAGES,
            recording: crate::recording::RecordingConfig {
                dir: "./data/recordings".into(),
                max_duration: Duration::from_secs(4 * 3600),
                max_track_bytes: 4 << 30,
                min_free_bytes: 1 << 30,
                ready: Default::default(),
            },
            turn: None,
            webhooks: Default::default(),
            audit: Default::default(),
        }
    }
}

/// A slot of the registry. `retired` marks a slot removed from the map, so
/// that a caller who fetched it just before cannot revive a finished session.
#[derive(Default)]
pub(crate) struct Slot {
    pub(crate) live: Option<LiveRoom>,
    pub(crate) retired: bool,
}

impl Slot {
    /// The live room, or `not_found` for a caller who thinks they are in it.
    pub(crate) fn live(&self, room_id: &str) -> Result<&LiveRoom, SignalError> {
        self.live
            .as_ref()
            .ok_or_else(|| SignalError::not_in_room(room_id))
    }

    pub(crate) fn live_mut(&mut self, room_id: &str) -> Result<&mut LiveRoom, SignalError> {
        self.live
            .as_mut()
            .ok_or_else(|| SignalError::not_in_room(room_id))
    }
}

/// The registry of live rooms (one per node).
pub struct RoomHub {
    store: Store,
    bus: Arc<dyn Bus>,
    config: HubConfig,
    rooms: StdMutex<HashMap<String, Arc<Mutex<Slot>>>>,
    chat_limiter: RateLimiter,
    /// Reactions per peer (`host_tools::REACTION_BURST`, one a second).
    reaction_limiter: RateLimiter,
    /// `routerRtpCapabilities`, serialised once.
    rtp_capabilities: Value,
    /// The SFU (in this process or on a media node): one room per live
    /// session, named by the session id.
    media: Arc<dyn SfuControl>,
    /// Router id → room id, to route the SFU's events.
    routers: StdMutex<HashMap<String, String>>,
    /// Who waits to be let into which room (`waiting`).
    waiting: StdMutex<waiting::Queues>,
}

/// The room-role model, in one place for HTTP and Socket.IO: a room's
/// hosts are its owner, the platform's admins and the room's co-teachers
/// (`member`: the user's role on the room's roster). An instructor is a
/// host of the rooms they own or co-teach, and in anyone else's room a
/// participant like a student (they create rooms; they do not run each
/// other's). Hosts may close the room, record it, act on peers and read its
/// whole history.
pub fn is_host(user: &User, room: &Room, member: Option<MemberRole>) -> bool {
    is_owner_or_admin(user, room) || member == Some(MemberRole::CoTeacher)
}

/// Who may change or delete a room and its roster: its owner and admins.
pub fn is_owner_or_admin(user: &User, room: &Room) -> bool {
    room.owner_id == user.id || user.role == Role::Admin
}

/// Whether the user may find the room and join it (`settings.access`):
/// its hosts, its members and, in a room open to anyone signed in,
/// everyone. To anyone else the room does not exist (`not_found`).
pub fn can_see(user: &User, room: &Room, member: Option<MemberRole>) -> bool {
    is_host(user, room, member) || member.is_some() || room.settings.access == RoomAccess::SignedIn
}

impl RoomHub {
    pub fn new(
        store: Store,
        bus: Arc<dyn Bus>,
        media: Arc<dyn SfuControl>,
        config: HubConfig,
    ) -> Arc<RoomHub> {
        let rtp_capabilities =
            serde_json::to_value(vtp_sfu::rtp::router_rtp_capabilities()).unwrap_or(Value::Null);
        let chat_limiter = RateLimiter::new(
            config.chat_burst,
            Duration::from_secs(u64::from(config.chat_burst.max(1))),
        );
        Arc::new(RoomHub {
            store,
            bus,
            config,
            rooms: StdMutex::new(HashMap::new()),
            chat_limiter,
            reaction_limiter: RateLimiter::new(
                REACTION_BURST,
                Duration::from_secs(u64::from(REACTION_BURST)),
            ),
            rtp_capabilities,
            media,
            routers: StdMutex::new(HashMap::new()),
            waiting: StdMutex::new(HashMap::new()),
        })
    }

    fn room_of_router(&self, router_id: &str) -> Option<String> {
        self.routers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(router_id)
            .cloned()
    }

    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// The SFU this hub's rooms use.
    pub fn media(&self) -> &Arc<dyn SfuControl> {
        &self.media
    }

    fn slot(&self, room_id: &str) -> Arc<Mutex<Slot>> {
        let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        rooms.entry(room_id.to_string()).or_default().clone()
    }

    fn existing_slot(&self, room_id: &str) -> Option<Arc<Mutex<Slot>>> {
        self.rooms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(room_id)
            .cloned()
    }

    /// Removes a finished room from the registry.
    fn retire(&self, room_id: &str, arc: &Arc<Mutex<Slot>>, slot: &mut Slot) {
        slot.retired = true;
        slot.live = None;
        let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        if rooms
            .get(room_id)
            .is_some_and(|current| Arc::ptr_eq(current, arc))
        {
            rooms.remove(room_id);
        }
    }

    pub(crate) fn publish(&self, conns: Vec<ConnId>, event: &'static str, payload: Value) {
        self.bus.publish(Delivery {
            conns,
            event,
            payload,
        });
    }

    /// Every room's slot now (the registry's lock is released on return).
    fn all_slots(&self) -> Vec<Arc<Mutex<Slot>>> {
        self.rooms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Number of live rooms and of peers in them (for metrics and health).
    pub fn counts(&self) -> (usize, usize) {
        let slots = self.all_slots();
        let peers = slots
            .iter()
            .filter_map(|s| {
                s.try_lock()
                    .ok()
                    .and_then(|s| s.live.as_ref().map(|l| l.peers.len()))
            })
            .sum();
        (slots.len(), peers)
    }

    /// Joins `user`, speaking through `conn`, to a room: starts the session if
    /// the room was empty, or takes back the user's place if they are within
    /// the reconnect grace period.
    pub async fn join(
        self: &Arc<Self>,
        user: &User,
        conn: &str,
        room_id: &str,
        display_name: Option<&str>,
        fresh: bool,
    ) -> Result<JoinAnswer, SignalError> {
        loop {
            // Read before the room's lock: the roster is not part of the
            // live room (a change reaches live peers through `reconcile`).
            let member = self.store.member_role(room_id, user.id).await?;
            // A live room's stored row is kept current in memory (see
            // `refresh_room`): joining it needs no store read. Otherwise the
            // room must exist and be open before it gets a registry slot.
            let is_live = match self.existing_slot(room_id) {
                Some(arc) => arc.lock().await.live.is_some(),
                None => false,
            };
            let mut loaded = if is_live {
                None
            } else {
                Some(self.load_joinable(room_id, user, member).await?)
            };
            let arc = self.slot(room_id);
            let mut slot = arc.lock().await;
            if slot.retired {
                continue;
            }
            if slot.live.is_none() {
                // Ended (and maybe closed) since we looked: read it again.
                let room = match loaded.take() {
                    Some(room) => room,
                    None => self.load_joinable(room_id, user, member).await?,
                };
                // A class starts when a host opens it: students cannot hold
                // a session (or set off `autoRecord`) by themselves. They
                // wait in the waiting room, or without one are told to try
                // again (the web app does).
                if self.must_wait(None, &room, user, member) {
                    return self.enqueue(&slot, room_id, user, conn, display_name);
                }
                if !is_host(user, &room, member) {
                    return Err(SignalError::new(
                        SignalCode::NotStarted,
                        "the class has not started: it opens when a host joins",
                    ));
                }
                let session = self.store.start_session(room_id, Utc::now()).await?;
                tracing::info!(room_id, session_id = %session.id, "session started");
                let router_id = session.id.to_string();
                self.routers
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(router_id.clone(), room_id.to_string());
                slot.live = Some(LiveRoom {
                    room,
                    router_id: router_id.clone(),
                    session_id: session.id,
                    peers: Vec::new(),
                    removed_users: Default::default(),
                    recent_chat: Default::default(),
                    chat_total: 0,
                    recording: None,
                    active_speaker: None,
                    spotlight: None,
                    admitted: Default::default(),
                });
                if let Err(e) = self.media.open_room(&router_id).await {
                    self.end_session(room_id, &arc, &mut slot, RoomStatus::Open)
                        .await;
                    return Err(e.into());
                }
                self.config.webhooks.emit(
                    WebhookEvent::RoomStarted,
                    json!({ "roomId": room_id, "sessionId": session.id }),
                );
                if let Some(live) = slot.live.as_mut()
                    && live.room.settings.auto_record
                    && let Err(e) = self.start_recording_in(live, None).await
                {
                    tracing::warn!(room_id, error = %e.message, "automatic recording did not start");
                }
            }
            if let Some(live) = slot.live.as_ref()
                && self.must_wait(Some(live), &live.room, user, member)
            {
                if !can_see(user, &live.room, member) {
                    return Err(SignalError::not_found(format!("no room {room_id:?}")));
                }
                return self.enqueue(&slot, room_id, user, conn, display_name);
            }
            let result = self
                .join_live(&mut slot, user, member, conn, display_name, fresh)
                .await;
            if let (Ok(joined), Some(live)) = (&result, slot.live.as_mut()) {
                // Let in for this session: a reload does not wait again.
                live.admitted.insert(user.id);
                let host = (joined.role == RoomRole::Host).then(|| conn.to_string());
                self.sync_waiting(room_id, live, host);
            }
            if result.is_err() && slot.live.as_ref().is_some_and(|l| l.peers.is_empty()) {
                self.end_session(room_id, &arc, &mut slot, RoomStatus::Open)
                    .await;
            }
            return result.map(|joined| JoinAnswer::Joined(Box::new(joined)));
        }
    }

    /// The stored room, if it exists, the user may see it, and it is not
    /// closed.
    async fn load_joinable(
        &self,
        room_id: &str,
        user: &User,
        member: Option<MemberRole>,
    ) -> Result<Room, SignalError> {
        let room = match self.store.room_by_id(room_id).await {
            Ok(room) if can_see(user, &room, member) => room,
            Ok(_) | Err(vtp_store::StoreError::NotFound) => {
                return Err(SignalError::not_found(format!("no room {room_id:?}")));
            }
            Err(e) => return Err(e.into()),
        };
        if room.status == RoomStatus::Closed {
            return Err(SignalError::new(
                SignalCode::RoomClosed,
                "this room is closed",
            ));
        }
        Ok(room)
    }

    /// Keeps a live room's copy of its stored row current after an update
    /// (title, settings).
    pub async fn refresh_room(&self, room: &Room) {
        let Some(arc) = self.existing_slot(&room.id) else {
            return;
        };
        let mut slot = arc.lock().await;
        if let Some(live) = slot.live.as_mut() {
            live.room = Room {
                status: RoomStatus::Live,
                ..room.clone()
            };
            // The waiting room may have been turned off.
            self.sync_waiting(&room.id, live, None);
        }
    }

    async fn join_live(
        &self,
        slot: &mut Slot,
        user: &User,
        member: Option<MemberRole>,
        conn: &str,
        display_name: Option<&str>,
        fresh: bool,
    ) -> Result<JoinOutcome, SignalError> {
        let Some(live) = slot.live.as_mut() else {
            return Err(SignalError::internal(
                "join",
                "live room vanished under its lock",
            ));
        };
        let room = &live.room.clone();
        if !can_see(user, room, member) {
            return Err(SignalError::not_found(format!("no room {:?}", room.id)));
        }
        if live.removed_users.contains(&user.id) {
            return Err(SignalError::forbidden(
                "a host removed you from this session",
            ));
        }
        if live.peer_of_conn(conn).is_some() {
            return Err(SignalError::conflict(
                "this connection is already in the room",
            ));
        }
        // The same person's place: taken back within the grace period
        // (silently), or, by a page that says it starts afresh (`fresh`: a
        // new tab or device), taken over from another page that is still
        // connected — one person is one presence, the newer page wins: the
        // older one is told (`joined-elsewhere`) and leaves the room, and
        // what it sent stops (its media is not the new page's). Clients
        // that do not say `fresh` (test and load clients sharing an account)
        // still get a peer per connection.
        if let Some(peer) = live
            .peers
            .iter_mut()
            .find(|p| p.user_id == user.id && (p.conn.is_none() || fresh))
        {
            let previous = peer.conn.replace(conn.to_string());
            let (peer_id, role) = (peer.peer_id.clone(), peer.role);
            let taken_over = previous.is_some();
            if let Some(previous) = previous {
                self.publish(
                    vec![previous],
                    "joined-elsewhere",
                    json!({ "roomId": room.id, "reason": "you joined this room from another tab or device" }),
                );
                tracing::info!(room_id = %room.id, %peer_id, "peer taken over by a new connection");
            } else {
                tracing::info!(room_id = %room.id, %peer_id, fresh, "peer resumed");
            }
            if fresh || taken_over {
                self.reset_peer_media(live, &peer_id).await?;
            }
            let peers = live
                .peers
                .iter()
                .filter(|p| p.peer_id != peer_id)
                .map(Peer::view)
                .collect();
            return Ok(self.outcome(live, peer_id, role, peers, true));
        }

        let role = if is_host(user, room, member) {
            RoomRole::Host
        } else {
            RoomRole::Participant
        };
        let capacity = usize::try_from(room.settings.max_participants)
            .unwrap_or(usize::MAX)
            .min(limits::MAX_PARTICIPANTS);
        // Hosts may join a full room, a few of them: every answer about
        // the room lists its peers, and its size is bounded by theirs.
        let hard_cap = capacity.saturating_add(limits::MAX_EXTRA_HOSTS);
        if (role != RoomRole::Host && live.peers.len() >= capacity) || live.peers.len() >= hard_cap
        {
            return Err(SignalError::new(
                SignalCode::RoomFull,
                format!("the room is full ({capacity} participants)"),
            ));
        }
        let display_name = waiting::display_name_for(user, display_name)?;
        let peer_id = uuid::Uuid::new_v4().to_string();
        self.media.add_peer(&live.router_id, &peer_id).await?;
        let participant = match self
            .store
            .add_participant(
                &NewParticipant {
                    session_id: live.session_id,
                    user_id: user.id,
                    peer_id: peer_id.clone(),
                    display_name: display_name.clone(),
                    room_role: role,
                },
                Utc::now(),
            )
            .await
        {
            Ok(participant) => participant,
            Err(e) => {
                if let Err(gone) = self.media.remove_peer(&live.router_id, &peer_id).await {
                    tracing::debug!(error = %gone, %peer_id, "sfu peer already gone");
                }
                return Err(e.into());
            }
        };
        let peer = Peer {
            peer_id: peer_id.clone(),
            user_id: user.id,
            display_name,
            role,
            hand_raised: false,
            conn: Some(conn.to_string()),
            disconnect_epoch: 0,
            participant_id: participant.id,
            producers: Vec::new(),
            transports: Vec::new(),
            consumers: Vec::new(),
        };
        let view = peer.view();
        let others = live.views();
        live.peers.push(peer);
        self.publish(
            live.conns_except(Some(&peer_id)),
            "peer-joined",
            json!({ "peer": view }),
        );
        tracing::info!(room_id = %room.id, %peer_id, user_id = %user.id, role = role.as_str(), "peer joined");
        self.config.webhooks.emit(
            WebhookEvent::ParticipantJoined,
            json!({
                "roomId": room.id, "sessionId": live.session_id, "peerId": peer_id,
                "userId": user.id, "role": role.as_str(),
            }),
        );
        Ok(self.outcome(live, peer_id, role, others, false))
    }

    /// The `join-room` answer: the newest chat that fits one page
    /// (`limits::chat_page`), and whether older messages of the session
    /// are left for `get-chat-history`.
    fn outcome(
        &self,
        live: &LiveRoom,
        peer_id: String,
        role: RoomRole,
        peers: Vec<PeerView>,
        resumed: bool,
    ) -> JoinOutcome {
        let recent: Vec<ChatView> = live.recent_chat.iter().cloned().collect();
        let chat = limits::chat_page(
            &recent,
            self.config.chat_history_on_join,
            limits::CHAT_ON_JOIN_BYTES,
        );
        JoinOutcome {
            room_id: live.room.id.clone(),
            title: live.room.title.clone(),
            peer_id,
            role,
            router_rtp_capabilities: self.rtp_capabilities.clone(),
            peers,
            chat_more: live.chat_total > chat.len() as u64,
            chat,
            session_id: live.session_id,
            resumed,
            recording: live.recording.is_some(),
            active_speaker: live.current_speaker(),
            spotlight: live.current_spotlight(),
        }
    }

    /// Leaves a room on request.
    pub async fn leave(&self, conn: &str, room_id: &str) -> Result<(), SignalError> {
        self.with_member(conn, room_id, async |hub, arc, slot, peer_id| {
            hub.remove_peer(room_id, arc, slot, &peer_id, "left").await;
            Ok(())
        })
        .await
    }

    /// Removes a peer: its attendance row gets `left_at`, the others get
    /// `peer-left`, and an empty room ends its session.
    pub(crate) async fn remove_peer(
        &self,
        room_id: &str,
        arc: &Arc<Mutex<Slot>>,
        slot: &mut Slot,
        peer_id: &str,
        why: &str,
    ) {
        let Some(live) = slot.live.as_mut() else {
            return;
        };
        let Some(index) = live.peers.iter().position(|p| p.peer_id == peer_id) else {
            return;
        };
        let peer = live.peers.remove(index);
        self.release_media(live, &peer).await;
        if let Err(e) = self
            .store
            .participant_left(peer.participant_id, Utc::now())
            .await
        {
            tracing::error!(error = %e, room_id, peer_id, "could not record the leave time");
        }
        self.publish(
            live.conns_except(None),
            "peer-left",
            json!({ "peerId": peer.peer_id }),
        );
        tracing::info!(room_id, peer_id, why, "peer left");
        self.config.webhooks.emit(
            WebhookEvent::ParticipantLeft,
            json!({
                "roomId": room_id, "sessionId": live.session_id, "peerId": peer.peer_id,
                "userId": peer.user_id, "reason": why,
            }),
        );
        if live.peers.is_empty() {
            self.end_session(room_id, arc, slot, RoomStatus::Open).await;
        } else {
            // A host leaving lets nobody in, but may change what the others wait for.
            self.sync_waiting(room_id, live, None);
        }
    }

    async fn end_session(
        &self,
        room_id: &str,
        arc: &Arc<Mutex<Slot>>,
        slot: &mut Slot,
        status: RoomStatus,
    ) {
        if let Some(live) = slot.live.as_mut()
            && let Some(active) = live.recording.take()
        {
            let id = self.finish_recording(active, &live.router_id).await;
            self.publish(
                live.conns_except(None),
                "recording-stopped",
                json!({ "recordingId": id }),
            );
        }
        if let Some(live) = slot.live.as_ref() {
            match self
                .store
                .end_session(live.session_id, status, Utc::now())
                .await
            {
                Ok(()) => {
                    tracing::info!(room_id, session_id = %live.session_id, "session ended");
                    self.config.webhooks.emit(
                        WebhookEvent::RoomEnded,
                        json!({
                            "roomId": room_id, "sessionId": live.session_id,
                            "closed": status == RoomStatus::Closed,
                        }),
                    );
                }
                Err(e) => {
                    tracing::error!(error = %e, room_id, "could not end the session in the store")
                }
            }
            // Closes every transport, producer and consumer of the session.
            if let Err(e) = self.media.close_room(&live.router_id).await {
                tracing::debug!(error = %e, room_id, "router already gone");
            }
            self.routers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&live.router_id);
        }
        self.retire(room_id, arc, slot);
        self.session_over_for_waiting(room_id);
    }

    /// Whether `conn` speaks for a peer of the room.
    pub async fn is_member(&self, conn: &str, room_id: &str) -> bool {
        let Some(arc) = self.existing_slot(room_id) else {
            return false;
        };
        let slot = arc.lock().await;
        slot.live
            .as_ref()
            .is_some_and(|l| l.peer_of_conn(conn).is_some())
    }

    /// The peers of a room (empty when nobody is in it).
    pub async fn participants(&self, room_id: &str) -> Vec<PeerView> {
        let Some(arc) = self.existing_slot(room_id) else {
            return Vec::new();
        };
        let slot = arc.lock().await;
        slot.live.as_ref().map(LiveRoom::views).unwrap_or_default()
    }

    /// Closes a live room: everyone gets `room-closed`, the session ends and
    /// the room's status becomes `closed`. Returns whether it was live.
    pub async fn close_room(&self, room_id: &str, reason: &str) -> Result<bool, SignalError> {
        let was_live = self
            .end_live(room_id, "room-closed", reason, RoomStatus::Closed)
            .await;
        if was_live {
            tracing::info!(room_id, reason, "room closed");
        }
        Ok(was_live)
    }

    /// Ends today's session of a live room: everyone gets `session-ended`
    /// and leaves, and the room stays `open` for the next class. Returns
    /// whether it was live.
    pub async fn end_live_session(&self, room_id: &str, reason: &str) -> bool {
        let was_live = self
            .end_live(room_id, "session-ended", reason, RoomStatus::Open)
            .await;
        if was_live {
            tracing::info!(room_id, reason, "session ended by a host");
        }
        was_live
    }

    /// Tells everyone `event`, then ends the session with the room left
    /// `status`. Whether the room was live.
    async fn end_live(
        &self,
        room_id: &str,
        event: &'static str,
        reason: &str,
        status: RoomStatus,
    ) -> bool {
        let Some(arc) = self.existing_slot(room_id) else {
            return false;
        };
        let mut slot = arc.lock().await;
        let Some(live) = slot.live.as_ref() else {
            return false;
        };
        self.publish(live.conns_except(None), event, json!({ "reason": reason }));
        self.dismiss_waiting(room_id, event, reason);
        self.end_session(room_id, &arc, &mut slot, status).await;
        true
    }

    /// Ends every live session (server shutdown). Rooms go back to `open`.
    pub async fn shutdown(&self) {
        let slots: Vec<(String, Arc<Mutex<Slot>>)> = self
            .rooms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (room_id, arc) in slots {
            let mut slot = arc.lock().await;
            if slot.live.is_some() {
                self.end_session(&room_id, &arc, &mut slot, RoomStatus::Open)
                    .await;
            }
        }
    }

    /// Runs `f` on the live room and the caller's peer id, under the room's lock.
    pub(crate) async fn with_member<R>(
        &self,
        conn: &str,
        room_id: &str,
        f: impl AsyncFnOnce(&Self, &Arc<Mutex<Slot>>, &mut Slot, String) -> Result<R, SignalError>,
    ) -> Result<R, SignalError> {
        let arc = self
            .existing_slot(room_id)
            .ok_or_else(|| SignalError::not_in_room(room_id))?;
        let mut slot = arc.lock().await;
        let peer_id = slot
            .live
            .as_ref()
            .and_then(|l| l.peer_of_conn(conn))
            .map(|p| p.peer_id.clone())
            .ok_or_else(|| SignalError::not_in_room(room_id))?;
        f(self, &arc, &mut slot, peer_id).await
    }
}
