//! The SFU control API (docs/protocol.md, "SFU control API").
//!
//! One table of cases ([`cases`]) runs against both implementations of
//! `SfuControl`: the driver in this process (`SfuHandle`) and `RemoteSfu`
//! talking HTTP to a real `--role sfu` node on loopback (whose routes hand
//! the requests to its own driver). The REST form by hand, with the
//! documented paths and bodies, and media through an API node and an SFU
//! node: `sfu_node.rs`.

use crate::common;

use common::*;
use serde_json::{Value, json};
use vtp_client::MediaPeer;
use vtp_server::config::Secret;
use vtp_server::sfu_api::RemoteSfu;
use vtp_sfu::engine::{
    ConsumerInfo, ProducerInfo, RouterSnapshot, RouterSummary, TransportDirection, TransportInfo,
};
use vtp_sfu::rtp::MediaKind;
use vtp_sfu_driver::control::{Connect, Done, IceRestarted, NewPeer, PeerAdded, RoomOpened};
use vtp_sfu_driver::{
    Consume, CreateTransport, DriverConfig, PreferredLayers, Produce, SfuControl, SfuDriver,
    SfuErrorCode, SfuHealth, SfuRequest, SfuResponse,
};

const SECRET: &str = "sfu-secret-for-tests-32-bytes-long";

/// What the cases learn as they go (the SFU makes the ids).
#[derive(Debug, Default)]
struct Learnt {
    router_caps: Value,
    send: String,
    send_ufrag: String,
    recv: String,
    producer: String,
    consumer: String,
}

/// One call and what must come of it.
struct Case {
    what: &'static str,
    request: fn(&Learnt) -> SfuRequest,
    expect: Expect,
}

enum Expect {
    /// A success, checked (and what it tells kept) by the function.
    Answer(fn(SfuResponse, &mut Learnt)),
    Refused(SfuErrorCode),
}

fn ok(
    what: &'static str,
    request: fn(&Learnt) -> SfuRequest,
    check: fn(SfuResponse, &mut Learnt),
) -> Case {
    Case {
        what,
        request,
        expect: Expect::Answer(check),
    }
}

fn refused(what: &'static str, request: fn(&Learnt) -> SfuRequest, code: SfuErrorCode) -> Case {
    Case {
        what,
        request,
        expect: Expect::Refused(code),
    }
}

fn done(answer: SfuResponse, _: &mut Learnt) {
    assert_eq!(answer, SfuResponse::Done(Done {}));
}

fn room(answer: SfuResponse) -> RouterSnapshot {
    answer.try_into().expect("a room snapshot")
}

fn r1() -> String {
    "r1".to_owned()
}

fn transport_of(peer: &str, direction: TransportDirection) -> SfuRequest {
    SfuRequest::CreateTransport {
        room_id: r1(),
        body: CreateTransport {
            peer_id: peer.to_owned(),
            direction,
            enable_sctp: false,
        },
    }
}

fn produce_as(peer: &str, transport: &str, rtp_parameters: Value) -> SfuRequest {
    SfuRequest::Produce {
        room_id: r1(),
        body: Produce {
            peer_id: peer.to_owned(),
            transport_id: transport.to_owned(),
            kind: MediaKind::Video,
            rtp_parameters,
            app_data: json!({ "source": "camera" }),
        },
    }
}

fn consume_of(learnt: &Learnt, producer: &str) -> SfuRequest {
    SfuRequest::Consume {
        room_id: r1(),
        body: Consume {
            peer_id: "bob".into(),
            transport_id: learnt.recv.clone(),
            producer_id: producer.to_owned(),
            rtp_capabilities: MediaPeer::rtp_capabilities(&learnt.router_caps)
                .expect("receive capabilities"),
        },
    }
}

fn layers(room_id: &str, learnt: &Learnt, spatial_layer: u8) -> SfuRequest {
    SfuRequest::SetConsumerLayers {
        room_id: room_id.to_owned(),
        consumer_id: learnt.consumer.clone(),
        body: PreferredLayers {
            spatial_layer,
            temporal_layer: None,
        },
    }
}

/// `rtpParameters` of a VP8 camera, as a browser declares them.
fn vp8_parameters() -> Value {
    json!({
        "mid": "0",
        "codecs": [
            { "mimeType": "video/VP8", "payloadType": 96, "clockRate": 90000,
              "rtcpFeedback": [{ "type": "nack" }, { "type": "nack", "parameter": "pli" }] },
            { "mimeType": "video/rtx", "payloadType": 97, "clockRate": 90000,
              "parameters": { "apt": 96 } }
        ],
        "headerExtensions": [{ "uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": 9 }],
        "encodings": [{ "ssrc": 1111, "rtx": { "ssrc": 2222 } }],
        "rtcp": { "cname": "alice" }
    })
}

