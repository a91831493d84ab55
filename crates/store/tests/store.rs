//! The store's contract, run against SQLite by default and against
//! PostgreSQL when `VTP_TEST_POSTGRES_URL` is set (CI runs both).

use chrono::{Duration, Utc};
use uuid::Uuid;
use vtp_store::testing::TestDatabase;
use vtp_store::*;

async fn store() -> (TestDatabase, Store) {
    let db = TestDatabase::new().await.expect("test database");
    let store = db.open().await.expect("open store");
    (db, store)
}

fn new_user(email: &str, role: Role) -> NewUser {
    NewUser {
        email: email.into(),
        display_name: format!("User {email}"),
        password_hash: "$argon2id$fake".into(),
        role,
    }
}

#[tokio::test]
async fn users_round_trip_and_email_is_unique() {
    let (_db, store) = store().await;
    let now = Utc::now();
    let ann = store
        .create_user(new_user("ann@example.org", Role::Instructor), now)
        .await
        .unwrap();
    assert_eq!(ann.role, Role::Instructor);
    assert!(!ann.disabled);
    assert_eq!(store.user_by_id(ann.id).await.unwrap(), ann);

    let creds = store.credentials_by_email("ann@example.org").await.unwrap();
    assert_eq!(creds.user.id, ann.id);
    assert_eq!(creds.password_hash, "$argon2id$fake");
    assert!(
        !format!("{creds:?}").contains("argon2id"),
        "hash must not be in Debug output"
    );

    let dup = store
        .create_user(new_user("ann@example.org", Role::Student), now)
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    assert!(matches!(
        store.user_by_id(Uuid::new_v4()).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.credentials_by_email("nobody@x.org").await,
        Err(StoreError::NotFound)
    ));
}

