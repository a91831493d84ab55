//! Nodes that serve the SFU control API (docs/protocol.md, "SFU control
//! API"): its REST form by hand, with the documented paths and bodies (the
//! secret, malformed bodies, the event stream), on an SFU node
//! (`--role sfu`) and on an all-in-one node; and media through an API node
//! (`--role api`) that drives a separate SFU node with `RemoteSfu` and
//! hears its events. The operations themselves, on both implementations:
//! `sfu_control.rs`.

use crate::common;

use std::time::Duration;

use common::media::{layers_changed, prefer_spatial, publish, simulcast_call, subscribe};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vtp_client::{MediaPeer, VideoOptions};
use vtp_server::config::{NodeRole, Secret};
use vtp_store::Role;

const SECRET: &str = "sfu-secret-for-tests-32-bytes-long";

/// How long media may take to show what a test waits for.
const MEDIA_WAIT: Duration = Duration::from_secs(10);

/// An API node whose media runs on `node`.
async fn api_node_of(node: &TestSfuNode) -> TestServer {
    TestServer::start_with(|args| {
        args.role = NodeRole::Api;
        args.sfu_url = Some(node.base());
        args.sfu_secret = Some(Secret::new(SECRET));
    })
    .await
}

/// A REST call with the node's secret that must answer `status`; its body.
async fn expect(
    node: &TestSfuNode,
    method: Method,
    path: &str,
    body: Option<Value>,
    status: StatusCode,
) -> Value {
    let (got, answer) = node.call(method.clone(), path, body).await;
    assert_eq!(got, status, "{method} {path}: {answer}");
    answer
}

/// Reads `GET /sfu/v1/events` until `want` events matched `pick`, or
/// panics after a few seconds.
async fn collect_events(
    mut response: reqwest::Response,
    want: usize,
    pick: impl Fn(&Value) -> bool,
) -> Vec<Value> {
    let mut found = Vec::new();
    let mut pending = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while found.len() < want {
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .unwrap_or_else(|_| panic!("only these events came: {found:?}"))
            .expect("stream readable")
            .expect("stream open");
        pending.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = pending.find('\n') {
            let line: String = pending.drain(..=end).collect();
            if let Some(data) = line.strip_prefix("data:") {
                let event: Value = serde_json::from_str(data.trim()).expect("event is JSON");
                if pick(&event) {
                    found.push(event);
                }
            }
        }
    }
    found
}

