//! The SFU control surface (docs/protocol.md, "SFU control API") as one
//! trait, [`SfuControl`], whose one operation is [`SfuControl::call`]: an
//! [`SfuRequest`] in, an [`SfuResponse`] out.
//!
//! An API node drives media through this trait and nothing else. In the
//! default single process the implementation is the local driver
//! ([`crate::SfuHandle`], module `local`); when the SFU runs on other
//! machines it is an HTTP client of `/sfu/v1` (in the server crate), whose
//! routes hand the same requests to the SFU node's `call`. The operations
//! are written once, as the table in `request.rs`: the REST routes, the
//! HTTP client and the typed methods below all follow from it, so the two
//! paths take the same requests, make the same checks and give the same
//! errors.
//!
//! Rooms are routers, named by the caller. Peers are owner tags: a peer
//! owns the transports created for it, and removing the peer closes them
//! and everything they carry. Transport, producer and consumer ids are
//! made by the SFU. Every call names its room, and an object of another
//! room is answered as unknown.
//!
//! Taps (recording) are not part of the table: a tap hands packets over on
//! a channel, which only an SFU in the same process can do.

mod request;
mod response;

pub use request::{
    Connect, Consume, CreateTransport, NewPeer, PreferredLayers, Produce, REST_PREFIX, RestCall,
    RestMethod, Route, SfuRequest,
};
pub use response::{Done, IceRestarted, PeerAdded, RoomOpened, SfuHealth, SfuResponse};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;
use tokio::sync::mpsc::UnboundedReceiver;
use vtp_sfu::engine::{
    ConsumerInfo, EngineError, IceParameters, ProducerInfo, RouterSnapshot, RouterSummary, TapInfo,
    TapPacket, TransportInfo,
};
use vtp_sfu::rtp::RtpCapabilities;

use crate::DriverEvent;

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
    /// A cap on how many of something there may be (consumers on a
    /// transport, producers, …) is reached: close some first.
    LimitReached,
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
            SfuErrorCode::LimitReached => "limit_reached",
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
            "limit_reached" => SfuErrorCode::LimitReached,
            "bad_request" => SfuErrorCode::BadRequest,
            _ => SfuErrorCode::Internal,
        };
        SfuError::new(code, err.to_string())
    }
}

