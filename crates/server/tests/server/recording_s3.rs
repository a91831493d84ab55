//! Recordings in an S3-compatible bucket, against a real one: `moto_server`
//! (PyPI `moto[server]`, installed by `scripts/test` into
//! `target/moto-venv`, found through `VTP_TEST_MOTO_SERVER`) started here
//! on a free loopback port. Without it the tests fail, saying how to get it.
//!
//! A `ready` recording is uploaded (objects in the bucket, local copy
//! gone), downloaded through the API with and without ranges (byte-exact),
//! copied back to disk for tools, and deleted (objects gone). With the
//! bucket down it stays `ready` and served from disk, and is uploaded once
//! the bucket is back.

use crate::common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::recordings::{TrackFile, probe, recording_dir, register_ready};
use common::*;
use futures_util::TryStreamExt;
use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use reqwest::{StatusCode, header};
use serde_json::json;
use uuid::Uuid;
use vtp_recording::{Codec, Kind, Manifest};
use vtp_server::config::{RecordingStorageArgs, Secret, ServeArgs};
use vtp_server::recording::storage::{LocalCopy, StorageError};
use vtp_store::{NewParticipant, RecordingState, Role, RoomRole, RoomStatus, StorageLocation};

/// More than one upload part (8 MiB).
const CAMERA_BYTES: usize = 9_000_000;
const BUCKET: &str = "vtp-recordings";
const PREFIX: &str = "classes/2026";
/// Generous: the machine may be busy; the uploader retries every 200 ms.
const DEADLINE: Duration = Duration::from_secs(90);

/// A `moto_server` child process, killed on drop.
struct Moto {
    child: Child,
    port: u16,
}

impl Moto {
    /// `VTP_TEST_MOTO_SERVER` (set by scripts/test); else the virtualenv
    /// scripts/test makes (so that a later plain `cargo test` finds it
    /// too); else `moto_server` on the PATH.
    fn binary() -> String {
        if let Ok(path) = std::env::var("VTP_TEST_MOTO_SERVER") {
            return path;
        }
        let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../target/moto-venv/bin/moto_server");
        if venv.is_file() {
            return venv.display().to_string();
        }
        "moto_server".into()
    }

