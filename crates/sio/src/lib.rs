//! A lean Socket.IO server: Engine.IO v4 (long-polling handshake, websocket
//! upgrade, plain websocket) and Socket.IO v5 on the default namespace, as
//! an axum route ([`router`]) that serves any [`Handler`].
//!
//! What it does: the Engine.IO handshake and session ids, heartbeats
//! (`pingInterval`/`pingTimeout`), `maxPayload`, the polling and websocket
//! transports and the upgrade between them, RFC 6455 frames ([`ws`]), the
//! Socket.IO packets ([`packet`]): namespace `CONNECT` with `auth` and
//! `connect_error`, events with acknowledgements, namespace disconnect.
//! Limits: [`Config::max_sessions`] sessions, a namespace connection within
//! [`Config::connect_timeout`], at most 1024 messages or 1 MiB waiting for a
//! client that does not read (it is disconnected rather than buffered for),
//! and a write that the client does not take within the ping timeout ends
//! the connection.
//!
//! What it does not know: who the clients are, what events mean, rooms,
//! accounts, tokens or storage. All of that is the [`Handler`]'s: it
//! authenticates the `CONNECT` (its `auth` payload arrives as JSON), answers
//! events (the answer is the acknowledgement), and learns of disconnections;
//! [`Engine::emit`] sends an event to a socket by id. Not supported: other
//! namespaces (refused with `connect_error`), binary attachments (answered
//! with [`Handler::refuse`]), server-side acknowledgement requests, rooms
//! and broadcasts (the caller keeps its own lists of socket ids).
//!
//! Why not socketioxide: VTP holds thousands of idle signalling connections,
//! and socketioxide spends about 28 KiB on each (several tasks and channels
//! per socket, tungstenite's buffers). Here a websocket connection is one
//! task that owns its stream, a [`Session`] with an outbox (a `VecDeque`
//! behind the session's lock, woken by a `Notify`) and buffers that exist
//! only while a message is read or written. A long-polling session has one
//! small task for its heartbeat until it upgrades.

mod error;
pub mod packet;
mod transport;

pub use error::SioError;
pub use transport::router;
pub mod ws;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::Notify;

use packet::{EioIn, SioIn};

/// The protocol settings of an engine.
#[derive(Clone, Debug)]
pub struct Config {
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    /// Largest Engine.IO message or polling payload, in bytes; bigger ones
    /// close the connection.
    pub max_payload: usize,
    /// Time a client has to connect the namespace after the handshake.
    pub connect_timeout: Duration,
    /// Engine.IO sessions at most (websocket and polling); handshakes
    /// beyond are refused.
    pub max_sessions: usize,
}

/// Messages waiting for a slow client at most, and their bytes: beyond
/// either, the client is disconnected rather than buffered for.
const MAX_QUEUED: usize = 1024;
const MAX_QUEUED_BYTES: usize = 1024 * 1024;

/// What a connection's events do.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// What the handler keeps per connected socket.
    type Conn: Send + Sync + 'static;
    /// A namespace `CONNECT` with its `auth`; `Err` is the message of the
    /// `connect_error` sent back.
    async fn connect(&self, socket_id: &str, auth: Option<Value>) -> Result<Self::Conn, String>;
    /// An event; the value returned is its acknowledgement (sent if the
    /// client asked for one). `len` is the size of the packet's JSON.
    async fn event(
        &self,
        socket: &Socket<Self::Conn>,
        name: String,
        data: Value,
        len: usize,
    ) -> Value;
    /// The acknowledgement of an event that cannot be handled (`message` says why).
    fn refuse(&self, message: &str) -> Value;
    /// The socket is gone (namespace disconnect, or the connection closed).
    async fn disconnect(&self, socket: &Socket<Self::Conn>, reason: &'static str);
}

