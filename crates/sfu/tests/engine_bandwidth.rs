//! Bandwidth-driven layer choice in simulated time: a publisher sends three
//! simulcast layers at realistic rates, a subscriber's link from the engine
//! is capped, lifted, made lossy; the engine's TWCC estimate (str0m's,
//! from the subscriber's str0m feedback) drives the layer it is sent.
//! Assertions are on `ConsumerLayersChanged` and on what the subscriber's
//! str0m peer receives (after its NACK/RTX repair).

use std::time::{Duration, Instant};

#[path = "support/bwe_sim.rs"]
mod bwe_sim;
use bwe_sim::net::link::Link;
use bwe_sim::{Got, LinkShape, Sim};

const DELAY: Duration = Duration::from_millis(20);

/// One unbroken stream: sequence numbers without a gap, and every change of
/// layer at the first packet of a keyframe of the new one.
fn assert_continuous(got: &[Got]) {
    assert!(!got.is_empty());
    assert!(got[0].desc.keyframe, "starts at a keyframe");
    let mut switches = 0;
    for w in got.windows(2) {
        let (x, y) = (w[0], w[1]);
        assert_eq!(y.seq, x.seq + 1, "sequence gap between {x:?} and {y:?}");
        if x.layer != y.layer {
            switches += 1;
            assert!(
                y.desc.keyframe && y.desc.frame_start,
                "layer {} to {} not at a keyframe: {y:?}",
                x.layer,
                y.layer
            );
        }
    }
    assert!(switches > 0, "the stream did switch layers");
}

/// The spatial layers announced since `from`.
fn spatial_since(sim: &Sim, from: Instant) -> Vec<u8> {
    sim.changes
        .iter()
        .filter(|(at, _, _)| *at > from)
        .map(|(_, s, _)| *s)
        .collect()
}

#[test]
fn a_capped_consumer_settles_lower_and_rises_back_after_a_keyframe() {
    let mut sim = Sim::new(false, 1);
    sim.warm_up(Duration::from_secs(15));

    // 800 kbit/s: layer 2 (1.5 Mbit/s) does not fit, layer 1 (500 k) does.
    sim.set_downlink(LinkShape::capped(800_000, DELAY));
    sim.until_spatial(1, Duration::from_secs(3))
        .expect("down to layer 1 under the cap");
    let settled = sim.net.now;
    sim.run_for(Duration::from_secs(10));
    assert_eq!(sim.current().map(|c| c.0), Some(1), "{:?}", sim.changes);
    assert!(
        spatial_since(&sim, settled).iter().all(|s| *s == 1),
        "stays on layer 1 under the cap: {:?}",
        sim.changes
    );
    let estimate = sim.net.engine.egress_estimate("tb").expect("an estimate");
    assert!(
        (500_000..=900_000).contains(&estimate),
        "the estimate follows the cap: {estimate}"
    );
    let snapshot = sim.net.engine.router_snapshot("room").unwrap();
    let tb = snapshot.transports.iter().find(|t| t.id == "tb").unwrap();
    assert_eq!(
        tb.available_outgoing_bitrate,
        Some(estimate),
        "the control API shows it"
    );

    // The cap is lifted: back to the top, at a keyframe of layer 2.
    let lifted = sim.net.now;
    sim.set_downlink(LinkShape::open(DELAY));
    sim.until_spatial(2, Duration::from_secs(15))
        .expect("back to layer 2 once the cap is lifted");
    assert!(spatial_since(&sim, lifted).iter().all(|s| *s >= 1));
    sim.run_for(Duration::from_secs(1));
    assert_continuous(&sim.got());
}

#[test]
fn a_screen_share_keeps_its_resolution_and_loses_frame_rate() {
    let mut sim = Sim::new(true, 2);
    sim.warm_up(Duration::from_secs(15));
    // 1 Mbit/s: a camera would drop to layer 1; a screen share keeps layer
    // 2 at a lower frame rate (its TID 0 and 1 are 600 k and 900 k).
    let capped = sim.net.now;
    sim.set_downlink(LinkShape::capped(1_000_000, DELAY));
    sim.run_for(Duration::from_secs(10));
    let since: Vec<(u8, u8)> = sim
        .changes
        .iter()
        .filter(|(at, _, _)| *at > capped)
        .map(|(_, s, t)| (*s, *t))
        .collect();
    assert!(
        since.iter().all(|(s, _)| *s == 2),
        "the resolution stays: {since:?}"
    );
    let (spatial, temporal) = sim.current().unwrap();
    assert_eq!(spatial, 2);
    assert!(temporal < 2, "frame rate gave way: {:?}", sim.changes);
    // What arrives in the last second has no TID above the ceiling.
    let got = sim.got();
    let tail = &got[got.len() - 20..];
    assert!(
        tail.iter()
            .all(|g| g.layer == 2 && g.desc.tid <= Some(temporal)),
        "{tail:?}"
    );
}

