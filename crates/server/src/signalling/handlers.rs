//! One handler per request event of DESIGN §3. Each checks size, budget and
//! shape, calls the room logic, and acknowledges with the envelope.

use std::convert::Infallible;
use std::sync::Arc;

use serde_json::Value;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, Event, Extension, SocketRef, State, TryData};
use socketioxide::handler::FromMessageParts;
use socketioxide::socket::{DisconnectReason, Socket};

use super::protocol::*;
use super::{Conn, Signalling};
use crate::rooms::{SignalCode, SignalError};

/// The size of an event's payload as received, to refuse oversized ones
/// with `bad_request` instead of parsing them.
pub struct RawLen(usize);

impl<A: Adapter> FromMessageParts<A> for RawLen {
    type Error = Infallible;
    fn from_message_parts(
        _: &Arc<Socket<A>>,
        v: &mut socketioxide::handler::Value,
        _: &Option<i64>,
    ) -> Result<Self, Infallible> {
        Ok(RawLen(v.len()))
    }
}

/// Admits an event: within the size limit and the connection's budget, and
/// of the expected shape.
fn admit<T>(
    sig: &Signalling,
    conn: &Conn,
    len: usize,
    parsed: Result<T, impl std::fmt::Display>,
) -> Result<T, SignalError> {
    if len > sig.limits.max_event_bytes {
        return Err(SignalError::bad_request(format!(
            "event too large ({len} bytes; the limit is {})",
            sig.limits.max_event_bytes
        )));
    }
    conn.spend().map_err(|wait| {
        SignalError::new(
            SignalCode::RateLimited,
            format!("too many requests; wait {wait} s"),
        )
    })?;
    parsed.map_err(|e| SignalError::bad_request(format!("malformed payload: {e}")))
}

fn reply<A: Adapter, T: serde::Serialize>(ack: AckSender<A>, result: Result<T, SignalError>) {
    if let Err(e) = ack.send(&envelope(result)) {
        tracing::debug!(error = %e, "acknowledgement not sent");
    }
}

/// Declares a request handler: `request!(socket, "event", Payload, |sig, conn, id, req| async { … })`.
macro_rules! request {
    ($s:ident, $event:literal, $payload:ty, |$sig:ident, $conn:ident, $id:ident, $req:ident| $body:expr) => {
        $s.on(
            $event,
            async |s: SocketRef<A>,
                   State($sig): State<Signalling>,
                   Extension($conn): Extension<Arc<Conn>>,
                   RawLen(len): RawLen,
                   ack: AckSender<A>,
                   TryData(data): TryData<$payload>| {
                let $id = s.id.to_string();
                let result = match admit(&$sig, &$conn, len, data) {
                    Ok($req) => $body.await,
                    Err(e) => Err(e),
                };
                reply(ack, result);
            },
        )
    };
}

