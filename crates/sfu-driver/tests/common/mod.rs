//! Test peers for the driver: str0m `Rtc`s (full ICE, controlling, DTLS
//! client, RTP mode) on their own non-blocking UDP sockets on 127.0.0.1,
//! or on one ICE-TCP connection each (RFC 4571 frames; the peer is the
//! active side and uses only the SFU's TCP candidate), run by a small
//! polling loop on the test thread.

#![allow(dead_code)]

#[path = "../../../server/tests/server/common/wait.rs"]
mod wait;

use std::collections::BTreeSet;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use str0m::format::Codec;
use str0m::media::{Frequency, MediaKind as StrKind, Mid};
use str0m::net::{Protocol, Receive, TcpType};
use str0m::rtp::{Extension, ExtensionMap, RtpWrite, Ssrc};
use str0m::{Candidate, Event, IceCreds, Input, Output, Rtc, RtcConfig};
use vtp_sfu::engine::{ConsumerInfo, TransportDirection, TransportInfo};
use vtp_sfu::rtp::{MediaKind, uri};
use vtp_sfu_driver::{Consume, CreateTransport, Produce, SfuControl, SfuErrorCode, SfuHandle};
pub use wait::wait_until_blocking;

/// The SSRC (and RTX SSRC) the publishing peer sends VP8 with.
pub const VIDEO_SSRC: u32 = 0x0A11_CE01;
pub const VIDEO_RTX_SSRC: u32 = 0x0A11_CE02;
/// The publisher's numbering (as Chromium's): VP8 96 / rtx 97; mid 9,
/// abs-send-time 2, transport-cc 4.
pub const VP8_PT: u8 = 96;

/// How a peer reaches the SFU.
enum Link {
    Udp(UdpSocket),
    /// The connection, the SFU's address on it, and bytes read but not yet
    /// a whole frame.
    Tcp(TcpStream, SocketAddr, Vec<u8>),
}

pub struct Peer {
    pub rtc: Rtc,
    link: Link,
    pub addr: SocketAddr,
    pub events: Vec<Event>,
    buf: Vec<u8>,
}

impl Peer {
    /// A peer for transport `info`, told to connect (ICE controlling, DTLS
    /// client); the server side is told by `connect_transport`.
    pub fn new(cfg: RtcConfig, info: &TransportInfo) -> Peer {
        Peer::over(cfg, info, "udp")
    }

    /// A peer that uses only the transport's candidate of `protocol`
    /// (`"udp"` or `"tcp"`).
    pub fn over(cfg: RtcConfig, info: &TransportInfo, protocol: &str) -> Peer {
        let c = info
            .ice_candidates
            .iter()
            .find(|c| c.protocol == protocol)
            .unwrap();
        let server: SocketAddr = format!("{}:{}", c.ip, c.port).parse().unwrap();
        let mut rtc = cfg.build(Instant::now());
        let (link, addr) = if protocol == "tcp" {
            assert_eq!(c.tcp_type.as_deref(), Some("passive"));
            let stream = TcpStream::connect(server).unwrap();
            stream.set_nodelay(true).unwrap();
            stream.set_nonblocking(true).unwrap();
            let addr = stream.local_addr().unwrap();
            rtc.add_local_candidate(tcp_candidate(addr, TcpType::Active));
            rtc.add_remote_candidate(tcp_candidate(server, TcpType::Passive));
            (Link::Tcp(stream, server, Vec::new()), addr)
        } else {
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            socket.set_nonblocking(true).unwrap();
            let addr = socket.local_addr().unwrap();
            rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
            rtc.add_remote_candidate(Candidate::host(server, "udp").unwrap());
            (Link::Udp(socket), addr)
        };
        let fp = &info.dtls_parameters.fingerprints[0];
        {
            let mut api = rtc.direct_api();
            api.set_remote_ice_credentials(IceCreds {
                ufrag: info.ice_parameters.username_fragment.clone(),
                pass: info.ice_parameters.password.clone(),
            });
            api.set_ice_controlling(true);
            api.set_remote_fingerprint(format!("{} {}", fp.algorithm, fp.value).parse().unwrap());
            api.start_dtls(true).unwrap();
        }
        Peer {
            rtc,
            link,
            addr,
            events: Vec::new(),
            buf: vec![0; 65_536],
        }
    }

