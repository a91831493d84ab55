//! Request payloads of the Socket.IO protocol (docs/protocol.md) and the
//! acknowledgement envelope. Unknown fields are ignored (clients may send
//! more than we read); wrong types and missing fields are `bad_request`.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::rooms::{HostAction, SignalError, SpotlightSource};

/// Longest room id accepted on the wire (ids are UUIDs or short slugs).
const MAX_ROOM_ID: usize = 64;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomRequest {
    pub room_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinRoom {
    pub room_id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    /// The page has nothing of an earlier connection's media (a reload, a
    /// new tab): a place taken back within the grace period starts with
    /// nothing on the SFU.
    #[serde(default)]
    pub fresh: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatRequest {
    pub room_id: String,
    pub text: String,
}

/// `get-chat-history`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatHistoryRequest {
    pub room_id: String,
    /// A message of the session: the answer holds those sent before it.
    pub before: uuid::Uuid,
    #[serde(default = "default_chat_page")]
    pub limit: u32,
}

fn default_chat_page() -> u32 {
    crate::rooms::limits::CHAT_PAGE_MESSAGES
}

/// `admit` / `deny`: one waiting person (`waitingId`) or everyone (`all: true`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaitDecision {
    pub room_id: String,
    #[serde(default)]
    pub waiting_id: Option<String>,
    #[serde(default)]
    pub all: bool,
}

impl WaitDecision {
    /// Exactly one of `waitingId` and `all: true`.
    pub fn target(&self) -> Result<crate::rooms::WaitTarget<'_>, SignalError> {
        match (self.waiting_id.as_deref(), self.all) {
            (Some(id), false) if !id.is_empty() && id.len() <= 64 => {
                Ok(crate::rooms::WaitTarget::One(id))
            }
            (None, true) => Ok(crate::rooms::WaitTarget::All),
            _ => Err(SignalError::bad_request(
                "give either waitingId (one person, at most 64 characters) or all: true",
            )),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostActionRequest {
    pub room_id: String,
    pub action: HostAction,
    pub peer_id: String,
    #[serde(default)]
    pub producer_id: Option<String>,
}

/// `set-spotlight`: `peerId` absent or null takes the spotlight away.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpotlightRequest {
    pub room_id: String,
    #[serde(default)]
    pub peer_id: Option<String>,
    #[serde(default)]
    pub source: SpotlightSource,
}

/// `webrtc-offer`, `webrtc-answer`, `ice-candidate`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RelayRequest {
    pub room_id: String,
    pub to: String,
    #[serde(default)]
    pub sdp: Option<Value>,
    #[serde(default)]
    pub candidate: Option<Value>,
}

/// Checks a room id from the wire.
pub fn room_id(raw: &str) -> Result<&str, SignalError> {
    if raw.is_empty() || raw.len() > MAX_ROOM_ID {
        return Err(SignalError::bad_request(format!(
            "roomId: 1 to {MAX_ROOM_ID} characters"
        )));
    }
    Ok(raw)
}

/// `{ ok: true, data }` or `{ ok: false, error: { code, message } }`.
pub fn envelope<T: Serialize>(result: Result<T, SignalError>) -> Value {
    match result.and_then(|data| {
        serde_json::to_value(data).map_err(|e| SignalError::internal("serialising an answer", e))
    }) {
        Ok(data) => json!({ "ok": true, "data": data }),
        Err(e) => json!({ "ok": false, "error": { "code": e.code, "message": e.message } }),
    }
}

/// An empty `data` object.
#[derive(Serialize)]
pub struct Empty {}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateTransport {
    pub room_id: String,
    pub direction: crate::rooms::Direction,
    #[serde(default)]
    pub sctp_capabilities: Option<Value>,
}

/// `check-connectivity-connect`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbeConnect {
    pub transport_id: String,
    pub dtls_parameters: Value,
}

/// `check-connectivity-produce`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbeProduce {
    pub transport_id: String,
    pub kind: vtp_sfu::rtp::MediaKind,
    pub rtp_parameters: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectTransport {
    pub room_id: String,
    pub transport_id: String,
    pub dtls_parameters: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransportRequest {
    pub room_id: String,
    pub transport_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Produce {
    pub room_id: String,
    pub transport_id: String,
    pub kind: vtp_sfu::rtp::MediaKind,
    pub rtp_parameters: Value,
    #[serde(default)]
    pub app_data: Option<serde_json::Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Consume {
    pub room_id: String,
    pub transport_id: String,
    pub producer_id: String,
    pub rtp_capabilities: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerRequest {
    pub room_id: String,
    pub consumer_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProducerRequest {
    pub room_id: String,
    pub producer_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreferredLayers {
    pub room_id: String,
    pub consumer_id: String,
    pub spatial_layer: u8,
    #[serde(default)]
    pub temporal_layer: Option<u8>,
}
