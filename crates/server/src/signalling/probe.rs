//! The connectivity check a student runs before a class: a throw-away SFU
//! room with one send transport, so the browser can find out — over the
//! same candidates, ICE-TCP and TURN relays a class would use — whether
//! media can reach the SFU, and by which path (the web app reads the
//! selected candidate pair and says it in words).
//!
//! One check per connection, at most [`MAX_PROBES`] on the node, each
//! closed by `check-connectivity-end`, by the next check, when the
//! connection goes, or [`PROBE_LIFETIME`] after it opened, whichever comes
//! first. The probe is invisible to rooms: no store row, no peers, no
//! notifications.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use vtp_sfu::rtp::MediaKind;
use vtp_sfu_driver::{CreateTransport, Produce, SfuControl};

use crate::rooms::{Direction, RoomHub, SignalCode, SignalError};

/// Checks open at once on this node.
pub const MAX_PROBES: usize = 64;
/// A check closes by itself after this long.
pub const PROBE_LIFETIME: Duration = Duration::from_secs(60);
/// The owner tag of the probe's transport in its SFU room.
const PROBE_PEER: &str = "probe";

/// One open check: its SFU room and transport.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Probe {
    room: String,
    transport: String,
    produced: bool,
}

/// The node's open checks, by signalling connection.
#[derive(Default)]
pub struct Probes {
    open: Mutex<HashMap<String, Probe>>,
}

impl Probes {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Probe>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `check-connectivity`: closes the connection's previous check and
    /// opens a new one; answers the router's capabilities and the
    /// transport (with TURN relays, as a class's would have).
    pub async fn open(
        self: &Arc<Self>,
        hub: &Arc<RoomHub>,
        conn: &str,
    ) -> Result<Value, SignalError> {
        self.close(hub.media(), conn).await;
        let room = format!("probe-{}", uuid::Uuid::new_v4());
        {
            let mut open = self.lock();
            if open.len() >= MAX_PROBES {
                return Err(SignalError::new(
                    SignalCode::RateLimited,
                    "too many connectivity checks on this server right now; try again in a minute",
                ));
            }
            // Reserved before the SFU calls, so parallel checks count.
            open.insert(
                conn.to_owned(),
                Probe {
                    room: room.clone(),
                    transport: String::new(),
                    produced: false,
                },
            );
        }
        let media = hub.media().clone();
        let opened = async {
            let capabilities = media.open_room(&room).await?;
            media.add_peer(&room, PROBE_PEER).await?;
            let transport = media
                .create_transport(
                    &room,
                    CreateTransport {
                        peer_id: PROBE_PEER.into(),
                        direction: Direction::Send,
                        enable_sctp: false,
                    },
                )
                .await?;
            Ok::<_, SignalError>((capabilities, transport))
        }
        .await;
        let (capabilities, transport) = match opened {
            Ok(v) => v,
            Err(e) => {
                self.forget(conn, &room);
                let _ = media.close_room(&room).await;
                return Err(e);
            }
        };
        let transport_id = transport.id.clone();
        let answer = hub.transport_answer(transport, conn)?;
        let still_open = match self.lock().get_mut(conn) {
            Some(p) if p.room == room => {
                p.transport = transport_id;
                true
            }
            _ => false,
        };
        if !still_open {
            // Closed (the connection went) while the SFU answered.
            let _ = media.close_room(&room).await;
            return Err(SignalError::not_found("connectivity check"));
        }
        let probes = Arc::clone(self);
        let (conn_id, expiring) = (conn.to_owned(), room.clone());
        tokio::spawn(async move {
            tokio::time::sleep(PROBE_LIFETIME).await;
            if probes.forget(&conn_id, &expiring) {
                let _ = media.close_room(&expiring).await;
            }
        });
        Ok(json!({ "routerRtpCapabilities": capabilities, "transport": answer }))
    }

    /// `check-connectivity-connect`: the browser's DTLS parameters.
    pub async fn connect(
        &self,
        media: &Arc<dyn SfuControl>,
        conn: &str,
        transport_id: &str,
        dtls: Value,
    ) -> Result<(), SignalError> {
        let probe = self.current(conn, transport_id)?;
        media
            .connect_transport(&probe.room, transport_id, dtls)
            .await
            .map_err(SignalError::from)
    }

    /// `check-connectivity-produce`: one track (the web app sends a small
    /// generated video), so that media really flows.
    pub async fn produce(
        &self,
        media: &Arc<dyn SfuControl>,
        conn: &str,
        transport_id: &str,
        kind: MediaKind,
        rtp_parameters: Value,
    ) -> Result<Value, SignalError> {
        let probe = self.current(conn, transport_id)?;
        if probe.produced {
            return Err(SignalError::forbidden(
                "a connectivity check sends one track",
            ));
        }
        let info = media
            .produce(
                &probe.room,
                Produce {
                    peer_id: PROBE_PEER.into(),
                    transport_id: transport_id.into(),
                    kind,
                    rtp_parameters,
                    app_data: Value::Null,
                },
            )
            .await?;
        if let Some(p) = self.lock().get_mut(conn).filter(|p| p.room == probe.room) {
            p.produced = true;
        }
        Ok(json!({ "id": info.id }))
    }

    /// Closes the connection's check, if it has one.
    pub async fn close(&self, media: &Arc<dyn SfuControl>, conn: &str) {
        let probe = self.lock().remove(conn);
        if let Some(probe) = probe {
            let _ = media.close_room(&probe.room).await;
        }
    }

    /// How many checks are open (for tests and metrics).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn current(&self, conn: &str, transport_id: &str) -> Result<Probe, SignalError> {
        self.lock()
            .get(conn)
            .filter(|p| p.transport == transport_id)
            .cloned()
            .ok_or_else(|| SignalError::not_found("connectivity check"))
    }

    /// Drops `conn`'s entry if it is still the check of `room`.
    fn forget(&self, conn: &str, room: &str) -> bool {
        let mut open = self.lock();
        if open.get(conn).is_some_and(|p| p.room == room) {
            open.remove(conn);
            true
        } else {
            false
        }
    }
}
