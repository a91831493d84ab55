//! Export of a recording to one MP4 with Debian's ffmpeg, on a real server
//! and through the `vtp` binary: a recording of two peers (audio and video
//! each, the second joining 1 s late) is built from the committed fixtures
//! as the recorder would leave it; exports go `queued` → `running` →
//! `ready`, and ffprobe checks the codecs and the duration. Also: who may
//! export, bad input, a recording still running, no ffmpeg, a restart.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::recordings::{attend, ffprobe};
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;
use vtp_recording::{Codec, Kind, Manifest, ManifestTrack};
use vtp_store::{
    ExportLayout, ExportState, FinishedRecording, NewRecording, RecordingState, Role, RoomRole,
    RoomStatus, Store, StoreOptions,
};

/// Each peer's tracks last 5 s; peer b starts 1 s late: 6 s in all.
const PEER_B_OFFSET_MS: u64 = 1000;
const RECORDING_MS: u64 = 5000 + PEER_B_OFFSET_MS;
/// Exports run with ffmpeg on a busy machine: a generous deadline.
const EXPORT_WAIT: Duration = Duration::from_secs(120);

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../recording/tests/fixtures")
        .join(name)
}

/// Remuxes a fixture into WebM, as the recorder writes tracks.
fn remux(from: &Path, to: &Path) {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(from)
        .args(["-c", "copy", "-f", "webm"])
        .arg(to)
        .output()
        .expect("ffmpeg is needed for this test (apt-get install ffmpeg)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn assert_export_plays(path: &Path, codecs: &[&str]) {
    let (found, duration) = ffprobe(path);
    assert_eq!(found, codecs, "{}", path.display());
    let expected = RECORDING_MS as f64 / 1000.0;
    assert!(
        (duration - expected).abs() <= expected * 0.1,
        "{}: {duration} s, expected {expected} s ± 10%",
        path.display()
    );
}

struct World {
    s: TestServer,
    owner: String,
    attendee: String,
    stranger: String,
    recording: Uuid,
}

impl World {
    async fn new() -> World {
        Self::on(TestServer::start().await).await
    }

    async fn on(s: TestServer) -> World {
        let (_, owner) = s.user("owner@example.org", Role::Instructor).await;
        let (att_id, attendee) = s.user("att@example.org", Role::Student).await;
        let (str_id, stranger) = s.user("str@example.org", Role::Student).await;
        let room = s.room(&owner, json!({})).await;
        let recording = record_two_peers(&s, &room, &att_id).await;
        // The stranger is a student of another room.
        let other = s.room(&owner, json!({})).await;
        let session = s
            .store
            .start_session(&other, chrono::Utc::now())
            .await
            .unwrap();
        attend(&s, session.id, &str_id, RoomRole::Participant).await;
        World {
            s,
            owner,
            attendee,
            stranger,
            recording,
        }
    }

    fn exports(&self) -> String {
        format!("/api/v1/recordings/{}/exports", self.recording)
    }

    /// Asks for an export; returns its id.
    async fn export(&self, token: &str, layout: &str) -> String {
        let (status, body) = self
            .s
            .post(&self.exports(), Some(token), json!({ "layout": layout }))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert_eq!(body["layout"], layout);
        assert!(
            ["queued", "running", "ready"].contains(&body["state"].as_str().unwrap()),
            "{body}"
        );
        body["id"].as_str().unwrap().to_string()
    }

    /// Polls the export until it is final; returns it and the progress
    /// values seen on the way.
    async fn wait_final(&self, token: &str, id: &str) -> (Value, Vec<f64>) {
        let path = format!("{}/{id}", self.exports());
        let mut seen = Vec::new();
        let last = wait_for(EXPORT_WAIT, "the export to end", async || {
            let (status, body) = self.s.get(&path, Some(token)).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let p = body["progress"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&p), "{body}");
            seen.push(p);
            if ["ready", "failed"].contains(&body["state"].as_str().unwrap()) {
                Ok(body)
            } else {
                Err(body)
            }
        })
        .await;
        (last, seen)
    }

    /// Downloads a ready export into the data directory; returns its path.
    async fn download(&self, token: &str, export: &Value) -> PathBuf {
        let url = export["url"].as_str().expect("a ready export has a url");
        let resp = self
            .s
            .http
            .get(self.s.url(url))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let bytes = resp.bytes().await.unwrap();
        assert_eq!(bytes.len() as u64, export["bytes"].as_u64().unwrap());
        let path = self
            .s
            .home
            .data_dir
            .path()
            .join(format!("downloaded-{}.mp4", export["id"].as_str().unwrap()));
        std::fs::write(&path, &bytes).unwrap();
        path
    }
}

