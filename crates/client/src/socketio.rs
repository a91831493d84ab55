//! A small async Socket.IO v4 client (Socket.IO protocol 5 over Engine.IO 4).
//!
//! Only the websocket transport is implemented (no long-polling, no TLS, no
//! binary packets), and only the default namespace `/`. It is written for the
//! integration tests and for a load generator that opens thousands of
//! connections, so each connection costs two tasks and bounded memory:
//!
//! * a **reader task** decodes frames, answers heartbeats (through the writer),
//!   resolves pending acknowledgements and buffers server notifications
//!   (at most [`DEFAULT_EVENT_BUFFER_CAPACITY`] by default, oldest dropped);
//! * a **writer task** owns the websocket sink and sends what the client
//!   queues (a bounded queue of [`OUTGOING_QUEUE_CAPACITY`] frames) and pongs.
//!
//! Requests use ack ids from a per-connection counter. A pending request is
//! removed when it is answered, times out or is cancelled, and every pending
//! request fails with [`ClientError::Disconnected`] when the connection ends.
//!
//! ```no_run
//! # async fn demo() -> Result<(), vtp_client::ClientError> {
//! use std::time::Duration;
//! use vtp_client::SocketIoClient;
//!
//! let client = SocketIoClient::connect("http://127.0.0.1:8080", Some("jwt…")).await?;
//! let joined = client.request("join-room", serde_json::json!({"roomId": "r1"})).await?;
//! let peer = client.next_event("peer-joined", Duration::from_secs(5)).await?;
//! client.disconnect().await;
//! # let _ = (joined, peer); Ok(()) }
//! ```

mod connection;
mod packet;

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout, timeout_at};
use tokio_tungstenite::tungstenite;
use tracing::debug;

use connection::{Outgoing, Shared, lock};

/// Default time a request waits for its acknowledgement.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Time [`SocketIoClient::connect`] waits for the whole handshake (TCP, websocket, open, `40`).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default number of buffered notifications per connection; beyond it the oldest is dropped.
pub const DEFAULT_EVENT_BUFFER_CAPACITY: usize = 10_000;
/// Number of outgoing frames that may wait for the writer task; senders wait beyond it.
pub const OUTGOING_QUEUE_CAPACITY: usize = 256;
/// Largest incoming websocket message accepted (larger ones end the connection).
pub const MAX_INCOMING_MESSAGE: usize = 16 << 20;
/// How long [`SocketIoClient::disconnect`] waits for the close handshake.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Errors of the Socket.IO client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server refused the namespace connection (`44{"message":…}`); holds the message.
    #[error("connection refused: {0}")]
    ConnectRefused(String),
    /// The server answered a request with `{"ok":false,"error":{"code","message"}}`.
    #[error("server error {code}: {message}")]
    Server {
        /// Stable error code, e.g. `bad_request`.
        code: String,
        /// Human-readable message.
        message: String,
    },
    /// No answer in time (request ack, awaited event or handshake).
    #[error("timed out")]
    Timeout,
    /// The connection is closed, or closed while waiting.
    #[error("disconnected")]
    Disconnected,
    /// The server sent something that does not follow the protocol or the ack convention.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A network error (e.g. connection refused by the OS).
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// A websocket error (handshake rejected, frame too large, …).
    #[error("websocket error: {0}")]
    WebSocket(Box<tungstenite::Error>),
    /// [`SocketIoClient::expect_no_event`] saw the event; holds its payload.
    #[error("unexpected event with payload {0}")]
    Unexpected(Value),
}

impl From<tungstenite::Error> for ClientError {
    fn from(e: tungstenite::Error) -> Self {
        match e {
            tungstenite::Error::Io(e) => ClientError::Io(e),
            e => ClientError::WebSocket(Box::new(e)),
        }
    }
}

/// A connected Socket.IO client (default namespace `/`).
///
/// Cloning is cheap and every clone uses the same connection; all methods take
/// `&self`, so requests can run concurrently. The connection is closed politely
/// (`41` and a websocket close) when the last clone is dropped, by
/// [`disconnect`](Self::disconnect), or abruptly by
/// [`drop_connection`](Self::drop_connection).
#[derive(Clone)]
pub struct SocketIoClient {
    conn: Arc<Conn>,
    sid: Arc<str>,
    request_timeout: Duration,
}

