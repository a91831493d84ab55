//! The live state of a room: who is in it right now, and the JSON views of
//! it that clients see (`Peer`, `ProducerInfo` in docs/protocol.md).

use std::collections::{HashSet, VecDeque};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;
use vtp_store::{ChatMessage, Room, RoomRole};

use crate::bus::ConnId;

/// A room with a running session.
pub struct LiveRoom {
    /// The stored room as of the last join (settings may change while live).
    pub room: Room,
    /// The SFU router of this session (its id is the session id).
    pub router_id: String,
    pub session_id: Uuid,
    /// In order of arrival.
    pub peers: Vec<Peer>,
    /// Users a host removed: they cannot come back during this session.
    pub removed_users: HashSet<Uuid>,
    /// The session's latest chat messages (what `join-room` returns), kept
    /// here so that a join costs no store read. Sessions do not outlive the
    /// process, so this is the whole session's tail.
    pub recent_chat: VecDeque<ChatView>,
    /// Chat messages of this session so far (`recent_chat` keeps the last
    /// few), to tell a joiner whether older ones are left to fetch.
    pub chat_total: u64,
    /// The recording in progress, if the room is being recorded.
    pub recording: Option<crate::recording::ActiveRecording>,
    /// The last `active-speaker` told to the room, so that a peer who joins
    /// later highlights the same person at once (the SFU only speaks on a
    /// change).
    pub active_speaker: Option<ActiveSpeakerView>,
    /// Whom a host put in the spotlight (`set-spotlight`).
    pub spotlight: Option<crate::rooms::SpotlightView>,
    /// Users let in this session (through the waiting room, or who joined
    /// while it let everyone in): they do not wait again after a reload.
    pub admitted: HashSet<Uuid>,
}

/// Who the room's active speaker is (the `active-speaker` payload).
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ActiveSpeakerView {
    pub peer_id: String,
    pub producer_id: String,
    /// Mean audio level over the detection window, dBov.
    pub volume: i8,
}

/// One person's presence in a live room.
pub struct Peer {
    pub peer_id: String,
    pub user_id: Uuid,
    pub display_name: String,
    pub role: RoomRole,
    pub hand_raised: bool,
    /// The connection that speaks for this peer; `None` while it is gone and
    /// the reconnect grace period runs.
    pub conn: Option<ConnId>,
    /// Bumped at each disconnect, so a grace timer only expires the
    /// disconnect it was started for.
    pub disconnect_epoch: u64,
    /// The attendance row of this presence.
    pub participant_id: Uuid,
    pub producers: Vec<ProducerInfo>,
    /// Transports on the SFU this peer created.
    pub transports: Vec<super::PeerTransport>,
    /// Consumers this peer created.
    pub consumers: Vec<super::PeerConsumer>,
}

impl Peer {
    pub fn view(&self) -> PeerView {
        PeerView {
            peer_id: self.peer_id.clone(),
            user_id: self.user_id,
            display_name: self.display_name.clone(),
            role: self.role,
            hand_raised: self.hand_raised,
            producers: self.producers.clone(),
        }
    }
}

impl LiveRoom {
    /// The active speaker, while its peer is still here with that producer.
    pub fn current_speaker(&self) -> Option<ActiveSpeakerView> {
        let speaker = self.active_speaker.as_ref()?;
        self.peer(&speaker.peer_id)?
            .producers
            .iter()
            .any(|p| p.producer_id == speaker.producer_id)
            .then(|| speaker.clone())
    }
    /// The spotlight, while its peer is still here.
    pub fn current_spotlight(&self) -> Option<crate::rooms::SpotlightView> {
        let spotlight = self.spotlight.as_ref()?;
        self.peer(&spotlight.peer_id).map(|_| spotlight.clone())
    }
    pub fn peer(&self, peer_id: &str) -> Option<&Peer> {
        self.peers.iter().find(|p| p.peer_id == peer_id)
    }
    pub fn peer_mut(&mut self, peer_id: &str) -> Option<&mut Peer> {
        self.peers.iter_mut().find(|p| p.peer_id == peer_id)
    }
    /// The peer a connection speaks for.
    pub fn peer_of_conn(&self, conn: &str) -> Option<&Peer> {
        self.peers.iter().find(|p| p.conn.as_deref() == Some(conn))
    }
    pub fn peer_of_conn_mut(&mut self, conn: &str) -> Option<&mut Peer> {
        self.peers
            .iter_mut()
            .find(|p| p.conn.as_deref() == Some(conn))
    }
    /// Connections of every connected peer, optionally but one.
    pub fn conns_except(&self, except_peer: Option<&str>) -> Vec<ConnId> {
        self.peers
            .iter()
            .filter(|p| Some(p.peer_id.as_str()) != except_peer)
            .filter_map(|p| p.conn.clone())
            .collect()
    }
    pub fn views(&self) -> Vec<PeerView> {
        self.peers.iter().map(Peer::view).collect()
    }
}

/// `Peer` of docs/protocol.md.
#[derive(Clone, Debug, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PeerView {
    pub peer_id: String,
    pub user_id: Uuid,
    pub display_name: String,
    /// `host`, `presenter` or `participant`.
    pub role: RoomRole,
    pub hand_raised: bool,
    pub producers: Vec<ProducerInfo>,
}

/// What a track's `kind` is on the wire.
pub const MEDIA_KINDS: [&str; 2] = ["audio", "video"];

fn media_kind_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .enum_values(Some(MEDIA_KINDS))
        .build()
}

/// `ProducerInfo` of docs/protocol.md.
#[derive(Clone, Debug, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProducerInfo {
    pub producer_id: String,
    pub peer_id: String,
    #[schema(schema_with = media_kind_schema)]
    pub kind: String,
    pub paused: bool,
    #[schema(value_type = Object)]
    pub app_data: Value,
    /// What the producer is, from its label checked against its kind.
    #[serde(skip)]
    #[schema(ignore)]
    pub source: super::limits::Source,
}

/// A chat message as clients see it (the `chat-message` notification).
#[derive(Clone, Debug, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatView {
    pub id: Uuid,
    pub peer_id: String,
    pub user_id: Option<Uuid>,
    pub display_name: String,
    pub text: String,
    pub sent_at: DateTime<Utc>,
}

impl From<ChatMessage> for ChatView {
    fn from(m: ChatMessage) -> Self {
        ChatView {
            id: m.id,
            peer_id: m.peer_id,
            user_id: m.user_id,
            display_name: m.display_name,
            text: m.body,
            sent_at: m.sent_at,
        }
    }
}

/// The answer to `join-room`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinOutcome {
    pub room_id: String,
    pub title: String,
    pub peer_id: String,
    pub role: RoomRole,
    pub router_rtp_capabilities: Value,
    /// The other peers in the room.
    pub peers: Vec<PeerView>,
    /// The session's latest chat, oldest first: at most
    /// `limits::CHAT_ON_JOIN_MESSAGES` messages and `limits::CHAT_PAGE_BYTES`.
    pub chat: Vec<ChatView>,
    /// Older messages of this session exist: `get-chat-history` with
    /// `before` the first of `chat` gives them.
    pub chat_more: bool,
    /// The live session (also the `sessionId` of `GET /rooms/{id}/chat`).
    pub session_id: Uuid,
    /// True when this join took back a place kept during the reconnect grace
    /// period: the others saw no leave and no join.
    pub resumed: bool,
    pub recording: bool,
    /// Who speaks now, when someone has (see `LiveRoom::active_speaker`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_speaker: Option<ActiveSpeakerView>,
    /// Whom a host put in the spotlight, while they are here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spotlight: Option<crate::rooms::SpotlightView>,
}
