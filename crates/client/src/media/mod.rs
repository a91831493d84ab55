//! A WebRTC media peer for tests and the load generator: it speaks only the
//! wire protocol (mediasoup's JSON shapes of docs/protocol.md and standard
//! ICE/DTLS/SRTP), like any outside client.
//!
//! # Design
//!
//! * **One socket, one `Rtc`, one task per transport.** [`MediaPeer`] makes
//!   transports; each [`MediaTransport`] binds its own UDP socket on the
//!   peer's IP (port 0), builds one str0m `Rtc` (Direct API, RTP mode, full
//!   ICE, controlling, DTLS client) and spawns one tokio task that owns the
//!   socket and drives the `Rtc` (datagrams in, timeouts, transmits out).
//!   A transport cannot share a socket with another one: the server
//!   multiplexes all its transports on one address and routes non-STUN
//!   datagrams by *source address*, exactly as it does for a browser whose
//!   peer connections each have their own ports.
//! * The `Rtc` sits behind a `std::sync::Mutex` shared by the task and the
//!   handles ([`LocalProducer`], [`RemoteConsumer`]); it is only locked for
//!   short synchronous work, never across an `.await`. A handle call that
//!   changes something wakes the task.
//! * **Numbering.** str0m fixes payload types and header-extension ids when
//!   an `Rtc` is built. A send transport uses Chromium's (VP8 96 + RTX 97,
//!   opus 111; audio-level 1, abs-send-time 2, transport-cc 4, mid 9, rid
//!   10, repaired-rid 11), which is what the server expects from browsers.
//!   A receive transport uses the router's `rtpCapabilities` numbering
//!   (what every consumer's `rtpParameters` use); a `consume` answer with
//!   other numbers is refused with [`MediaError::Unsupported`].
//! * **Send side.** [`MediaTransport::produce_video`] and
//!   [`MediaTransport::produce_audio`] declare a MID and its stream(s) and
//!   return the `rtpParameters` to send with `produce`. The synthetic source
//!   ([`LocalProducer::start`]) writes VP8 frames (RFC 7741 payload
//!   descriptor, key/delta frame tag, keyframe start code and size) or Opus
//!   packets (TOC byte), each followed by a self-checking body carrying a
//!   per-stream packet counter (see `payload`). Keyframes are sent at start,
//!   on PLI/FIR, and optionally every `keyframe_interval`.
//! * **Receive side.** [`MediaTransport::consume`] declares the consumer's
//!   stream (SSRC and RTX SSRC); str0m repairs losses with NACK/RTX, and
//!   every packet it delivers is counted ([`ConsumerStats`]): packets,
//!   bytes, frames, keyframes, unrepaired gaps, duplicates, integrity
//!   failures, first/last packet time.
//! * **SDP.** For servers that negotiate with SDP (Janus), `sdp` builds the
//!   same transports through str0m's SDP API and registers the same
//!   producers and consumers on the streams it negotiated.
//! * **Events.** [`MediaTransport::events`] broadcasts [`MediaEvent`]s;
//!   [`MediaTransport::wait_connected`] and
//!   [`LocalProducer::wait_keyframe_requests`] await the common ones.
//!
//! Network input never panics the task: undecodable or foreign datagrams
//! are counted in [`TransportStats::datagrams_dropped`], and every JSON
//! input is validated before str0m's Direct API (which panics on
//! inconsistent calls) is touched.
//!
//! # Typical use
//!
//! ```text
//! let peer = MediaPeer::new();
//! let send = peer.create_send_transport(&create_transport_answer).await?;
//! // connect-transport { dtlsParameters: send.dtls_parameters() }
//! let video = send.produce_video(VideoOptions::default())?;
//! // produce { kind: "video", rtpParameters: video.rtp_parameters() }
//! send.wait_connected(timeout).await?;
//! video.start();
//! ```

mod consumer;
mod error;
mod params;
mod payload;
mod producer;
mod sdp;
mod stats;
mod transport;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

pub use consumer::RemoteConsumer;
pub use error::MediaError;
pub use params::{Kind, receive_rtp_capabilities};
pub use producer::LocalProducer;
pub use sdp::{PendingPublish, SdpMedia, sdp_medias};
pub use stats::{ConsumerStats, LayerStats, PeerStats, ProducerStats, TransportStats};
pub use transport::{Direction, IceTransport, MediaTransport};

use params::Numbering;

/// Settings of a synthetic VP8 source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VideoOptions {
    /// Total bitrate (split 1:2:4 over `r0`/`r1`/`r2` with simulcast).
    pub bitrate_bps: u32,
    pub fps: u32,
    pub width: u16,
    pub height: u16,
    /// Three RID layers `r0`, `r1`, `r2` instead of one SSRC.
    pub simulcast: bool,
    /// Send a keyframe at least this often (besides start and PLI/FIR).
    pub keyframe_interval: Option<Duration>,
}

impl Default for VideoOptions {
    fn default() -> Self {
        VideoOptions {
            bitrate_bps: 600_000,
            fps: 30,
            width: 640,
            height: 360,
            simulcast: false,
            keyframe_interval: None,
        }
    }
}

/// Settings of a synthetic Opus source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioOptions {
    pub bitrate_bps: u32,
    /// Milliseconds of audio per packet.
    pub ptime_ms: u32,
}

