//! Operations (issue 20) with a class really running (the Rust client
//! publishing over real UDP): every webhook event a class produces reaches
//! a real receiver, signed and in order; the operator's endpoint
//! (`GET /operations`) shows the room, its participants' bitrate and the
//! recording in progress, to admins only; `/metrics` counts the bytes the
//! recording wrote. Runs on SQLite, and on PostgreSQL with
//! `VTP_TEST_POSTGRES_URL`.

use crate::common;

use std::time::Duration;

use common::media::publish;
use common::receiver::start_receiver;
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use vtp_server::webhooks::sign;
use vtp_store::Role;

const PASSWORD: &str = "plum tiger orbit 41";
/// Media in real time, exports with ffmpeg, on a busy machine.
const SLOW: Duration = Duration::from_secs(120);

#[tokio::test]
async fn a_class_run_fires_every_webhook_event_signed_and_in_order() {
    let s = TestServer::start_with(|args| {
        args.allow_registration = true;
        args.webhooks.webhook_allow_private_targets = true;
        args.webhooks.webhook_backoff = Duration::from_millis(100);
        args.webhooks.webhook_max_backoff = Duration::from_millis(400);
    })
    .await;
    let (_, admin) = s.user("root@example.org", Role::Admin).await;
    let (_, teacher) = s.user("teacher@example.org", Role::Instructor).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = start_receiver(listener);
    let all = [
        "room.started",
        "room.ended",
        "participant.joined",
        "participant.left",
        "recording.ready",
        "export.ready",
        "user.created",
    ];
    let (status, created) = s
        .post(
            "/api/v1/webhooks",
            Some(&admin),
            json!({ "url": format!("http://127.0.0.1:{port}/hook"), "events": all }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["secret"].as_str().unwrap().to_string();

    // A student signs up (user.created) and comes to class.
    let (status, body) = s
        .post(
            "/api/v1/auth/register",
            None,
            json!({ "email": "ann@example.org", "password": PASSWORD, "displayName": "Ann" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let ann_id = body["user"]["id"].as_str().unwrap().to_string();
    let ann = s.login("ann@example.org", PASSWORD).await["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    let room = s.room(&teacher, json!({})).await;
    let a = publish(&s, &teacher, &room).await;
    a.video.start();
    a.audio.start();
    let student = s.socket(&ann).await;
    join(&student, &room).await;
    let started = a
        .socket
        .request("start-recording", json!({ "roomId": room }))
        .await
        .unwrap();
    let recording = started["recordingId"].as_str().unwrap().to_string();
    let sent = || a.video.stats().frames;
    let from = sent();
    wait_until(SLOW, "a second of video sent", async || sent() >= from + 30).await;
    a.socket
        .request("stop-recording", json!({ "roomId": room }))
        .await
        .unwrap();
    a.video.stop();
    a.audio.stop();
    student
        .request("leave-room", json!({ "roomId": room }))
        .await
        .unwrap();
    a.socket
        .request("leave-room", json!({ "roomId": room }))
        .await
        .unwrap();
    let (status, export) = s
        .post(
            &format!("/api/v1/recordings/{recording}/exports"),
            Some(&teacher),
            json!({ "layout": "grid" }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{export}");

    wait_until(SLOW, "export.ready at the receiver", async || {
        got.all()
            .iter()
            .any(|(_, body, _)| body.contains("\"export.ready\""))
    })
    .await;
    let now = chrono::Utc::now().timestamp();
    let events: Vec<Value> = got
        .all()
        .iter()
        .map(|(headers, body, _)| {
            let header = headers[sign::SIGNATURE_HEADER].to_str().unwrap();
            assert!(
                sign::verify(&secret, header, body, now),
                "signature of {body}"
            );
            serde_json::from_str(body).unwrap()
        })
        .collect();
    let names: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "user.created",
            "room.started",
            "participant.joined",
            "participant.joined",
            "recording.ready",
            "participant.left",
            "participant.left",
            "room.ended",
            "export.ready",
        ],
        "{events:#?}"
    );
    assert_eq!(events[0]["data"]["userId"], ann_id.as_str());
    assert_eq!(events[1]["data"]["roomId"], room.as_str());
    assert_eq!(events[3]["data"]["userId"], ann_id.as_str());
    assert_eq!(events[4]["data"]["recordingId"], recording.as_str());
    assert_eq!(events[5]["data"]["userId"], ann_id.as_str());
    assert_eq!(events[7]["data"]["roomId"], room.as_str());
    assert_eq!(events[8]["data"]["recordingId"], recording.as_str());
    assert_eq!(events[8]["data"]["exportId"], export["id"]);
    let ids: std::collections::HashSet<&str> =
        events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), events.len(), "each event once");
}

/// The participant `peer` in `GET /operations`'s room `room`.
fn participant<'a>(ops: &'a Value, room: &str, peer: &str) -> Option<&'a Value> {
    ops["rooms"]
        .as_array()?
        .iter()
        .find(|r| r["roomId"] == room)?["participants"]
        .as_array()?
        .iter()
        .find(|p| p["peerId"] == peer)
}

#[tokio::test]
async fn the_operations_endpoint_shows_the_live_class_to_admins_only() {
    let s = TestServer::start().await;
    let (_, admin) = s.user("root@example.org", Role::Admin).await;
    let (_, teacher) = s.user("teacher@example.org", Role::Instructor).await;
    let (_, ann) = s.user("ann@example.org", Role::Student).await;
    let (status, body) = s.get("/api/v1/operations", Some(&teacher)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = s.get("/api/v1/operations", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, idle) = s.get("/api/v1/operations", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK, "{idle}");
    assert_eq!(idle["rooms"], json!([]));
    assert_eq!(idle["nodes"][1]["kind"], "sfu");
    assert_eq!(idle["nodes"][1]["up"], true, "{idle}");
    assert!(idle["disk"]["freeBytes"].as_u64().unwrap() > 0, "{idle}");

    let room = s.room(&teacher, json!({})).await;
    let a = publish(&s, &teacher, &room).await;
    a.video.start();
    a.audio.start();
    let student = s.socket(&ann).await;
    let joined = join(&student, &room).await;
    let ann_peer = joined["peerId"].as_str().unwrap().to_string();
    let teacher_peer = a
        .socket
        .request("get-room-info", json!({ "roomId": room }))
        .await
        .unwrap()["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["peerId"] != ann_peer.as_str())
        .unwrap()["peerId"]
        .as_str()
        .unwrap()
        .to_string();
    a.socket
        .request("start-recording", json!({ "roomId": room }))
        .await
        .unwrap();

    let ops = wait_for(
        SLOW,
        "the teacher's bitrate and bytes recorded",
        async || {
            let (status, ops) = s.get("/api/v1/operations", Some(&admin)).await;
            assert_eq!(status, StatusCode::OK, "{ops}");
            let sending = participant(&ops, &room, &teacher_peer)
                .is_some_and(|p| p["bitrateIn"].as_u64() > Some(0) && p["health"] != "unknown");
            let written = ops["recordings"][0]["bytesWritten"].as_u64() > Some(0);
            if sending && written {
                Ok(ops)
            } else {
                Err(ops)
            }
        },
    )
    .await;
    let teacher_row = participant(&ops, &room, &teacher_peer).unwrap();
    assert_eq!(teacher_row["role"], "host", "{ops}");
    assert_eq!(teacher_row["producers"], 2, "{ops}");
    let ann_row = participant(&ops, &room, &ann_peer).expect("the student is listed");
    assert_eq!(ann_row["displayName"], "ann", "{ops}");
    assert_eq!(ann_row["bitrateIn"], 0, "she sends nothing: {ops}");
    assert_eq!(ops["recordings"][0]["roomId"], room.as_str());
    assert!(
        ops["audit"].as_array().is_some_and(|a| a.len() <= 10),
        "{ops}"
    );
    let written = s.metric("vtp_recording_written_bytes").await;
    assert!(written > 0.0, "{written}");
    assert_eq!(s.metric("vtp_recordings_active").await, 1.0);
    a.video.stop();
    a.audio.stop();
}
