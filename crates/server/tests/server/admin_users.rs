//! Admins create accounts with temporary passwords, reset passwords and
//! delete accounts (issue 17): roles, audit rows, bad input.

use crate::common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vtp_store::Role;

async fn audit(s: &TestServer, admin: &str, event: &str) -> Vec<Value> {
    let (status, page) = s
        .get(&format!("/api/v1/audit?event={event}"), Some(admin))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn an_admin_creates_a_user_whose_temporary_password_must_be_changed() {
    let s = TestServer::start_with(|args| {
        args.webhooks.webhook_allow_private_targets = true;
    })
    .await;
    let (admin_id, admin) = s.user("root@example.org", Role::Admin).await;
    let (_, teacher) = s.user("teacher@example.org", Role::Instructor).await;
    // An endpoint for `user.created` (nobody listens: its outbox is what is checked).
    let (status, hook) = s
        .post(
            "/api/v1/webhooks",
            Some(&admin),
            json!({ "url": "http://127.0.0.1:9/hook", "events": ["user.created"] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    let hook = hook["id"].as_str().unwrap().to_string();

    let new = json!({ "email": " New@Example.org ", "displayName": "Nia", "role": "instructor" });
    // Only admins.
    assert_eq!(
        s.post("/api/v1/users", Some(&teacher), new.clone()).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.post("/api/v1/users", None, new.clone()).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, made) = s.post("/api/v1/users", Some(&admin), new.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(made["user"]["email"], "new@example.org");
    assert_eq!(made["user"]["role"], "instructor");
    assert_eq!(made["user"]["passwordMustChange"], true);
    let temporary = made["temporaryPassword"].as_str().unwrap().to_string();
    assert_eq!(temporary.len(), 16, "{temporary}");
    let user_id = made["user"]["id"].as_str().unwrap().to_string();
    // The same address again.
    assert_eq!(
        s.post("/api/v1/users", Some(&admin), new).await.0,
        StatusCode::CONFLICT
    );

    // Signing in gives a token good only for changing the password.
    let auth = s.login("new@example.org", &temporary).await;
    assert_eq!(auth["passwordChangeRequired"], true, "{auth}");
    let token = auth["accessToken"].as_str().unwrap();
    let (status, err) = s.get("/api/v1/rooms", Some(token)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(err.to_string().contains("temporary password"), "{err}");
    let (status, me) = s.get("/api/v1/auth/me", Some(token)).await;
    assert_eq!(
        (status, &me["passwordMustChange"]),
        (StatusCode::OK, &json!(true))
    );
    // Nor may it join a room over Socket.IO.
    let refused = vtp_client::SocketIoClient::connect(&s.url(""), Some(token)).await;
    assert!(
        refused.is_err(),
        "a temporary password's token opens no socket"
    );
    let (status, changed) = s
        .post(
            "/api/v1/auth/change-password",
            Some(token),
            json!({ "currentPassword": temporary, "newPassword": "quartz meadow lantern 88" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["passwordChangeRequired"], false);
    assert_eq!(changed["user"]["passwordMustChange"], false);
    let full = changed["accessToken"].as_str().unwrap();
    assert_eq!(s.get("/api/v1/rooms", Some(full)).await.0, StatusCode::OK);

    // A chosen temporary password is checked like any new one.
    let (status, err) = s
        .post("/api/v1/users", Some(&admin), json!({ "email": "b@example.org", "displayName": "B", "role": "student", "temporaryPassword": "123" }))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(err.to_string().contains("temporaryPassword"), "{err}");
    for bad in [
        json!({ "email": "not an address", "displayName": "B", "role": "student" }),
        json!({ "email": "b@example.org", "displayName": "", "role": "student" }),
        json!({ "email": "b@example.org", "displayName": "B", "role": "king" }),
        json!({ "email": "b@example.org", "displayName": "B", "role": "student", "extra": 1 }),
    ] {
        let (status, err) = s.post("/api/v1/users", Some(&admin), bad.clone()).await;
        // 400 for a body of the wrong shape, 422 for a value out of bounds.
        assert!(
            status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::BAD_REQUEST,
            "{bad}: {status} {err}"
        );
        assert!(err["error"]["message"].is_string(), "{err}");
    }
    let (_, all) = s.get("/api/v1/users?q=b%40example", Some(&admin)).await;
    assert_eq!(all["total"], 0, "nothing made by bad input");

    // Audited, with who did it; no password in the log.
    let rows = audit(&s, &admin, "user.created").await;
    let row = rows
        .iter()
        .find(|r| r["target"] == format!("user:{user_id}"))
        .expect("audited");
    assert_eq!(row["actorId"], admin_id.as_str());
    assert_eq!(row["detail"]["via"], "admin");
    let (_, everything) = s.get("/api/v1/audit?limit=100", Some(&admin)).await;
    assert!(!everything.to_string().contains(&temporary));

    // The `user.created` webhook went out, once (the outbox is written by a queue: waited for).
    let events = async || {
        let (_, log) = s
            .get(
                &format!("/api/v1/webhooks/{hook}/deliveries?limit=100"),
                Some(&admin),
            )
            .await;
        log["items"]
            .as_array()
            .map(|items| items.iter().map(|d| d["event"].clone()).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    wait_until(
        std::time::Duration::from_secs(10),
        "the user.created delivery",
        async || !events().await.is_empty(),
    )
    .await;
    assert_eq!(events().await, vec![json!("user.created")]);
}

#[tokio::test]
async fn an_admin_resets_a_password_and_deletes_users_but_not_the_last_admin() {
    let s = TestServer::start().await;
    let (admin_id, admin) = s.user("root@example.org", Role::Admin).await;
    let (student_id, student) = s.user("stu@example.org", Role::Student).await;

    let reset = format!("/api/v1/users/{student_id}/password-reset");
    assert_eq!(
        s.post(&reset, Some(&student), json!({})).await.0,
        StatusCode::FORBIDDEN
    );
    let (status, err) = s
        .post(
            &format!("/api/v1/users/{}/password-reset", uuid::Uuid::new_v4()),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{err}");
    let (status, err) = s
        .post(
            &reset,
            Some(&admin),
            json!({ "temporaryPassword": "short" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    // Nothing changed by the refusals: the old token still works.
    assert_eq!(
        s.get("/api/v1/rooms", Some(&student)).await.0,
        StatusCode::OK
    );

    let (status, done) = s.call(Method::POST, &reset, Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    let temporary = done["temporaryPassword"].as_str().unwrap();
    // Every session of the account ended; the old password is gone.
    assert_eq!(
        s.get("/api/v1/rooms", Some(&student)).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, _) = s
        .post(
            "/api/v1/auth/login",
            None,
            json!({ "email": "stu@example.org", "password": PASSWORD }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let auth = s.login("stu@example.org", temporary).await;
    assert_eq!(auth["passwordChangeRequired"], true);
    let rows = audit(&s, &admin, "user.password_reset").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["target"], format!("user:{student_id}"));
    assert_eq!(rows[0]["actorId"], admin_id.as_str());

    // Delete: the student goes; the last admin stays.
    let (status, _) = s
        .call(
            Method::DELETE,
            &format!("/api/v1/users/{student_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        s.get(&format!("/api/v1/users/{student_id}"), Some(&admin))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (status, err) = s
        .call(
            Method::DELETE,
            &format!("/api/v1/users/{admin_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    assert!(err.to_string().contains("last active admin"), "{err}");
    assert_eq!(audit(&s, &admin, "user.deleted").await.len(), 1);
}
