//! The engine and str0m client peers wired together in memory, in
//! simulated time (no sockets, no clock): the harness of the engine's
//! media tests.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;
use str0m::format::{Codec, FormatParams};
use str0m::media::Frequency;
use str0m::media::{MediaKind as StrKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{Extension, ExtensionMap, ExtensionValues, RtpPacket, RtpWrite, Ssrc};
use str0m::{Event, Input, Output, Rtc, RtcConfig};
use vtp_sfu::engine::{
    ConsumerInfo, Engine, EngineConfig, EngineEvent, EngineOutput, IceProtocol, TapPacket,
    TransportInfo, TransportOptions,
};
use vtp_sfu::rtp;
use vtp_sfu::rtp::MediaKind;

#[path = "link.rs"]
pub mod link;
#[path = "peer.rs"]
mod peer;
use link::{Dir, Link, LinkShape};

pub fn engine_addr() -> SocketAddr {
    "10.0.0.1:40000".parse().unwrap()
}

/// The engine's passive ICE-TCP candidate in [`Net::with_tcp`].
pub fn engine_tcp_addr() -> SocketAddr {
    "10.0.0.1:40001".parse().unwrap()
}

pub struct Client {
    pub rtc: Rtc,
    pub addr: SocketAddr,
    /// How it reaches the engine (`add_client_over`).
    pub protocol: IceProtocol,
    pub events: Vec<Event>,
    pub timeout: Option<Instant>,
}

/// (client index, datagram from the engine) → drop it?
pub type DropFilter = Box<dyn FnMut(usize, &[u8]) -> bool>;

pub struct Net {
    pub engine: Engine,
    pub clients: Vec<Client>,
    pub now: Instant,
    pub engine_events: Vec<EngineEvent>,
    /// What taps got, in order.
    pub tapped: Vec<(String, TapPacket)>,
    /// (client index, datagram) → deliver?
    pub drop_to_client: DropFilter,
    /// (client index, datagram from the client) → drop it before the
    /// engine gets it?
    pub drop_to_engine: DropFilter,
    /// Shaped links by client and direction (`set_link`); the others
    /// deliver at once.
    pub links: std::collections::HashMap<(usize, Dir), Link>,
    /// Datagrams on a shaped link: (arrival, order) → (client, way, bytes).
    in_flight: std::collections::BTreeMap<(Instant, u64), (usize, Dir, Vec<u8>)>,
    flight_order: u64,
}

/// Client A's numbering (Chromium's): VP8 96/rtx 97, opus 111; mid 9,
/// abs-send-time 2, transport-cc 4, rid 10, rrid 11, audio level 1.
pub fn chromium_config() -> RtcConfig {
    let mut exts = ExtensionMap::empty();
    exts.set(9, Extension::RtpMid);
    exts.set(2, Extension::AbsoluteSendTime);
    exts.set(4, Extension::TransportSequenceNumber);
    exts.set(10, Extension::RtpStreamId);
    exts.set(11, Extension::RepairedRtpStreamId);
    exts.set(1, Extension::AudioLevel);
    let mut cfg = RtcConfig::new()
        .set_rtp_mode(true)
        .clear_codecs()
        .set_extension_map(exts);
    let cc = cfg.codec_config();
    cc.add_config(
        96.into(),
        Some(97.into()),
        Codec::Vp8,
        Frequency::NINETY_KHZ,
        None,
        Default::default(),
    );
    cc.add_config(
        111.into(),
        None,
        Codec::Opus,
        Frequency::FORTY_EIGHT_KHZ,
        Some(2),
        Default::default(),
    );
    cfg
}

/// Adds H.264 (packetization-mode 1, Constrained Baseline 3.1) with its
/// RTX to a client's codecs.
pub fn add_h264(cfg: &mut RtcConfig, pt: u8, rtx: u8) {
    cfg.codec_config().add_config(
        pt.into(),
        Some(rtx.into()),
        Codec::H264,
        Frequency::NINETY_KHZ,
        None,
        FormatParams {
            packetization_mode: Some(1),
            profile_level_id: Some(0x42e01f),
            level_asymmetry_allowed: Some(true),
            ..Default::default()
        },
    );
}

/// Client B's numbering: the router's (opus 100, VP8 101/rtx 102, H.264
/// 42e01f 103/rtx 104, its ids).
pub fn router_config() -> RtcConfig {
    let caps = rtp::router_rtp_capabilities();
    let mut exts = ExtensionMap::empty();
    for e in &caps.header_extensions {
        let ext = match e.uri.as_str() {
            rtp::uri::MID => Extension::RtpMid,
            rtp::uri::ABS_SEND_TIME => Extension::AbsoluteSendTime,
            rtp::uri::TRANSPORT_WIDE_CC => Extension::TransportSequenceNumber,
            rtp::uri::SSRC_AUDIO_LEVEL => Extension::AudioLevel,
            rtp::uri::VIDEO_ORIENTATION => Extension::VideoOrientation,
            _ => continue,
        };
        exts.set(e.preferred_id, ext);
    }
    let mut cfg = RtcConfig::new()
        .set_rtp_mode(true)
        .clear_codecs()
        .set_extension_map(exts);
    let cc = cfg.codec_config();
    cc.add_config(
        101.into(),
        Some(102.into()),
        Codec::Vp8,
        Frequency::NINETY_KHZ,
        None,
        Default::default(),
    );
    cc.add_config(
        100.into(),
        None,
        Codec::Opus,
        Frequency::FORTY_EIGHT_KHZ,
        Some(2),
        Default::default(),
    );
    add_h264(&mut cfg, 103, 104);
    cfg
}

impl Net {
    pub fn new() -> Net {
        Net::with_config(EngineConfig::new(engine_addr()))
    }

    /// An engine that also has a passive TCP candidate
    /// ([`engine_tcp_addr`]).
    pub fn with_tcp() -> Net {
        let mut config = EngineConfig::new(engine_addr());
        config.tcp_port = Some(engine_tcp_addr().port());
        Net::with_config(config)
    }

    pub fn with_config(mut config: EngineConfig) -> Net {
        config.seed = 42;
        Net {
            engine: Engine::new(config).unwrap(),
            clients: Vec::new(),
            now: Instant::now(),
            engine_events: Vec::new(),
            tapped: Vec::new(),
            drop_to_client: Box::new(|_, _| false),
            drop_to_engine: Box::new(|_, _| false),
            links: Default::default(),
            in_flight: Default::default(),
            flight_order: 0,
        }
    }

    /// Router "room" with a publisher A on transport "ta" (configured with
    /// `publisher`) and a subscriber B on "tb" (the router's numbering):
    /// the usual two-party set-up. Returns (A, B).
    pub fn two_parties(&mut self, publisher: RtcConfig) -> (usize, usize) {
        self.engine.create_router("room").unwrap();
        let ta = self
            .engine
            .create_webrtc_transport("room", "ta", TransportOptions::default())
            .unwrap();
        let tb = self
            .engine
            .create_webrtc_transport("room", "tb", TransportOptions::default())
            .unwrap();
        let a = self.add_client(publisher, &ta);
        let b = self.add_client(router_config(), &tb);
        (a, b)
    }

    /// A client for `info`, already told to connect (the engine is told by
    /// `connect`).
    pub fn add_client(&mut self, cfg: RtcConfig, info: &TransportInfo) -> usize {
        self.add_client_over(cfg, info, IceProtocol::Udp)
    }

    /// A client that uses only the transport's candidates of `protocol`
    /// (over TCP: one connection from the client's address, each packet a
    /// frame on it; framing is the driver's, so here a packet is a packet).
    pub fn add_client_over(
        &mut self,
        cfg: RtcConfig,
        info: &TransportInfo,
        protocol: IceProtocol,
    ) -> usize {
        let index = self.clients.len();
        let addr: SocketAddr = format!("10.0.1.{}:5000{index}", index + 1).parse().unwrap();
        let rtc = peer::client_over(cfg, info, addr, self.now, protocol.as_str());
        self.clients.push(Client {
            rtc,
            addr,
            protocol,
            events: Vec::new(),
            timeout: None,
        });
        index
    }

    /// Tells a client's str0m peer what an engine consumer will send it
    /// (its MID, kind and SSRCs), as mediasoup-client's `consume` would.
    pub fn expect_consumer(&mut self, client: usize, consumer: &ConsumerInfo) {
        let mid = consumer
            .rtp_parameters
            .mid
            .clone()
            .expect("a consumer's mid");
        let kind = match consumer.kind {
            MediaKind::Video => StrKind::Video,
            MediaKind::Audio => StrKind::Audio,
        };
        let enc = &consumer.rtp_parameters.encodings[0];
        let mut api = self.clients[client].rtc.direct_api();
        api.declare_media(Mid::from(mid.as_str()), kind);
        api.expect_stream_rx(
            Ssrc::from(enc.ssrc.expect("a consumer's ssrc")),
            enc.rtx.as_ref().map(|r| Ssrc::from(r.ssrc)),
            Mid::from(mid.as_str()),
            None,
        );
        // As a browser does when the parameters carry transport-cc: the
        // engine's bandwidth estimate lives on this feedback.
        let twcc = consumer
            .rtp_parameters
            .header_extensions
            .iter()
            .any(|e| e.uri == rtp::uri::TRANSPORT_WIDE_CC);
        if twcc {
            api.enable_twcc_feedback();
        }
    }

    pub fn dtls_of(&mut self, client: usize) -> Value {
        peer::dtls_parameters(&mut self.clients[client].rtc)
    }

    /// Drains one client until it asks for a timeout; its datagrams go
    /// straight to the engine (str0m wants a drain after every input).
    pub fn drain_client(&mut self, i: usize) -> bool {
        let mut moved = false;
        loop {
            let c = &mut self.clients[i];
            match c.rtc.poll_output().unwrap() {
                Output::Timeout(t) => {
                    c.timeout = Some(t);
                    return moved;
                }
                Output::Transmit(t) => {
                    moved = true;
                    let (src, protocol, bytes) = (c.addr, c.protocol, t.contents.to_vec());
                    if (self.drop_to_engine)(i, &bytes) {
                        continue;
                    }
                    if !self.shape_link(i, Dir::Up, &bytes) {
                        self.engine.handle_receive(self.now, protocol, src, &bytes);
                    }
                }
                Output::Event(e) => c.events.push(e),
            }
        }
    }

    /// Delivers everything pending until nobody has anything to send.
    pub fn settle(&mut self) {
        loop {
            let mut moved = false;
            for i in 0..self.clients.len() {
                moved |= self.drain_client(i);
            }
            while let Some(out) = self.engine.poll_output() {
                moved = true;
                match out {
                    EngineOutput::Event(e) => self.engine_events.push(e),
                    EngineOutput::Tapped { tap_id, packet } => self.tapped.push((tap_id, packet)),
                    EngineOutput::Transmit {
                        protocol,
                        destination,
                        bytes,
                    } => {
                        let Some(i) = self
                            .clients
                            .iter()
                            .position(|c| c.addr == destination && c.protocol == protocol)
                        else {
                            continue;
                        };
                        if (self.drop_to_client)(i, &bytes) {
                            continue;
                        }
                        if !self.shape_link(i, Dir::Down, &bytes) {
                            self.deliver_to_client(i, &bytes);
                        }
                    }
                }
            }
            moved |= self.deliver_due();
            if !moved {
                return;
            }
        }
    }

    fn deliver_to_client(&mut self, i: usize, bytes: &[u8]) {
        let c = &mut self.clients[i];
        let (proto, from) = match c.protocol {
            IceProtocol::Udp => (Protocol::Udp, engine_addr()),
            IceProtocol::Tcp => (Protocol::Tcp, engine_tcp_addr()),
        };
        let r = Receive::new(proto, from, c.addr, bytes).unwrap();
        c.rtc.handle_input(Input::Receive(self.now, r)).unwrap();
        self.drain_client(i);
    }

    /// Shapes one direction of a client's link from now on (see
    /// `link::LinkShape`); a link never shaped delivers at once.
    pub fn set_link(&mut self, client: usize, dir: Dir, shape: LinkShape) {
        match self.links.get_mut(&(client, dir)) {
            Some(link) => link.set_shape(shape),
            None => {
                self.links.insert((client, dir), Link::new(shape));
            }
        }
    }

    /// Puts a datagram on a shaped link (false: the link is not shaped).
    fn shape_link(&mut self, client: usize, dir: Dir, bytes: &[u8]) -> bool {
        let Some(link) = self.links.get_mut(&(client, dir)) else {
            return false;
        };
        if let Some(at) = link.admit(self.now, bytes.len()) {
            self.flight_order += 1;
            self.in_flight
                .insert((at, self.flight_order), (client, dir, bytes.to_vec()));
        }
        true
    }

    /// Delivers the datagrams whose arrival time has come.
    fn deliver_due(&mut self) -> bool {
        let mut moved = false;
        while let Some(entry) = self.in_flight.first_entry() {
            if entry.key().0 > self.now {
                break;
            }
            let (client, dir, bytes) = entry.remove();
            moved = true;
            match dir {
                Dir::Up => {
                    let c = &self.clients[client];
                    let (src, protocol) = (c.addr, c.protocol);
                    self.engine.handle_receive(self.now, protocol, src, &bytes);
                }
                Dir::Down => self.deliver_to_client(client, &bytes),
            }
        }
        moved
    }

    /// Advances simulated time by `dur`, in steps no longer than 5 ms.
    pub fn run(&mut self, dur: Duration) {
        let end = self.now + dur;
        while self.now < end {
            self.settle();
            let mut next = (self.now + Duration::from_millis(5)).min(end);
            if let Some(t) = self.engine.next_timeout() {
                next = next.min(t.max(self.now + Duration::from_millis(1)));
            }
            if let Some(&(at, _)) = self.in_flight.keys().next() {
                next = next.min(at.max(self.now));
            }
            self.now = next;
            self.engine.handle_timeout(self.now);
            for c in &mut self.clients {
                c.rtc.handle_input(Input::Timeout(self.now)).unwrap();
            }
            self.settle();
        }
    }

    pub fn write(&mut self, client: usize, ssrc: u32, pt: u8, seq: u64, payload: Vec<u8>) {
        self.write_rtp(client, ssrc, pt, seq, (seq * 3000) as u32, payload);
    }

    /// Writes one RTP packet (marker set) on a client's send stream.
    pub fn write_rtp(
        &mut self,
        client: usize,
        ssrc: u32,
        pt: u8,
        seq: u64,
        timestamp: u32,
        payload: Vec<u8>,
    ) {
        self.write_rtp_with(
            client,
            ssrc,
            pt,
            seq,
            timestamp,
            payload,
            Default::default(),
        );
    }

    /// [`Net::write_rtp`] with header extension values (audio level, video
    /// orientation), written at the client's own ids.
    #[allow(clippy::too_many_arguments)]
    pub fn write_rtp_with(
        &mut self,
        client: usize,
        ssrc: u32,
        pt: u8,
        seq: u64,
        timestamp: u32,
        payload: Vec<u8>,
        ext_vals: ExtensionValues,
    ) {
        let now = self.now;
        let mut api = self.clients[client].rtc.direct_api();
        let tx = api.stream_tx(&Ssrc::from(ssrc)).unwrap();
        tx.write_rtp(
            RtpWrite::new(pt.into(), seq.into(), timestamp, now, payload)
                .marker(true)
                .nackable(true)
                .ext_vals(ext_vals),
        );
    }

    /// The RTP packets a client received on `ssrc`, in arrival order.
    pub fn packets(&self, client: usize, ssrc: u32) -> Vec<&RtpPacket> {
        self.clients[client]
            .events
            .iter()
            .filter_map(|e| match e {
                Event::RtpPacket(p) if *p.header.ssrc == ssrc => Some(p),
                _ => None,
            })
            .collect()
    }

    pub fn received(&self, client: usize, ssrc: u32) -> Vec<(u64, u8, Vec<u8>)> {
        self.clients[client]
            .events
            .iter()
            .filter_map(|e| match e {
                Event::RtpPacket(p) if *p.header.ssrc == ssrc => {
                    Some((*p.seq_no, *p.header.payload_type, p.payload.to_vec()))
                }
                _ => None,
            })
            .collect()
    }

    pub fn keyframe_requests(&self, client: usize) -> usize {
        self.clients[client]
            .events
            .iter()
            .filter(|e| matches!(e, Event::KeyframeRequest(_)))
            .count()
    }

    /// The keyframe requests a client got since event `*seen`, as (MID,
    /// RID) (RID empty without one); `*seen` moves past them. What a
    /// simulated encoder reads to make its next frame of a layer a keyframe.
    pub fn new_keyframe_requests(&self, client: usize, seen: &mut usize) -> Vec<(String, String)> {
        let events = &self.clients[client].events;
        let requests = events[*seen..]
            .iter()
            .filter_map(|e| match e {
                Event::KeyframeRequest(req) => Some((
                    req.mid.to_string(),
                    req.rid.map(|r| r.to_string()).unwrap_or_default(),
                )),
                _ => None,
            })
            .collect();
        *seen = events.len();
        requests
    }
}

/// The start of a VP8 payload with a full descriptor (15-bit picture id,
/// TL0PICIDX, TID with its layer-sync bit) and the payload header's
/// keyframe bit, for synthetic simulcast sources.
pub fn vp8_descriptor(
    frame_start: bool,
    picture_id: u16,
    tl0: u8,
    tid: u8,
    keyframe: bool,
) -> Vec<u8> {
    let start = if frame_start { 0x10 } else { 0x00 };
    let sync = if tid > 0 { 0x20 } else { 0 };
    vec![
        0x80 | start,
        0xE0,
        0x80 | (picture_id >> 8) as u8,
        picture_id as u8,
        tl0,
        (tid << 6) | sync,
        // VP8 payload header: P = 0 on keyframes.
        if keyframe { 0x00 } else { 0x01 },
    ]
}

pub fn router_caps_json(net: &Net) -> Value {
    serde_json::to_value(net.engine.router_rtp_capabilities("room").unwrap()).unwrap()
}
