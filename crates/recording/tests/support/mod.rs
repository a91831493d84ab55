//! Test support: fixtures, a simulated network in front of the recorder,
//! and the ffprobe/ffmpeg checks.

#![allow(dead_code)] // each test binary uses a part

pub mod media;

use std::fs::File;
use std::io::{BufWriter, ErrorKind};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use vtp_recording::{Codec, Finished, RecorderConfig, RecorderEvent, RtpPacket, TrackRecorder};

pub fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A fresh directory for one test's files, under Cargo's target tmp dir.
pub fn out_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("vtp-recording")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What the network does to the packets on their way to the recorder,
/// deterministically by packet index.
#[derive(Clone, Debug, Default)]
pub struct Network {
    /// Every n-th packet is delayed 5 ms, behind the ones after it.
    pub reorder_every: Option<usize>,
    /// Every n-th packet is lost once and retransmitted 80 ms later.
    pub retransmit_every: Option<usize>,
    /// Every n-th packet also arrives a second time 30 ms later.
    pub duplicate_every: Option<usize>,
    /// Packets (by index) lost for good.
    pub lost: Vec<usize>,
}

impl Network {
    pub fn impaired() -> Self {
        Network {
            reorder_every: Some(7),
            retransmit_every: Some(23),
            duplicate_every: Some(31),
            lost: Vec::new(),
        }
    }

    /// Arrival times (after the start) and packets, in arrival order.
    pub fn deliver(&self, sent: Vec<(Duration, RtpPacket)>) -> Vec<(Duration, RtpPacket)> {
        let every =
            |n: Option<usize>, i: usize, phase: usize| n.is_some_and(|n| i % n == phase % n);
        let mut out = Vec::new();
        for (i, (at, packet)) in sent.into_iter().enumerate() {
            if self.lost.contains(&i) {
                continue;
            }
            let mut arrival = at + Duration::from_millis(10);
            if every(self.reorder_every, i, 3) {
                arrival += Duration::from_millis(5);
            }
            if every(self.duplicate_every, i, 5) {
                out.push((arrival + Duration::from_millis(30), packet.clone()));
            }
            if every(self.retransmit_every, i, 11) {
                arrival += Duration::from_millis(80);
            }
            out.push((arrival, packet));
        }
        // Stable: packets that arrive at the same time keep their order.
        out.sort_by_key(|(at, _)| *at);
        out
    }
}

/// Runs delivered packets through a [`TrackRecorder`] writing to `path`,
/// finalizing it (or not, as after a crash), and returns its events.
pub fn record(
    codec: Codec,
    delivered: Vec<(Duration, RtpPacket)>,
    path: &Path,
    finalize: bool,
) -> Vec<RecorderEvent> {
    let t0 = Instant::now();
    let sink = BufWriter::new(File::create(path).unwrap());
    let mut recorder = TrackRecorder::new(RecorderConfig::new(codec, t0), sink);
    let mut events = Vec::new();
    for (at, packet) in delivered {
        let now = t0 + at;
        if recorder.poll_timeout().is_some_and(|due| due <= now) {
            recorder.handle_timeout(now).unwrap();
        }
        recorder.push_rtp(packet, now).unwrap();
        events.extend(std::iter::from_fn(|| recorder.poll_event()));
    }
    let Finished::Written(writer) = recorder.finish().unwrap() else {
        panic!("nothing was recorded");
    };
    if finalize {
        writer.finalize().unwrap();
    } else {
        writer.into_inner().unwrap();
    }
    events
}

fn run(tool: &str, args: &[&str]) -> Output {
    match Command::new(tool).args(args).output() {
        Ok(output) => output,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            panic!(
                "`{tool}` not found: these tests need Debian's ffmpeg package (apt-get install ffmpeg)"
            )
        }
        Err(e) => panic!("cannot run {tool}: {e}"),
    }
}

/// What ffprobe says of a one-stream file.
#[derive(Debug)]
pub struct Probe {
    pub format: String,
    pub codec: String,
    pub width: Option<u64>,
    pub height: Option<u64>,
    /// The format's duration, or where the last packet ends when the file
    /// has none (not finalized).
    pub duration: f64,
    pub packets: usize,
}

/// `ffprobe -v error -show_streams -show_format -show_packets -of json`;
/// panics if ffprobe reports any error.
pub fn probe(path: &Path) -> Probe {
    let path = path.to_str().unwrap();
    let out = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_streams",
            "-show_format",
            "-show_packets",
            "-of",
            "json",
            path,
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "ffprobe {path}: {stderr}"
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let streams = json["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 1, "{json}");
    let stream = &streams[0];
    let time = |v: &serde_json::Value| v.as_str().and_then(|s| s.parse::<f64>().ok());
    let packets = json["packets"].as_array().unwrap();
    let end_of_packets = packets
        .iter()
        .filter_map(|p| Some(time(&p["pts_time"])? + time(&p["duration_time"]).unwrap_or(0.0)))
        .fold(0.0, f64::max);
    Probe {
        format: json["format"]["format_name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        codec: stream["codec_name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        width: stream["width"].as_u64(),
        height: stream["height"].as_u64(),
        duration: time(&json["format"]["duration"]).unwrap_or(end_of_packets),
        packets: packets.len(),
    }
}

/// Decodes the whole file with `ffmpeg -v error -i FILE -f null -` and
/// panics on any error it prints.
pub fn assert_decodes_cleanly(path: &Path) {
    let path = path.to_str().unwrap();
    let out = run(
        "ffmpeg",
        &["-nostdin", "-v", "error", "-i", path, "-f", "null", "-"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "ffmpeg decoding {path}: {stderr}"
    );
}

/// The DocType of the file's EBML header (`webm` or `matroska`).
pub fn doc_type(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    let head = &bytes[..bytes.len().min(64)];
    let at = head
        .windows(2)
        .position(|w| w == [0x42, 0x82])
        .expect("no DocType")
        + 2;
    let len = usize::from(head[at] & 0x7F);
    String::from_utf8_lossy(&head[at + 1..at + 1 + len]).into_owned()
}

pub fn assert_about(actual: f64, expected: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= expected * 0.1,
        "{what}: {actual} s, expected {expected} s ± 10%"
    );
}
