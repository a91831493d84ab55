//! Media over real UDP through the real server: a Rust client publishes
//! audio and video with Socket.IO and a str0m peer; two others consume.

use crate::common;

use std::time::Duration;

use common::media::{
    LAYERS_WAIT, Publisher, Subscriber, layers_changed, prefer_spatial, publish, simulcast_call,
    subscribe,
};
use common::*;
use serde_json::json;
use vtp_sfu::engine::LAYERS_NEEDED_HOLD;
use vtp_store::Role;

/// How long media may take to arrive on a busy machine.
const MEDIA_WAIT: Duration = Duration::from_secs(15);

/// A teacher (A) publishing to two students (B and C); no media sent yet.
async fn class_of_three(s: &TestServer) -> (String, Publisher, Subscriber, Subscriber) {
    let (_, teacher) = s.user("t@example.org", Role::Instructor).await;
    let (_, ann) = s.user("ann@example.org", Role::Student).await;
    let (_, bob) = s.user("bob@example.org", Role::Student).await;
    let room = s.room(&teacher, json!({})).await;
    let a = publish(s, &teacher, &room).await;
    let b = subscribe(s, &ann, &room, &a.ids).await;
    let c = subscribe(s, &bob, &room, &a.ids).await;
    (room, a, b, c)
}

