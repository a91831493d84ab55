//! Server-side recording with the real server, the Rust client over real
//! UDP, and Debian's ffprobe checking the files: a host records ~5 s of
//! audio and video; a server killed with SIGKILL mid-recording repairs the
//! recording at its next start.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::media::{publish, publish_at};
use common::recordings::probe;
use common::*;
use serde_json::{Value, json};
use vtp_store::{NewUser, RecordingState, Role, Store, StoreOptions};

fn manifest(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).expect("manifest"))
        .expect("manifest is JSON")
}

fn track_files(manifest: &Value) -> Vec<(String, String)> {
    manifest["tracks"]
        .as_array()
        .expect("tracks")
        .iter()
        .map(|t| {
            (
                t["file"].as_str().unwrap().to_string(),
                t["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_host_records_five_seconds_of_audio_and_video() {
    let s = TestServer::start().await;
    let (_, teacher) = s.user("t@example.org", Role::Instructor).await;
    let (_, ann) = s.user("ann@example.org", Role::Student).await;
    let room = s.room(&teacher, json!({})).await;
    let a = publish(&s, &teacher, &room).await;
    let student = s.socket(&ann).await;
    join(&student, &room).await;

    // A student may not record.
    assert_eq!(
        refused(
            student
                .request("start-recording", json!({ "roomId": room }))
                .await
        ),
        "forbidden"
    );
    a.video.start();
    a.audio.start();
    let frames = || a.video.stats().frames;
    let before_start = frames();
    let started = a
        .socket
        .request("start-recording", json!({ "roomId": room }))
        .await
        .unwrap();
    let after_start = frames();
    let id = started["recordingId"].as_str().unwrap().to_string();
    assert_eq!(
        student.next_event("recording-started", WAIT).await.unwrap()["recordingId"],
        id.as_str()
    );
    assert_eq!(
        refused(
            a.socket
                .request("start-recording", json!({ "roomId": room }))
                .await
        ),
        "conflict",
        "one recording at a time"
    );
    let info = student
        .request("get-room-info", json!({ "roomId": room }))
        .await
        .unwrap();
    assert_eq!(info["recording"], true);

    // Five seconds of media, counted in what the publisher sends.
    wait_until(MEDIA_WAIT, "five seconds of video sent", async || {
        frames() >= after_start + 5 * FPS
    })
    .await;
    let before_stop = frames();
    let stopped = a
        .socket
        .request("stop-recording", json!({ "roomId": room }))
        .await
        .unwrap();
    let after_stop = frames();
    assert_eq!(stopped["recordingId"], id.as_str());
    student.next_event("recording-stopped", WAIT).await.unwrap();
    a.video.stop();
    a.audio.stop();

    let row = s
        .store
        .get_recording(id.parse().unwrap())
        .await
        .expect("recording row");
    assert_eq!(row.state, RecordingState::Ready, "{row:?}");
    let dir = s.home.data_dir.path().join("recordings").join(&id);
    let manifest = manifest(&dir);
    let files = track_files(&manifest);
    assert_eq!(files.len(), 2, "{manifest}");
    // At least what was sent between the acks, at most what was sent
    // between the requests, give or take half a second.
    let seconds = |frames: u64| frames as f64 / FPS as f64;
    let (shortest, longest) = (
        seconds(before_stop - after_start) - 0.5,
        seconds(after_stop - before_start) + 0.5,
    );
    for (file, kind) in files {
        let (codec, duration) = probe(&dir.join(&file));
        let expected_codec = if kind == "video" { "vp8" } else { "opus" };
        assert_eq!(codec, expected_codec, "{file}");
        assert!(
            (shortest..=longest).contains(&duration),
            "{file}: {duration} s, expected {shortest:.2} to {longest:.2} s"
        );
    }
}

/// The frame rate of the publisher's video (the client's default).
const FPS: u64 = 30;
/// Generous: the media is sent in real time, on a machine that may be busy.
const MEDIA_WAIT: Duration = Duration::from_secs(30);

/// A `vtp serve` process on the home's database and data directory.
struct Spawned {
    child: Child,
    base: String,
}

/// A test that fails leaves no server behind.
impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn spawn_vtp(home: &Home) -> Spawned {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_vtp"))
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .args(["--rtc-bind", "127.0.0.1:0", "--sfu-workers", "1"])
        .args(["--log-level", "warn"])
        .arg("--data-dir")
        .arg(home.data_dir.path())
        .env("VTP_DATABASE_URL", home.db.url())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("vtp starts");
    let base = format!("http://127.0.0.1:{port}");
    // Killed (on drop) if it never answers.
    let spawned = Spawned { child, base };
    let http = reqwest::Client::new();
    wait_until(
        Duration::from_secs(10),
        "vtp to answer /health",
        async || {
            http.get(format!("{}/health", spawned.base))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        },
    )
    .await;
    spawned
}

async fn login(base: &str, email: &str) -> String {
    let body: Value = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["accessToken"].as_str().expect("signed in").to_string()
}

#[tokio::test]
async fn a_recording_cut_by_sigkill_is_repaired_at_the_next_start() {
    let home = Home::new().await;
    let store = Store::open(StoreOptions::new(home.db.url()))
        .await
        .expect("store");
    let hash = vtp_server::auth::password::hash_password(PASSWORD.into())
        .await
        .unwrap();
    store
        .create_user(
            NewUser {
                email: "t@example.org".into(),
                display_name: "Teacher".into(),
                password_hash: hash,
                role: Role::Instructor,
            },
            chrono::Utc::now(),
        )
        .await
        .unwrap();

    let mut vtp = spawn_vtp(&home).await;
    let token = login(&vtp.base, "t@example.org").await;
    let created: Value = reqwest::Client::new()
        .post(format!("{}/api/v1/rooms", vtp.base))
        .bearer_auth(&token)
        .json(&json!({ "title": "Crash course" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let room = created["id"].as_str().unwrap().to_string();
    let a = publish_at(&vtp.base, &token, &room).await;
    a.video.start();
    a.audio.start();
    let frames = || a.video.stats().frames;
    let started = a
        .socket
        .request("start-recording", json!({ "roomId": room }))
        .await
        .unwrap();
    let after_start = frames();
    let id = started["recordingId"].as_str().unwrap().to_string();
    // Files are flushed every second: three seconds leave a good part.
    wait_until(MEDIA_WAIT, "three seconds of video sent", async || {
        frames() >= after_start + 3 * FPS
    })
    .await;
    vtp.child.kill().expect("SIGKILL");
    let _ = vtp.child.wait();
    a.video.stop();
    a.audio.stop();
    let row = store.get_recording(id.parse().unwrap()).await.unwrap();
    assert_eq!(
        row.state,
        RecordingState::Recording,
        "the crash left it open"
    );

    // The next start repairs it before serving.
    let s = TestServer::start_in(home.clone(), |_| {}).await;
    let row = s.store.get_recording(id.parse().unwrap()).await.unwrap();
    assert_eq!(row.state, RecordingState::Ready, "{row:?}");
    let dir: PathBuf = home.data_dir.path().join("recordings").join(&id);
    let manifest = manifest(&dir);
    let files = track_files(&manifest);
    assert_eq!(files.len(), 2, "{manifest}");
    for (file, kind) in files {
        let (codec, duration) = probe(&dir.join(&file));
        assert_eq!(codec, if kind == "video" { "vp8" } else { "opus" });
        assert!(
            (1.0..=3.5).contains(&duration),
            "{file}: {duration} s kept of about 3"
        );
    }
}
