//! The engine in simulated time: str0m clients (full ICE, controlling, DTLS
//! client, RTP mode) wired to the engine in memory, no sockets.

use std::time::Duration;

use serde_json::{Value, json};
use str0m::IceCreds;
use str0m::media::{KeyframeRequestKind, MediaKind as StrKind, Mid};
use str0m::rtp::Ssrc;
use vtp_sfu::engine::{
    CloseReason, ConsumerInfo, EngineEvent, EngineOutput, TapPacket, TransportOptions,
};
use vtp_sfu::rtp::MediaKind;

#[path = "support/net.rs"]
mod net;
use net::{Net, chromium_config, router_caps_json, router_config};

fn payload(i: u64) -> Vec<u8> {
    vec![0x10, 0, 0, (i % 251) as u8, 0xAB, 0xCD]
}

const A_VIDEO_SSRC: u32 = 1111;
const A_AUDIO_SSRC: u32 = 3333;

fn a_video_params() -> Value {
    json!({
        "mid": "0",
        "codecs": [
            {"mimeType": "video/VP8", "payloadType": 96, "clockRate": 90000,
             "rtcpFeedback": [{"type": "nack"}, {"type": "nack", "parameter": "pli"}]},
            {"mimeType": "video/rtx", "payloadType": 97, "clockRate": 90000, "parameters": {"apt": 96}}
        ],
        "headerExtensions": [
            {"uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": 9},
            {"uri": "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time", "id": 2},
            {"uri": "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01", "id": 4}
        ],
        "encodings": [{"ssrc": A_VIDEO_SSRC, "rtx": {"ssrc": 1112}}],
        "rtcp": {"cname": "alice"}
    })
}

fn a_audio_params() -> Value {
    json!({
        "mid": "1",
        "codecs": [{"mimeType": "audio/opus", "payloadType": 111, "clockRate": 48000, "channels": 2}],
        "headerExtensions": [
            {"uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": 9},
            {"uri": "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time", "id": 2}
        ],
        "encodings": [{"ssrc": A_AUDIO_SSRC}],
        "rtcp": {"cname": "alice"}
    })
}

struct Room {
    net: Net,
    a: usize,
    b: usize,
    video: ConsumerInfo,
    audio: ConsumerInfo,
}

/// A sends VP8 (and opus) on its send transport; B consumes both on its
/// receive transport (consume before connect, as mediasoup-client does).
fn room() -> Room {
    let mut net = Net::new();
    net.engine.create_router("room").unwrap();
    let ta = net
        .engine
        .create_webrtc_transport("room", "ta", TransportOptions::default())
        .unwrap();
    let tb = net
        .engine
        .create_webrtc_transport(
            "room",
            "tb",
            TransportOptions {
                enable_sctp: true,
                ..TransportOptions::default()
            },
        )
        .unwrap();
    assert_eq!(tb.sctp_parameters.as_ref().unwrap().port, 5000);
    let a = net.add_client(chromium_config(), &ta);
    let b = net.add_client(router_config(), &tb);
    {
        let mut api = net.clients[a].rtc.direct_api();
        api.declare_media(Mid::from("0"), StrKind::Video);
        api.declare_stream_tx(
            Ssrc::from(A_VIDEO_SSRC),
            Some(Ssrc::from(1112)),
            Mid::from("0"),
            None,
        );
        api.declare_media(Mid::from("1"), StrKind::Audio);
        api.declare_stream_tx(Ssrc::from(A_AUDIO_SSRC), None, Mid::from("1"), None);
    }
    let dtls_a = net.dtls_of(a);
    let now = net.now;
    net.engine.connect_transport("ta", &dtls_a, now).unwrap();
    // ICE starts before `produce` arrives: those datagrams are held.
    net.run(Duration::from_millis(30));
    let now = net.now;
    net.engine
        .produce("ta", "pv", MediaKind::Video, &a_video_params(), now)
        .unwrap();
    net.engine
        .produce("ta", "pa", MediaKind::Audio, &a_audio_params(), now)
        .unwrap();
    let caps = router_caps_json(&net);
    let video = net.engine.consume("tb", "cv", "pv", &caps, now).unwrap();
    let audio = net.engine.consume("tb", "ca", "pa", &caps, now).unwrap();
    assert!(video.rtp_parameters.encodings[0].rtx.is_some());
    net.expect_consumer(b, &video);
    net.expect_consumer(b, &audio);
    let dtls_b = net.dtls_of(b);
    net.engine.connect_transport("tb", &dtls_b, now).unwrap();
    net.run(Duration::from_millis(300));
    assert!(net.clients[a].rtc.is_connected(), "A connected");
    assert!(net.clients[b].rtc.is_connected(), "B connected");
    for t in ["ta", "tb"] {
        assert!(
            net.engine_events
                .contains(&EngineEvent::TransportConnected {
                    transport_id: t.into()
                }),
            "{t} connected: {:?}",
            net.engine_events
        );
    }
    let now = net.now;
    net.engine.resume_consumer("cv", now).unwrap();
    net.engine.resume_consumer("ca", now).unwrap();
    Room {
        net,
        a,
        b,
        video,
        audio,
    }
}

