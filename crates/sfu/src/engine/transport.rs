//! Transports: their state, creating, connecting and closing them, and the
//! lazy build of a transport's str0m `Rtc` (codec and header-extension
//! tables, DTLS start, feeding the datagrams held until then).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use serde_json::Value;
use str0m::config::DtlsCert;
use str0m::net::{Protocol, Receive, TcpType};
use str0m::{Candidate, IceCreds, Input, Rtc, RtcConfig};

use super::bandwidth::BweState;
use super::rtpmap::{RtcTables, SendTables};
use super::wire::{self, RemoteDtls};
use super::{
    CloseReason, DtlsFingerprint, DtlsParameters, Engine, EngineConfig, EngineError, EngineEvent,
    FailureReason, IceCandidate, IceParameters, IceProtocol, LocalCandidate, SctpParameters,
    TransportInfo, TransportOptions,
};
use crate::rtp::RtpCapabilities;

/// SCTP port str0m uses at both ends.
const SCTP_PORT: u16 = 5000;
const SCTP_STREAMS: u16 = 1024;
const SCTP_MAX_MESSAGE_SIZE: u32 = 262_144;

/// Packets each outgoing video stream of a transport keeps for resends
/// (str0m's default is 1,000, capped by its 3 s age limit: at 1 Mbit/s,
/// about 150 packets/s, 450 packets of about 1.2 KB, the largest part of a
/// subscriber's memory; issue 21). 256 is 1.7 s at 1 Mbit/s and 1 s at
/// 2.5 Mbit/s: more than a NACK takes to come back, and room for a
/// keyframe's burst while the pacer holds it (the same buffer holds packets
/// not yet sent).
const VIDEO_RESEND_PACKETS: usize = 256;

pub(super) use super::TransportDirection as Direction;

impl Direction {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Direction::Send => "sending",
            Direction::Recv => "receiving",
        }
    }
}

pub(super) struct Transport {
    pub(super) router_id: String,
    /// The peer that owns it, when the caller said (see `peers`).
    pub(super) peer_id: Option<String>,
    pub(super) creds: IceCreds,
    pub(super) sctp: bool,
    pub(super) remote_dtls: Option<RemoteDtls>,
    pub(super) remote_ufrag: Option<String>,
    pub(super) rtc: Option<Rtc>,
    pub(super) direction: Option<Direction>,
    pub(super) early: VecDeque<(IceProtocol, SocketAddr, Vec<u8>)>,
    /// Where its packets came from (a TCP connection's remote address is
    /// its own key: the same address may also send UDP).
    pub(super) sources: BTreeSet<(IceProtocol, SocketAddr)>,
    pub(super) timeout: Option<Instant>,
    pub(super) connected: bool,
    /// When `connect_transport` was called: the connect deadline runs
    /// from then (a transport nobody connects is idle, not failing).
    pub(super) connect_requested: Option<Instant>,
    /// str0m's ICE agent reported connectivity (tells an ICE timeout from
    /// a DTLS one).
    pub(super) ice_connected: bool,
    /// A failure was reported already (reported once per transport).
    pub(super) failure: Option<FailureReason>,
    pub(super) cname: Option<String>,
    pub(super) producers: BTreeSet<String>,
    pub(super) consumers: BTreeSet<String>,
    /// MID → producer or consumer id.
    pub(super) mids: BTreeMap<String, String>,
    pub(super) ssrcs: BTreeSet<u32>,
    pub(super) next_mid: u32,
    /// Send transports: the payload types and extension ids its producers
    /// use, and what its `Rtc` was built with (see `rtpmap`).
    pub(super) send_tables: SendTables,
    /// Incoming SSRC → (producer, encoding index), learnt from str0m.
    pub(super) ssrc_layers: HashMap<u32, (String, usize)>,
    /// Receive transports: the egress estimate (see `bandwidth`).
    pub(super) bwe: BweState,
}

