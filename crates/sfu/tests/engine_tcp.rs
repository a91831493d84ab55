//! ICE-TCP in the engine, in simulated time: a transport's candidates (UDP
//! and passive TCP per announced address, UDP preferred), str0m client
//! peers that reach the engine over TCP only (ICE, DTLS, media both ways),
//! and transport failures reported once with their reason.

use std::time::Duration;

use serde_json::{Value, json};
use str0m::media::{MediaKind as StrKind, Mid};
use str0m::rtp::Ssrc;
use vtp_sfu::engine::{
    ConsumerInfo, EngineConfig, EngineEvent, IceProtocol, TransportFailures, TransportOptions,
};
use vtp_sfu::rtp::MediaKind;

#[path = "support/net.rs"]
mod net;
use net::{Net, chromium_config, engine_addr, router_caps_json, router_config};

const A_VIDEO_SSRC: u32 = 1111;

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
            {"uri": "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time", "id": 2}
        ],
        "encodings": [{"ssrc": A_VIDEO_SSRC, "rtx": {"ssrc": 1112}}],
        "rtcp": {"cname": "alice"}
    })
}

fn payload(i: u64) -> Vec<u8> {
    vec![0x10, 0, 0, (i % 251) as u8, 0xAB, 0xCD]
}

/// A publishes VP8 on "ta", B consumes it on "tb", each over its own
/// protocol; both connected and the consumer resumed.
fn publish_and_consume(
    a_over: IceProtocol,
    b_over: IceProtocol,
) -> (Net, usize, usize, ConsumerInfo) {
    let mut net = Net::with_tcp();
    net.engine.create_router("room").unwrap();
    let ta = net
        .engine
        .create_webrtc_transport("room", "ta", TransportOptions::default())
        .unwrap();
    let tb = net
        .engine
        .create_webrtc_transport("room", "tb", TransportOptions::default())
        .unwrap();
    let a = net.add_client_over(chromium_config(), &ta, a_over);
    let b = net.add_client_over(router_config(), &tb, b_over);
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
    let dtls_b = net.dtls_of(b);
    net.engine.connect_transport("tb", &dtls_b, now).unwrap();
    net.run(Duration::from_millis(300));
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
    (net, a, b, video)
}

fn send_video(net: &mut Net, a: usize, count: u64) {
    for i in 0..count {
        net.write(a, A_VIDEO_SSRC, 96, 5000 + i, payload(i));
        net.run(Duration::from_millis(10));
    }
    net.run(Duration::from_millis(100));
}

#[test]
fn candidates_are_udp_then_passive_tcp_per_address_with_udp_preferred() {
    let mut config = EngineConfig::new("192.0.2.10:40000".parse().unwrap());
    config.additional_ips = vec!["2001:db8::10".parse().unwrap()];
    config.tcp_port = Some(40001);
    let mut net = Net::with_config(config);
    net.engine.create_router("room").unwrap();
    let info = net
        .engine
        .create_webrtc_transport("room", "t", TransportOptions::default())
        .unwrap();
    let json = serde_json::to_value(&info.ice_candidates).unwrap();
    let shape: Vec<(String, String, u16, Option<String>)> = info
        .ice_candidates
        .iter()
        .map(|c| (c.protocol.clone(), c.ip.clone(), c.port, c.tcp_type.clone()))
        .collect();
    assert_eq!(
        shape,
        vec![
            ("udp".into(), "192.0.2.10".into(), 40000, None),
            ("udp".into(), "2001:db8::10".into(), 40000, None),
            (
                "tcp".into(),
                "192.0.2.10".into(),
                40001,
                Some("passive".into())
            ),
            (
                "tcp".into(),
                "2001:db8::10".into(),
                40001,
                Some("passive".into())
            ),
        ]
    );
    // mediasoup's shape exactly: `tcpType` only on TCP candidates.
    assert_eq!(
        json[2],
        json!({"foundation": "tcp0", "priority": info.ice_candidates[2].priority,
               "ip": "192.0.2.10", "address": "192.0.2.10", "port": 40001,
               "protocol": "tcp", "type": "host", "tcpType": "passive"})
    );
    assert!(json[0].get("tcpType").is_none(), "{}", json[0]);
    // Every UDP candidate above every TCP one; unique priorities and
    // foundations; the first address first.
    let prio: Vec<u32> = info.ice_candidates.iter().map(|c| c.priority).collect();
    assert!(prio.windows(2).all(|w| w[0] > w[1]), "{prio:?}");
    // RFC 8445: type preference in the top byte (126 host UDP, 90 host TCP),
    // component 1 in the low byte.
    assert_eq!(prio[0] >> 24, 126);
    assert_eq!(prio[2] >> 24, 90);
    assert!(prio.iter().all(|p| p & 0xFF == 255));
    let mut foundations: Vec<&str> = info
        .ice_candidates
        .iter()
        .map(|c| c.foundation.as_str())
        .collect();
    foundations.dedup();
    assert_eq!(foundations.len(), 4);

    // Without a TCP port: UDP only, as before.
    let mut net = Net::new();
    net.engine.create_router("room").unwrap();
    let info = net
        .engine
        .create_webrtc_transport("room", "t", TransportOptions::default())
        .unwrap();
    assert_eq!(info.ice_candidates.len(), 1);
    assert_eq!(info.ice_candidates[0].protocol, "udp");
    assert_eq!(info.ice_candidates[0].port, engine_addr().port());
}

