//! Public values of the engine: configuration, the JSON shapes handed back
//! to signalling (mediasoup's), outputs, events and errors.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::rtp::{MediaKind, RtpError, RtpParameters, RtpStreamType};

/// At most this many transports per router.
pub const MAX_TRANSPORTS_PER_ROUTER: usize = 1024;
/// At most this many peers per router.
pub const MAX_PEERS_PER_ROUTER: usize = 1024;
/// At most this many producers per transport.
pub const MAX_PRODUCERS_PER_TRANSPORT: usize = 32;
/// At most this many consumers per transport.
pub const MAX_CONSUMERS_PER_TRANSPORT: usize = 256;
/// At most this many datagrams are held for a transport whose `Rtc` is not
/// built yet (see the module doc); older ones are dropped.
pub const MAX_EARLY_DATAGRAMS: usize = 64;

/// How long a transport has, from `connect_transport`, to get ICE and
/// DTLS up before it is reported as failed (once; see
/// [`TransportFailures`]).
pub const CONNECT_DEADLINE: Duration = Duration::from_secs(30);

/// How the engine is set up.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// The first announced address with the UDP port every transport
    /// shares: the UDP host candidate of highest priority.
    pub local_addr: SocketAddr,
    /// Further announced addresses: each gets the same candidates as
    /// `local_addr`'s IP (UDP on its port, TCP on `tcp_port`), with lower
    /// priorities in this order.
    pub additional_ips: Vec<IpAddr>,
    /// The port of the passive ICE-TCP listener (RFC 6544): a TCP host
    /// candidate per announced address. `None`: UDP only.
    pub tcp_port: Option<u16>,
    /// See [`CONNECT_DEADLINE`].
    pub connect_deadline: Duration,
    pub max_transports_per_router: usize,
    pub max_producers_per_transport: usize,
    pub max_consumers_per_transport: usize,
    pub max_peers_per_router: usize,
    /// Seed of the engine's non-cryptographic generator (SSRCs, CNAMEs).
    pub seed: u64,
    /// The egress bandwidth estimate (bit/s) a receive transport starts
    /// from; `None` turns bandwidth estimation, pacing and the
    /// bandwidth-driven layer choice off (consumers then get their
    /// preferred layers whatever the link).
    pub initial_bandwidth_estimate_bps: Option<u64>,
}

/// The default [`EngineConfig::initial_bandwidth_estimate_bps`]: enough for
/// the middle layer of a camera, low enough not to flood a slow link while
/// the first TWCC feedback comes back.
pub const INITIAL_BANDWIDTH_ESTIMATE_BPS: u64 = 1_000_000;

impl EngineConfig {
    /// Defaults for `local_addr`, with the limits above and a random seed.
    pub fn new(local_addr: SocketAddr) -> Self {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(0x5654_5053_4655);
        EngineConfig {
            local_addr,
            additional_ips: Vec::new(),
            tcp_port: None,
            connect_deadline: CONNECT_DEADLINE,
            max_transports_per_router: MAX_TRANSPORTS_PER_ROUTER,
            max_producers_per_transport: MAX_PRODUCERS_PER_TRANSPORT,
            max_consumers_per_transport: MAX_CONSUMERS_PER_TRANSPORT,
            max_peers_per_router: MAX_PEERS_PER_ROUTER,
            seed: hasher.finish(),
            initial_bandwidth_estimate_bps: Some(INITIAL_BANDWIDTH_ESTIMATE_BPS),
        }
    }
}

