//! Starting a Janus for a benchmark run: a configuration written to a fresh
//! temporary folder (HTTP transport only, on 127.0.0.1; the VideoRoom
//! plugin only; ICE on one local address only, no STUN/TURN; an RTP port
//! range; warnings only in the log), optionally pinned to one core.
//!
//! Why not ICE on 127.0.0.1: Janus gathers through libnice, which leaves
//! loopback interfaces out (an `ice_enforce_list` of `lo` or `127.0.0.1`
//! still gathers the other interfaces). So Janus's ICE is enforced to a
//! documentation address on a veth link inside the load generator's own
//! network namespace (`netns`), never to one of the machine's addresses.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::spawn::{Spawned, pinned_command};

/// Where Debian's `janus` package puts its modules.
pub const DEBIAN_MODULES: &str = "/usr/lib/x86_64-linux-gnu/janus";

/// A running Janus; stopped (and its folder removed) on drop.
pub struct JanusServer {
    pub process: Spawned,
    /// The API root, e.g. `http://127.0.0.1:PORT/janus`.
    pub url: String,
    dir: PathBuf,
}

/// The modules of one kind in `modules/<kind>` except `keep`, as Janus's
/// `disable` list (Janus loads every module it finds unless disabled).
fn disable_list(modules: &Path, kind: &str, keep: &str) -> String {
    let Ok(entries) = std::fs::read_dir(modules.join(kind)) else {
        return String::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".so") && n != keep)
        .collect();
    names.sort();
    names.join(",")
}

/// The three configuration files (name, text).
pub fn config_files(
    dir: &Path,
    modules: &Path,
    http_port: u16,
    rtp_ports: (u16, u16),
    ice_ip: IpAddr,
) -> Vec<(&'static str, String)> {
    let m = modules.display();
    let core = format!(
        r#"general: {{
	configs_folder = "{dir}"
	interface = "{ice_ip}"
	plugins_folder = "{m}/plugins"
	transports_folder = "{m}/transports"
	events_folder = "{m}/events"
	loggers_folder = "{m}/loggers"
	debug_level = 3
	session_timeout = 120
}}
certificates: {{
}}
media: {{
	rtp_port_range = "{lo}-{hi}"
}}
nat: {{
	nice_debug = false
	ice_enforce_list = "{ice_ip}"
	ignore_mdns = true
	full_trickle = false
}}
plugins: {{
	disable = "{plugins}"
}}
transports: {{
	disable = "{transports}"
}}
events: {{
	broadcast = false
	disable = "{events}"
}}
loggers: {{
	disable = "{loggers}"
}}
"#,
        dir = dir.display(),
        lo = rtp_ports.0,
        hi = rtp_ports.1,
        plugins = disable_list(modules, "plugins", "libjanus_videoroom.so"),
        transports = disable_list(modules, "transports", "libjanus_http.so"),
        events = disable_list(modules, "events", ""),
        loggers = disable_list(modules, "loggers", ""),
    );
    let http = format!(
        r#"general: {{
	json = "plain"
	base_path = "/janus"
	http = true
	port = {http_port}
	ip = "127.0.0.1"
	https = false
}}
admin: {{
	admin_http = false
	admin_https = false
}}
"#
    );
    vec![
        ("janus.jcfg", core),
        ("janus.transport.http.jcfg", http),
        ("janus.plugin.videoroom.jcfg", "general: {\n}\n".to_string()),
    ]
}

/// Starts `janus` (the binary at `bin`) with a fresh configuration, ICE on
/// `ice_ip`, pinned to `cpu` with `taskset` if given (all its threads
/// inherit the mask), and waits until its HTTP API answers.
pub async fn start(bin: &Path, cpu: Option<usize>, ice_ip: IpAddr) -> anyhow::Result<JanusServer> {
    let dir = std::env::temp_dir().join(format!(
        "vtp-load-janus-{}-{}",
        std::process::id(),
        crate::spawn::rand_suffix()
    ));
    std::fs::create_dir_all(&dir)?;
    let http_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let modules = Path::new(DEBIAN_MODULES);
    for (name, text) in config_files(&dir, modules, http_port, (40000, 49999), ice_ip) {
        std::fs::write(dir.join(name), text)?;
    }
    let log = std::fs::File::create(dir.join("janus.log"))?;
    let child = pinned_command(bin, cpu)
        .arg("-C")
        .arg(dir.join("janus.jcfg"))
        .arg("-F")
        .arg(&dir)
        .stdout(log.try_clone()?)
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let server = JanusServer {
        process: Spawned::new(child, dir.clone()),
        url: format!("http://127.0.0.1:{http_port}/janus"),
        dir,
    };
    let http = reqwest::Client::new();
    for _ in 0..100 {
        let info = http.get(format!("{}/info", server.url)).send().await;
        if info.is_ok_and(|r| r.status().is_success()) {
            return Ok(server);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = std::fs::read_to_string(server.dir.join("janus.log")).unwrap_or_default();
    let tail: String = log.lines().rev().take(20).collect::<Vec<_>>().join("\n");
    bail!(
        "janus did not answer on {} within 10 s; its log ends:\n{tail}",
        server.url
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn config_keeps_only_videoroom_and_http_and_one_ice_address() {
        let modules = std::env::temp_dir().join(format!("janus-mods-{}", std::process::id()));
        for (kind, files) in [
            (
                "plugins",
                &[
                    "libjanus_videoroom.so",
                    "libjanus_echotest.so",
                    "libjanus_sip.so.1",
                ][..],
            ),
            (
                "transports",
                &["libjanus_http.so", "libjanus_websockets.so"][..],
            ),
            ("events", &["libjanus_sampleevh.so"][..]),
        ] {
            std::fs::create_dir_all(modules.join(kind)).unwrap();
            for f in files {
                std::fs::write(modules.join(kind).join(f), b"").unwrap();
            }
        }
        let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));
        let files = config_files(Path::new("/tmp/x"), &modules, 18188, (40000, 40100), ip);
        std::fs::remove_dir_all(&modules).unwrap();
        let core = &files[0].1;
        assert!(
            core.contains(r#"disable = "libjanus_echotest.so""#),
            "{core}"
        );
        assert!(core.contains(r#"disable = "libjanus_websockets.so""#));
        assert!(core.contains(r#"disable = "libjanus_sampleevh.so""#));
        assert!(core.contains(r#"rtp_port_range = "40000-40100""#));
        assert!(core.contains(r#"ice_enforce_list = "192.0.2.7""#));
        // Without a default route (the namespace has none) Janus cannot
        // guess its address for the SDP: it is told.
        assert!(core.contains(r#"interface = "192.0.2.7""#));
        assert!(!core.contains("stun_server"));
        let http = &files[1].1;
        assert!(http.contains("port = 18188") && http.contains(r#"ip = "127.0.0.1""#));
    }
}
