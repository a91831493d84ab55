//! Every route × every kind of caller → the expected status, in one table.

use crate::common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};
use vtp_store::{FinishedRecording, NewRecording, NewRoom, NewUser, RecordingState, Role};

const ACTORS: [&str; 5] = ["anonymous", "student", "instructor", "admin", "owner"];

struct Row {
    method: Method,
    /// `{room}`: a room the owner owns; `{new-room}`: a fresh room of the
    /// owner per call; `{user}`: another user; `{new-user}`: a fresh user per
    /// call; `{recording}`: a finished recording of `{room}` that nobody but
    /// the owner attended; `{new-recording}`: a fresh one per call.
    path: &'static str,
    body: Option<Value>,
    /// anonymous, student, instructor (not the owner), admin, owner.
    expect: [u16; 5],
}

fn row(method: Method, path: &'static str, body: Option<Value>, expect: [u16; 5]) -> Row {
    Row {
        method,
        path,
        body,
        expect,
    }
}

#[tokio::test]
async fn role_matrix() {
    let s = TestServer::start().await;
    let mut tokens: Vec<Option<String>> = vec![None];
    for (name, role) in [
        ("student", Role::Student),
        ("instructor", Role::Instructor),
        ("admin", Role::Admin),
        ("owner", Role::Instructor),
    ] {
        tokens.push(Some(s.user(&format!("{name}@example.org"), role).await.1));
    }
    let owner_id = s
        .store
        .credentials_by_email("owner@example.org")
        .await
        .unwrap()
        .user
        .id;
    let room = s
        .store
        .create_room(
            &NewRoom {
                id: "matrix-room".into(),
                title: "Matrix".into(),
                owner_id,
                settings: Default::default(),
            },
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let other = s.user("other@example.org", Role::Student).await.0;
    let session = s
        .store
        .start_session(&room.id, chrono::Utc::now())
        .await
        .unwrap();
    s.store
        .end_session(session.id, vtp_store::RoomStatus::Open, chrono::Utc::now())
        .await
        .unwrap();
    let recordings_dir = s.home.data_dir.path().join("recordings");
    let new_recording = async || {
        let rec = s
            .store
            .create_recording(
                &NewRecording {
                    room_id: room.id.clone(),
                    session_id: session.id,
                    started_by: Some(owner_id),
                },
                chrono::Utc::now(),
            )
            .await
            .unwrap();
        let done = FinishedRecording {
            stopped_at: chrono::Utc::now(),
            state: RecordingState::Ready,
            bytes: 2,
            duration_ms: 1,
            manifest: None,
            error: None,
        };
        assert!(s.store.finish_recording(rec.id, &done).await.unwrap());
        let dir = recordings_dir.join(rec.id.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("manifest.json"), b"{}").unwrap();
        rec.id.to_string()
    };
    let recording = new_recording().await;

    let rows = [
        row(Method::GET, "/health", None, [200; 5]),
        row(Method::GET, "/ready", None, [200; 5]),
        row(Method::GET, "/api/v1/health", None, [200; 5]),
        row(Method::GET, "/api/v1/ready", None, [200; 5]),
        row(Method::GET, "/metrics", None, [200; 5]),
        row(Method::GET, "/api/v1/openapi.json", None, [200; 5]),
        row(Method::GET, "/api/docs", None, [200; 5]),
        row(
            Method::GET,
            "/api/v1/auth/me",
            None,
            [401, 200, 200, 200, 200],
        ),
        row(
            Method::POST,
            "/api/v1/auth/logout",
            None,
            [401, 204, 204, 204, 204],
        ),
        row(
            Method::GET,
            "/api/v1/users",
            None,
            [401, 403, 403, 200, 403],
        ),
        row(
            Method::GET,
            "/api/v1/users/{user}",
            None,
            [401, 403, 403, 200, 403],
        ),
        row(
            Method::PATCH,
            "/api/v1/users/{user}",
            Some(json!({ "displayName": "Renamed" })),
            [401, 403, 403, 200, 403],
        ),
        row(
            Method::PATCH,
            "/api/v1/users/{user}",
            Some(json!({ "role": "instructor" })),
            [401, 403, 403, 200, 403],
        ),
        row(
            Method::DELETE,
            "/api/v1/users/{new-user}",
            None,
            [401, 403, 403, 204, 403],
        ),
        row(
            Method::POST,
            "/api/v1/rooms",
            Some(json!({ "title": "New room" })),
            [401, 403, 201, 201, 201],
        ),
        row(
            Method::GET,
            "/api/v1/rooms",
            None,
            [401, 200, 200, 200, 200],
        ),
        // `{room}` is members only (the default) and has no members: to
        // the student and the other instructor it does not exist
        // (membership.rs has members, co-teachers and open rooms).
        row(
            Method::GET,
            "/api/v1/rooms/{room}",
            None,
            [401, 404, 404, 200, 200],
        ),
        row(
            Method::PATCH,
            "/api/v1/rooms/{room}",
            Some(json!({ "title": "Renamed" })),
            [401, 404, 404, 200, 200],
        ),
        row(
            Method::DELETE,
            "/api/v1/rooms/{new-room}",
            None,
            [401, 404, 404, 204, 204],
        ),
        row(
            Method::GET,
            "/api/v1/recordings",
            None,
            [401, 200, 200, 200, 200],
        ),
        // Not the owner's, not attended: 404, so existence is not revealed.
        row(
            Method::GET,
            "/api/v1/recordings/{recording}",
            None,
            [401, 404, 404, 200, 200],
        ),
        row(
            Method::GET,
            "/api/v1/recordings/{recording}/files/manifest.json",
            None,
            [401, 404, 404, 200, 200],
        ),
        row(
            Method::GET,
            "/api/v1/recordings/{recording}/exports",
            None,
            [401, 404, 404, 200, 200],
        ),
        row(
            Method::DELETE,
            "/api/v1/recordings/{new-recording}",
            None,
            [401, 404, 404, 204, 204],
        ),
    ];

    let mut failures = Vec::new();
    let mut fresh = 0;
    for r in &rows {
        for (actor, token) in ACTORS.iter().zip(&tokens) {
            fresh += 1;
            let mut path = r
                .path
                .replace("{room}", &room.id)
                .replace("{user}", &other)
                .replace("{recording}", &recording);
            if path.contains("{new-recording}") {
                path = path.replace("{new-recording}", &new_recording().await);
            }
            if path.contains("{new-room}") {
                let id = format!("fresh-{fresh}");
                s.store
                    .create_room(
                        &NewRoom {
                            id: id.clone(),
                            title: "Fresh".into(),
                            owner_id,
                            settings: Default::default(),
                        },
                        chrono::Utc::now(),
                    )
                    .await
                    .unwrap();
                path = path.replace("{new-room}", &id);
            }
            if path.contains("{new-user}") {
                let user = s
                    .store
                    .create_user(
                        NewUser {
                            email: format!("fresh{fresh}@example.org"),
                            display_name: "Fresh".into(),
                            password_hash: "x".into(),
                            role: Role::Student,
                        },
                        chrono::Utc::now(),
                    )
                    .await
                    .unwrap();
                path = path.replace("{new-user}", &user.id.to_string());
            }
            let (status, body) = s
                .call(r.method.clone(), &path, token.as_deref(), r.body.clone())
                .await;
            let expected = r.expect[ACTORS.iter().position(|a| a == actor).unwrap()];
            if status.as_u16() != expected {
                failures.push(format!(
                    "{} {} as {actor}: expected {expected}, got {status} {body}",
                    r.method, r.path
                ));
            }
            if status.is_client_error() {
                assert!(
                    body["error"]["code"].is_string(),
                    "error body for {} {path}: {body}",
                    r.method
                );
            }
        }
        // Logout without a body leaves tokens valid, so the next rows still see every actor signed in.
    }
    assert!(
        failures.is_empty(),
        "role matrix mismatches:\n{}",
        failures.join("\n")
    );
}
