//! The media requests of docs/protocol.md over Socket.IO, with the real SFU behind
//! them, using the parameters the public mediasoup-client sends from
//! Chromium: ownership, permissions, notifications and close cascades.
//! (Media flowing over UDP is covered by the driver's and engine's tests.)

use crate::common;

use common::*;
use serde_json::{Value, json};
use vtp_client::SocketIoClient;
use vtp_store::Role;

use common::chromium_fixture as fixture;

async fn transport(s: &SocketIoClient, room: &str, direction: &str) -> Value {
    s.request(
        "create-transport",
        json!({ "roomId": room, "direction": direction }),
    )
    .await
    .expect("create-transport")
}

#[tokio::test]
async fn publish_consume_pause_and_close() {
    let s = TestServer::start().await;
    let (_, teacher) = s.user("t@example.org", Role::Instructor).await;
    let (_, ann) = s.user("ann@example.org", Role::Student).await;
    let room = s.room(&teacher, json!({})).await;
    let t = s.socket(&teacher).await;
    let tj = join(&t, &room).await;
    let a = s.socket(&ann).await;
    let aj = join(&a, &room).await;

    // The teacher publishes camera and microphone.
    let send = transport(&t, &room, "send").await;
    assert_eq!(send["iceParameters"]["iceLite"], true);
    assert_eq!(send["iceCandidates"][0]["protocol"], "udp");
    assert_eq!(
        send["dtlsParameters"]["fingerprints"][0]["algorithm"],
        "sha-256"
    );
    let send_id = send["id"].as_str().unwrap();
    let dtls = fixture()["rid-simulcast"]["connect"]["dtlsParameters"].clone();
    t.request(
        "connect-transport",
        json!({ "roomId": room, "transportId": send_id, "dtlsParameters": dtls }),
    )
    .await
    .unwrap();
    let video = t
        .request("produce", json!({ "roomId": room, "transportId": send_id, "kind": "video", "rtpParameters": produce_params("video"), "appData": { "source": "camera" } }))
        .await
        .unwrap();
    let audio = t
        .request("produce", json!({ "roomId": room, "transportId": send_id, "kind": "audio", "rtpParameters": produce_params("audio") }))
        .await
        .unwrap();
    let announced = a.next_event("new-producer", WAIT).await.unwrap();
    assert_eq!(
        (
            &announced["producerId"],
            &announced["peerId"],
            &announced["kind"]
        ),
        (&video["id"], &tj["peerId"], &json!("video"))
    );
    assert_eq!(announced["appData"]["source"], "camera");
    a.next_event("new-producer", WAIT).await.unwrap();

    // Producers are part of the room's state.
    let info = a
        .request("get-room-info", json!({ "roomId": room }))
        .await
        .unwrap();
    assert_eq!(info["producers"].as_array().unwrap().len(), 2);

    // The student consumes the video.
    let recv = transport(&a, &room, "recv").await;
    let recv_id = recv["id"].as_str().unwrap();
    let caps = fixture()["deviceRtpCapabilities"].clone();
    let consumer = a
        .request("consume", json!({ "roomId": room, "transportId": recv_id, "producerId": video["id"], "rtpCapabilities": caps }))
        .await
        .unwrap();
    assert_eq!(
        (
            &consumer["producerId"],
            &consumer["kind"],
            &consumer["producerPaused"]
        ),
        (&video["id"], &json!("video"), &json!(false))
    );
    assert_eq!(
        consumer["rtpParameters"]["encodings"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "one layer for a simulcast producer"
    );
    let consumer_id = consumer["id"].as_str().unwrap();
    a.request(
        "resume-consumer",
        json!({ "roomId": room, "consumerId": consumer_id }),
    )
    .await
    .unwrap();
    a.request(
        "set-preferred-layers",
        json!({ "roomId": room, "consumerId": consumer_id, "spatialLayer": 1 }),
    )
    .await
    .unwrap();

    // Only owners touch their objects.
    assert_eq!(
        refused(
            a.request(
                "pause-producer",
                json!({ "roomId": room, "producerId": video["id"] })
            )
            .await
        ),
        "not_found"
    );
    assert_eq!(
        refused(
            t.request(
                "pause-consumer",
                json!({ "roomId": room, "consumerId": consumer_id })
            )
            .await
        ),
        "not_found"
    );
    assert_eq!(
        refused(
            a.request(
                "connect-transport",
                json!({ "roomId": room, "transportId": send_id, "dtlsParameters": {} })
            )
            .await
        ),
        "not_found"
    );
    assert_eq!(refused(a.request("produce", json!({ "roomId": room, "transportId": recv_id, "kind": "audio", "rtpParameters": produce_params("audio") })).await), "bad_request", "a receive transport does not produce");

    // Pausing a producer tells the room; closing it closes its consumers.
    t.request(
        "pause-producer",
        json!({ "roomId": room, "producerId": video["id"] }),
    )
    .await
    .unwrap();
    assert_eq!(
        a.next_event("producer-paused", WAIT).await.unwrap()["producerId"],
        video["id"]
    );
    t.request(
        "resume-producer",
        json!({ "roomId": room, "producerId": video["id"] }),
    )
    .await
    .unwrap();
    assert_eq!(
        a.next_event("producer-resumed", WAIT).await.unwrap()["producerId"],
        video["id"]
    );
    t.request(
        "close-producer",
        json!({ "roomId": room, "producerId": video["id"] }),
    )
    .await
    .unwrap();
    assert_eq!(
        a.next_event("producer-closed", WAIT).await.unwrap(),
        json!({ "producerId": video["id"], "peerId": tj["peerId"] })
    );
    let closed = a.next_event("consumer-closed", WAIT).await.unwrap();
    assert_eq!(
        (&closed["consumerId"], &closed["producerId"]),
        (&json!(consumer_id), &video["id"])
    );

    // A participant cannot mute anyone.
    assert_eq!(
        refused(
            a.request(
                "host-action",
                json!({ "roomId": room, "action": "mute", "peerId": tj["peerId"] })
            )
            .await
        ),
        "forbidden"
    );

    // When the teacher leaves, the room hears that the microphone is gone.
    t.request("leave-room", json!({ "roomId": room }))
        .await
        .unwrap();
    assert_eq!(
        a.next_event("producer-closed", WAIT).await.unwrap()["producerId"],
        audio["id"]
    );
    assert_eq!(
        a.next_event("peer-left", WAIT).await.unwrap()["peerId"],
        tj["peerId"]
    );
    assert!(
        aj["peers"][0]["producers"].as_array().unwrap().is_empty(),
        "joined before anything was published"
    );
}

#[tokio::test]
async fn host_mute_pauses_audio_and_settings_limit_students() {
    let s = TestServer::start().await;
    let (_, teacher) = s.user("t@example.org", Role::Instructor).await;
    let (_, ann) = s.user("ann@example.org", Role::Student).await;
    let room = s
        .room(&teacher, json!({ "allowStudentVideo": false }))
        .await;
    let t = s.socket(&teacher).await;
    join(&t, &room).await;
    let a = s.socket(&ann).await;
    let aj = join(&a, &room).await;
    let send = transport(&a, &room, "send").await;
    let send_id = send["id"].as_str().unwrap();

    let video = a.request("produce", json!({ "roomId": room, "transportId": send_id, "kind": "video", "rtpParameters": produce_params("video") })).await;
    assert_eq!(
        refused(video),
        "forbidden",
        "students may not publish video here"
    );
    let screen = a
        .request("produce", json!({ "roomId": room, "transportId": send_id, "kind": "video", "rtpParameters": produce_params("video"), "appData": { "source": "screen" } }))
        .await;
    assert_eq!(
        refused(screen),
        "forbidden",
        "nor share their screen (default)"
    );
    let mic = a.request("produce", json!({ "roomId": room, "transportId": send_id, "kind": "audio", "rtpParameters": produce_params("audio") })).await.unwrap();
    t.next_event("new-producer", WAIT).await.unwrap();

    t.request(
        "host-action",
        json!({ "roomId": room, "action": "mute", "peerId": aj["peerId"] }),
    )
    .await
    .unwrap();
    let paused = a.next_event("producer-paused", WAIT).await.unwrap();
    assert_eq!(
        (&paused["producerId"], &paused["peerId"]),
        (&mic["id"], &aj["peerId"])
    );
    let info = t
        .request("get-room-info", json!({ "roomId": room }))
        .await
        .unwrap();
    assert_eq!(info["producers"][0]["paused"], true);

    // A promoted presenter may publish video.
    t.request(
        "host-action",
        json!({ "roomId": room, "action": "promote", "peerId": aj["peerId"] }),
    )
    .await
    .unwrap();
    a.next_event("role-changed", WAIT).await.unwrap();
    a.request("produce", json!({ "roomId": room, "transportId": send_id, "kind": "video", "rtpParameters": produce_params("video") })).await.expect("presenters publish");
}

#[tokio::test]
async fn malformed_media_requests_change_nothing() {
    let s = TestServer::start().await;
    let (_, teacher) = s.user("t@example.org", Role::Instructor).await;
    let room = s.room(&teacher, json!({})).await;
    let t = s.socket(&teacher).await;
    join(&t, &room).await;
    let send = transport(&t, &room, "send").await;
    let send_id = send["id"].as_str().unwrap();

    let mut vp9 = produce_params("video");
    vp9["codecs"][0]["mimeType"] = json!("video/VP9");
    for (event, payload, code_) in [
        (
            "create-transport",
            json!({ "roomId": room, "direction": "sideways" }),
            "bad_request",
        ),
        (
            "connect-transport",
            json!({ "roomId": room, "transportId": send_id, "dtlsParameters": { "role": "client", "fingerprints": [] } }),
            "bad_request",
        ),
        (
            "produce",
            json!({ "roomId": room, "transportId": send_id, "kind": "video", "rtpParameters": vp9 }),
            "bad_request",
        ),
        (
            "produce",
            json!({ "roomId": room, "transportId": send_id, "kind": "video", "rtpParameters": { "codecs": [] } }),
            "bad_request",
        ),
        (
            "produce",
            json!({ "roomId": room, "transportId": "nope", "kind": "audio", "rtpParameters": produce_params("audio") }),
            "not_found",
        ),
        (
            "consume",
            json!({ "roomId": room, "transportId": send_id, "producerId": "nope", "rtpCapabilities": {} }),
            "not_found",
        ),
        (
            "resume-consumer",
            json!({ "roomId": room, "consumerId": "nope" }),
            "not_found",
        ),
        (
            "close-producer",
            json!({ "roomId": room, "producerId": "nope" }),
            "not_found",
        ),
        (
            "set-preferred-layers",
            json!({ "roomId": room, "consumerId": "x", "spatialLayer": 9 }),
            "bad_request",
        ),
        ("restart-ice", json!({ "roomId": room }), "bad_request"),
        (
            "restart-ice",
            json!({ "roomId": room, "transportId": "someone-elses" }),
            "not_found",
        ),
    ] {
        assert_eq!(
            refused(t.request(event, payload.clone()).await),
            code_,
            "{event} {payload}"
        );
    }
    let info = t
        .request("get-room-info", json!({ "roomId": room }))
        .await
        .unwrap();
    assert_eq!(info["producers"], json!([]), "nothing was created");
    // The transport limit.
    for _ in 0..3 {
        transport(&t, &room, "recv").await;
    }
    assert_eq!(
        refused(
            t.request(
                "create-transport",
                json!({ "roomId": room, "direction": "recv" })
            )
            .await
        ),
        "forbidden"
    );
}

#[tokio::test]
async fn transports_carry_turn_credentials_of_their_peer() {
    let s = TestServer::start_with(|a| {
        a.turn.turn_urls = vec![
            "turn:127.0.0.1:3478?transport=udp".into(),
            "turns:turn.example.org:443?transport=tcp".into(),
        ];
        a.turn.turn_secret = Some(vtp_server::config::Secret::new("shared-with-coturn"));
        a.turn.turn_credential_ttl = std::time::Duration::from_secs(600);
    })
    .await;
    let (_, teacher) = s.user("t@example.org", Role::Instructor).await;
    let room = s.room(&teacher, json!({})).await;
    let t = s.socket(&teacher).await;
    let joined = join(&t, &room).await;
    let peer_id = joined["peerId"].as_str().unwrap();
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let send = transport(&t, &room, "send").await;
    let servers = send["iceServers"].as_array().unwrap();
    assert_eq!(servers.len(), 1, "{send}");
    assert_eq!(
        servers[0]["urls"],
        json!([
            "turn:127.0.0.1:3478?transport=udp",
            "turns:turn.example.org:443?transport=tcp"
        ])
    );
    let username = servers[0]["username"].as_str().unwrap();
    let (expiry, who) = username.split_once(':').unwrap();
    assert_eq!(who, peer_id, "the credential names the peer");
    let expiry: u64 = expiry.parse().unwrap();
    assert!(
        (before + 600..=before + 660).contains(&expiry),
        "{expiry} vs {before}"
    );
    assert_eq!(
        servers[0]["credential"],
        vtp_server::turn::rest_api_password("shared-with-coturn", username)
    );
    let dump = format!("{send}");
    assert!(
        !dump.contains("shared-with-coturn"),
        "the secret never leaves"
    );

    // Without TURN settings the answer has no iceServers.
    let plain = TestServer::start().await;
    let (_, teacher) = plain.user("t@example.org", Role::Instructor).await;
    let room = plain.room(&teacher, json!({})).await;
    let t = plain.socket(&teacher).await;
    join(&t, &room).await;
    let send = transport(&t, &room, "send").await;
    assert!(send.get("iceServers").is_none(), "{send}");
}

/// The SFU rooms of connectivity checks that exist now.
async fn probe_rooms(s: &TestServer) -> usize {
    s.media
        .rooms()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.router_id.starts_with("probe-"))
        .count()
}

