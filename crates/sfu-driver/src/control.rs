//! The SFU control surface (docs/protocol.md, "SFU control API") as one trait, [`SfuControl`].
//!
//! An API node drives media through this trait and nothing else. In the
//! default single process the implementation is the local driver
//! ([`crate::SfuHandle`]); when the SFU runs on other machines it is an
//! HTTP client of `/sfu/v1` (in the server crate), whose routes call the
//! same trait on the SFU node. Both paths therefore take the same
//! requests, make the same checks and give the same errors: they cannot
//! drift.
//!
//! Rooms are routers, named by the caller. Peers are owner tags: a peer
//! owns the transports created for it, and removing the peer closes them
//! and everything they carry. Transport, producer and consumer ids are
//! made by the SFU. Every call names its room, and an object of another
//! room is answered as unknown.

use std::net::SocketAddr;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;
use tokio::sync::mpsc::UnboundedReceiver;
use vtp_sfu::engine::{
    ConsumerInfo, EngineError, IceParameters, ProducerInfo, RouterSnapshot, RouterSummary, TapInfo,
    TapPacket, TransportDirection, TransportInfo,
};
use vtp_sfu::rtp::{MediaKind, RtpCapabilities};

use crate::{DriverEvent, DriverStats};

/// The protocol's error codes (docs/protocol.md), as the SFU uses them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SfuErrorCode {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    RateLimited,
    /// The SFU cannot be reached or is shutting down.
    Unavailable,
    Internal,
}

impl SfuErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            SfuErrorCode::BadRequest => "bad_request",
            SfuErrorCode::Unauthorized => "unauthorized",
            SfuErrorCode::Forbidden => "forbidden",
            SfuErrorCode::NotFound => "not_found",
            SfuErrorCode::Conflict => "conflict",
            SfuErrorCode::RateLimited => "rate_limited",
            SfuErrorCode::Unavailable => "unavailable",
            SfuErrorCode::Internal => "internal",
        }
    }
}

/// Why an SFU call was refused; a refused call changes nothing.
#[derive(Clone, Debug, PartialEq, Eq, Error, Serialize, Deserialize)]
#[error("{message}")]
pub struct SfuError {
    pub code: SfuErrorCode,
    pub message: String,
}

impl SfuError {
    pub fn new(code: SfuErrorCode, message: impl Into<String>) -> SfuError {
        SfuError {
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> SfuError {
        SfuError::new(SfuErrorCode::BadRequest, message)
    }

    pub fn unavailable(message: impl Into<String>) -> SfuError {
        SfuError::new(SfuErrorCode::Unavailable, message)
    }
}

impl From<EngineError> for SfuError {
    fn from(err: EngineError) -> SfuError {
        let code = match err.code() {
            "not_found" => SfuErrorCode::NotFound,
            "conflict" => SfuErrorCode::Conflict,
            "rate_limited" => SfuErrorCode::RateLimited,
            "bad_request" => SfuErrorCode::BadRequest,
            _ => SfuErrorCode::Internal,
        };
        SfuError::new(code, err.to_string())
    }
}

pub type SfuResult<T> = Result<T, SfuError>;

/// `POST /sfu/v1/rooms/{roomId}/transports`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateTransport {
    pub peer_id: String,
    pub direction: TransportDirection,
    /// Answer `sctpParameters` (the client sent `sctpCapabilities`).
    #[serde(default)]
    pub enable_sctp: bool,
}

/// `POST /sfu/v1/rooms/{roomId}/producers`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Produce {
    pub peer_id: String,
    pub transport_id: String,
    pub kind: MediaKind,
    pub rtp_parameters: Value,
    /// Kept by the API node; accepted here so the REST body is the seed's.
    #[serde(default)]
    pub app_data: Value,
}

/// `POST /sfu/v1/rooms/{roomId}/consumers`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Consume {
    pub peer_id: String,
    pub transport_id: String,
    pub producer_id: String,
    pub rtp_capabilities: Value,
}

/// `POST /sfu/v1/rooms/{roomId}/consumers/{consumerId}/layers`: the best
/// layers the consumer wants (`set-preferred-layers`; 0 to 2 each, every
/// temporal layer when `temporalLayer` is absent).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PreferredLayers {
    pub spatial_layer: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temporal_layer: Option<u8>,
}

