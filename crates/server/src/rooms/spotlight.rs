//! The host's spotlight: one peer's camera or screen shown large on every
//! page of the room (a viewer's own pin still wins on their page). Kept in
//! the live room so that a peer who joins later sees the same.

use serde::{Deserialize, Serialize};
use serde_json::json;
use vtp_store::RoomRole;

use super::{RoomHub, SignalError};

/// Which of a peer's videos is in the spotlight.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpotlightSource {
    #[default]
    Camera,
    Screen,
}

/// The `spotlight` of `join-room` and `spotlight-changed`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpotlightView {
    pub peer_id: String,
    pub source: SpotlightSource,
}

impl RoomHub {
    /// A host puts `target` (a peer of the room) in the spotlight, or takes
    /// the spotlight away (`None`); everyone in the room is told.
    pub async fn set_spotlight(
        &self,
        conn: &str,
        room_id: &str,
        target: Option<(&str, SpotlightSource)>,
    ) -> Result<(), SignalError> {
        self.with_member(conn, room_id, async |hub, _, slot, caller_id| {
            let live = slot.live_mut(room_id)?;
            if live.peer(&caller_id).map(|p| p.role) != Some(RoomRole::Host) {
                return Err(SignalError::forbidden("only hosts may spotlight someone"));
            }
            let spotlight = match target {
                None => None,
                Some((peer_id, source)) => {
                    if live.peer(peer_id).is_none() {
                        return Err(SignalError::not_found(format!(
                            "no peer {peer_id:?} in this room"
                        )));
                    }
                    Some(SpotlightView {
                        peer_id: peer_id.to_string(),
                        source,
                    })
                }
            };
            if live.spotlight != spotlight {
                hub.publish(
                    live.conns_except(None),
                    "spotlight-changed",
                    json!({ "spotlight": spotlight }),
                );
                live.spotlight = spotlight;
            }
            Ok(())
        })
        .await
    }
}