#[tokio::test]
async fn list_users_filters_searches_and_paginates() {
    let (_db, store) = store().await;
    let start = Utc::now();
    for i in 0..25 {
        let role = if i % 5 == 0 {
            Role::Instructor
        } else {
            Role::Student
        };
        let at = start + Duration::milliseconds(i);
        store
            .create_user(new_user(&format!("u{i:02}@example.org"), role), at)
            .await
            .unwrap();
    }
    store
        .create_user(
            new_user("odd_100%@example.org", Role::Student),
            start + Duration::seconds(1),
        )
        .await
        .unwrap();

    let page2 = store
        .list_users(&UserQuery {
            paging: Paging::Offset {
                page: 2,
                per_page: 10,
            },
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page2.total, Some(26));
    assert_eq!(page2.items.len(), 10);
    assert_eq!(
        page2.items[0].email, "u10@example.org",
        "ordered by creation"
    );

    // Keyset pages: each starts after the last row of the one before; the
    // last has no next.
    let mut emails = Vec::new();
    let mut after = None;
    let mut pages = 0;
    loop {
        let page = store
            .list_users(&UserQuery {
                paging: Paging::After { after, limit: 10 },
                ..Default::default()
            })
            .await
            .unwrap();
        pages += 1;
        emails.extend(page.items.into_iter().map(|u| u.email));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!((pages, emails.len()), (3, 26));
    assert_eq!(emails[10], "u10@example.org");
    assert_eq!(emails[25], "odd_100%@example.org");

    let instructors = store
        .list_users(&UserQuery {
            role: Some(Role::Instructor),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(instructors.total, Some(5));
    assert!(instructors.items.iter().all(|u| u.role == Role::Instructor));

    let search = |s: &str| UserQuery {
        search: Some(s.into()),
        ..Default::default()
    };
    assert_eq!(
        store.list_users(&search("U2")).await.unwrap().total,
        Some(5),
        "case-insensitive"
    );
    // `%` and `_` are literal characters, not wildcards.
    assert_eq!(
        store.list_users(&search("100%")).await.unwrap().total,
        Some(1)
    );
    assert_eq!(store.list_users(&search("_")).await.unwrap().total, Some(1));
}

#[tokio::test]
async fn update_change_password_and_delete_users() {
    let (_db, store) = store().await;
    let now = Utc::now();
    let u = store
        .create_user(new_user("bob@example.org", Role::Student), now)
        .await
        .unwrap();
    let patched = store
        .update_user(
            u.id,
            &UserPatch {
                role: Some(Role::Admin),
                disabled: Some(true),
                ..Default::default()
            },
            now,
        )
        .await
        .unwrap();
    assert_eq!(
        (
            patched.role,
            patched.disabled,
            patched.display_name.as_str()
        ),
        (Role::Admin, true, u.display_name.as_str())
    );
    assert_eq!(
        store.count_active_admins().await.unwrap(),
        0,
        "a disabled admin does not count"
    );

    let family = Uuid::new_v4();
    let token = NewRefreshToken {
        user_id: u.id,
        family_id: family,
        token_hash: "h1".into(),
        expires_at: now + Duration::days(1),
    };
    store.insert_refresh_token(&token, now).await.unwrap();
    let after = store
        .change_password(u.id, "$argon2id$new", now)
        .await
        .unwrap();
    assert_eq!(after.token_epoch, u.token_epoch + 1);
    assert_eq!(
        store.credentials_by_id(u.id).await.unwrap().password_hash,
        "$argon2id$new"
    );
    let claim = store
        .rotate_refresh_token("h1", "h2", now + Duration::days(1), now)
        .await
        .unwrap();
    assert!(
        matches!(claim, RefreshClaim::Reused { .. }),
        "password change revokes refresh tokens: {claim:?}"
    );

    store.delete_user(u.id).await.unwrap();
    assert!(matches!(
        store.delete_user(u.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.user_by_id(u.id).await,
        Err(StoreError::NotFound)
    ));
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    let (_db, store) = store().await;
    let now = Utc::now();
    let u = store
        .create_user(new_user("c@example.org", Role::Student), now)
        .await
        .unwrap();
    let family = Uuid::new_v4();
    let first = NewRefreshToken {
        user_id: u.id,
        family_id: family,
        token_hash: "t1".into(),
        expires_at: now + Duration::days(30),
    };
    store.insert_refresh_token(&first, now).await.unwrap();

    let RefreshClaim::Rotated { previous, new } = store
        .rotate_refresh_token("t1", "t2", now + Duration::days(30), now)
        .await
        .unwrap()
    else {
        panic!("first use rotates");
    };
    assert_eq!(
        (previous.family_id, new.family_id, new.user_id),
        (family, family, u.id)
    );

    // t1 again: theft signal. The family (t2 included) is revoked.
    let reuse = store
        .rotate_refresh_token("t1", "t3", now + Duration::days(30), now)
        .await
        .unwrap();
    assert_eq!(
        reuse,
        RefreshClaim::Reused {
            user_id: u.id,
            family_id: family
        }
    );
    let t2 = store
        .rotate_refresh_token("t2", "t4", now + Duration::days(30), now)
        .await
        .unwrap();
    assert!(matches!(t2, RefreshClaim::Reused { .. }), "{t2:?}");

    assert_eq!(
        store
            .rotate_refresh_token("nope", "t5", now, now)
            .await
            .unwrap(),
        RefreshClaim::Unknown
    );

    let old = NewRefreshToken {
        user_id: u.id,
        family_id: Uuid::new_v4(),
        token_hash: "old".into(),
        expires_at: now - Duration::seconds(1),
    };
    store
        .insert_refresh_token(&old, now - Duration::days(1))
        .await
        .unwrap();
    assert_eq!(
        store
            .rotate_refresh_token("old", "t6", now, now)
            .await
            .unwrap(),
        RefreshClaim::Expired
    );
    assert_eq!(store.delete_expired_refresh_tokens(now).await.unwrap(), 1);
}

#[tokio::test]
async fn logout_revokes_only_the_callers_family() {
    let (_db, store) = store().await;
    let now = Utc::now();
    let a = store
        .create_user(new_user("a@example.org", Role::Student), now)
        .await
        .unwrap();
    let b = store
        .create_user(new_user("b@example.org", Role::Student), now)
        .await
        .unwrap();
    for (user, hash) in [(a.id, "a1"), (a.id, "a2"), (b.id, "b1")] {
        let t = NewRefreshToken {
            user_id: user,
            family_id: Uuid::new_v4(),
            token_hash: hash.into(),
            expires_at: now + Duration::days(1),
        };
        store.insert_refresh_token(&t, now).await.unwrap();
    }
    assert!(
        !store
            .revoke_refresh_family_of("b1", a.id, now)
            .await
            .unwrap(),
        "not a's token"
    );
    assert!(
        store
            .revoke_refresh_family_of("a1", a.id, now)
            .await
            .unwrap()
    );
    let later = now + Duration::seconds(1);
    assert!(matches!(
        store
            .rotate_refresh_token("a1", "x", later, now)
            .await
            .unwrap(),
        RefreshClaim::Reused { .. }
    ));
    assert!(matches!(
        store
            .rotate_refresh_token("a2", "y", later, now)
            .await
            .unwrap(),
        RefreshClaim::Rotated { .. }
    ));
    assert!(matches!(
        store
            .rotate_refresh_token("b1", "z", later, now)
            .await
            .unwrap(),
        RefreshClaim::Rotated { .. }
    ));
    // a2 (spent, so still usable as a theft signal) and y.
    assert_eq!(
        store.revoke_user_refresh_tokens(a.id, now).await.unwrap(),
        2
    );
}

#[tokio::test]
async fn rooms_round_trip_filter_and_protect_owners() {
    let (_db, store) = store().await;
    let now = Utc::now();
    let owner = store
        .create_user(new_user("own@example.org", Role::Instructor), now)
        .await
        .unwrap();
    let other = store
        .create_user(new_user("oth@example.org", Role::Instructor), now)
        .await
        .unwrap();
    let settings = RoomSettings {
        max_participants: 12,
        auto_record: true,
        ..Default::default()
    };
    let room = store
        .create_room(
            &NewRoom {
                id: "physics-101".into(),
                title: "Physics 101".into(),
                owner_id: owner.id,
                settings: settings.clone(),
            },
            now,
        )
        .await
        .unwrap();
    assert_eq!((room.status, &room.settings), (RoomStatus::Open, &settings));
    assert_eq!(store.room_by_id("physics-101").await.unwrap(), room);
    let taken = store
        .create_room(
            &NewRoom {
                id: "physics-101".into(),
                title: "x".into(),
                owner_id: other.id,
                settings: Default::default(),
            },
            now,
        )
        .await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))));
    store
        .create_room(
            &NewRoom {
                id: "chem".into(),
                title: "Chemistry".into(),
                owner_id: other.id,
                settings: Default::default(),
            },
            now + Duration::seconds(1),
        )
        .await
        .unwrap();

    let all = store.list_rooms(&RoomQuery::default()).await.unwrap();
    assert_eq!(
        all.items.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["chem", "physics-101"],
        "newest first"
    );
    let first = store
        .list_rooms(&RoomQuery {
            paging: Paging::first(1),
            ..Default::default()
        })
        .await
        .unwrap();
    let next = first.next.clone().expect("a second page");
    assert_eq!(
        (first.items[0].id.as_str(), next.1.as_str()),
        ("chem", "chem")
    );
    let second = store
        .list_rooms(&RoomQuery {
            paging: Paging::After {
                after: Some(next),
                limit: 1,
            },
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        (second.items[0].id.as_str(), second.next),
        ("physics-101", None)
    );
    let mine = store
        .list_rooms(&RoomQuery {
            owner_id: Some(owner.id),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(mine.total, Some(1));
    let found = store
        .list_rooms(&RoomQuery {
            search: Some("CHEM".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(found.items[0].id, "chem");

    let closed = store
        .update_room(
            "chem",
            &RoomPatch {
                status: Some(RoomStatus::Closed),
                ..Default::default()
            },
            now,
        )
        .await
        .unwrap();
    assert_eq!(
        (closed.status, closed.title.as_str()),
        (RoomStatus::Closed, "Chemistry")
    );
    let by_status = store
        .list_rooms(&RoomQuery {
            status: Some(RoomStatus::Closed),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_status.total, Some(1));

    // An owner of rooms cannot be deleted: their rooms would lose their owner.
    let refused = store.delete_user(owner.id).await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    store.delete_room("physics-101").await.unwrap();
    assert!(matches!(
        store.delete_room("physics-101").await,
        Err(StoreError::NotFound)
    ));
    store.delete_user(owner.id).await.unwrap();
}

#[tokio::test]
async fn data_survives_reopening() {
    let db = TestDatabase::new().await.unwrap();
    let store = db.open().await.unwrap();
    let u = store
        .create_user(new_user("keep@example.org", Role::Admin), Utc::now())
        .await
        .unwrap();
    store.close().await;
    let reopened = db.open().await.unwrap();
    assert_eq!(reopened.user_by_id(u.id).await.unwrap(), u);
    assert_eq!(reopened.schema_version(), 9, "every migration applied");
    reopened.ping().await.unwrap();
}
