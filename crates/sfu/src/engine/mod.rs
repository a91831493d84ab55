//! The sans-IO media engine: routers, WebRTC transports, producers and
//! consumers on str0m's Direct API, and RTP forwarding between them.
//!
//! Time and datagrams are inputs, datagrams to send and events are outputs
//! (str0m's own style): the driver calls [`Engine::handle_receive`] for
//! every UDP datagram that arrived on the engine's port and every RFC 4571
//! frame read from an ICE-TCP connection (or [`Engine::handle_datagram`],
//! UDP only), [`Engine::handle_timeout`] when [`Engine::next_timeout`] has
//! passed, and drains [`Engine::poll_output`] after each call. There are no sockets,
//! clocks, threads or locks here. Rooms, peers and auth are not known: the
//! engine knows routers, transports, producers and consumers by the opaque
//! string ids the caller gives it (unique per kind across the engine).
//!
//! # Demultiplexing
//!
//! Every transport shares one UDP port (and one TCP port) and is an
//! ICE-lite, controlled, RTP-mode `Rtc`. Its candidates
//! ([`EngineConfig::candidates`]) are a UDP host candidate per announced
//! address and, with [`EngineConfig::tcp_port`], a passive TCP host
//! candidate per address (RFC 6544), with priorities that put every UDP
//! candidate first. A STUN packet is routed by the local ufrag in its
//! USERNAME and teaches the engine its source (protocol and address: a TCP
//! connection's remote address is its own key); anything else is routed by
//! source. Packets reach str0m with their protocol, and its transmits come
//! back as [`EngineOutput::Transmit`] with the protocol of the pair ICE
//! nominated, so the driver answers on the socket or connection a packet
//! came from.
//! The remote ufrag in USERNAME is given to str0m
//! (mediasoup-client never signals it, and str0m's ICE agent needs it).
//! After each datagram or timeout every touched `Rtc` is drained until it
//! asks for a timeout, before the next input.
//!
//! # Failures
//!
//! A transport that is not connected (ICE and DTLS) within
//! [`EngineConfig::connect_deadline`] of `connect_transport`, or whose
//! `Rtc` dies, is reported once: a warning with its router and transport
//! ids and a [`FailureReason`], counted in
//! [`Engine::transport_failures`]. A late transport is not closed (the
//! client may still get through, or restart ICE); a dead one is, with
//! `TransportClosed { reason: failed }` as before.
//!
//! # Producer payload types and header-extension ids (build on first use)
//!
//! str0m parses incoming RTP with the codec table and extension map fixed
//! when its `Rtc` is built, and a browser sends with *its own* payload types
//! and extension ids, which the engine learns only at `produce`, after
//! `connect` (so after ICE may have started). The engine therefore builds a
//! transport's `Rtc` lazily, at its first `produce` or `consume`:
//!
//! * first `produce`: the `Rtc` is built to receive whatever the browser's
//!   numbering may still bring (`rtpmap` has the argument): the first
//!   producer's codecs exactly (with their RTX), an opaque placeholder on
//!   every other dynamic payload type, str0m's own extensions (MID, RID,
//!   repaired RID, transport-cc) at the first producer's ids and a raw
//!   capture on every other id. Each later producer is read with its own
//!   numbers: its payload types (RTX included) are mapped through its own
//!   negotiation, its audio level and video orientation are read at its
//!   own ids, and the RID streams str0m cannot map (their ids were not the
//!   first producer's) are found by the engine in the clear-text header
//!   (`hdrext`) and declared. Within one BUNDLE group a browser uses one id
//!   per URI and one payload type per codec, so the producers of a send
//!   transport agree; one that contradicts an earlier one is refused
//!   (`Unsupported`). Nothing is guessed.
//! * first `consume`: the `Rtc` gets the router's codecs and extension ids,
//!   the numbering every consumer's `rtpParameters` use.
//!
//! A transport is therefore either a send or a receive transport (as
//! mediasoup-client always uses them). Until its `Rtc` exists, the datagrams
//! of a transport are held (at most [`MAX_EARLY_DATAGRAMS`], oldest dropped)
//! and fed in when it is built; the browser retransmits STUN anyway. The
//! `connect` parameters are kept and applied at build time too. This needs
//! no patched str0m and no SDP. The one DTLS
//! certificate of the engine (as a mediasoup worker has) lets
//! `create_webrtc_transport` announce the fingerprint before the `Rtc`
//! exists.
//!
//! # Forwarding
//!
//! RTP mode: each packet str0m delivers for a producer stream (after its
//! own NACK/RTX repair) is written to every active consumer of that
//! producer bound to that stream, with the consumer's payload type (router
//! numbering via [`RtpMapping`](crate::rtp::RtpMapping)), its own SSRC and
//! its own continuous sequence numbers ([`forward::SeqRewriter`]); RTP
//! timestamp, marker, audio level and payload are kept. Video consumers are
//! written nackable with RTX, so str0m answers their NACKs from its send
//! buffer. A consumer of a simulcast producer (VP8 or H.264) gets one
//! encoding at a time, chosen from its preferred layers, its transport's
//! bandwidth (below) and the encodings that are arriving, and switches only at a keyframe of the new one, with
//! sequence numbers, timestamps and VP8 picture ids kept continuous; VP8
//! temporal layers above its ceiling are dropped (`layers`, `vp8`). Other
//! simulcast codecs stay on the first encoding. Keyframe requests from a
//! consumer, a consumer being resumed, a receive transport connecting and
//! a pending layer switch ask the producer stream concerned for a PLI, at
//! most one per [`forward::KEYFRAME_REQUEST_INTERVAL`] per stream. The
//! audio level of audio packets feeds the router's active speaker detector
//! (`speaker`), which emits [`EngineEvent::ActiveSpeaker`].
//!
//! A simulcast producer's publisher hears which of its layers some
//! consumer may use ([`EngineEvent::ProducerLayersNeeded`]: the highest
//! preferred spatial layer over its unpaused consumers, layer 0 at least,
//! the top layer while a recording taps it; rises at once, falls after [`LAYERS_NEEDED_HOLD`]), so it can stop
//! encoding the others (`needed`).
//!
//! # Bandwidth: estimate, pacing, layer choice
//!
//! A receive transport's `Rtc` is built with str0m's send-side bandwidth
//! estimator on ([`EngineConfig::initial_bandwidth_estimate_bps`], 1 Mbit/s
//! by default; `None` turns all of this off) when its first consumer's
//! client sends TWCC feedback (its parameters keep the transport-wide-cc
//! extension and `transport-cc` feedback, which a device lists only when it
//! sends it, as browsers do). Without feedback the estimate would stay at
//! the initial guess and the pacer would hold the client's downlink to it. What str0m does
//! with it (read in its 0.25 source): every RTP packet the engine writes
//! with `write_rtp` in RTP mode goes into the stream's send queue and
//! leaves through the pacer (a leaky bucket pacing at 1.1 times the
//! estimate, draining faster when packets would wait too long; without BWE
//! the pacer is a pass-through), and str0m itself stamps each packet with
//! the transport-wide sequence number when the media's extension map has
//! transport-cc (the router's id 5), registers it and reads the client's
//! TWCC feedback into the estimator (delay- and loss-based, with probing by
//! padding). The consumer's `rtpParameters` carry that extension and the
//! `transport-cc` feedback, so a browser (or a str0m client that enables
//! TWCC feedback) answers with feedback.
//!
//! `Event::EgressBitrateEstimate` updates the transport's estimate
//! (`bandwidth`). It limits layers only once TWCC feedback has moved it off
//! its initial value and str0m can probe: a client that sends no feedback
//! is never limited by a guess. On each estimate and on the 100 ms layer
//! tick the transport's estimate is allocated over its consumers
//! (`allocation`: audio first, every video consumer's lowest step, then
//! upgrades, screen shares first and keeping resolution before frame rate,
//! cameras round-robin keeping frame rate; down as soon as the estimate no
//! longer covers what is sent, up only when it covers the transport's new
//! total with 15 % to spare, held for 500 ms). The result is each video consumer's
//! bandwidth ceiling, a second ceiling next to its preferred layers in
//! `layers`: a lower temporal layer applies at the next frame, a spatial
//! switch at a keyframe of the new layer (asked at once), and
//! `ConsumerLayersChanged` tells what is sent as before. The engine tells
//! str0m the rate of every consumer at its preferred layers as the desired
//! bitrate (it probes towards it, which is how a consumer climbs back when
//! a cap is lifted) and the rate of the next step up as the minimum (padding
//! keeps the link loaded up to it, never above the estimate). str0m starts
//! an allocation probe only when the desired rate rises, and otherwise
//! probes a limited link rarely; so while the estimate holds a consumer
//! below its preferred layers the engine raises the desired rate by an
//! eighth for one tick every 2 s, which
//! halves the time to find a lifted cap (see `docs/benchmarks.md`). A producer
//! marked as a screen share ([`Engine::set_producer_screen`]) gets the
//! screen ladder and priority. What cannot be cut (every consumer's lowest
//! step, a stream without layers) is still sent when the estimate is below
//! it; str0m's pacer then holds it back up to its queue limit, which adds
//! delay (measured in `docs/benchmarks.md`, "Adaptation to bandwidth").
//!
//! # Input safety
//!
//! str0m's Direct API panics on inconsistent call order, so every call is
//! preceded by checks (MID and RID spelling, unique MIDs and SSRCs per
//! transport, DTLS started once, media declared before its streams). A
//! refused call returns an [`EngineError`] and changes nothing.
//!
//! # Layout
//!
//! This file holds the [`Engine`] itself and its routers; the rest of its
//! methods live by topic in private submodules: `transport` (transport
//! state and the lazy `Rtc` build), `producers`, `consumers`, `peers` (owner tags and
//! snapshots for the control API), `taps` (plain RTP out, for recording),
//! `demux`
//! (datagram routing, timeouts, draining), `relay` (forwarding glue,
//! layer targets and keyframe requests) and `bandwidth` (estimates in,
//! allocation applied, str0m told the rates). [`forward`] has the pure
//! forwarding pieces, `layers` the per-consumer layer selection,
//! `allocation` the pure bandwidth allocator, `needed` the layers each
//! publisher needs to send, `speaker` the active speaker detector,
//! [`stats`] the producer and consumer statistics (with their scores) of
//! the snapshots, [`vp8`]
//! the payload parsing it needs, `wire` the STUN reading that routes
//! packets (also the driver's: [`parse_stun`]) and the translations to
//! str0m's configuration, `rtpmap` a send transport's numbering learnt producer by
//! producer, `hdrext` and `rawext` the RFC 8285 header reading it needs
//! (before str0m, and inside it), `types` the public values.