impl EngineConfig {
    /// The announced IPs, first one first.
    pub fn announced_ips(&self) -> impl Iterator<Item = IpAddr> + '_ {
        std::iter::once(self.local_addr.ip()).chain(self.additional_ips.iter().copied())
    }

    /// Every local ICE candidate of a transport, in the order announced:
    /// UDP on each address, then TCP on each address.
    pub fn candidates(&self) -> Vec<LocalCandidate> {
        let udp = self.announced_ips().map(|ip| LocalCandidate {
            protocol: IceProtocol::Udp,
            addr: SocketAddr::new(ip, self.local_addr.port()),
        });
        let tcp = self.tcp_port.into_iter().flat_map(|port| {
            self.announced_ips().map(move |ip| LocalCandidate {
                protocol: IceProtocol::Tcp,
                addr: SocketAddr::new(ip, port),
            })
        });
        udp.chain(tcp).collect()
    }

    /// The local address str0m is told a packet arrived on: the candidate
    /// of that protocol in the source's address family (the driver's
    /// sockets may be bound to a wildcard and cannot tell which announced
    /// address a client used; str0m only needs a local candidate to pair
    /// with), else the first of that protocol.
    pub fn local_for(&self, protocol: IceProtocol, source: SocketAddr) -> Option<SocketAddr> {
        let port = match protocol {
            IceProtocol::Udp => self.local_addr.port(),
            IceProtocol::Tcp => self.tcp_port?,
        };
        let ip = self
            .announced_ips()
            .find(|ip| ip.is_ipv4() == source.is_ipv4())
            .unwrap_or(self.local_addr.ip());
        Some(SocketAddr::new(ip, port))
    }
}

/// The transport protocol of an ICE candidate and of the packets on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IceProtocol {
    Udp,
    /// ICE-TCP (RFC 6544): the engine's candidates are passive, packets are
    /// framed on the connection as RFC 4571 says (by the driver).
    Tcp,
}

impl IceProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            IceProtocol::Udp => "udp",
            IceProtocol::Tcp => "tcp",
        }
    }
}

/// One local ICE candidate of every transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalCandidate {
    pub protocol: IceProtocol,
    pub addr: SocketAddr,
}

/// Why a transport failed to connect or stopped working, reported once per
/// transport (logged with its router and transport ids, and counted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureReason {
    /// No ICE connectivity within the deadline after `connect_transport`.
    IceTimeout,
    /// ICE up, but no DTLS within the deadline.
    DtlsTimeout,
    /// str0m gave up before ICE connectivity.
    IceFailed,
    /// str0m gave up after ICE but before DTLS completed (handshake or
    /// fingerprint failure).
    DtlsFailed,
    /// The transport was connected, then str0m gave up (ICE consent
    /// expired: the client vanished or its network changed).
    Disconnected,
}

impl FailureReason {
    pub const ALL: [FailureReason; 5] = [
        FailureReason::IceTimeout,
        FailureReason::DtlsTimeout,
        FailureReason::IceFailed,
        FailureReason::DtlsFailed,
        FailureReason::Disconnected,
    ];

    /// The label value (`vtp_transport_failures_total{reason=…}`).
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::IceTimeout => "ice_timeout",
            FailureReason::DtlsTimeout => "dtls_timeout",
            FailureReason::IceFailed => "ice_failed",
            FailureReason::DtlsFailed => "dtls_failed",
            FailureReason::Disconnected => "disconnected",
        }
    }
}

/// Transport failures so far, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TransportFailures {
    pub ice_timeout: u64,
    pub dtls_timeout: u64,
    pub ice_failed: u64,
    pub dtls_failed: u64,
    pub disconnected: u64,
}

impl TransportFailures {
    pub fn get(&self, reason: FailureReason) -> u64 {
        match reason {
            FailureReason::IceTimeout => self.ice_timeout,
            FailureReason::DtlsTimeout => self.dtls_timeout,
            FailureReason::IceFailed => self.ice_failed,
            FailureReason::DtlsFailed => self.dtls_failed,
            FailureReason::Disconnected => self.disconnected,
        }
    }

    pub fn count(&mut self, reason: FailureReason) {
        let n = match reason {
            FailureReason::IceTimeout => &mut self.ice_timeout,
            FailureReason::DtlsTimeout => &mut self.dtls_timeout,
            FailureReason::IceFailed => &mut self.ice_failed,
            FailureReason::DtlsFailed => &mut self.dtls_failed,
            FailureReason::Disconnected => &mut self.disconnected,
        };
        *n += 1;
    }

    /// Adds `other`'s counts, reason by reason.
    pub fn add(&mut self, other: &TransportFailures) {
        self.ice_timeout += other.ice_timeout;
        self.dtls_timeout += other.dtls_timeout;
        self.ice_failed += other.ice_failed;
        self.dtls_failed += other.dtls_failed;
        self.disconnected += other.disconnected;
    }
}

