//! Downloads of recordings' files on a real server: byte ranges, and file
//! names that are paths refused before anything is read.

use crate::common;

use common::code;
use common::recordings::*;
use reqwest::{Method, StatusCode, header};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;
use vtp_recording::Manifest;
use vtp_store::NewRecording;

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
