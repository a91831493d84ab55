//! Reactions and the host's room-wide tools of docs/protocol.md (issue 18):
//! `send-reaction`, `mute-all`, `lower-all-hands`, `ask-to-unmute`, over
//! Socket.IO with the real SFU behind them: who may, limits, malformed
//! payloads that change nothing, and what a later joiner finds.

use crate::common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use vtp_client::SocketIoClient;
use vtp_store::Role;

/// Publishes a microphone for `s` (a send transport, then `produce`); the
/// producer's id.
async fn microphone(s: &SocketIoClient, room: &str) -> Value {
    let send = s
        .request(
            "create-transport",
            json!({ "roomId": room, "direction": "send" }),
        )
        .await
        .expect("create-transport");
    let mic = s
        .request(
            "produce",
            json!({ "roomId": room, "transportId": send["id"], "kind": "audio", "rtpParameters": produce_params("audio") }),
        )
        .await
        .expect("produce");
    mic["id"].clone()
}

/// Whether a peer's hand is up, as `get-room-info` tells `asker`.
async fn hand_of(asker: &SocketIoClient, room: &str, peer: &Value) -> bool {
    let info = asker
        .request("get-room-info", json!({ "roomId": room }))
        .await
        .unwrap();
    info["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["peerId"] == *peer)
        .map(|p| p["handRaised"] == true)
        .expect("peer in the room")
}

#[tokio::test]
async fn reactions_reach_everyone_within_limits() {
    let s = TestServer::start().await;
    let (_, teacher) = s.user("t@example.org", Role::Instructor).await;
    let (_, ann) = s.user("ann@example.org", Role::Student).await;
    let (_, olga) = s.user("olga@example.org", Role::Student).await;
    let room = s.room(&teacher, json!({})).await;
    let (t, a, o) = (
        s.socket(&teacher).await,
        s.socket(&ann).await,
        s.socket(&olga).await,
    );
    join(&t, &room).await;
    let aj = join(&a, &room).await;

    a.request("send-reaction", json!({ "roomId": room, "emoji": "👍" }))
        .await
        .unwrap();
    let expected = json!({ "peerId": aj["peerId"], "emoji": "👍" });
    assert_eq!(t.next_event("reaction", WAIT).await.unwrap(), expected);
    assert_eq!(
        a.next_event("reaction", WAIT).await.unwrap(),
        expected,
        "the sender's page shows it on its own tile too"
    );

    // Outside the closed list, or malformed: refused, nobody sees anything.
    for bad in [
        json!({ "roomId": room, "emoji": "💩" }),
        json!({ "roomId": room, "emoji": "👍👍" }),
        json!({ "roomId": room, "emoji": "" }),
        json!({ "roomId": room, "emoji": 5 }),
        json!({ "roomId": room }),
        json!({ "emoji": "👍" }),
        json!("👍"),
    ] {
        assert_eq!(
            refused(a.request("send-reaction", bad.clone()).await),
            "bad_request",
            "{bad}"
        );
    }
    t.expect_no_event("reaction", Duration::from_millis(200))
        .await
        .expect("no reaction went out");

    // Someone not in the room cannot react in it.
    assert_eq!(
        refused(
            o.request("send-reaction", json!({ "roomId": room, "emoji": "🎉" }))
                .await
        ),
        "not_found"
    );

    // A burst of three, then one a second: a fast clicker is refused, and
    // only what was accepted is delivered.
    let mut sent = 0;
    let mut limited = false;
    for _ in 0..6 {
        match a
            .request("send-reaction", json!({ "roomId": room, "emoji": "🎉" }))
            .await
        {
            Ok(_) => sent += 1,
            Err(e) => {
                assert_eq!(refused(Err(e)), "rate_limited");
                limited = true;
                break;
            }
        }
    }
    assert!(limited, "six reactions at once are more than the budget");
    assert!(sent <= 3, "a burst of at most three (sent {sent} more)");
    for _ in 0..sent {
        assert_eq!(t.next_event("reaction", WAIT).await.unwrap()["emoji"], "🎉");
    }
    t.expect_no_event("reaction", Duration::from_millis(200))
        .await
        .expect("the refused one was not delivered");
    // The budget refills: a second later a reaction goes through again.
    wait_until(
        Duration::from_secs(3),
        "the reaction budget to refill",
        async || {
            a.request("send-reaction", json!({ "roomId": room, "emoji": "❤️" }))
                .await
                .is_ok()
        },
    )
    .await;
    assert_eq!(t.next_event("reaction", WAIT).await.unwrap()["emoji"], "❤️");
}

#[tokio::test]
async fn host_tools_are_for_hosts_only() {
    let s = TestServer::start().await;
    let (_, teacher) = s.user("t@example.org", Role::Instructor).await;
    let (_, ann) = s.user("ann@example.org", Role::Student).await;
    let (_, bob) = s.user("bob@example.org", Role::Student).await;
    let (_, olga) = s.user("olga@example.org", Role::Student).await;
    let room = s.room(&teacher, json!({})).await;
    let (t, a, b, o) = (
        s.socket(&teacher).await,
        s.socket(&ann).await,
        s.socket(&bob).await,
        s.socket(&olga).await,
    );
    let tj = join(&t, &room).await;
    let aj = join(&a, &room).await;
    let bj = join(&b, &room).await;
    let mic = microphone(&b, &room).await;
    t.next_event("new-producer", WAIT).await.unwrap();
    b.request("raise-hand", json!({ "roomId": room }))
        .await
        .unwrap();
    t.next_event("hand-raised", WAIT).await.unwrap();
    // A presenter is not a host either.
    t.request(
        "host-action",
        json!({ "roomId": room, "action": "promote", "peerId": aj["peerId"] }),
    )
    .await
    .unwrap();
    a.next_event("role-changed", WAIT).await.unwrap();

    let requests = [
        ("mute-all", json!({ "roomId": room })),
        ("lower-all-hands", json!({ "roomId": room })),
        (
            "ask-to-unmute",
            json!({ "roomId": room, "peerId": bj["peerId"] }),
        ),
    ];
    for (event, payload) in &requests {
        assert_eq!(
            refused(a.request(event, payload.clone()).await),
            "forbidden",
            "presenter: {event}"
        );
        assert_eq!(
            refused(b.request(event, payload.clone()).await),
            "forbidden",
            "student: {event}"
        );
        assert_eq!(
            refused(o.request(event, payload.clone()).await),
            "not_found",
            "non-member: {event}"
        );
    }
    // Everyone in the room may react: the presenter and the host too.
    for (sender, peer) in [(&a, &aj["peerId"]), (&t, &tj["peerId"])] {
        sender
            .request("send-reaction", json!({ "roomId": room, "emoji": "😮" }))
            .await
            .unwrap();
        assert_eq!(
            b.next_event("reaction", WAIT).await.unwrap(),
            json!({ "peerId": peer, "emoji": "😮" })
        );
    }
    // Malformed payloads from the host: refused, nothing changes.
    for (event, payload) in [
        ("mute-all", json!({ "roomId": 5 })),
        ("lower-all-hands", json!({})),
        ("ask-to-unmute", json!({ "roomId": room })),
        ("ask-to-unmute", json!({ "roomId": room, "peerId": 7 })),
    ] {
        assert_eq!(
            refused(t.request(event, payload.clone()).await),
            "bad_request",
            "{event} {payload}"
        );
    }
    assert_eq!(
        refused(
            t.request(
                "ask-to-unmute",
                json!({ "roomId": room, "peerId": tj["peerId"] })
            )
            .await
        ),
        "bad_request",
        "a host does not ask themselves"
    );
    assert_eq!(
        refused(
            t.request(
                "ask-to-unmute",
                json!({ "roomId": room, "peerId": "ghost" })
            )
            .await
        ),
        "not_found"
    );
    b.expect_no_event("unmute-requested", Duration::from_millis(200))
        .await
        .expect("nobody was asked");
    b.expect_no_event("producer-paused", Duration::from_millis(10))
        .await
        .expect("nobody was muted");
    assert!(
        hand_of(&t, &room, &bj["peerId"]).await,
        "the hand is still up"
    );
    let info = t
        .request("get-room-info", json!({ "roomId": room }))
        .await
        .unwrap();
    let bob_mic = info["producers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["producerId"] == mic)
        .cloned()
        .unwrap();
    assert_eq!(bob_mic["paused"], false);
}

#[tokio::test]
async fn mute_all_lower_all_hands_and_ask_to_unmute() {
    let s = TestServer::start().await;
    let (_, teacher) = s.user("t@example.org", Role::Instructor).await;
    let (_, ann) = s.user("ann@example.org", Role::Student).await;
    let (_, bob) = s.user("bob@example.org", Role::Student).await;
    let (_, cleo) = s.user("cleo@example.org", Role::Student).await;
    let room = s.room(&teacher, json!({})).await;
    let (t, a, b) = (
        s.socket(&teacher).await,
        s.socket(&ann).await,
        s.socket(&bob).await,
    );
    let tj = join(&t, &room).await;
    let aj = join(&a, &room).await;
    let bj = join(&b, &room).await;
    let teacher_mic = microphone(&t, &room).await;
    let ann_mic = microphone(&a, &room).await;
    let bob_mic = microphone(&b, &room).await;
    for _ in 0..2 {
        b.next_event("new-producer", WAIT).await.unwrap();
    }

    // Mute all: every microphone but the hosts' is paused, the room is told.
    let muted = t
        .request("mute-all", json!({ "roomId": room }))
        .await
        .unwrap();
    assert_eq!(muted, json!({ "muted": 2 }));
    let mut paused = Vec::new();
    for _ in 0..2 {
        paused.push(a.next_event("producer-paused", WAIT).await.unwrap()["producerId"].clone());
    }
    paused.sort_by_key(|v| v.to_string());
    let mut expected = vec![ann_mic.clone(), bob_mic.clone()];
    expected.sort_by_key(|v| v.to_string());
    assert_eq!(paused, expected);
    let info = t
        .request("get-room-info", json!({ "roomId": room }))
        .await
        .unwrap();
    for p in info["producers"].as_array().unwrap() {
        assert_eq!(
            p["paused"],
            p["producerId"] != teacher_mic,
            "only the host's microphone is still on: {p}"
        );
    }
    assert_eq!(
        t.request("mute-all", json!({ "roomId": room }))
            .await
            .unwrap(),
        json!({ "muted": 0 }),
        "nothing left to mute"
    );

    // Ask to unmute: only the one asked hears it, and nothing is unmuted
    // by the server.
    t.request(
        "ask-to-unmute",
        json!({ "roomId": room, "peerId": aj["peerId"] }),
    )
    .await
    .unwrap();
    assert_eq!(
        a.next_event("unmute-requested", WAIT).await.unwrap(),
        json!({ "peerId": tj["peerId"] })
    );
    b.expect_no_event("unmute-requested", Duration::from_millis(200))
        .await
        .expect("only Ann was asked");
    t.expect_no_event("producer-resumed", Duration::from_millis(10))
        .await
        .expect("the server never unmutes");
    // Ann accepts: her page resumes her microphone itself.
    a.request(
        "resume-producer",
        json!({ "roomId": room, "producerId": ann_mic }),
    )
    .await
    .unwrap();
    assert_eq!(
        t.next_event("producer-resumed", WAIT).await.unwrap()["producerId"],
        ann_mic
    );

    // Lower all hands: everyone, the hands' owners included, is told.
    for s in [&a, &b] {
        s.request("raise-hand", json!({ "roomId": room }))
            .await
            .unwrap();
        t.next_event("hand-raised", WAIT).await.unwrap();
    }
    assert_eq!(
        t.request("lower-all-hands", json!({ "roomId": room }))
            .await
            .unwrap(),
        json!({ "lowered": 2 })
    );
    for (s, own) in [(&a, &aj["peerId"]), (&b, &bj["peerId"])] {
        let mut told = Vec::new();
        for _ in 0..2 {
            told.push(s.next_event("hand-lowered", WAIT).await.unwrap()["peerId"].clone());
        }
        assert!(told.contains(own), "the owner is told their hand went down");
    }
    assert!(!hand_of(&t, &room, &aj["peerId"]).await);
    assert_eq!(
        t.request("lower-all-hands", json!({ "roomId": room }))
            .await
            .unwrap(),
        json!({ "lowered": 0 })
    );

    // A later joiner finds the hands down and the microphones as they are.
    let c = s.socket(&cleo).await;
    let cj = join(&c, &room).await;
    for p in cj["peers"].as_array().unwrap() {
        assert_eq!(p["handRaised"], false, "{p}");
    }
    let bob = cj["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["peerId"] == bj["peerId"])
        .cloned()
        .unwrap();
    assert_eq!(bob["producers"][0]["paused"], true, "Bob is still muted");
}
