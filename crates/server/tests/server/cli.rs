//! The `vtp` binary's own commands: `user create`, `user set-role`, `migrate`, `--help`.

use crate::common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::*;
use vtp_store::Role;

#[tokio::test]
async fn first_admin_is_made_on_the_command_line() {
    let home = Home::new().await;
    let out = vtp_command(&home, &["migrate"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("schema at version"));

    let mut child = vtp_command(
        &home,
        &[
            "user",
            "create",
            "--email",
            "Boss@Example.org",
            "--role",
            "admin",
            "--password-stdin",
        ],
    )
    .stdin(Stdio::piped())
    .spawn()
    .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"very secret violet pass\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("created admin boss@example.org"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("very secret"),
        "the password is never echoed"
    );

    let dup = vtp_command(
        &home,
        &[
            "user",
            "create",
            "--email",
            "boss@example.org",
            "--password",
            "another pass phrase 9",
        ],
    )
    .output()
    .unwrap();
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));
    let weak = vtp_command(
        &home,
        &[
            "user",
            "create",
            "--email",
            "w@example.org",
            "--password",
            "short",
        ],
    )
    .output()
    .unwrap();
    assert!(!weak.status.success());

    let out = vtp_command(
        &home,
        &[
            "user",
            "create",
            "--email",
            "t@example.org",
            "--password",
            "teacher violet canoe",
        ],
    )
    .output()
    .unwrap();
    assert!(out.status.success());
    let out = vtp_command(
        &home,
        &[
            "user",
            "set-role",
            "--email",
            "t@example.org",
            "--role",
            "instructor",
        ],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let s = TestServer::start_in(home, |_| {}).await;
    let admin = s.login("boss@example.org", "very secret violet pass").await;
    assert_eq!(admin["user"]["role"], "admin");
    let teacher = s.login("t@example.org", "teacher violet canoe").await;
    assert_eq!(teacher["user"]["role"], "instructor");
    assert_eq!(
        s.store
            .credentials_by_email("t@example.org")
            .await
            .unwrap()
            .user
            .role,
        Role::Instructor
    );
}

#[test]
fn help_lists_every_setting_with_its_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_vtp"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for var in [
        "VTP_BIND",
        "VTP_DATA_DIR",
        "VTP_DATABASE_URL",
        "VTP_JWT_SECRET",
        "VTP_ACCESS_TOKEN_TTL",
        "VTP_REFRESH_TOKEN_TTL",
        "VTP_CORS_ORIGINS",
        "VTP_LOG",
        "VTP_LOG_FORMAT",
        "VTP_MAX_BODY_BYTES",
    ] {
        assert!(help.contains(var), "{var} missing from --help");
    }
}

#[test]
fn version_names_the_release_and_the_git_revision() {
    let out = Command::new(env!("CARGO_BIN_EXE_vtp"))
        .arg("--version")
        .output()
        .unwrap();
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let revision = version
        .strip_prefix(&format!("vtp {} (", env!("CARGO_PKG_VERSION")))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("`vtp <release> (<revision>)`: {version}"));
    let in_git = Command::new("git")
        .args(["rev-parse", "--git-dir"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .is_ok_and(|o| o.status.success());
    if !in_git {
        assert_eq!(revision, "unknown", "built outside a git checkout");
        return;
    }
    // A commit of this repository (HEAD when built; HEAD may have moved since).
    assert_eq!(revision.len(), 12, "{version}");
    let known = Command::new("git")
        .args(["cat-file", "-e", &format!("{revision}^{{commit}}")])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .is_ok_and(|s| s.success());
    assert!(known, "{revision} is a commit of this repository");
}
