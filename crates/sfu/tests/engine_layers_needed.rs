//! `ProducerLayersNeeded` in simulated time: a publisher sends three RID
//! layers of synthetic VP8 (keyframes when asked), subscribers consume them
//! through the engine with various preferences, pauses and closes; the
//! assertions are on the events the engine emits and, once the publisher
//! acts on them, on what a subscriber's str0m peer receives.

use std::time::{Duration, Instant};

use str0m::media::{MediaKind as StrKind, Mid};
use str0m::rtp::Ssrc;
use vtp_sfu::engine::{EngineEvent, LAYER_INACTIVE_AFTER, LAYERS_NEEDED_HOLD, TransportOptions};
use vtp_sfu::rtp::MediaKind;

#[path = "support/net.rs"]
mod net;
use net::{Net, chromium_config, router_caps_json, router_config};

/// Frame interval of the synthetic source.
const FRAME: Duration = Duration::from_millis(30);
/// Longer than any reaction that is "at once" and far shorter than the hold.
const MOMENT: Duration = Duration::from_millis(150);

/// One encoding of the synthetic publisher.
struct SourceLayer {
    ssrc: u32,
    rid: &'static str,
    picture_id: u16,
    seq: u64,
    sending: bool,
    keyframe_due: bool,
}

struct Sim {
    net: Net,
    publisher: usize,
    subscriber: usize,
    layers: Vec<SourceLayer>,
    frame: u64,
    /// Publisher events already looked at for keyframe requests.
    seen: usize,
    /// Keyframe requests the publisher got, by rid.
    requests: Vec<String>,
    /// The engine events already acted on by the publisher.
    obeyed: usize,
    /// Consumers made so far (for fresh ids).
    consumers: usize,
    /// When `pv` was produced.
    produced_at: Instant,
}

/// A publisher with the fixture's three RID layers (or, with `single`, one
/// layer), its producer `pv`, and a subscriber with a receive transport
/// and no consumer yet.
fn sim(single: bool) -> Sim {
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/mediasoup-client-chromium156.json")).unwrap();
    let mut params = fixture["rid-simulcast"]["produce"][0]["rtpParameters"].clone();
    let mut net = Net::new();
    net.engine.create_router("room").unwrap();
    let tp = net
        .engine
        .create_webrtc_transport("room", "tp", TransportOptions::default())
        .unwrap();
    let ts = net
        .engine
        .create_webrtc_transport("room", "ts", TransportOptions::default())
        .unwrap();
    let publisher = net.add_client(chromium_config(), &tp);
    let subscriber = net.add_client(router_config(), &ts);
    let count = if single { 1 } else { 3 };
    let layers: Vec<SourceLayer> = [(3001u32, "r0"), (3011, "r1"), (3021, "r2")]
        .into_iter()
        .take(count)
        .enumerate()
        .map(|(n, (ssrc, rid))| SourceLayer {
            ssrc,
            rid,
            picture_id: 1000 * n as u16,
            seq: 100 + 1000 * n as u64,
            sending: true,
            keyframe_due: true,
        })
        .collect();
    if single {
        params["encodings"] = serde_json::json!([{"ssrc": 3001, "rtx": {"ssrc": 3002}}]);
    }
    {
        let mut api = net.clients[publisher].rtc.direct_api();
        api.declare_media(Mid::from("0"), StrKind::Video);
        for l in &layers {
            api.declare_stream_tx(
                Ssrc::from(l.ssrc),
                Some(Ssrc::from(l.ssrc + 1)),
                Mid::from("0"),
                (!single).then(|| l.rid.into()),
            );
        }
    }
    let now = net.now;
    net.engine
        .produce("tp", "pv", MediaKind::Video, &params, now)
        .unwrap();
    let dtls = net.dtls_of(publisher);
    net.engine.connect_transport("tp", &dtls, now).unwrap();
    let dtls = net.dtls_of(subscriber);
    net.engine.connect_transport("ts", &dtls, now).unwrap();
    // (The subscriber's transport connects once it has a consumer: its
    // `Rtc` is built at the first `consume`.)
    net.run(Duration::from_millis(300));
    assert!(net.clients[publisher].rtc.is_connected(), "connected");
    Sim {
        net,
        publisher,
        subscriber,
        layers,
        frame: 0,
        seen: 0,
        requests: Vec::new(),
        obeyed: 0,
        consumers: 0,
        produced_at: now,
    }
}

impl Sim {
    /// A consumer of `pv` with a preferred spatial layer, resumed; its id
    /// and the SSRC the subscriber receives it on.
    fn consume(&mut self, spatial: u8) -> (String, u32) {
        self.consumers += 1;
        let id = format!("c{}", self.consumers);
        let now = self.net.now;
        let caps = router_caps_json(&self.net);
        let info = self
            .net
            .engine
            .consume("ts", &id, "pv", &caps, now)
            .unwrap();
        self.net.expect_consumer(self.subscriber, &info);
        self.net
            .engine
            .set_consumer_preferred_layers(&id, spatial, None, now)
            .unwrap();
        self.net.engine.resume_consumer(&id, now).unwrap();
        self.net.settle();
        (id, info.rtp_parameters.encodings[0].ssrc.unwrap())
    }

