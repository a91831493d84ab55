//! One person, one presence: the same account joining a room from a second
//! tab or device (a page that joins `fresh`, as the web app does) takes
//! the place over, as Meet does, instead of becoming a second person with
//! a second camera and microphone.

use crate::common;

use common::media::publish;
use common::*;
use serde_json::json;
use vtp_store::Role;

#[tokio::test]
async fn a_second_tab_of_the_same_account_takes_the_place_over() {
    let s = TestServer::start().await;
    let (_, teacher) = s.user("t@example.org", Role::Instructor).await;
    // The observer opens the class (a session starts when a host joins).
    let (_, observing) = s.user("admin@example.org", Role::Admin).await;
    let room = s.room(&teacher, json!({})).await;
    let observer = s.socket(&observing).await;
    join(&observer, &room).await;

    // The teacher's first tab publishes camera and microphone.
    let first = publish(&s, &teacher, &room).await;
    let joined = observer.next_event("peer-joined", WAIT).await.unwrap();
    let peer_id = joined["peer"]["peerId"].clone();
    for _ in 0..2 {
        observer.next_event("new-producer", WAIT).await.unwrap();
    }

    // A second tab of the same account joins the same room.
    // A page that starts afresh (the web app always does) takes the place over.
    let second = s.socket(&teacher).await;
    let again = second
        .request("join-room", json!({ "roomId": room, "fresh": true }))
        .await
        .expect("the second tab joins");
    assert_eq!(again["peerId"], peer_id, "the same place");
    assert_eq!(again["resumed"], true);
    assert_eq!(
        again["peers"].as_array().map(Vec::len),
        Some(1),
        "the others: the observer only, not the first tab"
    );

    // The first tab is told, and is out of the room.
    let told = first
        .socket
        .next_event("joined-elsewhere", WAIT)
        .await
        .unwrap();
    assert_eq!(told["roomId"], room);
    assert_eq!(
        refused(
            first
                .socket
                .request("chat-message", json!({ "roomId": room, "text": "old tab" }))
                .await
        ),
        "not_found"
    );

    // What the first tab sent is closed for everyone; nobody new arrived.
    let mut closed = Vec::new();
    for _ in 0..2 {
        let event = observer.next_event("producer-closed", WAIT).await.unwrap();
        assert_eq!(event["peerId"], peer_id);
        closed.push(event["producerId"].clone());
    }
    closed.sort_by_key(|id| id.to_string());
    let mut sent = vec![first.ids.0.clone(), first.ids.1.clone()];
    sent.sort_by_key(|id| id.to_string());
    assert_eq!(closed, sent);
    observer
        .expect_no_event("peer-joined", WAIT)
        .await
        .expect("no second person");
    let info = observer
        .request("get-participants", json!({ "roomId": room }))
        .await
        .unwrap();
    assert_eq!(info["peers"].as_array().map(Vec::len), Some(2));

    // The second tab speaks for the teacher now.
    second
        .request("chat-message", json!({ "roomId": room, "text": "new tab" }))
        .await
        .expect("the new tab chats");
    assert_eq!(
        observer.next_event("chat-message", WAIT).await.unwrap()["peerId"],
        peer_id
    );
    // The first tab going away does not take the teacher out of the room.
    first.socket.disconnect().await;
    observer
        .expect_no_event("peer-left", WAIT)
        .await
        .expect("the teacher stays");
}
