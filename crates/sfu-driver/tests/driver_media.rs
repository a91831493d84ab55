//! The driver over real UDP on 127.0.0.1: str0m peers publish and consume
//! VP8 through it; routing, workers, counters and shutdown.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use common::{Room, runtime, send_in_all, wait_until_blocking};
use vtp_sfu::engine::{CloseReason, EngineEvent, TransportOptions};
use vtp_sfu_driver::{DriverConfig, DriverEvent, SfuDriver, SfuHandle};

const PACKETS: u64 = 200;

fn start(workers: usize) -> SfuHandle {
    SfuDriver::start(DriverConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        workers,
        ..DriverConfig::default()
    })
    .unwrap()
}

fn drain(events: &mut tokio::sync::mpsc::UnboundedReceiver<DriverEvent>) -> Vec<DriverEvent> {
    let mut all = Vec::new();
    while let Ok(e) = events.try_recv() {
        all.push(e);
    }
    all
}

#[test]
fn vp8_is_forwarded_from_publisher_to_subscriber() {
    let rt = runtime();
    let sfu = start(1);
    let mut events = sfu.subscribe_events();
    let mut room = Room::open(&rt, &sfu, "room1");
    send_in_all(&mut [&mut room], PACKETS);

    let delivered = room.delivered(PACKETS);
    eprintln!("one worker: {delivered} of {PACKETS} delivered");
    assert!(
        delivered as u64 * 100 >= PACKETS * 95,
        "{delivered} of {PACKETS} packets arrived"
    );
    let (ssrc, _) = room.consumer_stream();
    assert_ne!(ssrc, common::VIDEO_SSRC, "the consumer has its own SSRC");

    let events = drain(&mut events);
    for t in ["room1-send", "room1-recv"] {
        assert!(
            events.contains(&DriverEvent {
                router_id: "room1".into(),
                event: EngineEvent::TransportConnected {
                    transport_id: t.into()
                },
            }),
            "{t} connected: {events:?}"
        );
    }
    let stats = sfu.stats();
    assert_eq!(
        (
            stats.routers,
            stats.transports,
            stats.producers,
            stats.consumers
        ),
        (1, 2, 1, 1)
    );
    assert!(stats.datagrams_in >= PACKETS, "{stats:?}");
    assert!(stats.datagrams_out >= PACKETS, "{stats:?}");
    assert!(sfu.health().running);
    rt.block_on(sfu.shutdown());
}

#[test]
fn two_routers_on_two_workers_both_forward() {
    let rt = runtime();
    let sfu = start(2);
    let mut a = Room::open(&rt, &sfu, "alpha");
    let mut b = Room::open(&rt, &sfu, "beta");
    let (wa, wb) = (
        sfu.router_worker("alpha").unwrap(),
        sfu.router_worker("beta").unwrap(),
    );
    assert_ne!(wa, wb, "routers are spread over the workers");
    send_in_all(&mut [&mut a, &mut b], PACKETS);
    for room in [&a, &b] {
        let delivered = room.delivered(PACKETS);
        eprintln!("{}: {delivered} of {PACKETS} delivered", room.router_id);
        assert!(
            delivered as u64 * 100 >= PACKETS * 95,
            "{}: {delivered} of {PACKETS} packets arrived",
            room.router_id
        );
    }
    let stats = sfu.stats();
    assert_eq!(stats.per_worker.len(), 2);
    for w in &stats.per_worker {
        assert_eq!((w.routers, w.transports), (1, 2), "{stats:?}");
        assert!(w.datagrams_in >= PACKETS, "{stats:?}");
    }
    // A consumer cannot take a producer of another router (worker).
    let caps =
        serde_json::to_value(rt.block_on(sfu.router_rtp_capabilities("alpha")).unwrap()).unwrap();
    let err = rt
        .block_on(sfu.consume("alpha-recv", "x", "beta-video", caps))
        .unwrap_err();
    assert_eq!(err.code(), "bad_request");
    rt.block_on(sfu.shutdown());
}

