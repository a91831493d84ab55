//! Socket.IO signalling (DESIGN §3) on the HTTP port, at `/socket.io/`.
//!
//! This layer turns socket events into calls on the room logic
//! ([`RoomHub`]) and acknowledgements into the `{ ok, data | error }`
//! envelope, and writes the bus's deliveries to sockets. It checks who is
//! connected (the access token of the handshake), what they send (shape and
//! size), and how often (a per-connection event budget). It holds no room
//! state of its own.

mod handlers;
pub mod protocol;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{SocketRef, State, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::layer::SocketIoLayer;
use tokio::sync::mpsc;

use crate::auth::rate_limit::RateLimiter;
use crate::bus::Delivery;
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

/// The error of a refused handshake; its text is what the client's
/// `connect_error` carries.
#[derive(Debug)]
struct Unauthorized;

impl std::fmt::Display for Unauthorized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("unauthorized")
    }
}

#[derive(Deserialize)]
struct HandshakeAuth {
    token: String,
}

async fn authenticate<A: Adapter>(
    s: SocketRef<A>,
    State(sig): State<Signalling>,
    TryData(auth): TryData<HandshakeAuth>,
) -> Result<(), Unauthorized> {
    let token = auth.map_err(|_| Unauthorized)?.token;
    sig.app
        .authenticate(&token)
        .await
        .map_err(|_| Unauthorized)?;
    let per_second = sig.limits.events_per_second.max(1);
    s.extensions.insert(Arc::new(Conn {
        token,
        rooms: Mutex::new(HashSet::new()),
        // Twice the per-second rate as a burst, refilled over two seconds.
        budget: RateLimiter::new(per_second * 2, Duration::from_secs(2)),
    }));
    handlers::register(&s);
    sig.app
        .metrics
        .signalling_connections
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}

async fn on_connect<A: Adapter>(s: SocketRef<A>) {
    tracing::debug!(sid = %s.id, "signalling connection");
}

/// Builds the Socket.IO layer and starts the task that writes bus
/// deliveries to sockets.
pub fn layer(app: AppState, limits: SignalLimits) -> (SocketIoLayer, SocketIo) {
    let sig = Signalling {
        app: app.clone(),
        limits: Arc::new(limits.clone()),
    };
    let (layer, io) = SocketIo::builder()
        .ping_interval(limits.ping_interval)
        .ping_timeout(limits.ping_timeout)
        // Frames beyond this close the connection; events between
        // `max_event_bytes` and this get a `bad_request` and stay connected.
        .ws_max_message_size(limits.max_event_bytes.saturating_mul(4).max(1024 * 1024))
        .max_payload(u64::try_from(limits.max_event_bytes.saturating_mul(4)).unwrap_or(u64::MAX))
        // Signalling messages are small; a smaller read buffer is memory kept
        // per idle connection.
        .ws_read_buffer_size(2048)
        .with_state(sig)
        .build_layer();
    io.ns("/", on_connect.with(authenticate));
    tokio::spawn(deliver(io.clone(), app.bus.subscribe()));
    (layer, io)
}

/// Writes each delivery to the sockets it names that live on this node.
async fn deliver<A: Adapter>(io: SocketIo<A>, mut deliveries: mpsc::UnboundedReceiver<Delivery>) {
    while let Some(delivery) = deliveries.recv().await {
        for conn in &delivery.conns {
            let Some(socket) = conn.parse().ok().and_then(|sid| io.get_socket(sid)) else {
                continue;
            };
            if let Err(e) = socket.emit(delivery.event, &delivery.payload) {
                tracing::debug!(conn, event = delivery.event, error = %e, "delivery dropped");
            }
        }
    }
}
