//! Live sessions, attendance and chat, on both backends.

use chrono::{Duration, SubsecRound, Utc};
use vtp_store::testing::TestDatabase;
use vtp_store::*;

async fn setup() -> (TestDatabase, Store, User, Room) {
    let db = TestDatabase::new().await.unwrap();
    let store = db.open().await.unwrap();
    let now = Utc::now();
    let user = store
        .create_user(
            NewUser {
                email: "t@example.org".into(),
                display_name: "T".into(),
                password_hash: "x".into(),
                role: Role::Instructor,
            },
            now,
        )
        .await
        .unwrap();
    let room = store
        .create_room(
            &NewRoom {
                id: "r1".into(),
                title: "R".into(),
                owner_id: user.id,
                settings: Default::default(),
            },
            now,
        )
        .await
        .unwrap();
    (db, store, user, room)
}

#[tokio::test]
async fn sessions_track_attendance_and_room_status() {
    let (_db, store, user, room) = setup().await;
    // PostgreSQL keeps microseconds: compare at that precision.
    let t0 = Utc::now().trunc_subsecs(6);
    let session = store.start_session(&room.id, t0).await.unwrap();
    assert_eq!(
        store.room_by_id(&room.id).await.unwrap().status,
        RoomStatus::Live
    );

    let new = |peer: &str| NewParticipant {
        session_id: session.id,
        user_id: user.id,
        peer_id: peer.into(),
        display_name: "T".into(),
        room_role: RoomRole::Host,
    };
    let first = store.add_participant(&new("p1"), t0).await.unwrap();
    store
        .participant_left(first.id, t0 + Duration::minutes(5))
        .await
        .unwrap();
    store
        .participant_left(first.id, t0 + Duration::minutes(9))
        .await
        .unwrap(); // no effect
    let second = store
        .add_participant(&new("p2"), t0 + Duration::minutes(6))
        .await
        .unwrap();
    store
        .set_participant_role(second.id, RoomRole::Presenter)
        .await
        .unwrap();

    store
        .end_session(session.id, RoomStatus::Closed, t0 + Duration::minutes(30))
        .await
        .unwrap();
    assert_eq!(
        store.room_by_id(&room.id).await.unwrap().status,
        RoomStatus::Closed
    );
    let people = store.session_participants(session.id).await.unwrap();
    assert_eq!(people.len(), 2);
    assert_eq!(
        people[0].left_at,
        Some(t0 + Duration::minutes(5)),
        "first leave time kept"
    );
    assert_eq!(
        people[1].left_at,
        Some(t0 + Duration::minutes(30)),
        "closed by the session end"
    );
    assert_eq!(people[1].room_role, RoomRole::Presenter);

    let ended = store.session_by_id(session.id).await.unwrap();
    assert_eq!(ended.ended_at, Some(t0 + Duration::minutes(30)));
    let list = store
        .list_sessions(&room.id, &Paging::default())
        .await
        .unwrap();
    // One person, present twice, counts once.
    assert_eq!(
        (list.total, list.items[0].participant_count, list.next),
        (Some(1), 1, None)
    );

    store.delete_room(&room.id).await.unwrap();
    assert!(
        matches!(
            store.session_by_id(session.id).await,
            Err(StoreError::NotFound)
        ),
        "room deletion removes its history"
    );
}

#[tokio::test]
async fn attendance_outlives_the_account() {
    let (_db, store, _owner, room) = setup().await;
    let now = Utc::now();
    let student = store
        .create_user(
            NewUser {
                email: "s@example.org".into(),
                display_name: "S".into(),
                password_hash: "x".into(),
                role: Role::Student,
            },
            now,
        )
        .await
        .unwrap();
    let session = store.start_session(&room.id, now).await.unwrap();
    store
        .add_participant(
            &NewParticipant {
                session_id: session.id,
                user_id: student.id,
                peer_id: "p".into(),
                display_name: "S".into(),
                room_role: RoomRole::Participant,
            },
            now,
        )
        .await
        .unwrap();
    store.delete_user(student.id).await.unwrap();
    let people = store.session_participants(session.id).await.unwrap();
    assert_eq!(
        (people[0].user_id, people[0].display_name.as_str()),
        (None, "S")
    );
}

#[tokio::test]
async fn crash_leftovers_are_closed() {
    let (_db, store, user, room) = setup().await;
    // PostgreSQL keeps microseconds: compare at that precision.
    let t0 = Utc::now().trunc_subsecs(6);
    let session = store.start_session(&room.id, t0).await.unwrap();
    store
        .add_participant(
            &NewParticipant {
                session_id: session.id,
                user_id: user.id,
                peer_id: "p".into(),
                display_name: "T".into(),
                room_role: RoomRole::Host,
            },
            t0,
        )
        .await
        .unwrap();
    let t1 = t0 + Duration::minutes(1);
    assert_eq!(store.close_abandoned_sessions(t1).await.unwrap(), 1);
    assert_eq!(
        store.close_abandoned_sessions(t1).await.unwrap(),
        0,
        "idempotent"
    );
    assert_eq!(
        store.room_by_id(&room.id).await.unwrap().status,
        RoomStatus::Open
    );
    assert_eq!(
        store.session_participants(session.id).await.unwrap()[0].left_at,
        Some(t1)
    );
}

#[tokio::test]
async fn chat_is_paginated_newest_first() {
    let (_db, store, user, room) = setup().await;
    // PostgreSQL keeps microseconds: compare at that precision.
    let t0 = Utc::now().trunc_subsecs(6);
    let s1 = store.start_session(&room.id, t0).await.unwrap();
    let mut sent = Vec::new();
    for i in 0..7 {
        // Two messages share each timestamp: the id breaks ties.
        let at = t0 + Duration::seconds(i / 2);
        let m = store
            .insert_chat_message(
                &NewChatMessage {
                    room_id: room.id.clone(),
                    session_id: s1.id,
                    user_id: user.id,
                    peer_id: "p".into(),
                    display_name: "T".into(),
                    body: format!("m{i}"),
                },
                at,
            )
            .await
            .unwrap();
        sent.push(m);
    }
    store
        .end_session(s1.id, RoomStatus::Open, t0 + Duration::minutes(1))
        .await
        .unwrap();
    let s2 = store
        .start_session(&room.id, t0 + Duration::minutes(2))
        .await
        .unwrap();
    store
        .insert_chat_message(
            &NewChatMessage {
                room_id: room.id.clone(),
                session_id: s2.id,
                user_id: user.id,
                peer_id: "p".into(),
                display_name: "T".into(),
                body: "later".into(),
            },
            t0 + Duration::minutes(2),
        )
        .await
        .unwrap();

    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .chat_messages(&ChatQuery {
                room_id: room.id.clone(),
                session_id: Some(s1.id),
                attended_by: None,
                paging: Paging::After { after, limit: 3 },
            })
            .await
            .unwrap();
        assert!(!page.items.is_empty(), "a next page is never empty");
        seen.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7, "every message once");
    let mut expected = sent.clone();
    expected.sort_by_key(|m| std::cmp::Reverse((m.sent_at, m.id)));
    assert_eq!(seen, expected);

    let all = store
        .chat_messages(&ChatQuery {
            room_id: room.id.clone(),
            session_id: None,
            attended_by: None,
            paging: Paging::first(100),
        })
        .await
        .unwrap()
        .items;
    assert_eq!((all.len(), all[0].body.as_str()), (8, "later"));
}
