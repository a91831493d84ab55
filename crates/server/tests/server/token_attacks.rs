//! Tokens that must be refused: forged, unsigned, expired, of a disabled or
//! deleted user, and refresh tokens presented twice.

use crate::common;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;
use vtp_server::auth::tokens::{KeySource, TokenIssuer};
use vtp_server::config::Secret;
use vtp_store::Role;

const KEY: &str = "0123456789abcdef0123456789abcdef-test-key";

async fn server() -> TestServer {
    TestServer::start_with(|a| a.jwt_secret = Some(Secret::new(KEY))).await
}

fn issuer(key: &str) -> TokenIssuer {
    TokenIssuer::new(
        key.as_bytes(),
        Duration::from_secs(900),
        Duration::from_secs(3600),
        KeySource::Configured,
    )
}

async fn me_status(s: &TestServer, token: &str) -> StatusCode {
    let (status, body) = s.get("/api/v1/auth/me", Some(token)).await;
    if status == StatusCode::UNAUTHORIZED {
        assert_eq!(code(&body), "unauthorized");
    }
    status
}

#[tokio::test]
async fn forged_unsigned_and_expired_tokens_are_refused() {
    let s = server().await;
    let (id, token) = s.user("eve@example.org", Role::Student).await;
    assert_eq!(me_status(&s, &token).await, StatusCode::OK);
    let user = s.store.user_by_id(id.parse().unwrap()).await.unwrap();

    // Signed with another key.
    let forged = issuer("another-key-another-key-another-key!")
        .issue_access(&user, chrono::Utc::now())
        .unwrap();
    assert_eq!(me_status(&s, &forged).await, StatusCode::UNAUTHORIZED);

    // Payload changed (role raised) but signature kept.
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["role"] = json!("admin");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    );
    assert_eq!(me_status(&s, &tampered).await, StatusCode::UNAUTHORIZED);

    // alg: none, no signature.
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let unsigned = format!("{header}.{}.", parts[1]);
    assert_eq!(me_status(&s, &unsigned).await, StatusCode::UNAUTHORIZED);

    // Right key, but expired.
    let expired = issuer(KEY)
        .issue_access(&user, chrono::Utc::now() - chrono::Duration::minutes(16))
        .unwrap();
    assert_eq!(me_status(&s, &expired).await, StatusCode::UNAUTHORIZED);
    // Right key and fresh: accepted (so the refusals above are about the defects).
    let good = issuer(KEY).issue_access(&user, chrono::Utc::now()).unwrap();
    assert_eq!(me_status(&s, &good).await, StatusCode::OK);

    for garbage in ["", "abc", "a.b.c", "Bearer"] {
        assert_eq!(
            me_status(&s, garbage).await,
            StatusCode::UNAUTHORIZED,
            "{garbage:?}"
        );
    }
    let (status, _) = s.call(Method::GET, "/api/v1/auth/me", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn tokens_of_disabled_and_deleted_users_stop_working_at_once() {
    let s = server().await;
    let (_, admin) = s.user("root@example.org", Role::Admin).await;
    let (sid, student) = s.user("sam@example.org", Role::Student).await;
    let session = s.login("sam@example.org", PASSWORD).await;

    let (status, _) = s
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{sid}"),
            Some(&admin),
            Some(json!({ "disabled": true })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me_status(&s, &student).await, StatusCode::UNAUTHORIZED);
    let (status, _) = s
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refreshToken": session["refreshToken"] }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = s
        .post(
            "/api/v1/auth/login",
            None,
            json!({ "email": "sam@example.org", "password": PASSWORD }),
        )
        .await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "forbidden"));

    // Re-enabled: tokens issued before stay dead; new sign-ins work.
    let (status, _) = s
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{sid}"),
            Some(&admin),
            Some(json!({ "disabled": false })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me_status(&s, &student).await, StatusCode::UNAUTHORIZED);
    let again = s.login("sam@example.org", PASSWORD).await;

    let (status, _) = s
        .call(
            Method::DELETE,
            &format!("/api/v1/users/{sid}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        me_status(&s, again["accessToken"].as_str().unwrap()).await,
        StatusCode::UNAUTHORIZED
    );
    let (status, _) = s
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refreshToken": again["refreshToken"] }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn refresh_token_reuse_revokes_the_family() {
    let s = server().await;
    s.user("rex@example.org", Role::Student).await;
    let first = s.login("rex@example.org", PASSWORD).await;
    let (status, second) = s
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refreshToken": first["refreshToken"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // An attacker replays the first token: refused, and the legitimate
    // successor dies with it.
    let (status, body) = s
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refreshToken": first["refreshToken"] }),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    let (status, _) = s
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refreshToken": second["refreshToken"] }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, _) = s
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refreshToken": "made-up" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