/// Registers every event handler of a connection. Called from the handshake
/// middleware, before socketioxide confirms the connection to the client:
/// handlers registered later (in the connect handler, which runs as its own
/// task after the confirmation) would miss events sent right after it.
pub fn register<A: Adapter>(s: &SocketRef<A>) {
    request!(s, "join-room", JoinRoom, |sig, conn, id, req| async {
        let room_id = room_id(&req.room_id)?.to_string();
        // A join needs a token that is still good (and the user's current state).
        let user = sig.app.authenticate(&conn.token).await.map_err(|_| {
            SignalError::new(
                SignalCode::Unauthorized,
                "access token expired or revoked: reconnect with a fresh one",
            )
        })?;
        let max = sig.limits.max_rooms_per_connection;
        if conn.rooms().len() >= max {
            // Forget rooms this connection is no longer in (closed, or
            // removed by a host) before counting.
            for joined in conn.rooms() {
                if !sig.app.hub.is_member(&id, &joined).await {
                    conn.rooms
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&joined);
                }
            }
        }
        {
            let rooms = conn.rooms.lock().unwrap_or_else(|p| p.into_inner());
            if !rooms.contains(&room_id) && rooms.len() >= max {
                return Err(SignalError::forbidden(format!(
                    "a connection may be in at most {max} rooms"
                )));
            }
        }
        let outcome = sig
            .app
            .hub
            .join(&user, &id, &room_id, req.display_name.as_deref())
            .await?;
        conn.rooms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(room_id);
        Ok(outcome)
    });

    request!(s, "leave-room", RoomRequest, |sig, conn, id, req| async {
        let room_id = room_id(&req.room_id)?;
        sig.app.hub.leave(&id, room_id).await?;
        conn.rooms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(room_id);
        Ok(Empty {})
    });

    request!(
        s,
        "get-participants",
        RoomRequest,
        |sig, _conn, _id, req| async {
            let room_id = room_id(&req.room_id)?;
            sig.app
                .hub
                .room_info(room_id)
                .await
                .map(|info| serde_json::json!({ "peers": info.peers }))
        }
    );

    request!(
        s,
        "get-room-info",
        RoomRequest,
        |sig, _conn, _id, req| async { sig.app.hub.room_info(room_id(&req.room_id)?).await }
    );

    request!(
        s,
        "chat-message",
        ChatRequest,
        |sig, _conn, id, req| async {
            let message = sig
                .app
                .hub
                .chat(&id, room_id(&req.room_id)?, &req.text)
                .await?;
            Ok(serde_json::json!({ "id": message.id, "sentAt": message.sent_at }))
        }
    );

    request!(s, "raise-hand", RoomRequest, |sig, _conn, id, req| async {
        sig.app
            .hub
            .set_hand(&id, room_id(&req.room_id)?, true)
            .await
            .map(|()| Empty {})
    });

    request!(s, "lower-hand", RoomRequest, |sig, _conn, id, req| async {
        sig.app
            .hub
            .set_hand(&id, room_id(&req.room_id)?, false)
            .await
            .map(|()| Empty {})
    });

    request!(
        s,
        "host-action",
        HostActionRequest,
        |sig, _conn, id, req| async {
            let room_id = room_id(&req.room_id)?;
            sig.app
                .hub
                .host_action(
                    &id,
                    room_id,
                    req.action,
                    &req.peer_id,
                    req.producer_id.as_deref(),
                )
                .await
                .map(|()| Empty {})
        }
    );

    request!(s, "close-room", RoomRequest, |sig, _conn, id, req| async {
        sig.app
            .hub
            .close_room_as(&id, room_id(&req.room_id)?)
            .await
            .map(|()| Empty {})
    });

    request!(
        s,
        "start-recording",
        RoomRequest,
        |sig, _conn, id, req| async {
            sig.app
                .hub
                .start_recording(&id, room_id(&req.room_id)?)
                .await
        }
    );

    request!(
        s,
        "stop-recording",
        RoomRequest,
        |sig, _conn, id, req| async {
            sig.app
                .hub
                .stop_recording(&id, room_id(&req.room_id)?)
                .await
        }
    );

    request!(
        s,
        "webrtc-offer",
        RelayRequest,
        |sig, _conn, id, req| async { relay(&sig, &id, "webrtc-offer", req).await }
    );
    request!(
        s,
        "webrtc-answer",
        RelayRequest,
        |sig, _conn, id, req| async { relay(&sig, &id, "webrtc-answer", req).await }
    );
    request!(
        s,
        "ice-candidate",
        RelayRequest,
        |sig, _conn, id, req| async { relay(&sig, &id, "ice-candidate", req).await }
    );

    register_media(s);

    s.on_fallback(
        async |Extension(conn): Extension<Arc<Conn>>, ack: AckSender<A>, Event(event): Event| {
            let result: Result<Empty, SignalError> = match conn.spend() {
                Err(wait) => Err(SignalError::new(
                    SignalCode::RateLimited,
                    format!("too many requests; wait {wait} s"),
                )),
                Ok(()) => Err(SignalError::bad_request(format!(
                    "unknown event {:?}",
                    truncate(&event, 64)
                ))),
            };
            reply(ack, result);
        },
    );

    s.on_disconnect(
        async |s: SocketRef<A>,
               State(sig): State<Signalling>,
               Extension(conn): Extension<Arc<Conn>>,
               reason: DisconnectReason| {
            tracing::debug!(sid = %s.id, ?reason, "signalling connection closed");
            sig.app
                .metrics
                .signalling_connections
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            sig.app
                .hub
                .connection_lost(&s.id.to_string(), conn.rooms())
                .await;
        },
    );
}

