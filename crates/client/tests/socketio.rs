//! Tests of `SocketIoClient` against a tiny socketioxide server built here, and
//! against a hand-written fake Engine.IO server for heartbeat and garbage cases.

#[path = "../../server/tests/server/common/wait.rs"]
mod wait;

use std::task::{Context, Waker};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Data, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::socket::DisconnectReason;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use vtp_client::{ClientError, SocketIoClient};
use wait::wait_until;

const WAIT: Duration = Duration::from_secs(5);

/// Polls `waiting` once, so that it is waiting for a notification before
/// the test makes one arrive; true while it has nothing yet.
fn started_waiting<F: Future>(waiting: std::pin::Pin<&mut F>) -> bool {
    waiting
        .poll(&mut Context::from_waker(Waker::noop()))
        .is_pending()
}

// ---------------------------------------------------------------- test server

struct TestServer {
    url: String,
    /// `(socket id, reason)` of every server-side disconnect.
    disconnects: mpsc::UnboundedReceiver<(String, DisconnectReason)>,
}

impl TestServer {
    async fn next_disconnect(&mut self) -> (String, DisconnectReason) {
        tokio::time::timeout(WAIT, self.disconnects.recv())
            .await
            .expect("no server-side disconnect in time")
            .expect("server gone")
    }
}

#[derive(Debug)]
struct Unauthorized;

impl std::fmt::Display for Unauthorized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("unauthorized")
    }
}

#[derive(Deserialize)]
struct Auth {
    token: String,
}

fn authorized(auth: Result<Auth, impl std::fmt::Debug>) -> bool {
    matches!(auth, Ok(auth) if auth.token == "good")
}

fn ok(data: Value) -> Value {
    json!({ "ok": true, "data": data })
}

fn register(s: SocketRef, disconnects: mpsc::UnboundedSender<(String, DisconnectReason)>) {
    s.on("echo", async |ack: AckSender, Data(v): Data<Value>| {
        ack.send(&ok(v)).ok();
    });
    // Answers after `delay` ms, so that concurrent requests finish out of order.
    s.on("delayed", async |ack: AckSender, Data(v): Data<Value>| {
        let delay = v["delay"].as_u64().unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(delay)).await; // sleep-ok: answers late on purpose
        ack.send(&ok(v)).ok();
    });
    s.on("fail", async |ack: AckSender| {
        ack.send(&json!({"ok": false, "error": {"code": "forbidden", "message": "nope"}}))
            .ok();
    });
    s.on("weird", async |ack: AckSender| {
        ack.send("not an object").ok();
    });
    s.on(
        "first-arg",
        async |ack: AckSender, TryData(v): TryData<Value>| {
            let reply = match v {
                Ok(v) => ok(v),
                Err(e) => {
                    json!({"ok": false, "error": {"code": "bad_request", "message": e.to_string()}})
                }
            };
            ack.send(&reply).ok();
        },
    );
    s.on(
        "pair",
        async |ack: AckSender, Data((n, text)): Data<(i64, String)>| {
            ack.send(&ok(json!([n, text]))).ok();
        },
    );
    s.on("never", async || {});
    s.on("notify", async |s: SocketRef, ack: AckSender| {
        for i in 0..3 {
            s.emit("other", &json!({ "i": i })).ok();
        }
        s.emit("target", &json!({ "x": 1 })).ok();
        s.emit("other", &json!({ "i": 3 })).ok();
        ack.send(&ok(json!({}))).ok();
    });
    s.on("note", async |s: SocketRef, Data(v): Data<Value>| {
        s.emit("noted", &v).ok();
    });
    s.on(
        "broadcast",
        async |s: SocketRef, ack: AckSender, Data(v): Data<Value>| {
            s.broadcast().emit("hello", &v).await.ok();
            ack.send(&ok(json!({}))).ok();
        },
    );
    s.on("kick", async |s: SocketRef, ack: AckSender| {
        ack.send(&ok(json!({}))).ok();
        s.disconnect().ok();
    });
    // Never acks: the request that asks for it is still pending when the
    // socket is disconnected.
    s.on("kick-unanswered", async |s: SocketRef| {
        s.disconnect().ok();
    });
    s.on_disconnect(move |s: SocketRef, reason: DisconnectReason| {
        let disconnects = disconnects.clone();
        async move {
            disconnects.send((s.id.to_string(), reason)).ok();
        }
    });
}