impl Engine {
    /// A WebRTC transport (ICE-lite; a UDP host candidate per announced
    /// address, and a passive TCP one each when the engine has a TCP port)
    /// answering mediasoup's `create-transport` shapes.
    pub fn create_webrtc_transport(
        &mut self,
        router_id: &str,
        transport_id: &str,
        options: TransportOptions,
    ) -> Result<TransportInfo, EngineError> {
        let router = self
            .routers
            .get(router_id)
            .ok_or_else(|| EngineError::UnknownRouter(router_id.into()))?;
        if self.transports.contains_key(transport_id) {
            return Err(EngineError::DuplicateId {
                what: "transport",
                id: transport_id.into(),
            });
        }
        if let Some(peer) = &options.peer_id
            && !router.peers.contains_key(peer)
        {
            return Err(EngineError::UnknownPeer(peer.clone()));
        }
        if router.transports.len() >= self.config.max_transports_per_router {
            return Err(EngineError::LimitReached {
                what: "transports in the router",
                max: self.config.max_transports_per_router,
            });
        }
        let ice_candidates = ice_candidates(&self.config)?;
        let mut creds = IceCreds::new();
        while self.ufrags.contains_key(&creds.ufrag) {
            creds = IceCreds::new();
        }
        let info = TransportInfo {
            id: transport_id.to_owned(),
            ice_parameters: IceParameters {
                username_fragment: creds.ufrag.clone(),
                password: creds.pass.clone(),
                ice_lite: true,
            },
            ice_candidates,
            dtls_parameters: DtlsParameters {
                role: "auto".into(),
                fingerprints: vec![DtlsFingerprint {
                    algorithm: "sha-256".into(),
                    value: wire::fingerprint_value(&self.fingerprint),
                }],
            },
            sctp_parameters: options.enable_sctp.then_some(SctpParameters {
                port: SCTP_PORT,
                os: SCTP_STREAMS,
                mis: SCTP_STREAMS,
                max_message_size: SCTP_MAX_MESSAGE_SIZE,
            }),
        };
        self.ufrags
            .insert(creds.ufrag.clone(), transport_id.to_owned());
        if let Some(router) = self.routers.get_mut(router_id) {
            router.transports.insert(transport_id.to_owned());
            if let Some(peer) = options
                .peer_id
                .as_ref()
                .and_then(|p| router.peers.get_mut(p))
            {
                peer.insert(transport_id.to_owned());
            }
        }
        self.transports.insert(
            transport_id.to_owned(),
            Transport {
                router_id: router_id.to_owned(),
                peer_id: options.peer_id,
                creds,
                sctp: options.enable_sctp,
                remote_dtls: None,
                remote_ufrag: None,
                rtc: None,
                direction: options.direction,
                early: VecDeque::new(),
                sources: BTreeSet::new(),
                timeout: None,
                connected: false,
                connect_requested: None,
                ice_connected: false,
                failure: None,
                cname: None,
                producers: BTreeSet::new(),
                consumers: BTreeSet::new(),
                mids: BTreeMap::new(),
                ssrcs: BTreeSet::new(),
                next_mid: 0,
                send_tables: SendTables::default(),
                ssrc_layers: HashMap::new(),
                bwe: BweState::default(),
            },
        );
        Ok(info)
    }

    /// `connect-transport`: checks `dtlsParameters` and starts DTLS in the
    /// role they imply (now, or when the transport's `Rtc` is built).
    pub fn connect_transport(
        &mut self,
        transport_id: &str,
        dtls_parameters: &Value,
        now: Instant,
    ) -> Result<(), EngineError> {
        let transport = self
            .transports
            .get_mut(transport_id)
            .ok_or_else(|| EngineError::UnknownTransport(transport_id.into()))?;
        if transport.remote_dtls.is_some() {
            return Err(EngineError::AlreadyConnected(transport_id.into()));
        }
        let remote = wire::parse_remote_dtls(dtls_parameters)?;
        if let Some(rtc) = transport.rtc.as_mut() {
            start_dtls(rtc, &remote, transport.sctp)?;
            // Timeouts only fail on a dead Rtc, which the drain notices.
            let _ = rtc.handle_input(Input::Timeout(now));
            self.dirty.insert(transport_id.to_owned());
        }
        transport.remote_dtls = Some(remote);
        transport.connect_requested = Some(now);
        self.pump(now);
        Ok(())
    }

