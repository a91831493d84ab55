//! What one peer may put into a room for others to be sent, and the caps
//! that keep every answer about a room small (docs/protocol.md, *Limits*):
//! a student must not be able to make a room unjoinable, nor publish what
//! the room's settings forbid by labelling it something else.

use crate::common;

use common::*;
use serde_json::{Value, json};
use vtp_client::SocketIoClient;
use vtp_store::Role;

/// A new transport of `direction`; returns its id.
async fn transport(s: &SocketIoClient, room: &str, direction: &str) -> String {
    let t = s
        .request(
            "create-transport",
            json!({ "roomId": room, "direction": direction }),
        )
        .await
        .expect("create-transport");
    t["id"].as_str().unwrap().to_string()
}

async fn produce(
    s: &SocketIoClient,
    room: &str,
    transport: &str,
    kind: &str,
    app_data: Value,
) -> Result<Value, vtp_client::ClientError> {
    s.request(
        "produce",
        json!({ "roomId": room, "transportId": transport, "kind": kind,
                "rtpParameters": produce_params(kind), "appData": app_data }),
    )
    .await
}

#[tokio::test]
async fn chat_is_counted_in_bytes_and_control_characters_are_refused() {
    let s = TestServer::start().await;
    let (_, teacher) = s.user("t@example.org", Role::Instructor).await;
    let (_, ann) = s.user("ann@example.org", Role::Student).await;
    let room = s.room(&teacher, json!({})).await;
    let t = s.socket(&teacher).await;
    join(&t, &room).await;
    let a = s.socket(&ann).await;
    join(&a, &room).await;

    let say = |text: String| a.request("chat-message", json!({ "roomId": room, "text": text }));
    // 2,000 characters, but 6 bytes each once in JSON: refused.
    assert_eq!(refused(say("\u{1}".repeat(2000)).await), "bad_request");
    assert_eq!(refused(say("bell\u{7}".into()).await), "bad_request");
    assert_eq!(refused(say("\u{202E}fdp.exe".into()).await), "bad_request");
    // 1,001 characters of 2 bytes: over 2,000 bytes.
    assert_eq!(refused(say("é".repeat(1001)).await), "bad_request");
    // Newlines stay; a Windows line end becomes one.
    say("é".repeat(1000)).await.expect("2,000 bytes are fine");
    say("two\r\nlines".into()).await.expect("newlines are fine");
    t.next_event("chat-message", WAIT).await.unwrap();
    let lines = t.next_event("chat-message", WAIT).await.unwrap();
    assert_eq!(lines["text"], "two\nlines");
}

#[tokio::test]
async fn join_room_pages_the_chat_and_older_messages_are_fetched() {
    let s = TestServer::start_with(|a| {
        a.chat_burst = 1000;
        a.socket_events_per_second = 1000;
    })
    .await;
    let (_, teacher) = s.user("t@example.org", Role::Instructor).await;
    let (_, ann) = s.user("ann@example.org", Role::Student).await;
    let room = s.room(&teacher, json!({})).await;
    let t = s.socket(&teacher).await;
    join(&t, &room).await;
    // 60 messages of 1.9 KB: 114 KB of chat, more than one page.
    for i in 0..60 {
        let text = format!("{i:02}{}", "x".repeat(1900));
        t.request("chat-message", json!({ "roomId": room, "text": text }))
            .await
            .unwrap();
    }

    let a = s.socket(&ann).await;
    let joined = join(&a, &room).await;
    let first = joined["chat"].as_array().unwrap().clone();
    let bytes = serde_json::to_vec(&joined["chat"]).unwrap().len();
    assert!(bytes <= 64 * 1024, "join-room's chat is {bytes} bytes");
    assert!(first.len() < 60, "a page, not all 60");
    assert_eq!(joined["chatMore"], true);
    assert!(
        first.last().unwrap()["text"]
            .as_str()
            .unwrap()
            .starts_with("59")
    );

    // Older pages, each bounded, until none is left: every message once.
    let mut seen: Vec<Value> = first;
    loop {
        let page = a
            .request(
                "get-chat-history",
                json!({ "roomId": room, "before": seen[0]["id"], "limit": 20 }),
            )
            .await
            .expect("get-chat-history");
        let messages = page["messages"].as_array().unwrap();
        assert!(!messages.is_empty() && messages.len() <= 20);
        seen.splice(0..0, messages.iter().cloned());
        if page["more"] == false {
            break;
        }
    }
    let order: Vec<String> = seen
        .iter()
        .map(|m| m["text"].as_str().unwrap()[..2].to_string())
        .collect();
    let expected: Vec<String> = (0..60).map(|i| format!("{i:02}")).collect();
    assert_eq!(order, expected);

    // Someone not in the room gets nothing.
    let outsider = s.socket(&ann).await;
    let asked = outsider
        .request(
            "get-chat-history",
            json!({ "roomId": room, "before": seen[1]["id"] }),
        )
        .await;
    assert_eq!(refused(asked), "not_found");
}

