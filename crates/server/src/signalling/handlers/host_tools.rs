//! Reactions and the host's room-wide tools (`rooms::host_tools`): their
//! payloads and handlers, apart from the main match so that the room's
//! other features grow without touching the same lines.

use serde::Deserialize;
use serde_json::Value;

use super::super::protocol::{Empty, envelope, room_id};
use super::super::{Conn, Signalling};
use super::admit;
use crate::rooms::SignalError;

/// `send-reaction`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReactionRequest {
    room_id: String,
    emoji: String,
}

/// `mute-all`, `lower-all-hands`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RoomWide {
    room_id: String,
}

/// `ask-to-unmute`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AskToUnmute {
    room_id: String,
    peer_id: String,
}

pub(super) async fn dispatch(ctx: (&Signalling, &Conn, &str, Value, usize), event: &str) -> Value {
    match event {
        "send-reaction" => request!(ctx, ReactionRequest, |sig, _conn, id, req| async {
            sig.app
                .hub
                .react(&id, room_id(&req.room_id)?, &req.emoji)
                .await
                .map(|()| Empty {})
        }),
        "mute-all" => request!(ctx, RoomWide, |sig, _conn, id, req| async {
            sig.app.hub.mute_all(&id, room_id(&req.room_id)?).await
        }),
        "lower-all-hands" => request!(ctx, RoomWide, |sig, _conn, id, req| async {
            sig.app
                .hub
                .lower_all_hands(&id, room_id(&req.room_id)?)
                .await
        }),
        "ask-to-unmute" => request!(ctx, AskToUnmute, |sig, _conn, id, req| async {
            sig.app
                .hub
                .ask_to_unmute(&id, room_id(&req.room_id)?, &req.peer_id)
                .await
                .map(|()| Empty {})
        }),
        // `handlers::dispatch` sends only the names above here.
        _ => envelope::<Empty>(Err(SignalError::bad_request("unknown event"))),
    }
}
