//! Simulcast layer switching in simulated time: a publisher sends three
//! RID layers of synthetic VP8 (L1T3, keyframes only when asked), a
//! subscriber consumes them through the engine; the assertions are on what
//! the subscriber's str0m peer actually receives.

use std::time::Duration;

use str0m::media::{MediaKind as StrKind, Mid};
use str0m::rtp::{RtpPacket, Ssrc};
use vtp_sfu::engine::{EngineEvent, LAYER_INACTIVE_AFTER, LayersSnapshot, vp8};
use vtp_sfu::rtp::{MediaKind, RtpStreamType};

#[path = "support/net.rs"]
mod net;
use net::{Net, chromium_config, router_caps_json};

/// Frame interval of the synthetic source (about 33 fps).
const FRAME: Duration = Duration::from_millis(30);
/// Temporal layer of frame n in an L1T3 pattern.
const TIDS: [u8; 4] = [0, 2, 1, 2];

/// One simulcast encoding of the synthetic publisher.
struct SourceLayer {
    ssrc: u32,
    rid: &'static str,
    /// Each layer its own timestamp base, picture ids and TL0PICIDX.
    ts_base: u32,
    picture_id: u16,
    tl0: u8,
    seq: u64,
    sending: bool,
    keyframe_due: bool,
}

struct Sim {
    net: Net,
    a: usize,
    b: usize,
    consumer_ssrc: u32,
    layers: Vec<SourceLayer>,
    frame: u64,
    /// A's client events already looked at for keyframe requests.
    seen_a: usize,
    /// Keyframe requests A got, by rid.
    requests: Vec<String>,
    /// H.264 (FU-A fragments) instead of VP8.
    h264: bool,
}

/// What the subscriber got in one packet, read back from its payload (for
/// H.264, `desc` has only the frame start and keyframe flags).
#[derive(Debug, Clone, Copy)]
struct Got {
    seq: u64,
    ts: u32,
    desc: vp8::Vp8Descriptor,
    layer: u8,
}

/// H.264 payload type of the publisher (Chromium's numbering style).
const H264_PT: u8 = 102;

fn simulcast() -> Sim {
    simulcast_by(true)
}

/// Three layers told apart by RID (as Chromium does) or by SSRC. (The
/// str0m publisher always writes RIDs: it cannot send several SSRCs on one
/// MID without them. With SSRC simulcast the engine expects the SSRCs
/// and matches on them first, so the RIDs it also sees do not matter.)
fn simulcast_by(rid: bool) -> Sim {
    simulcast_with(rid, false)
}