#[test]
fn unknown_datagrams_are_dropped_and_counted() {
    let rt = runtime();
    let sfu = start(1);
    rt.block_on(sfu.create_router("room")).unwrap();
    rt.block_on(sfu.create_webrtc_transport("room", "t", TransportOptions::default()))
        .unwrap();
    let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
    // RTP from an address no STUN introduced.
    let rtp = [0x80u8, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 7, 1, 2, 3];
    // A STUN binding request for a ufrag nobody has.
    let mut stun = vec![0, 1, 0, 12, 0x21, 0x12, 0xA4, 0x42];
    stun.extend_from_slice(&[9; 12]);
    stun.extend_from_slice(&[0, 6, 0, 7]);
    stun.extend_from_slice(b"nope:xy\0");
    for _ in 0..5 {
        stranger.send_to(&rtp, sfu.local_addr()).unwrap();
        stranger.send_to(&stun, sfu.local_addr()).unwrap();
        stranger.send_to(b"garbage", sfu.local_addr()).unwrap();
    }
    wait_until_blocking(Duration::from_secs(5), "15 datagrams dropped", || {
        sfu.stats().dropped_unknown >= 15
    });
    let stats = sfu.stats();
    assert_eq!(stats.dropped_unknown, 15);
    assert_eq!(stats.datagrams_dropped, 15);
    assert_eq!(stats.datagrams_in, 15);
    assert_eq!(
        stats.per_worker[0].datagrams_in, 0,
        "nothing reached the engine"
    );
    rt.block_on(sfu.shutdown());
}

#[test]
fn errors_keep_engine_codes() {
    let rt = runtime();
    let sfu = start(2);
    let code = |r: Result<(), vtp_sfu::engine::EngineError>| r.unwrap_err().code();
    assert_eq!(
        code(rt.block_on(sfu.connect_transport("nope", serde_json::json!({})))),
        "not_found"
    );
    assert_eq!(code(rt.block_on(sfu.close_producer("nope"))), "not_found");
    assert_eq!(code(rt.block_on(sfu.resume_consumer("nope"))), "not_found");
    assert_eq!(code(rt.block_on(sfu.close_router("nope"))), "not_found");
    let err = rt
        .block_on(sfu.create_webrtc_transport("nope", "t", TransportOptions::default()))
        .unwrap_err();
    assert_eq!(err.code(), "not_found");

    rt.block_on(sfu.create_router("r1")).unwrap();
    rt.block_on(sfu.create_router("r2")).unwrap();
    assert_eq!(
        rt.block_on(sfu.create_router("r1")).unwrap_err().code(),
        "conflict"
    );
    rt.block_on(sfu.create_webrtc_transport("r1", "t", TransportOptions::default()))
        .unwrap();
    // Transport ids are unique across workers too.
    let err = rt
        .block_on(sfu.create_webrtc_transport("r2", "t", TransportOptions::default()))
        .unwrap_err();
    assert_eq!(err.code(), "conflict");
    let err = rt
        .block_on(sfu.connect_transport("t", serde_json::json!({"fingerprints": []})))
        .unwrap_err();
    assert_eq!(err.code(), "bad_request");
    rt.block_on(sfu.shutdown());
}

#[test]
fn closing_a_router_closes_its_transports_with_events() {
    let rt = runtime();
    let sfu = start(1);
    let mut events = sfu.subscribe_events();
    rt.block_on(sfu.create_router("room")).unwrap();
    for t in ["t1", "t2"] {
        rt.block_on(sfu.create_webrtc_transport("room", t, TransportOptions::default()))
            .unwrap();
    }
    assert_eq!(sfu.stats().transports, 2);
    rt.block_on(sfu.close_router("room")).unwrap();
    let events = drain(&mut events);
    for t in ["t1", "t2"] {
        assert!(events.contains(&DriverEvent {
            router_id: "room".into(),
            event: EngineEvent::TransportClosed {
                transport_id: t.into(),
                reason: CloseReason::RouterClosed,
            },
        }));
    }
    let stats = sfu.stats();
    assert_eq!((stats.routers, stats.transports), (0, 0));
    // The ids are free again.
    rt.block_on(sfu.create_router("room")).unwrap();
    rt.block_on(sfu.create_webrtc_transport("room", "t1", TransportOptions::default()))
        .unwrap();
    assert_eq!(
        rt.block_on(sfu.close_transport("t2")).unwrap_err().code(),
        "not_found"
    );
    rt.block_on(sfu.close_transport("t1")).unwrap();
    assert_eq!(sfu.stats().transports, 0);
    rt.block_on(sfu.shutdown());
}