    /// `dtlsParameters` for `connect_transport`.
    pub fn dtls_parameters(&mut self) -> Value {
        let fp = self.rtc.direct_api().local_dtls_fingerprint().to_string();
        let (algorithm, value) = fp.split_once(' ').unwrap();
        json!({"role": "client", "fingerprints": [{"algorithm": algorithm, "value": value}]})
    }

    /// One non-blocking turn: everything received, due timers, outputs.
    pub fn turn(&mut self) {
        loop {
            let got: Vec<(Protocol, SocketAddr, Vec<u8>)> = match &mut self.link {
                Link::Udp(socket) => match socket.recv_from(&mut self.buf) {
                    Ok((n, source)) => vec![(Protocol::Udp, source, self.buf[..n].to_vec())],
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => panic!("peer socket: {e}"),
                },
                Link::Tcp(stream, server, pending) => match stream.read(&mut self.buf) {
                    Ok(0) => panic!("the sfu closed the connection"),
                    Ok(n) => {
                        pending.extend_from_slice(&self.buf[..n]);
                        let server = *server;
                        take_frames(pending)
                            .into_iter()
                            .map(|f| (Protocol::Tcp, server, f))
                            .collect()
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => panic!("peer connection: {e}"),
                },
            };
            for (proto, source, bytes) in got {
                self.receive(proto, source, &bytes);
            }
        }
        self.rtc
            .handle_input(Input::Timeout(Instant::now()))
            .unwrap();
        self.drain();
    }

    fn receive(&mut self, proto: Protocol, source: SocketAddr, bytes: &[u8]) {
        if let Ok(r) = Receive::new(proto, source, self.addr, bytes) {
            self.rtc
                .handle_input(Input::Receive(Instant::now(), r))
                .unwrap();
            self.drain();
        }
    }

    fn drain(&mut self) {
        loop {
            match self.rtc.poll_output().unwrap() {
                Output::Timeout(_) => return,
                Output::Transmit(t) => match &mut self.link {
                    Link::Udp(socket) => {
                        let _ = socket.send_to(&t.contents, t.destination);
                    }
                    Link::Tcp(stream, ..) => write_all(stream, &frame(&t.contents)),
                },
                Output::Event(e) => self.events.push(e),
            }
        }
    }

    /// Writes one VP8 packet (index `i`) on the publisher's stream.
    pub fn send_video(&mut self, i: u64) {
        let now = Instant::now();
        let mut api = self.rtc.direct_api();
        let tx = api.stream_tx(&Ssrc::from(VIDEO_SSRC)).unwrap();
        tx.write_rtp(
            RtpWrite::new(
                VP8_PT.into(),
                (1000 + i).into(),
                (i * 3000) as u32,
                now,
                payload(i),
            )
            .marker(true)
            .nackable(true),
        );
        self.drain();
    }

    /// Indexes of the VP8 packets received on `ssrc` with `pt` and an
    /// intact payload.
    pub fn received(&self, ssrc: u32, pt: u8) -> BTreeSet<u64> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::RtpPacket(p) if *p.header.ssrc == ssrc && *p.header.payload_type == pt => {
                    payload_index(&p.payload)
                }
                _ => None,
            })
            .collect()
    }
}

/// A fake VP8 payload (descriptor byte, then the index and a pattern).
/// A TCP host candidate of `tcptype`.
pub fn tcp_candidate(addr: SocketAddr, tcptype: TcpType) -> Candidate {
    Candidate::builder()
        .tcp()
        .host(addr)
        .tcptype(tcptype)
        .build()
        .unwrap()
}

/// `payload` with its RFC 4571 length.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u16).to_be_bytes().to_vec();
    f.extend_from_slice(payload);
    f
}