#[test]
fn without_feedback_nothing_is_limited_or_paced() {
    let mut sim = Sim::with(false, 3, false);
    sim.until_spatial(2, Duration::from_secs(3))
        .expect("the top layer at once");
    sim.set_downlink(LinkShape::capped(700_000, DELAY));
    let capped = sim.net.now;
    sim.run_for(Duration::from_secs(5));
    assert_eq!(sim.net.engine.egress_estimate("tb"), None);
    let snapshot = sim.net.engine.router_snapshot("room").unwrap();
    assert!(
        snapshot
            .transports
            .iter()
            .all(|t| t.available_outgoing_bitrate.is_none())
    );
    assert!(spatial_since(&sim, capped).is_empty(), "{:?}", sim.changes);
    assert_eq!(sim.current(), Some((2, 2)));

    // Nor does a pacer hold its packets back: once the publisher stops,
    // what was sent has arrived within the link's delay (a pacer stuck at
    // the initial guess, below the 1.5 Mbit/s layer, would still be
    // draining a queue of hundreds of packets).
    sim.set_downlink(LinkShape::open(DELAY));
    sim.run_for(Duration::from_secs(2));
    sim.net.run(DELAY * 3);
    let arrived = sim.got().len();
    sim.net.run(Duration::from_secs(2));
    let late = sim.got().len() - arrived;
    assert!(
        late <= 5,
        "{late} packets still arrived after the publisher stopped"
    );
}

#[test]
fn random_loss_alone_does_not_flap_layers() {
    let mut sim = Sim::new(false, 4);
    sim.warm_up(Duration::from_secs(15));
    // 1 % loss on an open link: repaired by RTX, not a reason to switch.
    let lossy = sim.net.now;
    sim.set_downlink(LinkShape {
        loss: 0.01,
        seed: 4,
        ..LinkShape::open(DELAY)
    });
    sim.run_for(Duration::from_secs(8));
    assert!(spatial_since(&sim, lossy).is_empty(), "{:?}", sim.changes);
}

#[test]
fn the_link_serialises_queues_and_drops_at_the_tail() {
    let t0 = Instant::now();
    // 80 kbit/s = 10 bytes per ms; a queue of 3,000 bytes.
    let mut link = Link::new(LinkShape {
        rate_bps: Some(80_000),
        delay: DELAY,
        queue_bytes: 3_000,
        ..LinkShape::default()
    });
    assert_eq!(link.admit(t0, 1000), Some(t0 + Duration::from_millis(120)));
    assert_eq!(link.admit(t0, 1000), Some(t0 + Duration::from_millis(220)));
    assert_eq!(link.admit(t0, 1000), Some(t0 + Duration::from_millis(320)));
    assert_eq!(link.admit(t0, 1000), None, "3,000 bytes wait: dropped");
    let later = t0 + Duration::from_millis(300);
    assert_eq!(
        link.admit(later, 100),
        Some(later + Duration::from_millis(30)),
        "the queue drained"
    );
    assert_eq!(link.stats.overflowed, 1);
    let mut lossy = Link::new(LinkShape {
        loss: 0.25,
        seed: 9,
        ..LinkShape::default()
    });
    let lost = (0..4000).filter(|_| lossy.admit(t0, 100).is_none()).count();
    assert!((800..1200).contains(&lost), "{lost} of 4000 lost at 25 %");
}

#[test]
fn a_screen_share_comes_before_a_camera_on_the_same_link() {
    let mut sim = Sim::camera_and_screen(5);
    let top = |changes: &[(Instant, u8, u8)]| changes.last().map(|c| (c.1, c.2)) == Some((2, 2));
    let end = sim.net.now + Duration::from_secs(20);
    // Both at the top on an open link (3 Mbit/s together).
    while !(top(&sim.changes) && top(&sim.screen_changes))
        || sim
            .net
            .engine
            .egress_estimate("tb")
            .is_none_or(|e| e < 3_500_000)
    {
        assert!(
            sim.net.now < end,
            "camera {:?} screen {:?}",
            sim.changes,
            sim.screen_changes
        );
        sim.frame();
    }
    // 1.6 Mbit/s for both: the screen share keeps layer 2 (at a lower
    // frame rate), the camera gives up resolution.
    let capped = sim.net.now;
    sim.set_downlink(LinkShape::capped(1_600_000, DELAY));
    sim.run_for(Duration::from_secs(10));
    let screen: Vec<(u8, u8)> = sim
        .screen_changes
        .iter()
        .filter(|(at, _, _)| *at > capped)
        .map(|(_, s, t)| (*s, *t))
        .collect();
    assert!(
        !screen.is_empty() && screen.iter().all(|(s, _)| *s == 2),
        "the screen share keeps its resolution: {screen:?}"
    );
    let camera = sim.current().expect("camera layers");
    assert!(
        camera.0 < 2,
        "the camera gave way: {camera:?} {:?}",
        sim.changes
    );
}
