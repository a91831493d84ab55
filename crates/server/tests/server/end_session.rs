//! Ending today's class (`end-session`) as opposed to archiving the room
//! (`close-room`): everyone leaves, the room stays open, and joining again
//! starts the next session.

use crate::common;

use std::time::Duration;

use common::*;
use serde_json::json;
use vtp_store::Role;

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn a_host_ends_the_class_and_the_room_stays_open_for_the_next() {
    let s = TestServer::start().await;
    let (_, teacher) = s.user("t@example.org", Role::Instructor).await;
    let (_, ann) = s.user("ann@example.org", Role::Student).await;
    let room = s.room(&teacher, json!({})).await;
    let (t, a) = (s.socket(&teacher).await, s.socket(&ann).await);
    join(&t, &room).await;
    join(&a, &room).await;

    // A student may not end the class.
    assert_eq!(
        refused(a.request("end-session", json!({ "roomId": room })).await),
        "forbidden"
    );
    t.request("end-session", json!({ "roomId": room }))
        .await
        .unwrap();
    let ended = a.next_event("session-ended", WAIT).await.unwrap();
    assert_eq!(ended["reason"], "ended by a host");
    let (_, after) = s
        .get(&format!("/api/v1/rooms/{room}"), Some(&teacher))
        .await;
    assert_eq!(after["status"], "open", "{after}");
    let (_, sessions) = s
        .get(&format!("/api/v1/rooms/{room}/sessions"), Some(&teacher))
        .await;
    assert_eq!(sessions["items"].as_array().unwrap().len(), 1, "{sessions}");
    assert!(sessions["items"][0]["endedAt"].is_string(), "{sessions}");

    // Next week: the teacher opens the class again (a second session) and
    // the student joins it.
    let (t2, a2) = (s.socket(&teacher).await, s.socket(&ann).await);
    join(&t2, &room).await;
    join(&a2, &room).await;
    let (_, sessions) = s
        .get(&format!("/api/v1/rooms/{room}/sessions"), Some(&teacher))
        .await;
    let items = sessions["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{sessions}");
    assert!(
        items[0]["endedAt"].is_null(),
        "the new session runs: {sessions}"
    );
}