#[test]
fn shutdown_joins_threads_and_closes_the_socket() {
    let rt = runtime();
    let sfu = start(2);
    let addr: SocketAddr = sfu.bound_addr();
    let mut events = sfu.subscribe_events();
    rt.block_on(sfu.create_router("room")).unwrap();
    let other = sfu.clone();
    rt.block_on(sfu.shutdown());
    rt.block_on(other.shutdown()); // idempotent
    assert!(!sfu.health().running);
    assert_eq!(rt.block_on(events.recv()), None, "event stream ended");
    assert_eq!(
        rt.block_on(other.create_router("again"))
            .unwrap_err()
            .code(),
        "internal"
    );
    // The port is free: the socket is closed.
    UdpSocket::bind(addr).expect("port released after shutdown");
}

#[test]
fn dropping_the_last_handle_shuts_down() {
    let sfu = start(2);
    let addr = sfu.bound_addr();
    let clone = sfu.clone();
    drop(sfu);
    UdpSocket::bind(addr).expect_err("still running while a handle lives");
    drop(clone);
    UdpSocket::bind(addr).expect("port released after the last handle");
}

#[test]
fn unspecified_bind_announces_the_host_addresses_or_what_it_is_told() {
    // Nothing announced: the host's reachable interface addresses (a host
    // with none refuses to start, saying what to set).
    match SfuDriver::start(DriverConfig {
        bind: "0.0.0.0:0".parse().unwrap(),
        workers: 1,
        ..DriverConfig::default()
    }) {
        Ok(sfu) => {
            assert!(!sfu.candidates().is_empty());
            for c in sfu.candidates() {
                let ip = c.addr.ip();
                assert!(
                    ip.is_ipv4() && !ip.is_loopback() && !ip.is_unspecified(),
                    "{c:?}"
                );
            }
            assert!(!sfu.announces_only_loopback());
        }
        Err(err) => assert!(err.to_string().contains("--announced-ip"), "{err}"),
    }
    let sfu = SfuDriver::start(DriverConfig {
        bind: "0.0.0.0:0".parse().unwrap(),
        announced_ips: vec![
            "127.0.0.1".parse().unwrap(),
            "192.0.2.5".parse().unwrap(),
            "127.0.0.1".parse().unwrap(),
        ],
        workers: 1,
        ..DriverConfig::default()
    })
    .unwrap();
    assert_eq!(sfu.local_addr().ip().to_string(), "127.0.0.1");
    assert_eq!(sfu.local_addr().port(), sfu.bound_addr().port());
    let tcp = sfu.tcp_addr().expect("ICE-TCP on by default").port();
    let described = vtp_sfu_driver::describe_candidates(sfu.candidates());
    let udp = sfu.bound_addr().port();
    assert_eq!(
        described,
        format!(
            "udp 127.0.0.1:{udp}, udp 192.0.2.5:{udp}, tcp 127.0.0.1:{tcp}, tcp 192.0.2.5:{tcp}"
        )
    );
    let err = SfuDriver::start(DriverConfig {
        bind: "0.0.0.0:0".parse().unwrap(),
        announced_ips: vec!["0.0.0.0".parse().unwrap()],
        workers: 1,
        ..DriverConfig::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("unspecified"), "{err}");
}