async fn start_server(heartbeat: Option<(Duration, Duration)>) -> TestServer {
    let mut builder = SocketIo::builder();
    if let Some((interval, timeout)) = heartbeat {
        builder = builder.ping_interval(interval).ping_timeout(timeout);
    }
    let (layer, io) = builder.build_layer();
    let (tx, disconnects) = mpsc::unbounded_channel();
    // socketioxide sends `40{sid}` and only then spawns the connect handler, so
    // handlers registered there can miss events sent right after the connect
    // (seen under CPU load). A connect middleware runs before `40` is sent, so
    // the handlers are registered there.
    let auth_and_register = move |s: SocketRef, TryData(auth): TryData<Auth>| {
        let tx = tx.clone();
        async move {
            if !authorized(auth) {
                return Err(Unauthorized);
            }
            register(s, tx);
            Ok(())
        }
    };
    io.ns("/", (async || {}).with(auth_and_register));
    let app = axum::Router::new().layer(layer);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    TestServer { url, disconnects }
}

async fn connect(server: &TestServer) -> SocketIoClient {
    SocketIoClient::connect(&server.url, Some("good"))
        .await
        .expect("connect")
}

// ---------------------------------------------------------------- handshake

#[tokio::test]
async fn auth_accepted_and_refused() {
    let server = start_server(None).await;

    let client = connect(&server).await;
    assert!(!client.sid().is_empty());
    assert!(client.is_connected());
    let other = SocketIoClient::connect(&format!("{}/", server.url), Some("good"))
        .await
        .unwrap();
    assert_ne!(client.sid(), other.sid());

    let refused = |r: Result<SocketIoClient, ClientError>| match r {
        Err(ClientError::ConnectRefused(message)) => message,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert_eq!(
        refused(SocketIoClient::connect(&server.url, Some("bad")).await),
        "unauthorized"
    );
    assert_eq!(
        refused(SocketIoClient::connect(&server.url, None).await),
        "unauthorized"
    );
    assert_eq!(
        refused(SocketIoClient::connect_with_auth(&server.url, Some(json!({"token": 5}))).await),
        "unauthorized"
    );
    assert_eq!(
        refused(SocketIoClient::connect_with_auth(&server.url, Some(json!("token"))).await),
        "unauthorized"
    );
    let accepted = SocketIoClient::connect_with_auth(
        &server.url,
        Some(json!({"token": "good", "extra": [1]})),
    )
    .await;
    assert!(accepted.is_ok());
}

#[tokio::test]
async fn connect_errors() {
    // Nothing listens on this port any more.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    assert!(matches!(
        SocketIoClient::connect(&url, Some("good")).await,
        Err(ClientError::Io(_))
    ));
    assert!(matches!(
        SocketIoClient::connect("https://127.0.0.1:1", None).await,
        Err(ClientError::Protocol(_))
    ));
    // An HTTP server without Socket.IO rejects the websocket upgrade.
    let app = axum::Router::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    assert!(matches!(
        SocketIoClient::connect(&url, Some("good")).await,
        Err(ClientError::WebSocket(_))
    ));
}

// ---------------------------------------------------------------- requests

#[tokio::test]
async fn request_ack_round_trip() {
    let server = start_server(None).await;
    let client = connect(&server).await;

    let payload = json!({"roomId": "r1", "nested": {"list": [1, 2.5, null, "é\"\n"]}});
    assert_eq!(
        client.request("echo", payload.clone()).await.unwrap(),
        payload
    );
    assert_eq!(
        client.request("echo", json!("plain string")).await.unwrap(),
        json!("plain string")
    );

    match client.request("fail", json!({})).await {
        Err(ClientError::Server { code, message }) => {
            assert_eq!((code.as_str(), message.as_str()), ("forbidden", "nope"))
        }
        other => panic!("expected a server error, got {other:?}"),
    }
    assert!(matches!(
        client.request("weird", json!({})).await,
        Err(ClientError::Protocol(_))
    ));
    // The connection survives errors.
    assert_eq!(client.request("echo", json!(1)).await.unwrap(), json!(1));
    assert_eq!(client.pending_requests(), 0);
}