mod allocation;
mod bandwidth;
mod consumers;
mod demux;
pub mod forward;
mod hdrext;
mod layers;
mod needed;
mod peers;
mod producers;
mod rawext;
mod relay;
mod rtpmap;
mod speaker;
pub mod stats;
mod taps;
mod transport;
mod types;
pub mod vp8;
mod wire;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;

use str0m::config::DtlsCert;
use str0m::crypto::Fingerprint;
use str0m::media::MediaKind as StrMediaKind;

use crate::rtp::{self, MediaKind, RtpCapabilities};
use consumers::Consumer;
use forward::Rng;
pub use layers::{LAYER_INACTIVE_AFTER, MAX_LAYER};
pub use needed::LAYERS_NEEDED_HOLD;
pub use peers::{
    ConsumerSnapshot, LayersSnapshot, ProducerLayerSnapshot, ProducerSnapshot, RouterSnapshot,
    RouterSummary, TransportSnapshot,
};
use producers::Producer;
pub use speaker::{QUIET_FLOOR_DBOV, SPEAKER_DEBOUNCE, SPEAKER_WINDOW, SPEAKING_THRESHOLD_DBOV};
pub use stats::{MediaTotals, STATS_INTERVAL, StreamStats};
pub use taps::{MAX_TAPS_PER_PRODUCER, TAP_TOP_LAYER_WAIT, TapInfo, TapPacket};
use transport::Transport;
pub use types::*;
pub use wire::{StunInfo, parse_stun};

