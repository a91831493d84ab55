//! Client of VTP.
//!
//! * [`SocketIoClient`]: a Socket.IO v4 client (websocket transport) for the
//!   signalling protocol of docs/protocol.md, used by the integration tests and the
//!   load generator.
//! * [`media::MediaPeer`]: a str0m WebRTC peer that talks to the SFU with
//!   mediasoup's JSON shapes, sends synthetic VP8/Opus and counts what it
//!   receives (and, for servers that negotiate with SDP, `media::sdp`).
//! * [`janus`]: Janus's VideoRoom over its HTTP API, with the same media
//!   peer, for the benchmark against Janus.

pub mod janus;
pub mod media;
pub mod socketio;

pub use media::{
    AudioOptions, ConsumerStats, Direction, IceTransport, KeyframeKind, Kind, LayerStats,
    LocalProducer, MediaError, MediaEvent, MediaPeer, MediaTransport, PeerStats, ProducerStats,
    RemoteConsumer, TransportStats, VideoOptions,
};
pub use socketio::{ClientError, SocketIoClient};