/// A socket connected to the default namespace.
pub struct Socket<C> {
    /// The Socket.IO id (not the Engine.IO session id, which authorises
    /// polling requests and so is never shown to other clients).
    pub id: String,
    pub conn: C,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Transport {
    Polling,
    /// A websocket answered the probe; polling requests get `noop`.
    Upgrading,
    Websocket,
}

/// One Engine.IO session.
pub struct Session<C> {
    eio_sid: String,
    created: Instant,
    state: Mutex<State<C>>,
    /// Something to write (outbox, close, upgrade): wakes the writer (the
    /// websocket task or the waiting polling request).
    wake: Notify,
    /// Closed or upgraded: wakes the polling heartbeat task.
    ended: Notify,
    /// A pong arrived by polling.
    pong: Notify,
}

struct State<C> {
    outbox: VecDeque<String>,
    queued_bytes: usize,
    socket: Option<Arc<Socket<C>>>,
    transport: Transport,
    closed: Option<&'static str>,
    /// A polling `GET` is waiting (only one may).
    polling: bool,
}

impl<C> Session<C> {
    fn new(transport: Transport) -> Arc<Self> {
        Arc::new(Session {
            eio_sid: random_id(),
            created: Instant::now(),
            state: Mutex::new(State {
                outbox: VecDeque::new(),
                queued_bytes: 0,
                socket: None,
                transport,
                closed: None,
                polling: false,
            }),
            wake: Notify::new(),
            ended: Notify::new(),
            pong: Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State<C>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a packet; a client too slow to take it is disconnected.
    fn push(&self, text: String) {
        let mut state = self.lock();
        if state.closed.is_some() {
            return;
        }
        if state.outbox.len() >= MAX_QUEUED || state.queued_bytes + text.len() > MAX_QUEUED_BYTES {
            tracing::debug!(sid = %self.eio_sid, "client too slow: closing");
            state.closed = Some("client too slow");
            state.outbox = VecDeque::new();
            drop(state);
            self.ended.notify_one();
        } else {
            state.queued_bytes += text.len();
            state.outbox.push_back(text);
        }
        self.wake.notify_one();
    }

    /// Everything queued, and whether the session is closing.
    fn take(&self) -> (VecDeque<String>, Option<&'static str>) {
        let mut state = self.lock();
        state.queued_bytes = 0;
        (std::mem::take(&mut state.outbox), state.closed)
    }

    fn close(&self, reason: &'static str) {
        let mut state = self.lock();
        if state.closed.is_none() {
            state.closed = Some(reason);
        }
        drop(state);
        self.wake.notify_one();
        self.ended.notify_one();
    }

    fn is_connected(&self) -> bool {
        self.lock().socket.is_some()
    }
}

/// What the transport does after a client packet.
enum Flow {
    Continue,
    Pong,
    Probe,
    Upgrade,
    Close,
    /// Not a packet of the protocol: the connection is closed.
    Malformed,
}

/// The sessions of one server and their handler.
pub struct Engine<H: Handler> {
    handler: H,
    config: Config,
    /// By Engine.IO session id.
    sessions: Mutex<HashMap<String, Arc<Session<H::Conn>>>>,
    /// Connected sockets, by Socket.IO id.
    sockets: Mutex<HashMap<String, Arc<Session<H::Conn>>>>,
}

impl<H: Handler> Engine<H> {
    pub fn new(handler: H, config: Config) -> Arc<Self> {
        Arc::new(Engine {
            handler,
            config,
            sessions: Mutex::new(HashMap::new()),
            sockets: Mutex::new(HashMap::new()),
        })
    }

    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// Sends an event to a connected socket; `false` if there is none with
    /// that id.
    pub fn emit(&self, socket_id: &str, event: &str, payload: &Value) -> bool {
        let session = lock(&self.sockets).get(socket_id).cloned();
        match session {
            Some(session) => {
                session.push(packet::event(event, payload));
                true
            }
            None => false,
        }
    }

    /// Disconnects a socket from the server's side: what is queued for it
    /// goes out first, then a namespace disconnect (`41`, which tells
    /// socket.io-client not to reconnect by itself) and the close. `false`
    /// if there is no socket with that id.
    pub fn disconnect(&self, socket_id: &str, reason: &'static str) -> bool {
        let session = lock(&self.sockets).get(socket_id).cloned();
        match session {
            Some(session) => {
                session.push("41".to_string());
                session.close(reason);
                true
            }
            None => false,
        }
    }

    /// Open Engine.IO sessions.
    pub fn session_count(&self) -> usize {
        lock(&self.sessions).len()
    }

    /// Closes every session and waits (at most `wait`) for them to finish.
    pub async fn close_all(&self, wait: Duration) {
        let sessions: Vec<_> = lock(&self.sessions).values().cloned().collect();
        for session in sessions {
            session.close("server shutting down");
        }
        let deadline = Instant::now() + wait;
        while self.session_count() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Records a new session; `false` (and not recorded) when there are
    /// already as many as allowed.
    fn register(&self, session: &Arc<Session<H::Conn>>) -> bool {
        let mut sessions = lock(&self.sessions);
        if sessions.len() >= self.config.max_sessions {
            tracing::warn!("socket.io session limit reached: handshake refused");
            return false;
        }
        sessions.insert(session.eio_sid.clone(), session.clone());
        true
    }

    fn session(&self, eio_sid: &str) -> Option<Arc<Session<H::Conn>>> {
        lock(&self.sessions).get(eio_sid).cloned()
    }

    /// `0{…}`: the Engine.IO open packet.
    fn open_packet(&self, session: &Session<H::Conn>, upgrades: bool) -> String {
        let open = serde_json::json!({
            "sid": session.eio_sid,
            "upgrades": if upgrades { vec!["websocket"] } else { Vec::new() },
            "pingInterval": self.config.ping_interval.as_millis() as u64,
            "pingTimeout": self.config.ping_timeout.as_millis() as u64,
            "maxPayload": self.config.max_payload,
        });
        format!("0{open}")
    }

    /// Handles one Engine.IO packet from the client.
    async fn on_packet(self: &Arc<Self>, session: &Arc<Session<H::Conn>>, text: &str) -> Flow {
        let packet = match packet::parse_eio(text) {
            Ok(packet) => packet,
            Err(e) => {
                tracing::debug!(sid = %session.eio_sid, error = %e, "malformed packet: closing");
                return Flow::Malformed;
            }
        };
        match packet {
            EioIn::Close => Flow::Close,
            EioIn::Pong(_) => Flow::Pong,
            EioIn::Ping("probe") => Flow::Probe,
            EioIn::Upgrade => Flow::Upgrade,
            EioIn::Ping(_) | EioIn::Noop => Flow::Continue,
            EioIn::Message(message) => match packet::parse_sio(message) {
                Ok(packet) => {
                    self.on_socket_packet(session, packet).await;
                    Flow::Continue
                }
                Err(e) => {
                    tracing::debug!(sid = %session.eio_sid, error = %e, "malformed socket.io packet: closing");
                    Flow::Malformed
                }
            },
        }
    }

    async fn on_socket_packet(
        self: &Arc<Self>,
        session: &Arc<Session<H::Conn>>,
        packet: SioIn<'_>,
    ) {
        match packet {
            SioIn::Connect { nsp, .. } if nsp != "/" => {
                session.push(packet::connect_error(nsp, "Invalid namespace"));
            }
            SioIn::Connect { auth, .. } => {
                if let Some(socket) = session.lock().socket.clone() {
                    session.push(packet::connected(&socket.id));
                    return;
                }
                let id = random_id();
                match self.handler.connect(&id, auth).await {
                    Ok(conn) => {
                        let socket = Arc::new(Socket { id, conn });
                        // Attached under the session's lock, unless the session
                        // closed (or connected by a concurrent request) while
                        // the handler worked: `finish` must see every socket.
                        let attached = {
                            let mut state = session.lock();
                            let free = state.closed.is_none() && state.socket.is_none();
                            if free {
                                state.socket = Some(socket.clone());
                                lock(&self.sockets).insert(socket.id.clone(), session.clone());
                            }
                            free
                        };
                        if attached {
                            session.push(packet::connected(&socket.id));
                        } else {
                            self.handler.disconnect(&socket, "session closed").await;
                        }
                    }
                    Err(message) => session.push(packet::connect_error("/", &message)),
                }
            }
            SioIn::Disconnect { nsp: "/" } => {
                let socket = session.lock().socket.take();
                if let Some(socket) = socket {
                    self.socket_gone(&socket, "client namespace disconnect")
                        .await;
                }
            }
            SioIn::Event {
                nsp: "/",
                ack,
                name,
                data,
                len,
            } => {
                let Some(socket) = session.lock().socket.clone() else {
                    return;
                };
                // Events run concurrently, as Socket.IO servers do: a slow
                // request does not hold the connection's heartbeat.
                let engine = self.clone();
                let session = session.clone();
                tokio::spawn(async move {
                    let answer = engine.handler.event(&socket, name, data, len).await;
                    if let Some(id) = ack {
                        session.push(packet::ack(id, &answer));
                    }
                });
            }
            SioIn::Binary {
                nsp: "/",
                ack: Some(id),
            } => {
                let answer = self.handler.refuse("binary attachments are not supported");
                session.push(packet::ack(id, &answer));
            }
            // Other namespaces are never connected; client acks are never asked.
            _ => {}
        }
    }

    async fn socket_gone(&self, socket: &Arc<Socket<H::Conn>>, reason: &'static str) {
        lock(&self.sockets).remove(&socket.id);
        self.handler.disconnect(socket, reason).await;
    }

    /// The end of a session: forgets it and disconnects its socket.
    async fn finish(&self, session: &Arc<Session<H::Conn>>) {
        lock(&self.sessions).remove(&session.eio_sid);
        let (socket, reason) = {
            let mut state = session.lock();
            let reason = *state.closed.get_or_insert("transport close");
            state.outbox = VecDeque::new();
            (state.socket.take(), reason)
        };
        tracing::debug!(sid = %session.eio_sid, reason, "engine.io session closed");
        if let Some(socket) = socket {
            self.socket_gone(&socket, reason).await;
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// 20 URL-safe characters from 120 random bits.
fn random_id() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 15]>())
}
