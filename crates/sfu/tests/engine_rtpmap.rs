//! Several producers on ONE send transport, numbered as real browsers
//! number them (Firefox 153 and Chromium 156, from the captured
//! mediasoup-client parameters), in simulated time. The engine's `Rtc` for
//! the transport is built at the first `produce`; every later producer
//! brings payload types and header-extension ids the first one did not
//! name (issue 15: a Firefox user joining with camera and microphone was
//! heard and never seen, or seen and never heard).
//!
//! Every producer must reach its consumer with the router's payload types,
//! a packet of a later producer lost on the way in must be repaired by RTX,
//! and each microphone's audio level must reach the active speaker
//! detector, whatever id its browser gave the extension.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;
use str0m::media::{MediaKind as StrKind, Mid, Rid};
use str0m::rtp::{ExtensionValues, Ssrc, VideoOrientation};
use vtp_sfu::engine::{ConsumerInfo, EngineEvent};
use vtp_sfu::rtp::{MediaKind, uri};

#[path = "support/net.rs"]
mod net;
use net::{Net, router_caps_json, vp8_descriptor};
#[path = "support/browsers.rs"]
mod browsers;
use browsers::{Browser, rids, ssrcs, with_mid, with_ssrcs};

/// A packet every 20 ms per stream.
const FRAME: Duration = Duration::from_millis(20);
/// What the publisher's microphone says (dBov).
const LEVEL: i8 = -20;
/// The router's payload types (`rtp::router_rtp_capabilities`).
const ROUTER_OPUS: u8 = 100;
const ROUTER_VP8: u8 = 101;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Source {
    Camera,
    Simulcast,
    Microphone,
    Screen,
}

impl Source {
    fn id(self) -> &'static str {
        match self {
            Source::Camera => "camera",
            Source::Simulcast => "simulcast",
            Source::Microphone => "microphone",
            Source::Screen => "screen",
        }
    }
}

/// One RTP stream the publisher sends.
struct Stream {
    ssrc: u32,
    rtx: Option<u32>,
    rid: Option<String>,
    seq: u64,
    /// Packets written on it.
    sent: u64,
}

struct Produced {
    source: Source,
    streams: Vec<Stream>,
    consumer: ConsumerInfo,
}

struct Room {
    net: Net,
    a: usize,
    b: usize,
    browser: Browser,
    produced: Vec<Produced>,
    /// Main SSRC → which of its packets (1-based) the uplink drops once.
    drops: std::rc::Rc<std::cell::RefCell<HashMap<u32, (u64, u64)>>>,
}

impl Room {
    /// A publisher numbering as `browser` on send transport "ta" and a
    /// subscriber on "tb", both connected (nothing produced yet: the
    /// publisher's `Rtc` does not exist).
    fn new(browser: Browser) -> Room {
        let mut net = Net::new();
        let (a, b) = net.two_parties(browser.client_config());
        let now = net.now;
        for (client, transport) in [(a, "ta"), (b, "tb")] {
            let dtls = net.dtls_of(client);
            net.engine.connect_transport(transport, &dtls, now).unwrap();
        }
        net.run(Duration::from_millis(50));
        let drops: std::rc::Rc<std::cell::RefCell<HashMap<u32, (u64, u64)>>> = Default::default();
        let seen = drops.clone();
        net.drop_to_engine = Box::new(move |client, bytes| {
            let is_rtp = bytes.len() > 12 && bytes[0] >> 6 == 2 && !(192..=223).contains(&bytes[1]);
            if client != a || !is_rtp {
                return false;
            }
            let ssrc = u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
            let mut drops = seen.borrow_mut();
            let Some((count, at)) = drops.get_mut(&ssrc) else {
                return false;
            };
            *count += 1;
            *count == *at
        });
        Room {
            net,
            a,
            b,
            browser,
            produced: Vec::new(),
            drops,
        }
    }

