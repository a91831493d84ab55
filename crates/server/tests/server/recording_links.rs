//! Signed links to recordings' files (`POST /recordings/{id}/links`): they
//! play without headers and with ranges, only for those who may see the
//! recording, and are refused once expired, altered, or moved to another
//! file or user.

use crate::common;

use std::time::Duration;

use common::code;
use common::recordings::*;
use reqwest::{StatusCode, header};
use serde_json::{Value, json};

/// (status, headers, body) of a GET without any `Authorization`.
async fn fetch(
    w: &World,
    url: &str,
    range: Option<&str>,
) -> (StatusCode, header::HeaderMap, Vec<u8>) {
    let mut req = w.s.http.get(w.s.url(url));
    if let Some(r) = range {
        req = req.header(header::RANGE, r);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    (status, headers, resp.bytes().await.unwrap().to_vec())
}

fn error_code(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body)
        .unwrap_or_else(|_| panic!("not a JSON error: {}", String::from_utf8_lossy(body)));
    code(&v).to_string()
}

async fn links(w: &World, id: uuid::Uuid, token: &str) -> (StatusCode, Value) {
    w.s.post(
        &format!("/api/v1/recordings/{id}/links"),
        Some(token),
        json!({}),
    )
    .await
}

fn camera_url(links: &Value) -> String {
    links["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == CAMERA)
        .unwrap()["url"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn signed_links_play_without_headers_with_ranges() {
    let w = World::new().await;
    let camera = pattern(200_000);
    let rec = w.recording(&camera, &[]).await;

    let (status, body) = links(&w, rec.id, &w.attendee).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["expiresAt"].is_string(), "{body}");
    let names: Vec<&str> = body["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [CAMERA, MIC, SCREEN, "manifest.json"]);
    assert_eq!(body["exports"], json!([]));
    let url = camera_url(&body);
    assert!(url.contains("sig="), "{url}");

    // Whole file and a range, no Authorization header.
    let (status, headers, got) = fetch(&w, &url, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, camera);
    assert_eq!(headers[header::CONTENT_TYPE], "video/webm");
    let (status, headers, got) = fetch(&w, &url, Some("bytes=1000-1999")).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(headers[header::CONTENT_RANGE], "bytes 1000-1999/200000");
    assert_eq!(got, &camera[1000..2000]);

    // Without the link (and without a token): 401, as before.
    let bare = url.split('?').next().unwrap();
    let (status, _, body) = fetch(&w, bare, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&body), "unauthorized");
}

#[tokio::test]
async fn altered_moved_or_expired_links_are_refused() {
    let w = World::new().await;
    let rec = w.recording(&pattern(10_000), &[]).await;
    let (_, body) = links(&w, rec.id, &w.attendee).await;
    let url = camera_url(&body);
    let mic_url = body["files"][1]["url"].as_str().unwrap().to_string();

    let refused = |what: &'static str| {
        move |(status, _, body): (StatusCode, header::HeaderMap, Vec<u8>)| {
            assert_eq!(status, StatusCode::FORBIDDEN, "{what}");
            assert_eq!(error_code(&body), "forbidden", "{what}");
            String::from_utf8(body).unwrap()
        }
    };
    // One character of the signature changed.
    let sig_at = url.find("sig=").unwrap() + 4;
    let mut tampered = url.clone().into_bytes();
    tampered[sig_at] = if tampered[sig_at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    refused("signature")(fetch(&w, &tampered, None).await);
    // A later expiry.
    let exp: i64 = url
        .split("exp=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let later = url.replace(&format!("exp={exp}"), &format!("exp={}", exp + 3600));
    refused("expiry")(fetch(&w, &later, None).await);
    // The camera's signature on the microphone's file.
    let query = url.split('?').nth(1).unwrap();
    let moved = format!("{}?{query}", mic_url.split('?').next().unwrap());
    refused("another file")(fetch(&w, &moved, None).await);
    // Another user's id with this signature.
    let (_, me) = w.s.get("/api/v1/auth/me", Some(&w.host)).await;
    let host_id = me["id"].as_str().unwrap();
    let att_id = url.split("u=").nth(1).unwrap().split('&').next().unwrap();
    let other_user = url.replace(&format!("u={att_id}"), &format!("u={host_id}"));
    refused("another user")(fetch(&w, &other_user, None).await);
    // Half a link.
    let half = url.split("&sig=").next().unwrap();
    refused("no signature")(fetch(&w, half, None).await);

    // Still good before its expiry, refused after it.
    assert_eq!(fetch(&w, &url, None).await.0, StatusCode::OK);
    w.s.token_clock.advance(Duration::from_secs(3601));
    let text = refused("expired")(fetch(&w, &url, None).await);
    assert!(text.contains("expired"), "{text}");
}

#[tokio::test]
async fn only_those_who_may_see_a_recording_get_links() {
    let w = World::new().await;
    let rec = w.recording(&pattern(1000), &[]).await;
    for token in [&w.owner, &w.admin, &w.host, &w.attendee] {
        assert_eq!(links(&w, rec.id, token).await.0, StatusCode::OK);
    }
    for token in [&w.stranger, &w.instructor] {
        let (status, body) = links(&w, rec.id, token).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(code(&body), "not_found");
    }
    let (status, _) =
        w.s.post(
            &format!("/api/v1/recordings/{}/links", rec.id),
            None,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A link stops working when its user loses access: signing out
    // everywhere bumps the epoch.
    let (_, body) = links(&w, rec.id, &w.attendee).await;
    let url = camera_url(&body);
    assert_eq!(fetch(&w, &url, None).await.0, StatusCode::OK);
    let (status, _) =
        w.s.post(
            "/api/v1/auth/logout",
            Some(&w.attendee),
            json!({"everywhere": true}),
        )
        .await;
    assert!(status.is_success(), "{status}");
    assert_eq!(fetch(&w, &url, None).await.0, StatusCode::FORBIDDEN);
}