#[tokio::test]
async fn app_data_is_bounded() {
    let s = TestServer::start().await;
    let (_, teacher) = s.user("t@example.org", Role::Instructor).await;
    let room = s.room(&teacher, json!({})).await;
    let t = s.socket(&teacher).await;
    join(&t, &room).await;
    let send = transport(&t, &room, "send").await;

    let big = json!({ "source": "camera", "note": "x".repeat(300) });
    assert_eq!(
        refused(produce(&t, &room, &send, "video", big).await),
        "bad_request"
    );
    let deep = json!({ "a": { "b": { "c": { "d": 1 } } } });
    assert_eq!(
        refused(produce(&t, &room, &send, "video", deep).await),
        "bad_request"
    );
    let not_a_label = json!({ "source": 7 });
    assert_eq!(
        refused(produce(&t, &room, &send, "video", not_a_label).await),
        "bad_request"
    );
    // Nothing was announced; a proper producer still works.
    produce(&t, &room, &send, "video", json!({ "source": "camera" }))
        .await
        .expect("a camera");
}

#[tokio::test]
async fn a_camera_labelled_screen_does_not_get_around_allow_student_video() {
    let s = TestServer::start().await;
    let (_, teacher) = s.user("t@example.org", Role::Instructor).await;
    let (_, ann) = s.user("ann@example.org", Role::Student).await;
    let settings = json!({ "allowStudentVideo": false, "allowStudentScreen": true });
    let room = s.room(&teacher, settings).await;
    let t = s.socket(&teacher).await;
    join(&t, &room).await;
    let a = s.socket(&ann).await;
    join(&a, &room).await;

    let screen = json!({ "source": "screen" });
    let first = transport(&a, &room, "send").await;
    produce(&a, &room, &first, "video", screen.clone())
        .await
        .expect("the screen share the room allows");
    // A second "screen" (the camera, relabelled) on another transport.
    let second = transport(&a, &room, "send").await;
    assert_eq!(
        refused(produce(&a, &room, &second, "video", screen).await),
        "forbidden"
    );
    // A video labelled anything else is a camera, which the room forbids.
    let mic = json!({ "source": "mic" });
    assert_eq!(
        refused(produce(&a, &room, &second, "video", mic).await),
        "forbidden"
    );
    let info = a
        .request("get-room-info", json!({ "roomId": room }))
        .await
        .unwrap();
    assert_eq!(info["producers"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn the_consumer_cap_answers_limit_reached() {
    let s = TestServer::start_with(|a| a.socket_events_per_second = 1000).await;
    let (_, teacher) = s.user("t@example.org", Role::Instructor).await;
    let (_, ann) = s.user("ann@example.org", Role::Student).await;
    let room = s.room(&teacher, json!({})).await;
    let t = s.socket(&teacher).await;
    join(&t, &room).await;
    let send = transport(&t, &room, "send").await;
    let mic = produce(&t, &room, &send, "audio", json!({ "source": "mic" }))
        .await
        .unwrap();
    let a = s.socket(&ann).await;
    join(&a, &room).await;
    let recv = transport(&a, &room, "recv").await;
    let caps = chromium_fixture()["deviceRtpCapabilities"].clone();
    let consume = || {
        a.request(
            "consume",
            json!({ "roomId": room, "transportId": recv, "producerId": mic["id"], "rtpCapabilities": caps }),
        )
    };
    for _ in 0..100 {
        consume().await.expect("within the cap");
    }
    assert_eq!(refused(consume().await), "limit_reached");
}
