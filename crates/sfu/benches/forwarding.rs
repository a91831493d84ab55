//! The forwarding path of the engine, in simulated time: one SRTP video
//! packet from a publisher goes in through `handle_datagram`, and one
//! SRTP packet per consumer comes out of `poll_output`. Reported per
//! consumer (criterion's throughput in elements = consumers), so the
//! figure is "time per forwarded packet per consumer", SRTP unprotect of
//! the input and protect of every output included.
//!
//! `simulcast` runs the same with a publisher sending three RID layers
//! (one packet of each per slot) and every consumer getting the top one:
//! the figure, still per forwarded packet per consumer, then includes the
//! layer selection and the input of the two layers nobody gets.
//!
//! Run: `cargo bench -p vtp-sfu --bench forwarding`.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};
use str0m::format::Codec;
use str0m::media::{Frequency, MediaKind as StrKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{Extension, ExtensionMap, RtpWrite, Ssrc};
use str0m::{Input, Output, Rtc, RtcConfig};
use vtp_sfu::engine::{Engine, EngineConfig, EngineOutput, TransportInfo, TransportOptions};
use vtp_sfu::rtp::{self, MediaKind};

#[path = "../tests/support/peer.rs"]
mod peer;

const ENGINE: &str = "10.0.0.1:40000";
const VIDEO_SSRC: u32 = 1111;
/// A typical full-size video packet payload.
const PAYLOAD_BYTES: usize = 1100;
const PACKET_INTERVAL: Duration = Duration::from_millis(5);

struct Peer {
    rtc: Rtc,
    addr: SocketAddr,
}

/// The engine and its clients, wired in memory.
struct Sim {
    engine: Engine,
    publisher: Peer,
    subscribers: Vec<Peer>,
    now: Instant,
    seq: u64,
    /// Publisher streams: one, or three simulcast layers.
    ssrcs: Vec<u32>,
}

fn engine_addr() -> SocketAddr {
    ENGINE.parse().expect("address")
}

fn client_config(pt: u8, rtx: u8, exts: &[(u8, Extension)]) -> RtcConfig {
    let mut map = ExtensionMap::empty();
    for (id, ext) in exts {
        map.set(*id, ext.clone());
    }
    let mut cfg = RtcConfig::new()
        .set_rtp_mode(true)
        .clear_codecs()
        .set_extension_map(map);
    cfg.codec_config().add_config(
        pt.into(),
        Some(rtx.into()),
        Codec::Vp8,
        Frequency::NINETY_KHZ,
        None,
        Default::default(),
    );
    cfg
}

fn subscriber_config() -> RtcConfig {
    let mut exts = Vec::new();
    for e in &rtp::router_rtp_capabilities().header_extensions {
        let ext = match e.uri.as_str() {
            rtp::uri::MID => Extension::RtpMid,
            rtp::uri::ABS_SEND_TIME => Extension::AbsoluteSendTime,
            rtp::uri::TRANSPORT_WIDE_CC => Extension::TransportSequenceNumber,
            _ => continue,
        };
        exts.push((e.preferred_id, ext));
    }
    client_config(101, 102, &exts)
}

/// The RIDs and SSRCs of the simulcast publisher's layers.
const LAYERS: [(&str, u32); 3] = [("r0", 2001), ("r1", 2011), ("r2", 2021)];

fn publisher_params(simulcast: bool) -> Value {
    let mut params = json!({
        "mid": "0",
        "codecs": [
            {"mimeType": "video/VP8", "payloadType": 96, "clockRate": 90000,
             "rtcpFeedback": [{"type": "nack"}, {"type": "nack", "parameter": "pli"}]},
            {"mimeType": "video/rtx", "payloadType": 97, "clockRate": 90000, "parameters": {"apt": 96}}
        ],
        "headerExtensions": [
            {"uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": 9},
            {"uri": "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time", "id": 2},
            {"uri": "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01", "id": 4},
            {"uri": "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id", "id": 10},
            {"uri": "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id", "id": 11}
        ],
        "encodings": [{"ssrc": VIDEO_SSRC, "rtx": {"ssrc": 1112}}],
        "rtcp": {"cname": "bench"}
    });
    if simulcast {
        params["encodings"] = LAYERS.iter().map(|(rid, _)| json!({"rid": rid})).collect();
    }
    params
}

impl Sim {
    /// A publisher and `consumers` subscribers, all connected, consumers
    /// resumed.
    fn new(consumers: usize, simulcast: bool, bwe: bool) -> Sim {
        let mut config = EngineConfig::new(engine_addr());
        config.seed = 7;
        // Bandwidth estimation on (its bookkeeping and the pacer are part of
        // the path towards a browser), from an estimate so high that the
        // pacer never holds a packet back: the bench's clients send no TWCC
        // feedback, so it stays there, and the figure is the forwarding
        // work, not pacing. Off: what a client without feedback costs.
        config.initial_bandwidth_estimate_bps = bwe.then_some(10_000_000_000);
        let mut engine = Engine::new(config).expect("engine");
        let now = Instant::now();
        engine.create_router("room").expect("router");
        let info = engine
            .create_webrtc_transport("room", "pub", TransportOptions::default())
            .expect("transport");
        let mut publisher = client_peer(
            client_config(
                96,
                97,
                &[
                    (9, Extension::RtpMid),
                    (2, Extension::AbsoluteSendTime),
                    (4, Extension::TransportSequenceNumber),
                    (10, Extension::RtpStreamId),
                    (11, Extension::RepairedRtpStreamId),
                ],
            ),
            &info,
            "10.0.1.1:5000".parse().expect("address"),
            now,
        );
        let streams: Vec<(Option<&str>, u32)> = if simulcast {
            LAYERS
                .iter()
                .map(|(rid, ssrc)| (Some(*rid), *ssrc))
                .collect()
        } else {
            vec![(None, VIDEO_SSRC)]
        };
        {
            let mut api = publisher.rtc.direct_api();
            api.declare_media(Mid::from("0"), StrKind::Video);
            for (rid, ssrc) in &streams {
                api.declare_stream_tx(
                    Ssrc::from(*ssrc),
                    Some(Ssrc::from(ssrc + 1)),
                    Mid::from("0"),
                    rid.map(Into::into),
                );
            }
        }
        let dtls = peer::dtls_parameters(&mut publisher.rtc);
        engine
            .connect_transport("pub", &dtls, now)
            .expect("connect");
        engine
            .produce(
                "pub",
                "p",
                MediaKind::Video,
                &publisher_params(simulcast),
                now,
            )
            .expect("produce");
        let caps = serde_json::to_value(engine.router_rtp_capabilities("room").expect("caps"))
            .expect("caps json");
        let mut subscribers = Vec::new();
        for i in 0..consumers {
            let id = format!("sub{i}");
            let info = engine
                .create_webrtc_transport("room", &id, TransportOptions::default())
                .expect("transport");
            let addr: SocketAddr = format!("10.0.2.{}:{}", 1 + i / 200, 6000 + i % 200)
                .parse()
                .expect("address");
            let mut peer = client_peer(subscriber_config(), &info, addr, now);
            let consumer = engine
                .consume(&id, &format!("c{i}"), "p", &caps, now)
                .expect("consume");
            {
                let mut api = peer.rtc.direct_api();
                let mid = consumer.rtp_parameters.mid.clone().expect("mid");
                api.declare_media(Mid::from(mid.as_str()), StrKind::Video);
                let enc = &consumer.rtp_parameters.encodings[0];
                api.expect_stream_rx(
                    Ssrc::from(enc.ssrc.expect("ssrc")),
                    enc.rtx.as_ref().map(|r| Ssrc::from(r.ssrc)),
                    Mid::from(mid.as_str()),
                    None,
                );
            }
            let dtls = peer::dtls_parameters(&mut peer.rtc);
            engine.connect_transport(&id, &dtls, now).expect("connect");
            subscribers.push(peer);
        }
        let mut sim = Sim {
            engine,
            publisher,
            subscribers,
            now,
            seq: 0,
            ssrcs: streams.iter().map(|(_, ssrc)| *ssrc).collect(),
        };
        for _ in 0..200 {
            sim.step(Duration::from_millis(5));
        }
        assert!(sim.publisher.rtc.is_connected(), "publisher connected");
        assert!(
            sim.subscribers.iter().all(|s| s.rtc.is_connected()),
            "subscribers connected"
        );
        for i in 0..consumers {
            sim.engine
                .resume_consumer(&format!("c{i}"), sim.now)
                .expect("resume");
        }
        sim.settle();
        sim
    }

    /// Delivers everything in flight, in both directions.
    fn settle(&mut self) {
        loop {
            let mut moved = false;
            moved |= drain(&mut self.publisher, &mut self.engine, self.now);
            for s in &mut self.subscribers {
                moved |= drain(s, &mut self.engine, self.now);
            }
            while let Some(out) = self.engine.poll_output() {
                moved = true;
                if let EngineOutput::Transmit {
                    destination, bytes, ..
                } = out
                {
                    let peer = if destination == self.publisher.addr {
                        Some(&mut self.publisher)
                    } else {
                        self.subscribers.iter_mut().find(|s| s.addr == destination)
                    };
                    if let Some(peer) = peer {
                        let r = Receive::new(Protocol::Udp, engine_addr(), peer.addr, &bytes)
                            .expect("receive");
                        let _ = peer.rtc.handle_input(Input::Receive(self.now, r));
                    }
                }
            }
            if !moved {
                return;
            }
        }
    }

    fn step(&mut self, dur: Duration) {
        self.settle();
        self.now += dur;
        self.engine.handle_timeout(self.now);
        let _ = self.publisher.rtc.handle_input(Input::Timeout(self.now));
        for s in &mut self.subscribers {
            let _ = s.rtc.handle_input(Input::Timeout(self.now));
        }
        self.settle();
    }

    /// The publisher's SRTP datagrams for `count` slots (a packet of each
    /// stream every 5 ms: ~1.8 Mbit/s per stream) with their arrival
    /// times, ready to feed the engine.
    fn publisher_packets(&mut self, count: usize) -> Vec<(Instant, Vec<u8>)> {
        let count = count * self.ssrcs.len();
        let mut out = Vec::with_capacity(count);
        let mut stalled = 0;
        while out.len() < count {
            self.seq += 1;
            self.now += PACKET_INTERVAL;
            let seq = self.seq;
            // A VP8 descriptor as Chromium sends it (15-bit picture id,
            // TL0PICIDX, TID; a new frame every 8 packets), S set and a
            // keyframe's P bit: every packet may start a layer, and every
            // consumer rewrites the picture id and TL0PICIDX.
            let frame = seq / 8;
            let mut payload = vec![0x10u8; PAYLOAD_BYTES];
            payload[..6].copy_from_slice(&[
                0x90,
                0xE0,
                0x80 | ((frame >> 8) & 0x7f) as u8,
                frame as u8,
                frame as u8,
                0x00,
            ]);
            let mut api = self.publisher.rtc.direct_api();
            for ssrc in &self.ssrcs {
                let tx = api.stream_tx(&Ssrc::from(*ssrc)).expect("stream");
                tx.write_rtp(
                    RtpWrite::new(
                        96.into(),
                        seq.into(),
                        (seq * 90) as u32,
                        self.now,
                        payload.clone(),
                    )
                    .marker(seq.is_multiple_of(8))
                    .nackable(true),
                );
            }
            // str0m's pacer releases what was written when time moves.
            let _ = self.publisher.rtc.handle_input(Input::Timeout(self.now));
            let before = out.len();
            loop {
                match self.publisher.rtc.poll_output().expect("output") {
                    Output::Timeout(_) => break,
                    Output::Transmit(t) => out.push((self.now, t.contents.to_vec())),
                    Output::Event(_) => {}
                }
            }
            stalled = if out.len() == before { stalled + 1 } else { 0 };
            assert!(stalled < 100, "the publisher stopped sending");
        }
        out
    }

    /// Feeds one datagram at its arrival time and runs the timers that are
    /// due, as the driver's worker does; returns the datagrams sent.
    fn forward(&mut self, at: Instant, bytes: &[u8]) -> usize {
        self.engine.handle_datagram(at, self.publisher.addr, bytes);
        if self.engine.next_timeout().is_some_and(|t| t <= at) {
            self.engine.handle_timeout(at);
        }
        let mut sent = 0;
        while let Some(out) = self.engine.poll_output() {
            if let EngineOutput::Transmit { bytes, .. } = out {
                sent += 1;
                black_box(bytes);
            }
        }
        sent
    }
}

fn client_peer(cfg: RtcConfig, info: &TransportInfo, addr: SocketAddr, now: Instant) -> Peer {
    Peer {
        rtc: peer::client_for(cfg, info, addr, now),
        addr,
    }
}

/// Drains one client into the engine; true if it sent anything.
fn drain(peer: &mut Peer, engine: &mut Engine, now: Instant) -> bool {
    let mut moved = false;
    loop {
        match peer.rtc.poll_output() {
            Ok(Output::Timeout(_)) | Err(_) => return moved,
            Ok(Output::Transmit(t)) => {
                moved = true;
                engine.handle_datagram(now, peer.addr, &t.contents);
            }
            Ok(Output::Event(_)) => {}
        }
    }
}

fn forwarding(c: &mut Criterion) {
    forwarding_group(c, "forward_video_packet", false, true);
    forwarding_group(c, "forward_simulcast_packet", true, true);
    forwarding_group(c, "forward_video_packet_without_bwe", false, false);
}

fn forwarding_group(c: &mut Criterion, name: &str, simulcast: bool, bwe: bool) {
    let mut group = c.benchmark_group(name);
    group.measurement_time(Duration::from_secs(6));
    // `cargo test --all-targets` runs this once as a smoke test; the
    // sizes that take long to set up are for `cargo bench` only.
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let sizes: &[usize] = if benchmarking { &[1, 10, 50] } else { &[2] };
    for &consumers in sizes {
        let mut sim = Sim::new(consumers, simulcast, bwe);
        // The figure means something only if every consumer gets a packet.
        let warm = sim.publisher_packets(50);
        let sent: usize = warm.iter().map(|(at, p)| sim.forward(*at, p)).sum();
        assert!(
            sent >= 50 * consumers,
            "{sent} datagrams out for 50 packets to {consumers} consumers"
        );
        group.throughput(Throughput::Elements(consumers as u64));
        group.bench_with_input(
            BenchmarkId::new("consumers", consumers),
            &consumers,
            |b, _| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    let mut left = iters as usize;
                    while left > 0 {
                        let slots = left.min(2000);
                        let batch = sim.publisher_packets(slots);
                        left -= slots;
                        let start = Instant::now();
                        for (at, packet) in &batch {
                            black_box(sim.forward(*at, packet));
                        }
                        total += start.elapsed();
                        // Timers (RTCP, NACK bookkeeping) run between
                        // batches, outside the measurement.
                        sim.step(Duration::from_millis(1));
                    }
                    total
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, forwarding);
criterion_main!(benches);