/// Shared by the clones of one client; dropping it closes the writer's queue.
struct Conn {
    shared: Arc<Shared>,
    out: mpsc::Sender<Outgoing>,
    tasks: Mutex<Option<(JoinHandle<()>, JoinHandle<()>)>>,
}

impl SocketIoClient {
    /// Connects to `base_url` (like `"http://127.0.0.1:8080"`; `ws://` is accepted too).
    ///
    /// Opens `ws://…/socket.io/?EIO=4&transport=websocket`, reads the Engine.IO
    /// open packet, sends `40{"token":…}` (or `40` when `token` is `None`) and
    /// resolves when the server answers `40{"sid":…}` (`Ok`) or
    /// `44{"message":…}` (`Err(ClientError::ConnectRefused(message))`). The whole
    /// handshake is bounded by [`CONNECT_TIMEOUT`].
    pub async fn connect(
        base_url: &str,
        token: Option<&str>,
    ) -> Result<SocketIoClient, ClientError> {
        let auth = token.map(|t| serde_json::json!({ "token": t }));
        Self::connect_with_auth(base_url, auth).await
    }

    /// Like [`connect`](Self::connect) but with an arbitrary JSON auth payload
    /// (`40<auth>`), e.g. for tests sending wrong types; `None` sends a bare `40`.
    pub async fn connect_with_auth(
        base_url: &str,
        auth: Option<Value>,
    ) -> Result<SocketIoClient, ClientError> {
        let (ws, sid, heartbeat) = timeout(
            CONNECT_TIMEOUT,
            connection::handshake(base_url, auth.as_ref()),
        )
        .await
        .map_err(|_| ClientError::Timeout)??;
        let (shared, out, reader, writer) = connection::start(ws, heartbeat);
        debug!(%sid, "socket.io connected");
        Ok(SocketIoClient {
            conn: Arc::new(Conn {
                shared,
                out,
                tasks: Mutex::new(Some((reader, writer))),
            }),
            sid: sid.into(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        })
    }

    /// The Socket.IO socket id given by the server in `40{"sid":…}`.
    pub fn sid(&self) -> &str {
        &self.sid
    }

    /// Sends `42<id>["event",payload]` and awaits `43<id>[ack]`.
    ///
    /// An ack `{"ok":true,"data":D}` gives `Ok(D)`;
    /// `{"ok":false,"error":{"code","message"}}` gives [`ClientError::Server`];
    /// anything else gives [`ClientError::Protocol`]. Fails with
    /// [`ClientError::Timeout`] after the request timeout (default
    /// [`DEFAULT_REQUEST_TIMEOUT`]) and [`ClientError::Disconnected`] if the
    /// connection is or gets lost.
    pub async fn request(&self, event: &str, payload: Value) -> Result<Value, ClientError> {
        parse_reply(self.request_raw(event, vec![payload]).await?)
    }

    /// Sends `42<id>["event",args…]` with any argument list (zero, one or
    /// several JSON values) and returns the raw first argument of the ack, for
    /// malformed-payload tests. An ack without arguments is a
    /// [`ClientError::Protocol`]; timeouts and disconnection as in
    /// [`request`](Self::request).
    pub async fn request_raw(&self, event: &str, args: Vec<Value>) -> Result<Value, ClientError> {
        let mut ack = self.call(event, args).await?;
        if ack.is_empty() {
            return Err(ClientError::Protocol(format!("empty ack to {event:?}")));
        }
        Ok(ack.swap_remove(0))
    }

    /// Sets the timeout of [`request`](Self::request) and
    /// [`request_raw`](Self::request_raw) for this handle (other clones keep theirs).
    pub fn set_request_timeout(&mut self, timeout: Duration) {
        self.request_timeout = timeout;
    }

    /// The current request timeout of this handle.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// Sends a fire-and-forget event without ack id: `42["event",payload]`.
    pub async fn emit(&self, event: &str, payload: Value) -> Result<(), ClientError> {
        self.send_frame(packet::encode_event(None, event, vec![payload]))
            .await
    }

    /// Sends `frame` as one raw websocket text frame, unchanged (for tests of
    /// oversized or garbage input). It must include the Engine.IO type, e.g. `42[…]`.
    pub async fn send_raw(&self, frame: String) -> Result<(), ClientError> {
        self.send_frame(frame).await
    }

    /// Waits for the next server notification named `event` (`42["event",payload]`
    /// without ack id) and returns its first argument (`Null` if it has none).
    ///
    /// Buffered notifications are searched first, oldest first. Notifications
    /// of other names stay buffered for later calls. Fails with
    /// [`ClientError::Timeout`] after `timeout`, or [`ClientError::Disconnected`]
    /// when the connection is closed and no such notification is buffered.
    pub async fn next_event(&self, event: &str, timeout: Duration) -> Result<Value, ClientError> {
        let shared = &self.conn.shared;
        let deadline = Instant::now() + timeout;
        loop {
            let arrived = shared.event_arrived.notified();
            let mut arrived = std::pin::pin!(arrived);
            arrived.as_mut().enable();
            if let Some(payload) = shared.take_event(event) {
                return Ok(payload);
            }
            if !shared.is_connected() {
                return Err(ClientError::Disconnected);
            }
            timeout_at(deadline, arrived)
                .await
                .map_err(|_| ClientError::Timeout)?;
        }
    }

    /// Returns `Ok(())` if no notification named `event` is buffered or arrives
    /// within `within`; otherwise consumes it and returns
    /// `Err(ClientError::Unexpected(payload))`. Returns `Ok(())` early once the
    /// connection is closed (no notification can arrive any more); check
    /// [`is_connected`](Self::is_connected) separately if that matters.
    pub async fn expect_no_event(&self, event: &str, within: Duration) -> Result<(), ClientError> {
        let shared = &self.conn.shared;
        let deadline = Instant::now() + within;
        loop {
            let arrived = shared.event_arrived.notified();
            let mut arrived = std::pin::pin!(arrived);
            arrived.as_mut().enable();
            if let Some(payload) = shared.take_event(event) {
                return Err(ClientError::Unexpected(payload));
            }
            if !shared.is_connected() || timeout_at(deadline, arrived).await.is_err() {
                return Ok(());
            }
        }
    }

    /// Returns all buffered notifications `(name, first argument)`, oldest first,
    /// and empties the buffer.
    pub fn drain_events(&self) -> Vec<(String, Value)> {
        lock(&self.conn.shared.events).queue.drain(..).collect()
    }

    /// Number of notifications dropped so far because the buffer was full.
    pub fn dropped_events(&self) -> u64 {
        lock(&self.conn.shared.events).dropped
    }

    /// Sets how many notifications the connection buffers (at least 1, default
    /// [`DEFAULT_EVENT_BUFFER_CAPACITY`]); shared by all clones. Excess
    /// notifications, oldest first, are dropped immediately.
    pub fn set_event_buffer_capacity(&self, capacity: usize) {
        let mut events = lock(&self.conn.shared.events);
        events.capacity = capacity.max(1);
        while events.queue.len() > events.capacity {
            events.queue.pop_front();
            events.dropped += 1;
        }
    }

    /// Number of requests currently waiting for their ack (for diagnostics).
    pub fn pending_requests(&self) -> usize {
        lock(&self.conn.shared.pending).acks.len()
    }

    /// Whether the connection is still up: false once the server closed it
    /// (Engine.IO `1`, Socket.IO `41`, websocket close or error), the heartbeat
    /// was lost (no ping within pingInterval + pingTimeout), or we closed it.
    pub fn is_connected(&self) -> bool {
        self.conn.shared.is_connected()
    }

    /// Waits until the connection is closed, at most `timeout`; returns true if it is closed.
    pub async fn wait_disconnected(&self, timeout: Duration) -> bool {
        let mut connected = self.conn.shared.connected.subscribe();
        matches!(
            tokio::time::timeout(timeout, connected.wait_for(|c| !*c)).await,
            Ok(Ok(_))
        )
    }

    /// Leaves the namespace (`41`), closes the websocket and waits (briefly) for
    /// the close handshake. Other clones of this client are disconnected too.
    pub async fn disconnect(self) {
        let conn = &self.conn;
        if conn.shared.is_connected() {
            let _ = timeout(CLOSE_GRACE, async {
                conn.out.send(Outgoing::Text("41".to_owned())).await.ok();
                conn.out.send(Outgoing::Close).await.ok();
            })
            .await;
        }
        let tasks = lock(&conn.tasks).take();
        if let Some((mut reader, mut writer)) = tasks {
            if timeout(CLOSE_GRACE, &mut writer).await.is_err() {
                writer.abort();
            }
            if timeout(CLOSE_GRACE, &mut reader).await.is_err() {
                reader.abort();
            }
        }
        conn.shared.shutdown();
    }

    /// Closes the TCP connection abruptly, without `41` nor a websocket close
    /// frame (simulates a dropped network or a closed tab). Other clones of this
    /// client are disconnected too.
    pub async fn drop_connection(self) {
        let tasks = lock(&self.conn.tasks).take();
        if let Some((reader, writer)) = tasks {
            reader.abort();
            writer.abort();
            // Both halves of the websocket are dropped once the tasks are gone.
            let _ = reader.await;
            let _ = writer.await;
        }
        self.conn.shared.shutdown();
    }

    /// Sends an event with a fresh ack id and waits for the ack's arguments.
    async fn call(&self, event: &str, args: Vec<Value>) -> Result<Vec<Value>, ClientError> {
        let shared = &self.conn.shared;
        let id = shared.next_ack_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = lock(&shared.pending);
            if pending.closed {
                return Err(ClientError::Disconnected);
            }
            pending.acks.insert(id, tx);
        }
        // Removes the entry on timeout, error or cancellation of this future.
        let _guard = PendingGuard { shared, id };
        let frame = packet::encode_event(Some(id), event, args);
        let exchange = async {
            self.conn
                .out
                .send(Outgoing::Text(frame))
                .await
                .map_err(|_| ClientError::Disconnected)?;
            rx.await.map_err(|_| ClientError::Disconnected)
        };
        timeout(self.request_timeout, exchange)
            .await
            .map_err(|_| ClientError::Timeout)?
    }

