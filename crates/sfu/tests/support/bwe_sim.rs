//! The bandwidth scenario shared by the engine's bandwidth tests and the
//! adaptation benchmark: a publisher sending three RID simulcast layers of
//! synthetic VP8 L1T3 at realistic rates (about 150 kbit/s, 500 kbit/s and
//! 1.5 Mbit/s, keyframes when a PLI arrives; optionally a screen share with
//! the same layers too), and one subscriber whose link from the engine can
//! be shaped (`Net::set_link`), all in simulated time.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use str0m::media::{MediaKind as StrKind, Mid};
use str0m::rtp::{RtpPacket, Ssrc};
use vtp_sfu::engine::{EngineEvent, vp8};
use vtp_sfu::rtp::MediaKind;

#[path = "net.rs"]
pub mod net;
pub use net::link::{Dir, LinkShape};
use net::{Net, chromium_config, router_caps_json};

/// Frame interval of the synthetic source (30 fps).
pub const FRAME: Duration = Duration::from_micros(33_333);
/// Temporal layer of frame n in an L1T3 pattern.
const TIDS: [u8; 4] = [0, 2, 1, 2];
/// Share of a layer's rate carried by frames of TID 0, 1 and 2 (WebRTC's
/// split for three temporal layers: 40 %, 20 %, 40 %), in percent.
const TID_SHARE: [u64; 3] = [40, 20, 40];
/// How often each TID occurs in the pattern, in frames out of four.
const TID_FRAMES: [u64; 3] = [1, 1, 2];
/// A keyframe is this many times an average frame.
const KEYFRAME_FACTOR: u64 = 4;
/// Largest RTP payload the source writes.
const MAX_PAYLOAD: usize = 1100;
/// The rates of the three layers (bit/s).
pub const LAYER_BPS: [u64; 3] = [150_000, 500_000, 1_500_000];

/// One simulcast encoding of the synthetic publisher.
struct SourceLayer {
    ssrc: u32,
    rid: &'static str,
    ts_base: u32,
    picture_id: u16,
    tl0: u8,
    seq: u64,
    keyframe_due: bool,
}

/// What the subscriber got in one packet.
#[derive(Debug, Clone, Copy)]
pub struct Got {
    pub seq: u64,
    pub desc: vp8::Vp8Descriptor,
    pub layer: u8,
}

pub struct Sim {
    pub net: Net,
    pub a: usize,
    pub b: usize,
    pub consumer_ssrc: u32,
    layers: Vec<SourceLayer>,
    frame: u64,
    seen_a: usize,
    seen_events: usize,
    /// `ConsumerLayersChanged` of the consumer, with when it was emitted.
    pub changes: Vec<(Instant, u8, u8)>,
    /// The keyframe requests the publisher got, by rid.
    pub requests: Vec<String>,
    /// A second producer of A ("ps", a screen share on MID 1, the same
    /// three layers) and B's consumer of it ("cs"), when asked for.
    screen: Option<Vec<SourceLayer>>,
    /// `ConsumerLayersChanged` of "cs".
    pub screen_changes: Vec<(Instant, u8, u8)>,
}

/// Three layers of one synthetic source; `base` keeps SSRCs apart.
fn source_layers(base: u32) -> Vec<SourceLayer> {
    [(base + 1, "r0"), (base + 11, "r1"), (base + 21, "r2")]
        .into_iter()
        .enumerate()
        .map(|(n, (ssrc, rid))| SourceLayer {
            ssrc,
            rid,
            ts_base: 1000 + 7_777_777 * n as u32,
            picture_id: 1000 + 300 * n as u16,
            tl0: 20 * n as u8,
            seq: 100 + 10_000 * n as u64,
            keyframe_due: true,
        })
        .collect()
}

/// Declares a source's send streams on the publisher's peer.
fn declare_source(net: &mut Net, a: usize, mid: &str, layers: &[SourceLayer]) {
    let mut api = net.clients[a].rtc.direct_api();
    api.declare_media(Mid::from(mid), StrKind::Video);
    for l in layers {
        api.declare_stream_tx(
            Ssrc::from(l.ssrc),
            Some(Ssrc::from(l.ssrc + 1)),
            Mid::from(mid),
            Some(l.rid.into()),
        );
    }
}

