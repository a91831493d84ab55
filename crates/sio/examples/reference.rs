//! A server that behaves like the one the official Socket.IO protocol test
//! suite (github.com/socketio/socket.io-protocol, `test-suite/`) expects,
//! built on this crate, so that the suite can be pointed at it:
//!
//!     cargo run --example reference -p vtp-sio   # listens on 127.0.0.1:3000
//!     (in the suite's folder) npm ci && npx mocha test-suite.js
//!
//! Like the suite's reference server: pings every 300 ms with a 200 ms
//! timeout, a 1 MB payload limit and a 1 s connect timeout; on connect it
//! emits `auth` with the handshake's `auth`; `message` is echoed as
//! `message-back`; `message-with-ack` is acknowledged with its argument.
//! What this crate deliberately leaves out (other namespaces, binary
//! attachments, events with more than one argument) fails there by design;
//! docs/security.md lists the outcome.

use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use vtp_sio::{Config, Engine, Handler, Socket};

#[derive(Default)]
struct Reference {
    /// The engine, to emit from the handler (set once it exists).
    engine: OnceLock<Weak<Engine<Reference>>>,
}

#[async_trait]
impl Handler for Reference {
    type Conn = ();

    async fn connect(&self, socket_id: &str, auth: Option<Value>) -> Result<(), String> {
        // The socket is registered (and its CONNECT answered) after this
        // returns: emit `auth` as soon as it is there.
        let engine = self.engine.get().cloned();
        let id = socket_id.to_string();
        tokio::spawn(async move {
            // The reference server's `handshake.auth` is `{}` when none came.
            let auth = auth.unwrap_or_else(|| json!({}));
            for _ in 0..1000 {
                let Some(engine) = engine.as_ref().and_then(Weak::upgrade) else {
                    return;
                };
                if engine.emit(&id, "auth", &auth) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
        Ok(())
    }

    async fn event(&self, socket: &Socket<()>, name: String, data: Value, _len: usize) -> Value {
        if name == "message"
            && let Some(engine) = self.engine.get().and_then(Weak::upgrade)
        {
            engine.emit(&socket.id, "message-back", &data);
        }
        data
    }

    fn refuse(&self, message: &str) -> Value {
        json!({ "error": message })
    }

    async fn disconnect(&self, _socket: &Socket<()>, _reason: &'static str) {}
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let config = Config {
        ping_interval: Duration::from_millis(300),
        ping_timeout: Duration::from_millis(200),
        max_payload: 1_000_000,
        connect_timeout: Duration::from_secs(1),
        ..Config::default()
    };
    let engine: Arc<Engine<Reference>> = Engine::new(Reference::default(), config);
    let _ = engine.handler().engine.set(Arc::downgrade(&engine));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    axum::serve(listener, vtp_sio::router(engine)).await
}