fn simulcast_with(rid: bool, h264: bool) -> Sim {
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/mediasoup-client-chromium156.json")).unwrap();
    let mut params = fixture["rid-simulcast"]["produce"][0]["rtpParameters"].clone();
    let mut publisher_config = chromium_config();
    if h264 {
        params["codecs"] = serde_json::json!([
            {"mimeType": "video/H264", "payloadType": H264_PT, "clockRate": 90000,
             "parameters": {"packetization-mode": 1, "profile-level-id": "42e01f",
                            "level-asymmetry-allowed": 1},
             "rtcpFeedback": [{"type": "nack"}, {"type": "nack", "parameter": "pli"}]},
            {"mimeType": "video/rtx", "payloadType": 121, "clockRate": 90000,
             "parameters": {"apt": H264_PT}}
        ]);
        net::add_h264(&mut publisher_config, H264_PT, 121);
    }
    let mut net = Net::new();
    let (a, b) = net.two_parties(publisher_config);
    let layers: Vec<SourceLayer> = [
        (2001u32, "r0", 1000u32),
        (2011, "r1", 4_000_000_000),
        (2021, "r2", 77_777),
    ]
    .into_iter()
    .enumerate()
    .map(|(n, (ssrc, rid, ts_base))| SourceLayer {
        ssrc,
        rid,
        ts_base,
        picture_id: 32_000 + 300 * n as u16,
        tl0: 250 - 20 * n as u8,
        seq: 100 + 1000 * n as u64,
        sending: true,
        keyframe_due: true,
    })
    .collect();
    if !rid {
        params["encodings"] = layers
            .iter()
            .map(|l| serde_json::json!({"ssrc": l.ssrc, "rtx": {"ssrc": l.ssrc + 1}}))
            .collect();
    }
    {
        let mut api = net.clients[a].rtc.direct_api();
        api.declare_media(Mid::from("0"), StrKind::Video);
        for l in &layers {
            api.declare_stream_tx(
                Ssrc::from(l.ssrc),
                Some(Ssrc::from(l.ssrc + 1)),
                Mid::from("0"),
                Some(l.rid.into()),
            );
        }
    }
    let now = net.now;
    let info = net
        .engine
        .produce("ta", "pv", MediaKind::Video, &params, now)
        .unwrap();
    assert_eq!(info.producer_type, RtpStreamType::Simulcast);
    let dtls_a = net.dtls_of(a);
    net.engine.connect_transport("ta", &dtls_a, now).unwrap();
    let caps = router_caps_json(&net);
    let c = net.engine.consume("tb", "cv", "pv", &caps, now).unwrap();
    net.expect_consumer(b, &c);
    let dtls_b = net.dtls_of(b);
    net.engine.connect_transport("tb", &dtls_b, now).unwrap();
    net.run(Duration::from_millis(300));
    assert!(net.clients[b].rtc.is_connected(), "B connected");
    Sim {
        net,
        a,
        b,
        consumer_ssrc: c.rtp_parameters.encodings[0].ssrc.unwrap(),
        layers,
        frame: 0,
        seen_a: 0,
        requests: Vec::new(),
        h264,
    }
}

impl Sim {
    /// One frame on every sending layer (two packets each: a VP8
    /// descriptor with picture id, TL0PICIDX and TID, or H.264 FU-A
    /// fragments; a keyframe when one was asked for), then a frame
    /// interval of simulated time.
    fn frame(&mut self) {
        self.take_keyframe_requests();
        let n = self.frame;
        let tid = TIDS[(n % 4) as usize];
        for (index, l) in self.layers.iter_mut().enumerate() {
            if !l.sending {
                continue;
            }
            let keyframe = std::mem::take(&mut l.keyframe_due);
            let tid = if keyframe { 0 } else { tid };
            if tid == 0 {
                l.tl0 = l.tl0.wrapping_add(1);
            }
            l.picture_id = (l.picture_id + 1) & 0x7fff;
            let ts = l.ts_base.wrapping_add((n * 2700) as u32);
            for part in 0..2u8 {
                let (pt, payload) = if self.h264 {
                    // FU-A of an IDR (type 5) or a non-IDR slice (type 1),
                    // S bit on the first fragment, E on the last.
                    let fu_header = match (part, keyframe) {
                        (0, true) => 0x85,
                        (0, false) => 0x81,
                        (_, true) => 0x45,
                        (_, false) => 0x41,
                    };
                    (H264_PT, vec![0x7c, fu_header, index as u8, part])
                } else {
                    let mut payload =
                        net::vp8_descriptor(part == 0, l.picture_id, l.tl0, tid, keyframe);
                    payload.extend([index as u8, part]);
                    (96, payload)
                };
                l.seq += 1;
                self.net.write_rtp(self.a, l.ssrc, pt, l.seq, ts, payload);
            }
        }
        self.frame += 1;
        self.net.run(FRAME);
    }

    fn frames(&mut self, count: usize) {
        for _ in 0..count {
            self.frame();
        }
    }

