//! Accounts over real HTTP: registration, sign-in, refresh rotation,
//! sign-out, password change, rate limits.

use crate::common;

use common::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn register_login_me_refresh_logout() {
    let s = TestServer::start().await;
    let (status, reg) = s
        .post("/api/v1/auth/register", None, json!({ "email": "  Ann@Example.ORG ", "password": "plum tiger orbit 41", "displayName": " Ann " }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reg}");
    assert_eq!(reg["user"]["email"], "ann@example.org", "normalised");
    assert_eq!(reg["user"]["displayName"], "Ann");
    assert_eq!(
        reg["user"]["role"], "student",
        "nobody registers as more than a student"
    );
    assert_eq!(reg["expiresIn"], 900);

    // Same address in another case is the same account.
    let (status, dup) = s
        .post(
            "/api/v1/auth/register",
            None,
            json!({ "email": "ANN@example.org", "password": "plum tiger orbit 42", "displayName": "Other" }),
        )
        .await;
    assert_eq!((status, code(&dup)), (StatusCode::CONFLICT, "conflict"));

    let login = s.login("ANN@EXAMPLE.ORG", "plum tiger orbit 41").await;
    let access = login["accessToken"].as_str().unwrap();
    let (status, me) = s.get("/api/v1/auth/me", Some(access)).await;
    assert_eq!(
        (status, me["email"].as_str()),
        (StatusCode::OK, Some("ann@example.org"))
    );

    let (status, wrong) = s
        .post(
            "/api/v1/auth/login",
            None,
            json!({ "email": "ann@example.org", "password": "nope-nope" }),
        )
        .await;
    assert_eq!(
        (status, code(&wrong)),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    let (status, _) = s
        .post(
            "/api/v1/auth/login",
            None,
            json!({ "email": "ghost@example.org", "password": "plum tiger orbit 41" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Refresh rotates: the new pair works, the old refresh token is spent.
    let refresh = login["refreshToken"].as_str().unwrap();
    let (status, rotated) = s
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refreshToken": refresh }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert_ne!(rotated["refreshToken"], login["refreshToken"]);
    let (status, _) = s
        .get("/api/v1/auth/me", rotated["accessToken"].as_str())
        .await;
    assert_eq!(status, StatusCode::OK);

    // Logout of this device: its refresh token stops working.
    let new_refresh = rotated["refreshToken"].as_str().unwrap();
    let (status, _) = s
        .post(
            "/api/v1/auth/logout",
            rotated["accessToken"].as_str(),
            json!({ "refreshToken": new_refresh }),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = s
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refreshToken": new_refresh }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The registration's own sign-in is another device and still works.
    let (status, _) = s
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refreshToken": reg["refreshToken"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn logout_everywhere_ends_all_sessions() {
    let s = TestServer::start().await;
    let (_, token) = s.user("bo@example.org", vtp_store::Role::Student).await;
    let other = s.login("bo@example.org", PASSWORD).await;
    let (status, _) = s
        .post(
            "/api/v1/auth/logout",
            Some(&token),
            json!({ "everywhere": true }),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        s.get("/api/v1/auth/me", Some(&token)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.get("/api/v1/auth/me", other["accessToken"].as_str())
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let (status, _) = s
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refreshToken": other["refreshToken"] }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Logout without a body is fine too.
    let fresh = s.login("bo@example.org", PASSWORD).await;
    let (status, _) = s
        .call(
            reqwest::Method::POST,
            "/api/v1/auth/logout",
            fresh["accessToken"].as_str(),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn change_password_ends_other_sessions() {
    let s = TestServer::start().await;
    let (_, token) = s.user("cy@example.org", vtp_store::Role::Student).await;
    let (status, bad) = s
        .post(
            "/api/v1/auth/change-password",
            Some(&token),
            json!({ "currentPassword": "wrong-one", "newPassword": "violet canoe thunder" }),
        )
        .await;
    assert_eq!(
        (status, code(&bad)),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    let (status, short) = s
        .post(
            "/api/v1/auth/change-password",
            Some(&token),
            json!({ "currentPassword": PASSWORD, "newPassword": "short" }),
        )
        .await;
    assert_eq!(
        (status, code(&short)),
        (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
    );
    let (status, fresh) = s
        .post(
            "/api/v1/auth/change-password",
            Some(&token),
            json!({ "currentPassword": PASSWORD, "newPassword": "violet canoe thunder" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{fresh}");
    assert_eq!(
        s.get("/api/v1/auth/me", Some(&token)).await.0,
        StatusCode::UNAUTHORIZED,
        "old token void"
    );
    assert_eq!(
        s.get("/api/v1/auth/me", fresh["accessToken"].as_str())
            .await
            .0,
        StatusCode::OK
    );
    let (status, _) = s
        .post(
            "/api/v1/auth/login",
            None,
            json!({ "email": "cy@example.org", "password": PASSWORD }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    s.login("cy@example.org", "violet canoe thunder").await;
}

#[tokio::test]
async fn registration_is_validated() {
    let s = TestServer::start().await;
    let cases = [
        (
            json!({ "email": "not-an-email", "password": "plum tiger orbit 41", "displayName": "X" }),
            "email",
        ),
        (
            json!({ "email": "a@b.org", "password": "short", "displayName": "X" }),
            "password",
        ),
        (
            json!({ "email": "a@b.org", "password": "plum tiger orbit 41", "displayName": "   " }),
            "displayName",
        ),
        (
            json!({ "email": "a@b.org", "password": "plum tiger orbit 41", "displayName": "x".repeat(65) }),
            "displayName",
        ),
    ];
    for (body, field) in cases {
        let (status, err) = s.post("/api/v1/auth/register", None, body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
        assert!(
            err["error"]["message"].as_str().unwrap().starts_with(field),
            "{err}"
        );
    }
    let (status, err) = s.post("/api/v1/auth/register", None, json!({ "email": "a@b.org", "password": "plum tiger orbit 41", "displayName": "X", "role": "admin" })).await;
    assert_eq!(
        (status, code(&err)),
        (StatusCode::BAD_REQUEST, "bad_request"),
        "role is not a registration field"
    );
    let (_, list) = s.get("/api/v1/rooms", None).await;
    assert_eq!(code(&list), "unauthorized");
}

#[tokio::test]
async fn registration_can_be_closed() {
    let s = TestServer::start_with(|a| a.allow_registration = false).await;
    let (status, err) = s
        .post(
            "/api/v1/auth/register",
            None,
            json!({ "email": "a@b.org", "password": "plum tiger orbit 41", "displayName": "X" }),
        )
        .await;
    assert_eq!((status, code(&err)), (StatusCode::FORBIDDEN, "forbidden"));
}

#[tokio::test]
async fn login_is_rate_limited_per_account_and_per_address() {
    let s = TestServer::start_with(|a| {
        a.login_rate_per_account = 3;
        a.login_rate_per_ip = 6;
    })
    .await;
    // A successful sign-in uses nothing: only failures count.
    s.user("dee@example.org", vtp_store::Role::Student).await;
    for _ in 0..3 {
        let (status, _) = s
            .post(
                "/api/v1/auth/login",
                None,
                json!({ "email": "dee@example.org", "password": "bad-password" }),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let resp = s
        .http
        .post(s.url("/api/v1/auth/login"))
        .json(&json!({ "email": "DEE@example.org", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits"
    );
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1, "{retry}");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(code(&body), "rate_limited");

    // Other accounts from the same address: limited by the address budget
    // (6: three failures above, three more here).
    let mut statuses = Vec::new();
    for i in 0..4 {
        let (status, _) = s
            .post(
                "/api/v1/auth/login",
                None,
                json!({ "email": format!("x{i}@example.org"), "password": "whatever1" }),
            )
            .await;
        statuses.push(status);
    }
    assert_eq!(
        statuses,
        [
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
}

/// Signs in `email` from the address `forwarded` claims; the status.
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
async fn forty_students_behind_one_nat_sign_in_while_a_guesser_is_stopped() {
    // The default budget: 20 failures per address per minute.
    let s = TestServer::start().await;
    let mut students = Vec::new();
    for i in 0..40 {
        let email = format!("pupil{i}@example.org");
        s.user(&email, vtp_store::Role::Student).await;
        students.push(email);
    }
    // The whole class signs in again from the school's one address.
    for email in &students {
        s.login(email, PASSWORD).await;
    }
    // A guesser at the same address is stopped after 20 failures (a few
    // more when the machine is so slow that the budget refills meanwhile:
    // one failure every 3 s).
    let mut statuses = Vec::new();
    for i in 0..40 {
        let (status, _) = s
            .post(
                "/api/v1/auth/login",
                None,
                json!({ "email": students[i % 40], "password": format!("guess-{i}") }),
            )
            .await;
        statuses.push(status);
        if status == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
    }
    assert!(
        statuses[..20]
            .iter()
            .all(|s| *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
    assert_eq!(
        statuses.last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "the guesser was never stopped: {statuses:?}"
    );
}

#[tokio::test]
async fn forwarded_addresses_count_only_from_trusted_proxies() {
    let s = TestServer::start_with(|a| {
        a.login_rate_per_ip = 3;
        a.login_rate_per_account = 1000;
        a.trust_forwarded_for = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    s.user("eve@example.org", vtp_store::Role::Student).await;
    // One client behind the proxy uses up its own budget, even while it
    // forges a different first entry each time...
    for i in 0..3 {
        let forged = format!("203.0.113.{i}, 198.51.100.9");
        let status = login_from(&s, &forged, "eve@example.org", "wrong-password").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let status = login_from(
        &s,
        "203.0.113.99, 198.51.100.9",
        "eve@example.org",
        PASSWORD,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "forged entries change nothing"
    );
    // ...and another client behind the same proxy is not affected.
    let status = login_from(&s, "198.51.100.10", "eve@example.org", PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    s.stop().await;

    // Without trusted proxies the header is ignored: every request counts
    // against the peer's own address.
    let s = TestServer::start_with(|a| {
        a.login_rate_per_ip = 2;
        a.login_rate_per_account = 1000;
    })
    .await;
    s.user("fay@example.org", vtp_store::Role::Student).await;
    for i in 0..2 {
        let status = login_from(&s, &format!("198.51.100.{i}"), "fay@example.org", "wrong").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let status = login_from(&s, "198.51.100.77", "fay@example.org", PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}
