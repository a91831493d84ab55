//! The Janus adapter end to end: `vtp-load compare --systems janus` starts a
//! real Janus (Debian's package; `scripts/test` installs it), publishes
//! synthetic VP8 and Opus through the VideoRoom plugin to one subscriber
//! for a few seconds, and reports what arrived. Janus needs a non-loopback
//! address, so the run happens inside a network namespace that `vtp-load`
//! creates (documentation addresses on a veth pair) — never on one of the
//! machine's own addresses.

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
    let setup = report["setup"].as_str().unwrap();
    assert!(setup.contains("CPU 0"), "{setup}");
    assert!(
        setup.contains("private network namespace (Janus's ICE and its peers on 192.0.2.1"),
        "{setup}"
    );
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| std::path::Path::new(d).join(name))
        .find(|p| p.is_file())
}
