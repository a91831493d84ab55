//! The Socket.IO layer (`vtp_sio`) on its own behind `vtp serve`'s accept
//! loop, over real sockets: the polling handshake and the websocket
//! upgrade, plain websockets, ack ids, heartbeats, and what it refuses
//! (oversized payloads, malformed packets and frames, binary attachments,
//! bad auth, other namespaces).
//! The handler is a small real one (echo), so that only the layer is tested.

use crate::common::wait;

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use vtp_server::serve::{ConnectionLimits, serve};
use vtp_sio::{self as sio, Engine, Handler, Socket};
use wait::{wait_for, wait_until};

/// Generous: the machine may be busy.
const WAIT: Duration = Duration::from_secs(20);

#[derive(Default)]
struct Echo {
    disconnects: Mutex<Vec<(String, &'static str)>>,
}

struct EchoHandler(Arc<Echo>);

#[async_trait]
impl Handler for EchoHandler {
    type Conn = String;
    async fn connect(&self, _id: &str, auth: Option<Value>) -> Result<String, String> {
        match auth.as_ref().and_then(|a| a["token"].as_str()) {
            Some("good") => Ok("user".into()),
            _ => Err("unauthorized".into()),
        }
    }
    async fn event(&self, socket: &Socket<String>, name: String, data: Value, len: usize) -> Value {
        json!({ "ok": true, "data": { "event": name, "echo": data, "len": len, "conn": socket.conn } })
    }
    fn refuse(&self, message: &str) -> Value {
        json!({ "ok": false, "error": { "code": "bad_request", "message": message } })
    }
    async fn disconnect(&self, socket: &Socket<String>, reason: &'static str) {
        self.0
            .disconnects
            .lock()
            .unwrap()
            .push((socket.id.clone(), reason));
    }
}

struct Server {
    addr: std::net::SocketAddr,
    engine: Arc<Engine<EchoHandler>>,
    echo: Arc<Echo>,
    http: reqwest::Client,
}

async fn start(ping_interval_ms: u64, ping_timeout_ms: u64, max_payload: usize) -> Server {
    start_with(sio::Config {
        ping_interval: Duration::from_millis(ping_interval_ms),
        ping_timeout: Duration::from_millis(ping_timeout_ms),
        max_payload,
        connect_timeout: Duration::from_secs(60),
        max_sessions: 50,
        max_unauthenticated: 50,
        max_unauthenticated_per_addr: 50,
    })
    .await
}

async fn start_with(config: sio::Config) -> Server {
    let echo = Arc::new(Echo::default());
    let engine = Engine::new(EchoHandler(echo.clone()), config);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = ConnectionLimits {
        max_connections: 100,
        open: Arc::new(AtomicUsize::new(0)),
        ..ConnectionLimits::default()
    };
    tokio::spawn(serve(
        listener,
        sio::router(engine.clone()),
        limits,
        std::future::pending(),
    ));
    Server {
        addr,
        engine,
        echo,
        http: reqwest::Client::new(),
    }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

impl Server {
    fn url(&self, scheme: &str, query: &str) -> String {
        format!("{scheme}://{}/socket.io/?EIO=4&{query}", self.addr)
    }
    async fn get(&self, query: &str) -> (u16, String) {
        let r = self.http.get(self.url("http", query)).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }
    async fn post(&self, query: &str, body: impl Into<String>) -> (u16, String) {
        let r = self
            .http
            .post(self.url("http", query))
            .body(body.into())
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }
    async fn ws(&self, query: &str) -> Ws {
        tokio_tungstenite::connect_async(self.url("ws", query))
            .await
            .unwrap()
            .0
    }
    /// A websocket connection with the namespace connected; its socket id.
    async fn connected_ws(&self) -> (Ws, String) {
        let mut ws = self.ws("transport=websocket").await;
        let open = text(&mut ws).await;
        assert!(open.starts_with("0{"), "{open}");
        let open: Value = serde_json::from_str(&open[1..]).unwrap();
        assert_eq!(open["upgrades"], json!([]));
        ws.send(Message::text(r#"40{"token":"good"}"#))
            .await
            .unwrap();
        let connected = text(&mut ws).await;
        let sid: Value = serde_json::from_str(connected.strip_prefix("40").unwrap()).unwrap();
        (ws, sid["sid"].as_str().unwrap().to_string())
    }
    fn disconnects(&self) -> Vec<(String, &'static str)> {
        self.echo.disconnects.lock().unwrap().clone()
    }
}

/// The next text message (pings are not answered here).
async fn text(ws: &mut Ws) -> String {
    loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("no message")
        {
            Some(Ok(Message::Text(t))) => return t.to_string(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a text message, got {other:?}"),
        }
    }
}

/// Waits for the server to close the websocket.
async fn closed(ws: &mut Ws) {
    tokio::time::timeout(WAIT, async {
        while let Some(Ok(message)) = ws.next().await {
            if let Message::Close(_) = message {
                return;
            }
        }
    })
    .await
    .expect("the server did not close the connection");
}

#[tokio::test]
async fn polling_handshake_then_websocket_upgrade() {
    let s = start(25_000, 20_000, 100_000).await;
    let (status, open) = s.get("transport=polling").await;
    assert_eq!(status, 200);
    let open: Value = serde_json::from_str(open.strip_prefix('0').unwrap()).unwrap();
    assert_eq!(open["upgrades"], json!(["websocket"]));
    assert_eq!(open["pingInterval"], 25_000);
    assert_eq!(open["pingTimeout"], 20_000);
    assert_eq!(open["maxPayload"], 100_000);
    let sid = open["sid"].as_str().unwrap();
    let q = format!("transport=polling&sid={sid}");

    // Connect and two events in one payload; the answers come in one poll.
    let body = "40{\"token\":\"good\"}\u{1e}421[\"a\",{\"x\":1}]\u{1e}42[\"no-ack\",2]";
    assert_eq!(s.post(&q, body).await, (200, "ok".into()));
    let mut packets = Vec::new();
    while packets.len() < 2 {
        let (status, payload) = s.get(&q).await;
        assert_eq!(status, 200);
        packets.extend(payload.split('\u{1e}').map(str::to_string));
    }
    assert!(packets[0].starts_with("40{\"sid\":"), "{packets:?}");
    let socket_id: Value = serde_json::from_str(&packets[0][2..]).unwrap();
    let socket_id = socket_id["sid"].as_str().unwrap().to_string();
    assert_ne!(socket_id, sid, "the socket id must not be the session id");
    assert!(packets[1].starts_with("431["), "{packets:?}");
    let ack: Value = serde_json::from_str(&packets[1][3..]).unwrap();
    assert_eq!(ack[0]["data"]["echo"], json!({ "x": 1 }));
    assert_eq!(packets.len(), 2, "an event without ack id is not answered");

    // The upgrade: the probe, the waiting poll released with a noop, then `5`.
    let waiting = {
        let (http, url) = (s.http.clone(), s.url("http", &q));
        tokio::spawn(async move { http.get(url).send().await.unwrap().text().await.unwrap() })
    };
    let mut ws = s.ws(&format!("transport=websocket&sid={sid}")).await;
    ws.send(Message::text("2probe")).await.unwrap();
    assert_eq!(text(&mut ws).await, "3probe");
    assert_eq!(
        tokio::time::timeout(WAIT, waiting).await.unwrap().unwrap(),
        "6"
    );
    ws.send(Message::text("5")).await.unwrap();
    ws.send(Message::text("427[\"b\",\"on ws\"]"))
        .await
        .unwrap();
    let ack = text(&mut ws).await;
    assert!(ack.starts_with("437["), "{ack}");
    assert!(ack.contains("on ws"));
    assert!(s.engine.emit(&socket_id, "note", &json!({ "n": 1 })));
    assert_eq!(text(&mut ws).await, r#"42["note",{"n":1}]"#);
    // A second websocket for the upgraded session is closed at once (as
    // the reference server does), and the first carries on.
    let mut second = s.ws(&format!("transport=websocket&sid={sid}")).await;
    closed(&mut second).await;
    assert!(s.engine.emit(&socket_id, "note", &json!({ "n": 2 })));
    assert_eq!(text(&mut ws).await, r#"42["note",{"n":2}]"#);
    assert!(!s.engine.emit("nobody", "note", &json!(null)));

    // Polling is over for this session.
    assert_eq!(s.get(&q).await.0, 400);
    assert_eq!(s.get("transport=polling&sid=unknown").await.0, 400);
    assert_eq!(s.get("transport=carrier-pigeon").await.0, 400);
    assert_eq!(
        s.http
            .get(format!(
                "http://{}/socket.io/?EIO=3&transport=polling",
                s.addr
            ))
            .send()
            .await
            .unwrap()
            .status(),
        400
    );

    drop(ws);
    wait_until(WAIT, "disconnect after the websocket closes", async || {
        s.disconnects().iter().any(|(id, _)| *id == socket_id)
    })
    .await;
    wait_until(WAIT, "session forgotten", async || {
        s.engine.session_count() == 0
    })
    .await;
}

#[tokio::test]
async fn acks_carry_their_ids_and_refusals_are_clear() {
    let s = start(25_000, 20_000, 100_000).await;
    let mut ws = s.ws("transport=websocket").await;
    text(&mut ws).await;
    // Not connected yet: events are ignored; bad auth and other namespaces refused.
    ws.send(Message::text("425[\"early\"]")).await.unwrap();
    ws.send(Message::text(r#"40{"token":"bad"}"#))
        .await
        .unwrap();
    assert_eq!(text(&mut ws).await, r#"44{"message":"unauthorized"}"#);
    ws.send(Message::text("40")).await.unwrap();
    assert_eq!(text(&mut ws).await, r#"44{"message":"unauthorized"}"#);
    ws.send(Message::text("40/admin,")).await.unwrap();
    assert_eq!(
        text(&mut ws).await,
        r#"44/admin,{"message":"Invalid namespace"}"#
    );
    ws.send(Message::text(r#"40{"token":"good"}"#))
        .await
        .unwrap();
    assert!(text(&mut ws).await.starts_with("40{\"sid\""));

    let ids = [0u64, 7, 12345, 9_007_199_254_740_993];
    for id in ids {
        ws.send(Message::text(format!("42{id}[\"e\",{id}]")))
            .await
            .unwrap();
    }
    let mut answered = Vec::new();
    for _ in ids {
        let ack = text(&mut ws).await;
        let digits: String = ack[2..].chars().take_while(char::is_ascii_digit).collect();
        let body: Value = serde_json::from_str(&ack[2 + digits.len()..]).unwrap();
        assert_eq!(body[0]["data"]["echo"].to_string(), digits);
        answered.push(digits.parse::<u64>().unwrap());
    }
    answered.sort_unstable();
    assert_eq!(answered, ids);

    // A binary event is answered with a refusal; its attachment is skipped.
    ws.send(Message::text(
        r#"451-3["upload",{"_placeholder":true,"num":0}]"#,
    ))
    .await
    .unwrap();
    ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    let refusal = text(&mut ws).await;
    assert!(refusal.starts_with("433["), "{refusal}");
    assert!(refusal.contains("binary attachments are not supported"));
    // Still connected and answering.
    ws.send(Message::text("424[\"after\"]")).await.unwrap();
    assert!(text(&mut ws).await.starts_with("434["));

    // A namespace disconnect keeps the engine connection.
    ws.send(Message::text("41")).await.unwrap();
    wait_until(WAIT, "namespace disconnect", async || {
        s.disconnects().len() == 1
    })
    .await;
    ws.send(Message::text(r#"40{"token":"good"}"#))
        .await
        .unwrap();
    assert!(text(&mut ws).await.starts_with("40{\"sid\""));
}

#[tokio::test]
async fn the_heartbeat_closes_a_silent_client_and_keeps_an_answering_one() {
    // Pongs have 1.5 s, generous on a busy machine; silence is noticed after it.
    let s = start(200, 1500, 100_000).await;
    let (mut ws, id) = s.connected_ws().await;
    for _ in 0..4 {
        assert_eq!(text(&mut ws).await, "2");
        ws.send(Message::text("3")).await.unwrap();
    }
    assert!(s.disconnects().is_empty());

    assert_eq!(text(&mut ws).await, "2");
    closed(&mut ws).await;
    wait_until(WAIT, "ping timeout", async || {
        s.disconnects() == vec![(id.clone(), "ping timeout")]
    })
    .await;

    // The same over polling.
    let (_, open) = s.get("transport=polling").await;
    let open: Value = serde_json::from_str(&open[1..]).unwrap();
    let q = format!("transport=polling&sid={}", open["sid"].as_str().unwrap());
    s.post(&q, r#"40{"token":"good"}"#).await;
    let mut pings = 0;
    while pings < 2 {
        let (_, payload) = s.get(&q).await;
        if payload.split('\u{1e}').any(|p| p == "2") {
            pings += 1;
            s.post(&q, "3").await;
        }
    }
    assert_eq!(s.disconnects().len(), 1);
    // Silence: the session is closed and forgotten.
    wait_until(WAIT, "polling ping timeout", async || {
        s.disconnects().len() == 2
    })
    .await;
    assert_eq!(s.disconnects()[1].1, "ping timeout");
    wait_until(WAIT, "session forgotten", async || {
        s.engine.session_count() == 0
    })
    .await;
    assert_eq!(s.get(&q).await.0, 400);
}

#[tokio::test]
async fn oversized_payloads_close_the_connection() {
    let s = start(25_000, 20_000, 1000).await;
    let (mut ws, id) = s.connected_ws().await;
    // 1,000 bytes: the limit itself is accepted.
    ws.send(Message::text(format!("421[\"e\",\"{}\"]", "x".repeat(989))))
        .await
        .unwrap();
    assert!(text(&mut ws).await.starts_with("431["));
    ws.send(Message::text(format!("42[\"e\",\"{}\"]", "x".repeat(2000))))
        .await
        .unwrap();
    let _ = tokio::time::timeout(WAIT, async { while let Some(Ok(_)) = ws.next().await {} }).await;
    wait_until(WAIT, "oversized websocket message", async || {
        s.disconnects().iter().any(|(d, _)| *d == id)
    })
    .await;

    let (_, open) = s.get("transport=polling").await;
    let open: Value = serde_json::from_str(&open[1..]).unwrap();
    let q = format!("transport=polling&sid={}", open["sid"].as_str().unwrap());
    let (status, _) = s.post(&q, "4".repeat(5000)).await;
    assert_eq!(status, 413);
    wait_until(WAIT, "session closed", async || {
        s.engine.session_count() == 0
    })
    .await;
    assert_eq!(s.get(&q).await.0, 400);
}

#[tokio::test]
async fn malformed_packets_and_frames_close_without_harm() {
    let s = start(25_000, 20_000, 100_000).await;
    for bad in [
        "",
        "9",
        "4",
        "49",
        "42",
        "42{}",
        "42[1]",
        "4299999999999999999999[\"e\"]",
        "40{bad",
        "44{}",
        "bAQID",
        "é",
    ] {
        let (mut ws, _) = s.connected_ws().await;
        ws.send(Message::text(bad)).await.unwrap();
        closed(&mut ws).await;
    }
    wait_until(WAIT, "every malformed connection ended", async || {
        s.disconnects().len() == 12
    })
    .await;
    assert!(
        s.disconnects()
            .iter()
            .all(|(_, why)| *why == "malformed packet")
    );

    // By polling: refused, and the session is closed.
    let (_, open) = s.get("transport=polling").await;
    let open: Value = serde_json::from_str(&open[1..]).unwrap();
    let q = format!("transport=polling&sid={}", open["sid"].as_str().unwrap());
    assert_eq!(s.post(&q, "40{\"token\":\"good\"}\u{1e}42[1]").await.0, 400);
    wait_until(WAIT, "malformed polling session closed", async || {
        s.disconnects().len() == 13
    })
    .await;
    assert_eq!(s.get(&q).await.0, 400);

    // Raw frames: unmasked, reserved bits, a bad control frame, invalid UTF-8.
    for frame in [
        vec![0x81, 0x02, b'4', b'0'],
        vec![0xF1, 0x80, 0, 0, 0, 0],
        vec![0x09, 0x80, 0, 0, 0, 0],
        vec![0x81, 0x82, 0, 0, 0, 0, 0xFF, 0xFE],
    ] {
        let mut tcp = raw_websocket(&s).await;
        tcp.write_all(&frame).await.unwrap();
        let mut rest = Vec::new();
        let read = tokio::time::timeout(WAIT, tcp.read_to_end(&mut rest)).await;
        assert!(read.is_ok(), "the server kept a connection after {frame:?}");
    }
    // The server still works.
    let (mut ws, _) = s.connected_ws().await;
    ws.send(Message::text("421[\"fine\"]")).await.unwrap();
    assert!(text(&mut ws).await.starts_with("431["));
}

/// A websocket handshake by hand, past the open packet.
async fn raw_websocket(s: &Server) -> TcpStream {
    let mut tcp = TcpStream::connect(s.addr).await.unwrap();
    let request = format!(
        "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        s.addr
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8];
        tcp.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
    // The open packet: a short text frame.
    let mut header = [0u8; 2];
    tcp.read_exact(&mut header).await.unwrap();
    assert_eq!(header[0], 0x81);
    let mut open = vec![0u8; usize::from(header[1] & 0x7F)];
    tcp.read_exact(&mut open).await.unwrap();
    assert!(open.starts_with(b"0{"));
    tcp
}

#[tokio::test]
async fn handshakes_beyond_the_session_limit_are_refused() {
    let s = start(25_000, 20_000, 100_000).await;
    for _ in 0..50 {
        assert_eq!(s.get("transport=polling").await.0, 200);
    }
    assert_eq!(s.engine.session_count(), 50);
    assert_eq!(s.get("transport=polling").await.0, 503);
    let mut ws = s.ws("transport=websocket").await;
    assert_eq!(close_code(&mut ws).await, 1013);
    assert_eq!(s.engine.session_count(), 50);
}

/// The code of the close frame that ends a websocket.
async fn close_code(ws: &mut Ws) -> u16 {
    tokio::time::timeout(WAIT, async {
        while let Some(Ok(message)) = ws.next().await {
            if let Message::Close(frame) = message {
                return frame.map(|f| u16::from(f.code)).unwrap_or(0);
            }
        }
        0
    })
    .await
    .expect("the server did not close the connection")
}

#[tokio::test]
async fn sessions_not_signed_in_have_their_own_cap_and_deadline() {
    let s = start_with(sio::Config {
        connect_timeout: Duration::from_millis(800),
        max_sessions: 2,
        max_unauthenticated: 3,
        max_unauthenticated_per_addr: 3,
        ..sio::Config::default()
    })
    .await;
    // Signed-in sessions up to their own cap, then "server full".
    let (_a, _) = s.connected_ws().await;
    let (_b, _) = s.connected_ws().await;
    let mut third = s.ws("transport=websocket").await;
    text(&mut third).await;
    third
        .send(Message::text(r#"40{"token":"good"}"#))
        .await
        .unwrap();
    assert_eq!(text(&mut third).await, r#"44{"message":"server full"}"#);
    drop(third);
    wait_until(WAIT, "the refused session to end", async || {
        s.engine.unauthenticated_count() == 0
    })
    .await;

    // Sessions not signed in do not take signed-in places, and have a cap.
    let mut waiting = Vec::new();
    for _ in 0..3 {
        let mut ws = s.ws("transport=websocket").await;
        text(&mut ws).await;
        waiting.push(ws);
    }
    assert_eq!(s.get("transport=polling").await.0, 503);
    let mut fourth = s.ws("transport=websocket").await;
    assert_eq!(close_code(&mut fourth).await, 1013);

    // None signs in: each is closed at its deadline, with 1008, not at a ping.
    let started = std::time::Instant::now();
    for ws in &mut waiting {
        assert_eq!(close_code(ws).await, 1008);
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    wait_until(WAIT, "the expired sessions to be forgotten", async || {
        s.engine.unauthenticated_count() == 0
    })
    .await;

    // A polling session that never signs in ends at its deadline too.
    let (status, open) = s.get("transport=polling").await;
    assert_eq!(status, 200);
    let open: Value = serde_json::from_str(&open[1..]).unwrap();
    let q = format!("transport=polling&sid={}", open["sid"].as_str().unwrap());
    assert_eq!(s.get(&q).await, (200, "1".to_string()));
    gone(&s, &q).await;
}

/// A polling session's query string.
async fn polling_session(s: &Server) -> String {
    let (_, open) = s.get("transport=polling").await;
    let open: Value = serde_json::from_str(&open[1..]).unwrap();
    format!("transport=polling&sid={}", open["sid"].as_str().unwrap())
}

#[tokio::test]
async fn polling_follows_the_reference_server() {
    let s = start(25_000, 20_000, 100_000).await;

    // A client's close ends the waiting poll with `noop`, as the reference
    // does; a close of the server's own (here: a second poll) with `close`.
    for (close, answer) in [(None, "1"), (Some("1"), "6")] {
        let q = polling_session(&s).await;
        let (http, url) = (s.http.clone(), s.url("http", &q));
        let poll =
            tokio::spawn(async move { http.get(url).send().await.unwrap().text().await.unwrap() });
        wait_until(WAIT, "the poll to wait", async || {
            s.engine.waiting_polls() == 1
        })
        .await;
        match close {
            Some(packet) => assert_eq!(s.post(&q, packet).await, (200, "ok".to_string())),
            None => assert_eq!(s.get(&q).await.0, 400),
        }
        assert_eq!(poll.await.unwrap(), answer);
        gone(&s, &q).await;
    }

    // Binary packets are read and dropped, as binary frames are over websocket.
    let q = polling_session(&s).await;
    assert_eq!(
        s.post(
            &q,
            "40{\"token\":\"good\"}\u{1e}bAQIDBA==\u{1e}421[\"after\"]"
        )
        .await,
        (200, "ok".to_string())
    );
    let answers = s.get(&q).await.1;
    assert!(answers.contains("431["), "{answers}");

    // Two POSTs at once: the second is refused and the session closes.
    let q = polling_session(&s).await;
    let mut slow = TcpStream::connect(s.addr).await.unwrap();
    slow.write_all(
        format!(
            "POST /socket.io/?EIO=4&{q} HTTP/1.1\r\nHost: {}\r\nContent-Length: 4\r\n\r\n42",
            s.addr
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let second = wait_for(WAIT, "the first POST to be read", async || {
        match s.post(&q, "3").await {
            (400, body) => Ok(body),
            seen => Err(seen),
        }
    })
    .await;
    assert!(second.contains("Bad request"), "{second}");
    gone(&s, &q).await;
}

/// Waits until the polling session of `q` is unknown.
async fn gone(s: &Server, q: &str) {
    wait_until(WAIT, "the session to be closed", async || {
        s.get(q).await.0 == 400
    })
    .await;
}

/// The close frame (code) a raw websocket gets after `bytes`.
async fn close_after(s: &Server, bytes: &[u8]) -> u16 {
    let mut tcp = raw_websocket(s).await;
    tcp.write_all(bytes).await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut rest))
        .await
        .expect("the server kept the connection")
        .unwrap();
    // A close frame: FIN + opcode 8, a short length, then the code.
    assert!(rest.len() >= 4 && rest[0] == 0x88, "{rest:?}");
    u16::from_be_bytes([rest[2], rest[3]])
}

#[tokio::test]
async fn protocol_errors_send_a_close_frame_with_their_code() {
    let s = start(25_000, 20_000, 1000).await;
    // Unmasked; reserved bits; a fragmented control frame: 1002.
    assert_eq!(close_after(&s, &[0x81, 0x02, b'4', b'0']).await, 1002);
    assert_eq!(close_after(&s, &[0xF1, 0x80, 0, 0, 0, 0]).await, 1002);
    assert_eq!(close_after(&s, &[0x09, 0x80, 0, 0, 0, 0]).await, 1002);
    // A length of 2^63 (the most significant bit set): 1002, nothing allocated.
    let mut huge = vec![0x81, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0];
    huge.extend([0, 0, 0, 0]);
    assert_eq!(close_after(&s, &huge).await, 1002);
    // 2^63 - 1 and 2^32: valid lengths, far beyond the limit: 1009.
    let mut big = vec![0x81, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
    big.extend([0, 0, 0, 0]);
    assert_eq!(close_after(&s, &big).await, 1009);
    let mut big = vec![0x81, 0xFF, 0, 0, 0, 1, 0, 0, 0, 0];
    big.extend([0, 0, 0, 0]);
    assert_eq!(close_after(&s, &big).await, 1009);
    // Text that is not UTF-8: 1007.
    assert_eq!(
        close_after(&s, &[0x81, 0x82, 0, 0, 0, 0, 0xFF, 0xFE]).await,
        1007
    );
    // A frame that is fine but not an Engine.IO packet: 1008.
    assert_eq!(close_after(&s, &[0x81, 0x81, 0, 0, 0, 0, b'9']).await, 1008);
    // The server still works.
    let (mut ws, _) = s.connected_ws().await;
    ws.send(Message::text("421[\"fine\"]")).await.unwrap();
    assert!(text(&mut ws).await.starts_with("431["));
}