    /// Produces `source` on "ta" with the browser's parameters (the next
    /// MID), consumes it on "tb" and resumes the consumer.
    fn produce(&mut self, source: Source) {
        let mid = self.produced.len().to_string();
        let (kind, params) = match source {
            Source::Camera => (MediaKind::Video, self.browser.camera.clone()),
            Source::Simulcast => (MediaKind::Video, self.browser.simulcast.clone()),
            Source::Microphone => (MediaKind::Audio, self.browser.microphone.clone()),
            Source::Screen => (
                MediaKind::Video,
                with_ssrcs(&self.browser.camera, 7001, 7002),
            ),
        };
        let params: Value = with_mid(&params, &mid);
        let streams: Vec<Stream> = if source == Source::Simulcast {
            rids(&params)
                .into_iter()
                .enumerate()
                .map(|(n, rid)| Stream {
                    ssrc: 2001 + 10 * n as u32,
                    rtx: Some(2002 + 10 * n as u32),
                    rid: Some(rid),
                    seq: 1000 * n as u64,
                    sent: 0,
                })
                .collect()
        } else {
            let (ssrc, rtx) = ssrcs(&params);
            vec![Stream {
                ssrc,
                rtx,
                rid: None,
                seq: 500,
                sent: 0,
            }]
        };
        {
            let kind = match kind {
                MediaKind::Audio => StrKind::Audio,
                MediaKind::Video => StrKind::Video,
            };
            let mut api = self.net.clients[self.a].rtc.direct_api();
            api.declare_media(Mid::from(mid.as_str()), kind);
            for s in &streams {
                api.declare_stream_tx(
                    Ssrc::from(s.ssrc),
                    s.rtx.map(Ssrc::from),
                    Mid::from(mid.as_str()),
                    s.rid.as_deref().map(Rid::from),
                );
            }
        }
        let now = self.net.now;
        let producer = source.id();
        self.net
            .engine
            .produce("ta", producer, kind, &params, now)
            .unwrap_or_else(|e| panic!("{}: produce {producer}: {e}", self.browser.name));
        let caps = router_caps_json(&self.net);
        let consumer_id = format!("c-{producer}");
        let consumer = self
            .net
            .engine
            .consume("tb", &consumer_id, producer, &caps, now)
            .unwrap();
        self.net.expect_consumer(self.b, &consumer);
        self.net.engine.resume_consumer(&consumer_id, now).unwrap();
        self.produced.push(Produced {
            source,
            streams,
            consumer,
        });
    }

    /// The uplink loses the `nth` next packet of each stream of `source`.
    fn lose_one(&mut self, source: Source, nth: u64) {
        let p = self.produced.iter().find(|p| p.source == source).unwrap();
        let mut drops = self.drops.borrow_mut();
        for s in &p.streams {
            drops.insert(s.ssrc, (0, nth));
        }
    }

    /// `n` frames of every producer: one packet per stream, a VP8 keyframe
    /// (video, with a video orientation where the browser has the
    /// extension) or an Opus packet at [`LEVEL`].
    fn frames(&mut self, n: u64) {
        let (vp8, _) = self.browser.pt("video/VP8");
        let (opus, _) = self.browser.pt("audio/opus");
        for _ in 0..n {
            for p in &mut self.produced {
                for (index, s) in p.streams.iter_mut().enumerate() {
                    s.seq += 1;
                    s.sent += 1;
                    let (pt, ts, payload, ext) = if p.source == Source::Microphone {
                        let ext = ExtensionValues {
                            audio_level: Some(LEVEL),
                            voice_activity: Some(true),
                            ..Default::default()
                        };
                        (opus, s.seq * 960, vec![0xfc, 1, 2, 3], ext)
                    } else {
                        let mut payload = vp8_descriptor(true, (s.seq & 0x7fff) as u16, 0, 0, true);
                        payload.extend([index as u8, (s.seq % 251) as u8]);
                        let ext = ExtensionValues {
                            video_orientation: Some(VideoOrientation::Deg90),
                            ..Default::default()
                        };
                        (vp8, s.seq * 3000, payload, ext)
                    };
                    self.net
                        .write_rtp_with(self.a, s.ssrc, pt, s.seq, ts as u32, payload, ext);
                }
            }
            self.net.run(FRAME);
        }
    }

    /// The packets [`Room::lose_one`] chose were lost, and the engine asked
    /// for them again (NACK) on each stream.
    fn assert_losses_nacked(&self) {
        let drops = self.drops.borrow();
        let snapshot = self.net.engine.router_snapshot("room").unwrap();
        for p in &self.produced {
            let producer = snapshot
                .producers
                .iter()
                .find(|s| s.id == p.source.id())
                .unwrap();
            for (s, layer) in p.streams.iter().zip(&producer.layers) {
                let Some((count, at)) = drops.get(&s.ssrc) else {
                    continue;
                };
                let what = format!("{}: {:?} {}", self.browser.name, p.source, s.ssrc);
                assert!(count >= at, "{what}: the packet was lost");
                assert!(layer.stats.nack_count > 0, "{what}: NACKed");
            }
        }
    }

