//! Bad input gets a 4xx with `{ error: { code, message } }`, never a 500,
//! and changes nothing.

use crate::common;

use common::*;
use reqwest::{Method, StatusCode};
use vtp_store::Role;

async fn raw(
    s: &TestServer,
    method: Method,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, serde_json::Value) {
    let mut req = s.http.request(method, s.url(path)).body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}")),
    )
}

#[tokio::test]
async fn malformed_requests_get_clear_errors() {
    let s = TestServer::start().await;
    let (_, token) = s.user("ivy@example.org", Role::Instructor).await;
    let t = Some(token.as_str());
    let json_ct = Some("application/json");
    // method, path, content type, body, expected status, expected code
    type Case<'a> = (Method, &'a str, Option<&'a str>, Vec<u8>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            Method::POST,
            "/api/v1/rooms",
            json_ct,
            b"{not json".to_vec(),
            400,
            "bad_request",
        ),
        (
            Method::POST,
            "/api/v1/rooms",
            json_ct,
            br#"{"title": 42}"#.to_vec(),
            400,
            "bad_request",
        ),
        (
            Method::POST,
            "/api/v1/rooms",
            json_ct,
            br#"{}"#.to_vec(),
            400,
            "bad_request",
        ),
        (
            Method::POST,
            "/api/v1/rooms",
            json_ct,
            br#"[1,2]"#.to_vec(),
            400,
            "bad_request",
        ),
        (
            Method::POST,
            "/api/v1/rooms",
            json_ct,
            br#"{"title": "x", "colour": "red"}"#.to_vec(),
            400,
            "bad_request",
        ),
        (
            Method::POST,
            "/api/v1/rooms",
            json_ct,
            br#"{"title": "x", "settings": {"maxParticipants": -1}}"#.to_vec(),
            400,
            "bad_request",
        ),
        (
            Method::POST,
            "/api/v1/rooms",
            json_ct,
            br#"{"title": "x", "settings": {"maxParticipants": 0}}"#.to_vec(),
            422,
            "validation_failed",
        ),
        (
            Method::POST,
            "/api/v1/rooms",
            json_ct,
            br#"{"title": "x", "settings": {"maxParticipants": 5000}}"#.to_vec(),
            422,
            "validation_failed",
        ),
        (
            Method::POST,
            "/api/v1/rooms",
            json_ct,
            br#"{"title": "x", "slug": "Bad Slug"}"#.to_vec(),
            422,
            "validation_failed",
        ),
        (
            Method::POST,
            "/api/v1/rooms",
            json_ct,
            br#"{"title": ""}"#.to_vec(),
            422,
            "validation_failed",
        ),
        (
            Method::POST,
            "/api/v1/rooms",
            None,
            br#"{"title": "x"}"#.to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            Method::POST,
            "/api/v1/rooms",
            Some("text/plain"),
            br#"{"title": "x"}"#.to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            Method::POST,
            "/api/v1/rooms",
            json_ct,
            format!(r#"{{"title": "{}"}}"#, "x".repeat(70_000)).into_bytes(),
            413,
            "payload_too_large",
        ),
        (
            Method::GET,
            "/api/v1/no-such-route",
            None,
            vec![],
            404,
            "not_found",
        ),
        (
            Method::PUT,
            "/api/v1/rooms",
            None,
            vec![],
            405,
            "method_not_allowed",
        ),
    ];
    for (method, path, ct, body, status, code_) in cases {
        let (got, err) = raw(&s, method.clone(), path, t, ct, body).await;
        assert_eq!(
            (got.as_u16(), code(&err)),
            (status, code_),
            "{method} {path}: {err}"
        );
        assert!(
            err["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{err}"
        );
    }
    // Nothing above created a room.
    let (_, rooms) = s.get("/api/v1/rooms", t).await;
    assert_eq!(rooms["total"], 0, "{rooms}");

    for (path, expect) in [
        ("/api/v1/users/not-a-uuid", 400),
        ("/api/v1/rooms?page=zero", 400),
        ("/api/v1/rooms?perPage=1000", 422),
        ("/api/v1/rooms?status=burning", 400),
        ("/api/v1/rooms?unknown=1", 400),
        ("/api/v1/rooms/does-not-exist", 404),
        (&format!("/api/v1/rooms/{}", "x".repeat(300)), 404),
    ] {
        let (status, err) = s.get(path, t).await;
        assert_eq!(status.as_u16(), expect, "{path}: {err}");
        assert!(err["error"]["code"].is_string(), "{path}: {err}");
    }
}

/// A body is a JSON object, as the document says: serde would also build a
/// request from an array of its fields in order, and did (`["title"]`
/// created a room, `[null, "closed"]` closed one). Each is a 400 that
/// changes nothing.
#[tokio::test]
async fn bodies_that_are_arrays_are_refused() {
    let s = TestServer::start().await;
    let (_, token) = s.user("ivy@example.org", Role::Instructor).await;
    let t = Some(token.as_str());
    let room = s.room(&token, serde_json::json!({})).await;
    let json_ct = Some("application/json");
    let room_path = format!("/api/v1/rooms/{room}");
    for (method, path, body) in [
        (Method::POST, "/api/v1/rooms", r#"["From an array"]"#),
        (
            Method::POST,
            "/api/v1/rooms",
            r#"{"title": "x", "settings": [5]}"#,
        ),
        (Method::PATCH, room_path.as_str(), r#"[null, "closed"]"#),
        (Method::PATCH, room_path.as_str(), r#"{"settings": [5]}"#),
        (
            Method::POST,
            "/api/v1/auth/login",
            r#"["ivy@example.org", "x"]"#,
        ),
    ] {
        let (status, err) = raw(&s, method.clone(), path, t, json_ct, body.into()).await;
        assert_eq!(
            (status.as_u16(), code(&err)),
            (400, "bad_request"),
            "{method} {path} {body}: {err}"
        );
    }
    let (_, rooms) = s.get("/api/v1/rooms", t).await;
    assert_eq!(rooms["total"], 1, "{rooms}");
    let (_, room) = s.get(&room_path, t).await;
    assert_eq!(
        (&room["status"], &room["settings"]["maxParticipants"]),
        (&serde_json::json!("open"), &serde_json::json!(50)),
        "{room}"
    );
}

/// An oversized body is the API's JSON 413 also where the handler reads
/// the raw body (sign-out, whose body is optional): it was axum's plain
/// text, which the document does not describe.
#[tokio::test]
async fn an_oversized_raw_body_is_a_json_413() {
    let s = TestServer::start().await;
    let (_, token) = s.user("ivy@example.org", Role::Student).await;
    let body = format!(r#"{{"refreshToken": "{}"}}"#, "x".repeat(70_000));
    let (status, err) = raw(
        &s,
        Method::POST,
        "/api/v1/auth/logout",
        Some(&token),
        None,
        body.into_bytes(),
    )
    .await;
    assert_eq!(
        (status.as_u16(), code(&err)),
        (413, "payload_too_large"),
        "{err}"
    );
    // The token still works: nothing was signed out.
    let (status, _) = s.get("/api/v1/auth/me", Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
}
