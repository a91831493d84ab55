//! Accounts over real HTTP: registration, sign-in, refresh rotation,
//! sign-out, password change, rate limits.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn register_login_me_refresh_logout() {
    let s = TestServer::start().await;
    let (status, reg) = s
        .post("/api/v1/auth/register", None, json!({ "email": "  Ann@Example.ORG ", "password": "password1", "displayName": " Ann " }))
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
            json!({ "email": "ANN@example.org", "password": "password2", "displayName": "Other" }),
        )
        .await;
    assert_eq!((status, code(&dup)), (StatusCode::CONFLICT, "conflict"));

    let login = s.login("ANN@EXAMPLE.ORG", "password1").await;
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
            json!({ "email": "ghost@example.org", "password": "password1" }),
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
            json!({ "currentPassword": "wrong-one", "newPassword": "new password" }),
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
            json!({ "currentPassword": PASSWORD, "newPassword": "new password" }),
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
    s.login("cy@example.org", "new password").await;
}

#[tokio::test]
async fn registration_is_validated() {
    let s = TestServer::start().await;
    let cases = [
        (
            json!({ "email": "not-an-email", "password": "password1", "displayName": "X" }),
            "email",
        ),
        (
            json!({ "email": "a@b.org", "password": "short", "displayName": "X" }),
            "password",
        ),
        (
            json!({ "email": "a@b.org", "password": "password1", "displayName": "   " }),
            "displayName",
        ),
        (
            json!({ "email": "a@b.org", "password": "password1", "displayName": "x".repeat(65) }),
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
    let (status, err) = s.post("/api/v1/auth/register", None, json!({ "email": "a@b.org", "password": "password1", "displayName": "X", "role": "admin" })).await;
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
            json!({ "email": "a@b.org", "password": "password1", "displayName": "X" }),
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
    s.user("dee@example.org", vtp_store::Role::Student).await; // uses 1 of each
    for _ in 0..2 {
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

    // Other accounts from the same address: limited by the address budget (6).
    let mut statuses = Vec::new();
    for i in 0..3 {
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
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
}