#[tokio::test]
async fn request_raw_argument_lists() {
    let server = start_server(None).await;
    let client = connect(&server).await;

    assert_eq!(
        client.request_raw("weird", vec![]).await.unwrap(),
        json!("not an object")
    );
    assert_eq!(
        client
            .request_raw("first-arg", vec![json!(5), json!("ignored")])
            .await
            .unwrap(),
        ok(json!(5))
    );
    let no_args = client.request_raw("first-arg", vec![]).await.unwrap();
    assert_eq!(no_args["ok"], json!(false));
    assert_eq!(no_args["error"]["code"], json!("bad_request"));
    assert_eq!(
        client
            .request_raw("pair", vec![json!(7), json!("seven")])
            .await
            .unwrap(),
        ok(json!([7, "seven"]))
    );
    assert_eq!(
        client
            .request_raw("first-arg", vec![json!(null)])
            .await
            .unwrap(),
        ok(json!(null))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_get_their_own_answers() {
    let server = start_server(None).await;
    let client = connect(&server).await;

    // Later requests are answered first.
    let requests = (0..50u64).map(|i| {
        let client = client.clone();
        async move {
            let reply = client
                .request("delayed", json!({"i": i, "delay": (50 - i) * 4}))
                .await;
            (i, reply)
        }
    });
    for (i, reply) in futures_util::future::join_all(requests).await {
        assert_eq!(reply.unwrap()["i"], json!(i));
    }
    assert_eq!(client.pending_requests(), 0);

    // The same from spawned tasks on one shared handle.
    let client = std::sync::Arc::new(client);
    let tasks: Vec<_> = (0..50u64)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                client.request("echo", json!({"i": i})).await.unwrap()["i"] == json!(i)
            })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap());
    }
}

#[tokio::test]
async fn request_timeout_removes_the_pending_ack() {
    let server = start_server(None).await;
    let mut client = connect(&server).await;
    client.set_request_timeout(Duration::from_millis(200));
    assert_eq!(client.request_timeout(), Duration::from_millis(200));

    let started = std::time::Instant::now();
    assert!(matches!(
        client.request("never", json!({})).await,
        Err(ClientError::Timeout)
    ));
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(client.pending_requests(), 0);

    // A cancelled request does not leak its entry either.
    let cancelled = tokio::time::timeout(
        Duration::from_millis(50),
        client.request("never", json!({})),
    )
    .await;
    assert!(cancelled.is_err());
    assert_eq!(client.pending_requests(), 0);

    assert!(client.is_connected());
    assert_eq!(client.request("echo", json!(2)).await.unwrap(), json!(2));
}

// ---------------------------------------------------------------- notifications

