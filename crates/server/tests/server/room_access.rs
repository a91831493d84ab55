//! Who may see and do what in a room (docs/protocol.md, *Room roles*): the
//! same rule over HTTP and Socket.IO, room requests only for those in the
//! room, and chat history only of the sessions one attended.

use crate::common;

use common::*;
use serde_json::json;
use vtp_store::Role;

#[tokio::test]
async fn an_instructor_is_a_host_of_their_own_rooms_only() {
    let s = TestServer::start().await;
    let (_, owner) = s.user("owner@example.org", Role::Instructor).await;
    let (_, other) = s.user("other@example.org", Role::Instructor).await;
    let (_, admin) = s.user("admin@example.org", Role::Admin).await;
    let room = s.room(&owner, json!({})).await;
    let o = s.socket(&owner).await;
    join(&o, &room).await;

    let x = s.socket(&other).await;
    assert_eq!(join(&x, &room).await["role"], "participant");
    let closing = x.request("close-room", json!({ "roomId": room })).await;
    assert_eq!(refused(closing), "forbidden");
    let recording = x
        .request("start-recording", json!({ "roomId": room }))
        .await;
    assert_eq!(refused(recording), "forbidden");
    // Over HTTP, the same answer.
    let path = format!("/api/v1/rooms/{room}/recording");
    assert_eq!(s.post(&path, Some(&other), json!({})).await.0, 403);
    let sessions = format!("/api/v1/rooms/{room}/sessions");
    assert_eq!(s.get(&sessions, Some(&other)).await.0, 403);

    // Admins are hosts everywhere.
    let a = s.socket(&admin).await;
    assert_eq!(join(&a, &room).await["role"], "host");
    assert_eq!(s.get(&sessions, Some(&admin)).await.0, 200);
}

#[tokio::test]
async fn room_requests_need_a_place_in_the_room() {
    let s = TestServer::start().await;
    let (_, teacher) = s.user("t@example.org", Role::Instructor).await;
    let (_, ann) = s.user("ann@example.org", Role::Student).await;
    let room = s.room(&teacher, json!({})).await;
    let t = s.socket(&teacher).await;
    join(&t, &room).await;

    let a = s.socket(&ann).await;
    for event in ["get-room-info", "get-participants"] {
        let asked = a.request(event, json!({ "roomId": room })).await;
        assert_eq!(refused(asked), "not_found", "{event} before joining");
    }
    let aj = join(&a, &room).await;
    a.request("get-room-info", json!({ "roomId": room }))
        .await
        .expect("in the room");
    t.request(
        "host-action",
        json!({ "roomId": room, "action": "remove", "peerId": aj["peerId"] }),
    )
    .await
    .unwrap();
    a.next_event("removed", WAIT).await.unwrap();
    for event in ["get-room-info", "get-participants"] {
        let asked = a.request(event, json!({ "roomId": room })).await;
        assert_eq!(refused(asked), "not_found", "{event} once removed");
    }
}

#[tokio::test]
async fn chat_history_is_readable_only_for_sessions_one_attended() {
    let s = TestServer::start().await;
    let (_, teacher) = s.user("t@example.org", Role::Instructor).await;
    let (_, ann) = s.user("ann@example.org", Role::Student).await;
    let (_, bob) = s.user("bob@example.org", Role::Student).await;
    let room = s.room(&teacher, json!({})).await;

    // Session 1: the teacher and Ann; session 2: the teacher and Bob.
    for (student, text) in [(&ann, "first"), (&bob, "second")] {
        let t = s.socket(&teacher).await;
        join(&t, &room).await;
        let p = s.socket(student).await;
        join(&p, &room).await;
        p.request("chat-message", json!({ "roomId": room, "text": text }))
            .await
            .unwrap();
        p.request("leave-room", json!({ "roomId": room }))
            .await
            .unwrap();
        t.request("leave-room", json!({ "roomId": room }))
            .await
            .unwrap();
    }
    let (_, sessions) = s
        .get(&format!("/api/v1/rooms/{room}/sessions"), Some(&teacher))
        .await;
    let first_session = sessions["items"][1]["id"].as_str().unwrap().to_string();

    let chat = format!("/api/v1/rooms/{room}/chat");
    let texts = |body: &serde_json::Value| -> Vec<String> {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["text"].as_str().unwrap().to_string())
            .collect()
    };
    let (status, body) = s.get(&chat, Some(&bob)).await;
    assert_eq!(
        (status.as_u16(), texts(&body)),
        (200, vec!["second".into()])
    );
    let (status, _) = s
        .get(&format!("{chat}?sessionId={first_session}"), Some(&bob))
        .await;
    assert_eq!(status, 403, "a session Bob did not attend");
    let (_, body) = s.get(&chat, Some(&teacher)).await;
    assert_eq!(texts(&body), vec!["second", "first"], "hosts read all");
}
