//! `vtp doctor` against real services: Debian's coturn (allocations with
//! VTP's credential over UDP and TCP, and the refusal of a wrong secret),
//! the store, the certificate and the ports.

use crate::common::wait;

use std::net::{TcpListener, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use wait::wait_until_blocking;

const SECRET: &str = "doctor-shares-this";

struct Coturn {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    // A port free for both TCP and UDP.
    loop {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn coturn() -> Coturn {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = Command::new("turnserver")
        .args(["-n", "--no-cli", "--no-tls", "--no-dtls", "--fingerprint"])
        .args(["--listening-ip", "127.0.0.1", "--relay-ip", "127.0.0.1"])
        .args(["--listening-port", &port.to_string()])
        .args([
            "--use-auth-secret",
            "--static-auth-secret",
            SECRET,
            "--realm",
            "doctor.test",
        ])
        .args(["--min-port", "61000", "--max-port", "61999"])
        .arg("--pidfile")
        .arg(dir.path().join("pid"))
        .args(["--log-file", "stdout", "--no-stdout-log"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("turnserver (Debian package coturn; scripts/test installs it)");
    wait_until_blocking(Duration::from_secs(10), "turnserver to listen", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    Coturn {
        child,
        port,
        _dir: dir,
    }
}

fn doctor(data: &std::path::Path, extra: &[&str]) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vtp"));
    cmd.arg("doctor").arg("--data-dir").arg(data);
    if !extra.contains(&"--bind") {
        cmd.args(["--bind", &format!("127.0.0.1:{}", free_port())]);
    }
    if !extra.contains(&"--rtc-bind") {
        cmd.args(["--rtc-bind", &format!("127.0.0.1:{}", free_port())]);
    }
    let out = cmd
        .args(extra)
        .env_remove("VTP_TURN_URLS")
        .env_remove("VTP_TURN_SECRET")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn turn_servers_are_asked_for_an_allocation_with_vtps_credential() {
    let turn = coturn();
    let data = tempfile::tempdir().unwrap();
    let urls = format!(
        "turn:127.0.0.1:{p}?transport=udp,turn:127.0.0.1:{p}?transport=tcp",
        p = turn.port
    );
    let (ok, text) = doctor(data.path(), &["--turn-url", &urls, "--turn-secret", SECRET]);
    assert!(ok, "{text}");
    for transport in ["udp", "tcp"] {
        let line = text
            .lines()
            .find(|l| l.contains(&format!("transport={transport}")))
            .unwrap_or_else(|| panic!("no {transport} line: {text}"));
        assert!(
            line.starts_with("ok") && line.contains("allocated a relay at 127.0.0.1:"),
            "{line}"
        );
    }
    assert!(text.lines().any(|l| l.starts_with("ok   store:")), "{text}");

    // The wrong secret: coturn refuses, the doctor says so and fails.
    let (ok, text) = doctor(
        data.path(),
        &["--turn-url", &urls, "--turn-secret", "not-the-secret"],
    );
    assert!(!ok, "{text}");
    assert!(text.contains("refused the credential"), "{text}");
    assert!(
        !text.contains("not-the-secret"),
        "the secret is never printed: {text}"
    );

    // Nothing listening: unreachable over TCP, no answer over UDP.
    drop(turn);
    let (ok, text) = doctor(data.path(), &["--turn-url", &urls, "--turn-secret", SECRET]);
    assert!(!ok, "{text}");
}

#[test]
fn a_bad_certificate_and_a_taken_port_fail_and_say_why() {
    let data = tempfile::tempdir().unwrap();
    let cert = data.path().join("cert.pem");
    std::fs::write(
        &cert,
        "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let (ok, text) = doctor(
        data.path(),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            cert.to_str().unwrap(),
        ],
    );
    assert!(!ok, "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("FAIL certificate")),
        "{text}"
    );
    // Plain HTTP off loopback is a warning, not a failure.
    let (_, text) = doctor(data.path(), &["--bind", "0.0.0.0:0"]);
    assert!(text.contains("warn https"), "{text}");
    // An address that is not this host's cannot be bound: a failure.
    let (ok, text) = doctor(data.path(), &["--rtc-bind", "192.0.2.1:40000"]);
    assert!(!ok, "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("FAIL rtc port (udp)")),
        "{text}"
    );
}

/// A certificate for `names` (self-signed) valid from a day ago for
/// `days` more days, written to `dir`: (cert, key) paths.
fn certificate(dir: &std::path::Path, names: &[&str], days: i64) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(days);
    let cert = params.self_signed(&key).unwrap();
    let stem = format!("{}-{days}", names[0]);
    let (c, k) = (
        dir.join(format!("{stem}.crt")),
        dir.join(format!("{stem}.key")),
    );
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c.display().to_string(), k.display().to_string())
}

#[test]
fn certificates_are_checked_for_their_names_and_lifetime() {
    let data = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(data.path(), &["class.example.org"], 200);
    let (ok, text) = doctor(data.path(), &["--tls-cert", &cert, "--tls-key", &key]);
    assert!(ok, "{text}");
    let line = text.lines().find(|l| l.contains("certificate")).unwrap();
    assert!(
        line.starts_with("ok")
            && line.contains("names class.example.org")
            && line.contains("(199 days)"),
        "{line}"
    );

    let (cert, key) = certificate(data.path(), &["class.example.org"], 3);
    let (ok, text) = doctor(data.path(), &["--tls-cert", &cert, "--tls-key", &key]);
    assert!(ok, "a warning is not a failure: {text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("warn certificate") && l.contains("renew it soon")),
        "{text}"
    );

    let (cert, key) = certificate(data.path(), &["class.example.org"], -1);
    let (ok, text) = doctor(data.path(), &["--tls-cert", &cert, "--tls-key", &key]);
    assert!(!ok, "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("FAIL certificate") && l.contains("not valid now")),
        "{text}"
    );
}

#[test]
fn acme_settings_are_checked_and_a_missing_certificate_is_said() {
    let data = tempfile::tempdir().unwrap();
    let (ok, text) = doctor(data.path(), &["--acme-domain", "class.example.org"]);
    assert!(ok, "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("warn certificate")
                && l.contains("none yet for class.example.org")),
        "{text}"
    );
    let (ok, text) = doctor(data.path(), &["--acme-domain", "192.0.2.7"]);
    assert!(!ok, "an address cannot get an ACME certificate: {text}");
}

#[test]
fn announced_addresses_say_what_students_will_get() {
    let data = tempfile::tempdir().unwrap();
    // Loopback media behind a public HTTP bind: nobody elsewhere gets media.
    let (ok, text) = doctor(
        data.path(),
        &["--bind", "0.0.0.0:0", "--rtc-bind", "127.0.0.1:0"],
    );
    assert!(!ok, "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("FAIL announced addresses") && l.contains("only 127.0.0.1")),
        "{text}"
    );
    // An address that is not this host's (a NAT's): said, not fatal.
    let (ok, text) = doctor(data.path(), &["--announced-ip", "203.0.113.9"]);
    assert!(ok, "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("warn announced addresses") && l.contains("must be forwarded")),
        "{text}"
    );
    // ICE-TCP off is a warning.
    let (_, text) = doctor(data.path(), &["--rtc-tcp-bind", "off"]);
    assert!(
        text.lines().any(|l| l.starts_with("warn rtc port (tcp)")),
        "{text}"
    );
}
