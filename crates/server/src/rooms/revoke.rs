//! Account changes reaching live rooms at once: a disabled or deleted
//! user's peers are taken out of every room (their connections are told
//! `session-revoked`, which the signalling layer follows with a
//! disconnect), and a user whose platform role changed gets their room
//! role recomputed by the rooms' host rule (`role-changed` to everyone).

use std::sync::Arc;

use serde_json::json;
use tokio::sync::Mutex;
use uuid::Uuid;
use vtp_store::{RoomRole, User};

use super::{RoomHub, Slot, is_host};

/// The event that ends a connection's session; the signalling layer
/// disconnects the socket after writing it.
pub const SESSION_REVOKED: &str = "session-revoked";

impl RoomHub {
    /// Every live room, with its slot.
    fn live_slots(&self) -> Vec<(String, Arc<Mutex<Slot>>)> {
        self.rooms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(id, slot)| (id.clone(), slot.clone()))
            .collect()
    }

    /// Takes every peer of `user_id` out of every live room now; their
    /// connections get `session-revoked { reason }` (and are then
    /// disconnected), the others `peer-left`.
    pub async fn revoke_user(&self, user_id: Uuid, reason: &str) {
        for (room_id, arc) in self.live_slots() {
            let mut slot = arc.lock().await;
            let Some(live) = slot.live.as_ref() else {
                continue;
            };
            let peers: Vec<(String, Option<String>)> = live
                .peers
                .iter()
                .filter(|p| p.user_id == user_id)
                .map(|p| (p.peer_id.clone(), p.conn.clone()))
                .collect();
            for (peer_id, conn) in peers {
                self.publish(
                    conn.into_iter().collect(),
                    SESSION_REVOKED,
                    json!({ "reason": reason }),
                );
                self.remove_peer(&room_id, &arc, &mut slot, &peer_id, "account revoked")
                    .await;
            }
        }
    }

    /// Recomputes the room role of `user`'s peers after their platform
    /// role changed: a host who is no longer one becomes a participant,
    /// someone the host rule now makes a host becomes one; a presenter
    /// who stays no host keeps being a presenter.
    pub async fn refresh_user_role(&self, user: &User) {
        for (room_id, arc) in self.live_slots() {
            let mut slot = arc.lock().await;
            let Some(live) = slot.live.as_mut() else {
                continue;
            };
            let host = is_host(user, &live.room);
            let mut changed = Vec::new();
            for peer in live.peers.iter_mut().filter(|p| p.user_id == user.id) {
                let role = match (host, peer.role) {
                    (true, _) => RoomRole::Host,
                    (false, RoomRole::Host) => RoomRole::Participant,
                    (false, other) => other,
                };
                if role != peer.role {
                    peer.role = role;
                    changed.push((peer.peer_id.clone(), peer.participant_id, role));
                }
            }
            for (peer_id, participant_id, role) in changed {
                if let Err(e) = self.store.set_participant_role(participant_id, role).await {
                    tracing::error!(error = %e, room_id, peer_id, "could not record the role change");
                }
                tracing::info!(
                    room_id,
                    peer_id,
                    role = role.as_str(),
                    "room role follows the account"
                );
                self.publish(
                    live.conns_except(None),
                    "role-changed",
                    json!({ "peerId": peer_id, "role": role }),
                );
            }
        }
    }
}