/// The whole frames at the start of `pending`, removed from it.
pub fn take_frames(pending: &mut Vec<u8>) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    let mut at = 0;
    while pending.len() >= at + 2 {
        let len = usize::from(u16::from_be_bytes([pending[at], pending[at + 1]]));
        if pending.len() < at + 2 + len {
            break;
        }
        frames.push(pending[at + 2..at + 2 + len].to_vec());
        at += 2 + len;
    }
    pending.drain(..at);
    frames
}

/// Writes all of `bytes` on a non-blocking stream (a test sends little:
/// the socket buffer is full only for an instant).
pub fn write_all(stream: &mut TcpStream, mut bytes: &[u8]) {
    let end = Instant::now() + Duration::from_secs(10);
    while !bytes.is_empty() {
        match stream.write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                assert!(Instant::now() < end, "the sfu does not read");
                std::thread::yield_now();
            }
            Err(e) => panic!("peer connection: {e}"),
        }
    }
}

pub fn payload(i: u64) -> Vec<u8> {
    let mut p = vec![0x10, 0x00];
    p.extend_from_slice(&i.to_be_bytes());
    p.extend((0..32u8).map(|k| k ^ (i as u8)));
    p
}

fn payload_index(p: &[u8]) -> Option<u64> {
    let i = u64::from_be_bytes(p.get(2..10)?.try_into().ok()?);
    (p == payload(i).as_slice()).then_some(i)
}

/// Runs `peers` for `dur`, a turn every millisecond: the pace at which
/// the test's publishers send.
pub fn pump(peers: &mut [&mut Peer], dur: Duration) {
    let end = Instant::now() + dur;
    while Instant::now() < end {
        for p in peers.iter_mut() {
            p.turn();
        }
        std::thread::sleep(Duration::from_millis(1)); // sleep-ok: pacing the senders
    }
}