/// A sends `count` video and audio packets from `first`, 10 ms apart.
fn send(room: &mut Room, first: u64, count: u64) {
    for i in first..first + count {
        room.net
            .write(room.a, A_VIDEO_SSRC, 96, 5000 + i, payload(i));
        room.net
            .write(room.a, A_AUDIO_SSRC, 111, 9000 + i, payload(i + 7));
        room.net.run(Duration::from_millis(10));
    }
}

fn assert_continuous(got: &[(u64, u8, Vec<u8>)]) {
    let mut seqs: Vec<u64> = got.iter().map(|g| g.0).collect();
    seqs.sort_unstable();
    seqs.dedup();
    for w in seqs.windows(2) {
        assert_eq!(w[1], w[0] + 1, "gap in {seqs:?}");
    }
}

#[test]
fn video_and_audio_are_forwarded_with_consumer_numbering() {
    let mut room = room();
    send(&mut room, 0, 50);
    room.net.run(Duration::from_millis(100));
    let vssrc = room.video.rtp_parameters.encodings[0].ssrc.unwrap();
    let assrc = room.audio.rtp_parameters.encodings[0].ssrc.unwrap();
    let video = room.net.received(room.b, vssrc);
    let audio = room.net.received(room.b, assrc);
    assert_eq!(video.len(), 50, "video packets at B");
    assert_eq!(audio.len(), 50, "audio packets at B");
    assert!(video.iter().all(|v| v.1 == 101), "VP8 as router PT 101");
    assert!(audio.iter().all(|v| v.1 == 100), "opus as router PT 100");
    assert_continuous(&video);
    assert_continuous(&audio);
    let payloads: Vec<Vec<u8>> = video.iter().map(|v| v.2.clone()).collect();
    assert_eq!(payloads, (0..50).map(payload).collect::<Vec<_>>());
    // B's consumer SSRC is its own, not A's.
    assert_ne!(vssrc, A_VIDEO_SSRC);
    assert!(room.net.received(room.b, A_VIDEO_SSRC).is_empty());
}

#[test]
fn lost_packets_are_recovered_by_nack_and_rtx() {
    let mut room = room();
    let vssrc = room.video.rtp_parameters.encodings[0].ssrc.unwrap();
    let mut seen = 0;
    room.net.drop_to_client = Box::new(move |client, bytes| {
        // Drop the 5th, 6th and 10th video packets from the engine to B
        // (plain RTP on the consumer SSRC; RTX repairs use another SSRC).
        let is_rtp = bytes.len() > 12 && bytes[0] >> 6 == 2 && !(192..=223).contains(&bytes[1]);
        let ssrc = u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        if client == 1 && is_rtp && ssrc == vssrc {
            seen += 1;
            return [5, 6, 10].contains(&seen);
        }
        false
    });
    send(&mut room, 0, 30);
    room.net.run(Duration::from_millis(500));
    let video = room.net.received(room.b, vssrc);
    let mut seqs: Vec<u64> = video.iter().map(|v| v.0).collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), 30, "every packet arrived in the end: {seqs:?}");
    assert_continuous(&video);
}