/// `GET /sfu/v1/health`: liveness plus load.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SfuHealth {
    /// Not shut down, and every thread alive.
    pub running: bool,
    /// The UDP address announced in ICE candidates.
    pub local_addr: SocketAddr,
    pub rooms: usize,
    pub peers: usize,
    pub transports: usize,
    pub producers: usize,
    pub consumers: usize,
    /// CPU time of the SFU's process, in seconds, since it started.
    pub cpu_seconds: Option<f64>,
    /// CPU use of the process since the previous health call (or start),
    /// in percent of one core.
    pub cpu_percent: Option<f64>,
    pub stats: DriverStats,
}

/// A tap on a producer: its packets as plain RTP (see
/// `vtp_sfu::engine::TapInfo`), for a recorder. The stream ends when the
/// tap or its producer closes. Bounded: a reader that falls behind loses
/// packets (counted in `tap_drops`), never slows forwarding.
#[derive(Debug)]
pub struct Tap {
    pub info: TapInfo,
    pub packets: std::sync::mpsc::Receiver<TapPacket>,
}

/// Packets a tap holds for its reader before it drops (about ten seconds
/// of 1 Mbit/s video).
pub const TAP_CAPACITY: usize = 1024;

/// The control surface. See the module doc.
#[async_trait]
pub trait SfuControl: Send + Sync + 'static {
    /// One line for the start-up log (where the SFU is).
    fn describe(&self) -> String;

    async fn health(&self) -> SfuResult<SfuHealth>;
    async fn rooms(&self) -> SfuResult<Vec<RouterSummary>>;
    async fn room(&self, room_id: &str) -> SfuResult<RouterSnapshot>;

    /// Opens a room (a router) if it is not open yet; its capabilities.
    async fn open_room(&self, room_id: &str) -> SfuResult<RtpCapabilities>;
    /// Closes a room and everything in it.
    async fn close_room(&self, room_id: &str) -> SfuResult<()>;

    /// Adds a peer, opening the room if needed; the room's capabilities.
    async fn add_peer(&self, room_id: &str, peer_id: &str) -> SfuResult<RtpCapabilities>;
    /// Removes a peer and everything it owns.
    async fn remove_peer(&self, room_id: &str, peer_id: &str) -> SfuResult<()>;

    async fn create_transport(
        &self,
        room_id: &str,
        request: CreateTransport,
    ) -> SfuResult<TransportInfo>;
    async fn connect_transport(
        &self,
        room_id: &str,
        transport_id: &str,
        dtls_parameters: Value,
    ) -> SfuResult<()>;
    async fn restart_ice(&self, room_id: &str, transport_id: &str) -> SfuResult<IceParameters>;
    async fn close_transport(&self, room_id: &str, transport_id: &str) -> SfuResult<()>;

    async fn produce(&self, room_id: &str, request: Produce) -> SfuResult<ProducerInfo>;
    async fn set_producer_paused(
        &self,
        room_id: &str,
        producer_id: &str,
        paused: bool,
    ) -> SfuResult<()>;
    async fn close_producer(&self, room_id: &str, producer_id: &str) -> SfuResult<()>;

    async fn consume(&self, room_id: &str, request: Consume) -> SfuResult<ConsumerInfo>;
    async fn set_consumer_paused(
        &self,
        room_id: &str,
        consumer_id: &str,
        paused: bool,
    ) -> SfuResult<()>;
    /// The consumer's preferred layers; what it then gets is told by
    /// `ConsumerLayersChanged` events.
    async fn set_consumer_preferred_layers(
        &self,
        room_id: &str,
        consumer_id: &str,
        layers: PreferredLayers,
    ) -> SfuResult<()>;
    async fn close_consumer(&self, room_id: &str, consumer_id: &str) -> SfuResult<()>;

    /// Starts a tap on a producer (recording). Only an SFU in this process
    /// can hand packets over; a remote one answers `unavailable`.
    async fn open_tap(&self, room_id: &str, producer_id: &str) -> SfuResult<Tap>;
    async fn close_tap(&self, room_id: &str, tap_id: &str) -> SfuResult<()>;
    /// Asks the tapped producer for a keyframe (rate-limited).
    async fn request_tap_keyframe(&self, room_id: &str, tap_id: &str) -> SfuResult<()>;

    /// Events from now on (things closed or paused as a consequence, …),
    /// tagged with their room. The stream ends when the SFU stops.
    fn events(&self) -> UnboundedReceiver<DriverEvent>;

    /// Stops the SFU if it is local; a remote one is left running.
    async fn shutdown(&self);
}