struct Router {
    caps: RtpCapabilities,
    transports: BTreeSet<String>,
    /// Peer → the transports it owns.
    peers: BTreeMap<String, BTreeSet<String>>,
    speaker: speaker::SpeakerDetector,
}

/// The media engine. See the module doc.
pub struct Engine {
    config: EngineConfig,
    cert: DtlsCert,
    fingerprint: Fingerprint,
    rng: Rng,
    routers: HashMap<String, Router>,
    transports: HashMap<String, Transport>,
    producers: HashMap<String, Producer>,
    consumers: HashMap<String, Consumer>,
    taps: HashMap<String, taps::Tap>,
    ufrags: HashMap<String, String>,
    /// Where packets come from → their transport (a TCP connection's
    /// remote address is a key of its own).
    addrs: HashMap<(IceProtocol, SocketAddr), String>,
    /// Transport failures so far (see [`FailureReason`]).
    failures: TransportFailures,
    /// Media counters for operators (see [`stats::MediaTotals`]).
    media: stats::MediaTotals,
    outputs: VecDeque<EngineOutput>,
    dirty: BTreeSet<String>,
    /// When layer activity is checked next (see `layers`), and active
    /// speakers (see `speaker`).
    next_layer_check: Option<std::time::Instant>,
    next_speaker_check: Option<std::time::Instant>,
}