#[test]
fn pause_and_resume_consumer() {
    let mut room = room();
    let vssrc = room.video.rtp_parameters.encodings[0].ssrc.unwrap();
    send(&mut room, 0, 10);
    room.net.engine.pause_consumer("cv").unwrap();
    send(&mut room, 10, 20);
    assert_eq!(
        room.net.received(room.b, vssrc).len(),
        10,
        "nothing while paused"
    );
    room.net.run(Duration::from_millis(600));
    let before = room.net.keyframe_requests(room.a);
    let now = room.net.now;
    room.net.engine.resume_consumer("cv", now).unwrap();
    send(&mut room, 30, 10);
    assert!(
        room.net.keyframe_requests(room.a) > before,
        "PLI reached A on resume"
    );
    let video = room.net.received(room.b, vssrc);
    assert_eq!(video.len(), 20);
    assert_continuous(&video);
    // Producer pause: consumers are told, nothing flows.
    room.net.engine.pause_producer("pv").unwrap();
    room.net.settle();
    assert!(
        room.net
            .engine_events
            .contains(&EngineEvent::ConsumerPaused {
                consumer_id: "cv".into()
            })
    );
    send(&mut room, 40, 5);
    assert_eq!(room.net.received(room.b, vssrc).len(), 20);
    let now = room.net.now;
    room.net.engine.resume_producer("pv", now).unwrap();
    send(&mut room, 45, 5);
    let video = room.net.received(room.b, vssrc);
    assert_eq!(video.len(), 25);
    assert_continuous(&video);
}

#[test]
fn keyframe_request_from_consumer_reaches_producer() {
    let mut room = room();
    let vssrc = room.video.rtp_parameters.encodings[0].ssrc.unwrap();
    send(&mut room, 0, 5);
    room.net.run(Duration::from_millis(600));
    let before = room.net.keyframe_requests(room.a);
    room.net.clients[room.b]
        .rtc
        .direct_api()
        .stream_rx(&Ssrc::from(vssrc))
        .unwrap()
        .request_keyframe(KeyframeRequestKind::Pli);
    send(&mut room, 5, 5);
    assert!(room.net.keyframe_requests(room.a) > before);
}

