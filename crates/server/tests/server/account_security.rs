//! Accounts under attack (issue 16): revocation reaching live sockets,
//! the last-admin guard and refresh rotation under concurrent requests,
//! sign-in lockout that a stranger cannot turn against the owner, and
//! password strength.

use crate::common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vtp_store::Role;

async fn patch_user(s: &TestServer, token: &str, id: &str, body: Value) -> (StatusCode, Value) {
    s.call(
        Method::PATCH,
        &format!("/api/v1/users/{id}"),
        Some(token),
        Some(body),
    )
    .await
}

#[tokio::test]
async fn a_disabled_users_live_socket_is_told_and_cut_off() {
    let s = TestServer::start().await;
    let (_, admin) = s.user("root@example.org", Role::Admin).await;
    let (_, teacher) = s.user("teach@example.org", Role::Instructor).await;
    let (sid, student) = s.user("kid@example.org", Role::Student).await;
    let room = s.room(&teacher, json!({})).await;
    let host = s.socket(&teacher).await;
    join(&host, &room).await;
    let kid = s.socket(&student).await;
    let joined = join(&kid, &room).await;
    let kid_peer = joined["peerId"].as_str().unwrap().to_string();
    // A second socket of the same account that joined no room.
    let lobby = s.socket(&student).await;
    kid.request("chat-message", json!({ "roomId": room, "text": "hi" }))
        .await
        .expect("chat before");

    let (status, _) = patch_user(&s, &admin, &sid, json!({ "disabled": true })).await;
    assert_eq!(status, StatusCode::OK);

    // The socket in the room hears why, and is closed by the server.
    let revoked = kid
        .next_event("session-revoked", WAIT)
        .await
        .expect("session-revoked");
    assert!(
        revoked["reason"].as_str().unwrap().contains("disabled"),
        "{revoked}"
    );
    assert!(kid.wait_disconnected(WAIT).await, "closed by the server");
    let left = host.next_event("peer-left", WAIT).await.expect("peer-left");
    assert_eq!(left["peerId"], kid_peer.as_str());
    // The socket outside rooms: its next event is refused and it is closed
    // (the refusal and the close race: the close may come first).
    match lobby.request("raise-hand", json!({ "roomId": room })).await {
        Err(vtp_client::ClientError::Server { code, .. }) => assert_eq!(code, "unauthorized"),
        Err(vtp_client::ClientError::Disconnected) => {}
        other => panic!("a revoked socket's event went through: {other:?}"),
    }
    assert!(lobby.wait_disconnected(WAIT).await, "closed by the server");
    // And HTTP refuses the access token.
    let (status, _) = s.get("/api/v1/auth/me", Some(&student)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_demoted_admin_loses_host_powers_in_a_live_room_at_once() {
    let s = TestServer::start().await;
    let (_, root) = s.user("root@example.org", Role::Admin).await;
    let (deputy_id, deputy) = s.user("deputy@example.org", Role::Admin).await;
    let (_, teacher) = s.user("teach@example.org", Role::Instructor).await;
    let (_, student) = s.user("kid@example.org", Role::Student).await;
    let room = s.room(&teacher, json!({})).await;
    let host = s.socket(&teacher).await;
    join(&host, &room).await;
    let dep = s.socket(&deputy).await;
    let joined = join(&dep, &room).await;
    assert_eq!(joined["role"], "host", "an admin hosts every room");
    let dep_peer = joined["peerId"].as_str().unwrap().to_string();
    let kid = s.socket(&student).await;
    let kid_peer = join(&kid, &room).await["peerId"]
        .as_str()
        .unwrap()
        .to_string();

    let (status, _) = patch_user(&s, &root, &deputy_id, json!({ "role": "student" })).await;
    assert_eq!(status, StatusCode::OK);

    let changed = host
        .next_event("role-changed", WAIT)
        .await
        .expect("role-changed");
    assert_eq!(
        changed,
        json!({ "peerId": dep_peer, "role": "participant" })
    );
    let code = refused(
        dep.request(
            "host-action",
            json!({ "roomId": room, "action": "remove", "peerId": kid_peer }),
        )
        .await,
    );
    assert_eq!(code, "forbidden");
    assert!(kid.is_connected());
    // Still in the room as a participant: the account is not revoked.
    dep.request(
        "chat-message",
        json!({ "roomId": room, "text": "still here" }),
    )
    .await
    .expect("a demoted user may still chat");
}

/// Two admins take each other's powers at the same time: whatever the
/// interleaving, one admin is left. Runs against PostgreSQL too when
/// VTP_TEST_POSTGRES_URL is set.
#[tokio::test]
async fn two_admins_removing_each_other_at_once_leave_one() {
    let s = TestServer::start().await;
    let kinds: [(&str, Option<Value>); 3] = [
        ("demote", Some(json!({ "role": "student" }))),
        ("disable", Some(json!({ "disabled": true }))),
        ("delete", None),
    ];
    for round in 0..4 {
        for (kind, body) in &kinds {
            let (a_id, a) = s
                .user(&format!("a-{kind}-{round}@example.org"), Role::Admin)
                .await;
            let (b_id, b) = s
                .user(&format!("b-{kind}-{round}@example.org"), Role::Admin)
                .await;
            // Every earlier pair left one admin; take it away so that these
            // two are the only ones.
            let others = active_admins(&s).await;
            for (id, _) in others.iter().filter(|(id, _)| *id != a_id && *id != b_id) {
                let (status, _) = patch_user(&s, &a, id, json!({ "role": "student" })).await;
                assert_eq!(status, StatusCode::OK, "{kind} {round}");
            }
            let act = |token: String, target: String| {
                let (s, body) = (&s, body.clone());
                async move {
                    let path = format!("/api/v1/users/{target}");
                    match body {
                        Some(body) => s.call(Method::PATCH, &path, Some(&token), Some(body)).await,
                        None => s.call(Method::DELETE, &path, Some(&token), None).await,
                    }
                    .0
                }
            };
            let (by_a, by_b) =
                tokio::join!(act(a.clone(), b_id.clone()), act(b.clone(), a_id.clone()));
            let admins = active_admins(&s).await;
            assert_eq!(
                admins.len(),
                1,
                "{kind} round {round}: {by_a} and {by_b} left {admins:?}"
            );
            assert!(
                by_a.is_success() != by_b.is_success(),
                "{kind} round {round}: exactly one wins ({by_a}, {by_b})"
            );
            for loser in [by_a, by_b].into_iter().filter(|s| !s.is_success()) {
                // Refused by the guard (409), or the loser was no longer
                // an admin by the time its request was authorised.
                assert!(
                    [
                        StatusCode::CONFLICT,
                        StatusCode::FORBIDDEN,
                        StatusCode::UNAUTHORIZED
                    ]
                    .contains(&loser),
                    "{kind} round {round}: {loser}"
                );
            }
        }
    }
}

async fn active_admins(s: &TestServer) -> Vec<(String, String)> {
    let page = s
        .store
        .list_users(&vtp_store::UserQuery {
            search: None,
            role: Some(Role::Admin),
            paging: vtp_store::Paging::first(100),
        })
        .await
        .unwrap();
    page.items
        .into_iter()
        .filter(|u| !u.disabled)
        .map(|u| (u.id.to_string(), u.email))
        .collect()
}

#[tokio::test]
async fn two_refreshes_of_one_token_at_once_give_one_session() {
    let s = TestServer::start().await;
    s.user("ref@example.org", Role::Student).await;
    for round in 0..8 {
        let auth = s.login("ref@example.org", PASSWORD).await;
        let token = auth["refreshToken"].as_str().unwrap().to_string();
        let refresh = || {
            s.post(
                "/api/v1/auth/refresh",
                None,
                json!({ "refreshToken": token }),
            )
        };
        let ((a, body_a), (b, body_b)) = tokio::join!(refresh(), refresh());
        let statuses = [a, b];
        assert_eq!(
            statuses.iter().filter(|s| **s == StatusCode::OK).count(),
            1,
            "round {round}: {statuses:?} {body_a} {body_b}"
        );
        assert!(statuses.contains(&StatusCode::UNAUTHORIZED), "{statuses:?}");
        // The second presentation was a reuse: the family is revoked, so
        // even the winner's new refresh token no longer works.
        let winner = if a == StatusCode::OK { body_a } else { body_b };
        let (status, _) = s
            .post(
                "/api/v1/auth/refresh",
                None,
                json!({ "refreshToken": winner["refreshToken"] }),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "round {round}");
    }
}

/// Signs in `email` from the address `forwarded` claims.
async fn login_from(s: &TestServer, forwarded: &str, email: &str, password: &str) -> StatusCode {
    s.http
        .post(s.url("/api/v1/auth/login"))
        .header("x-forwarded-for", forwarded)
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn a_stranger_cannot_lock_the_owner_out() {
    let s = TestServer::start_with(|a| {
        a.login_rate_per_account = 3;
        a.login_rate_per_ip = 1000;
        a.trust_forwarded_for = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    s.user("own@example.org", Role::Student).await;
    let owner = "own@example.org";

    // One guesser: locked out at its own address after 3 failures...
    for _ in 0..3 {
        let status = login_from(&s, "203.0.113.1", owner, "guess").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        login_from(&s, "203.0.113.1", owner, PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS,
        "the guesser's address is locked out, even with the right password"
    );
    // ...while the owner, elsewhere, signs in.
    assert_eq!(
        login_from(&s, "198.51.100.7", owner, PASSWORD).await,
        StatusCode::OK
    );

    // Many guessers spend the account's budget from everywhere (5 × 3).
    for i in 2..6 {
        for _ in 0..3 {
            let status = login_from(&s, &format!("203.0.113.{i}"), owner, "guess").await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "203.0.113.{i}");
        }
    }
    // Now the slow-down: each address that has not failed for the account
    // lately gets one try, and a failure spends its whole budget...
    let mut statuses = Vec::new();
    for i in 10..14 {
        let at = format!("203.0.113.{i}");
        statuses.push(login_from(&s, &at, owner, "guess").await);
        statuses.push(login_from(&s, &at, owner, "guess").await);
    }
    assert_eq!(
        statuses,
        [StatusCode::UNAUTHORIZED, StatusCode::TOO_MANY_REQUESTS].repeat(4),
        "one try per fresh address"
    );
    // ...and the owner, from an address of their own, still gets in.
    assert_eq!(
        login_from(&s, "198.51.100.8", owner, PASSWORD).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn guessable_passwords_are_refused_with_the_reason() {
    let s = TestServer::start().await;
    let (_, token) = s.user("pw@example.org", Role::Student).await;
    for weak in ["12345678", "password1", "new@example.org"] {
        let (status, body) = s
            .post(
                "/api/v1/auth/register",
                None,
                json!({ "email": "new@example.org", "password": weak, "displayName": "New" }),
            )
            .await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            "{weak}: {body}"
        );
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with("password: too easy to guess"),
            "{message}"
        );
    }
    let (status, body) = s
        .post(
            "/api/v1/auth/change-password",
            Some(&token),
            json!({ "currentPassword": PASSWORD, "newPassword": "qwertyuiop" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _) = s
        .post(
            "/api/v1/auth/register",
            None,
            json!({ "email": "new@example.org", "password": "plum tiger orbit 41", "displayName": "New" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

/// A password change (or turning two-factor sign-in on) ends the
/// account's other sessions, live sockets too: whoever held the old
/// password, or a session opened with it alone, is out at once.
#[tokio::test]
async fn changing_the_password_or_turning_on_two_factor_ends_live_sessions() {
    let s = TestServer::start().await;
    let (_, teacher) = s.user("teach@example.org", Role::Instructor).await;
    let (_, student) = s.user("kid@example.org", Role::Student).await;
    let room = s.room(&teacher, json!({})).await;
    let host = s.socket(&teacher).await;
    join(&host, &room).await;
    // The thief's socket, in the room with the stolen password's session.
    let thief = s.socket(&student).await;
    let thief_peer = join(&thief, &room).await["peerId"]
        .as_str()
        .unwrap()
        .to_string();

    let new_password = "a quite different passphrase 41";
    let (status, fresh) = s
        .post(
            "/api/v1/auth/change-password",
            Some(&student),
            json!({ "currentPassword": PASSWORD, "newPassword": new_password }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{fresh}");
    let revoked = thief
        .next_event("session-revoked", WAIT)
        .await
        .expect("session-revoked");
    assert!(
        revoked["reason"].as_str().unwrap().contains("password"),
        "{revoked}"
    );
    assert!(thief.wait_disconnected(WAIT).await, "closed by the server");
    let left = host.next_event("peer-left", WAIT).await.expect("peer-left");
    assert_eq!(left["peerId"], thief_peer.as_str());
    let (status, _) = s.get("/api/v1/auth/me", Some(&student)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the old token is dead");

    // The new session works, joins again, and turning two-factor sign-in
    // on ends it in turn (the enrolling page gets new tokens instead).
    let token = fresh["accessToken"].as_str().unwrap().to_string();
    let again = s.socket(&token).await;
    join(&again, &room).await;
    let (status, setup) = s
        .post("/api/v1/auth/2fa/setup", Some(&token), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{setup}");
    let secret = vtp_server::config::Secret::new(setup["secret"].as_str().unwrap());
    let step = vtp_server::auth::totp::step_of(chrono::Utc::now().timestamp() as u64);
    let (status, confirmed) = s
        .post(
            "/api/v1/auth/2fa/confirm",
            Some(&token),
            json!({ "code": vtp_server::auth::totp::code_at(&secret, step).unwrap() }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{confirmed}");
    let revoked = again
        .next_event("session-revoked", WAIT)
        .await
        .expect("session-revoked");
    assert!(
        revoked["reason"].as_str().unwrap().contains("two-factor"),
        "{revoked}"
    );
    assert!(again.wait_disconnected(WAIT).await);
    let (status, _) = s.get("/api/v1/auth/me", Some(&token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let refreshed = fresh["refreshToken"].as_str().unwrap();
    let (status, _) = s
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refreshToken": refreshed }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "its refresh token too");
    let kept = confirmed["tokens"]["accessToken"].as_str().unwrap();
    let (status, me) = s.get("/api/v1/auth/me", Some(kept)).await;
    assert_eq!((status, &me["twoFactor"]), (StatusCode::OK, &json!(true)));
}