/// Writes one frame of every layer of a source (a keyframe where one was
/// asked for) on the publisher's peer.
fn write_frame(net: &mut Net, a: usize, layers: &mut [SourceLayer], n: u64) {
    let tid = TIDS[(n % 4) as usize];
    for (index, l) in layers.iter_mut().enumerate() {
        let keyframe = std::mem::take(&mut l.keyframe_due);
        let tid = if keyframe { 0 } else { tid };
        if tid == 0 {
            l.tl0 = l.tl0.wrapping_add(1);
        }
        l.picture_id = (l.picture_id + 1) & 0x7fff;
        let ts = l.ts_base.wrapping_add((n * 3000) as u32);
        // Bytes of this frame: the TID's share of the layer's rate spread
        // over that TID's frames.
        let per_frame = LAYER_BPS[index] / 8 / 30;
        let t = usize::from(tid);
        let mut bytes = (per_frame * 4 * TID_SHARE[t] / 100 / TID_FRAMES[t]) as usize;
        if keyframe {
            bytes = (per_frame * KEYFRAME_FACTOR) as usize;
        }
        let packets = bytes.div_ceil(MAX_PAYLOAD).max(1);
        for part in 0..packets {
            let mut payload = net::vp8_descriptor(part == 0, l.picture_id, l.tl0, tid, keyframe);
            payload.push(index as u8);
            payload.resize((bytes / packets).max(payload.len()), 0x55);
            l.seq += 1;
            let now = net.now;
            let mut api = net.clients[a].rtc.direct_api();
            let tx = api.stream_tx(&Ssrc::from(l.ssrc)).unwrap();
            tx.write_rtp(
                str0m::rtp::RtpWrite::new(96.into(), l.seq.into(), ts, now, payload)
                    .marker(part + 1 == packets)
                    .nackable(true),
            );
        }
    }
}

impl Sim {
    /// Publisher and subscriber connected, the consumer resumed after
    /// every layer was seen. `screen`: the producer is a screen share.
    pub fn new(screen: bool, seed: u64) -> Sim {
        Sim::with(screen, seed, true)
    }

    /// As `new`; `twcc`: whether B sends transport-wide congestion control
    /// feedback (a browser does when the consumer's parameters carry the
    /// extension, as they do here).
    pub fn with(screen: bool, seed: u64, twcc: bool) -> Sim {
        Sim::build(screen, seed, twcc, false)
    }

    /// A camera ("pv", consumed as "cv") and a screen share ("ps",
    /// consumed as "cs") from A, both consumed on B's one transport.
    pub fn camera_and_screen(seed: u64) -> Sim {
        Sim::build(false, seed, true, true)
    }

    fn build(screen: bool, seed: u64, twcc: bool, with_screen: bool) -> Sim {
        let fixture: serde_json::Value = serde_json::from_str(include_str!(
            "../fixtures/mediasoup-client-chromium156.json"
        ))
        .unwrap();
        let params = fixture["rid-simulcast"]["produce"][0]["rtpParameters"].clone();
        let mut net = Net::new();
        let (a, b) = net.two_parties(chromium_config());
        let layers = source_layers(2000);
        declare_source(&mut net, a, "0", &layers);
        let now = net.now;
        net.engine
            .produce("ta", "pv", MediaKind::Video, &params, now)
            .unwrap();
        if screen {
            net.engine.set_producer_screen("pv", true, now).unwrap();
        }
        let screen_layers = with_screen.then(|| source_layers(3000));
        if let Some(screen_layers) = &screen_layers {
            declare_source(&mut net, a, "1", screen_layers);
            let mut params = params.clone();
            params["mid"] = "1".into();
            net.engine
                .produce("ta", "ps", MediaKind::Video, &params, now)
                .unwrap();
            net.engine.set_producer_screen("ps", true, now).unwrap();
        }
        let dtls_a = net.dtls_of(a);
        net.engine.connect_transport("ta", &dtls_a, now).unwrap();
        let mut caps = router_caps_json(&net);
        if !twcc {
            // A client that sends no TWCC feedback does not claim it.
            for codec in caps["codecs"].as_array_mut().unwrap() {
                if let Some(fb) = codec["rtcpFeedback"].as_array_mut() {
                    fb.retain(|f| f["type"] != "transport-cc");
                }
            }
        }
        let c = net.engine.consume("tb", "cv", "pv", &caps, now).unwrap();
        let mut declared = c.clone();
        if !twcc {
            declared
                .rtp_parameters
                .header_extensions
                .retain(|e| e.uri != vtp_sfu::rtp::uri::TRANSPORT_WIDE_CC);
        }
        net.expect_consumer(b, &declared);
        if with_screen {
            let cs = net.engine.consume("tb", "cs", "ps", &caps, now).unwrap();
            net.expect_consumer(b, &cs);
        }
        let dtls_b = net.dtls_of(b);
        net.engine.connect_transport("tb", &dtls_b, now).unwrap();
        // A realistic path from the start: 20 ms each way.
        let open = LinkShape {
            seed,
            ..LinkShape::open(Duration::from_millis(20))
        };
        net.set_link(b, Dir::Down, open.clone());
        net.set_link(b, Dir::Up, open);
        net.run(Duration::from_millis(300));
        assert!(net.clients[b].rtc.is_connected(), "B connected");
        let mut sim = Sim {
            net,
            a,
            b,
            consumer_ssrc: c.rtp_parameters.encodings[0].ssrc.unwrap(),
            layers,
            frame: 0,
            seen_a: 0,
            seen_events: 0,
            changes: Vec::new(),
            requests: Vec::new(),
            screen: screen_layers,
            screen_changes: Vec::new(),
        };
        sim.frames(3);
        let now = sim.net.now;
        sim.net.engine.resume_consumer("cv", now).unwrap();
        if with_screen {
            sim.net.engine.resume_consumer("cs", now).unwrap();
        }
        sim
    }