async fn relay(
    sig: &Signalling,
    id: &str,
    event: &'static str,
    req: RelayRequest,
) -> Result<Empty, SignalError> {
    let room_id = room_id(&req.room_id)?;
    let mut payload = serde_json::Map::new();
    payload.insert("roomId".into(), Value::String(room_id.to_string()));
    if let Some(sdp) = req.sdp {
        payload.insert("sdp".into(), sdp);
    }
    if let Some(candidate) = req.candidate {
        payload.insert("candidate".into(), candidate);
    }
    sig.app
        .hub
        .relay(id, room_id, &req.to, event, Value::Object(payload))
        .await
        .map(|()| Empty {})
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// The media requests of DESIGN §3: transports, producers, consumers.
fn register_media<A: Adapter>(s: &SocketRef<A>) {
    request!(
        s,
        "create-transport",
        CreateTransport,
        |sig, _conn, id, req| async {
            let room_id = room_id(&req.room_id)?;
            sig.app
                .hub
                .create_transport(&id, room_id, req.direction, req.sctp_capabilities.is_some())
                .await
        }
    );

    request!(
        s,
        "connect-transport",
        ConnectTransport,
        |sig, _conn, id, req| async {
            let room_id = room_id(&req.room_id)?;
            sig.app
                .hub
                .connect_transport(&id, room_id, &req.transport_id, req.dtls_parameters)
                .await
                .map(|()| Empty {})
        }
    );

    request!(
        s,
        "restart-ice",
        TransportRequest,
        |sig, _conn, id, req| async {
            let room_id = room_id(&req.room_id)?;
            sig.app
                .hub
                .restart_ice(&id, room_id, &req.transport_id)
                .await
        }
    );

    request!(s, "produce", Produce, |sig, _conn, id, req| async {
        let room_id = room_id(&req.room_id)?;
        let app_data = Value::Object(req.app_data.unwrap_or_default());
        sig.app
            .hub
            .produce(
                &id,
                room_id,
                &req.transport_id,
                req.kind,
                req.rtp_parameters,
                app_data,
            )
            .await
    });

    request!(s, "consume", Consume, |sig, _conn, id, req| async {
        let room_id = room_id(&req.room_id)?;
        sig.app
            .hub
            .consume(
                &id,
                room_id,
                &req.transport_id,
                &req.producer_id,
                req.rtp_capabilities,
            )
            .await
    });

    request!(
        s,
        "pause-consumer",
        ConsumerRequest,
        |sig, _conn, id, req| async {
            let room_id = room_id(&req.room_id)?;
            sig.app
                .hub
                .set_consumer_paused(&id, room_id, &req.consumer_id, true)
                .await
                .map(|()| Empty {})
        }
    );

    request!(
        s,
        "resume-consumer",
        ConsumerRequest,
        |sig, _conn, id, req| async {
            let room_id = room_id(&req.room_id)?;
            sig.app
                .hub
                .set_consumer_paused(&id, room_id, &req.consumer_id, false)
                .await
                .map(|()| Empty {})
        }
    );

    request!(
        s,
        "close-consumer",
        ConsumerRequest,
        |sig, _conn, id, req| async {
            let room_id = room_id(&req.room_id)?;
            sig.app
                .hub
                .close_consumer(&id, room_id, &req.consumer_id)
                .await
                .map(|()| Empty {})
        }
    );

    request!(
        s,
        "set-preferred-layers",
        PreferredLayers,
        |sig, _conn, id, req| async {
            let room_id = room_id(&req.room_id)?;
            if req.spatial_layer > 2 || req.temporal_layer.is_some_and(|t| t > 2) {
                return Err(SignalError::bad_request(
                    "layers: spatialLayer and temporalLayer are 0 to 2",
                ));
            }
            sig.app
                .hub
                .set_preferred_layers(
                    &id,
                    room_id,
                    &req.consumer_id,
                    vtp_sfu_driver::PreferredLayers {
                        spatial_layer: req.spatial_layer,
                        temporal_layer: req.temporal_layer,
                    },
                )
                .await
                .map(|()| Empty {})
        }
    );

    request!(
        s,
        "pause-producer",
        ProducerRequest,
        |sig, _conn, id, req| async {
            let room_id = room_id(&req.room_id)?;
            sig.app
                .hub
                .set_producer_paused(&id, room_id, &req.producer_id, true)
                .await
                .map(|()| Empty {})
        }
    );

    request!(
        s,
        "resume-producer",
        ProducerRequest,
        |sig, _conn, id, req| async {
            let room_id = room_id(&req.room_id)?;
            sig.app
                .hub
                .set_producer_paused(&id, room_id, &req.producer_id, false)
                .await
                .map(|()| Empty {})
        }
    );

    request!(
        s,
        "close-producer",
        ProducerRequest,
        |sig, _conn, id, req| async {
            let room_id = room_id(&req.room_id)?;
            sig.app
                .hub
                .close_producer(&id, room_id, &req.producer_id)
                .await
                .map(|()| Empty {})
        }
    );
}
