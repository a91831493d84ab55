//! Data and sign-ins survive a restart on the same data directory.

use crate::common;

use common::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn data_survives_restart() {
    let s = TestServer::start().await;
    let (status, reg) = s
        .post(
            "/api/v1/auth/register",
            None,
            json!({ "email": "kim@example.org", "password": "plum tiger orbit 41", "displayName": "Kim" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let home = s.stop().await;

    let s = TestServer::start_in(home, |_| {}).await;
    // The generated signing key was kept: the old access token is still good.
    let (status, me) = s.get("/api/v1/auth/me", reg["accessToken"].as_str()).await;
    assert_eq!(
        (status, me["email"].as_str()),
        (StatusCode::OK, Some("kim@example.org"))
    );
    s.login("kim@example.org", "plum tiger orbit 41").await;
    let (status, _) = s
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refreshToken": reg["refreshToken"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn shutdown_waits_for_in_flight_requests() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = TestServer::start().await;
    // A request whose body is still arriving when shutdown begins must be answered.
    let body = json!({ "email": "lee@example.org", "password": "plum tiger orbit 41", "displayName": "Lee" })
        .to_string();
    let (head, tail) = body.split_at(body.len() / 2);
    let mut conn = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let request = format!(
        "POST /api/v1/auth/register HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{head}",
        body.len()
    );
    conn.write_all(request.as_bytes()).await.unwrap();
    wait_until(WAIT, "the server to accept the connection", async || {
        s.open_connections() == 1
    })
    .await;
    let addr = s.addr;
    let stopping = tokio::spawn(s.stop());
    // Once the listener is closed the server is stopping, and it still
    // waits for the request in flight.
    wait_until(WAIT, "the listener to close", async || {
        tokio::net::TcpStream::connect(addr).await.is_err()
    })
    .await;
    assert!(
        !stopping.is_finished(),
        "the server waits for the request in flight"
    );
    conn.write_all(tail.as_bytes()).await.unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    let home = stopping.await.unwrap();

    // And it is stored.
    let s = TestServer::start_in(home, |_| {}).await;
    s.login("lee@example.org", "plum tiger orbit 41").await;
}
