//! `/api/v1/recordings*` on a real server: who sees what, downloads with
//! ranges, refused names, deletion. Recordings are made through the store
//! and their files written here, as the recorder would leave them.

mod common;

use std::path::PathBuf;

use common::recordings::register_ready;
use common::*;
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;
use vtp_recording::{Codec, Kind, Manifest};
use vtp_store::{NewParticipant, NewRecording, Recording, RoomRole, RoomStatus};

const CAMERA: &str = "peer-a-camera.webm";
const MIC: &str = "peer-a-mic.webm";
const SCREEN: &str = "peer-b-screen.mkv";

/// Distinct bytes at every offset, so that a wrong range shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

struct World {
    s: TestServer,
    room: String,
    owner: String,
    admin: String,
    host: String,
    attendee: String,
    stranger: String,
    instructor: String,
}

impl World {
    async fn new() -> World {
        let s = TestServer::start().await;
        let (_, owner) = s
            .user("owner@example.org", vtp_store::Role::Instructor)
            .await;
        let (_, admin) = s.user("admin@example.org", vtp_store::Role::Admin).await;
        let (host_id, host) = s
            .user("host@example.org", vtp_store::Role::Instructor)
            .await;
        let (att_id, attendee) = s.user("att@example.org", vtp_store::Role::Student).await;
        let (str_id, stranger) = s.user("str@example.org", vtp_store::Role::Student).await;
        let (_, instructor) = s.user("ins@example.org", vtp_store::Role::Instructor).await;
        let room = s.room(&owner, json!({})).await;
        let session = s
            .store
            .start_session(&room, chrono::Utc::now())
            .await
            .unwrap();
        for (user, role) in [(&host_id, RoomRole::Host), (&att_id, RoomRole::Participant)] {
            attend(&s, session.id, user, role).await;
        }
        s.store
            .end_session(session.id, RoomStatus::Open, chrono::Utc::now())
            .await
            .unwrap();
        // The stranger attended another room, recorded too.
        let other = s.room(&instructor, json!({})).await;
        let other_session = s
            .store
            .start_session(&other, chrono::Utc::now())
            .await
            .unwrap();
        attend(&s, other_session.id, &str_id, RoomRole::Participant).await;
        World {
            s,
            room,
            owner,
            admin,
            host,
            attendee,
            stranger,
            instructor,
        }
    }

    fn dir(&self, id: Uuid) -> PathBuf {
        self.s
            .home
            .data_dir
            .path()
            .join("recordings")
            .join(id.to_string())
    }

    /// A finished (`ready`) recording of the room's last session with three
    /// tracks and a manifest on disk; `extra` files are written but not listed.
    async fn recording(&self, camera: &[u8], extra: &[(&str, &[u8])]) -> Recording {
        let session = self
            .s
            .store
            .list_sessions(&self.room, Default::default())
            .await
            .unwrap()
            .items[0]
            .session
            .clone();
        let tracks = [
            (CAMERA, Kind::Video, Codec::Vp8, camera),
            (MIC, Kind::Audio, Codec::Opus, &b"opus"[..]),
            (SCREEN, Kind::Video, Codec::H264, &b"h264"[..]),
        ];
        let id = register_ready(&self.s, &self.room, session.id, &tracks).await;
        for (name, data) in extra {
            std::fs::write(self.dir(id).join(name), data).unwrap();
        }
        self.s.store.get_recording(id).await.unwrap()
    }

    async fn status(&self, method: Method, path: &str, token: Option<&str>) -> StatusCode {
        self.s.call(method, path, token, None).await.0
    }

