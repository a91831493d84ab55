//! Socket.IO signalling over a real connection (the Rust client of
//! `vtp-client`) against the real server: auth, presence, chat, hands, relay,
//! host controls, limits, grace period, malformed input.

use crate::common;

use std::time::Duration;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vtp_client::{ClientError, SocketIoClient};
use vtp_store::Role;

#[tokio::test]
async fn handshake_without_a_good_token_is_refused() {
    let s = TestServer::start_with(|a| a.access_token_ttl = Duration::from_secs(60)).await;
    let (_, token) = s.user("ann@example.org", Role::Student).await;
    for auth in [
        None,
        Some(json!({})),
        Some(json!({ "token": 5 })),
        Some(json!({ "token": "forged" })),
    ] {
        match SocketIoClient::connect_with_auth(&s.url(""), auth.clone()).await {
            Err(ClientError::ConnectRefused(message)) => {
                assert_eq!(message, "unauthorized", "{auth:?}")
            }
            other => panic!("{auth:?}: expected a refusal, got {other:?}"),
        }
    }
    s.token_clock.advance(Duration::from_secs(61));
    match SocketIoClient::connect(&s.url(""), Some(&token)).await {
        Err(ClientError::ConnectRefused(message)) => assert_eq!(message, "unauthorized"),
        other => panic!("expired token: {other:?}"),
    }
}

#[tokio::test]
async fn an_expiring_token_keeps_the_call_but_cannot_join_again() {
    let s = TestServer::start_with(|a| a.access_token_ttl = Duration::from_secs(60)).await;
    let (_, teacher) = s.user("t@example.org", Role::Instructor).await;
    let room = s.room(&teacher, json!({})).await;
    let other = s.room(&teacher, json!({})).await;
    let t = s.socket(&teacher).await;
    join(&t, &room).await;
    // Past the expiry (which has one-second granularity).
    s.token_clock.advance(Duration::from_secs(62));
    assert!(t.is_connected());
    t.request(
        "chat-message",
        json!({ "roomId": room, "text": "still here" }),
    )
    .await
    .expect("chat still works");
    assert_eq!(
        refused(t.request("join-room", json!({ "roomId": other })).await),
        "unauthorized"
    );
}