#[tokio::test]
async fn connectivity_checks_open_send_one_track_and_close() {
    let s = TestServer::start().await;
    let (_, student) = s.user("kim@example.org", Role::Student).await;
    let k = s.socket(&student).await;

    // No room needed: a throw-away SFU room with one send transport.
    let check = k.request("check-connectivity", json!({})).await.unwrap();
    assert!(
        check["routerRtpCapabilities"]["codecs"]
            .as_array()
            .unwrap()
            .len()
            > 1
    );
    let transport = &check["transport"];
    assert_eq!(transport["iceCandidates"][0]["protocol"], "udp");
    let transport_id = transport["id"].as_str().unwrap();
    assert_eq!(probe_rooms(&s).await, 1);

    // Only its own transport.
    let wrong = k
        .request(
            "check-connectivity-connect",
            json!({ "transportId": "nope", "dtlsParameters": {} }),
        )
        .await;
    assert_eq!(refused(wrong), "not_found");
    let dtls = fixture()["rid-simulcast"]["connect"]["dtlsParameters"].clone();
    k.request(
        "check-connectivity-connect",
        json!({ "transportId": transport_id, "dtlsParameters": dtls }),
    )
    .await
    .unwrap();
    let single = fixture()["single-video"].clone();
    let produced = k
        .request(
            "check-connectivity-produce",
            json!({ "transportId": transport_id, "kind": "video", "rtpParameters": single }),
        )
        .await
        .unwrap();
    assert!(produced["id"].is_string(), "{produced}");
    let again = k
        .request(
            "check-connectivity-produce",
            json!({ "transportId": transport_id, "kind": "video", "rtpParameters": single }),
        )
        .await;
    assert_eq!(refused(again), "forbidden", "one track per check");

    // A new check replaces the old one; the end closes it.
    k.request("check-connectivity", json!({})).await.unwrap();
    assert_eq!(probe_rooms(&s).await, 1);
    k.request("check-connectivity-end", json!({}))
        .await
        .unwrap();
    assert_eq!(probe_rooms(&s).await, 0);

    // A connection that goes takes its check with it.
    k.request("check-connectivity", json!({})).await.unwrap();
    assert_eq!(probe_rooms(&s).await, 1);
    drop(k);
    wait_until(
        std::time::Duration::from_secs(10),
        "the check to end with its connection",
        async || probe_rooms(&s).await == 0,
    )
    .await;
}