/// The REST form as docs/protocol.md writes it: every documented path and
/// body by hand, the secret, malformed bodies, the event stream.
#[tokio::test]
async fn the_documented_rest_form_answers_with_the_secret_only() {
    use StatusCode as S;
    let node = TestSfuNode::start(SECRET).await;
    let url = |path: &str| format!("{}{path}", node.base());

    // Without the secret, or with another one: 401 in the API's format.
    let anonymous = node.http.get(url("/sfu/v1/health")).send().await.unwrap();
    assert_eq!(anonymous.status(), S::UNAUTHORIZED);
    let body: Value = anonymous.json().await.unwrap();
    assert_eq!(code(&body), "unauthorized");
    let wrong = node
        .http
        .get(url("/sfu/v1/rooms"))
        .bearer_auth("not-the-secret");
    assert_eq!(wrong.send().await.unwrap().status(), S::UNAUTHORIZED);
    // The node's own probes need nothing; unknown paths are JSON 404s.
    let ready = node.http.get(url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), S::OK);
    let nowhere = expect(&node, Method::GET, "/sfu/v1/nowhere", None, S::NOT_FOUND).await;
    assert_eq!(code(&nowhere), "not_found");

    let health = expect(&node, Method::GET, "/sfu/v1/health", None, S::OK).await;
    assert_eq!(
        (&health["running"], &health["rooms"]),
        (&json!(true), &json!(0))
    );
    let opened = expect(&node, Method::PUT, "/sfu/v1/rooms/r1", None, S::OK).await;
    assert_eq!(opened["roomId"], "r1");
    let router_caps = opened["rtpCapabilities"].clone();

    // Bodies: malformed ones are refused before the SFU sees them.
    let peers = "/sfu/v1/rooms/r1/peers";
    for (body, status, error) in [
        (json!({}), S::BAD_REQUEST, "bad_request"),
        (
            json!({ "peerId": "x", "extra": 1 }),
            S::BAD_REQUEST,
            "bad_request",
        ),
        (json!({ "peerId": 7 }), S::BAD_REQUEST, "bad_request"),
    ] {
        let answer = expect(&node, Method::POST, peers, Some(body), status).await;
        assert_eq!(code(&answer), error);
    }
    let bare = node
        .http
        .post(url(peers))
        .bearer_auth(SECRET)
        .body("peerId=x");
    let bare = bare.send().await.unwrap();
    assert_eq!(bare.status(), S::UNSUPPORTED_MEDIA_TYPE);
    for peer in ["alice", "bob"] {
        let added = expect(
            &node,
            Method::POST,
            peers,
            Some(json!({ "peerId": peer })),
            S::OK,
        )
        .await;
        assert_eq!(
            (&added["peerId"], &added["rtpCapabilities"]),
            (&json!(peer), &router_caps)
        );
    }
    let again = expect(
        &node,
        Method::POST,
        peers,
        Some(json!({ "peerId": "alice" })),
        S::CONFLICT,
    )
    .await;
    assert_eq!(code(&again), "conflict");

    let transports = "/sfu/v1/rooms/r1/transports";
    let sideways = json!({ "peerId": "alice", "direction": "sideways" });
    expect(
        &node,
        Method::POST,
        transports,
        Some(sideways),
        S::BAD_REQUEST,
    )
    .await;
    let send = json!({ "peerId": "alice", "direction": "send" });
    let ta = expect(&node, Method::POST, transports, Some(send), S::OK).await;
    let recv = json!({ "peerId": "bob", "direction": "recv", "enableSctp": true });
    let tb = expect(&node, Method::POST, transports, Some(recv), S::OK).await;
    assert!(tb["sctpParameters"].is_object(), "{tb}");
    let (ta_id, tb_id) = (ta["id"].as_str().unwrap(), tb["id"].as_str().unwrap());
    let t = |id: &str, verb: &str| format!("/sfu/v1/rooms/r1/transports/{id}/{verb}");
    let no_fingerprints = json!({ "dtlsParameters": { "fingerprints": [] } });
    let refused = expect(
        &node,
        Method::POST,
        &t(ta_id, "connect"),
        Some(no_fingerprints),
        S::BAD_REQUEST,
    )
    .await;
    assert_eq!(code(&refused), "bad_request");
    let restarted = expect(&node, Method::POST, &t(ta_id, "restart-ice"), None, S::OK).await;
    assert_ne!(
        restarted["iceParameters"]["usernameFragment"],
        ta["iceParameters"]["usernameFragment"]
    );

    // Produce with the parameters a real client declares.
    let peer = MediaPeer::new();
    let sender = peer.create_send_transport(&ta).await.unwrap();
    let video = sender.produce_video(VideoOptions::default()).unwrap();
    let produce = json!({ "peerId": "alice", "transportId": ta_id, "kind": "video",
        "rtpParameters": video.rtp_parameters(), "appData": { "source": "screen" } });
    let produced = expect(
        &node,
        Method::POST,
        "/sfu/v1/rooms/r1/producers",
        Some(produce),
        S::OK,
    )
    .await;
    assert_eq!(
        (&produced["kind"], &produced["type"]),
        (&json!("video"), &json!("simple"))
    );
    let producer_id = produced["id"].as_str().unwrap().to_owned();
    let caps = MediaPeer::rtp_capabilities(&router_caps).unwrap();
    let consume = json!({ "peerId": "bob", "transportId": tb_id, "producerId": producer_id, "rtpCapabilities": caps });
    let consumed = expect(
        &node,
        Method::POST,
        "/sfu/v1/rooms/r1/consumers",
        Some(consume),
        S::OK,
    )
    .await;
    assert_eq!(
        (&consumed["producerId"], &consumed["producerPaused"]),
        (&json!(producer_id), &json!(false))
    );
    let consumer_id = consumed["id"].as_str().unwrap().to_owned();
    let p = |verb: &str| format!("/sfu/v1/rooms/r1/producers/{producer_id}/{verb}");
    let c = |verb: &str| format!("/sfu/v1/rooms/r1/consumers/{consumer_id}/{verb}");
    for path in [p("pause"), p("resume"), c("resume"), c("pause")] {
        assert_eq!(
            expect(&node, Method::POST, &path, None, S::OK).await,
            json!({})
        );
    }
    let layers = json!({ "spatialLayer": 0, "temporalLayer": 1 });
    assert_eq!(
        expect(&node, Method::POST, &c("layers"), Some(layers), S::OK).await,
        json!({})
    );
    let extra = json!({ "spatialLayer": 1, "extra": true });
    expect(
        &node,
        Method::POST,
        &c("layers"),
        Some(extra),
        S::BAD_REQUEST,
    )
    .await;

    // What the node holds, in the documented shapes.
    let rooms = expect(&node, Method::GET, "/sfu/v1/rooms", None, S::OK).await;
    assert_eq!(
        rooms,
        json!([{ "routerId": "r1", "peers": 2, "transports": 2, "producers": 1, "consumers": 1 }])
    );
    let room = expect(&node, Method::GET, "/sfu/v1/rooms/r1", None, S::OK).await;
    assert_eq!(room["peers"], json!(["alice", "bob"]));
    let consumer = &room["consumers"][0];
    assert_eq!(
        (&consumer["paused"], &consumer["preferredLayers"]),
        (
            &json!(true),
            &json!({ "spatialLayer": 0, "temporalLayer": 1 })
        )
    );

    // Closing, and a peer leaving with what it owns; API nodes hear the
    // consequences on /events.
    let events = node.http.get(url("/sfu/v1/events")).bearer_auth(SECRET);
    let events = events.send().await.unwrap();
    assert_eq!(events.status(), S::OK);
    assert_eq!(
        expect(&node, Method::POST, &c("close"), None, S::OK).await,
        json!({})
    );
    assert_eq!(
        expect(&node, Method::POST, &t(tb_id, "close"), None, S::OK).await,
        json!({})
    );
    expect(
        &node,
        Method::POST,
        "/sfu/v1/rooms/r1/peers/alice/leave",
        None,
        S::OK,
    )
    .await;
    let seen = collect_events(events, 1, |e| {
        e["event"]["producerId"] == producer_id.as_str()
    })
    .await;
    assert_eq!(
        (&seen[0]["routerId"], &seen[0]["event"]["type"]),
        (&json!("r1"), &json!("producerClosed"))
    );
    // Gone with alice's transport.
    let gone = expect(&node, Method::POST, &p("close"), None, S::NOT_FOUND).await;
    assert!(
        gone["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&producer_id),
        "{gone}"
    );
    let left = expect(
        &node,
        Method::POST,
        "/sfu/v1/rooms/r1/peers/alice/leave",
        None,
        S::NOT_FOUND,
    )
    .await;
    assert_eq!(code(&left), "not_found");
    let room = expect(&node, Method::GET, "/sfu/v1/rooms/r1", None, S::OK).await;
    assert_eq!(
        (&room["peers"], &room["transports"], &room["producers"]),
        (&json!(["bob"]), &json!([]), &json!([]))
    );
    assert_eq!(
        expect(&node, Method::DELETE, "/sfu/v1/rooms/r1", None, S::OK).await,
        json!({})
    );
    let gone = expect(&node, Method::GET, "/sfu/v1/rooms/r1", None, S::NOT_FOUND).await;
    assert_eq!(code(&gone), "not_found");
    node.stop().await;
}

