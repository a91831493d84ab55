//! One handler per request event of docs/protocol.md. Each checks size, budget and
//! shape, calls the room logic, and answers with the envelope.

use serde_json::Value;

use super::protocol::*;
use super::{Conn, Signalling};
use crate::rooms::{SignalCode, SignalError};

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

/// Declares a request handler inside [`dispatch`]'s match:
/// `request!(ctx, Payload, |sig, conn, id, req| async { … })`, whose block
/// returns `Result<impl Serialize, SignalError>`.
macro_rules! request {
    ($ctx:ident, $payload:ty, |$sig:ident, $conn:ident, $id:ident, $req:ident| $body:expr) => {{
        let (sig, conn, id, data, len) = $ctx;
        let $sig: &Signalling = sig;
        let $conn: &Conn = conn;
        let $id: String = id.to_string();
        match admit($sig, $conn, len, serde_json::from_value::<$payload>(data)) {
            Ok($req) => envelope($body.await),
            Err(e) => envelope::<Empty>(Err(e)),
        }
    }};
}

mod host_tools;

/// Answers one event: the acknowledgement's envelope.
pub async fn dispatch(
    sig: &Signalling,
    conn: &Conn,
    id: &str,
    event: &str,
    data: Value,
    len: usize,
) -> Value {
    let ctx = (sig, conn, id, data, len);
    match event {
        "join-room" => request!(ctx, JoinRoom, |sig, conn, id, req| async {
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
                    if !sig.app.hub.is_member(&id, &joined).await
                        && !sig.app.hub.is_waiting(&id, &joined)
                    {
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
                .join(&user, &id, &room_id, req.display_name.as_deref(), req.fresh)
                .await?;
            conn.rooms
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(room_id);
            Ok(outcome)
        }),

        "leave-room" => request!(ctx, RoomRequest, |sig, conn, id, req| async {
            let room_id = room_id(&req.room_id)?;
            // Someone waiting to be let in leaves the queue instead.
            if !sig.app.hub.stop_waiting(&id, room_id).await {
                sig.app.hub.leave(&id, room_id).await?;
            }
            conn.rooms
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(room_id);
            Ok(Empty {})
        }),

        "get-participants" => request!(ctx, RoomRequest, |sig, _conn, id, req| async {
            let room_id = room_id(&req.room_id)?;
            sig.app
                .hub
                .room_peers(&id, room_id)
                .await
                .map(|peers| serde_json::json!({ "peers": peers }))
        }),

        "get-room-info" => request!(ctx, RoomRequest, |sig, _conn, id, req| async {
            sig.app.hub.room_info(&id, room_id(&req.room_id)?).await
        }),

        "chat-message" => request!(ctx, ChatRequest, |sig, _conn, id, req| async {
            let message = sig
                .app
                .hub
                .chat(&id, room_id(&req.room_id)?, &req.text)
                .await?;
            Ok(serde_json::json!({ "id": message.id, "sentAt": message.sent_at }))
        }),

        "get-chat-history" => request!(ctx, ChatHistoryRequest, |sig, _conn, id, req| async {
            sig.app
                .hub
                .chat_history(&id, room_id(&req.room_id)?, req.before, req.limit)
                .await
        }),

        "raise-hand" => request!(ctx, RoomRequest, |sig, _conn, id, req| async {
            sig.app
                .hub
                .set_hand(&id, room_id(&req.room_id)?, true)
                .await
                .map(|()| Empty {})
        }),

        "lower-hand" => request!(ctx, RoomRequest, |sig, _conn, id, req| async {
            sig.app
                .hub
                .set_hand(&id, room_id(&req.room_id)?, false)
                .await
                .map(|()| Empty {})
        }),

        "host-action" => request!(ctx, HostActionRequest, |sig, _conn, id, req| async {
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
        }),

        "admit" | "deny" => request!(ctx, WaitDecision, |sig, _conn, id, req| async {
            let target = req.target()?;
            let deny = event == "deny";
            let count = sig
                .app
                .hub
                .decide_waiting(&id, room_id(&req.room_id)?, target, deny)
                .await?;
            Ok(serde_json::json!({ "count": count }))
        }),

        "set-spotlight" => request!(ctx, SpotlightRequest, |sig, _conn, id, req| async {
            let target = req.peer_id.as_deref().map(|peer| (peer, req.source));
            sig.app
                .hub
                .set_spotlight(&id, room_id(&req.room_id)?, target)
                .await
                .map(|()| Empty {})
        }),

        "close-room" => request!(ctx, RoomRequest, |sig, _conn, id, req| async {
            sig.app
                .hub
                .close_room_as(&id, room_id(&req.room_id)?)
                .await
                .map(|()| Empty {})
        }),

        "end-session" => request!(ctx, RoomRequest, |sig, _conn, id, req| async {
            sig.app
                .hub
                .end_session_as(&id, room_id(&req.room_id)?)
                .await
                .map(|()| Empty {})
        }),

        "start-recording" => request!(ctx, RoomRequest, |sig, _conn, id, req| async {
            sig.app
                .hub
                .start_recording(&id, room_id(&req.room_id)?)
                .await
        }),

        "stop-recording" => request!(ctx, RoomRequest, |sig, _conn, id, req| async {
            sig.app
                .hub
                .stop_recording(&id, room_id(&req.room_id)?)
                .await
        }),

        "webrtc-offer" => request!(ctx, RelayRequest, |sig, _conn, id, req| async {
            relay(sig, &id, "webrtc-offer", req).await
        }),
        "webrtc-answer" => request!(ctx, RelayRequest, |sig, _conn, id, req| async {
            relay(sig, &id, "webrtc-answer", req).await
        }),
        "ice-candidate" => request!(ctx, RelayRequest, |sig, _conn, id, req| async {
            relay(sig, &id, "ice-candidate", req).await
        }),

        "check-connectivity" => request!(ctx, Value, |sig, _conn, id, _req| async {
            sig.probes.open(&sig.app.hub, &id).await
        }),
        "check-connectivity-connect" => request!(ctx, ProbeConnect, |sig, _conn, id, req| async {
            sig.probes
                .connect(
                    sig.app.hub.media(),
                    &id,
                    &req.transport_id,
                    req.dtls_parameters,
                )
                .await
                .map(|()| Empty {})
        }),
        "check-connectivity-produce" => request!(ctx, ProbeProduce, |sig, _conn, id, req| async {
            sig.probes
                .produce(
                    sig.app.hub.media(),
                    &id,
                    &req.transport_id,
                    req.kind,
                    req.rtp_parameters,
                )
                .await
        }),
        "check-connectivity-end" => request!(ctx, Value, |sig, _conn, id, _req| async {
            sig.probes.close(sig.app.hub.media(), &id).await;
            Ok::<_, SignalError>(Empty {})
        }),

        "send-reaction" | "mute-all" | "lower-all-hands" | "ask-to-unmute" => {
            host_tools::dispatch(ctx, event).await
        }

        _ => dispatch_media(ctx, event).await,
    }
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

/// The media requests of docs/protocol.md: transports, producers, consumers.
async fn dispatch_media(ctx: (&Signalling, &Conn, &str, Value, usize), event: &str) -> Value {
    match event {
        "create-transport" => request!(ctx, CreateTransport, |sig, _conn, id, req| async {
            let room_id = room_id(&req.room_id)?;
            sig.app
                .hub
                .create_transport(&id, room_id, req.direction, req.sctp_capabilities.is_some())
                .await
        }),

        "connect-transport" => request!(ctx, ConnectTransport, |sig, _conn, id, req| async {
            let room_id = room_id(&req.room_id)?;
            sig.app
                .hub
                .connect_transport(&id, room_id, &req.transport_id, req.dtls_parameters)
                .await
                .map(|()| Empty {})
        }),

        "restart-ice" => request!(ctx, TransportRequest, |sig, _conn, id, req| async {
            let room_id = room_id(&req.room_id)?;
            sig.app
                .hub
                .restart_ice(&id, room_id, &req.transport_id)
                .await
        }),

        "produce" => request!(ctx, Produce, |sig, _conn, id, req| async {
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
        }),

        "consume" => request!(ctx, Consume, |sig, _conn, id, req| async {
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
        }),

        "pause-consumer" => request!(ctx, ConsumerRequest, |sig, _conn, id, req| async {
            let room_id = room_id(&req.room_id)?;
            sig.app
                .hub
                .set_consumer_paused(&id, room_id, &req.consumer_id, true)
                .await
                .map(|()| Empty {})
        }),

        "resume-consumer" => request!(ctx, ConsumerRequest, |sig, _conn, id, req| async {
            let room_id = room_id(&req.room_id)?;
            sig.app
                .hub
                .set_consumer_paused(&id, room_id, &req.consumer_id, false)
                .await
                .map(|()| Empty {})
        }),

        "close-consumer" => request!(ctx, ConsumerRequest, |sig, _conn, id, req| async {
            let room_id = room_id(&req.room_id)?;
            sig.app
                .hub
                .close_consumer(&id, room_id, &req.consumer_id)
                .await
                .map(|()| Empty {})
        }),

        "set-preferred-layers" => request!(ctx, PreferredLayers, |sig, _conn, id, req| async {
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
        }),

        "pause-producer" => request!(ctx, ProducerRequest, |sig, _conn, id, req| async {
            let room_id = room_id(&req.room_id)?;
            sig.app
                .hub
                .set_producer_paused(&id, room_id, &req.producer_id, true)
                .await
                .map(|()| Empty {})
        }),

        "resume-producer" => request!(ctx, ProducerRequest, |sig, _conn, id, req| async {
            let room_id = room_id(&req.room_id)?;
            sig.app
                .hub
                .set_producer_paused(&id, room_id, &req.producer_id, false)
                .await
                .map(|()| Empty {})
        }),

        "close-producer" => request!(ctx, ProducerRequest, |sig, _conn, id, req| async {
            let room_id = room_id(&req.room_id)?;
            sig.app
                .hub
                .close_producer(&id, room_id, &req.producer_id)
                .await
                .map(|()| Empty {})
        }),
        _ => {
            let (_, conn, _, _, _) = ctx;
            let result: Result<Empty, SignalError> = match conn.spend() {
                Err(wait) => Err(SignalError::new(
                    SignalCode::RateLimited,
                    format!("too many requests; wait {wait} s"),
                )),
                Ok(()) => Err(SignalError::bad_request(format!(
                    "unknown event {:?}",
                    truncate(event, 64)
                ))),
            };
            envelope(result)
        }
    }
}