#[tokio::test]
async fn a_fresh_page_takes_its_place_back_without_the_old_pages_media() {
    let s = TestServer::start().await;
    let (_, teacher) = s.user("t@example.org", Role::Instructor).await;
    let room = s.room(&teacher, json!({})).await;
    let watcher = s.socket(&teacher).await;
    join(&watcher, &room).await;
    let (_, ann) = s.user("ann@example.org", Role::Student).await;
    let dtls = fixture()["rid-simulcast"]["connect"]["dtlsParameters"].clone();

    // Three pages in a row, each closed within the grace period: each one
    // makes a send and a receive transport and publishes its camera. With
    // the old pages' transports kept, the third would pass the limit of 4.
    let mut last_video = None;
    for page in 0..3 {
        let a = s.socket(&ann).await;
        let joined = a
            .request("join-room", json!({ "roomId": room, "fresh": true }))
            .await
            .unwrap();
        assert_eq!(joined["resumed"], page > 0, "page {page}: {joined}");
        if let Some(old) = &last_video {
            // The others hear that the old page's camera went.
            let closed = watcher
                .next_event("producer-closed", std::time::Duration::from_secs(5))
                .await
                .unwrap();
            assert_eq!(&closed["producerId"], old, "page {page}");
        }
        let send = transport(&a, &room, "send").await;
        transport(&a, &room, "recv").await;
        a.request(
            "connect-transport",
            json!({ "roomId": room, "transportId": send["id"], "dtlsParameters": dtls }),
        )
        .await
        .unwrap();
        let video = a
            .request(
                "produce",
                json!({ "roomId": room, "transportId": send["id"], "kind": "video",
                        "rtpParameters": produce_params("video") }),
            )
            .await
            .unwrap_or_else(|e| panic!("page {page}: {e}"));
        last_video = Some(video["id"].clone());
        // The page goes; the next one comes once the server has noticed
        // (only the watcher's connection is left).
        a.drop_connection().await;
        wait_until(
            std::time::Duration::from_secs(10),
            "the server to see the page's connection go",
            async || s.metric("vtp_signalling_connections").await == 1.0,
        )
        .await;
    }
    // The peer has only the last page's camera.
    let info = watcher
        .request("get-room-info", json!({ "roomId": room }))
        .await
        .unwrap();
    let cameras: Vec<&Value> = info["producers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "video")
        .collect();
    assert_eq!(cameras.len(), 1, "{info}");
}