pub type SfuResult<T> = Result<T, SfuError>;

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
///
/// An implementation writes [`call`](SfuControl::call), `describe`,
/// `events` and `shutdown` (and, in process, the taps). The typed methods
/// are forms of `call` written once here for every implementation and
/// every caller; they are not meant to be overridden.
#[async_trait]
pub trait SfuControl: Send + Sync + 'static {
    /// One line for the start-up log (where the SFU is).
    fn describe(&self) -> String;

    /// Runs one operation. A refused call changes nothing.
    async fn call(&self, request: SfuRequest) -> SfuResult<SfuResponse>;

    /// Events from now on (things closed or paused as a consequence, …),
    /// tagged with their room. The stream ends when the SFU stops.
    fn events(&self) -> UnboundedReceiver<DriverEvent>;

    /// Stops the SFU if it is local; a remote one is left running.
    async fn shutdown(&self);

    /// Starts a tap on a producer (recording). Only an SFU in this process
    /// can hand packets over; others answer `unavailable`.
    async fn open_tap(&self, _room_id: &str, _producer_id: &str) -> SfuResult<Tap> {
        Err(SfuError::unavailable(
            "recording needs the SFU in this process: an --role api node cannot record yet",
        ))
    }

    async fn close_tap(&self, _room_id: &str, tap_id: &str) -> SfuResult<()> {
        Err(unknown_tap(tap_id))
    }

    /// Asks the tapped producer for a keyframe (rate-limited).
    async fn request_tap_keyframe(&self, _room_id: &str, tap_id: &str) -> SfuResult<()> {
        Err(unknown_tap(tap_id))
    }

    // Typed forms of `call`, one per operation of the table.

    async fn health(&self) -> SfuResult<SfuHealth> {
        self.call(SfuRequest::Health {}).await?.try_into()
    }

    async fn rooms(&self) -> SfuResult<Vec<RouterSummary>> {
        self.call(SfuRequest::Rooms {}).await?.try_into()
    }

    async fn room(&self, room_id: &str) -> SfuResult<RouterSnapshot> {
        let room_id = room_id.to_owned();
        self.call(SfuRequest::Room { room_id }).await?.try_into()
    }

    /// Opens a room (a router) if it is not open yet; its capabilities.
    async fn open_room(&self, room_id: &str) -> SfuResult<RtpCapabilities> {
        let room_id = room_id.to_owned();
        let opened: RoomOpened = self
            .call(SfuRequest::OpenRoom { room_id })
            .await?
            .try_into()?;
        Ok(opened.rtp_capabilities)
    }

    /// Closes a room and everything in it.
    async fn close_room(&self, room_id: &str) -> SfuResult<()> {
        let room_id = room_id.to_owned();
        done(self.call(SfuRequest::CloseRoom { room_id }).await?)
    }

    /// Adds a peer, opening the room if needed; the room's capabilities.
    async fn add_peer(&self, room_id: &str, peer_id: &str) -> SfuResult<RtpCapabilities> {
        let request = SfuRequest::AddPeer {
            room_id: room_id.to_owned(),
            body: NewPeer {
                peer_id: peer_id.to_owned(),
            },
        };
        let added: PeerAdded = self.call(request).await?.try_into()?;
        Ok(added.rtp_capabilities)
    }

    /// Removes a peer and everything it owns.
    async fn remove_peer(&self, room_id: &str, peer_id: &str) -> SfuResult<()> {
        let (room_id, peer_id) = (room_id.to_owned(), peer_id.to_owned());
        done(
            self.call(SfuRequest::RemovePeer { room_id, peer_id })
                .await?,
        )
    }

    async fn create_transport(
        &self,
        room_id: &str,
        body: CreateTransport,
    ) -> SfuResult<TransportInfo> {
        let room_id = room_id.to_owned();
        let request = SfuRequest::CreateTransport { room_id, body };
        self.call(request).await?.try_into()
    }

    async fn connect_transport(
        &self,
        room_id: &str,
        transport_id: &str,
        dtls_parameters: Value,
    ) -> SfuResult<()> {
        let request = SfuRequest::ConnectTransport {
            room_id: room_id.to_owned(),
            transport_id: transport_id.to_owned(),
            body: Connect { dtls_parameters },
        };
        done(self.call(request).await?)
    }

    async fn restart_ice(&self, room_id: &str, transport_id: &str) -> SfuResult<IceParameters> {
        let (room_id, transport_id) = (room_id.to_owned(), transport_id.to_owned());
        let request = SfuRequest::RestartIce {
            room_id,
            transport_id,
        };
        let restarted: IceRestarted = self.call(request).await?.try_into()?;
        Ok(restarted.ice_parameters)
    }

    async fn close_transport(&self, room_id: &str, transport_id: &str) -> SfuResult<()> {
        let (room_id, transport_id) = (room_id.to_owned(), transport_id.to_owned());
        let request = SfuRequest::CloseTransport {
            room_id,
            transport_id,
        };
        done(self.call(request).await?)
    }

    async fn produce(&self, room_id: &str, body: Produce) -> SfuResult<ProducerInfo> {
        let room_id = room_id.to_owned();
        self.call(SfuRequest::Produce { room_id, body })
            .await?
            .try_into()
    }

    async fn set_producer_paused(
        &self,
        room_id: &str,
        producer_id: &str,
        paused: bool,
    ) -> SfuResult<()> {
        let (room_id, producer_id) = (room_id.to_owned(), producer_id.to_owned());
        let request = if paused {
            SfuRequest::PauseProducer {
                room_id,
                producer_id,
            }
        } else {
            SfuRequest::ResumeProducer {
                room_id,
                producer_id,
            }
        };
        done(self.call(request).await?)
    }

    async fn close_producer(&self, room_id: &str, producer_id: &str) -> SfuResult<()> {
        let (room_id, producer_id) = (room_id.to_owned(), producer_id.to_owned());
        let request = SfuRequest::CloseProducer {
            room_id,
            producer_id,
        };
        done(self.call(request).await?)
    }

    async fn consume(&self, room_id: &str, body: Consume) -> SfuResult<ConsumerInfo> {
        let room_id = room_id.to_owned();
        self.call(SfuRequest::Consume { room_id, body })
            .await?
            .try_into()
    }

    async fn set_consumer_paused(
        &self,
        room_id: &str,
        consumer_id: &str,
        paused: bool,
    ) -> SfuResult<()> {
        let (room_id, consumer_id) = (room_id.to_owned(), consumer_id.to_owned());
        let request = if paused {
            SfuRequest::PauseConsumer {
                room_id,
                consumer_id,
            }
        } else {
            SfuRequest::ResumeConsumer {
                room_id,
                consumer_id,
            }
        };
        done(self.call(request).await?)
    }

    /// The consumer's preferred layers; what it then gets is told by
    /// `ConsumerLayersChanged` events.
    async fn set_consumer_preferred_layers(
        &self,
        room_id: &str,
        consumer_id: &str,
        body: PreferredLayers,
    ) -> SfuResult<()> {
        let request = SfuRequest::SetConsumerLayers {
            room_id: room_id.to_owned(),
            consumer_id: consumer_id.to_owned(),
            body,
        };
        done(self.call(request).await?)
    }

    async fn close_consumer(&self, room_id: &str, consumer_id: &str) -> SfuResult<()> {
        let (room_id, consumer_id) = (room_id.to_owned(), consumer_id.to_owned());
        let request = SfuRequest::CloseConsumer {
            room_id,
            consumer_id,
        };
        done(self.call(request).await?)
    }
}

/// The answer of an operation that only acts.
fn done(response: SfuResponse) -> SfuResult<()> {
    Done::try_from(response).map(|Done {}| ())
}

fn unknown_tap(tap_id: &str) -> SfuError {
    SfuError::new(SfuErrorCode::NotFound, format!("unknown tap {tap_id:?}"))
}
