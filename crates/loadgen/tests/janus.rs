//! The Janus adapter end to end: `vtp-load compare --systems janus` starts a
//! real Janus (Debian's package; `scripts/test` installs it), publishes
//! synthetic VP8 and Opus through the VideoRoom plugin to one subscriber
//! for a few seconds, and reports what arrived.

use std::process::Command;

use serde_json::Value;

#[test]
fn media_flows_through_janus_to_one_subscriber() {
    let janus = which("janus").expect("janus is not installed (apt-get install janus)");
    let out = Command::new(env!("CARGO_BIN_EXE_vtp-load"))
        .args([
            "compare",
            "--systems",
            "janus",
            "--subscribers",
            "1",
            "--duration",
            "3",
        ])
        .args([
            "--server-cpu",
            "0",
            "--loadgen-cpus",
            "",
            "--json",
            "--janus",
        ])
        .arg(&janus)
        .output()
        .expect("running vtp-load");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "vtp-load failed: {stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let row = &report["janus"]["rows"][0];
    assert_eq!(row["subscribers"], 1, "{report}");
    let sent = row["sent_packets"].as_u64().unwrap();
    let received = row["min_received_packets"].as_u64().unwrap();
    // About 200 packets/s for 3 s; most of them must have arrived (the
    // first keyframe's packets may be lost while Janus sets up).
    assert!(sent > 300, "{report}");
    assert!(
        received * 10 > sent * 8,
        "{received} of {sent} arrived: {report}"
    );
    assert!(report["vtp"].is_null());
    assert!(report["setup"].as_str().unwrap().contains("CPU 0"));
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| std::path::Path::new(d).join(name))
        .find(|p| p.is_file())
}