impl Engine {
    /// An engine with one fresh DTLS certificate for all its transports.
    pub fn new(config: EngineConfig) -> Result<Engine, EngineError> {
        let provider = str0m::crypto::from_feature_flags();
        let cert = provider
            .dtls_provider
            .generate_certificate()
            .ok_or_else(|| EngineError::Internal("cannot generate a DTLS certificate".into()))?;
        let fingerprint = Fingerprint {
            hash_func: "sha-256".into(),
            bytes: provider.sha256_provider.sha256(&cert.certificate).to_vec(),
        };
        Ok(Engine {
            rng: Rng::new(config.seed),
            config,
            cert,
            fingerprint,
            routers: HashMap::new(),
            transports: HashMap::new(),
            producers: HashMap::new(),
            consumers: HashMap::new(),
            taps: HashMap::new(),
            ufrags: HashMap::new(),
            addrs: HashMap::new(),
            failures: TransportFailures::default(),
            media: stats::MediaTotals::default(),
            outputs: VecDeque::new(),
            dirty: BTreeSet::new(),
            next_layer_check: None,
            next_speaker_check: None,
        })
    }

    /// The configuration the engine runs with.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Transports that failed so far, by reason (each transport counted
    /// once).
    pub fn transport_failures(&self) -> TransportFailures {
        self.failures
    }

    // ------------------------------------------------------------------
    // Routers

    /// A router with the default VTP capabilities
    /// ([`rtp::router_rtp_capabilities`]).
    pub fn create_router(&mut self, router_id: &str) -> Result<&RtpCapabilities, EngineError> {
        if self.routers.contains_key(router_id) {
            return Err(EngineError::DuplicateId {
                what: "router",
                id: router_id.into(),
            });
        }
        let router = self.routers.entry(router_id.to_owned()).or_insert(Router {
            caps: rtp::router_rtp_capabilities(),
            transports: BTreeSet::new(),
            peers: BTreeMap::new(),
            speaker: speaker::SpeakerDetector::default(),
        });
        Ok(&router.caps)
    }

    /// The capabilities of a router (`routerRtpCapabilities`).
    pub fn router_rtp_capabilities(
        &self,
        router_id: &str,
    ) -> Result<&RtpCapabilities, EngineError> {
        self.routers
            .get(router_id)
            .map(|r| &r.caps)
            .ok_or_else(|| EngineError::UnknownRouter(router_id.into()))
    }

    /// Closes a router and everything in it (with events for what it held).
    pub fn close_router(&mut self, router_id: &str) -> Result<(), EngineError> {
        let router = self
            .routers
            .remove(router_id)
            .ok_or_else(|| EngineError::UnknownRouter(router_id.into()))?;
        for transport_id in router.transports {
            self.remove_transport(&transport_id, Some(CloseReason::RouterClosed));
        }
        Ok(())
    }

    // ------------------------------------------------------------------
    // Shared internals

    fn emit(&mut self, event: EngineEvent) {
        self.outputs.push_back(EngineOutput::Event(event));
    }
}

fn str0m_kind(kind: MediaKind) -> StrMediaKind {
    match kind {
        MediaKind::Audio => StrMediaKind::Audio,
        MediaKind::Video => StrMediaKind::Video,
    }
}