/// Every operation, its refusals and what it changed, in one order.
fn cases() -> Vec<Case> {
    use SfuErrorCode::{BadRequest, Conflict, NotFound};
    use SfuRequest as R;
    vec![
        ok(
            "health of an empty SFU",
            |_| R::Health {},
            |a, _| {
                let h: SfuHealth = a.try_into().unwrap();
                assert!(h.running);
                assert_eq!((h.rooms, h.peers, h.transports), (0, 0, 0), "{h:?}");
            },
        ),
        ok(
            "no rooms",
            |_| R::Rooms {},
            |a, _| {
                assert_eq!(Vec::<RouterSummary>::try_from(a).unwrap(), vec![]);
            },
        ),
        refused("a room not open", |_| R::Room { room_id: r1() }, NotFound),
        ok(
            "open a room",
            |_| R::OpenRoom { room_id: r1() },
            |a, l| {
                let opened: RoomOpened = a.try_into().unwrap();
                assert_eq!(opened.room_id, "r1");
                assert!(!opened.rtp_capabilities.codecs.is_empty());
                l.router_caps = serde_json::to_value(opened.rtp_capabilities).unwrap();
            },
        ),
        ok(
            "open it again (no change)",
            |_| R::OpenRoom { room_id: r1() },
            |a, l| {
                let opened: RoomOpened = a.try_into().unwrap();
                assert_eq!(
                    serde_json::to_value(opened.rtp_capabilities).unwrap(),
                    l.router_caps
                );
            },
        ),
        ok(
            "add alice",
            |_| R::AddPeer {
                room_id: r1(),
                body: NewPeer {
                    peer_id: "alice".into(),
                },
            },
            |a, l| {
                let added: PeerAdded = a.try_into().unwrap();
                assert_eq!(added.peer_id, "alice");
                assert_eq!(
                    serde_json::to_value(added.rtp_capabilities).unwrap(),
                    l.router_caps
                );
            },
        ),
        ok(
            "add bob",
            |_| R::AddPeer {
                room_id: r1(),
                body: NewPeer {
                    peer_id: "bob".into(),
                },
            },
            |a, _| {
                assert_eq!(PeerAdded::try_from(a).unwrap().peer_id, "bob");
            },
        ),
        refused(
            "add alice twice",
            |_| R::AddPeer {
                room_id: r1(),
                body: NewPeer {
                    peer_id: "alice".into(),
                },
            },
            Conflict,
        ),
        refused(
            "a transport of a peer not in the room",
            |_| transport_of("ghost", TransportDirection::Send),
            NotFound,
        ),
        refused(
            "a transport in a room not open",
            |_| R::CreateTransport {
                room_id: "nope".into(),
                body: CreateTransport {
                    peer_id: "alice".into(),
                    direction: TransportDirection::Send,
                    enable_sctp: false,
                },
            },
            NotFound,
        ),
        ok(
            "alice's send transport",
            |_| transport_of("alice", TransportDirection::Send),
            |a, l| {
                let t: TransportInfo = a.try_into().unwrap();
                let protocols: Vec<&str> = t
                    .ice_candidates
                    .iter()
                    .map(|c| c.protocol.as_str())
                    .collect();
                assert_eq!(protocols, ["udp", "tcp"]);
                assert!(t.sctp_parameters.is_none());
                (l.send, l.send_ufrag) = (t.id, t.ice_parameters.username_fragment);
            },
        ),
        ok(
            "bob's receive transport",
            |_| transport_of("bob", TransportDirection::Recv),
            |a, l| {
                let t: TransportInfo = a.try_into().unwrap();
                assert_ne!(t.id, l.send);
                l.recv = t.id;
            },
        ),
        refused(
            "bob produces on alice's transport",
            |l| produce_as("bob", &l.send, vp8_parameters()),
            NotFound,
        ),
        refused(
            "parameters without codecs",
            |l| produce_as("alice", &l.send, json!({ "codecs": [] })),
            BadRequest,
        ),
        ok(
            "a refused produce created nothing",
            |_| R::Room { room_id: r1() },
            |a, l| {
                let room = room(a);
                assert_eq!(room.peers, ["alice", "bob"]);
                assert!(room.producers.is_empty());
                let alice = room
                    .transports
                    .iter()
                    .find(|t| t.id == l.send)
                    .expect("alice's transport");
                assert_eq!(
                    (alice.peer_id.as_deref(), alice.direction),
                    (Some("alice"), Some(TransportDirection::Send))
                );
            },
        ),
        ok(
            "alice produces",
            |l| produce_as("alice", &l.send, vp8_parameters()),
            |a, l| {
                let p: ProducerInfo = a.try_into().unwrap();
                assert_eq!(p.kind, MediaKind::Video);
                l.producer = p.id;
            },
        ),
        refused(
            "consume an unknown producer",
            |l| consume_of(l, "nope"),
            NotFound,
        ),
        ok(
            "bob consumes it",
            |l| consume_of(l, &l.producer),
            |a, l| {
                let c: ConsumerInfo = a.try_into().unwrap();
                assert_eq!(
                    (c.producer_id.as_str(), c.kind, c.producer_paused),
                    (l.producer.as_str(), MediaKind::Video, false)
                );
                l.consumer = c.id;
            },
        ),
        ok(
            "the consumer starts paused",
            |_| R::Room { room_id: r1() },
            |a, _| {
                let room = room(a);
                assert!(
                    room.consumers[0].paused && !room.producers[0].paused,
                    "{room:?}"
                );
            },
        ),
        ok(
            "resume the consumer",
            |l| R::ResumeConsumer {
                room_id: r1(),
                consumer_id: l.consumer.clone(),
            },
            done,
        ),
        ok(
            "the rooms, counted",
            |_| R::Rooms {},
            |a, _| {
                let rooms = Vec::<RouterSummary>::try_from(a).unwrap();
                let counts: Vec<_> = rooms
                    .iter()
                    .map(|r| {
                        (
                            r.router_id.as_str(),
                            r.peers,
                            r.transports,
                            r.producers,
                            r.consumers,
                        )
                    })
                    .collect();
                assert_eq!(counts, [("r1", 2, 2, 1, 1)]);
            },
        ),
        ok(
            "a second room",
            |_| R::OpenRoom {
                room_id: "r2".into(),
            },
            |a, _| {
                assert_eq!(RoomOpened::try_from(a).unwrap().room_id, "r2");
            },
        ),
        refused(
            "pause a producer named with another room",
            |l| R::PauseProducer {
                room_id: "r2".into(),
                producer_id: l.producer.clone(),
            },
            NotFound,
        ),
        ok(
            "pause the producer",
            |l| R::PauseProducer {
                room_id: r1(),
                producer_id: l.producer.clone(),
            },
            done,
        ),
        ok(
            "paused, and its consumer knows",
            |_| R::Room { room_id: r1() },
            |a, _| {
                let room = room(a);
                assert!(room.producers[0].paused);
                let c = &room.consumers[0];
                assert!(c.producer_paused && !c.paused, "{c:?}");
            },
        ),
        ok(
            "resume the producer",
            |l| R::ResumeProducer {
                room_id: r1(),
                producer_id: l.producer.clone(),
            },
            done,
        ),
        ok(
            "the consumer's preferred layers",
            |l| layers("r1", l, 1),
            done,
        ),
        refused(
            "layers named with another room",
            |l| layers("r2", l, 1),
            NotFound,
        ),
        refused("layers above 2", |l| layers("r1", l, 7), BadRequest),
        ok(
            "pause the consumer",
            |l| R::PauseConsumer {
                room_id: r1(),
                consumer_id: l.consumer.clone(),
            },
            done,
        ),
        ok(
            "resumed producer, paused consumer, layer 1",
            |_| R::Room { room_id: r1() },
            |a, _| {
                let room = room(a);
                assert!(!room.producers[0].paused);
                let c = &room.consumers[0];
                assert!(c.paused && !c.producer_paused, "{c:?}");
                assert_eq!(c.preferred_layers.spatial_layer, 1);
            },
        ),
        refused(
            "DTLS parameters without fingerprints",
            |l| R::ConnectTransport {
                room_id: r1(),
                transport_id: l.send.clone(),
                body: Connect {
                    dtls_parameters: json!({ "fingerprints": [] }),
                },
            },
            BadRequest,
        ),
        refused(
            "connect a transport named with another room",
            |l| R::ConnectTransport {
                room_id: "r2".into(),
                transport_id: l.send.clone(),
                body: Connect {
                    dtls_parameters: json!({}),
                },
            },
            NotFound,
        ),
        ok(
            "ICE restart: new credentials",
            |l| R::RestartIce {
                room_id: r1(),
                transport_id: l.send.clone(),
            },
            |a, l| {
                let restarted: IceRestarted = a.try_into().unwrap();
                assert_ne!(restarted.ice_parameters.username_fragment, l.send_ufrag);
            },
        ),
        refused(
            "ICE restart of an unknown transport",
            |_| R::RestartIce {
                room_id: r1(),
                transport_id: "nope".into(),
            },
            NotFound,
        ),
        ok(
            "close the consumer",
            |l| R::CloseConsumer {
                room_id: r1(),
                consumer_id: l.consumer.clone(),
            },
            done,
        ),
        refused(
            "close it again",
            |l| R::CloseConsumer {
                room_id: r1(),
                consumer_id: l.consumer.clone(),
            },
            NotFound,
        ),
        ok(
            "close the producer",
            |l| R::CloseProducer {
                room_id: r1(),
                producer_id: l.producer.clone(),
            },
            done,
        ),
        ok(
            "close bob's transport",
            |l| R::CloseTransport {
                room_id: r1(),
                transport_id: l.recv.clone(),
            },
            done,
        ),
        ok(
            "only alice's transport is left",
            |_| R::Room { room_id: r1() },
            |a, l| {
                let room = room(a);
                assert!(
                    room.producers.is_empty() && room.consumers.is_empty(),
                    "{room:?}"
                );
                let ids: Vec<&str> = room.transports.iter().map(|t| t.id.as_str()).collect();
                assert_eq!(ids, [l.send.as_str()]);
            },
        ),
        ok(
            "alice leaves",
            |_| R::RemovePeer {
                room_id: r1(),
                peer_id: "alice".into(),
            },
            done,
        ),
        refused(
            "alice leaves again",
            |_| R::RemovePeer {
                room_id: r1(),
                peer_id: "alice".into(),
            },
            NotFound,
        ),
        ok(
            "her transport went with her",
            |_| R::Room { room_id: r1() },
            |a, _| {
                let room = room(a);
                assert_eq!(room.peers, ["bob"]);
                assert!(room.transports.is_empty());
            },
        ),
        ok(
            "health counts what is open",
            |_| R::Health {},
            |a, _| {
                let h: SfuHealth = a.try_into().unwrap();
                assert_eq!(
                    (h.rooms, h.peers, h.transports, h.producers),
                    (2, 1, 0, 0),
                    "{h:?}"
                );
            },
        ),
        ok("close the room", |_| R::CloseRoom { room_id: r1() }, done),
        refused(
            "a closed room is unknown",
            |_| R::Room { room_id: r1() },
            NotFound,
        ),
        refused(
            "close it again",
            |_| R::CloseRoom { room_id: r1() },
            NotFound,
        ),
        ok(
            "one room left",
            |_| R::Rooms {},
            |a, _| {
                let rooms = Vec::<RouterSummary>::try_from(a).unwrap();
                let ids: Vec<&str> = rooms.iter().map(|r| r.router_id.as_str()).collect();
                assert_eq!(ids, ["r2"]);
            },
        ),
    ]
}