    /// Shapes the subscriber's downlink (engine to B).
    pub fn set_downlink(&mut self, shape: LinkShape) {
        self.net.set_link(self.b, Dir::Down, shape);
    }

    /// One frame on every layer (a keyframe where one was asked for), then
    /// a frame interval of simulated time.
    pub fn frame(&mut self) {
        self.take_keyframe_requests();
        let n = self.frame;
        write_frame(&mut self.net, self.a, &mut self.layers, n);
        if let Some(screen) = self.screen.as_mut() {
            write_frame(&mut self.net, self.a, screen, n);
        }
        self.frame += 1;
        self.net.run(FRAME);
        self.take_changes();
    }

    pub fn frames(&mut self, count: usize) {
        for _ in 0..count {
            self.frame();
        }
    }

    /// Runs for `dur` of frames.
    pub fn run_for(&mut self, dur: Duration) {
        let end = self.net.now + dur;
        while self.net.now < end {
            self.frame();
        }
    }

    /// Runs until the estimate is known and the consumer has been sent the
    /// top layers for a second (the start ramps up from the engine's
    /// initial estimate); panics after `limit`.
    pub fn warm_up(&mut self, limit: Duration) {
        let end = self.net.now + limit;
        let mut top_since = None;
        while self.net.now < end {
            self.frame();
            let top =
                self.net.engine.egress_estimate("tb").is_some() && self.current() == Some((2, 2));
            if !top {
                top_since = None;
                continue;
            }
            let since = *top_since.get_or_insert(self.net.now);
            if self.net.now.duration_since(since) >= Duration::from_secs(1) {
                return;
            }
        }
        panic!("no steady top layer: {:?}", self.changes);
    }

    /// Runs frames until the consumer is sent `spatial` (or `limit`
    /// passes); when it happened.
    pub fn until_spatial(&mut self, spatial: u8, limit: Duration) -> Option<Instant> {
        let end = self.net.now + limit;
        let seen = self.changes.len();
        while self.net.now < end {
            self.frame();
            if let Some((at, _, _)) = self.changes[seen..].iter().find(|(_, s, _)| *s == spatial) {
                return Some(*at);
            }
        }
        None
    }

    fn take_keyframe_requests(&mut self) {
        for (mid, rid) in self.net.new_keyframe_requests(self.a, &mut self.seen_a) {
            let source = match (mid.as_str(), self.screen.as_mut()) {
                ("1", Some(screen)) => screen,
                _ => &mut self.layers,
            };
            if let Some(l) = source.iter_mut().find(|l| l.rid == rid) {
                l.keyframe_due = true;
            }
            self.requests.push(rid);
        }
    }

    fn take_changes(&mut self) {
        let now = self.net.now;
        for e in &self.net.engine_events[self.seen_events..] {
            if let EngineEvent::ConsumerLayersChanged {
                consumer_id,
                spatial_layer,
                temporal_layer,
            } = e
            {
                let change = (now, *spatial_layer, *temporal_layer);
                match consumer_id.as_str() {
                    "cv" => self.changes.push(change),
                    "cs" => self.screen_changes.push(change),
                    _ => {}
                }
            }
        }
        self.seen_events = self.net.engine_events.len();
    }

    /// The spatial and temporal layers the consumer is sent now.
    pub fn current(&self) -> Option<(u8, u8)> {
        self.changes.last().map(|(_, s, t)| (*s, *t))
    }

    /// What B received on the consumer's SSRC after RTX repair, by
    /// sequence number, duplicates removed.
    pub fn got(&self) -> Vec<Got> {
        let mut got: Vec<Got> = self
            .net
            .packets(self.b, self.consumer_ssrc)
            .into_iter()
            .map(|p: &RtpPacket| Got {
                seq: *p.seq_no,
                desc: vp8::parse_vp8(&p.payload).expect("a VP8 descriptor"),
                layer: p.payload[7],
            })
            .collect();
        got.sort_by_key(|g| g.seq);
        got.dedup_by_key(|g| g.seq);
        got
    }
}
