//! Recordings for the tests: registered as the recorder leaves them (files
//! and manifest on disk, the row `ready`), and Debian's ffprobe to check
//! that files play.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use uuid::Uuid;
use vtp_recording::{Codec, Kind, Manifest, ManifestTrack};
use vtp_store::{FinishedRecording, NewRecording, RecordingState};

use super::TestServer;

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

/// `ffprobe`'s view of a file: (codec name, duration in seconds).
pub fn probe(path: &Path) -> (String, f64) {
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
    let codec = json["streams"][0]["codec_name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let duration = json["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or(0.0);
    (codec, duration)
}