/// Options of a new WebRTC transport.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransportOptions {
    /// Answer `sctpParameters` and run SCTP once DTLS is up (data channels).
    pub enable_sctp: bool,
    /// The peer (added with `add_peer`) that owns the transport: removing
    /// the peer closes it. `None` for a transport nobody owns.
    pub peer_id: Option<String>,
    /// Fixes the direction now; otherwise the first `produce` or `consume`
    /// decides it (mediasoup-client never mixes them on one transport).
    pub direction: Option<TransportDirection>,
}

/// Which way a transport carries media, from the client's side: `send`
/// transports carry producers, `recv` ones consumers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportDirection {
    Send,
    Recv,
}

/// `iceParameters` of a transport.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceParameters {
    pub username_fragment: String,
    pub password: String,
    pub ice_lite: bool,
}

/// One entry of `iceCandidates`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceCandidate {
    pub foundation: String,
    pub priority: u32,
    pub ip: String,
    pub address: String,
    pub port: u16,
    pub protocol: String,
    #[serde(rename = "type")]
    pub candidate_type: String,
    /// `"passive"` on TCP candidates (the client connects to us).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_type: Option<String>,
}

/// One entry of `dtlsParameters.fingerprints`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DtlsFingerprint {
    pub algorithm: String,
    pub value: String,
}

/// `dtlsParameters`, as sent and as received.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DtlsParameters {
    #[serde(default = "auto_role")]
    pub role: String,
    pub fingerprints: Vec<DtlsFingerprint>,
}

fn auto_role() -> String {
    "auto".to_owned()
}

/// `sctpParameters` of a transport with SCTP.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SctpParameters {
    pub port: u16,
    #[serde(rename = "OS")]
    pub os: u16,
    #[serde(rename = "MIS")]
    pub mis: u16,
    pub max_message_size: u32,
}

/// What `create-transport` answers (`{ id, iceParameters, iceCandidates,
/// dtlsParameters, sctpParameters? }`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransportInfo {
    pub id: String,
    pub ice_parameters: IceParameters,
    pub ice_candidates: Vec<IceCandidate>,
    pub dtls_parameters: DtlsParameters,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sctp_parameters: Option<SctpParameters>,
}

/// What `consume` answers (`{ id, producerId, kind, rtpParameters, type,
/// producerPaused }`). The consumer starts paused.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerInfo {
    pub id: String,
    pub producer_id: String,
    pub kind: MediaKind,
    pub rtp_parameters: RtpParameters,
    #[serde(rename = "type")]
    pub consumer_type: RtpStreamType,
    pub producer_paused: bool,
}

/// What `produce` decided.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProducerInfo {
    pub id: String,
    pub kind: MediaKind,
    #[serde(rename = "type")]
    pub producer_type: RtpStreamType,
}

/// Something for the driver to do or to know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EngineOutput {
    /// Send `bytes` to `destination` over `protocol`: a UDP datagram from
    /// the engine's port, or a frame on the TCP connection from
    /// `destination` (the driver keys its connections by remote address).
    Transmit {
        protocol: IceProtocol,
        destination: SocketAddr,
        bytes: Vec<u8>,
    },
    Event(EngineEvent),
    /// A packet for a tap (see `add_tap`).
    Tapped {
        tap_id: String,
        packet: super::TapPacket,
    },
}

/// Why something closed without being asked to directly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CloseReason {
    /// Its producer was closed.
    ProducerClosed,
    /// Its transport was closed.
    TransportClosed,
    /// Its router was closed.
    RouterClosed,
    /// ICE or DTLS failed, or the peer went away (the `Rtc` died).
    Failed,
}