#[tokio::test]
async fn two_subscribers_receive_what_one_publishes() {
    let s = TestServer::start().await;
    let (room, a, b, c) = class_of_three(&s).await;
    a.video.start();
    a.audio.start();
    // About two seconds (50 audio packets a second).
    wait_until(
        MEDIA_WAIT,
        "A to send 60 video and 100 audio packets",
        async || a.video.stats().packets > 60 && a.audio.stats().packets > 100,
    )
    .await;

    // `get-room-info` carries the SFU's statistics (in process here): each
    // producer's, and the caller's own consumers'.
    let info = b
        .socket
        .request("get-room-info", json!({ "roomId": room }))
        .await
        .unwrap();
    for p in info["producers"].as_array().unwrap() {
        assert!(p["stats"]["bitrate"].as_u64().unwrap() > 0, "{p}");
        assert_eq!(p["stats"]["score"], 10, "no loss on loopback: {p}");
    }
    let consumers = info["consumers"].as_array().unwrap();
    assert_eq!(consumers.len(), 2, "{info}");
    for c in consumers {
        assert!(c["stats"]["packets"].as_u64().unwrap() > 0, "{c}");
        assert_eq!(c["stats"]["score"], 10, "{c}");
    }

    a.video.stop();
    a.audio.stop();
    let (sent_v, sent_a) = (a.video.stats().packets, a.audio.stats().packets);
    for (name, sub) in [("B", &b), ("C", &c)] {
        let what = format!("{name} to get 95 % of {sent_v} video and {sent_a} audio packets");
        let (v, au) = wait_for(MEDIA_WAIT, &what, async || {
            let (v, au) = (sub.video.stats(), sub.audio.stats());
            if v.packets * 100 >= sent_v * 95 && au.packets * 100 >= sent_a * 95 {
                Ok((v, au))
            } else {
                Err((v, au))
            }
        })
        .await;
        assert_eq!(
            (v.integrity_failures, au.integrity_failures),
            (0, 0),
            "{name}: payloads intact"
        );
        assert!(v.keyframes >= 1 && v.frames > 10, "{name}: {v:?}");
    }

    // The operator's view of the same call: `/metrics` counts the SFU's
    // objects and traffic, and the process's own CPU and memory.
    let text = s.metrics().await;
    let metric = |name: &str| -> f64 {
        metric_in(&text, name).unwrap_or_else(|| panic!("{name} missing from /metrics:\n{text}"))
    };
    assert_eq!(metric("vtp_sfu_producers"), 2.0);
    assert_eq!(metric("vtp_sfu_consumers"), 4.0);
    assert!(metric("vtp_sfu_datagrams_received_total") > (sent_v + sent_a) as f64);
    // Nothing failed; every reason has its series from the start.
    for reason in [
        "ice_timeout",
        "dtls_timeout",
        "ice_failed",
        "dtls_failed",
        "disconnected",
    ] {
        assert_eq!(
            metric(&format!(
                "vtp_transport_failures_total{{reason=\"{reason}\"}}"
            )),
            0.0
        );
    }
    assert_eq!(
        metric("vtp_sfu_tcp_connections"),
        0.0,
        "every client used UDP"
    );
    assert!(metric("process_cpu_seconds_total") > 0.0);
    assert!(metric("process_resident_memory_bytes") > 1e6);
    // Media totals: what A sent arrived (in) and went to two subscribers
    // (out, counted from the engine's periodic egress counters, so at
    // least one interval's worth); the one worker did some work.
    let media_in = metric(r#"vtp_media_packets_total{direction="in"}"#);
    assert!(media_in >= (sent_v + sent_a) as f64 * 0.95, "{media_in}");
    assert!(metric(r#"vtp_media_bytes_total{direction="in"}"#) > media_in);
    wait_until(
        MEDIA_WAIT,
        "egress counters to reach /metrics",
        async || {
            let text = s.metrics().await;
            metric_in(&text, r#"vtp_media_packets_total{direction="out"}"#)
                .is_some_and(|out| out >= media_in)
        },
    )
    .await;
    assert_eq!(
        metric(r#"vtp_media_packets_lost_total{direction="in"}"#),
        0.0
    );
    assert!(metric(r#"vtp_sfu_worker_busy_seconds_total{worker="0"}"#) > 0.0);
    // By kind and state: one audio and one video track, each to B and C,
    // over three transports that all connected.
    assert_eq!(metric(r#"vtp_sfu_producers_by_kind{kind="video"}"#), 1.0);
    assert_eq!(metric(r#"vtp_sfu_producers_by_kind{kind="audio"}"#), 1.0);
    assert_eq!(metric(r#"vtp_sfu_consumers_by_kind{kind="video"}"#), 2.0);
    assert_eq!(
        metric(r#"vtp_sfu_transports_by_state{state="connected"}"#),
        3.0
    );
    assert_eq!(
        metric(r#"vtp_sfu_transports_by_state{state="connecting"}"#),
        0.0
    );
}

/// Pausing B's video consumer stops its flow while C, on the same
/// producer, still receives (C is the clock: what it gets, B would have
/// got); resuming restarts B's flow with a keyframe.
#[tokio::test]
async fn a_paused_consumer_gets_nothing_and_resumes_at_a_keyframe() {
    let s = TestServer::start().await;
    let (room, a, b, c) = class_of_three(&s).await;
    a.video.start();
    wait_until(MEDIA_WAIT, "B and C to decode video", async || {
        b.video.stats().frames > 10 && c.video.stats().frames > 10
    })
    .await;

    b.socket
        .request(
            "pause-consumer",
            json!({ "roomId": room, "consumerId": b.video_id }),
        )
        .await
        .unwrap();
    // What the SFU sent B before the pause arrives meanwhile.
    let c_now = c.video.stats().packets;
    wait_until(MEDIA_WAIT, "C to get 20 more packets", async || {
        c.video.stats().packets > c_now + 20
    })
    .await;
    let (b_before, kf_before) = (b.video.stats().packets, b.video.stats().keyframes);
    let c_before = c.video.stats().packets;
    wait_until(MEDIA_WAIT, "C to get 20 more packets", async || {
        c.video.stats().packets > c_before + 20
    })
    .await;
    assert_eq!(
        b.video.stats().packets,
        b_before,
        "nothing arrives while paused"
    );

    // Resuming restarts the flow with a keyframe.
    let requests_before = a.video.keyframe_requests();
    b.socket
        .request(
            "resume-consumer",
            json!({ "roomId": room, "consumerId": b.video_id }),
        )
        .await
        .unwrap();
    a.video
        .wait_keyframe_requests(requests_before + 1, Duration::from_secs(3))
        .await
        .expect("the publisher is asked for a keyframe");
    let after = wait_for(
        MEDIA_WAIT,
        "B's flow to restart at a keyframe",
        async || {
            let after = b.video.stats();
            if after.packets > b_before + 10 && after.keyframes > kf_before {
                Ok(after)
            } else {
                Err(after)
            }
        },
    )
    .await;
    assert_eq!(after.integrity_failures, 0, "{after:?}");
}

/// A simulcast publisher: the subscriber is told which layer it gets
/// (`consumer-layers-changed`), first the best, then the one it prefers;
/// the stream stays whole across the switch. Then the publisher speaks and
/// the room hears `active-speaker`.
#[tokio::test]
async fn a_subscriber_switches_simulcast_layers_and_is_told() {
    let s = TestServer::start().await;
    let (room, a, b) = simulcast_call(&s).await;
    let changed = layers_changed(&b, "told its first layers").await;
    assert_eq!(changed["consumerId"], b.video_id);
    assert_eq!(changed["spatialLayer"], 2, "the best layer by default");

    prefer_spatial(&b, &room, 0).await;
    let changed = layers_changed(&b, "told of the switch").await;
    assert_eq!(
        (&changed["consumerId"], &changed["spatialLayer"]),
        (&b.video_id, &json!(0))
    );
    let before = b.video.stats();
    let after = wait_for(MEDIA_WAIT, "layer 0 to flow from a keyframe", async || {
        let after = b.video.stats();
        if after.packets > before.packets + 10 && after.keyframes >= 2 {
            Ok(after)
        } else {
            Err(after)
        }
    })
    .await;
    assert_eq!(after.integrity_failures, 0, "payloads intact");

    // The same preference again: nothing changes, nothing is told.
    b.socket
        .request(
            "set-preferred-layers",
            json!({ "roomId": room, "consumerId": b.video_id, "spatialLayer": 0, "temporalLayer": 2 }),
        )
        .await
        .unwrap();
    b.socket
        .expect_no_event("consumer-layers-changed", Duration::from_millis(800))
        .await
        .expect("no news when nothing changed");
    a.video.stop();

    // The publisher's microphone (its packets carry an audio level) makes
    // it the room's active speaker, told to everyone.
    a.audio.start();
    for socket in [&a.socket, &b.socket] {
        let speaker = socket
            .next_event("active-speaker", LAYERS_WAIT)
            .await
            .expect("told who speaks");
        assert_eq!(speaker["producerId"], a.ids.1, "{speaker}");
        assert!(speaker["peerId"].is_string() && speaker["volume"].is_i64());
    }
    // Someone who joins later, and `get-room-info`, learn it without
    // waiting for the next change.
    let info = b
        .socket
        .request("get-room-info", json!({ "roomId": room }))
        .await
        .unwrap();
    assert_eq!(info["activeSpeaker"]["producerId"], a.ids.1, "{info}");
    let (_, bob) = s.user("bob@example.org", Role::Student).await;
    let late = s.socket(&bob).await;
    let joined = late
        .request("join-room", json!({ "roomId": room }))
        .await
        .unwrap();
    assert_eq!(joined["activeSpeaker"]["producerId"], a.ids.1, "{joined}");
    assert_eq!(
        joined["activeSpeaker"]["peerId"],
        info["activeSpeaker"]["peerId"]
    );
    a.audio.stop();
}

/// A simulcast publisher is told (`producer-layers-needed`) which layers its
/// only consumer may use: nothing while it wants the best, 0 once it has
/// preferred layer 0 for the hold, 2 again as soon as it prefers the best.
/// Only the publisher hears it.
#[tokio::test]
async fn the_publisher_is_told_which_simulcast_layers_are_needed() {
    let s = TestServer::start().await;
    let (room, a, b) = simulcast_call(&s).await;
    layers_changed(&b, "told its first layers").await;
    a.socket
        .expect_no_event("producer-layers-needed", Duration::from_millis(500))
        .await
        .expect("every layer is needed: nothing to tell");

    let asked = std::time::Instant::now();
    prefer_spatial(&b, &room, 0).await;
    let needed = a
        .socket
        .next_event("producer-layers-needed", LAYERS_NEEDED_HOLD + LAYERS_WAIT)
        .await
        .expect("told layer 0 is enough");
    assert!(
        asked.elapsed() >= LAYERS_NEEDED_HOLD,
        "not before the hold: {:?}",
        asked.elapsed()
    );
    assert_eq!(
        (&needed["producerId"], &needed["maxSpatialLayer"]),
        (&a.ids.0, &json!(0)),
        "{needed}"
    );

    prefer_spatial(&b, &room, 2).await;
    let needed = a
        .socket
        .next_event("producer-layers-needed", LAYERS_WAIT)
        .await
        .expect("told layer 2 is needed again");
    assert_eq!(
        (&needed["producerId"], &needed["maxSpatialLayer"]),
        (&a.ids.0, &json!(2)),
        "{needed}"
    );
    b.socket
        .expect_no_event("producer-layers-needed", Duration::from_millis(300))
        .await
        .expect("the subscriber is not told");
    a.video.stop();
}