    async fn start_on(port: u16) -> Moto {
        let child = Command::new(Self::binary())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {:?} ({e}): this test needs moto's S3 server. scripts/test \
                     installs it (python3 -m venv target/moto-venv && target/moto-venv/bin/pip \
                     install 'moto[server]') and sets VTP_TEST_MOTO_SERVER to its moto_server",
                    Self::binary()
                )
            });
        let moto = Moto { child, port };
        let http = reqwest::Client::new();
        // Ready when it creates the bucket (moto accepts unsigned requests).
        let bucket = moto.url(&format!("/{BUCKET}"));
        wait_until(DEADLINE, "moto_server to create the bucket", async || {
            let created = http.put(&bucket).send().await;
            created.is_ok_and(|r| r.status().is_success())
        })
        .await;
        moto
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Moto {
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

fn endpoint(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

fn configure(args: &mut ServeArgs, port: u16, presign: Option<Duration>) {
    args.recording_storage = RecordingStorageArgs {
        recording_s3_url: Some(format!("s3://{BUCKET}/{PREFIX}")),
        recording_s3_endpoint: Some(endpoint(port)),
        recording_s3_region: "us-east-1".into(),
        recording_s3_access_key_id: Some("test-key".into()),
        recording_s3_secret_access_key: Some(Secret::new("test-secret")),
        recording_s3_allow_http: true,
        recording_s3_presign: presign,
        recording_upload_retry: Duration::from_millis(200),
    };
}

/// Waits until the recording is in the bucket; its prefix there.
async fn uploaded(s: &TestServer, id: Uuid) -> String {
    wait_for(DEADLINE, "the recording to be uploaded", async || {
        let storage = s.store.recording_storage(id).await.unwrap();
        match &storage.location {
            StorageLocation::Remote { prefix } => Ok(prefix.clone()),
            StorageLocation::Local => Err(storage),
        }
    })
    .await
}

/// Object names (keys) in the bucket under `prefix`, read with a client of
/// our own.
async fn objects(port: u16, prefix: &str) -> Vec<(String, u64)> {
    let s3 = AmazonS3Builder::new()
        .with_bucket_name(BUCKET)
        .with_region("us-east-1")
        .with_endpoint(endpoint(port))
        .with_allow_http(true)
        .with_access_key_id("test-key")
        .with_secret_access_key("test-secret")
        .build()
        .unwrap();
    let mut found: Vec<(String, u64)> = s3
        .list(Some(&ObjectPath::from(prefix)))
        .map_ok(|m| (m.location.to_string(), m.size))
        .try_collect()
        .await
        .unwrap();
    found.sort();
    found
}

/// Distinct bytes at every offset, so that a wrong range shows.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i % 251) as u8).wrapping_add(seed))
        .collect()
}

/// The files of the registered recording: (name, kind, codec, content).
fn tracks() -> Vec<(&'static str, Kind, Codec, Vec<u8>)> {
    vec![
        // Over 8 MiB: uploaded in parts.
        (
            "00-camera-peer-a.webm",
            Kind::Video,
            Codec::Vp8,
            pattern(CAMERA_BYTES, 0),
        ),
        (
            "01-mic-peer-a.webm",
            Kind::Audio,
            Codec::Opus,
            pattern(40_000, 7),
        ),
        (
            "02-screen-peer-b.mkv",
            Kind::Video,
            Codec::H264,
            pattern(1, 9),
        ),
    ]
}

struct World {
    s: TestServer,
    owner: String,
    stranger: String,
    room: String,
    session: Uuid,
}

impl World {
    async fn new(configure_args: impl FnOnce(&mut ServeArgs)) -> World {
        let s = TestServer::start_with(configure_args).await;
        let (owner_id, owner) = s.user("owner@example.org", Role::Instructor).await;
        let (_, stranger) = s.user("stranger@example.org", Role::Student).await;
        let room = s.room(&owner, json!({})).await;
        let session = s
            .store
            .start_session(&room, chrono::Utc::now())
            .await
            .unwrap();
        s.store
            .add_participant(
                &NewParticipant {
                    session_id: session.id,
                    user_id: owner_id.parse().unwrap(),
                    peer_id: "peer-a".into(),
                    display_name: "owner".into(),
                    room_role: RoomRole::Host,
                },
                chrono::Utc::now(),
            )
            .await
            .unwrap();
        s.store
            .end_session(session.id, RoomStatus::Open, chrono::Utc::now())
            .await
            .unwrap();
        World {
            s,
            owner,
            stranger,
            room,
            session: session.id,
        }
    }

    fn dir(&self, id: Uuid) -> std::path::PathBuf {
        recording_dir(&self.s, id)
    }

    /// A recording as the recorder leaves it: files and manifest on disk,
    /// then the row finished `ready` (which the uploader picks up).
    async fn record(&self) -> Uuid {
        let tracks = tracks();
        let files: Vec<TrackFile> = tracks
            .iter()
            .map(|(name, kind, codec, data)| (*name, *kind, *codec, data.as_slice()))
            .collect();
        register_ready(&self.s, &self.room, self.session, &files).await
    }

    /// The server's own `local_copy` of the recording.
    async fn local_copy(&self, id: Uuid) -> LocalCopy {
        let files = &self.s.recording_files;
        files.local_copy(&self.s.store, id).await.unwrap()
    }

    /// DELETE the recording as its owner.
    async fn delete(&self, id: Uuid) -> (StatusCode, serde_json::Value) {
        let path = format!("/api/v1/recordings/{id}");
        self.s
            .call(reqwest::Method::DELETE, &path, Some(&self.owner), None)
            .await
    }

    async fn wait_until_uploaded(&self, id: Uuid) -> String {
        uploaded(&self.s, id).await
    }

    /// GET a file with an optional Range; (status, Content-Range, body).
    async fn download(
        &self,
        id: Uuid,
        name: &str,
        token: Option<&str>,
        range: Option<&str>,
    ) -> (StatusCode, Option<String>, Vec<u8>) {
        let mut req = self
            .s
            .http
            .get(self.s.url(&format!("/api/v1/recordings/{id}/files/{name}")));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(r) = range {
            req = req.header(header::RANGE, r);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let content_range = resp
            .headers()
            .get(header::CONTENT_RANGE)
            .map(|v| v.to_str().unwrap().to_owned());
        (status, content_range, resp.bytes().await.unwrap().to_vec())
    }

    /// Every file downloads byte-exact, whole and in ranges.
    async fn check_downloads(&self, id: Uuid) {
        for (name, _, _, data) in tracks() {
            let (status, _, body) = self.download(id, name, Some(&self.owner), None).await;
            assert_eq!(status, StatusCode::OK, "{name}");
            assert!(body == data, "{name}: whole file differs");
        }
        let camera = &tracks()[0].3;
        let name = tracks()[0].0;
        let len = camera.len();
        for (range, start, end) in [
            ("bytes=1000-1999", 1000, 1999),
            ("bytes=8388600-8388700", 8_388_600, 8_388_700),
            ("bytes=8999990-", 8_999_990, len - 1),
            ("bytes=-17", len - 17, len - 1),
            ("bytes=0-0", 0, 0),
        ] {
            let (status, content_range, body) = self
                .download(id, name, Some(&self.owner), Some(range))
                .await;
            assert_eq!(status, StatusCode::PARTIAL_CONTENT, "{range}");
            assert_eq!(
                content_range.as_deref(),
                Some(format!("bytes {start}-{end}/{len}").as_str()),
                "{range}"
            );
            assert!(body == camera[start..=end], "{range}: wrong bytes");
        }
        let (status, content_range, _) = self
            .download(id, name, Some(&self.owner), Some("bytes=9000000-"))
            .await;
        assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(content_range.as_deref(), Some("bytes */9000000"));
        // The same rules as ever: a stranger sees nothing, anonymous is 401.
        let (status, _, _) = self.download(id, name, Some(&self.stranger), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _, _) = self.download(id, name, None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn a_ready_recording_is_uploaded_served_copied_back_and_deleted() {
    let moto = Moto::start_on(free_port()).await;
    let port = moto.port;
    let w = World::new(|args| configure(args, port, None)).await;
    let id = w.record().await;

    let prefix = w.wait_until_uploaded(id).await;
    assert_eq!(prefix, format!("{PREFIX}/{id}"));
    let mut expected: Vec<(String, u64)> = tracks()
        .iter()
        .map(|(name, _, _, data)| (format!("{prefix}/{name}"), data.len() as u64))
        .collect();
    // The manifest's size is not fixed: only its presence is checked.
    expected.push((format!("{prefix}/manifest.json"), 0));
    expected.sort();
    let found = objects(port, &prefix).await;
    assert_eq!(
        found.iter().map(|(k, _)| k).collect::<Vec<_>>(),
        expected.iter().map(|(k, _)| k).collect::<Vec<_>>()
    );
    for ((key, size), (_, want)) in found.iter().zip(&expected) {
        if !key.ends_with("manifest.json") {
            assert_eq!(size, want, "{key}");
        }
    }
    assert!(
        !w.dir(id).exists(),
        "the local copy is removed once uploaded"
    );

    // Details list the files as available, with their sizes in the bucket.
    let (status, details) =
        w.s.get(&format!("/api/v1/recordings/{id}"), Some(&w.owner))
            .await;
    assert_eq!(status, StatusCode::OK, "{details}");
    let files = details["files"].as_array().unwrap();
    assert_eq!(files.len(), 4);
    assert!(files.iter().all(|f| f["available"] == true), "{details}");
    assert_eq!(files[0]["bytes"], CAMERA_BYTES);

    w.check_downloads(id).await;

    // The seam for tools that need files: a local copy, gone when dropped.
    let copy = w.local_copy(id).await;
    for (name, _, _, data) in tracks() {
        assert!(
            std::fs::read(copy.dir().join(name)).unwrap() == data,
            "{name}"
        );
    }
    assert!(copy.dir().join("manifest.json").is_file());
    let copied = copy.dir().to_path_buf();
    drop(copy);
    assert!(!copied.exists(), "a downloaded copy is removed on drop");

    let (status, _) = w.delete(id).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(objects(port, &prefix).await, vec![], "objects deleted");
    let (status, _) =
        w.s.get(&format!("/api/v1/recordings/{id}"), Some(&w.owner))
            .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn with_the_bucket_down_a_recording_stays_local_until_it_is_back() {
    let port = free_port();
    let w = World::new(|args| configure(args, port, None)).await;
    let id = w.record().await;

    // The uploader tries and fails: still ready, still local, served from disk.
    let storage = wait_for(DEADLINE, "an upload attempt recorded", async || {
        let storage = w.s.store.recording_storage(id).await.unwrap();
        if storage.upload_attempts > 0 {
            Ok(storage)
        } else {
            Err(storage)
        }
    })
    .await;
    assert_eq!(storage.location, StorageLocation::Local);
    assert!(storage.upload_error.is_some());
    let recording = w.s.store.get_recording(id).await.unwrap();
    assert_eq!(recording.state, RecordingState::Ready);
    assert!(w.dir(id).join("manifest.json").is_file());
    w.check_downloads(id).await;

    // Deleting needs the bucket (an upload may have left objects there):
    // refused, and nothing is lost.
    let (status, body) = w.delete(id).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(code(&body), "unavailable");
    assert!(w.dir(id).join(tracks()[0].0).is_file());
    w.check_downloads(id).await;

    // A tool reading the local files holds them: the bucket comes back,
    // but the files stay (and cannot be deleted or uploaded) while the copy
    // is in use.
    let copy = w.local_copy(id).await;
    assert_eq!(copy.dir(), w.dir(id), "a local recording is used in place");
    let moto = Moto::start_on(port).await;
    let (status, body) = w.delete(id).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let upload = w.s.recording_files.upload(&w.s.store, id).await;
    assert!(matches!(upload, Err(StorageError::Busy)), "{upload:?}");
    assert_eq!(
        w.s.store.recording_storage(id).await.unwrap().location,
        StorageLocation::Local
    );
    assert!(copy.dir().join(tracks()[0].0).is_file());

    // Released: uploaded at the next retry.
    drop(copy);
    let prefix = w.wait_until_uploaded(id).await;
    assert_eq!(objects(moto.port, &prefix).await.len(), 4);
    // The location is recorded first, then the files are removed.
    wait_until(DEADLINE, "the local copy to be removed", async || {
        !w.dir(id).exists()
    })
    .await;
    w.check_downloads(id).await;
}

#[tokio::test]
async fn downloads_can_redirect_to_presigned_urls() {
    let moto = Moto::start_on(free_port()).await;
    let port = moto.port;
    let w = World::new(|args| configure(args, port, Some(Duration::from_secs(300)))).await;
    let id = w.record().await;
    w.wait_until_uploaded(id).await;

    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let (name, _, _, camera) = &tracks()[0];
    let resp = no_redirects
        .get(w.s.url(&format!("/api/v1/recordings/{id}/files/{name}")))
        .bearer_auth(&w.owner)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TEMPORARY_REDIRECT);
    let location = resp.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(location.starts_with(&endpoint(port)), "{location}");
    // The URL alone (no credentials) gets the bytes, ranges included.
    let ranged = reqwest::Client::new()
        .get(&location)
        .header(header::RANGE, "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), StatusCode::PARTIAL_CONTENT);
    assert!(ranged.bytes().await.unwrap() == camera[100..200]);
    // Permissions are checked before any redirect.
    let resp = no_redirects
        .get(w.s.url(&format!("/api/v1/recordings/{id}/files/{name}")))
        .bearer_auth(&w.stranger)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_real_recording_is_uploaded_as_soon_as_it_is_finalized() {
    let moto = Moto::start_on(free_port()).await;
    let port = moto.port;
    // Retries an hour apart: only the finalize signal can upload it in time.
    let s = TestServer::start_with(|args| {
        configure(args, port, None);
        args.recording_storage.recording_upload_retry = Duration::from_secs(3600);
    })
    .await;
    let (_, teacher) = s.user("t@example.org", Role::Instructor).await;
    let room = s.room(&teacher, json!({})).await;
    let a = common::media::publish(&s, &teacher, &room).await;
    a.video.start();
    a.audio.start();
    let started = a
        .socket
        .request("start-recording", json!({ "roomId": room }))
        .await
        .unwrap();
    let id: Uuid = started["recordingId"].as_str().unwrap().parse().unwrap();
    // Two seconds of media (30 frames a second).
    let after_start = a.video.stats().frames;
    wait_until(DEADLINE, "two seconds of video sent", async || {
        a.video.stats().frames >= after_start + 60
    })
    .await;
    a.socket
        .request("stop-recording", json!({ "roomId": room }))
        .await
        .unwrap();
    a.video.stop();
    a.audio.stop();
    assert_eq!(
        s.store.get_recording(id).await.unwrap().state,
        RecordingState::Ready
    );

    let prefix = uploaded(&s, id).await;
    // Two tracks and the manifest, and nothing left on disk.
    assert_eq!(objects(port, &prefix).await.len(), 3);
    let local = s
        .home
        .data_dir
        .path()
        .join("recordings")
        .join(id.to_string());
    // The uploader records the new location first, then removes the files.
    wait_until(DEADLINE, "the local copy to be removed", async || {
        !local.exists()
    })
    .await;
    // What comes back from the bucket plays.
    let copy = s.recording_files.local_copy(&s.store, id).await.unwrap();
    let manifest: Manifest =
        Manifest::from_json(&std::fs::read_to_string(copy.dir().join("manifest.json")).unwrap())
            .unwrap();
    let mut codecs: Vec<String> = manifest
        .tracks
        .iter()
        .map(|t| probe(&copy.dir().join(&t.file)).0)
        .collect();
    codecs.sort();
    assert_eq!(codecs, ["opus", "vp8"]);
    drop(copy);

    // An export reads the uploaded files back from the bucket.
    let exports = format!("/api/v1/recordings/{id}/exports");
    let (status, body) = s
        .post(&exports, Some(&teacher), json!({ "layout": "audio" }))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let export = format!("{exports}/{}", body["id"].as_str().unwrap());
    let ready = wait_for(DEADLINE, "the export to be ready", async || {
        let (_, body) = s.get(&export, Some(&teacher)).await;
        match body["state"].as_str().unwrap() {
            "ready" => Ok(body),
            "failed" => panic!("export from the bucket failed: {body}"),
            _ => Err(body),
        }
    })
    .await;
    let resp = s
        .http
        .get(s.url(ready["url"].as_str().unwrap()))
        .bearer_auth(&teacher)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mp4 = resp.bytes().await.unwrap();
    let file = s.home.data_dir.path().join("export-from-bucket.m4a");
    std::fs::write(&file, mp4).unwrap();
    assert_eq!(probe(&file).0, "aac");
    // The temporary download for ffmpeg is gone.
    let downloads = s.home.data_dir.path().join("recordings").join(".downloads");
    assert_eq!(
        std::fs::read_dir(&downloads)
            .map(|d| d.count())
            .unwrap_or(0),
        0
    );
}

#[tokio::test]
async fn a_bucket_url_that_is_not_one_stops_the_start_with_a_clear_error() {
    let home = Home::new().await;
    let mut args = home.args();
    configure(&mut args, free_port(), None);
    args.recording_storage.recording_s3_url = Some("https://bucket.example.org/x".into());
    let error = match vtp_server::Server::build(&args).await {
        Ok(_) => panic!("a server was built with a bad bucket URL"),
        Err(e) => format!("{e:#}"),
    };
    assert!(error.contains("s3://bucket/prefix"), "{error}");
    assert!(!error.contains("test-secret"), "{error}");
}