impl Default for AudioOptions {
    fn default() -> Self {
        AudioOptions {
            bitrate_bps: 32_000,
            ptime_ms: 20,
        }
    }
}

/// A keyframe request: RTCP PLI or FIR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyframeKind {
    Pli,
    Fir,
}

/// Something that happened on a transport.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MediaEvent {
    /// ICE and DTLS are up.
    Connected { transport_id: String },
    /// ICE lost the server (it may come back).
    Disconnected { transport_id: String },
    /// The transport's task ended (closed, or the `Rtc` died).
    Closed { transport_id: String },
    /// The server asked a local producer for a keyframe.
    KeyframeRequested {
        transport_id: String,
        mid: String,
        rid: Option<String>,
        kind: KeyframeKind,
    },
}

/// A media peer: the transports of one participant (see the module doc).
/// Dropping it closes its transports.
pub struct MediaPeer {
    ip: IpAddr,
    ice: IceTransport,
    count_only: bool,
    transports: Mutex<Vec<MediaTransport>>,
}

impl Default for MediaPeer {
    fn default() -> Self {
        MediaPeer::new()
    }
}

impl MediaPeer {
    /// A peer whose sockets bind to 127.0.0.1.
    pub fn new() -> Self {
        MediaPeer::with_bind_ip(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    /// A peer whose sockets bind to `ip` (port 0 each). `ip` is announced as
    /// the ICE host candidate, so it must not be unspecified (0.0.0.0).
    pub fn with_bind_ip(ip: IpAddr) -> Self {
        MediaPeer {
            ip,
            ice: IceTransport::Udp,
            count_only: false,
            transports: Mutex::new(Vec::new()),
        }
    }

    /// How this peer's transports reach the server from now on (UDP by
    /// default; `Tcp` uses only the server's passive ICE-TCP candidates, as
    /// a browser behind a firewall that blocks UDP does).
    pub fn with_ice_transport(mut self, ice: IceTransport) -> Self {
        self.ice = ice;
        self
    }

    /// Count-only reception, for load generation past one core: the
    /// receive transports complete ICE and DTLS as usual, but received RTP
    /// is counted from its clear-text header (SSRC, sequence number,
    /// marker; SRTP encrypts only the payload) and never decrypted or
    /// handed to str0m. So nothing is repaired (no NACK is sent) and the
    /// payload is not checked: consumer statistics count packets, bytes
    /// (encrypted, with the tag), frames (markers; every audio packet),
    /// gaps and late packets, but no keyframes or integrity failures.
    pub fn with_count_only(mut self, count_only: bool) -> Self {
        self.count_only = count_only;
        self
    }

    /// A send transport for a `create-transport` answer (`{ id,
    /// iceParameters, iceCandidates, dtlsParameters }`). ICE starts at
    /// once; send `connect-transport` with [`MediaTransport::dtls_parameters`].
    pub async fn create_send_transport(
        &self,
        answer: &Value,
    ) -> Result<MediaTransport, MediaError> {
        self.create(answer, Direction::Send, Numbering::chromium())
            .await
    }

    /// A receive transport for a `create-transport` answer, numbered like
    /// `router_rtp_capabilities` (from `join-room`).
    pub async fn create_recv_transport(
        &self,
        answer: &Value,
        router_rtp_capabilities: &Value,
    ) -> Result<MediaTransport, MediaError> {
        let numbering = Numbering::from_router_capabilities(router_rtp_capabilities)?;
        self.create(answer, Direction::Recv, numbering).await
    }

    async fn create(
        &self,
        answer: &Value,
        direction: Direction,
        numbering: Numbering,
    ) -> Result<MediaTransport, MediaError> {
        let t = MediaTransport::start(
            SocketAddr::new(self.ip, 0),
            answer,
            direction,
            numbering,
            self.ice,
        )
        .await?;
        if direction == Direction::Recv {
            t.shared().lock().count_only = self.count_only;
        }
        self.adopt(t.clone());
        Ok(t)
    }

    fn ip(&self) -> IpAddr {
        self.ip
    }

    /// Keeps `t` with the peer's transports (stats, close on drop).
    fn adopt(&self, t: MediaTransport) {
        self.lock().push(t);
    }

    /// The `rtpCapabilities` to send with `consume`
    /// ([`receive_rtp_capabilities`]).
    pub fn rtp_capabilities(router_rtp_capabilities: &Value) -> Result<Value, MediaError> {
        receive_rtp_capabilities(router_rtp_capabilities)
    }

    /// The peer's transports.
    pub fn transports(&self) -> Vec<MediaTransport> {
        self.lock().clone()
    }

    /// Counters of every transport, producer and consumer.
    pub fn stats(&self) -> PeerStats {
        let mut stats = PeerStats::default();
        for t in self.lock().iter() {
            stats.transports.push(t.stats());
            stats.producers.extend(t.producer_stats());
            stats.consumers.extend(t.consumer_stats());
        }
        stats
    }

    /// Closes every transport.
    pub fn close(&self) {
        for t in self.lock().iter() {
            t.close();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<MediaTransport>> {
        self.transports.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for MediaPeer {
    fn drop(&mut self) {
        self.close();
    }
}
