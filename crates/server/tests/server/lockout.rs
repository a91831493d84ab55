//! Clients that never sign in cannot lock signed-in users out (issue 16,
//! finding 2): with the connection cap at 40, one address opening bare
//! Engine.IO polling sessions, idle websockets, half-sent request heads and
//! trickled bodies gets its own small allowances, each ended at its
//! deadline, while a signed-in user on another address connects and
//! `/health` answers. Real sockets; the attacker is 127.0.0.2 (a TCP peer
//! of its own), the user 127.0.0.1.

use crate::common;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use common::*;
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use vtp_store::Role;

const ATTACKER: &str = "127.0.0.2";
/// Generous: the machine may be busy.
const SLACK: Duration = Duration::from_secs(10);

async fn from_attacker(server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(ATTACKER.parse().unwrap(), 0))
        .unwrap();
    socket.connect(server).await.unwrap()
}

/// How long until the server closes `tcp` (reading and dropping what it sends).
async fn closed_after(tcp: &mut TcpStream, started: Instant) -> Duration {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(SLACK * 2, async {
        while let Ok(n) = tcp.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await
    .expect("the server closes the connection");
    started.elapsed()
}

#[tokio::test]
async fn clients_that_never_sign_in_cannot_lock_out_signed_in_users() {
    let limit = Duration::from_secs(2);
    let auth_limit = Duration::from_secs(4);
    let mut s = TestServer::start_with(|a| {
        a.max_connections = 40;
        a.max_connections_per_ip = 20;
        a.max_unauthenticated_per_ip = 8;
        a.socket_auth_timeout = auth_limit;
        a.header_read_timeout = limit;
        a.body_read_timeout = limit;
    })
    .await;
    let (_, token) = s.user("ann@example.org", Role::Student).await;
    s.http = reqwest::Client::new();
    wait_until(WAIT, "the pooled connection to close", async || {
        s.open_connections() == 0
    })
    .await;

    // Bare polling handshakes: eight per address, then 503.
    let attacker = reqwest::Client::builder()
        .local_address(ATTACKER.parse::<IpAddr>().unwrap())
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut accepted = 0;
    for _ in 0..10 {
        let status = attacker
            .get(s.url("/socket.io/?EIO=4&transport=polling"))
            .send()
            .await
            .unwrap()
            .status();
        if status == 200 {
            accepted += 1;
        } else {
            assert_eq!(status, 503);
        }
    }
    assert_eq!(accepted, 8, "polling sessions not signed in, per address");

    // An idle websocket from there is refused too (1013, try again later).
    let (mut ws, _) = tokio_tungstenite::client_async(
        format!("ws://{}/socket.io/?EIO=4&transport=websocket", s.addr),
        from_attacker(s.addr).await,
    )
    .await
    .unwrap();
    match tokio::time::timeout(SLACK, ws.next()).await.unwrap() {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1013),
        other => panic!("expected a close frame, got {other:?}"),
    }
    drop(ws);

    // Half-sent heads and a trickled body: at most 20 connections per address.
    let started = Instant::now();
    let mut held = Vec::new();
    for _ in 0..30 {
        let mut tcp = from_attacker(s.addr).await;
        let _ = tcp.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").await;
        held.push(tcp);
    }
    wait_until(WAIT, "the server to keep 20 of the 30", async || {
        s.open_connections() == 20
    })
    .await;

    // Meanwhile the signed-in user is served, by HTTP and Socket.IO.
    let (status, _) = s.get("/health", None).await;
    assert_eq!(status, 200);
    let socket = s.socket(&token).await;
    socket.disconnect().await;

    // Each half-sent head is cut off at the head deadline.
    for tcp in &mut held {
        let after = closed_after(tcp, started).await;
        assert!(after < limit + SLACK, "{after:?}");
    }
    let elapsed = started.elapsed();
    assert!(elapsed >= limit, "closed before the deadline: {elapsed:?}");
    drop(held);

    // A body trickled a byte at a time is cut off at the body deadline.
    let mut slow = from_attacker(s.addr).await;
    let started = Instant::now();
    slow.write_all(
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n{",
    )
    .await
    .unwrap();
    // Once the server has closed the connection, writes fail (it resets it).
    let mut sent = 1;
    while slow.write_all(b" ").await.is_ok() {
        sent += 1;
        assert!(sent < 100, "the whole trickled body was read");
        tokio::time::sleep(Duration::from_millis(300)).await; // sleep-ok: the trickle is the attack
    }
    let after = started.elapsed();
    assert!(after >= limit && after < limit + SLACK, "{after:?}");
    eprintln!("trickled body cut off after {after:?} (deadline {limit:?})");

    // A websocket that never signs in is closed at the sign-in deadline (1008).
    let started = Instant::now();
    let (mut ws, _) = tokio_tungstenite::client_async(
        format!("ws://{}/socket.io/?EIO=4&transport=websocket", s.addr),
        from_attacker(s.addr).await,
    )
    .await
    .unwrap();
    let code = tokio::time::timeout(SLACK * 2, async {
        while let Some(Ok(message)) = ws.next().await {
            if let Message::Close(frame) = message {
                return frame.map(|f| u16::from(f.code));
            }
        }
        None
    })
    .await
    .expect("the server closes the websocket");
    assert_eq!(code, Some(1008));
    let after = started.elapsed();
    assert!(
        after >= auth_limit && after < auth_limit + SLACK,
        "{after:?}"
    );
    eprintln!("websocket not signed in closed after {after:?} (deadline {auth_limit:?})");
}