#[tokio::test]
async fn notifications_are_buffered_by_name() {
    let server = start_server(None).await;
    let client = connect(&server).await;

    client.request("notify", json!({})).await.unwrap();
    assert_eq!(
        client.next_event("target", WAIT).await.unwrap(),
        json!({"x": 1})
    );
    assert_eq!(
        client.next_event("other", WAIT).await.unwrap(),
        json!({"i": 0})
    );
    let rest = client.drain_events();
    assert_eq!(
        rest,
        vec![
            ("other".to_owned(), json!({"i": 1})),
            ("other".to_owned(), json!({"i": 2})),
            ("other".to_owned(), json!({"i": 3})),
        ]
    );
    assert!(client.drain_events().is_empty());
    assert!(matches!(
        client
            .next_event("target", Duration::from_millis(100))
            .await,
        Err(ClientError::Timeout)
    ));

    // A waiter started before the notification is woken by it.
    let mut waiter = std::pin::pin!(client.next_event("noted", WAIT));
    assert!(started_waiting(waiter.as_mut()), "nothing to take yet");
    client.emit("note", json!({"n": 42})).await.unwrap();
    assert_eq!(waiter.await.unwrap(), json!({"n": 42}));

    // send_raw sends the frame as is.
    client
        .send_raw(r#"42["note",{"raw":true}]"#.to_owned())
        .await
        .unwrap();
    assert_eq!(
        client.next_event("noted", WAIT).await.unwrap(),
        json!({"raw": true})
    );
}

#[tokio::test]
async fn event_buffer_is_bounded() {
    let server = start_server(None).await;
    let client = connect(&server).await;
    client.set_event_buffer_capacity(2);
    client.request("notify", json!({})).await.unwrap();
    // Five notifications arrived; only the last two are kept.
    client.request("echo", json!({})).await.unwrap();
    assert_eq!(client.dropped_events(), 3);
    assert_eq!(
        client.drain_events(),
        vec![
            ("target".to_owned(), json!({"x": 1})),
            ("other".to_owned(), json!({"i": 3}))
        ]
    );
}

#[tokio::test]
async fn expect_no_event_only_addressee_receives() {
    let server = start_server(None).await;
    let a = connect(&server).await;
    let b = connect(&server).await;

    a.request("broadcast", json!({"from": "a"})).await.unwrap();
    assert_eq!(
        b.next_event("hello", WAIT).await.unwrap(),
        json!({"from": "a"})
    );
    a.expect_no_event("hello", Duration::from_millis(200))
        .await
        .unwrap();

    // Already buffered: detected without waiting.
    a.request("broadcast", json!({"from": "a", "n": 2}))
        .await
        .unwrap();
    // The server sent it before answering this, on the same connection.
    b.request("echo", json!({})).await.unwrap();
    match b.expect_no_event("hello", Duration::from_millis(10)).await {
        Err(ClientError::Unexpected(payload)) => assert_eq!(payload, json!({"from": "a", "n": 2})),
        other => panic!("expected Unexpected, got {other:?}"),
    }

    // Arriving while waiting.
    let mut watcher = std::pin::pin!(b.expect_no_event("hello", WAIT));
    assert!(started_waiting(watcher.as_mut()), "nothing buffered");
    a.request("broadcast", json!({"n": 3})).await.unwrap();
    assert!(matches!(watcher.await, Err(ClientError::Unexpected(_))));
}

// ---------------------------------------------------------------- disconnection

#[tokio::test]
async fn server_side_disconnect_is_detected() {
    let mut server = start_server(None).await;
    let client = connect(&server).await;
    client.request("kick", json!({})).await.unwrap();
    assert!(client.wait_disconnected(WAIT).await);
    assert!(!client.is_connected());
    assert!(matches!(
        client.request("echo", json!({})).await,
        Err(ClientError::Disconnected)
    ));
    assert!(matches!(
        client.emit("echo", json!({})).await,
        Err(ClientError::Disconnected)
    ));
    assert!(matches!(
        client.next_event("x", WAIT).await,
        Err(ClientError::Disconnected)
    ));
    let (sid, reason) = server.next_disconnect().await;
    assert_eq!(sid, client.sid());
    assert_eq!(reason, DisconnectReason::ServerNSDisconnect);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_requests_fail_when_the_connection_ends() {
    let server = start_server(None).await;
    let client = connect(&server).await;
    let waiting: Vec<_> = (0..5)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.request("never", json!({})).await })
        })
        .collect();
    wait_until(WAIT, "five requests pending", async || {
        client.pending_requests() == 5
    })
    .await;
    let started = std::time::Instant::now();
    let kick = client.request("kick-unanswered", json!({})).await;
    assert!(matches!(kick, Err(ClientError::Disconnected)), "{kick:?}");
    for task in waiting {
        assert!(matches!(
            task.await.unwrap(),
            Err(ClientError::Disconnected)
        ));
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(client.pending_requests(), 0);
    // The buffered notifications stay readable after the end.
    assert!(client.drain_events().is_empty());
}

#[tokio::test]
async fn client_disconnect_is_a_namespace_leave() {
    let mut server = start_server(None).await;
    let client = connect(&server).await;
    let sid = client.sid().to_owned();
    let clone = client.clone();
    client.disconnect().await;
    assert!(!clone.is_connected());
    assert_eq!(
        server.next_disconnect().await,
        (sid, DisconnectReason::ClientNSDisconnect)
    );
}

#[tokio::test]
async fn drop_connection_is_seen_by_the_server() {
    let mut server = start_server(None).await;
    let client = connect(&server).await;
    let sid = client.sid().to_owned();
    client.drop_connection().await;
    let (seen, reason) = server.next_disconnect().await;
    assert_eq!(seen, sid);
    assert!(
        matches!(
            reason,
            DisconnectReason::TransportError | DisconnectReason::TransportClose
        ),
        "unexpected reason {reason:?}"
    );
}

#[tokio::test]
async fn dropping_the_last_handle_leaves_politely() {
    let mut server = start_server(None).await;
    let client = connect(&server).await;
    let sid = client.sid().to_owned();
    let clone = client.clone();
    drop(client);
    assert!(clone.request("echo", json!(1)).await.is_ok());
    drop(clone);
    assert_eq!(
        server.next_disconnect().await,
        (sid, DisconnectReason::ClientNSDisconnect)
    );
}