#[test]
fn closing_cascades() {
    let mut room = room();
    let vssrc = room.video.rtp_parameters.encodings[0].ssrc.unwrap();
    let assrc = room.audio.rtp_parameters.encodings[0].ssrc.unwrap();
    send(&mut room, 0, 5);
    room.net.engine.close_producer("pv").unwrap();
    room.net.settle();
    assert!(
        room.net
            .engine_events
            .contains(&EngineEvent::ConsumerClosed {
                consumer_id: "cv".into(),
                producer_id: "pv".into(),
                reason: CloseReason::ProducerClosed,
            })
    );
    send(&mut room, 5, 5);
    assert_eq!(room.net.received(room.b, vssrc).len(), 5, "flow stopped");
    assert_eq!(
        room.net.received(room.b, assrc).len(),
        10,
        "audio unaffected"
    );
    assert!(room.net.engine.resume_consumer("cv", room.net.now).is_err());

    room.net.engine.close_transport("ta").unwrap();
    room.net.settle();
    let ev = &room.net.engine_events;
    assert!(ev.contains(&EngineEvent::ProducerClosed {
        producer_id: "pa".into(),
        reason: CloseReason::TransportClosed
    }));
    assert!(ev.contains(&EngineEvent::ConsumerClosed {
        consumer_id: "ca".into(),
        producer_id: "pa".into(),
        reason: CloseReason::ProducerClosed
    }));
    assert!(room.net.engine.pause_producer("pa").is_err());
    send(&mut room, 10, 3);
    assert_eq!(room.net.received(room.b, assrc).len(), 10);
    room.net.engine.close_router("room").unwrap();
    assert!(room.net.engine.close_transport("tb").is_err());
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let mut net = Net::new();
    let now = net.now;
    let caps = json!({"codecs": [], "headerExtensions": []});
    assert!(
        net.engine
            .create_webrtc_transport("nope", "t", TransportOptions::default())
            .is_err()
    );
    net.engine.create_router("room").unwrap();
    assert!(net.engine.create_router("room").is_err());
    net.engine
        .create_webrtc_transport("room", "ta", TransportOptions::default())
        .unwrap();
    assert!(
        net.engine
            .create_webrtc_transport("room", "ta", TransportOptions::default())
            .is_err()
    );
    let fp = vec!["AB"; 32].join(":");
    for bad in [
        json!({"role": "client"}),
        json!({"role": "client", "fingerprints": [{"algorithm": "sha-256", "value": "xyz"}]}),
        json!({"role": "boss", "fingerprints": [{"algorithm": "sha-256", "value": fp}]}),
        json!(null),
    ] {
        let e = net.engine.connect_transport("ta", &bad, now).unwrap_err();
        assert_eq!(e.code(), "bad_request", "{bad}");
    }
    let good = json!({"role": "client", "fingerprints": [{"algorithm": "sha-256", "value": fp}]});
    assert_eq!(
        net.engine
            .connect_transport("nope", &good, now)
            .unwrap_err()
            .code(),
        "not_found"
    );
    net.engine.connect_transport("ta", &good, now).unwrap();
    assert_eq!(
        net.engine
            .connect_transport("ta", &good, now)
            .unwrap_err()
            .code(),
        "conflict"
    );

    // Malformed and unsupported producers.
    assert!(
        net.engine
            .produce("ta", "p", MediaKind::Video, &json!({"codecs": 3}), now)
            .is_err()
    );
    assert!(
        net.engine
            .produce("ta", "p", MediaKind::Audio, &a_video_params(), now)
            .is_err()
    );
    let mut bad_mid = a_video_params();
    bad_mid["mid"] = json!("a-b");
    assert!(
        net.engine
            .produce("ta", "p", MediaKind::Video, &bad_mid, now)
            .is_err()
    );
    net.engine
        .produce("ta", "pv", MediaKind::Video, &a_video_params(), now)
        .unwrap();
    assert!(
        net.engine
            .produce("ta", "pv", MediaKind::Video, &a_video_params(), now)
            .is_err()
    );
    // Same mid again, and a PT that differs from the transport's table.
    let mut again = a_video_params();
    again["encodings"] = json!([{"ssrc": 77}]);
    assert!(
        net.engine
            .produce("ta", "p2", MediaKind::Video, &again, now)
            .is_err()
    );
    let mut other_pt = a_audio_params();
    other_pt["codecs"][0]["payloadType"] = json!(96);
    assert!(
        net.engine
            .produce("ta", "p3", MediaKind::Audio, &other_pt, now)
            .is_err()
    );
    net.engine
        .produce("ta", "pa", MediaKind::Audio, &a_audio_params(), now)
        .unwrap();

    // Consume: unknown ids, incapable capabilities, wrong direction.
    net.engine
        .create_webrtc_transport("room", "tb", TransportOptions::default())
        .unwrap();
    let router_caps = router_caps_json(&net);
    assert!(
        net.engine
            .consume("tb", "c", "nope", &router_caps, now)
            .is_err()
    );
    assert!(
        net.engine
            .consume("nope", "c", "pv", &router_caps, now)
            .is_err()
    );
    assert!(net.engine.consume("tb", "c", "pv", &caps, now).is_err());
    assert!(
        net.engine
            .consume("tb", "c", "pv", &json!("x"), now)
            .is_err()
    );
    let audio_only = json!({"codecs": [{"kind": "audio", "mimeType": "audio/opus",
        "preferredPayloadType": 100, "clockRate": 48000, "channels": 2}], "headerExtensions": []});
    assert!(
        net.engine
            .consume("tb", "c", "pv", &audio_only, now)
            .is_err()
    );
    assert!(
        net.engine
            .consume("ta", "c", "pv", &router_caps, now)
            .is_err(),
        "send transport"
    );
    // Nothing was created by the refusals: the ids are still free.
    net.engine
        .consume("tb", "c", "pv", &router_caps, now)
        .unwrap();
    assert!(
        net.engine
            .produce("tb", "px", MediaKind::Audio, &a_audio_params(), now)
            .is_err()
    );
    for (call, r) in [
        ("pause_consumer", net.engine.pause_consumer("nope")),
        ("close_consumer", net.engine.close_consumer("nope")),
        ("close_producer", net.engine.close_producer("nope")),
        ("close_transport", net.engine.close_transport("nope")),
        ("close_router", net.engine.close_router("nope")),
    ] {
        assert_eq!(r.unwrap_err().code(), "not_found", "{call}");
    }
    // Garbage datagrams from anywhere are dropped.
    net.engine
        .handle_datagram(now, "1.2.3.4:5".parse().unwrap(), &[0, 1, 2, 3]);
    net.engine
        .handle_datagram(now, "1.2.3.4:5".parse().unwrap(), &[0x80; 40]);
    let outputs: Vec<_> = std::iter::from_fn(|| net.engine.poll_output()).collect();
    assert!(
        outputs
            .iter()
            .all(|o| !matches!(o, EngineOutput::Transmit { .. }))
    );
}

