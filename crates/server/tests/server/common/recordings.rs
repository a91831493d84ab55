//! Recordings for the tests: registered as the recorder leaves them (files
//! and manifest on disk, the row `ready`); a world for the recordings API
//! suites (a room with an owner, an admin, a host and an attendee of its
//! last session, a student of another room and an instructor who was not
//! there); and Debian's ffprobe to check that files play.

use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;
use vtp_recording::{Codec, Kind, Manifest, ManifestTrack};
use vtp_store::{
    FinishedRecording, NewParticipant, NewRecording, Recording, RecordingState, RoomRole,
    RoomStatus,
};

use super::TestServer;

pub const CAMERA: &str = "peer-a-camera.webm";
pub const MIC: &str = "peer-a-mic.webm";
pub const SCREEN: &str = "peer-b-screen.mkv";

/// Distinct bytes at every offset, so that a wrong range shows.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// One track file: (name, kind, codec, content).
pub type TrackFile<'a> = (&'a str, Kind, Codec, &'a [u8]);

/// `<data-dir>/recordings/<id>`.
pub fn recording_dir(s: &TestServer, id: Uuid) -> PathBuf {
    s.home
        .data_dir
        .path()
        .join("recordings")
        .join(id.to_string())
}

/// A recording of `session` whose `tracks` (5 s each, owned by `peer-a`)
/// and manifest are written as the recorder would leave them, finished
/// `ready` (which is what the uploader waits for).
pub async fn register_ready(
    s: &TestServer,
    room: &str,
    session: Uuid,
    tracks: &[TrackFile<'_>],
) -> Uuid {
    let rec = s
        .store
        .create_recording(
            &NewRecording {
                room_id: room.to_owned(),
                session_id: session,
                started_by: None,
            },
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let dir = recording_dir(s, rec.id);
    std::fs::create_dir_all(&dir).unwrap();
    let mut manifest = Manifest::new(
        rec.id.to_string(),
        room.to_owned(),
        session.to_string(),
        1_700_000_000_000,
    );
    for &(file, kind, codec, data) in tracks {
        std::fs::write(dir.join(file), data).unwrap();
        manifest.tracks.push(ManifestTrack {
            file: file.into(),
            peer_id: "peer-a".into(),
            user_id: "user-a".into(),
            kind,
            codec,
            source: "camera".into(),
            start_offset_ms: 0,
            duration_ms: 5000,
            bytes: data.len() as u64,
        });
    }
    std::fs::write(dir.join("manifest.json"), manifest.to_json().unwrap()).unwrap();
    let finished = s
        .store
        .finish_recording(
            rec.id,
            &FinishedRecording {
                stopped_at: chrono::Utc::now(),
                state: RecordingState::Ready,
                bytes: manifest.tracks.iter().map(|t| t.bytes).sum(),
                duration_ms: 5000,
                manifest: Some(serde_json::to_value(&manifest).unwrap()),
                error: None,
            },
        )
        .await
        .unwrap();
    assert!(finished);
    rec.id
}

pub struct World {
    pub s: TestServer,
    pub room: String,
    pub owner: String,
    pub admin: String,
    pub host: String,
    pub attendee: String,
    pub stranger: String,
    pub instructor: String,
}

impl World {
    pub async fn new() -> World {
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

    pub fn dir(&self, id: Uuid) -> PathBuf {
        recording_dir(&self.s, id)
    }

    /// A finished (`ready`) recording of the room's last session with three
    /// tracks and a manifest on disk; `extra` files are written but not listed.
    pub async fn recording(&self, camera: &[u8], extra: &[(&str, &[u8])]) -> Recording {
        let session = self
            .s
            .store
            .list_sessions(&self.room, &Default::default())
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

    pub async fn status(&self, method: Method, path: &str, token: Option<&str>) -> StatusCode {
        self.s.call(method, path, token, None).await.0
    }

    pub async fn listed(&self, token: &str) -> Vec<String> {
        let (status, body) = self.s.get("/api/v1/recordings", Some(token)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        ids(&body)
    }
}

pub fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

pub async fn attend(s: &TestServer, session: Uuid, user: &str, role: RoomRole) {
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

/// ffprobe's view of a media file: each stream's codec, and the duration in
/// seconds. Panics (saying what to install) when ffprobe is missing, and
/// when it refuses the file.
pub fn ffprobe(path: &Path) -> (Vec<String>, f64) {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_streams",
            "-show_format",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .unwrap_or_else(|e| {
            panic!("ffprobe is needed for this test (apt-get install ffmpeg): {e}")
        });
    assert!(
        out.status.success(),
        "ffprobe refused {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).expect("ffprobe JSON");
    let codecs = json["streams"]
        .as_array()
        .map(|streams| {
            streams
                .iter()
                .map(|s| s["codec_name"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default();
    let duration = json["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or(0.0);
    (codecs, duration)
}

/// `ffprobe`'s view of a single-stream file: (codec name, duration in seconds).
pub fn probe(path: &Path) -> (String, f64) {
    let (codecs, duration) = ffprobe(path);
    (codecs.into_iter().next().unwrap_or_default(), duration)
}
