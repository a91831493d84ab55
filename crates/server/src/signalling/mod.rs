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
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::mpsc;
use vtp_sio::{self as sio, Engine, Socket};

use crate::bus::Delivery;
use crate::rate_limit::RateLimiter;
use crate::rooms::{SESSION_REVOKED, SignalCode, SignalError};
use crate::state::AppState;
use vtp_store::StoreError;

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
    /// Who connected, at which token epoch, and the account's generation
    /// (`auth::watch`) when it was last checked: see [`Signalling::standing`].
    user_id: uuid::Uuid,
    token_epoch: i64,
    generation: AtomicU64,
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
        // The account's generation is read before the account itself: a
        // change in between is then seen at the first event.
        let claims = self
            .app
            .tokens
            .verify_access(&token)
            .ok_or_else(unauthorized)?;
        let generation = self.app.accounts.generation(claims.sub);
        let user = self
            .app
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
            user_id: user.id,
            token_epoch: user.token_epoch,
            generation: AtomicU64::new(generation),
            rooms: Mutex::new(HashSet::new()),
            // Twice the per-second rate as a burst, refilled over two seconds.
            budget: RateLimiter::new(per_second * 2, Duration::from_secs(2)),
        })
    }

    async fn event(&self, socket: &Socket<Conn>, name: String, data: Value, len: usize) -> Value {
        if let Err(e) = self.standing(&socket.conn).await {
            // The session is over: say why and disconnect (`deliver`).
            self.app.bus.publish(Delivery {
                conns: vec![socket.id.clone()],
                event: SESSION_REVOKED,
                payload: serde_json::json!({ "reason": e.message }),
            });
            return protocol::envelope::<protocol::Empty>(Err(e));
        }
        handlers::dispatch(self, &socket.conn, &socket.id, &name, data, len).await
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

impl Signalling {
    /// Whether the connection's account still stands as it did: checked
    /// against the store only when an administrator changed the account
    /// since the last check (`auth::watch`), so a disabled, deleted or
    /// signed-out-everywhere account's socket can do nothing more, even
    /// with its handshake's identity cached here.
    async fn standing(&self, conn: &Conn) -> Result<(), SignalError> {
        let now = self.app.accounts.generation(conn.user_id);
        if now == conn.generation.load(Ordering::Acquire) {
            return Ok(());
        }
        let revoked = || {
            SignalError::new(
                SignalCode::Unauthorized,
                "your account was disabled or signed out: sign in again",
            )
        };
        match self.app.store.user_by_id(conn.user_id).await {
            Ok(user) if !user.disabled && user.token_epoch == conn.token_epoch => {
                conn.generation.store(now, Ordering::Release);
                Ok(())
            }
            Ok(_) | Err(StoreError::NotFound) => Err(revoked()),
            Err(e) => Err(e.into()),
        }
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
            } else if delivery.event == SESSION_REVOKED {
                engine.disconnect(conn, "session revoked");
            }
        }
    }
}
