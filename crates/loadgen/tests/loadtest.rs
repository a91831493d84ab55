//! `vtp-load loadtest` end to end against a spawned `vtp` (the workspace's
//! debug build, made by `cargo test --workspace` or `cargo build -p
//! vtp-server`): one room, one publisher, two subscribers, a few seconds;
//! and `vtp-load media --count-only`.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn vtp_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("VTP_BIN") {
        return bin.into();
    }
    // target/debug/deps/loadtest-… → target/debug/vtp
    let exe = std::env::current_exe().expect("test binary path");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join("vtp"))
        .expect("target directory");
    assert!(
        bin.is_file(),
        "{} is missing: build it with `cargo build -p vtp-server` (or set VTP_BIN)",
        bin.display()
    );
    bin
}

#[test]
fn a_room_with_one_publisher_and_two_subscribers_receives_frames() {
    let out = Command::new(env!("CARGO_BIN_EXE_vtp-load"))
        .arg("loadtest")
        .arg("--spawn")
        .arg(vtp_binary())
        .args(["--rooms", "1", "--publishers", "1", "--subscribers", "2"])
        .args(["--duration", "3", "--record", "--json"])
        .output()
        .expect("running vtp-load");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "vtp-load failed: {stderr}");
    // A progress line each second.
    assert!(stderr.matches("t=").count() >= 2, "{stderr}");
    let r: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(r["publishers"], 1, "{r}");
    assert_eq!(r["subscribers"], 2, "{r}");
    assert_eq!(r["errors"], 0, "{r}");
    assert_eq!(r["record"], true, "{r}");
    // 30 video frames and 50 audio frames a second, for 3 s, to each of two.
    let frames = r["frames_received"].as_u64().unwrap();
    assert!(frames > 2 * 80, "{r}");
    assert!(
        r["received_kbps_per_subscriber"].as_f64().unwrap() > 300.0,
        "{r}"
    );
    assert_eq!(r["video_consumers_without_keyframe"], 0, "{r}");
    for field in ["join_ms", "ttff_ms"] {
        for p in ["p50", "p99"] {
            let v = r[field][p].as_f64();
            assert!(v.is_some_and(|v| v > 0.0), "{field}.{p}: {r}");
        }
    }
    for field in [
        "packet_loss_percent",
        "jitter_ms_mean",
        "nacks_sent",
        "received_mbps_total",
    ] {
        assert!(r[field].is_number(), "{field}: {r}");
    }
    assert!(r["server"]["cpu_percent"].as_f64().is_some(), "{r}");
    assert!(r["server"]["rss_mib"].as_f64().unwrap() > 1.0, "{r}");
}

/// `vtp-load media --count-only`: the subscribers complete ICE and DTLS but
/// count RTP from its clear-text header. What they count must be the
/// stream: nearly every packet sent, in a run of a few seconds.
#[test]
fn count_only_subscribers_count_what_was_sent_without_decrypting() {
    let out = Command::new(env!("CARGO_BIN_EXE_vtp-load"))
        .arg("media")
        .arg("--spawn")
        .arg(vtp_binary())
        .args([
            "--subscribers",
            "3",
            "--duration",
            "3",
            "--count-only",
            "--json",
        ])
        .output()
        .expect("running vtp-load");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "vtp-load failed: {stderr}");
    let rows: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let row = &rows[0];
    assert_eq!(row["subscribers"], 3, "{rows}");
    let sent = row["sent_packets"].as_u64().unwrap();
    let received = row["min_received_packets"].as_u64().unwrap();
    // About 200 packets/s (video and audio) for 3 s.
    assert!(sent > 300, "{rows}");
    assert!(received * 10 > sent * 9, "{received} of {sent}: {rows}");
    // Not much more than was sent (packets in flight when the window
    // opens are counted in it): duplicates, RTX and padding are not media.
    assert!(received * 20 <= sent * 21, "{received} of {sent}: {rows}");
}