    /// `restart-ice`: new local ICE credentials for a transport (mediasoup's
    /// `restartIce`). The client applies them with its own new ufrag; its
    /// first STUN request under the new pair teaches the engine the remote
    /// ufrag, and from whatever address it now comes from. DTLS, SRTP and
    /// every producer and consumer carry on: only ICE starts again, which
    /// is what a browser needs after a network change. The old ufrag stops
    /// routing at once.
    pub fn restart_ice(&mut self, transport_id: &str) -> Result<IceParameters, EngineError> {
        let transport = self
            .transports
            .get_mut(transport_id)
            .ok_or_else(|| EngineError::UnknownTransport(transport_id.into()))?;
        let mut creds = IceCreds::new();
        while self.ufrags.contains_key(&creds.ufrag) {
            creds = IceCreds::new();
        }
        self.ufrags.remove(&transport.creds.ufrag);
        self.ufrags
            .insert(creds.ufrag.clone(), transport_id.to_owned());
        if let Some(rtc) = transport.rtc.as_mut() {
            rtc.direct_api().set_local_ice_credentials(creds.clone());
        }
        // Datagrams held for a not-yet-built `Rtc` were checked against
        // the old credentials; they would only fail now.
        transport.early.clear();
        transport.remote_ufrag = None;
        let parameters = IceParameters {
            username_fragment: creds.ufrag.clone(),
            password: creds.pass.clone(),
            ice_lite: true,
        };
        transport.creds = creds;
        Ok(parameters)
    }

    /// The local ICE ufrag a transport answers to now.
    pub fn transport_ufrag(&self, transport_id: &str) -> Option<&str> {
        self.transports
            .get(transport_id)
            .map(|t| t.creds.ufrag.as_str())
    }

    /// Closes a transport and what it carried (events for its producers,
    /// their consumers elsewhere, and its consumers).
    pub fn close_transport(&mut self, transport_id: &str) -> Result<(), EngineError> {
        if !self.transports.contains_key(transport_id) {
            return Err(EngineError::UnknownTransport(transport_id.into()));
        }
        self.remove_transport(transport_id, None);
        Ok(())
    }

    /// Removes a transport and everything on it. `reason` = emit
    /// `TransportClosed` with it; what it carried is reported either way.
    pub(super) fn remove_transport(&mut self, transport_id: &str, reason: Option<CloseReason>) {
        let Some(transport) = self.transports.get(transport_id) else {
            return;
        };
        let producers: Vec<String> = transport.producers.iter().cloned().collect();
        let consumers: Vec<String> = transport.consumers.iter().cloned().collect();
        let carried = match reason {
            Some(CloseReason::RouterClosed) => CloseReason::RouterClosed,
            _ => CloseReason::TransportClosed,
        };
        for id in producers {
            self.remove_producer(&id, Some(carried));
        }
        for id in consumers {
            self.remove_consumer(&id, Some(carried));
        }
        let Some(transport) = self.transports.remove(transport_id) else {
            return;
        };
        self.dirty.remove(transport_id);
        self.ufrags.remove(&transport.creds.ufrag);
        for key in &transport.sources {
            if self.addrs.get(key).map(String::as_str) == Some(transport_id) {
                self.addrs.remove(key);
            }
        }
        if let Some(router) = self.routers.get_mut(&transport.router_id) {
            router.transports.remove(transport_id);
            if let Some(peer) = transport
                .peer_id
                .as_ref()
                .and_then(|p| router.peers.get_mut(p))
            {
                peer.remove(transport_id);
            }
        }
        if let Some(reason) = reason {
            self.emit(EngineEvent::TransportClosed {
                transport_id: transport_id.to_owned(),
                reason,
            });
        }
    }
}