#[tokio::test]
async fn heartbeat_keeps_the_connection_alive() {
    let mut server = start_server(Some((
        Duration::from_millis(150),
        Duration::from_millis(300),
    )))
    .await;
    let client = connect(&server).await;
    // About six pings, each answered: a missed one would end the connection.
    assert!(
        !client.wait_disconnected(Duration::from_millis(1000)).await,
        "the connection outlives six heartbeats"
    );
    assert_eq!(
        client.request("echo", json!("alive")).await.unwrap(),
        json!("alive")
    );
    assert!(
        server.disconnects.try_recv().is_err(),
        "the server dropped us"
    );
}

// ---------------------------------------------------------------- fake engine.io server

/// Accepts one websocket, does the handshake with the given ping settings, then runs `script`.
async fn fake_server<F, Fut>(ping_interval: u64, ping_timeout: u64, script: F) -> String
where
    F: FnOnce(tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        let open = json!({"sid": "eio", "upgrades": [], "pingInterval": ping_interval, "pingTimeout": ping_timeout, "maxPayload": 1000});
        ws.send(Message::text(format!("0{open}"))).await.unwrap();
        let connect = ws.next().await.unwrap().unwrap();
        assert_eq!(connect.to_text().unwrap(), r#"40{"token":"t"}"#);
        ws.send(Message::text(r#"40{"sid":"fake-sid"}"#))
            .await
            .unwrap();
        script(ws).await;
    });
    url
}

async fn next_text(ws: &mut tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>) -> String {
    let frame = tokio::time::timeout(WAIT, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    frame.into_text().unwrap().as_str().to_owned()
}

#[tokio::test]
async fn pong_then_heartbeat_lost() {
    let (pong_tx, mut pong_rx) = mpsc::unbounded_channel();
    let url = fake_server(300, 200, async move |mut ws| {
        ws.send(Message::text("2")).await.unwrap();
        pong_tx.send(next_text(&mut ws).await).unwrap();
        // Then silence: no more pings.
        std::future::pending::<()>().await;
    })
    .await;
    let client = SocketIoClient::connect(&url, Some("t")).await.unwrap();
    assert_eq!(client.sid(), "fake-sid");
    assert_eq!(pong_rx.recv().await.unwrap(), "3");
    let waiting = {
        let client = client.clone();
        tokio::spawn(async move { client.request("x", json!({})).await })
    };
    let started = std::time::Instant::now();
    assert!(client.wait_disconnected(WAIT).await);
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(matches!(
        waiting.await.unwrap(),
        Err(ClientError::Disconnected)
    ));
}

#[tokio::test]
async fn garbage_is_ignored_and_engine_io_close_disconnects() {
    let url = fake_server(25_000, 20_000, async move |mut ws| {
        let request = next_text(&mut ws).await;
        assert_eq!(request, r#"420["ask",{"q":1}]"#);
        for garbage in [
            "",
            "x",
            "4",
            "4x",
            "42",
            "42[",
            "42[1]",
            "43",
            "43[]",
            "4399[1]",
            "45-[]",
            "6",
            "3",
            "42/other,[\"a\"]",
        ] {
            ws.send(Message::text(garbage)).await.unwrap();
        }
        ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
        ws.send(Message::text(r#"42["evt",{"a":1},{"b":2}]"#))
            .await
            .unwrap();
        ws.send(Message::text(r#"42["bare"]"#)).await.unwrap();
        ws.send(Message::text(r#"430[{"ok":true,"data":"answer"}]"#))
            .await
            .unwrap();
        // The next request is answered with an empty ack.
        let request = next_text(&mut ws).await;
        assert_eq!(request, r#"421["ask"]"#);
        ws.send(Message::text("431[]")).await.unwrap();
        let _ = next_text(&mut ws).await;
        ws.send(Message::text("1")).await.unwrap();
        // Keeps the socket open: the client must close on the Engine.IO close.
        std::future::pending::<()>().await;
    })
    .await;
    let client = SocketIoClient::connect(&url, Some("t")).await.unwrap();
    assert_eq!(
        client.request("ask", json!({"q": 1})).await.unwrap(),
        json!("answer")
    );
    assert!(client.is_connected());
    assert_eq!(
        client.next_event("evt", WAIT).await.unwrap(),
        json!({"a": 1})
    );
    assert_eq!(client.next_event("bare", WAIT).await.unwrap(), Value::Null);
    assert!(client.drain_events().is_empty());
    assert!(matches!(
        client.request_raw("ask", vec![]).await,
        Err(ClientError::Protocol(_))
    ));
    client.emit("bye", json!({})).await.unwrap();
    assert!(client.wait_disconnected(WAIT).await);
}