/// Things that happened inside the engine. Objects closed by a direct call
/// (`close_producer` for that producer, …) produce no event; everything
/// closed as a consequence does. Serialised as `{"type": "consumerClosed",
/// "consumerId": …}` for the control API's event stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum EngineEvent {
    /// ICE and DTLS are up; media can flow.
    TransportConnected { transport_id: String },
    TransportClosed {
        transport_id: String,
        reason: CloseReason,
    },
    ProducerClosed {
        producer_id: String,
        reason: CloseReason,
    },
    ConsumerClosed {
        consumer_id: String,
        producer_id: String,
        reason: CloseReason,
    },
    /// The consumer's producer was paused (`consumer-paused`).
    ConsumerPaused { consumer_id: String },
    /// The consumer's producer was resumed (`consumer-resumed`).
    ConsumerResumed { consumer_id: String },
    /// A keyframe (PLI) was asked of one stream (encoding index `layer`) of a
    /// producer.
    KeyframeRequested { producer_id: String, layer: usize },
    /// The layers a consumer gets changed (`consumer-layers-changed`): a
    /// switch of simulcast encoding or of VP8 temporal ceiling took effect.
    ConsumerLayersChanged {
        consumer_id: String,
        spatial_layer: u8,
        temporal_layer: u8,
    },
    /// The router's active speaker changed (`active-speaker`): the audio
    /// producer that has been the loudest for a while, with its mean level
    /// in dBov (0 loudest, -127 silent). Silence emits nothing.
    ActiveSpeaker { producer_id: String, volume: i8 },
    /// The highest spatial layer (simulcast encoding) of a producer that
    /// some consumer may use changed (`producer-layers-needed`): its
    /// publisher may stop encoding the layers above, and must send them
    /// again when this rises. Rises come at once, falls after
    /// [`LAYERS_NEEDED_HOLD`](super::LAYERS_NEEDED_HOLD); see `needed`.
    ProducerLayersNeeded {
        producer_id: String,
        max_spatial_layer: u8,
    },
    /// A tap ended because its producer closed.
    TapClosed { tap_id: String, producer_id: String },
}

/// Why an engine call was refused. A refused call changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EngineError {
    #[error("unknown router {0:?}")]
    UnknownRouter(String),
    #[error("unknown transport {0:?}")]
    UnknownTransport(String),
    #[error("unknown producer {0:?}")]
    UnknownProducer(String),
    #[error("unknown consumer {0:?}")]
    UnknownConsumer(String),
    #[error("unknown peer {0:?}")]
    UnknownPeer(String),
    #[error("unknown tap {0:?}")]
    UnknownTap(String),
    #[error("{what} {id:?} already exists")]
    DuplicateId { what: &'static str, id: String },
    #[error("too many {what} (at most {max})")]
    LimitReached { what: &'static str, max: usize },
    #[error("invalid dtlsParameters: {0}")]
    InvalidDtlsParameters(String),
    #[error("transport {0:?} is already connected")]
    AlreadyConnected(String),
    #[error("producer {producer_id:?} is in another router than transport {transport_id:?}")]
    OtherRouter {
        producer_id: String,
        transport_id: String,
    },
    /// mediasoup-client uses a transport for sending or for receiving, never
    /// both; the engine relies on it (see the module doc).
    #[error("transport {transport_id:?} is used for {used}, not {asked}")]
    WrongDirection {
        transport_id: String,
        used: &'static str,
        asked: &'static str,
    },
    #[error("invalid layers: {0}")]
    InvalidLayers(String),
    #[error("the consumer's rtpCapabilities cannot receive producer {0:?}")]
    CannotConsume(String),
    /// Well-formed parameters this engine cannot take (a payload type or
    /// header-extension id that differs from what the transport was set up
    /// with, a MID str0m cannot represent, …).
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error(transparent)]
    Rtp(#[from] RtpError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl EngineError {
    /// The protocol's error code (design §3) for this refusal.
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::UnknownRouter(_)
            | EngineError::UnknownTransport(_)
            | EngineError::UnknownProducer(_)
            | EngineError::UnknownConsumer(_)
            | EngineError::UnknownPeer(_)
            | EngineError::UnknownTap(_) => "not_found",
            EngineError::DuplicateId { .. } | EngineError::AlreadyConnected(_) => "conflict",
            EngineError::LimitReached { .. } => "limit_reached",
            EngineError::Internal(_) => "internal",
            _ => "bad_request",
        }
    }
}
