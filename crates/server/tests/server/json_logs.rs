//! The `vtp` binary with `--log-format json`: every line of its output is
//! one JSON object; request lines carry the request id (the caller's
//! `X-Request-Id`) and the signed-in user's id in their span; room lines
//! carry the room, peer and user ids as fields; security events carry their
//! stable name (`auth.sign_in_failed`, `user.role_changed`, …) in `event`.

use crate::common;

use std::fs::File;
use std::process::{Child, Stdio};
use std::time::Duration;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use vtp_store::{Role, Store, StoreOptions};

/// A `vtp serve` that is killed when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The span field `name` of a JSON log line (the innermost span that has it).
fn span_field<'a>(line: &'a Value, name: &str) -> Option<&'a str> {
    line["spans"]
        .as_array()?
        .iter()
        .rev()
        .find_map(|s| s[name].as_str())
}

#[tokio::test]
async fn json_logs_carry_request_user_room_and_peer_ids_and_security_event_names() {
    let home = Home::new().await;
    let store = Store::open(StoreOptions::new(home.db.url())).await.unwrap();
    let admin_id = create_user(&store, "root@example.org", Role::Admin)
        .await
        .id
        .to_string();
    let ann_id = create_user(&store, "ann@example.org", Role::Student)
        .await
        .id
        .to_string();
    let log_path = home.data_dir.path().join("vtp.log");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bind = format!("127.0.0.1:{port}");
    let mut command = vtp_command(
        &home,
        &[
            "serve",
            "--bind",
            &bind,
            "--rtc-bind",
            "127.0.0.1:0",
            "--sfu-workers",
            "1",
            "--log-format",
            "json",
            "--log-level",
            "info",
        ],
    );
    command.stdout(File::create(&log_path).unwrap());
    command.stderr(Stdio::inherit());
    let _vtp = Running(command.spawn().expect("vtp starts"));
    let base = format!("http://{bind}");
    let http = reqwest::Client::new();
    wait_until(
        Duration::from_secs(20),
        "vtp to answer /health",
        async || {
            http.get(format!("{base}/health"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        },
    )
    .await;

    let login = |email: &'static str, password: &'static str, request_id: &'static str| {
        http.post(format!("{base}/api/v1/auth/login"))
            .header("x-request-id", request_id)
            .json(&json!({ "email": email, "password": password }))
            .send()
    };
    let failed = login("ann@example.org", "not her password", "json-log-failed-1")
        .await
        .unwrap();
    assert_eq!(failed.status(), StatusCode::UNAUTHORIZED);
    let admin: Value = login("root@example.org", PASSWORD, "json-log-admin-1")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let admin = admin["accessToken"].as_str().unwrap().to_string();
    let changed = http
        .patch(format!("{base}/api/v1/users/{ann_id}"))
        .bearer_auth(&admin)
        .header("x-request-id", "json-log-role-1")
        .json(&json!({ "role": "instructor" }))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    let room: Value = http
        .post(format!("{base}/api/v1/rooms"))
        .bearer_auth(&admin)
        .json(&json!({ "title": "Logged" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let room = room["id"].as_str().unwrap().to_string();
    let socket = vtp_client::SocketIoClient::connect(&base, Some(&admin))
        .await
        .unwrap();
    let joined = join(&socket, &room).await;
    let peer = joined["peerId"].as_str().unwrap().to_string();

    let lines = || -> Vec<Value> {
        std::fs::read_to_string(&log_path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    };
    let find =
        |lines: &[Value], pick: &dyn Fn(&Value) -> bool| lines.iter().find(|l| pick(l)).cloned();
    let lines = wait_for(
        Duration::from_secs(10),
        "the peer's line in the log",
        async || {
            let all = lines();
            let seen = all.iter().any(|l| l["fields"]["message"] == "peer joined");
            if seen { Ok(all) } else { Err(all.len()) }
        },
    )
    .await;

    // A failed sign-in: its stable name, under the caller's request id.
    let failed = find(&lines, &|l| l["fields"]["event"] == "auth.sign_in_failed")
        .expect("a line for the failed sign-in");
    assert_eq!(
        span_field(&failed, "request_id"),
        Some("json-log-failed-1"),
        "{failed}"
    );
    assert!(
        failed["level"] == "INFO" && failed["timestamp"].is_string(),
        "{failed}"
    );
    // A role change: its name, the request id and who did it.
    let role = find(&lines, &|l| l["fields"]["event"] == "user.role_changed")
        .expect("a line for the role change");
    assert_eq!(
        span_field(&role, "request_id"),
        Some("json-log-role-1"),
        "{role}"
    );
    assert_eq!(
        span_field(&role, "user_id"),
        Some(admin_id.as_str()),
        "{role}"
    );
    assert!(
        role["fields"]["on"].as_str().unwrap().contains(&ann_id),
        "{role}"
    );
    // A join: room, peer and user as fields.
    let joined = find(&lines, &|l| l["fields"]["message"] == "peer joined").unwrap();
    assert_eq!(joined["fields"]["room_id"], room.as_str(), "{joined}");
    assert_eq!(joined["fields"]["peer_id"], peer.as_str(), "{joined}");
    assert_eq!(joined["fields"]["user_id"], admin_id.as_str(), "{joined}");
    // Secrets stay out: no token, no password.
    let text = std::fs::read_to_string(&log_path).unwrap();
    assert!(!text.contains(&admin), "the access token is not logged");
    assert!(!text.contains(PASSWORD) && !text.contains("not her password"));
}