#[tokio::test]
async fn an_all_in_one_node_serves_the_control_api_only_with_a_secret() {
    let plain = TestServer::start().await;
    let (status, body) = plain.get("/sfu/v1/health", None).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "not_found"));

    let s = TestServer::start_with(|args| args.sfu_secret = Some(Secret::new(SECRET))).await;
    assert_eq!(
        s.get("/sfu/v1/health", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, health) = s.get("/sfu/v1/health", Some(SECRET)).await;
    assert_eq!(status, StatusCode::OK, "{health}");
    // Rooms joined over Socket.IO show up in the same SFU.
    let (_, teacher) = s.user("t@example.org", Role::Instructor).await;
    let room = s.room(&teacher, json!({})).await;
    let socket = s.socket(&teacher).await;
    join(&socket, &room).await;
    let (_, rooms) = s.get("/sfu/v1/rooms", Some(SECRET)).await;
    assert_eq!(rooms[0]["peers"], 1, "{rooms}");
}

#[tokio::test]
async fn an_api_node_drives_media_on_a_separate_sfu_node() {
    let node = TestSfuNode::start(SECRET).await;
    let s = api_node_of(&node).await;
    let (_, teacher) = s.user("t@example.org", Role::Instructor).await;
    let (_, ann) = s.user("ann@example.org", Role::Student).await;
    let room = s.room(&teacher, json!({})).await;

    let a = publish(&s, &teacher, &room).await;
    let b = subscribe(&s, &ann, &room, &a.ids).await;
    a.video.start();
    a.audio.start();
    wait_until(MEDIA_WAIT, "video and audio reach B", async || {
        b.video.stats().packets > 30 && b.audio.stats().packets > 30
    })
    .await;
    a.video.stop();
    a.audio.stop();
    // What was sent before the stop arrives (or is lost for good).
    let sent = a.video.stats().packets;
    wait_until(MEDIA_WAIT, "B has what A sent", async || {
        b.video.stats().packets * 100 >= sent * 95
    })
    .await;
    let got = b.video.stats();
    assert!(sent > 30, "A sent {sent}");
    assert!(
        got.packets * 100 >= sent * 95,
        "B got {}/{sent}",
        got.packets
    );
    assert_eq!(got.integrity_failures, 0);
    assert!(b.audio.stats().packets > 30, "{:?}", b.audio.stats());

    // The media lives on the SFU node, in one room named by the session.
    let (_, rooms) = node.call(Method::GET, "/sfu/v1/rooms", None).await;
    let rooms = rooms.as_array().unwrap();
    assert_eq!(rooms.len(), 1, "{rooms:?}");
    assert_eq!(
        (
            &rooms[0]["peers"],
            &rooms[0]["producers"],
            &rooms[0]["consumers"]
        ),
        (&json!(2), &json!(2), &json!(2))
    );

    // Preferred layers go through the API node to the SFU node.
    b.socket
        .request(
            "set-preferred-layers",
            json!({ "roomId": room, "consumerId": b.video_id, "spatialLayer": 0 }),
        )
        .await
        .unwrap();

    // ICE restart through signalling: B applies the new credentials and
    // keeps receiving on the same transport.
    let restarted = b
        .socket
        .request(
            "restart-ice",
            json!({ "roomId": room, "transportId": b.transport_id }),
        )
        .await
        .unwrap();
    b.transport
        .restart_ice(&restarted["iceParameters"])
        .unwrap();
    let before = b.video.stats().packets;
    a.video.start();
    wait_until(MEDIA_WAIT, "media after the ICE restart", async || {
        b.video.stats().packets > before + 30
    })
    .await;
    a.video.stop();
    assert!(b.transport.is_connected());

    // A consequence on the SFU node reaches the API node's peers: A closes
    // its video, and B hears that its consumer closed.
    a.socket
        .request(
            "close-producer",
            json!({ "roomId": room, "producerId": a.ids.0 }),
        )
        .await
        .unwrap();
    let closed = b.socket.next_event("consumer-closed", WAIT).await.unwrap();
    assert_eq!(closed["consumerId"], b.video_id);

    // Readiness follows the SFU node.
    assert_eq!(s.get("/ready", None).await.0, StatusCode::OK);
    node.stop().await;
    let (status, ready) = s.get("/ready", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{ready}");
}

/// Layer changes happen on the SFU node and reach the subscriber through
/// the API node (the `/sfu/v1/events` stream), and so does what the
/// publisher needs to send (`producer-layers-needed`).
#[tokio::test]
async fn layer_changes_on_an_sfu_node_reach_the_subscriber() {
    let node = TestSfuNode::start(SECRET).await;
    let s = api_node_of(&node).await;
    let (room, a, b) = simulcast_call(&s).await;
    let first = layers_changed(&b, "told its first layers").await;
    assert_eq!(
        (&first["consumerId"], &first["spatialLayer"]),
        (&b.video_id, &json!(2))
    );
    prefer_spatial(&b, &room, 1).await;
    let changed = layers_changed(&b, "told of the switch").await;
    assert_eq!(changed["spatialLayer"], 1, "{changed}");
    let needed = a
        .socket
        .next_event(
            "producer-layers-needed",
            vtp_sfu::engine::LAYERS_NEEDED_HOLD + common::media::LAYERS_WAIT,
        )
        .await
        .expect("the publisher is told");
    assert_eq!(
        (&needed["producerId"], &needed["maxSpatialLayer"]),
        (&a.ids.0, &json!(1)),
        "{needed}"
    );
    a.video.stop();
}

/// Media statistics after media has flowed over loopback: the SFU node's
/// snapshot carries them, the API node reads them back (`RemoteSfu`) into
/// `get-room-info`, and without the SFU node `get-room-info` still answers,
/// without statistics.
#[tokio::test]
async fn media_statistics_reach_get_room_info_through_an_sfu_node() {
    let node = TestSfuNode::start(SECRET).await;
    let s = api_node_of(&node).await;
    let (room, a, b) = simulcast_call(&s).await;
    a.audio.start();

    // The SFU node's own view: every layer and consumer has statistics
    // once a whole second of media has been counted.
    let (_, rooms) = node.call(Method::GET, "/sfu/v1/rooms", None).await;
    let router = rooms[0]["routerId"].as_str().unwrap().to_owned();
    let path = format!("/sfu/v1/rooms/{router}");
    let snapshot = || node.call(Method::GET, &path, None);
    let counted = |snap: &Value| {
        let streams = snap["producers"].as_array().into_iter().flatten();
        let layers = streams.flat_map(|p| p["layers"].as_array().into_iter().flatten());
        let consumers = snap["consumers"].as_array().into_iter().flatten();
        let all: Vec<&Value> = layers.chain(consumers).collect();
        // Three simulcast layers and the audio's one; B's two consumers.
        all.len() == 6 && all.iter().all(|s| s["stats"]["bitrate"].as_u64() > Some(0))
    };
    wait_until(MEDIA_WAIT, "statistics of every stream", async || {
        counted(&snapshot().await.1)
    })
    .await;
    let (status, snap) = snapshot().await;
    assert_eq!(status, StatusCode::OK, "{snap}");
    let video = snap["producers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == a.ids.0)
        .expect("the video producer");
    let layers = video["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3, "{video}");
    for layer in layers {
        let st = &layer["stats"];
        assert!(st["packets"].as_u64().unwrap() > 0, "{layer}");
        assert!(st["bitrate"].as_u64().unwrap() > 0, "{layer}");
        assert_eq!(st["score"], 10, "no loss on loopback: {layer}");
        assert!(st["jitterMs"].as_f64().unwrap() >= 0.0, "{layer}");
    }
    for consumer in snap["consumers"].as_array().unwrap() {
        let st = &consumer["stats"];
        assert!(st["packets"].as_u64().unwrap() > 0, "{consumer}");
        assert!(st["bitrate"].as_u64().unwrap() > 0, "{consumer}");
        assert_eq!(st["score"], 10, "{consumer}");
    }

    // The subscriber's `get-room-info`, through the API node.
    let info = b
        .socket
        .request("get-room-info", json!({ "roomId": room }))
        .await
        .unwrap();
    let producers = info["producers"].as_array().unwrap();
    assert_eq!(producers.len(), 2, "{info}");
    for p in producers {
        let st = &p["stats"];
        assert!(st["bitrate"].as_u64().unwrap() > 0, "{p}");
        assert_eq!(st["score"], 10, "{p}");
        assert_eq!(st["packetsLost"], 0, "{p}");
        assert!(st["jitterMs"].as_f64().unwrap() >= 0.0, "{p}");
        assert_eq!(
            p["peerId"], info["peers"][0]["peerId"],
            "still a ProducerInfo"
        );
    }
    let video = producers.iter().find(|p| p["kind"] == "video").unwrap();
    let layers = video["stats"]["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3, "simulcast layers: {video}");
    assert!(
        layers.iter().all(|l| l["bitrate"].as_u64().unwrap() > 0),
        "{video}"
    );
    assert!(layers[2]["bitrate"].as_u64() > layers[0]["bitrate"].as_u64());
    let consumers = info["consumers"].as_array().unwrap();
    assert_eq!(consumers.len(), 2, "B's own consumers: {info}");
    let cv = consumers
        .iter()
        .find(|c| c["consumerId"] == b.video_id)
        .expect("the video consumer");
    assert_eq!(
        (&cv["producerId"], &cv["kind"]),
        (&a.ids.0, &json!("video"))
    );
    assert_eq!(cv["paused"], false);
    assert_eq!(cv["preferredLayers"]["spatialLayer"], 2);
    assert!(cv["currentLayers"].is_object(), "{cv}");
    assert!(cv["stats"]["bitrate"].as_u64().unwrap() > 0, "{cv}");
    assert_eq!(cv["stats"]["score"], 10, "{cv}");
    // The publisher has no consumers of its own.
    let own = a
        .socket
        .request("get-room-info", json!({ "roomId": room }))
        .await
        .unwrap();
    assert_eq!(own["consumers"], json!([]));

    // Without the SFU node the answer comes, without statistics.
    a.video.stop();
    a.audio.stop();
    node.stop().await;
    let info = b
        .socket
        .request("get-room-info", json!({ "roomId": room }))
        .await
        .unwrap();
    assert_eq!(info["producers"].as_array().unwrap().len(), 2);
    assert!(info["producers"][0].get("stats").is_none(), "{info}");
    let cv = &info["consumers"][0];
    assert!(
        cv.get("stats").is_none() && cv["producerId"].is_string(),
        "{info}"
    );
}

#[tokio::test]
async fn a_short_sfu_secret_is_refused_at_start() {
    // Refused before anything opens, for every role, without echoing it.
    let dir = vtp_store::testing::TempDir::new("vtp-test-sfu").unwrap();
    let mut args = vtp_server::config::ServeArgs::defaults_for(dir.path().to_path_buf());
    args.role = NodeRole::Sfu;
    args.sfu_secret = Some(Secret::new("short"));
    let err = vtp_server::sfu_node::SfuNode::build(&args)
        .err()
        .expect("refused");
    assert!(err.to_string().contains("at least 32"), "{err}");
    let home = Home::new().await;
    let mut args = home.args();
    args.sfu_secret = Some(Secret::new("short"));
    let err = vtp_server::Server::build(&args)
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("at least 32"), "{err}");
    assert!(!err.to_string().contains("short"), "{err}");
}
