//! Socket.IO signalling (docs/protocol.md) on the HTTP port, at `/socket.io/`.
//!
//! This layer turns socket events into calls on the room logic
//! ([`RoomHub`]) and acknowledgements into the `{ ok, data | error }`
//! envelope, and writes the bus's deliveries to sockets. It checks who is
//! connected (the access token of the handshake), what they send (shape and
//! size), and how often (a per-connection event budget). It holds no room
//! state of its own. The transport is the `vtp-sio` crate; this module is
//! its [`sio::Handler`].

mod handlers;
pub mod probe;
pub mod protocol;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::mpsc;
use vtp_sio::{self as sio, Engine, Socket};

use crate::bus::Delivery;
use crate::rate_limit::RateLimiter;
use crate::rooms::SignalError;
use crate::state::AppState;

/// Limits on what one connection may send.
#[derive(Clone, Debug)]
pub struct SignalLimits {
    /// Largest event accepted, in bytes (bigger ones get `bad_request`).
    pub max_event_bytes: usize,
    /// Rooms one connection may be in at once.
    pub max_rooms_per_connection: usize,
    /// Sustained events per second per connection (bursts of twice that).
    pub events_per_second: u32,
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
}

impl Default for SignalLimits {
    fn default() -> Self {
        SignalLimits {
            max_event_bytes: 64 * 1024,
            max_rooms_per_connection: 4,
            events_per_second: 20,
            ping_interval: Duration::from_secs(25),
            ping_timeout: Duration::from_secs(20),
        }
    }
}

/// What the signalling handlers share.
#[derive(Clone)]
pub struct Signalling {
    pub app: AppState,
    pub limits: Arc<SignalLimits>,
    /// Open connectivity checks (`check-connectivity`).
    pub probes: Arc<probe::Probes>,
}

/// Per-connection state, kept in the socket's extensions.
pub struct Conn {
    /// The handshake's access token: checked again at each join, so that an
    /// expired or revoked token cannot join new rooms (it does not cut a call
    /// in progress).
    token: String,
    /// Rooms this connection joined (for the per-connection limit and to
    /// know which places to keep when it drops).
    rooms: Mutex<HashSet<String>>,
    /// Event budget; one key per connection.
    budget: RateLimiter,
}

impl Conn {
    fn rooms(&self) -> Vec<String> {
        self.rooms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }
    fn spend(&self) -> Result<(), u64> {
        self.budget.check("", Instant::now())
    }
}

#[derive(Deserialize)]
struct HandshakeAuth {
    token: String,
}

#[async_trait]
impl sio::Handler for Signalling {
    type Conn = Conn;

    async fn connect(&self, _socket_id: &str, auth: Option<Value>) -> Result<Conn, String> {
        let unauthorized = || "unauthorized".to_string();
        let token = serde_json::from_value::<HandshakeAuth>(auth.ok_or_else(unauthorized)?)
            .map_err(|_| unauthorized())?
            .token;
        self.app
            .authenticate(&token)
            .await
            .map_err(|_| unauthorized())?;
        let per_second = self.limits.events_per_second.max(1);
        self.app
            .metrics
            .signalling_connections
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Conn {
            token,
            rooms: Mutex::new(HashSet::new()),
            // Twice the per-second rate as a burst, refilled over two seconds.
            budget: RateLimiter::new(per_second * 2, Duration::from_secs(2)),
        })
    }

    async fn event(&self, socket: &Socket<Conn>, name: String, data: Value, len: usize) -> Value {
        let started = Instant::now();
        let answer = handlers::dispatch(self, &socket.conn, &socket.id, &name, data, len).await;
        self.app
            .metrics
            .signalling_event(&name, &answer, started.elapsed());
        answer
    }

    fn refuse(&self, message: &str) -> Value {
        protocol::envelope::<protocol::Empty>(Err(SignalError::bad_request(message)))
    }

    async fn disconnect(&self, socket: &Socket<Conn>, reason: &'static str) {
        tracing::debug!(sid = %socket.id, reason, "signalling connection closed");
        self.app
            .metrics
            .signalling_connections
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        self.probes.close(self.app.hub.media(), &socket.id).await;
        self.app
            .hub
            .connection_lost(&socket.id, socket.conn.rooms())
            .await;
    }
}

/// The Socket.IO engine of the signalling layer, with the task that writes
/// bus deliveries to its sockets.
pub type SignalEngine = Arc<Engine<Signalling>>;

/// Builds the Socket.IO engine (route it with [`sio::router`]) and starts
/// the task that writes bus deliveries to sockets.
pub fn engine(app: AppState, limits: SignalLimits, max_sessions: usize) -> SignalEngine {
    let config = sio::Config {
        ping_interval: limits.ping_interval,
        ping_timeout: limits.ping_timeout,
        // Messages beyond this close the connection; events between
        // `max_event_bytes` and this get a `bad_request` and stay connected.
        max_payload: limits.max_event_bytes.saturating_mul(4),
        connect_timeout: Duration::from_secs(45),
        max_sessions,
    };
    let deliveries = app.bus.subscribe();
    let engine = Engine::new(
        Signalling {
            app,
            limits: Arc::new(limits),
            probes: Arc::default(),
        },
        config,
    );
    tokio::spawn(deliver(Arc::downgrade(&engine), deliveries));
    engine
}

/// Writes each delivery to the sockets it names that live on this node.
async fn deliver(
    engine: std::sync::Weak<Engine<Signalling>>,
    mut deliveries: mpsc::UnboundedReceiver<Delivery>,
) {
    while let Some(delivery) = deliveries.recv().await {
        let Some(engine) = engine.upgrade() else {
            return;
        };
        for conn in &delivery.conns {
            if !engine.emit(conn, delivery.event, &delivery.payload) {
                tracing::debug!(
                    conn,
                    event = delivery.event,
                    "delivery dropped: no such socket"
                );
            }
        }
    }
}