/// Runs `peers` until `done` holds or `limit` is over; whether it holds.
pub fn turn_until(
    peers: &mut [&mut Peer],
    limit: Duration,
    done: impl Fn(&[&mut Peer]) -> bool,
) -> bool {
    let end = Instant::now() + limit;
    loop {
        if done(peers) {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        for p in peers.iter_mut() {
            p.turn();
        }
        std::thread::sleep(Duration::from_millis(1)); // sleep-ok: the poll interval (the peers turn between looks)
    }
}

/// Runs `peers` until `done` holds (panics naming `what` after `limit`).
pub fn pump_until(
    peers: &mut [&mut Peer],
    limit: Duration,
    what: &str,
    done: impl Fn(&[&mut Peer]) -> bool,
) {
    assert!(
        turn_until(peers, limit, done),
        "waited {limit:?} in vain for {what}"
    );
}

/// The publisher's configuration (Chromium's numbering).
pub fn publisher_config() -> RtcConfig {
    let mut exts = ExtensionMap::empty();
    exts.set(9, Extension::RtpMid);
    exts.set(2, Extension::AbsoluteSendTime);
    exts.set(4, Extension::TransportSequenceNumber);
    let mut cfg = RtcConfig::new()
        .set_rtp_mode(true)
        .clear_codecs()
        .set_extension_map(exts);
    cfg.codec_config().add_config(
        VP8_PT.into(),
        Some(97.into()),
        Codec::Vp8,
        Frequency::NINETY_KHZ,
        None,
        Default::default(),
    );
    cfg
}

/// `rtpParameters` of the publisher's VP8 producer.
pub fn video_rtp_parameters() -> Value {
    json!({
        "mid": "0",
        "codecs": [
            {"mimeType": "video/VP8", "payloadType": VP8_PT, "clockRate": 90000,
             "rtcpFeedback": [{"type": "nack"}, {"type": "nack", "parameter": "pli"}]},
            {"mimeType": "video/rtx", "payloadType": 97, "clockRate": 90000, "parameters": {"apt": VP8_PT}}
        ],
        "headerExtensions": [
            {"uri": uri::MID, "id": 9},
            {"uri": uri::ABS_SEND_TIME, "id": 2},
            {"uri": uri::TRANSPORT_WIDE_CC, "id": 4}
        ],
        "encodings": [{"ssrc": VIDEO_SSRC, "rtx": {"ssrc": VIDEO_RTX_SSRC}}],
        "rtcp": {"cname": "publisher"}
    })
}

/// A receiving peer's configuration, taken from what `consume` answered.
pub fn subscriber_config(consumer: &ConsumerInfo) -> RtcConfig {
    let params = &consumer.rtp_parameters;
    let mut exts = ExtensionMap::empty();
    for e in &params.header_extensions {
        let ext = match e.uri.as_str() {
            uri::MID => Extension::RtpMid,
            uri::ABS_SEND_TIME => Extension::AbsoluteSendTime,
            uri::TRANSPORT_WIDE_CC => Extension::TransportSequenceNumber,
            uri::SSRC_AUDIO_LEVEL => Extension::AudioLevel,
            _ => continue,
        };
        exts.set(e.id, ext);
    }
    let vp8 = params
        .codecs
        .iter()
        .find(|c| c.mime_type.eq_ignore_ascii_case("video/VP8"))
        .expect("a VP8 consumer");
    let rtx = params
        .codecs
        .iter()
        .find(|c| c.mime_type.eq_ignore_ascii_case("video/rtx"))
        .map(|c| c.payload_type.into());
    let mut cfg = RtcConfig::new()
        .set_rtp_mode(true)
        .clear_codecs()
        .set_extension_map(exts);
    cfg.codec_config().add_config(
        vp8.payload_type.into(),
        rtx,
        Codec::Vp8,
        Frequency::NINETY_KHZ,
        None,
        Default::default(),
    );
    cfg
}

/// A transport of `peer` in `room` on `sfu` through the control API (the
/// room and the peer are added when they are not there yet).
pub fn transport(
    rt: &tokio::runtime::Runtime,
    sfu: &SfuHandle,
    room: &str,
    peer: &str,
    direction: TransportDirection,
) -> TransportInfo {
    match rt.block_on(sfu.add_peer(room, peer)) {
        Ok(_) => {}
        Err(e) if e.code == SfuErrorCode::Conflict => {}
        Err(e) => panic!("add_peer {room}/{peer}: {e}"),
    }
    let request = CreateTransport {
        peer_id: peer.to_owned(),
        direction,
        enable_sctp: false,
    };
    rt.block_on(sfu.create_transport(room, request)).unwrap()
}

/// One room: a publisher sending VP8 through a send transport and a
/// subscriber consuming it through a receive transport.
pub struct Room {
    pub router_id: String,
    pub send: TransportInfo,
    pub recv: TransportInfo,
    pub producer_id: String,
    pub publisher: Peer,
    pub subscriber: Peer,
    pub consumer: ConsumerInfo,
}

impl Room {
    /// Sets the room up on `sfu` through the control API and waits until
    /// both peers are connected; the consumer is resumed.
    pub fn open(rt: &tokio::runtime::Runtime, sfu: &SfuHandle, router_id: &str) -> Room {
        Room::open_over(rt, sfu, router_id, "udp")
    }

    /// [`Room::open`] with both peers on `protocol` only.
    pub fn open_over(
        rt: &tokio::runtime::Runtime,
        sfu: &SfuHandle,
        router_id: &str,
        protocol: &str,
    ) -> Room {
        let send = transport(rt, sfu, router_id, "publisher", TransportDirection::Send);
        let recv = transport(rt, sfu, router_id, "subscriber", TransportDirection::Recv);
        assert_eq!(send.ice_candidates[0].port, sfu.local_addr().port());

        let mut publisher = Peer::over(publisher_config(), &send, protocol);
        {
            let mut api = publisher.rtc.direct_api();
            api.declare_media(Mid::from("0"), StrKind::Video);
            api.declare_stream_tx(
                Ssrc::from(VIDEO_SSRC),
                Some(Ssrc::from(VIDEO_RTX_SSRC)),
                Mid::from("0"),
                None,
            );
        }
        let dtls = publisher.dtls_parameters();
        rt.block_on(sfu.connect_transport(router_id, &send.id, dtls))
            .unwrap();
        let produce = Produce {
            peer_id: "publisher".into(),
            transport_id: send.id.clone(),
            kind: MediaKind::Video,
            rtp_parameters: video_rtp_parameters(),
            app_data: Value::Null,
        };
        let producer_id = rt.block_on(sfu.produce(router_id, produce)).unwrap().id;

        let caps = rt.block_on(sfu.open_room(router_id)).unwrap();
        let consume = Consume {
            peer_id: "subscriber".into(),
            transport_id: recv.id.clone(),
            producer_id: producer_id.clone(),
            rtp_capabilities: serde_json::to_value(caps).unwrap(),
        };
        let consumer = rt.block_on(sfu.consume(router_id, consume)).unwrap();
        let mut subscriber = Peer::over(subscriber_config(&consumer), &recv, protocol);
        {
            let mid = consumer.rtp_parameters.mid.clone().unwrap();
            let enc = &consumer.rtp_parameters.encodings[0];
            let mut api = subscriber.rtc.direct_api();
            api.declare_media(Mid::from(mid.as_str()), StrKind::Video);
            api.expect_stream_rx(
                Ssrc::from(enc.ssrc.unwrap()),
                enc.rtx.map(|r| Ssrc::from(r.ssrc)),
                Mid::from(mid.as_str()),
                None,
            );
        }
        let dtls = subscriber.dtls_parameters();
        rt.block_on(sfu.connect_transport(router_id, &recv.id, dtls))
            .unwrap();

        pump_until(
            &mut [&mut publisher, &mut subscriber],
            Duration::from_secs(10),
            "both peers to connect",
            |peers| peers.iter().all(|p| p.rtc.is_connected()),
        );
        rt.block_on(sfu.set_consumer_paused(router_id, &consumer.id, false))
            .unwrap();
        Room {
            router_id: router_id.to_owned(),
            send,
            recv,
            producer_id,
            publisher,
            subscriber,
            consumer,
        }
    }

    /// The consumer's SSRC and payload type.
    pub fn consumer_stream(&self) -> (u32, u8) {
        let p = &self.consumer.rtp_parameters;
        let vp8 = p
            .codecs
            .iter()
            .find(|c| c.mime_type.eq_ignore_ascii_case("video/VP8"))
            .unwrap();
        (p.encodings[0].ssrc.unwrap(), vp8.payload_type)
    }

    /// How many of `0..count` arrived intact at the subscriber.
    pub fn delivered(&self, count: u64) -> usize {
        let (ssrc, pt) = self.consumer_stream();
        self.subscriber.received(ssrc, pt).range(0..count).count()
    }
}

/// Sends `count` packets, 5 ms apart, in every room at once, then runs
/// the peers until every subscriber has them all or `SETTLE` is over (the
/// caller judges what arrived).
pub fn send_in_all(rooms: &mut [&mut Room], count: u64) {
    for i in 0..count {
        for room in rooms.iter_mut() {
            room.publisher.send_video(i);
        }
        let mut peers: Vec<&mut Peer> = rooms
            .iter_mut()
            .flat_map(|r| [&mut r.publisher, &mut r.subscriber])
            .collect();
        pump(&mut peers, Duration::from_millis(5));
    }
    let streams: Vec<(u32, u8)> = rooms.iter().map(|r| r.consumer_stream()).collect();
    let mut peers: Vec<&mut Peer> = rooms
        .iter_mut()
        .flat_map(|r| [&mut r.publisher, &mut r.subscriber])
        .collect();
    turn_until(&mut peers, SETTLE, |peers| {
        // (publisher, subscriber) pairs, in the rooms' order.
        peers.chunks(2).zip(&streams).all(|(pair, &(ssrc, pt))| {
            pair[1].received(ssrc, pt).range(0..count).count() as u64 == count
        })
    });
}

/// How long packets sent may take to arrive on a busy machine.
pub const SETTLE: Duration = Duration::from_secs(5);

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}
