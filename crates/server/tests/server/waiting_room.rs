//! The waiting room (`settings.waitingRoom`, docs/protocol.md *Waiting
//! room*): students wait outside until a host is present or lets them in;
//! hosts see who waits and admit or deny them; hosts never wait.

use crate::common;

use std::time::Duration;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use vtp_client::SocketIoClient;
use vtp_store::Role;

const WAIT: Duration = Duration::from_secs(5);

fn names(changed: &Value) -> Vec<String> {
    changed["waiting"]
        .as_array()
        .unwrap_or_else(|| panic!("waiting-changed: {changed}"))
        .iter()
        .map(|w| w["displayName"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The next `waiting-changed` the host gets, as the names in it.
async fn waiting(host: &SocketIoClient) -> Vec<String> {
    names(&host.next_event("waiting-changed", WAIT).await.unwrap())
}

async fn wait_in(socket: &SocketIoClient, room: &str) -> Value {
    let answer = join(socket, room).await;
    assert_eq!(answer["waiting"], true, "{answer}");
    answer
}

#[tokio::test]
async fn a_student_waits_until_a_host_admits_them_and_a_reload_does_not_wait_again() {
    let s = TestServer::start().await;
    let (_, teacher) = s.user("t@example.org", Role::Instructor).await;
    let (_, ann) = s.user("ann@example.org", Role::Student).await;
    let room = s
        .room(&teacher, json!({ "waitingRoom": "host_admits" }))
        .await;
    let (_, stored) = s
        .get(&format!("/api/v1/rooms/{room}"), Some(&teacher))
        .await;
    assert_eq!(stored["settings"]["waitingRoom"], "host_admits", "{stored}");

    // Before the class: Ann waits, and nothing starts.
    let a = s.socket(&ann).await;
    let answer = wait_in(&a, &room).await;
    assert_eq!(answer["status"], "not_started", "{answer}");
    let (_, after) = s
        .get(&format!("/api/v1/rooms/{room}"), Some(&teacher))
        .await;
    assert_eq!(
        after["status"], "open",
        "no session for a waiting student: {after}"
    );
    // Waiting is not being in the room.
    for (event, payload) in [
        ("get-participants", json!({ "roomId": room })),
        ("chat-message", json!({ "roomId": room, "text": "hello?" })),
        (
            "create-transport",
            json!({ "roomId": room, "direction": "recv" }),
        ),
    ] {
        assert_eq!(
            refused(a.request(event, payload).await),
            "not_found",
            "{event}"
        );
    }

    // The teacher opens the class (hosts never wait) and sees Ann waiting;
    // Ann learns that a teacher is there.
    let t = s.socket(&teacher).await;
    let joined = join(&t, &room).await;
    assert_eq!(joined["role"], "host", "{joined}");
    assert!(joined["peers"].as_array().unwrap().is_empty(), "{joined}");
    assert_eq!(waiting(&t).await, ["ann"]);
    let status = a.next_event("waiting-status", WAIT).await.unwrap();
    assert_eq!(status["status"], "waiting_for_host", "{status}");

    // Admitted: Ann joins for real.
    let id = answer["waitingId"].as_str().unwrap();
    let ack = t
        .request("admit", json!({ "roomId": room, "waitingId": id }))
        .await
        .unwrap();
    assert_eq!(ack["count"], 1, "{ack}");
    assert!(waiting(&t).await.is_empty());
    a.next_event("admitted", WAIT).await.unwrap();
    let in_room = join(&a, &room).await;
    assert_eq!(in_room["role"], "participant", "{in_room}");
    t.next_event("peer-joined", WAIT).await.unwrap();

    // A reload (a new connection of the same account) does not wait again.
    a.disconnect().await;
    let again = s.socket(&ann).await;
    let back = join(&again, &room).await;
    assert!(back["peerId"].is_string(), "{back}");
}

#[tokio::test]
async fn hosts_admit_all_or_deny_and_students_may_not() {
    let s = TestServer::start().await;
    let (_, teacher) = s.user("t@example.org", Role::Instructor).await;
    let room = s
        .room(&teacher, json!({ "waitingRoom": "host_admits" }))
        .await;
    let t = s.socket(&teacher).await;
    join(&t, &room).await;
    assert!(waiting(&t).await.is_empty(), "the list as the host joins");

    let mut students = Vec::new();
    for name in ["bea", "cal", "dan"] {
        let (_, token) = s.user(&format!("{name}@example.org"), Role::Student).await;
        let socket = s.socket(&token).await;
        let answer = wait_in(&socket, &room).await;
        assert_eq!(answer["status"], "waiting_for_host", "{answer}");
        let listed = waiting(&t).await;
        assert_eq!(listed.last().map(String::as_str), Some(name), "{listed:?}");
        students.push((socket, answer["waitingId"].as_str().unwrap().to_string()));
    }

    // Malformed decisions are refused and change nothing.
    for bad in [
        json!({ "roomId": room }),
        json!({ "roomId": room, "waitingId": students[0].1, "all": true }),
        json!({ "roomId": room, "waitingId": 5 }),
        json!({ "roomId": room, "waitingId": "" }),
        json!({ "roomId": room, "waitingId": "x".repeat(65) }),
        json!({ "roomId": room, "all": "yes" }),
        json!([1, 2]),
    ] {
        assert_eq!(
            refused(t.request("admit", bad.clone()).await),
            "bad_request",
            "{bad}"
        );
        assert_eq!(
            refused(t.request("deny", bad.clone()).await),
            "bad_request",
            "{bad}"
        );
    }
    assert_eq!(
        refused(
            t.request("admit", json!({ "roomId": room, "waitingId": "nobody" }))
                .await
        ),
        "not_found"
    );
    // A waiting student is no peer: deciding is `not_found` to them.
    assert_eq!(
        refused(
            students[1]
                .0
                .request("admit", json!({ "roomId": room, "all": true }))
                .await
        ),
        "not_found"
    );

    // Deny Bea: she is told, and the others still wait.
    let ack = t
        .request(
            "deny",
            json!({ "roomId": room, "waitingId": students[0].1 }),
        )
        .await
        .unwrap();
    assert_eq!(ack["count"], 1, "{ack}");
    assert_eq!(waiting(&t).await, ["cal", "dan"], "nothing else changed");
    let denied = students[0].0.next_event("denied", WAIT).await.unwrap();
    assert_eq!(denied["roomId"], room.as_str(), "{denied}");

    // Admit all: Cal and Dan come in.
    let ack = t
        .request("admit", json!({ "roomId": room, "all": true }))
        .await
        .unwrap();
    assert_eq!(ack["count"], 2, "{ack}");
    assert!(waiting(&t).await.is_empty());
    for (socket, _) in &students[1..] {
        socket.next_event("admitted", WAIT).await.unwrap();
        let joined = join(socket, &room).await;
        assert_eq!(joined["role"], "participant", "{joined}");
    }
    // Now a participant, Cal still may not decide.
    assert_eq!(
        refused(
            students[1]
                .0
                .request("admit", json!({ "roomId": room, "all": true }))
                .await
        ),
        "forbidden"
    );
    // Bea, turned away, may ask again; she waits again.
    wait_in(&students[0].0, &room).await;
    assert_eq!(waiting(&t).await, ["bea"]);
}

#[tokio::test]
async fn leaving_or_losing_the_connection_ends_the_wait_and_a_host_leaving_admits_nobody() {
    let s = TestServer::start().await;
    let (_, teacher) = s.user("t@example.org", Role::Instructor).await;
    let (_, ann) = s.user("ann@example.org", Role::Student).await;
    let (_, ben) = s.user("ben@example.org", Role::Student).await;
    let (_, early) = s.user("early@example.org", Role::Student).await;
    let room = s
        .room(&teacher, json!({ "waitingRoom": "host_admits" }))
        .await;
    let t = s.socket(&teacher).await;
    join(&t, &room).await;
    assert!(waiting(&t).await.is_empty());
    // Someone let in keeps the class going while the teacher is away.
    let e = s.socket(&early).await;
    let id = wait_in(&e, &room).await["waitingId"]
        .as_str()
        .unwrap()
        .to_string();
    waiting(&t).await;
    t.request("admit", json!({ "roomId": room, "waitingId": id }))
        .await
        .unwrap();
    waiting(&t).await;
    e.next_event("admitted", WAIT).await.unwrap();
    join(&e, &room).await;

    let a = s.socket(&ann).await;
    wait_in(&a, &room).await;
    assert_eq!(waiting(&t).await, ["ann"]);
    a.request("leave-room", json!({ "roomId": room }))
        .await
        .unwrap();
    assert!(waiting(&t).await.is_empty(), "leave-room ends the wait");

    let b = s.socket(&ben).await;
    wait_in(&b, &room).await;
    assert_eq!(waiting(&t).await, ["ben"]);
    b.drop_connection().await;
    assert!(
        waiting(&t).await.is_empty(),
        "a lost connection ends the wait"
    );

    // A host leaving lets nobody in: Ann, waiting again, is told that no
    // teacher is there, and stays out.
    let a = s.socket(&ann).await;
    wait_in(&a, &room).await;
    assert_eq!(waiting(&t).await, ["ann"]);
    t.request("leave-room", json!({ "roomId": room }))
        .await
        .unwrap();
    let status = a.next_event("waiting-status", WAIT).await.unwrap();
    assert_eq!(status["status"], "not_started", "{status}");
    assert_eq!(
        refused(
            a.request("get-participants", json!({ "roomId": room }))
                .await
        ),
        "not_found"
    );
    // The teacher comes back: she sees Ann still waiting.
    let t = s.socket(&teacher).await;
    join(&t, &room).await;
    assert_eq!(waiting(&t).await, ["ann"]);

    // Ending the class sends the waiting people away too.
    t.request("end-session", json!({ "roomId": room }))
        .await
        .unwrap();
    a.next_event("session-ended", WAIT).await.unwrap();
}

#[tokio::test]
async fn until_host_present_lets_everyone_in_when_a_host_comes() {
    let s = TestServer::start().await;
    let (_, teacher) = s.user("t@example.org", Role::Instructor).await;
    let (_, ann) = s.user("ann@example.org", Role::Student).await;
    let (_, ben) = s.user("ben@example.org", Role::Student).await;
    let room = s
        .room(&teacher, json!({ "waitingRoom": "until_host_present" }))
        .await;
    let a = s.socket(&ann).await;
    assert_eq!(wait_in(&a, &room).await["status"], "not_started");

    let t = s.socket(&teacher).await;
    join(&t, &room).await;
    a.next_event("admitted", WAIT).await.unwrap();
    join(&a, &room).await;
    // With the teacher there, Ben comes straight in.
    let b = s.socket(&ben).await;
    assert!(join(&b, &room).await["peerId"].is_string());
    // Turning the waiting room off while someone waits lets them in: here,
    // the teacher leaves, a new student waits, and the owner turns it off.
    t.request("leave-room", json!({ "roomId": room }))
        .await
        .unwrap();
    let (_, cal) = s.user("cal@example.org", Role::Student).await;
    let c = s.socket(&cal).await;
    assert_eq!(wait_in(&c, &room).await["status"], "not_started");
    let (status, _) = s
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/rooms/{room}"),
            Some(&teacher),
            Some(json!({ "settings": { "waitingRoom": "off" } })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    c.next_event("admitted", WAIT).await.unwrap();
    assert!(join(&c, &room).await["peerId"].is_string());
}

#[tokio::test]
async fn the_setting_is_checked_and_off_keeps_todays_behaviour() {
    let s = TestServer::start().await;
    let (_, teacher) = s.user("t@example.org", Role::Instructor).await;
    let (_, ann) = s.user("ann@example.org", Role::Student).await;
    let room = s.room(&teacher, json!({})).await;
    let (_, stored) = s
        .get(&format!("/api/v1/rooms/{room}"), Some(&teacher))
        .await;
    assert_eq!(stored["settings"]["waitingRoom"], "off", "{stored}");
    for bad in [json!("sometimes"), json!(true), json!("HOST_ADMITS")] {
        let (status, body) = s
            .call(
                reqwest::Method::PATCH,
                &format!("/api/v1/rooms/{room}"),
                Some(&teacher),
                Some(json!({ "settings": { "waitingRoom": bad } })),
            )
            .await;
        assert!(status.is_client_error(), "{bad}: {status} {body}");
    }
    let (_, same) = s
        .get(&format!("/api/v1/rooms/{room}"), Some(&teacher))
        .await;
    assert_eq!(same["settings"]["waitingRoom"], "off", "{same}");
    // Off: before the class a student is told it has not started.
    let a = s.socket(&ann).await;
    assert_eq!(
        refused(a.request("join-room", json!({ "roomId": room })).await),
        "not_started"
    );
}