    fn prefer(&mut self, consumer: &str, spatial: u8) {
        let now = self.net.now;
        self.net
            .engine
            .set_consumer_preferred_layers(consumer, spatial, None, now)
            .unwrap();
        self.net.settle();
    }

    /// One frame (one packet) on every layer the publisher sends, then a
    /// frame interval.
    fn frame(&mut self) {
        for (_, rid) in self
            .net
            .new_keyframe_requests(self.publisher, &mut self.seen)
        {
            if let Some(l) = self.layers.iter_mut().find(|l| l.rid == rid) {
                l.keyframe_due = true;
            }
            self.requests.push(rid);
        }
        for (index, l) in self.layers.iter_mut().enumerate() {
            if !l.sending {
                continue;
            }
            let keyframe = std::mem::take(&mut l.keyframe_due);
            l.picture_id = (l.picture_id + 1) & 0x7fff;
            l.seq += 1;
            let payload = vec![
                0x90,
                0x80,
                0x80 | (l.picture_id >> 8) as u8,
                l.picture_id as u8,
                if keyframe { 0x00 } else { 0x01 },
                index as u8,
            ];
            let ts = (self.frame * 2700) as u32;
            self.net
                .write_rtp(self.publisher, l.ssrc, 96, l.seq, ts, payload);
        }
        self.frame += 1;
        self.net.run(FRAME);
    }

    /// Frames for at least `dur`.
    fn play(&mut self, dur: Duration) {
        let frames = dur.as_millis().div_ceil(FRAME.as_millis());
        for _ in 0..frames {
            self.frame();
        }
    }

    /// The `ProducerLayersNeeded` values emitted so far.
    fn needed(&self) -> Vec<u8> {
        self.net
            .engine_events
            .iter()
            .filter_map(|e| match e {
                EngineEvent::ProducerLayersNeeded {
                    producer_id,
                    max_spatial_layer,
                } if producer_id == "pv" => Some(*max_spatial_layer),
                _ => None,
            })
            .collect()
    }

    /// The publisher acts on what it was told, as the web app does: the
    /// encodings above the last value stop, those up to it send.
    fn obey(&mut self) {
        let told: Vec<u8> = self.net.engine_events[self.obeyed..]
            .iter()
            .filter_map(|e| match e {
                EngineEvent::ProducerLayersNeeded {
                    max_spatial_layer, ..
                } => Some(*max_spatial_layer),
                _ => None,
            })
            .collect();
        self.obeyed = self.net.engine_events.len();
        if let Some(&max) = told.last() {
            for (index, l) in self.layers.iter_mut().enumerate() {
                let on = index <= usize::from(max);
                if on && !l.sending {
                    // A restarted encoder starts with a keyframe.
                    l.keyframe_due = true;
                }
                l.sending = on;
            }
        }
    }

    /// The layers a consumer was switched to, in order.
    fn switches(&self, consumer: &str) -> Vec<u8> {
        self.net
            .engine_events
            .iter()
            .filter_map(|e| match e {
                EngineEvent::ConsumerLayersChanged {
                    consumer_id,
                    spatial_layer,
                    ..
                } if consumer_id == consumer => Some(*spatial_layer),
                _ => None,
            })
            .collect()
    }

    /// The encoding (layer index byte) of the last packet a consumer's SSRC
    /// delivered to the subscriber.
    fn last_layer(&self, ssrc: u32) -> Option<u8> {
        let packets = self.net.packets(self.subscriber, ssrc);
        packets.last().map(|p| p.payload[5])
    }
}

/// Just short of the hold, then just past it (the layer tick is 100 ms).
fn before_and_after_hold() -> (Duration, Duration) {
    (
        LAYERS_NEEDED_HOLD - Duration::from_millis(200),
        Duration::from_millis(400),
    )
}