#[test]
fn a_client_with_the_wrong_dtls_fingerprint_never_receives_media() {
    let mut net = Net::new();
    let (a, b) = net.two_parties(chromium_config());
    {
        let mut api = net.clients[a].rtc.direct_api();
        api.declare_media(Mid::from("0"), StrKind::Video);
        api.declare_stream_tx(
            Ssrc::from(A_VIDEO_SSRC),
            Some(Ssrc::from(1112)),
            Mid::from("0"),
            None,
        );
    }
    let now = net.now;
    let dtls_a = net.dtls_of(a);
    net.engine.connect_transport("ta", &dtls_a, now).unwrap();
    net.engine
        .produce("ta", "pv", MediaKind::Video, &a_video_params(), now)
        .unwrap();
    let caps = router_caps_json(&net);
    let video = net.engine.consume("tb", "cv", "pv", &caps, now).unwrap();
    net.expect_consumer(b, &video);
    // B announces someone else's certificate (A's): an impostor.
    net.engine.connect_transport("tb", &dtls_a, now).unwrap();
    net.run(Duration::from_millis(300));
    let now = net.now;
    // The failed handshake closed the impostor's transport and what it carried.
    assert!(net.engine.resume_consumer("cv", now).is_err());
    assert!(
        net.engine_events.iter().any(|e| matches!(e, EngineEvent::TransportClosed { transport_id, .. } if transport_id == "tb")),
        "{:?}",
        net.engine_events
    );
    for i in 0..30 {
        net.write(a, A_VIDEO_SSRC, 96, 5000 + i, payload(i));
        net.run(Duration::from_millis(10));
    }
    net.run(Duration::from_millis(300));
    assert!(
        net.clients[a].rtc.is_connected(),
        "the honest publisher connects"
    );
    assert!(
        !net.engine_events
            .contains(&EngineEvent::TransportConnected {
                transport_id: "tb".into()
            }),
        "the impostor's transport never connects"
    );
    let ssrc = video.rtp_parameters.encodings[0].ssrc.unwrap();
    assert!(
        net.received(b, ssrc).is_empty(),
        "no media for a client whose certificate does not match"
    );
}