/// Runs every case, in order, against `sfu`.
async fn run_cases(implementation: &str, sfu: &dyn SfuControl) {
    let mut learnt = Learnt::default();
    let mut operations = std::collections::BTreeSet::new();
    for case in cases() {
        let request = (case.request)(&learnt);
        operations.insert(request.route().op);
        // Printed so that a failing check says which case it was.
        eprintln!("{implementation}: {}", case.what);
        match (case.expect, sfu.call(request.clone()).await) {
            (Expect::Answer(check), Ok(answer)) => check(answer, &mut learnt),
            (Expect::Refused(code), Err(e)) => {
                assert_eq!(e.code, code, "{implementation}: {}: {e}", case.what)
            }
            (_, result) => panic!(
                "{implementation}: {}: {request:?} gave {result:?}",
                case.what
            ),
        }
    }
    assert_eq!(
        operations.len(),
        SfuRequest::ROUTES.len(),
        "the cases call every operation: {operations:?}"
    );
}

#[tokio::test]
async fn the_cases_hold_for_the_sfu_in_this_process() {
    let sfu = SfuDriver::start(DriverConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        workers: 1,
        ..DriverConfig::default()
    })
    .unwrap();
    run_cases("in process", &sfu).await;
    // Taps hand packets over in this process only.
    let tap = sfu.open_tap("r2", "nope").await.unwrap_err();
    assert_eq!(tap.code, SfuErrorCode::NotFound);
    sfu.shutdown().await;
}

#[tokio::test]
async fn the_cases_hold_over_http_for_a_remote_sfu_node() {
    let node = TestSfuNode::start(SECRET).await;
    let remote = RemoteSfu::new(&node.base(), Secret::new(SECRET)).unwrap();
    run_cases("over HTTP", &remote).await;
    let tap = remote.open_tap("r2", "nope").await.unwrap_err();
    assert_eq!(tap.code, SfuErrorCode::Unavailable);
    // The wrong secret is refused as such; a node that is gone is
    // `unavailable`.
    let stranger = RemoteSfu::new(&node.base(), Secret::new("not-the-secret")).unwrap();
    assert_eq!(
        stranger.health().await.unwrap_err().code,
        SfuErrorCode::Unauthorized
    );
    let base = node.base();
    node.stop().await;
    let gone = RemoteSfu::new(&base, Secret::new(SECRET)).unwrap();
    assert_eq!(
        gone.rooms().await.unwrap_err().code,
        SfuErrorCode::Unavailable
    );
}