    async fn listed(&self, token: &str) -> Vec<String> {
        let (status, body) = self.s.get("/api/v1/recordings", Some(token)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        ids(&body)
    }
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

async fn attend(s: &TestServer, session: Uuid, user: &str, role: RoomRole) {
    s.store
        .add_participant(
            &NewParticipant {
                session_id: session,
                user_id: user.parse().unwrap(),
                peer_id: format!("peer-{user}"),
                display_name: "x".into(),
                room_role: role,
            },
            chrono::Utc::now(),
        )
        .await
        .unwrap();
}

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

/// (status, headers, body) of a download with extra request headers.
async fn download(
    w: &World,
    path: &str,
    headers: &[(header::HeaderName, &str)],
) -> (StatusCode, header::HeaderMap, Vec<u8>) {
    let mut req = w.s.http.get(w.s.url(path)).bearer_auth(&w.attendee);
    for (name, value) in headers {
        req = req.header(name.clone(), *value);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    (status, headers, resp.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn downloads_honour_ranges() {
    let w = World::new().await;
    // Several read chunks long, so that streaming is exercised.
    let camera = pattern(300_000);
    let rec = w.recording(&camera, &[]).await;
    let file = format!("/api/v1/recordings/{}/files/{CAMERA}", rec.id);
    let h = |headers: &header::HeaderMap, name: header::HeaderName| {
        headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };

    let (status, headers, body) = download(&w, &file, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, camera);
    assert_eq!(h(&headers, header::CONTENT_TYPE), "video/webm");
    assert_eq!(h(&headers, header::ACCEPT_RANGES), "bytes");
    assert_eq!(h(&headers, header::CONTENT_LENGTH), "300000");
    assert!(!h(&headers, header::LAST_MODIFIED).is_empty());
    let etag = h(&headers, header::ETAG);
    assert!(etag.starts_with('"'), "{etag}");

    let len = camera.len();
    for (range, start, end) in [
        ("bytes=0-9", 0, 9),
        ("bytes=100000-199999", 100_000, 199_999),
        ("bytes=-100", len - 100, len - 1),
        ("bytes=299990-", len - 10, len - 1),
        ("bytes=299990-999999", len - 10, len - 1),
        ("bytes=-999999", 0, len - 1),
    ] {
        let (status, headers, body) = download(&w, &file, &[(header::RANGE, range)]).await;
        assert_eq!(status, StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            h(&headers, header::CONTENT_RANGE),
            format!("bytes {start}-{end}/{len}"),
            "{range}"
        );
        assert_eq!(body, &camera[start..=end], "{range}");
        assert_eq!(h(&headers, header::CONTENT_TYPE), "video/webm");
    }
    for range in ["bytes=300000-", "bytes=999999-1000000", "bytes=-0"] {
        let (status, headers, body) = download(&w, &file, &[(header::RANGE, range)]).await;
        assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE, "{range}");
        assert_eq!(h(&headers, header::CONTENT_RANGE), format!("bytes */{len}"));
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(code(&body), "range_not_satisfiable");
    }
    // Several ranges, or ones this server ignores: the whole file.
    for range in ["bytes=0-1,5-6", "bytes=9-2", "lines=1-2"] {
        let (status, _, body) = download(&w, &file, &[(header::RANGE, range)]).await;
        assert_eq!(status, StatusCode::OK, "{range}");
        assert_eq!(body.len(), len, "{range}");
    }
    // Conditional requests.
    let (status, _, body) = download(&w, &file, &[(header::IF_NONE_MATCH, etag.as_str())]).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());
    let stale = [(header::RANGE, "bytes=0-9"), (header::IF_RANGE, "\"old\"")];
    let (status, _, body) = download(&w, &file, &stale).await;
    assert_eq!((status, body.len()), (StatusCode::OK, len));
    let fresh = [
        (header::RANGE, "bytes=0-9"),
        (header::IF_RANGE, etag.as_str()),
    ];
    assert_eq!(
        download(&w, &file, &fresh).await.0,
        StatusCode::PARTIAL_CONTENT
    );

    // Each file with its type; HEAD gives the headers.
    for (name, content_type) in [
        (MIC, "audio/webm"),
        (SCREEN, "video/x-matroska"),
        ("manifest.json", "application/json"),
    ] {
        let path = format!("/api/v1/recordings/{}/files/{name}", rec.id);
        let (status, headers, body) = download(&w, &path, &[]).await;
        assert_eq!(status, StatusCode::OK, "{name}");
        assert_eq!(h(&headers, header::CONTENT_TYPE), content_type);
        if name == "manifest.json" {
            let manifest: Manifest = serde_json::from_slice(&body).unwrap();
            assert_eq!(manifest.recording_id, rec.id.to_string());
        }
    }
    let resp =
        w.s.http
            .head(w.s.url(&file))
            .bearer_auth(&w.attendee)
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(h(resp.headers(), header::CONTENT_LENGTH), "300000");
}

/// A request written by hand, so that `..` reaches the server unnormalised.
async fn raw_status(w: &World, path: &str) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(w.s.addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        w.attendee
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer);
    text.split(' ').nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn names_that_are_paths_are_refused() {
    let w = World::new().await;
    let rec = w
        .recording(b"camera", &[("extra.webm", &b"not listed"[..])])
        .await;
    // Targets a traversal would reach if it were followed.
    let recordings = w.s.home.data_dir.path().join("recordings");
    std::fs::write(recordings.join("secret.webm"), b"secret").unwrap();
    let base = format!("/api/v1/recordings/{}/files", rec.id);
    for name in [
        "..%2Fsecret.webm",
        "..%2F..%2Fvtp.db",
        "%2E%2E%5Csecret.webm",
        "a%2F..%2F..%2Fsecret.webm",
        "%2Fetc%2Fpasswd",
        "peer-a-camera.webm%00",
        ".hidden",
    ] {
        let (status, body) = w.s.get(&format!("{base}/{name}"), Some(&w.attendee)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {body}");
        assert_eq!(code(&body), "bad_request");
    }
    // Dot segments sent as they are (clients normally resolve them).
    for name in ["..", "%2e%2e", "."] {
        assert_eq!(
            raw_status(&w, &format!("{base}/{name}")).await,
            400,
            "{name}"
        );
    }
    // Refused before the recording is even looked at: same answer for one
    // that does not exist.
    let (status, _) =
        w.s.get(
            &format!("/api/v1/recordings/{}/files/..%2Fx", Uuid::new_v4()),
            Some(&w.attendee),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Plain names the manifest does not list: 404, even when on disk.
    for name in ["extra.webm", "nothing.webm", "vtp.db"] {
        let (status, body) = w.s.get(&format!("{base}/{name}"), Some(&w.attendee)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{name}: {body}");
    }
    // Listed but not written (yet): 404 too.
    std::fs::remove_file(w.dir(rec.id).join(MIC)).unwrap();
    let (status, _) = w.s.get(&format!("{base}/{MIC}"), Some(&w.attendee)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, details) =
        w.s.get(&format!("/api/v1/recordings/{}", rec.id), Some(&w.attendee))
            .await;
    assert_eq!(details["files"][1]["available"], false);
    assert_eq!(details["files"][1]["bytes"], 4, "the manifest's figure");

    // A manifest naming a path (a recorder bug): not listed, not served.
    let mut manifest: Manifest = serde_json::from_value(rec.manifest.clone().unwrap()).unwrap();
    manifest.tracks[0].file = "../secret.webm".into();
    let running =
        w.s.store
            .create_recording(
                &NewRecording {
                    room_id: w.room.clone(),
                    session_id: rec.session_id,
                    started_by: None,
                },
                chrono::Utc::now(),
            )
            .await
            .unwrap();
    let value = serde_json::to_value(&manifest).unwrap();
    assert!(
        w.s.store
            .update_recording_progress(running.id, 1, 1, &value, chrono::Utc::now())
            .await
            .unwrap()
    );
    let (status, details) =
        w.s.get(
            &format!("/api/v1/recordings/{}", running.id),
            Some(&w.attendee),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{details}");
    let names: Vec<&str> = details["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [MIC, SCREEN, "manifest.json"]);
    let path = format!("/api/v1/recordings/{}/files/..%2Fsecret.webm", running.id);
    assert_eq!(
        w.status(Method::GET, &path, Some(&w.attendee)).await,
        StatusCode::BAD_REQUEST
    );
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
            .list_sessions(&w.room, Default::default())
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