#[test]
fn ice_restart_keeps_media_flowing_under_new_credentials() {
    let mut room = room();
    send(&mut room, 0, 20);
    let old_ufrag = room.net.engine.transport_ufrag("tb").unwrap().to_owned();
    let fresh = room.net.engine.restart_ice("tb").unwrap();
    assert_ne!(fresh.username_fragment, old_ufrag);
    assert!(fresh.ice_lite);
    assert_eq!(
        room.net.engine.transport_ufrag("tb"),
        Some(fresh.username_fragment.as_str())
    );
    // B applies the new parameters with credentials of its own, as a
    // browser does on `restartIce()`.
    {
        let mut api = room.net.clients[room.b].rtc.direct_api();
        api.set_remote_ice_credentials(IceCreds {
            ufrag: fresh.username_fragment.clone(),
            pass: fresh.password.clone(),
        });
        api.set_local_ice_credentials(IceCreds::new());
    }
    // Count the engine's STUN answers to B from now on: B's checks under
    // the new credentials must be routed and answered.
    let stun_answers = std::rc::Rc::new(std::cell::Cell::new(0));
    let counter = stun_answers.clone();
    room.net.drop_to_client = Box::new(move |client, bytes| {
        // A STUN binding success response: type 0x0101 and the magic cookie.
        if client == 1
            && bytes.len() >= 20
            && bytes[..2] == [0x01, 0x01]
            && bytes[4..8] == [0x21, 0x12, 0xA4, 0x42]
        {
            counter.set(counter.get() + 1);
        }
        false
    });
    send(&mut room, 20, 100);
    room.net.run(Duration::from_secs(20));
    send(&mut room, 120, 20);
    room.net.run(Duration::from_millis(100));
    assert!(
        room.net.clients[room.b].rtc.is_connected(),
        "B still connected"
    );
    assert!(
        stun_answers.get() >= 2,
        "the engine answered {} of B's checks under the new credentials",
        stun_answers.get()
    );
    let vssrc = room.video.rtp_parameters.encodings[0].ssrc.unwrap();
    let video = room.net.received(room.b, vssrc);
    assert_eq!(video.len(), 140, "every video packet reached B");
    assert_continuous(&video);
    assert!(
        !room
            .net
            .engine_events
            .iter()
            .any(|e| matches!(e, EngineEvent::TransportClosed { .. })),
        "no transport failed: {:?}",
        room.net.engine_events
    );
    // The old ufrag no longer routes; unknown transports are refused.
    assert!(matches!(
        room.net.engine.restart_ice("nope"),
        Err(vtp_sfu::engine::EngineError::UnknownTransport(_))
    ));
}

#[test]
fn a_tap_gets_the_producers_packets_in_router_numbering() {
    let mut room = room();
    let info = room.net.engine.add_tap("pv", "rec").unwrap();
    assert_eq!(info.kind, MediaKind::Video);
    assert_eq!(
        info.codecs.len(),
        1,
        "VP8 without its RTX: {:?}",
        info.codecs
    );
    assert_eq!(
        (
            info.codecs[0].mime_type.as_str(),
            info.codecs[0].payload_type
        ),
        ("video/VP8", 101)
    );
    assert!(
        room.net.engine.add_tap("pv", "rec").is_err(),
        "ids are unique"
    );
    assert!(room.net.engine.add_tap("nope", "rec2").is_err());
    send(&mut room, 0, 30);
    room.net.run(Duration::from_millis(100));
    let got: Vec<&TapPacket> = room
        .net
        .tapped
        .iter()
        .filter(|(id, _)| id == "rec")
        .map(|(_, p)| p)
        .collect();
    assert_eq!(got.len(), 30, "every video packet, and no audio");
    assert!(got.iter().all(|p| p.payload_type == 101));
    let seqs: Vec<u64> = got.iter().map(|p| p.sequence_number).collect();
    assert_eq!(
        seqs,
        (0..30).collect::<Vec<u64>>(),
        "the tap's own continuous numbering"
    );
    let payloads: Vec<Vec<u8>> = got.iter().map(|p| p.payload.clone()).collect();
    assert_eq!(payloads, (0..30).map(payload).collect::<Vec<_>>());

    // A recorder that lost packets asks the publisher for a keyframe.
    let before = room.net.keyframe_requests(room.a);
    let now = room.net.now + Duration::from_secs(2);
    room.net.run(Duration::from_secs(2));
    room.net.engine.request_tap_keyframe("rec", now).unwrap();
    room.net.run(Duration::from_millis(50));
    assert!(room.net.keyframe_requests(room.a) > before, "PLI sent to A");

    // Paused: nothing is tapped. Closed: the tap ends with an event.
    room.net.engine.pause_producer("pv").unwrap();
    room.net.tapped.clear();
    send(&mut room, 30, 10);
    assert!(room.net.tapped.is_empty(), "a paused producer taps nothing");
    room.net.engine.close_producer("pv").unwrap();
    room.net.run(Duration::from_millis(10));
    assert!(room.net.engine_events.contains(&EngineEvent::TapClosed {
        tap_id: "rec".into(),
        producer_id: "pv".into()
    }));
    assert!(room.net.engine.remove_tap("rec").is_err(), "already gone");
}