/// Type preferences (RFC 8445 §5.1.2.1) of host candidates: str0m's (and
/// libwebrtc's) 126 for UDP and 90 for TCP, so that every UDP candidate
/// outranks every TCP one and a client uses TCP only when UDP fails.
const TYPE_PREFERENCE_UDP: u32 = 126;
const TYPE_PREFERENCE_TCP: u32 = 90;
/// RFC 6544 §4.2: a TCP candidate's local preference is
/// `2^13 * direction-pref + other-pref`; passive host candidates have
/// direction preference 4.
const TCP_PASSIVE_DIRECTION_PREFERENCE: u32 = 4;

/// The priority of the `index`-th announced address's candidate. str0m's
/// `Candidate::prio` gives every host candidate of one family the same
/// local preference, but RFC 8445 wants it unique per address (the first
/// announced is preferred), so it is computed here with str0m's type
/// preferences.
pub(super) fn candidate_priority(protocol: IceProtocol, index: usize) -> u32 {
    let index = u32::try_from(index).unwrap_or(u32::MAX);
    let (type_preference, local_preference) = match protocol {
        IceProtocol::Udp => (TYPE_PREFERENCE_UDP, 65_535u32.saturating_sub(index)),
        IceProtocol::Tcp => (
            TYPE_PREFERENCE_TCP,
            (TCP_PASSIVE_DIRECTION_PREFERENCE << 13) | 8_191u32.saturating_sub(index),
        ),
    };
    // Component 1 (RTP; BUNDLE and rtcp-mux leave no other).
    (type_preference << 24) | (local_preference << 8) | (256 - 1)
}

/// mediasoup's `iceCandidates` for the engine's addresses.
fn ice_candidates(config: &EngineConfig) -> Result<Vec<IceCandidate>, EngineError> {
    let mut out = Vec::new();
    let mut index = [0usize; 2];
    for LocalCandidate { protocol, addr } in config.candidates() {
        // Refuses addresses str0m would (unspecified, multicast, …).
        str0m_candidate(protocol, addr)?;
        let n = &mut index[usize::from(protocol == IceProtocol::Tcp)];
        out.push(IceCandidate {
            // Unique per protocol and base address (RFC 8445 §5.1.1.3).
            foundation: format!("{}{}", protocol.as_str(), *n),
            priority: candidate_priority(protocol, *n),
            ip: addr.ip().to_string(),
            address: addr.ip().to_string(),
            port: addr.port(),
            protocol: protocol.as_str().into(),
            candidate_type: "host".into(),
            tcp_type: (protocol == IceProtocol::Tcp).then(|| "passive".into()),
        });
        *n += 1;
    }
    Ok(out)
}

/// One of the engine's candidates as str0m's local candidate.
fn str0m_candidate(protocol: IceProtocol, addr: SocketAddr) -> Result<Candidate, EngineError> {
    let built = match protocol {
        IceProtocol::Udp => Candidate::builder().udp().host(addr).build(),
        IceProtocol::Tcp => Candidate::builder()
            .tcp()
            .host(addr)
            .tcptype(TcpType::Passive)
            .build(),
    };
    built.map_err(|e| {
        EngineError::Internal(format!("{} host candidate {addr}: {e}", protocol.as_str()))
    })
}

pub(super) fn str0m_protocol(protocol: IceProtocol) -> Protocol {
    match protocol {
        IceProtocol::Udp => Protocol::Udp,
        IceProtocol::Tcp => Protocol::Tcp,
    }
}

/// Gives one packet to a built transport's `Rtc` (dropped if str0m does
/// not take it).
pub(super) fn feed(
    config: &EngineConfig,
    t: &mut Transport,
    now: Instant,
    protocol: IceProtocol,
    source: SocketAddr,
    bytes: &[u8],
) {
    let Some(rtc) = t.rtc.as_mut() else {
        return;
    };
    let Some(local) = config.local_for(protocol, source) else {
        return;
    };
    let Ok(receive) = Receive::new(str0m_protocol(protocol), source, local, bytes) else {
        return;
    };
    let input = Input::Receive(now, receive);
    if rtc.accepts(&input) {
        // Errors here are about one bad datagram; a fatal state shows as
        // `!is_alive()` when the transport is drained.
        let _ = rtc.handle_input(input);
    }
}