#[tokio::test]
async fn presence_chat_and_hands() {
    let s = TestServer::start().await;
    let (_, teacher) = s.user("t@example.org", Role::Instructor).await;
    let (ann_id, ann) = s.user("ann@example.org", Role::Student).await;
    let (_, bob) = s.user("bob@example.org", Role::Student).await;
    let room = s.room(&teacher, json!({})).await;

    let t = s.socket(&teacher).await;
    let tj = join(&t, &room).await;
    assert_eq!(tj["role"], "host");
    assert_eq!(tj["peers"], json!([]));
    assert!(
        tj["routerRtpCapabilities"]["codecs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["mimeType"] == "video/VP8")
    );

    let a = s.socket(&ann).await;
    let aj = a
        .request(
            "join-room",
            json!({ "roomId": room, "displayName": "Annie" }),
        )
        .await
        .unwrap();
    assert_eq!(
        (aj["role"].as_str(), aj["peers"].as_array().unwrap().len()),
        (Some("participant"), 1)
    );
    let joined = t.next_event("peer-joined", WAIT).await.unwrap();
    assert_eq!(joined["peer"]["displayName"], "Annie");
    assert_eq!(joined["peer"]["userId"], ann_id.as_str());
    assert_eq!(joined["peer"]["handRaised"], false);

    // The room is live, over HTTP too.
    let (_, live) = s
        .get(&format!("/api/v1/rooms/{room}"), Some(&teacher))
        .await;
    assert_eq!(live["status"], "live");
    let (_, people) = s
        .get(&format!("/api/v1/rooms/{room}/participants"), Some(&ann))
        .await;
    assert_eq!(people["peers"].as_array().unwrap().len(), 2);

    let ack = a
        .request("chat-message", json!({ "roomId": room, "text": "hi all" }))
        .await
        .unwrap();
    let msg = t.next_event("chat-message", WAIT).await.unwrap();
    assert_eq!(
        (msg["text"].as_str(), &msg["id"], msg["peerId"].as_str()),
        (Some("hi all"), &ack["id"], aj["peerId"].as_str())
    );
    a.expect_no_event("chat-message", Duration::from_millis(200))
        .await
        .expect("the sender gets the ack, not an echo");

    let b = s.socket(&bob).await;
    let bj = join(&b, &room).await;
    assert_eq!(bj["chat"][0]["text"], "hi all", "history on join");

    b.request("raise-hand", json!({ "roomId": room }))
        .await
        .unwrap();
    assert_eq!(
        t.next_event("hand-raised", WAIT).await.unwrap(),
        json!({ "peerId": bj["peerId"] })
    );
    b.request("raise-hand", json!({ "roomId": room }))
        .await
        .unwrap();
    t.expect_no_event("hand-raised", Duration::from_millis(200))
        .await
        .expect("no change, no event");
    let info = a
        .request("get-room-info", json!({ "roomId": room }))
        .await
        .unwrap();
    assert_eq!(info["status"], "live");
    let bob_view = info["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["peerId"] == bj["peerId"])
        .cloned()
        .unwrap();
    assert_eq!(bob_view["handRaised"], true);
    b.request("lower-hand", json!({ "roomId": room }))
        .await
        .unwrap();
    assert_eq!(
        a.next_event("hand-lowered", WAIT).await.unwrap(),
        json!({ "peerId": bj["peerId"] })
    );

    a.request("leave-room", json!({ "roomId": room }))
        .await
        .unwrap();
    assert_eq!(
        b.next_event("peer-left", WAIT).await.unwrap(),
        json!({ "peerId": aj["peerId"] })
    );
    assert_eq!(
        refused(
            a.request("chat-message", json!({ "roomId": room, "text": "x" }))
                .await
        ),
        "not_found"
    );

    // Everyone leaves: the session ends and the room is open again.
    t.request("leave-room", json!({ "roomId": room }))
        .await
        .unwrap();
    b.request("leave-room", json!({ "roomId": room }))
        .await
        .unwrap();
    let (_, after) = s
        .get(&format!("/api/v1/rooms/{room}"), Some(&teacher))
        .await;
    assert_eq!(after["status"], "open");
}

#[tokio::test]
async fn chat_limits_and_http_history() {
    let s = TestServer::start_with(|a| a.chat_burst = 3).await;
    let (_, teacher) = s.user("t@example.org", Role::Instructor).await;
    let (_, ann) = s.user("ann@example.org", Role::Student).await;
    let (_, stranger) = s.user("zed@example.org", Role::Student).await;
    let room = s.room(&teacher, json!({})).await;
    let t = s.socket(&teacher).await;
    join(&t, &room).await;
    let a = s.socket(&ann).await;
    join(&a, &room).await;

    assert_eq!(
        refused(
            a.request("chat-message", json!({ "roomId": room, "text": "   " }))
                .await
        ),
        "bad_request"
    );
    assert_eq!(
        refused(
            a.request(
                "chat-message",
                json!({ "roomId": room, "text": "x".repeat(2001) })
            )
            .await
        ),
        "bad_request"
    );
    a.request(
        "chat-message",
        json!({ "roomId": room, "text": "é".repeat(1000) }),
    )
    .await
    .expect("2000 bytes are fine");
    for i in 0..2 {
        a.request(
            "chat-message",
            json!({ "roomId": room, "text": format!("m{i}") }),
        )
        .await
        .unwrap();
    }
    assert_eq!(
        refused(
            a.request(
                "chat-message",
                json!({ "roomId": room, "text": "one too many" })
            )
            .await
        ),
        "rate_limited"
    );
    for i in 0..3 {
        t.request(
            "chat-message",
            json!({ "roomId": room, "text": format!("t{i}") }),
        )
        .await
        .unwrap();
    }

    // History over HTTP, newest first, with a cursor.
    let (status, page) = s
        .get(&format!("/api/v1/rooms/{room}/chat?limit=4"), Some(&ann))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let texts: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["t2", "t1", "t0", "m1"]);
    let cursor = page["nextCursor"].as_str().unwrap();
    let (_, older) = s
        .get(
            &format!("/api/v1/rooms/{room}/chat?limit=4&before={cursor}"),
            Some(&ann),
        )
        .await;
    assert_eq!(older["items"].as_array().unwrap().len(), 2);
    assert!(older["nextCursor"].is_null());
    let (status, _) = s
        .get(&format!("/api/v1/rooms/{room}/chat"), Some(&stranger))
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "strangers cannot read a room's chat"
    );
    let (status, _) = s
        .get(
            &format!("/api/v1/rooms/{room}/chat?before=garbage"),
            Some(&ann),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn relay_reaches_only_the_addressee() {
    let s = TestServer::start().await;
    let (_, teacher) = s.user("t@example.org", Role::Instructor).await;
    let (_, ann) = s.user("ann@example.org", Role::Student).await;
    let (_, bob) = s.user("bob@example.org", Role::Student).await;
    let (_, outsider) = s.user("out@example.org", Role::Student).await;
    let room = s.room(&teacher, json!({})).await;
    let other_room = s.room(&teacher, json!({})).await;
    let (t, a, b) = (
        s.socket(&teacher).await,
        s.socket(&ann).await,
        s.socket(&bob).await,
    );
    let o = s.socket(&outsider).await;
    let _ = join(&t, &room).await;
    let aj = join(&a, &room).await;
    let bj = join(&b, &room).await;
    let _ = join(&t, &other_room).await; // a host opens the other class
    let oj = join(&o, &other_room).await;

    for event in ["webrtc-offer", "webrtc-answer", "ice-candidate"] {
        let payload = json!({ "roomId": room, "to": bj["peerId"], "sdp": { "type": "offer", "sdp": "v=0" }, "candidate": { "candidate": "c" } });
        a.request(event, payload).await.unwrap();
        let got = b.next_event(event, WAIT).await.unwrap();
        assert_eq!(
            (got["from"].as_str(), got["roomId"].as_str()),
            (aj["peerId"].as_str(), Some(room.as_str()))
        );
        assert_eq!(got["sdp"]["sdp"], "v=0");
    }
    for event in ["webrtc-offer", "webrtc-answer", "ice-candidate"] {
        t.expect_no_event(event, Duration::from_millis(100))
            .await
            .expect("not relayed to others");
    }
    // A peer of another room, or nobody: not_found, and nothing delivered.
    let to_outsider = a
        .request(
            "webrtc-offer",
            json!({ "roomId": room, "to": oj["peerId"], "sdp": {} }),
        )
        .await;
    assert_eq!(refused(to_outsider), "not_found");
    o.expect_no_event("webrtc-offer", Duration::from_millis(200))
        .await
        .unwrap();
    assert_eq!(
        refused(
            a.request("ice-candidate", json!({ "roomId": room, "to": "nobody" }))
                .await
        ),
        "not_found"
    );
    assert_eq!(
        refused(
            o.request(
                "webrtc-offer",
                json!({ "roomId": room, "to": bj["peerId"] })
            )
            .await
        ),
        "not_found"
    );
}

#[tokio::test]
async fn host_controls_and_role_rules() {
    let s = TestServer::start().await;
    let (_, teacher) = s.user("t@example.org", Role::Instructor).await;
    let (_, ann) = s.user("ann@example.org", Role::Student).await;
    let (_, bob) = s.user("bob@example.org", Role::Student).await;
    let room = s.room(&teacher, json!({})).await;
    let (t, a, b) = (
        s.socket(&teacher).await,
        s.socket(&ann).await,
        s.socket(&bob).await,
    );
    let tj = join(&t, &room).await;
    let aj = join(&a, &room).await;
    let bj = join(&b, &room).await;
    let action =
        |action: &str, peer: &Value| json!({ "roomId": room, "action": action, "peerId": peer });

    // Participants cannot use host controls.
    for what in ["mute", "remove", "promote", "demote"] {
        assert_eq!(
            refused(a.request("host-action", action(what, &bj["peerId"])).await),
            "forbidden",
            "{what}"
        );
    }
    assert_eq!(
        refused(a.request("close-room", json!({ "roomId": room })).await),
        "forbidden"
    );
    // Hosts cannot be removed or demoted, nor remove themselves.
    assert_eq!(
        refused(
            t.request("host-action", action("remove", &tj["peerId"]))
                .await
        ),
        "bad_request"
    );
    assert_eq!(
        refused(
            t.request("host-action", action("promote", &json!("ghost")))
                .await
        ),
        "not_found"
    );
    t.request("host-action", action("mute", &aj["peerId"]))
        .await
        .expect("muting someone without producers is a no-op");

    t.request("host-action", action("promote", &aj["peerId"]))
        .await
        .unwrap();
    assert_eq!(
        b.next_event("role-changed", WAIT).await.unwrap(),
        json!({ "peerId": aj["peerId"], "role": "presenter" })
    );
    t.request("host-action", action("demote", &aj["peerId"]))
        .await
        .unwrap();
    assert_eq!(
        a.next_event("role-changed", WAIT).await.unwrap()["role"],
        "presenter"
    );
    assert_eq!(
        a.next_event("role-changed", WAIT).await.unwrap()["role"],
        "participant"
    );

    t.request("host-action", action("remove", &bj["peerId"]))
        .await
        .unwrap();
    assert_eq!(
        b.next_event("removed", WAIT).await.unwrap()["reason"],
        "removed by a host"
    );
    assert_eq!(
        a.next_event("peer-left", WAIT).await.unwrap(),
        json!({ "peerId": bj["peerId"] })
    );
    assert_eq!(
        refused(b.request("join-room", json!({ "roomId": room })).await),
        "forbidden",
        "removed for the session"
    );
    assert!(b.is_connected(), "removal does not cut the connection");
}

#[tokio::test]
async fn full_and_closed_rooms() {
    let s = TestServer::start().await;
    let (_, teacher) = s.user("t@example.org", Role::Instructor).await;
    let mut students = Vec::new();
    for n in 0..3 {
        students.push(s.user(&format!("s{n}@example.org"), Role::Student).await.1);
    }
    let (_, admin) = s.user("admin@example.org", Role::Admin).await;
    let room = s.room(&teacher, json!({ "maxParticipants": 2 })).await;
    let sockets: Vec<SocketIoClient> = futures_join(&s, &students).await;
    // A class starts when a host opens it: a student alone waits.
    assert_eq!(
        refused(
            sockets[0]
                .request("join-room", json!({ "roomId": room }))
                .await
        ),
        "not_started"
    );
    let (_, before) = s
        .get(&format!("/api/v1/rooms/{room}"), Some(&teacher))
        .await;
    assert_eq!(before["status"], "open", "no session was started");
    let t = s.socket(&teacher).await;
    join(&t, &room).await;
    join(&sockets[0], &room).await;
    assert_eq!(
        refused(
            sockets[1]
                .request("join-room", json!({ "roomId": room }))
                .await
        ),
        "room_full"
    );
    let ad = s.socket(&admin).await;
    join(&ad, &room).await; // hosts get in when full

    // Closing over HTTP tells everyone and ends the session.
    let (status, closed) = s
        .call(
            Method::PATCH,
            &format!("/api/v1/rooms/{room}"),
            Some(&teacher),
            Some(json!({ "status": "closed" })),
        )
        .await;
    assert_eq!(
        (status, closed["status"].as_str()),
        (StatusCode::OK, Some("closed"))
    );
    for socket in [&sockets[0], &ad, &t] {
        assert!(socket.next_event("room-closed", WAIT).await.unwrap()["reason"].is_string());
    }
    assert_eq!(
        refused(
            sockets[2]
                .request("join-room", json!({ "roomId": room }))
                .await
        ),
        "room_closed"
    );
    assert_eq!(
        refused(
            sockets[0]
                .request("chat-message", json!({ "roomId": room, "text": "x" }))
                .await
        ),
        "not_found"
    );

    // Reopened, it works again; closing over Socket.IO does the same.
    s.call(
        Method::PATCH,
        &format!("/api/v1/rooms/{room}"),
        Some(&teacher),
        Some(json!({ "status": "open" })),
    )
    .await;
    join(&t, &room).await;
    join(&sockets[0], &room).await;
    t.request("close-room", json!({ "roomId": room }))
        .await
        .unwrap();
    sockets[0].next_event("room-closed", WAIT).await.unwrap();
    let (_, after) = s
        .get(&format!("/api/v1/rooms/{room}"), Some(&teacher))
        .await;
    assert_eq!(after["status"], "closed");
}

async fn futures_join(s: &TestServer, tokens: &[String]) -> Vec<SocketIoClient> {
    let mut out = Vec::new();
    for token in tokens {
        out.push(s.socket(token).await);
    }
    out
}

#[tokio::test]
async fn reconnect_within_grace_keeps_the_place_and_attendance_is_recorded() {
    let s = TestServer::start_with(|a| a.reconnect_grace = Duration::from_millis(800)).await;
    let (_, teacher) = s.user("t@example.org", Role::Instructor).await;
    let (ann_id, ann) = s.user("ann@example.org", Role::Student).await;
    let room = s.room(&teacher, json!({})).await;
    let t = s.socket(&teacher).await;
    join(&t, &room).await;
    let a = s.socket(&ann).await;
    let first = join(&a, &room).await;
    t.next_event("peer-joined", WAIT).await.unwrap();

    // The network drops; the user is back within the grace period.
    a.drop_connection().await;
    wait_until(WAIT, "the server to see the connection go", async || {
        s.metric("vtp_signalling_connections").await == 1.0
    })
    .await;
    let a = s.socket(&ann).await;
    let again = join(&a, &room).await;
    assert_eq!(
        (&again["peerId"], &again["resumed"]),
        (&first["peerId"], &json!(true))
    );
    // Past the end of the grace period the drop started, nobody left.
    t.expect_no_event("peer-left", Duration::from_millis(1000))
        .await
        .expect("no churn");
    t.expect_no_event("peer-joined", Duration::from_millis(10))
        .await
        .expect("no churn");
    a.request("chat-message", json!({ "roomId": room, "text": "back" }))
        .await
        .expect("the resumed peer speaks");

    // Gone for longer than the grace period: left.
    a.drop_connection().await;
    assert_eq!(
        t.next_event("peer-left", WAIT).await.unwrap(),
        json!({ "peerId": first["peerId"] })
    );
    t.request("leave-room", json!({ "roomId": room }))
        .await
        .unwrap();

    let (_, sessions) = s
        .get(&format!("/api/v1/rooms/{room}/sessions"), Some(&teacher))
        .await;
    assert_eq!(sessions["total"], 1);
    let session = &sessions["items"][0];
    assert!(session["endedAt"].is_string());
    let report_path = format!(
        "/api/v1/rooms/{room}/sessions/{}/attendance",
        session["id"].as_str().unwrap()
    );
    let (status, report) = s.get(&report_path, Some(&teacher)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let ann_row = report["attendees"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["userId"] == ann_id.as_str())
        .cloned()
        .unwrap();
    assert_eq!(ann_row["visits"], 1, "a resumed presence is one visit");
    assert_eq!(ann_row["role"], "participant");
    assert!(ann_row["lastLeftAt"].is_string());
    let (status, _) = s.get(&report_path, Some(&ann)).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "students do not see attendance"
    );

    let csv = s
        .http
        .get(s.url(&format!("{report_path}?format=csv")))
        .bearer_auth(&teacher)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let text = csv.text().await.unwrap();
    assert!(
        text.starts_with(
            "user_id,display_name,role,first_joined_at,last_left_at,total_minutes,visits\n"
        ),
        "{text}"
    );
    assert_eq!(text.lines().count(), 3, "header + teacher + ann: {text}");
}

#[tokio::test]
async fn malformed_requests_get_bad_request_and_the_socket_stays() {
    let s = TestServer::start_with(|a| a.socket_events_per_second = 1000).await;
    let (_, ann) = s.user("ann@example.org", Role::Student).await;
    let a = s.socket(&ann).await;
    let events = [
        "join-room",
        "leave-room",
        "get-participants",
        "get-room-info",
        "chat-message",
        "raise-hand",
        "lower-hand",
        "host-action",
        "set-spotlight",
        "close-room",
        "webrtc-offer",
        "webrtc-answer",
        "ice-candidate",
    ];
    let bad_payloads = [
        vec![],
        vec![json!("a string")],
        vec![json!(42)],
        vec![json!(null)],
        vec![json!({ "roomId": 7 })],
        vec![json!([1, 2])],
    ];
    for event in events {
        for args in &bad_payloads {
            let ack = a.request_raw(event, args.clone()).await.unwrap();
            assert_eq!(
                (ack["ok"].as_bool(), ack["error"]["code"].as_str()),
                (Some(false), Some("bad_request")),
                "{event} {args:?}: {ack}"
            );
        }
    }
    for (event, payload) in [
        (
            "host-action",
            json!({ "roomId": "r", "action": "explode", "peerId": "p" }),
        ),
        ("host-action", json!({ "roomId": "r", "action": "mute" })),
        ("chat-message", json!({ "roomId": "r" })),
        ("join-room", json!({ "roomId": "" })),
        ("join-room", json!({ "roomId": "x".repeat(65) })),
        ("join-room", json!({ "roomId": "r", "displayName": 3 })),
        ("unknown-event", json!({})),
        (
            "chat-message",
            json!({ "roomId": "r", "text": "x".repeat(70_000) }),
        ),
    ] {
        assert_eq!(
            refused(a.request(event, payload.clone()).await),
            "bad_request",
            "{event} {payload}"
        );
    }
    assert!(a.is_connected());
    assert_eq!(
        refused(
            a.request("join-room", json!({ "roomId": "no-such-room" }))
                .await
        ),
        "not_found"
    );
}

#[tokio::test]
async fn a_connection_joins_at_most_its_number_of_rooms() {
    let s = TestServer::start_with(|a| a.max_rooms_per_connection = 2).await;
    let (_, teacher) = s.user("t@example.org", Role::Instructor).await;
    let rooms = [
        s.room(&teacher, json!({})).await,
        s.room(&teacher, json!({})).await,
        s.room(&teacher, json!({})).await,
    ];
    let t = s.socket(&teacher).await;
    join(&t, &rooms[0]).await;
    join(&t, &rooms[1]).await;
    assert_eq!(
        refused(t.request("join-room", json!({ "roomId": rooms[2] })).await),
        "forbidden"
    );
}

#[tokio::test]
async fn a_connection_bursts_to_twice_its_event_rate_then_is_limited() {
    let s = TestServer::start_with(|a| a.socket_events_per_second = 5).await;
    let (_, teacher) = s.user("t@example.org", Role::Instructor).await;
    let room = s.room(&teacher, json!({})).await;
    // A new connection starts with its whole budget: the join and nine more.
    let t = s.socket(&teacher).await;
    join(&t, &room).await;
    let mut codes = Vec::new();
    for _ in 0..15 {
        codes.push(
            match t.request("get-room-info", json!({ "roomId": room })).await {
                Ok(_) => "ok".to_string(),
                Err(ClientError::Server { code, .. }) => code,
                Err(e) => panic!("{e}"),
            },
        );
    }
    assert!(
        codes.iter().take(9).all(|c| c == "ok"),
        "a burst of twice the rate passes: {codes:?}"
    );
    assert!(
        codes.iter().skip(10).any(|c| c == "rate_limited"),
        "{codes:?}"
    );
    assert!(t.is_connected());
}

#[tokio::test]
async fn a_host_spotlights_a_peer_for_everyone() {
    let s = TestServer::start().await;
    let (_, teacher) = s.user("t@example.org", Role::Instructor).await;
    let (_, ann) = s.user("ann@example.org", Role::Student).await;
    let (_, bob) = s.user("bob@example.org", Role::Student).await;
    let room = s.room(&teacher, json!({})).await;
    let (t, a) = (s.socket(&teacher).await, s.socket(&ann).await);
    join(&t, &room).await;
    let aj = join(&a, &room).await;
    let spotlight = |peer: &Value| json!({ "roomId": room, "peerId": peer });

    // Only hosts spotlight, and only someone in the room.
    assert_eq!(
        refused(a.request("set-spotlight", spotlight(&aj["peerId"])).await),
        "forbidden"
    );
    assert_eq!(
        refused(
            t.request("set-spotlight", spotlight(&json!("nobody")))
                .await
        ),
        "not_found"
    );
    assert_eq!(
        refused(
            t.request(
                "set-spotlight",
                json!({ "roomId": room, "peerId": aj["peerId"], "source": "window" })
            )
            .await
        ),
        "bad_request"
    );

    t.request("set-spotlight", spotlight(&aj["peerId"]))
        .await
        .unwrap();
    let told = json!({ "spotlight": { "peerId": aj["peerId"], "source": "camera" } });
    assert_eq!(a.next_event("spotlight-changed", WAIT).await.unwrap(), told);
    assert_eq!(t.next_event("spotlight-changed", WAIT).await.unwrap(), told);

    // A peer who joins later sees the same spotlight.
    let b = s.socket(&bob).await;
    let bj = join(&b, &room).await;
    assert_eq!(bj["spotlight"], told["spotlight"]);

    // Taken away: everyone is told; a join no longer carries it.
    t.request("set-spotlight", json!({ "roomId": room, "peerId": null }))
        .await
        .unwrap();
    assert_eq!(
        b.next_event("spotlight-changed", WAIT).await.unwrap(),
        json!({ "spotlight": null })
    );
    b.request("leave-room", json!({ "roomId": room }))
        .await
        .unwrap();
    let b2 = s.socket(&bob).await;
    assert!(join(&b2, &room).await.get("spotlight").is_none());
}
