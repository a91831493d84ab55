//! `vtp backup` while the server writes, and `vtp restore` into the stopped
//! server: real `vtp` processes on one data directory.

use crate::common;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Home, vtp_command, wait_until};
use reqwest::StatusCode;
use serde_json::json;

const PASSWORD: &str = "backup test password";

fn run(home: &Home, args: &[&str]) -> Output {
    vtp_command(home, args).output().expect("vtp runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

struct Served {
    child: Child,
    base: String,
}

impl Served {
    async fn start(home: &Home) -> Served {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = vtp_command(home, &["serve", "--bind", &format!("127.0.0.1:{port}")])
            .args(["--rtc-bind", "127.0.0.1:0", "--sfu-workers", "1"])
            .args(["--log-level", "warn"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("vtp starts");
        let served = Served {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::new();
        let health = format!("{}/health", served.base);
        wait_until(
            Duration::from_secs(20),
            "vtp answering /health",
            async || {
                http.get(&health)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            },
        )
        .await;
        served
    }

    fn stop(mut self) {
        // SIGTERM: a graceful stop, as systemd does.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

async fn register(base: &str, email: &str) -> StatusCode {
    reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/register"))
        .json(&json!({ "email": email, "password": PASSWORD, "displayName": "Student" }))
        .send()
        .await
        .map(|r| r.status())
        .unwrap_or(StatusCode::BAD_GATEWAY)
}

async fn login(base: &str, email: &str) -> StatusCode {
    reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .unwrap()
        .status()
}

/// The number after `label` in `vtp backup`'s summary line ("…, 12 users, …").
fn count(summary: &str, label: &str) -> usize {
    summary
        .split(", ")
        .find_map(|part| {
            part.strip_suffix(label)?
                .trim()
                .rsplit(' ')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no {label} in {summary}"))
}

fn file_bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}

#[tokio::test]
async fn a_backup_taken_while_vtp_writes_restores_into_the_stopped_server() {
    let home = Home::new().await;
    let file = home.data_dir.path().join("..").join(format!(
        "{}-backup.db",
        home.data_dir.path().file_name().unwrap().to_string_lossy()
    ));
    if !home.db.url().starts_with("sqlite:") {
        // PostgreSQL has its own tools; the command says which.
        let out = run(&home, &["backup", file.to_str().unwrap()]);
        assert!(!out.status.success());
        assert!(text(&out).contains("pg_dump"), "{}", text(&out));
        return;
    }
    let server = Served::start(&home).await;
    assert_eq!(
        register(&server.base, "before@example.org").await,
        StatusCode::CREATED
    );

    // Students keep signing up while the backup is taken.
    let written = Arc::new(AtomicUsize::new(1));
    let stop = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (base, written, stop) = (server.base.clone(), written.clone(), stop.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while stop.load(Ordering::SeqCst) == 0 {
                i += 1;
                if register(&base, &format!("during-{i}@example.org")).await == StatusCode::CREATED
                {
                    written.fetch_add(1, Ordering::SeqCst);
                }
            }
        })
    };
    // Some writes before, some during.
    wait_until(
        Duration::from_secs(20),
        "registrations going through",
        async || written.load(Ordering::SeqCst) >= 5,
    )
    .await;
    let at_start = written.load(Ordering::SeqCst);
    let out = {
        let cmd = vtp_command(&home, &["backup", file.to_str().unwrap()]);
        tokio::task::spawn_blocking(move || {
            let mut cmd = cmd;
            cmd.output().expect("vtp backup runs")
        })
        .await
        .unwrap()
    };
    let at_end = written.load(Ordering::SeqCst);
    stop.store(1, Ordering::SeqCst);
    writer.await.unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let summary = text(&out);
    let users = count(&summary, "users");
    assert!(
        (at_start..=at_end).contains(&users),
        "the backup holds a moment of the writes: {users} users, {at_start}..={at_end} written ({summary})"
    );
    assert!(
        summary.contains("jwt-secret"),
        "it says what else to keep: {summary}"
    );
    // A second backup to the same file is refused; the first stays whole.
    let again = run(&home, &["backup", file.to_str().unwrap()]);
    assert!(!again.status.success() && text(&again).contains("exists already"));

    // Written after the backup: gone after the restore.
    assert_eq!(
        register(&server.base, "after@example.org").await,
        StatusCode::CREATED
    );
    // No restore under a running server.
    let refused = run(&home, &["restore", file.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("another vtp is running"),
        "{}",
        text(&refused)
    );
    server.stop();

    // A file that is not a VTP backup is refused, and nothing changes.
    let database = vtp_store::sqlite_file(home.db.url()).expect("a SQLite file");
    let junk = home.data_dir.path().join("junk.db");
    std::fs::write(&junk, b"not a database at all").unwrap();
    let before = file_bytes(&database);
    let out = run(&home, &["restore", junk.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(text(&out).contains("cannot be restored"), "{}", text(&out));
    assert_eq!(file_bytes(&database), before, "the database is untouched");

    let out = run(&home, &["restore", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("restored into"), "{}", text(&out));
    let kept = std::fs::read_dir(database.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.contains(".before-restore-") && !name.ends_with("-wal") && !name.ends_with("-shm")
        });
    assert!(kept, "the replaced database is kept beside it");

    let server = Served::start(&home).await;
    assert_eq!(
        login(&server.base, "before@example.org").await,
        StatusCode::OK
    );
    assert_eq!(
        login(&server.base, "after@example.org").await,
        StatusCode::UNAUTHORIZED,
        "what came after the backup is not in it"
    );
    server.stop();

    // A new machine: the backup restored into a fresh, empty data
    // directory serves the same accounts.
    let fresh = Home::new().await;
    let out = run(&fresh, &["restore", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let server = Served::start(&fresh).await;
    assert_eq!(
        login(&server.base, "before@example.org").await,
        StatusCode::OK,
        "restored on a fresh data directory"
    );
    assert_eq!(
        login(&server.base, "after@example.org").await,
        StatusCode::UNAUTHORIZED
    );
    server.stop();
    let _ = std::fs::remove_file(&file);
}