fn start_dtls(rtc: &mut Rtc, remote: &RemoteDtls, sctp: bool) -> Result<(), EngineError> {
    let mut api = rtc.direct_api();
    api.set_remote_fingerprint(remote.fingerprint.clone());
    api.start_dtls(remote.active)
        .map_err(|e| EngineError::Internal(format!("start DTLS: {e}")))?;
    if sctp {
        api.start_sctp(remote.active);
    }
    Ok(())
}

/// A receive transport speaks the router's numbering.
pub(super) fn recv_tables(caps: &RtpCapabilities) -> Result<RtcTables, EngineError> {
    let codecs: Vec<crate::rtp::RtpCodecParameters> = caps
        .codecs
        .iter()
        .filter_map(|c| {
            Some(crate::rtp::RtpCodecParameters {
                mime_type: c.mime_type.clone(),
                payload_type: c.preferred_payload_type?,
                clock_rate: c.clock_rate,
                channels: c.channels,
                parameters: c.parameters.clone(),
                rtcp_feedback: Vec::new(),
            })
        })
        .collect();
    let entries = wire::codec_entries(&codecs)?;
    let mut exts = BTreeMap::new();
    for e in &caps.header_extensions {
        if wire::extension_for_uri(&e.uri).is_some()
            && !exts.contains_key(&e.preferred_id)
            && !exts.values().any(|u: &String| u == &e.uri)
        {
            exts.insert(e.preferred_id, e.uri.clone());
        }
    }
    Ok(RtcTables::receiving(entries, &exts))
}

/// Builds a transport's `Rtc` with the given tables, then applies what is
/// already known (remote ufrag, `connect` parameters) and feeds the held
/// datagrams. `bwe`: the initial estimate (bit/s) of a transport whose
/// egress bandwidth is estimated (receive transports), which also turns on
/// str0m's pacer.
pub(super) fn build_rtc(
    config: &EngineConfig,
    cert: &DtlsCert,
    t: &mut Transport,
    tables: &RtcTables,
    bwe: Option<u64>,
    now: Instant,
) -> Result<Rtc, EngineError> {
    let rtc_config = RtcConfig::new()
        .set_ice_lite(true)
        .set_rtp_mode(true)
        .set_stats_interval(Some(super::STATS_INTERVAL))
        .set_local_ice_credentials(t.creds.clone())
        .set_dtls_cert(cert.clone())
        .set_sctp_max_message_size(SCTP_MAX_MESSAGE_SIZE)
        .set_send_buffer_video(VIDEO_RESEND_PACKETS)
        .enable_bwe(bwe.map(str0m::bwe::Bitrate::bps));
    let mut rtc = tables.apply(rtc_config).build(now);
    for LocalCandidate { protocol, addr } in config.candidates() {
        rtc.add_local_candidate(str0m_candidate(protocol, addr)?);
    }
    {
        let mut api = rtc.direct_api();
        api.set_ice_controlling(false);
        if let Some(remote) = &t.remote_ufrag {
            api.set_remote_ice_credentials(IceCreds {
                ufrag: remote.clone(),
                pass: String::new(),
            });
        }
    }
    if let Some(remote) = &t.remote_dtls {
        start_dtls(&mut rtc, remote, t.sctp)?;
    }
    let early = std::mem::take(&mut t.early);
    let mut holder = Some(rtc);
    std::mem::swap(&mut t.rtc, &mut holder);
    for (protocol, source, bytes) in early {
        feed(config, t, now, protocol, source, &bytes);
    }
    std::mem::swap(&mut t.rtc, &mut holder);
    holder.ok_or_else(|| EngineError::Internal("rtc vanished".into()))
}