#[test]
fn a_lower_preference_is_told_after_the_hold_and_a_higher_one_at_once() {
    let mut sim = sim(false);
    let (c, ssrc) = sim.consume(2);
    sim.play(Duration::from_secs(1));
    assert_eq!(
        sim.needed(),
        Vec::<u8>::new(),
        "all layers wanted: nothing to tell"
    );
    assert_eq!(sim.last_layer(ssrc), Some(2));

    sim.prefer(&c, 0);
    let (before, after) = before_and_after_hold();
    sim.play(before);
    assert_eq!(sim.needed(), Vec::<u8>::new(), "not before the hold");
    sim.play(after);
    assert_eq!(sim.needed(), vec![0], "after the hold");
    assert_eq!(sim.last_layer(ssrc), Some(0));

    // The publisher stops r1 and r2; the consumer keeps getting r0.
    sim.obey();
    sim.play(LAYER_INACTIVE_AFTER + Duration::from_secs(1));
    let got_before = sim.net.packets(sim.subscriber, ssrc).len();
    sim.play(Duration::from_millis(300));
    assert!(
        sim.net.packets(sim.subscriber, ssrc).len() > got_before,
        "layer 0 keeps flowing"
    );
    assert_eq!(sim.needed(), vec![0], "told once");

    // Back up to 2: told at once; once the publisher sends r2 again, the
    // consumer switches to it at a keyframe asked of r2.
    let r2_asked = sim.requests.iter().filter(|r| *r == "r2").count();
    sim.prefer(&c, 2);
    assert_eq!(sim.needed(), vec![0, 2], "a rise is told at once");
    sim.obey();
    sim.play(Duration::from_millis(600));
    assert_eq!(sim.last_layer(ssrc), Some(2), "back on layer 2");
    assert_eq!(sim.switches(&c).last(), Some(&2));
    assert!(
        sim.requests.iter().filter(|r| *r == "r2").count() > r2_asked,
        "a keyframe was asked of r2: {:?}",
        sim.requests
    );
    assert_eq!(sim.needed(), vec![0, 2]);
}

#[test]
fn the_need_is_the_highest_preference_of_the_unpaused_consumers() {
    let mut sim = sim(false);
    let (low, _) = sim.consume(0);
    let (mid, _) = sim.consume(1);
    let (before, after) = before_and_after_hold();
    sim.play(before + after);
    assert_eq!(sim.needed(), vec![1], "the highest preference is 1");

    // Pausing the consumer that wants 1 leaves 0 needed (after the hold);
    // resuming it needs 1 again at once.
    sim.net.engine.pause_consumer(&mid).unwrap();
    sim.play(before);
    assert_eq!(sim.needed(), vec![1], "not before the hold");
    sim.play(after);
    assert_eq!(sim.needed(), vec![1, 0]);
    let now = sim.net.now;
    sim.net.engine.resume_consumer(&mid, now).unwrap();
    sim.net.settle();
    assert_eq!(sim.needed(), vec![1, 0, 1], "resumed: at once");

    // Closing it counts too; with no consumer left, layer 0 stays needed.
    sim.net.engine.close_consumer(&mid).unwrap();
    sim.play(before + after);
    assert_eq!(sim.needed(), vec![1, 0, 1, 0]);
    sim.net.engine.close_consumer(&low).unwrap();
    sim.play(before + after);
    assert_eq!(sim.needed(), vec![1, 0, 1, 0], "0 is the floor");

    // A new consumer with the default preference wants everything.
    sim.consume(2);
    assert_eq!(sim.needed(), vec![1, 0, 1, 0, 2]);
}

#[test]
fn a_preference_that_comes_back_within_the_hold_tells_nothing() {
    let mut sim = sim(false);
    let (c, _) = sim.consume(2);
    sim.play(MOMENT);
    for spatial in [1, 0, 2, 0, 1, 2] {
        sim.prefer(&c, spatial);
        sim.play(LAYERS_NEEDED_HOLD / 4);
    }
    sim.play(LAYERS_NEEDED_HOLD * 2);
    assert_eq!(
        sim.needed(),
        Vec::<u8>::new(),
        "a resizing tile: no flapping"
    );
}

#[test]
fn a_producer_nobody_watches_needs_layer_0_only() {
    let mut sim = sim(false);
    let (before, after) = before_and_after_hold();
    // Counted from when it was produced (nobody watched it since).
    sim.play(before - (sim.net.now - sim.produced_at));
    assert_eq!(sim.needed(), Vec::<u8>::new());
    sim.play(after);
    assert_eq!(sim.needed(), vec![0]);
    // A paused consumer (just created) needs nothing more; resumed, it does.
    let now = sim.net.now;
    let caps = router_caps_json(&sim.net);
    sim.net
        .engine
        .consume("ts", "late", "pv", &caps, now)
        .unwrap();
    sim.play(MOMENT);
    assert_eq!(sim.needed(), vec![0]);
    let now = sim.net.now;
    sim.net.engine.resume_consumer("late", now).unwrap();
    sim.net.settle();
    assert_eq!(sim.needed(), vec![0, 2]);
}

#[test]
fn single_layer_producers_are_never_told() {
    let mut sim = sim(true);
    let (c, ssrc) = sim.consume(2);
    sim.play(MOMENT);
    sim.prefer(&c, 0);
    sim.play(LAYERS_NEEDED_HOLD * 2);
    sim.net.engine.pause_consumer(&c).unwrap();
    sim.play(LAYERS_NEEDED_HOLD * 2);
    sim.net.engine.close_consumer(&c).unwrap();
    sim.play(LAYERS_NEEDED_HOLD * 2);
    assert!(
        sim.net.packets(sim.subscriber, ssrc).len() > 10,
        "its one layer flowed"
    );
    let told = sim
        .net
        .engine_events
        .iter()
        .filter(|e| matches!(e, EngineEvent::ProducerLayersNeeded { .. }))
        .count();
    assert_eq!(told, 0);
}
