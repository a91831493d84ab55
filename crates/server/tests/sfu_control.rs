//! The SFU control API (docs/protocol.md, "SFU control API"): a media-only node (`--role sfu`)
//! driven over `/sfu/v1`, directly and by an API node (`--role api`).

mod common;

use std::time::Duration;

use common::media::{layers_changed, prefer_spatial, publish, simulcast_call, subscribe};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vtp_client::{MediaPeer, VideoOptions};
use vtp_server::config::{NodeRole, Secret};
use vtp_store::Role;

const SECRET: &str = "sfu-secret-for-tests";

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

#[tokio::test]
async fn the_control_api_needs_the_secret_and_manages_rooms_peers_and_media() {
    let node = TestSfuNode::start(SECRET).await;
    let url = |path: &str| format!("{}{path}", node.base());

    // Without the secret, or with another one: 401 in the API's format.
    let anonymous = node.http.get(url("/sfu/v1/health")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let body: Value = anonymous.json().await.unwrap();
    assert_eq!(code(&body), "unauthorized");
    let wrong = node
        .http
        .get(url("/sfu/v1/rooms"))
        .bearer_auth("not-the-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    // The node's own probes need nothing.
    let ready = node.http.get(url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);

    let (status, health) = node.call(Method::GET, "/sfu/v1/health", None).await;
    assert_eq!(status, StatusCode::OK, "{health}");
    assert_eq!(health["running"], true);
    assert_eq!(health["rooms"], 0);

    // Rooms and peers.
    let (status, opened) = node.call(Method::PUT, "/sfu/v1/rooms/r1", None).await;
    assert_eq!(status, StatusCode::OK, "{opened}");
    let router_caps = opened["rtpCapabilities"].clone();
    assert!(
        router_caps["codecs"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
    );
    let add = |peer: &'static str| {
        node.call(
            Method::POST,
            "/sfu/v1/rooms/r1/peers",
            Some(json!({ "peerId": peer })),
        )
    };
    assert_eq!(add("alice").await.0, StatusCode::OK);
    assert_eq!(add("bob").await.0, StatusCode::OK);
    let (status, again) = add("alice").await;
    assert_eq!((status, code(&again)), (StatusCode::CONFLICT, "conflict"));
    let (status, body) = node
        .call(Method::POST, "/sfu/v1/rooms/r1/peers", Some(json!({})))
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "bad_request")
    );

    // Transports belong to a known peer of the room.
    let node_ref = &node;
    let transport = |room: &str, peer: &str, direction: &str| {
        let path = format!("/sfu/v1/rooms/{room}/transports");
        let body = json!({ "peerId": peer, "direction": direction });
        async move { node_ref.call(Method::POST, &path, Some(body)).await }
    };
    assert_eq!(
        transport("r1", "ghost", "send").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        transport("nope", "alice", "send").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        transport("r1", "alice", "sideways").await.0,
        StatusCode::BAD_REQUEST
    );
    let (status, ta) = transport("r1", "alice", "send").await;
    assert_eq!(status, StatusCode::OK, "{ta}");
    let (_, tb) = transport("r1", "bob", "recv").await;
    let (ta_id, tb_id) = (ta["id"].as_str().unwrap(), tb["id"].as_str().unwrap());

    // Produce with the parameters a real client declares.
    let peer = MediaPeer::new();
    let sender = peer.create_send_transport(&ta).await.unwrap();
    let video = sender.produce_video(VideoOptions::default()).unwrap();
    let produce = |peer_id: &'static str, params: Value| {
        node.call(
            Method::POST,
            "/sfu/v1/rooms/r1/producers",
            Some(json!({ "peerId": peer_id, "transportId": ta_id, "kind": "video", "rtpParameters": params })),
        )
    };
    let (status, _) = produce("bob", video.rtp_parameters().clone()).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "bob does not own alice's transport"
    );
    let (status, bad) = produce("alice", json!({ "codecs": [] })).await;
    assert_eq!(
        (status, code(&bad)),
        (StatusCode::BAD_REQUEST, "bad_request")
    );
    let (_, room) = node.call(Method::GET, "/sfu/v1/rooms/r1", None).await;
    assert_eq!(
        room["producers"],
        json!([]),
        "a refused produce creates nothing"
    );
    let (status, produced) = produce("alice", video.rtp_parameters().clone()).await;
    assert_eq!(status, StatusCode::OK, "{produced}");
    assert_eq!(produced["kind"], "video");
    let producer_id = produced["id"].as_str().unwrap().to_string();

    let caps = MediaPeer::rtp_capabilities(&router_caps).unwrap();
    let (status, consumed) = node
        .call(
            Method::POST,
            "/sfu/v1/rooms/r1/consumers",
            Some(json!({ "peerId": "bob", "transportId": tb_id, "producerId": producer_id, "rtpCapabilities": caps })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{consumed}");
    let consumer_id = consumed["id"].as_str().unwrap().to_string();
    let (status, _) = node
        .call(
            Method::POST,
            "/sfu/v1/rooms/r1/consumers",
            Some(json!({ "peerId": "bob", "transportId": tb_id, "producerId": "nope", "rtpCapabilities": caps })),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // What the node holds.
    let (_, rooms) = node.call(Method::GET, "/sfu/v1/rooms", None).await;
    assert_eq!(
        rooms,
        json!([{ "routerId": "r1", "peers": 2, "transports": 2, "producers": 1, "consumers": 1 }])
    );
    let (_, room) = node.call(Method::GET, "/sfu/v1/rooms/r1", None).await;
    assert_eq!(room["peers"], json!(["alice", "bob"]));
    let alice_transport = room["transports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == ta_id)
        .unwrap()
        .clone();
    assert_eq!(
        (&alice_transport["peerId"], &alice_transport["direction"]),
        (&json!("alice"), &json!("send"))
    );

    // An object of another room is unknown there.
    node.call(Method::PUT, "/sfu/v1/rooms/r2", None).await;
    let (status, _) = node
        .call(
            Method::POST,
            &format!("/sfu/v1/rooms/r2/producers/{producer_id}/pause"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = node
        .call(
            Method::POST,
            &format!("/sfu/v1/rooms/r1/producers/{producer_id}/pause"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // Preferred layers: the consumer's own room only, values 0 to 2.
    let layers = format!("/sfu/v1/rooms/r1/consumers/{consumer_id}/layers");
    for (room_path, body, want) in [
        (layers.clone(), json!({ "spatialLayer": 1 }), StatusCode::OK),
        (
            layers.clone(),
            json!({ "spatialLayer": 0, "temporalLayer": 1 }),
            StatusCode::OK,
        ),
        (
            layers.replace("/r1/", "/r2/"),
            json!({ "spatialLayer": 1 }),
            StatusCode::NOT_FOUND,
        ),
        (
            layers.clone(),
            json!({ "spatialLayer": 7 }),
            StatusCode::BAD_REQUEST,
        ),
        (
            layers.clone(),
            json!({ "spatialLayer": 1, "extra": true }),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (status, answer) = node
            .call(Method::POST, &room_path, Some(body.clone()))
            .await;
        assert_eq!(status, want, "{room_path} {body}: {answer}");
    }

    let (_, room) = node.call(Method::GET, "/sfu/v1/rooms/r1", None).await;
    assert_eq!(room["producers"][0]["paused"], true);
    assert_eq!(room["consumers"][0]["producerPaused"], true);

    // ICE restart: new credentials for the same transport.
    let (status, restarted) = node
        .call(
            Method::POST,
            &format!("/sfu/v1/rooms/r1/transports/{ta_id}/restart-ice"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{restarted}");
    assert_ne!(
        restarted["iceParameters"]["usernameFragment"],
        ta["iceParameters"]["usernameFragment"]
    );

    // A peer leaving closes what it owns; API nodes hear it on /events.
    let events = node
        .http
        .get(url("/sfu/v1/events"))
        .bearer_auth(SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), StatusCode::OK);
    let (status, _) = node
        .call(Method::POST, "/sfu/v1/rooms/r1/peers/alice/leave", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let seen = collect_events(events, 2, |e| {
        e["event"]["producerId"] == producer_id.as_str()
    })
    .await;
    let types: Vec<&Value> = seen.iter().map(|e| &e["event"]["type"]).collect();
    assert!(types.contains(&&json!("producerClosed")), "{seen:?}");
    let consumer_closed = seen
        .iter()
        .find(|e| e["event"]["type"] == "consumerClosed")
        .unwrap_or_else(|| panic!("{seen:?}"));
    assert_eq!(consumer_closed["event"]["consumerId"], consumer_id.as_str());
    assert_eq!(consumer_closed["routerId"], "r1");
    let (_, room) = node.call(Method::GET, "/sfu/v1/rooms/r1", None).await;
    assert_eq!(room["peers"], json!(["bob"]));
    assert_eq!(room["transports"].as_array().unwrap().len(), 1);
    assert_eq!(
        (&room["producers"], &room["consumers"]),
        (&json!([]), &json!([]))
    );
    let (status, _) = node
        .call(Method::POST, "/sfu/v1/rooms/r1/peers/alice/leave", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, _) = node.call(Method::DELETE, "/sfu/v1/rooms/r1", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, gone) = node.call(Method::GET, "/sfu/v1/rooms/r1", None).await;
    assert_eq!((status, code(&gone)), (StatusCode::NOT_FOUND, "not_found"));
    node.stop().await;
}

#[tokio::test]
async fn an_api_node_drives_media_on_a_separate_sfu_node() {
    let node = TestSfuNode::start(SECRET).await;
    let s = TestServer::start_with(|args| {
        args.role = NodeRole::Api;
        args.sfu_url = Some(node.base());
        args.sfu_secret = Some(Secret::new(SECRET));
    })
    .await;
    let (_, teacher) = s.user("t@example.org", Role::Instructor).await;
    let (_, ann) = s.user("ann@example.org", Role::Student).await;
    let room = s.room(&teacher, json!({})).await;

    let a = publish(&s, &teacher, &room).await;
    let b = subscribe(&s, &ann, &room, &a.ids).await;
    a.video.start();
    a.audio.start();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    a.video.stop();
    a.audio.stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (sent, got) = (a.video.stats().packets, b.video.stats());
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
    tokio::time::sleep(Duration::from_millis(1500)).await;
    a.video.stop();
    assert!(
        b.video.stats().packets > before + 30,
        "media after the ICE restart: {} then {}",
        before,
        b.video.stats().packets
    );
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
    let s = TestServer::start_with(|args| {
        args.role = NodeRole::Api;
        args.sfu_url = Some(node.base());
        args.sfu_secret = Some(Secret::new(SECRET));
    })
    .await;
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
    let s = TestServer::start_with(|args| {
        args.role = NodeRole::Api;
        args.sfu_url = Some(node.base());
        args.sfu_secret = Some(Secret::new(SECRET));
    })
    .await;
    let (room, a, b) = simulcast_call(&s).await;
    a.audio.start();
    tokio::time::sleep(Duration::from_millis(3500)).await;

    // The SFU node's own view: every layer and consumer has statistics.
    let (_, rooms) = node.call(Method::GET, "/sfu/v1/rooms", None).await;
    let router = rooms[0]["routerId"].as_str().unwrap().to_owned();
    let (status, snap) = node
        .call(Method::GET, &format!("/sfu/v1/rooms/{router}"), None)
        .await;
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