#[test]
fn media_flows_over_ice_tcp_only() {
    let (mut net, a, b, video) = publish_and_consume(IceProtocol::Tcp, IceProtocol::Tcp);
    assert!(net.clients[a].rtc.is_connected());
    assert!(net.clients[b].rtc.is_connected());
    send_video(&mut net, a, 40);
    let ssrc = video.rtp_parameters.encodings[0].ssrc.unwrap();
    let got = net.received(b, ssrc);
    assert_eq!(got.len(), 40, "every packet reached B over TCP");
    assert_eq!(
        got.iter().map(|g| g.2.clone()).collect::<Vec<_>>(),
        (0..40).map(payload).collect::<Vec<_>>()
    );
    assert_eq!(
        net.engine.transport_failures(),
        TransportFailures::default()
    );
}

#[test]
fn a_tcp_publisher_reaches_a_udp_subscriber_and_back() {
    let (mut net, a, b, video) = publish_and_consume(IceProtocol::Tcp, IceProtocol::Udp);
    send_video(&mut net, a, 20);
    let ssrc = video.rtp_parameters.encodings[0].ssrc.unwrap();
    assert_eq!(net.received(b, ssrc).len(), 20);

    let (mut net, a, b, video) = publish_and_consume(IceProtocol::Udp, IceProtocol::Tcp);
    send_video(&mut net, a, 20);
    let ssrc = video.rtp_parameters.encodings[0].ssrc.unwrap();
    assert_eq!(net.received(b, ssrc).len(), 20);
}

#[test]
fn a_transport_nobody_reaches_is_an_ice_timeout_reported_once() {
    let mut net = Net::with_tcp();
    net.engine.create_router("room").unwrap();
    net.engine
        .create_webrtc_transport("room", "idle", TransportOptions::default())
        .unwrap();
    let info = net
        .engine
        .create_webrtc_transport("room", "t", TransportOptions::default())
        .unwrap();
    // A client that is told to connect but whose packets never arrive.
    let mut silent = net::Net::with_tcp();
    let c = silent.add_client_over(router_config(), &info, IceProtocol::Tcp);
    let dtls = silent.dtls_of(c);
    let now = net.now;
    net.engine.connect_transport("t", &dtls, now).unwrap();
    // The deadline is a timeout the engine asks for.
    let deadline = net.engine.next_timeout().expect("a deadline");
    assert_eq!(deadline, now + vtp_sfu::engine::CONNECT_DEADLINE);
    net.run(Duration::from_secs(29));
    assert_eq!(
        net.engine.transport_failures(),
        TransportFailures::default()
    );
    net.run(Duration::from_secs(2));
    let once = TransportFailures {
        ice_timeout: 1,
        ..TransportFailures::default()
    };
    assert_eq!(net.engine.transport_failures(), once);
    net.run(Duration::from_secs(60));
    assert_eq!(net.engine.transport_failures(), once, "reported once");
    // A transport never connected by its client ("idle") is not failing.
    assert_eq!(net.engine.next_timeout(), None);
}

#[test]
fn a_failed_dtls_handshake_is_counted_as_a_dtls_failure() {
    let mut net = Net::with_tcp();
    let (a, b) = net.two_parties(chromium_config());
    let now = net.now;
    let dtls_a = net.dtls_of(a);
    net.engine.connect_transport("ta", &dtls_a, now).unwrap();
    net.engine
        .produce("ta", "pv", MediaKind::Video, &a_video_params(), now)
        .unwrap();
    let caps = router_caps_json(&net);
    let video = net.engine.consume("tb", "cv", "pv", &caps, now).unwrap();
    net.expect_consumer(b, &video);
    // B announces A's certificate: ICE works, DTLS cannot.
    net.engine.connect_transport("tb", &dtls_a, now).unwrap();
    // (The client's own DTLS gives up soon after; the harness stops there.)
    net.run(Duration::from_millis(300));
    let f = net.engine.transport_failures();
    assert_eq!(
        f,
        TransportFailures {
            dtls_failed: 1,
            ..TransportFailures::default()
        }
    );
}