/// A `ready` recording of two peers, camera and microphone each, with the
/// files and manifest the recorder would leave.
async fn record_two_peers(s: &TestServer, room: &str, attendee: &str) -> Uuid {
    let store = &s.store;
    let session = store.start_session(room, chrono::Utc::now()).await.unwrap();
    attend(s, session.id, attendee, RoomRole::Participant).await;
    let rec = store
        .create_recording(
            &NewRecording {
                room_id: room.into(),
                session_id: session.id,
                started_by: None,
            },
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    store
        .end_session(session.id, RoomStatus::Open, chrono::Utc::now())
        .await
        .unwrap();
    let dir = s
        .home
        .data_dir
        .path()
        .join("recordings")
        .join(rec.id.to_string());
    std::fs::create_dir_all(&dir).unwrap();
    let mut manifest = Manifest::new(rec.id.to_string(), room.into(), session.id.to_string(), 0);
    let mut bytes = 0;
    for (peer, offset) in [("a", 0), ("b", PEER_B_OFFSET_MS)] {
        for (kind, codec, source, from) in [
            (
                Kind::Video,
                Codec::Vp8,
                "camera",
                "vp8-320x240-15fps-5s.ivf",
            ),
            (Kind::Audio, Codec::Opus, "mic", "opus-48k-stereo-5s.ogg"),
        ] {
            let file = format!("{peer}-{source}.webm");
            remux(&fixture(from), &dir.join(&file));
            let size = std::fs::metadata(dir.join(&file)).unwrap().len();
            bytes += size;
            manifest.tracks.push(ManifestTrack {
                file,
                peer_id: format!("peer-{peer}"),
                user_id: format!("user-{peer}"),
                kind,
                codec,
                source: source.into(),
                start_offset_ms: offset,
                duration_ms: 5000,
                bytes: size,
            });
        }
    }
    std::fs::write(dir.join("manifest.json"), manifest.to_json().unwrap()).unwrap();
    let done = store
        .finish_recording(
            rec.id,
            &FinishedRecording {
                stopped_at: chrono::Utc::now(),
                state: RecordingState::Ready,
                bytes,
                duration_ms: RECORDING_MS,
                manifest: Some(serde_json::to_value(&manifest).unwrap()),
                error: None,
            },
        )
        .await
        .unwrap();
    assert!(done);
    rec.id
}

#[tokio::test]
async fn exports_through_the_api_become_playable_mp4s() {
    let w = World::new().await;
    let grid = w.export(&w.attendee, "grid").await;
    let audio = w.export(&w.owner, "audio").await;

    let (done, progress) = w.wait_final(&w.attendee, &grid).await;
    assert_eq!(done["state"], "ready", "{done}");
    assert_eq!(done["progress"], 1.0);
    assert!(
        progress.windows(2).all(|p| p[0] <= p[1]),
        "never backwards: {progress:?}"
    );
    let file = w.download(&w.attendee, &done).await;
    assert_export_plays(&file, &["h264", "aac"]);
    let first_grid_file = done["url"].as_str().unwrap().to_string();

    let (done, _) = w.wait_final(&w.owner, &audio).await;
    assert_eq!(done["state"], "ready", "{done}");
    let file = w.download(&w.owner, &done).await;
    assert_export_plays(&file, &["aac"]);

    // Ranges work as for the recording's files.
    let resp =
        w.s.http
            .get(w.s.url(done["url"].as_str().unwrap()))
            .bearer_auth(&w.owner)
            .header("Range", "bytes=0-99")
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(resp.headers()["content-type"], "audio/mp4");
    assert_eq!(resp.bytes().await.unwrap().len(), 100);

    let (status, list) = w.s.get(&w.exports(), Some(&w.attendee)).await;
    assert_eq!(status, StatusCode::OK);
    let layouts: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["layout"].as_str().unwrap())
        .collect();
    assert_eq!(layouts, ["audio", "grid"], "newest first");

    // Exporting again replaces the earlier file of that layout.
    let regrid = w.export(&w.owner, "grid").await;
    let (done, _) = w.wait_final(&w.owner, &regrid).await;
    assert_eq!(done["state"], "ready", "{done}");
    let (status, list) = w.s.get(&w.exports(), Some(&w.owner)).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [regrid.as_str(), audio.as_str()], "{list}");
    let (status, _) = w.s.get(&first_grid_file, Some(&w.owner)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let grid = regrid;

    // Deleting the recording removes its exports, rows and files.
    let exports_dir =
        w.s.home
            .data_dir
            .path()
            .join("exports")
            .join(w.recording.to_string());
    assert!(exports_dir.is_dir());
    let (status, _) =
        w.s.call(
            reqwest::Method::DELETE,
            &format!("/api/v1/recordings/{}", w.recording),
            Some(&w.owner),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(!exports_dir.exists());
    let (status, _) =
        w.s.get(&format!("{}/{grid}", w.exports()), Some(&w.owner))
            .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// A recording of another session of the owner's, still `recording`.
async fn running_recording(w: &World) -> Uuid {
    let room = w.s.room(&w.owner, json!({})).await;
    let now = chrono::Utc::now();
    let session = w.s.store.start_session(&room, now).await.unwrap();
    let running = NewRecording {
        room_id: room,
        session_id: session.id,
        started_by: None,
    };
    w.s.store.create_recording(&running, now).await.unwrap().id
}

/// Asks for an export of `recording`; returns the status and the error
/// message (empty when there is none).
async fn ask(
    s: &TestServer,
    recording: Uuid,
    token: Option<&str>,
    body: Value,
) -> (StatusCode, String) {
    let path = format!("/api/v1/recordings/{recording}/exports");
    let (status, body) = s.post(&path, token, body).await;
    let message = body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (status, message)
}

#[tokio::test]
async fn who_may_export_and_what_is_refused() {
    let s = TestServer::start_with(|args| args.exports.max_queued_exports = 2).await;
    let w = World::on(s).await;
    let (s, rec) = (&w.s, w.recording);
    let grid = json!({ "layout": "grid" });
    // Anonymous: 401; a student of another room: 404, as for the recording.
    assert_eq!(
        ask(s, rec, None, grid.clone()).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        ask(s, rec, Some(&w.stranger), grid.clone()).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.get(&w.exports(), Some(&w.stranger)).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(s.get(&w.exports(), None).await.0, StatusCode::UNAUTHORIZED);

    // Bad input changes nothing.
    let owner = Some(w.owner.as_str());
    let (status, message) = ask(s, rec, owner, json!({ "layout": "mosaic" })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{message}");
    assert!(message.contains("grid, speaker or audio"), "{message}");
    let unknown_field = json!({ "layout": "grid", "x": 1 });
    assert_eq!(
        ask(s, rec, owner, unknown_field).await.0,
        StatusCode::BAD_REQUEST
    );
    let unknown_export = format!("{}/{}", w.exports(), Uuid::new_v4());
    assert_eq!(s.get(&unknown_export, owner).await.0, StatusCode::NOT_FOUND);
    let (_, list) = s.get(&w.exports(), owner).await;
    assert_eq!(list["items"], json!([]), "refused requests leave nothing");

    // One export per (recording, layout) at a time, and a bounded queue.
    // (Rows made in the store are not handed to the queue: they stay queued.)
    let now = chrono::Utc::now();
    s.store
        .create_export(rec, ExportLayout::Grid, None, now)
        .await
        .unwrap();
    let (status, message) = ask(s, rec, owner, grid.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{message}");
    assert!(message.contains("already queued or running"), "{message}");
    s.store
        .create_export(rec, ExportLayout::Audio, None, now)
        .await
        .unwrap();
    let (status, message) = ask(s, rec, owner, json!({ "layout": "speaker" })).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{message}");
    assert!(message.contains("try again later"), "{message}");

    // The routes are in the OpenAPI document.
    let (_, doc) = s.get("/api/v1/openapi.json", None).await;
    for path in [
        "/api/v1/recordings/{id}/exports",
        "/api/v1/recordings/{id}/exports/{exportId}",
        "/api/v1/recordings/{id}/exports/{exportId}/file",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} not documented");
    }
    assert!(doc["paths"]["/api/v1/recordings/{id}/exports"]["post"].is_object());

    // A recording still running is refused with a reason.
    let running = running_recording(&w).await;
    let (status, message) = ask(s, running, owner, grid).await;
    assert_eq!(status, StatusCode::CONFLICT, "{message}");
    assert!(message.contains("still recording"), "{message}");
}

#[tokio::test]
async fn without_ffmpeg_the_route_says_what_to_install() {
    let s = TestServer::start_with(|args| {
        args.exports.run.ffmpeg = "/nonexistent/ffmpeg".into();
    })
    .await;
    let w = World::on(s).await;
    let (status, message) = ask(
        &w.s,
        w.recording,
        Some(&w.owner),
        json!({ "layout": "audio" }),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{message}");
    assert!(message.contains("Debian package `ffmpeg`"), "{message}");
}

#[tokio::test]
async fn a_restart_fails_running_exports_and_resumes_queued_ones() {
    let w = World::new().await;
    let recording = w.recording;
    let owner = w.owner.clone();
    let home = w.s.stop().await;
    let store = Store::open(StoreOptions::new(home.db.url())).await.unwrap();
    let cut = store
        .create_export(recording, ExportLayout::Grid, None, chrono::Utc::now())
        .await
        .unwrap();
    assert!(
        store
            .start_export(cut.id, chrono::Utc::now())
            .await
            .unwrap()
    );
    let waiting = store
        .create_export(recording, ExportLayout::Audio, None, chrono::Utc::now())
        .await
        .unwrap();
    store.close().await;

    let s = TestServer::start_in(home, |_| {}).await;
    let cut = s.store.get_export(cut.id).await.unwrap();
    assert_eq!(cut.state, ExportState::Failed);
    assert!(cut.error.unwrap().contains("server stopped"));
    let resumed = wait_for(
        EXPORT_WAIT,
        "the queued export to resume and end",
        async || {
            let e = s.store.get_export(waiting.id).await.unwrap();
            if e.state.is_final() { Ok(e) } else { Err(e) }
        },
    )
    .await;
    assert_eq!(resumed.state, ExportState::Ready, "{resumed:?}");
    let (status, body) = s
        .get(
            &format!("/api/v1/recordings/{recording}/exports/{}", waiting.id),
            Some(&owner),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "ready");
}

/// `vtp recording export …` on the home's database and data directory.
fn vtp_export(home: &Home, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vtp"))
        .args(["recording", "export"])
        .args(args)
        .arg("--data-dir")
        .arg(home.data_dir.path())
        .env("VTP_DATABASE_URL", home.db.url())
        .stdin(Stdio::null())
        .output()
        .expect("vtp runs")
}

#[tokio::test]
async fn the_command_line_exports_with_progress() {
    let w = World::new().await;
    let id = w.recording.to_string();
    let running = running_recording(&w).await.to_string();
    let home = w.s.stop().await;
    let out_dir = home.data_dir.path().join("cli");

    for (layout, codecs) in [
        ("grid", &["h264", "aac"][..]),
        ("speaker", &["h264", "aac"][..]),
        ("audio", &["aac"][..]),
    ] {
        let file = out_dir.join(format!("{layout}.mp4"));
        let out = vtp_export(
            &home,
            &[&id, "--layout", layout, "--output", file.to_str().unwrap()],
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.lines().any(|l| l == "progress: 100%"), "{stdout}");
        assert!(stdout.contains("wrote"), "{stdout}");
        assert_export_plays(&file, codecs);
    }

    // No ffmpeg: a clear error and a failing exit code.
    let out = vtp_export(&home, &[&id, "--ffmpeg", "/nonexistent/ffmpeg"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("install the Debian package `ffmpeg`"),
        "{stderr}"
    );
    // An unknown recording, and a bad layout.
    let out = vtp_export(&home, &[&Uuid::new_v4().to_string()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no recording"));
    let out = vtp_export(&home, &[&running]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is recording: only a ready recording"),
        "{stderr}"
    );
    let out = vtp_export(&home, &[&id, "--layout", "mosaic"]);
    assert!(!out.status.success());
}