    /// Every consumer got its producer's packets with the router's payload
    /// type and without a gap (a loss not repaired leaves one); a consumer
    /// of a plain stream got every packet sent.
    fn assert_forwarded(&self) {
        let name = self.browser.name;
        for p in &self.produced {
            let ssrc = p.consumer.rtp_parameters.encodings[0].ssrc.unwrap();
            let got = self.net.packets(self.b, ssrc);
            let what = format!("{name}: {:?}", p.source);
            let pt = match p.source {
                Source::Microphone => ROUTER_OPUS,
                _ => ROUTER_VP8,
            };
            assert!(
                got.iter().all(|g| *g.header.payload_type == pt),
                "{what}: router payload type {pt}"
            );
            let mut seqs: Vec<u64> = got.iter().map(|g| *g.seq_no).collect();
            seqs.sort_unstable();
            seqs.dedup();
            for w in seqs.windows(2) {
                assert_eq!(w[1], w[0] + 1, "{what}: gap in {seqs:?}");
            }
            if p.source == Source::Simulcast {
                let sent = p.streams[0].sent;
                assert!(
                    seqs.len() as u64 >= sent / 2,
                    "{what}: {} of {sent} frames",
                    seqs.len()
                );
            } else {
                assert_eq!(seqs.len() as u64, p.streams[0].sent, "{what}: all packets");
            }
            if p.source == Source::Microphone {
                assert!(
                    got.iter()
                        .all(|g| g.header.ext_vals.audio_level == Some(LEVEL)),
                    "{what}: the audio level is forwarded"
                );
            }
            let oriented = self.browser.ext_id(uri::VIDEO_ORIENTATION).is_some();
            if oriented && matches!(p.source, Source::Camera | Source::Simulcast) {
                assert!(
                    got.iter()
                        .all(|g| g.header.ext_vals.video_orientation
                            == Some(VideoOrientation::Deg90)),
                    "{what}: the video orientation is forwarded"
                );
            }
        }
    }

    /// The router's active speaker is the microphone.
    fn assert_microphone_speaks(&self) {
        let speakers: Vec<&EngineEvent> = self
            .net
            .engine_events
            .iter()
            .filter(|e| matches!(e, EngineEvent::ActiveSpeaker { .. }))
            .collect();
        assert!(
            speakers.iter().any(|e| matches!(e,
                EngineEvent::ActiveSpeaker { producer_id, volume }
                    if producer_id == "microphone" && (LEVEL - 3..=LEVEL + 3).contains(volume))),
            "{}: the microphone is the active speaker: {speakers:?}",
            self.browser.name
        );
    }

    /// Each RID layer of the simulcast producer was found (the SSRC the
    /// publisher used) and everything sent on it arrived, repairs included.
    fn assert_simulcast_layers(&self) {
        let snapshot = self.net.engine.router_snapshot("room").unwrap();
        let producer = snapshot
            .producers
            .iter()
            .find(|p| p.id == "simulcast")
            .unwrap();
        let sent = &self
            .produced
            .iter()
            .find(|p| p.source == Source::Simulcast)
            .unwrap()
            .streams;
        assert_eq!(producer.layers.len(), sent.len());
        for (layer, s) in producer.layers.iter().zip(sent) {
            let what = format!("{}: layer {:?}", self.browser.name, layer.rid);
            assert_eq!(layer.ssrc, Some(s.ssrc), "{what}: its SSRC");
            assert_eq!(layer.stats.packets, s.sent, "{what}: every packet");
            assert_eq!(layer.stats.packets_lost, 0, "{what}: nothing lost");
        }
    }
}

/// Camera first (the transport's tables are the camera's), then the
/// microphone, then a screen share; a screen packet is lost on the way in.
fn camera_then_microphone_then_screen(browser: Browser) {
    let mut room = Room::new(browser);
    room.produce(Source::Camera);
    room.frames(10);
    room.produce(Source::Microphone);
    room.frames(10);
    room.produce(Source::Screen);
    room.lose_one(Source::Screen, 7);
    room.frames(40);
    room.net.run(Duration::from_millis(500));
    room.assert_forwarded();
    room.assert_losses_nacked();
    room.assert_microphone_speaks();
}