    /// Keyframe requests that reached A make the next frame of that layer
    /// a keyframe, as an encoder does.
    fn take_keyframe_requests(&mut self) {
        for (_, rid) in self.net.new_keyframe_requests(self.a, &mut self.seen_a) {
            if let Some(l) = self.layers.iter_mut().find(|l| l.rid == rid) {
                l.keyframe_due = true;
            }
            self.requests.push(rid);
        }
    }

    fn got(&self) -> Vec<Got> {
        let mut got: Vec<Got> = self
            .net
            .packets(self.b, self.consumer_ssrc)
            .into_iter()
            .map(|p: &RtpPacket| {
                let (desc, layer) = if self.h264 {
                    let desc = vp8::Vp8Descriptor {
                        frame_start: p.payload[1] & 0x80 != 0,
                        keyframe: vp8::h264_keyframe(&p.payload),
                        ..Default::default()
                    };
                    (desc, p.payload[2])
                } else {
                    let desc = vp8::parse_vp8(&p.payload).expect("a VP8 descriptor");
                    (desc, p.payload[7])
                };
                Got {
                    seq: *p.seq_no,
                    ts: p.header.timestamp,
                    desc,
                    layer,
                }
            })
            .collect();
        got.sort_by_key(|g| g.seq);
        got.dedup_by_key(|g| g.seq);
        got
    }

    fn layer_events(&self) -> Vec<(u8, u8)> {
        self.net
            .engine_events
            .iter()
            .filter_map(|e| match e {
                EngineEvent::ConsumerLayersChanged {
                    consumer_id,
                    spatial_layer,
                    temporal_layer,
                } if consumer_id == "cv" => Some((*spatial_layer, *temporal_layer)),
                _ => None,
            })
            .collect()
    }

    /// Every layer is seen sending before the consumer resumes (so the
    /// engine knows which are active; before that a consumer takes any
    /// active layer rather than nothing).
    fn start(&mut self) {
        self.frames(3);
        let now = self.net.now;
        self.net.engine.resume_consumer("cv", now).unwrap();
    }

    fn prefer(&mut self, spatial: u8, temporal: Option<u8>) {
        let now = self.net.now;
        self.net
            .engine
            .set_consumer_preferred_layers("cv", spatial, temporal, now)
            .unwrap();
    }
}

/// Sequence numbers without a gap, timestamps never going back and never
/// jumping by more than a second, picture ids one per frame and TL0PICIDX
/// by at most one: what a decoder needs to see one unbroken stream.
fn assert_one_stream(got: &[Got]) {
    for w in got.windows(2) {
        let (x, y) = (w[0], w[1]);
        assert_eq!(y.seq, x.seq + 1, "sequence gap between {x:?} and {y:?}");
        let step = y.ts.wrapping_sub(x.ts) as i32;
        assert!(
            (0..=450_000).contains(&step),
            "timestamp step {step} between {x:?} and {y:?}"
        );
        // VP8: picture ids and TL0PICIDX (H.264 has neither).
        assert_eq!(x.desc.picture_id.is_some(), y.desc.picture_id.is_some());
        if let (Some((xp, _)), Some((yp, _))) = (x.desc.picture_id, y.desc.picture_id) {
            let pid_step = yp.wrapping_sub(xp) & 0x7fff;
            let want = u16::from(y.desc.frame_start);
            assert_eq!(pid_step, want, "picture id between {x:?} and {y:?}");
        }
        if let (Some(xt), Some(yt)) = (x.desc.tl0_pic_idx, y.desc.tl0_pic_idx) {
            assert!(
                yt.wrapping_sub(xt) <= 1,
                "TL0PICIDX between {x:?} and {y:?}"
            );
        }
        if y.desc.frame_start {
            assert!(step > 0, "a new frame has a later timestamp: {x:?} {y:?}");
        } else {
            assert_eq!(step, 0, "one frame, one timestamp: {x:?} {y:?}");
        }
    }
}