    /// Queues one text frame for the writer, waiting at most the request timeout for room.
    async fn send_frame(&self, frame: String) -> Result<(), ClientError> {
        if !self.is_connected() {
            return Err(ClientError::Disconnected);
        }
        timeout(
            self.request_timeout,
            self.conn.out.send(Outgoing::Text(frame)),
        )
        .await
        .map_err(|_| ClientError::Timeout)?
        .map_err(|_| ClientError::Disconnected)
    }
}

impl fmt::Debug for SocketIoClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SocketIoClient")
            .field("sid", &self.sid)
            .field("connected", &self.is_connected())
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

struct PendingGuard<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        lock(&self.shared.pending).acks.remove(&self.id);
    }
}

/// Maps a VTP acknowledgement (`{ok,data}` / `{ok,error}`) to a result.
fn parse_reply(ack: Value) -> Result<Value, ClientError> {
    let Value::Object(mut map) = ack else {
        return Err(ClientError::Protocol(format!(
            "ack is not an object: {ack}"
        )));
    };
    match map.get("ok") {
        Some(Value::Bool(true)) => match map.remove("data") {
            Some(data) => Ok(data),
            None => Err(ClientError::Protocol(format!(
                "ok ack without data: {}",
                Value::Object(map)
            ))),
        },
        Some(Value::Bool(false)) => {
            let error = map.get("error");
            let field = |name: &str| {
                error
                    .and_then(|e| e.get(name))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            };
            match (field("code"), field("message")) {
                (Some(code), Some(message)) => Err(ClientError::Server { code, message }),
                _ => Err(ClientError::Protocol(format!(
                    "malformed error ack: {}",
                    Value::Object(map)
                ))),
            }
        }
        _ => Err(ClientError::Protocol(format!(
            "ack without boolean ok: {}",
            Value::Object(map)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn replies() {
        assert_eq!(
            parse_reply(json!({"ok":true,"data":{"a":1}})).unwrap(),
            json!({"a":1})
        );
        assert_eq!(
            parse_reply(json!({"ok":true,"data":null})).unwrap(),
            Value::Null
        );
        match parse_reply(json!({"ok":false,"error":{"code":"forbidden","message":"no"}})) {
            Err(ClientError::Server { code, message }) => {
                assert_eq!((code.as_str(), message.as_str()), ("forbidden", "no"))
            }
            other => panic!("{other:?}"),
        }
        for bad in [
            json!("x"),
            json!([1]),
            json!({"ok":true}),
            json!({"ok":"yes","data":{}}),
            json!({"ok":false}),
            json!({"ok":false,"error":{"code":1,"message":"m"}}),
        ] {
            assert!(
                matches!(parse_reply(bad.clone()), Err(ClientError::Protocol(_))),
                "{bad}"
            );
        }
    }
}