/// Microphone first, then the camera and a screen share; a packet of each
/// is lost on the way in.
fn microphone_then_camera_then_screen(browser: Browser) {
    let mut room = Room::new(browser);
    room.produce(Source::Microphone);
    room.frames(10);
    room.produce(Source::Camera);
    room.frames(5);
    room.produce(Source::Screen);
    room.lose_one(Source::Camera, 9);
    room.lose_one(Source::Screen, 4);
    room.frames(40);
    room.net.run(Duration::from_millis(500));
    room.assert_forwarded();
    room.assert_losses_nacked();
    room.assert_microphone_speaks();
}

/// The web app's order: microphone, then a three-RID camera (whose RID ids
/// str0m was not built with); a packet of each layer is lost on the way in.
fn microphone_then_simulcast_camera(browser: Browser) {
    let mut room = Room::new(browser);
    room.produce(Source::Microphone);
    room.frames(10);
    room.produce(Source::Simulcast);
    room.frames(10);
    room.lose_one(Source::Simulcast, 15);
    room.frames(50);
    room.net.run(Duration::from_millis(500));
    room.assert_forwarded();
    room.assert_losses_nacked();
    room.assert_simulcast_layers();
    room.assert_microphone_speaks();
}

/// A three-RID camera first (str0m maps its RIDs itself), then the
/// microphone and a screen share whose packet lost on the way in is
/// repaired.
fn simulcast_camera_then_microphone_then_screen(browser: Browser) {
    let mut room = Room::new(browser);
    room.produce(Source::Simulcast);
    room.frames(10);
    room.produce(Source::Microphone);
    room.frames(5);
    room.produce(Source::Screen);
    room.lose_one(Source::Screen, 6);
    room.frames(40);
    room.net.run(Duration::from_millis(500));
    room.assert_forwarded();
    room.assert_losses_nacked();
    room.assert_simulcast_layers();
    room.assert_microphone_speaks();
}

#[test]
fn firefox_simulcast_camera_then_microphone_then_screen() {
    simulcast_camera_then_microphone_then_screen(Browser::firefox153());
}

#[test]
fn chromium_simulcast_camera_then_microphone_then_screen() {
    simulcast_camera_then_microphone_then_screen(Browser::chromium156());
}

#[test]
fn firefox_camera_then_microphone_then_screen() {
    camera_then_microphone_then_screen(Browser::firefox153());
}

#[test]
fn chromium_camera_then_microphone_then_screen() {
    camera_then_microphone_then_screen(Browser::chromium156());
}

#[test]
fn firefox_microphone_then_camera_then_screen() {
    microphone_then_camera_then_screen(Browser::firefox153());
}

#[test]
fn chromium_microphone_then_camera_then_screen() {
    microphone_then_camera_then_screen(Browser::chromium156());
}

#[test]
fn firefox_microphone_then_simulcast_camera() {
    microphone_then_simulcast_camera(Browser::firefox153());
}

#[test]
fn chromium_microphone_then_simulcast_camera() {
    microphone_then_simulcast_camera(Browser::chromium156());
}

/// What one BUNDLE group cannot do is still refused: a later producer
/// giving a payload type or an extension id another meaning.
#[test]
fn a_later_producer_contradicting_the_numbering_is_refused() {
    let browser = Browser::firefox153();
    let mut room = Room::new(Browser::firefox153());
    room.produce(Source::Camera);
    let now = room.net.now;
    // Opus at VP8's payload type.
    let mut mic = with_mid(&browser.microphone, "1");
    mic["codecs"][0]["payloadType"] = 120.into();
    let e = room
        .net
        .engine
        .produce("ta", "m1", MediaKind::Audio, &mic, now)
        .unwrap_err()
        .to_string();
    assert!(e.contains("payload type 120"), "{e}");
    // The audio level on the id str0m reads the MID from (an id str0m
    // does not parse, like abs-send-time's, may mean something else in
    // another producer: see the unit tests of `rtpmap`).
    let mut mic = with_mid(&browser.microphone, "1");
    for ext in mic["headerExtensions"].as_array_mut().unwrap() {
        if ext["uri"] == uri::SSRC_AUDIO_LEVEL {
            ext["id"] = 3.into();
        }
        if ext["uri"] == uri::MID {
            ext["id"] = 5.into();
        }
    }
    let e = room
        .net
        .engine
        .produce("ta", "m2", MediaKind::Audio, &mic, now)
        .unwrap_err()
        .to_string();
    assert!(e.contains("header extension id 3"), "{e}");
    // Refused calls changed nothing: the real microphone still fits.
    room.produce(Source::Microphone);
}