#[test]
fn a_consumer_gets_its_preferred_layer_and_switches_at_keyframes() {
    let mut sim = simulcast();
    sim.prefer(0, None);
    sim.start();
    sim.frames(20);
    let got = sim.got();
    assert!(got.len() >= 30, "layer 0 flows: {} packets", got.len());
    assert!(got.iter().all(|g| g.layer == 0), "only layer 0");
    assert!(got[0].desc.keyframe, "starts at a keyframe");
    assert_eq!(sim.layer_events(), vec![(0, 2)]);

    // Up to layer 2: a keyframe is asked of r2, and the switch waits for it.
    let asked_before = sim.requests.iter().filter(|r| *r == "r2").count();
    sim.prefer(2, None);
    sim.frames(20);
    assert!(
        sim.requests.iter().filter(|r| *r == "r2").count() > asked_before,
        "a keyframe was asked of r2: {:?}",
        sim.requests
    );
    let got = sim.got();
    let first_high = got.iter().position(|g| g.layer == 2).expect("layer 2 came");
    assert!(got[first_high].desc.keyframe, "switched at a keyframe");
    assert!(
        got[first_high..].iter().all(|g| g.layer == 2),
        "no layer 0 after the switch"
    );
    assert!(got[..first_high].iter().all(|g| g.layer == 0));
    assert_eq!(sim.layer_events(), vec![(0, 2), (2, 2)]);

    // Down to 1: waits for a keyframe of r1 (asked at once), layer 2 until then.
    sim.prefer(1, None);
    sim.frames(20);
    let got = sim.got();
    let first_mid = got.iter().position(|g| g.layer == 1).expect("layer 1 came");
    assert!(got[first_mid].desc.keyframe);
    assert!(got[first_mid..].iter().all(|g| g.layer == 1));
    assert_eq!(sim.layer_events(), vec![(0, 2), (2, 2), (1, 2)]);
    assert_one_stream(&got);
    let snapshot = sim.net.engine.router_snapshot("room").unwrap();
    let consumer = &snapshot.consumers[0];
    let layers = |spatial_layer, temporal_layer| LayersSnapshot {
        spatial_layer,
        temporal_layer,
    };
    assert_eq!(
        (consumer.preferred_layers, consumer.current_layers),
        (layers(1, 2), Some(layers(1, 2))),
        "the control API shows the layers"
    );

    // The same preference again changes nothing and tells nothing.
    sim.prefer(1, None);
    sim.frames(10);
    assert_eq!(sim.layer_events().len(), 3);
    assert_one_stream(&sim.got());
}

#[test]
fn temporal_layers_above_the_ceiling_are_dropped_without_gaps() {
    let mut sim = simulcast();
    sim.prefer(1, Some(0));
    sim.start();
    sim.frames(24);
    let got = sim.got();
    assert!(got.iter().all(|g| g.layer == 1));
    assert!(got.iter().all(|g| g.desc.tid == Some(0)), "only TL0 frames");
    // 24 frames of which a quarter are TL0 (plus the keyframe), two
    // packets each: far fewer than everything.
    assert!(
        got.len() >= 8 && got.len() <= 20,
        "{} packets of TL0",
        got.len()
    );
    assert_one_stream(&got);
    assert_eq!(sim.layer_events(), vec![(1, 0)]);

    // Raised to all temporal layers: rises at layer-sync frames.
    sim.prefer(1, Some(2));
    sim.frames(12);
    let got = sim.got();
    assert!(got.iter().any(|g| g.desc.tid == Some(2)), "TL2 flows again");
    assert_one_stream(&got);
    let events = sim.layer_events();
    assert_eq!(events.first(), Some(&(1, 0)));
    assert_eq!(events.last(), Some(&(1, 2)));
}

