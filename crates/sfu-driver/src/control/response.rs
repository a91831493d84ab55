//! The answers of the SFU control API: one [`SfuResponse`] variant per shape
//! of answer (the table in `request.rs` says which operation gives which).
//! Serialized, a response is its variant's JSON alone: the REST answer of
//! docs/protocol.md.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use vtp_sfu::engine::{
    ConsumerInfo, IceParameters, ProducerInfo, RouterSnapshot, RouterSummary, TransportInfo,
};
use vtp_sfu::rtp::RtpCapabilities;

use super::{SfuError, SfuErrorCode};
use crate::DriverStats;

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

/// `OpenRoom`'s answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomOpened {
    pub room_id: String,
    pub rtp_capabilities: RtpCapabilities,
}

/// `AddPeer`'s answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerAdded {
    pub peer_id: String,
    pub rtp_capabilities: RtpCapabilities,
}

/// `RestartIce`'s answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceRestarted {
    pub ice_parameters: IceParameters,
}

/// `{}`: the answer of calls that only act.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {}

macro_rules! responses {
    ($($(#[doc = $doc:literal])* $variant:ident($answer:ty),)*) => {
        /// The answer to an [`SfuRequest`](super::SfuRequest).
        #[derive(Clone, Debug, PartialEq, Serialize)]
        #[serde(untagged)]
        pub enum SfuResponse {
            $($(#[doc = $doc])* $variant($answer),)*
        }

        impl SfuResponse {
            fn kind(&self) -> &'static str {
                match self {
                    $(SfuResponse::$variant(_) => stringify!($variant),)*
                }
            }
        }

        $(
            /// The typed answer; another variant is an `internal` error.
            impl TryFrom<SfuResponse> for $answer {
                type Error = SfuError;

                fn try_from(response: SfuResponse) -> Result<Self, SfuError> {
                    match response {
                        SfuResponse::$variant(answer) => Ok(answer),
                        other => Err(unexpected(&other, stringify!($variant))),
                    }
                }
            }
        )*
    };
}

responses! {
    Health(SfuHealth),
    Rooms(Vec<RouterSummary>),
    Room(RouterSnapshot),
    RoomOpened(RoomOpened),
    PeerAdded(PeerAdded),
    Transport(TransportInfo),
    IceRestarted(IceRestarted),
    Producer(ProducerInfo),
    Consumer(ConsumerInfo),
    Done(Done),
}

/// An implementation answered an operation with another operation's shape
/// (a bug; the contract tests run every operation on both).
fn unexpected(got: &SfuResponse, wanted: &str) -> SfuError {
    SfuError::new(
        SfuErrorCode::Internal,
        format!("the SFU answered {} where {wanted} was due", got.kind()),
    )
}
