//! `/api/v1/recordings*` on a real server: who sees what, listing and
//! pagination, deletion. Downloads are in `recording_downloads.rs`.

use crate::common;

use common::recordings::*;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;
use uuid::Uuid;
use vtp_store::NewRecording;

#[tokio::test]
async fn who_may_see_a_recording() {
    let w = World::new().await;
    let rec = w.recording(b"camera", &[]).await;
    let details = format!("/api/v1/recordings/{}", rec.id);
    let file = format!("{details}/files/{CAMERA}");
    let id = rec.id.to_string();

    // Anonymous: 401 everywhere.
    for (method, path) in [
        (Method::GET, "/api/v1/recordings".to_string()),
        (Method::GET, details.clone()),
        (Method::GET, file.clone()),
        (Method::DELETE, details.clone()),
    ] {
        assert_eq!(
            w.status(method, &path, None).await,
            StatusCode::UNAUTHORIZED
        );
    }

    // Those who may: admin, owner, the session's host, the attendee.
    for token in [&w.admin, &w.owner, &w.host, &w.attendee] {
        assert_eq!(w.listed(token).await, std::slice::from_ref(&id));
        let (status, body) = w.s.get(&details, Some(token)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["state"], "ready");
        assert_eq!(body["roomId"], w.room.as_str());
        assert_eq!(
            w.status(Method::GET, &file, Some(token)).await,
            StatusCode::OK
        );
    }
    // A student of another room and an instructor who was not there: 404,
    // as if it did not exist.
    for token in [&w.stranger, &w.instructor] {
        assert!(w.listed(token).await.is_empty());
        let (status, body) = w.s.get(&details, Some(token)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(code(&body), "not_found");
        assert_eq!(
            w.status(Method::GET, &file, Some(token)).await,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            w.status(Method::DELETE, &details, Some(token)).await,
            StatusCode::NOT_FOUND
        );
        let unknown = format!("/api/v1/recordings/{}", Uuid::new_v4());
        let (_, missing) = w.s.get(&unknown, Some(token)).await;
        let (_, hidden) = w.s.get(&details, Some(token)).await;
        assert_eq!(
            missing, hidden,
            "a hidden recording looks like a missing one"
        );
    }

    // Details: the manifest, and every file with its size, type and URL.
    let (_, body) = w.s.get(&details, Some(&w.attendee)).await;
    assert_eq!(body["manifest"]["tracks"].as_array().unwrap().len(), 3);
    let files = body["files"].as_array().unwrap();
    let names: Vec<&str> = files.iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, [CAMERA, MIC, SCREEN, "manifest.json"]);
    let types: Vec<&str> = files
        .iter()
        .map(|f| f["contentType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "video/webm",
            "audio/webm",
            "video/x-matroska",
            "application/json"
        ]
    );
    assert_eq!(files[0]["bytes"], 6);
    assert_eq!(files[0]["available"], true);
    assert_eq!(files[0]["url"], file.as_str());
    assert!(body.get("error").is_none() || body["error"].is_null());

    // recordingAccess: validated, and `hosts` shuts the attendee out.
    let room_path = format!("/api/v1/rooms/{}", w.room);
    let (status, body) =
        w.s.call(
            Method::PATCH,
            &room_path,
            Some(&w.owner),
            Some(json!({ "settings": { "recordingAccess": "everyone" } })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(code(&body), "validation_failed");
    let (status, body) =
        w.s.call(
            Method::PATCH,
            &room_path,
            Some(&w.owner),
            Some(json!({ "settings": { "recordingAccess": "hosts" } })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["settings"]["recordingAccess"], "hosts");
    assert!(w.listed(&w.attendee).await.is_empty());
    assert_eq!(
        w.status(Method::GET, &details, Some(&w.attendee)).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        w.status(Method::GET, &file, Some(&w.attendee)).await,
        StatusCode::NOT_FOUND
    );
    for token in [&w.admin, &w.owner, &w.host] {
        assert_eq!(w.listed(token).await, std::slice::from_ref(&id));
        assert_eq!(
            w.status(Method::GET, &file, Some(token)).await,
            StatusCode::OK
        );
    }
    // New rooms default to `participants`.
    let (_, fresh) =
        w.s.post("/api/v1/rooms", Some(&w.owner), json!({ "title": "Fresh" }))
            .await;
    assert_eq!(fresh["settings"]["recordingAccess"], "participants");
}

#[tokio::test]
async fn listing_filters_and_pages() {
    let w = World::new().await;
    let mut made = Vec::new();
    for _ in 0..3 {
        made.push(w.recording(b"x", &[]).await.id.to_string());
    }
    made.reverse(); // newest first
    let mut seen = Vec::new();
    let mut path = "/api/v1/recordings?limit=2".to_string();
    loop {
        let (status, page) = w.s.get(&path, Some(&w.owner)).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(ids(&page));
        match page["nextCursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/recordings?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, made);
    let (_, page) =
        w.s.get(
            &format!("/api/v1/recordings?roomId={}", w.room),
            Some(&w.owner),
        )
        .await;
    assert_eq!(ids(&page), made);
    let (_, page) =
        w.s.get("/api/v1/recordings?roomId=nope", Some(&w.owner))
            .await;
    assert!(ids(&page).is_empty());
    for (query, status) in [
        ("limit=0", StatusCode::UNPROCESSABLE_ENTITY),
        ("limit=101", StatusCode::UNPROCESSABLE_ENTITY),
        ("cursor=garbage", StatusCode::BAD_REQUEST),
        ("unknown=1", StatusCode::BAD_REQUEST),
    ] {
        let path = format!("/api/v1/recordings?{query}");
        assert_eq!(
            w.status(Method::GET, &path, Some(&w.owner)).await,
            status,
            "{query}"
        );
    }
}

#[tokio::test]
async fn deletion_is_for_the_owner_and_admins() {
    let w = World::new().await;
    let rec = w.recording(b"camera", &[]).await;
    let path = format!("/api/v1/recordings/{}", rec.id);
    for token in [&w.attendee, &w.host] {
        let (status, body) = w.s.call(Method::DELETE, &path, Some(token), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(code(&body), "forbidden");
    }
    assert!(w.dir(rec.id).join(CAMERA).exists());
    assert_eq!(
        w.status(Method::DELETE, &path, Some(&w.owner)).await,
        StatusCode::NO_CONTENT
    );
    assert!(!w.dir(rec.id).exists(), "the files are gone");
    assert_eq!(
        w.status(Method::GET, &path, Some(&w.owner)).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        w.status(Method::DELETE, &path, Some(&w.owner)).await,
        StatusCode::NOT_FOUND
    );
    assert!(w.listed(&w.owner).await.is_empty());

    // An admin may too.
    let rec = w.recording(b"camera", &[]).await;
    let path = format!("/api/v1/recordings/{}", rec.id);
    assert_eq!(
        w.status(Method::DELETE, &path, Some(&w.admin)).await,
        StatusCode::NO_CONTENT
    );
    assert!(!w.dir(rec.id).exists());

    // A recording still running is listed with its state, its files can be
    // fetched as they are, and it cannot be deleted until it stops.
    let session =
        w.s.store
            .list_sessions(&w.room, &Default::default())
            .await
            .unwrap()
            .items[0]
            .session
            .id;
    let running =
        w.s.store
            .create_recording(
                &NewRecording {
                    room_id: w.room.clone(),
                    session_id: session,
                    started_by: None,
                },
                chrono::Utc::now(),
            )
            .await
            .unwrap();
    let (_, page) = w.s.get("/api/v1/recordings", Some(&w.attendee)).await;
    assert_eq!(page["items"][0]["state"], "recording");
    assert!(page["items"][0]["stoppedAt"].is_null());
    std::fs::create_dir_all(w.dir(running.id)).unwrap();
    std::fs::write(w.dir(running.id).join("manifest.json"), b"{}").unwrap();
    let manifest_path = format!("/api/v1/recordings/{}/files/manifest.json", running.id);
    assert_eq!(
        w.status(Method::GET, &manifest_path, Some(&w.attendee))
            .await,
        StatusCode::OK
    );
    let path = format!("/api/v1/recordings/{}", running.id);
    let (status, body) = w.s.call(Method::DELETE, &path, Some(&w.owner), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(w.dir(running.id).exists());
}