#[test]
fn a_layer_that_stops_makes_its_consumers_fall_to_the_best_active_one() {
    let mut sim = simulcast();
    sim.start();
    // No preference: the best layer.
    sim.frames(20);
    assert!(sim.got().iter().any(|g| g.layer == 2));
    assert_eq!(sim.layer_events().last(), Some(&(2, 2)));
    // r2 stops (as a browser does when its uplink shrinks).
    sim.layers[2].sending = false;
    let frames = (LAYER_INACTIVE_AFTER.as_millis() / FRAME.as_millis()) as usize + 20;
    sim.frames(frames);
    let got = sim.got();
    let first_mid = got.iter().position(|g| g.layer == 1).expect("fell to 1");
    assert!(got[first_mid].desc.keyframe);
    assert!(got[first_mid..].iter().all(|g| g.layer == 1));
    assert!(sim.requests.iter().any(|r| r == "r1"), "asked r1");
    assert_eq!(sim.layer_events().last(), Some(&(1, 2)));
    assert_one_stream(&got);
    // The control API sees it too.
    let snapshot = sim.net.engine.router_snapshot("room").unwrap();
    let layers = &snapshot.producers[0].layers;
    let seen: Vec<(bool, bool)> = layers.iter().map(|l| (l.active, l.bitrate > 0)).collect();
    assert_eq!(
        seen,
        [(true, true), (true, true), (false, false)],
        "{layers:?}"
    );
    // r2 comes back: the consumer rises again, at a keyframe.
    sim.layers[2].sending = true;
    sim.frames(20);
    let got = sim.got();
    assert_eq!(got.last().unwrap().layer, 2, "back on layer 2");
    assert_eq!(sim.layer_events().last(), Some(&(2, 2)));
    assert_one_stream(&got);
}

#[test]
fn ssrc_simulcast_switches_too() {
    let mut sim = simulcast_by(false);
    sim.prefer(0, None);
    sim.start();
    sim.frames(10);
    assert!(sim.got().iter().all(|g| g.layer == 0), "only layer 0");
    sim.prefer(2, None);
    sim.frames(20);
    let got = sim.got();
    let first_high = got.iter().position(|g| g.layer == 2).expect("layer 2 came");
    assert!(got[first_high].desc.keyframe, "switched at a keyframe");
    assert!(got[first_high..].iter().all(|g| g.layer == 2));
    assert_eq!(sim.layer_events(), vec![(0, 2), (2, 2)]);
    assert_one_stream(&got);
}

#[test]
fn h264_simulcast_switches_at_idr_frames() {
    let mut sim = simulcast_with(true, true);
    sim.prefer(0, None);
    sim.start();
    sim.frames(10);
    let got = sim.got();
    assert!(
        got.len() >= 10 && got.iter().all(|g| g.layer == 0),
        "only layer 0"
    );
    sim.prefer(2, None);
    sim.frames(20);
    let got = sim.got();
    let first_high = got.iter().position(|g| g.layer == 2).expect("layer 2 came");
    assert!(got[first_high].desc.keyframe, "switched at an IDR");
    assert!(got[first_high..].iter().all(|g| g.layer == 2));
    assert_eq!(
        sim.layer_events(),
        vec![(0, 0), (2, 0)],
        "no temporal layers"
    );
    assert_one_stream(&got);
}

#[test]
fn bad_layer_preferences_are_refused() {
    let mut sim = simulcast();
    let now = sim.net.now;
    for (spatial, temporal) in [(3, None), (0, Some(3)), (255, Some(255))] {
        let e = sim
            .net
            .engine
            .set_consumer_preferred_layers("cv", spatial, temporal, now)
            .unwrap_err();
        assert_eq!(e.code(), "bad_request");
    }
    let e = sim
        .net
        .engine
        .set_consumer_preferred_layers("nope", 0, None, now)
        .unwrap_err();
    assert_eq!(e.code(), "not_found");
    // The refusals changed nothing: the best layer flows.
    sim.net.engine.resume_consumer("cv", now).unwrap();
    sim.frames(20);
    assert_eq!(sim.got().last().unwrap().layer, 2);
}
