//! Issue 15: a recording of a simulcast camera keeps its best layer. The
//! Rust client publishes three RID layers of synthetic VP8 (¼, ½ and full
//! width) over real UDP; a host records; Debian's ffprobe reads the
//! recorded camera track's width, which must be the top layer's, not the
//! lowest one's.

use crate::common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::media::publish_video_at;
use common::recordings::recording_dir;
use common::*;
use serde_json::{Value, json};
use uuid::Uuid;
use vtp_client::VideoOptions;
use vtp_store::{RecordingState, Role};

/// How much of the camera's track to record before stopping: a few
/// seconds of the top layer (the synthetic source sends 4/7 of 600 kbit/s
/// on it).
const ENOUGH_BYTES: u64 = 120_000;

/// The manifest's video track file, once the recorder listed it.
fn video_track(dir: &Path) -> Option<String> {
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).ok()?).ok()?;
    manifest["tracks"]
        .as_array()?
        .iter()
        .find(|t| t["kind"] == "video")
        .and_then(|t| t["file"].as_str())
        .map(str::to_owned)
}

/// ffprobe's width of the first video stream of a file.
fn video_width(path: &Path) -> u64 {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=width", "-of", "json"])
        .arg(path)
        .output()
        .unwrap_or_else(|e| {
            panic!("ffprobe is needed for this test (apt-get install ffmpeg): {e}")
        });
    assert!(out.status.success(), "ffprobe refused {}", path.display());
    let json: Value = serde_json::from_slice(&out.stdout).expect("ffprobe JSON");
    json["streams"][0]["width"]
        .as_u64()
        .unwrap_or_else(|| panic!("no video width in {json}"))
}

#[tokio::test]
async fn a_recording_of_a_simulcast_camera_has_the_top_layers_width() {
    let s = TestServer::start().await;
    let (_, teacher) = s.user("t@example.org", Role::Instructor).await;
    let room = s.room(&teacher, json!({})).await;
    let options = VideoOptions {
        simulcast: true,
        ..VideoOptions::default()
    };
    let top_width = u64::from(options.width);
    let a = publish_video_at(&s.url(""), &teacher, &room, options).await;
    a.video.start();
    a.audio.start();

    let started = a
        .socket
        .request("start-recording", json!({ "roomId": room }))
        .await
        .unwrap();
    let id: Uuid = started["recordingId"].as_str().unwrap().parse().unwrap();
    let dir = recording_dir(&s, id);
    // Record until the camera's file holds a few seconds (it is flushed
    // every second).
    let file = wait_for(
        Duration::from_secs(30),
        &format!(
            "the camera's track in {} to reach {ENOUGH_BYTES} bytes",
            dir.display()
        ),
        async || match video_track(&dir) {
            Some(file)
                if std::fs::metadata(dir.join(&file)).is_ok_and(|m| m.len() >= ENOUGH_BYTES) =>
            {
                Ok(file)
            }
            other => Err(other),
        },
    )
    .await;
    a.socket
        .request("stop-recording", json!({ "roomId": room }))
        .await
        .unwrap();
    a.video.stop();
    a.audio.stop();

    let row = s.store.get_recording(id).await.expect("recording row");
    assert_eq!(row.state, RecordingState::Ready, "{row:?}");
    assert_eq!(
        video_width(&dir.join(&file)),
        top_width,
        "the recorded camera is the top layer ({top_width} wide), not a lower one"
    );
}
