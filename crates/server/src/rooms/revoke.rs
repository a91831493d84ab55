//! Account changes reaching live rooms at once: a disabled or deleted
//! user's peers are taken out of every room (their connections are told
//! `session-revoked`, which the signalling layer follows with a
//! disconnect), and a user whose platform role changed gets their room
//! role recomputed by the rooms' host rule (`role-changed` to everyone).
//! Roster changes (a member removed, a role or the room's access changed)
//! reach the room's live peers the same way: who may no longer see the room
//! is `removed`, the others' room roles follow the host rule.

use std::sync::Arc;

use serde_json::json;
use tokio::sync::Mutex;
use uuid::Uuid;
use vtp_store::{MemberRole, Room, RoomRole, User};

use super::{RoomHub, Slot, can_see, is_host};

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
            let told = (SESSION_REVOKED, json!({ "reason": reason }));
            self.take_out(&room_id, &arc, &mut slot, user_id, told, "account revoked")
                .await;
        }
    }

    /// Takes every peer of `user_id` out of the room: each connection is
    /// told `told` (event, payload) first, the others get `peer-left`.
    async fn take_out(
        &self,
        room_id: &str,
        arc: &Arc<Mutex<Slot>>,
        slot: &mut Slot,
        user_id: Uuid,
        told: (&'static str, serde_json::Value),
        why: &str,
    ) {
        let Some(live) = slot.live.as_ref() else {
            return;
        };
        let peers: Vec<(String, Option<String>)> = live
            .peers
            .iter()
            .filter(|p| p.user_id == user_id)
            .map(|p| (p.peer_id.clone(), p.conn.clone()))
            .collect();
        for (peer_id, conn) in peers {
            self.publish(conn.into_iter().collect(), told.0, told.1.clone());
            tracing::info!(room_id, peer_id, why, "peer taken out of the room");
            self.remove_peer(room_id, arc, slot, &peer_id, why).await;
        }
    }

    /// Recomputes the room role of `user`'s peers after their platform
    /// role changed: a host who is no longer one becomes a participant,
    /// someone the host rule now makes a host becomes one; a presenter
    /// who stays no host keeps being a presenter.
    pub async fn refresh_user_role(&self, user: &User) {
        for (room_id, arc) in self.live_slots() {
            let member = match self.store.member_role(&room_id, user.id).await {
                Ok(member) => member,
                Err(e) => {
                    tracing::error!(error = %e, room_id, "could not read the roster");
                    continue;
                }
            };
            let mut slot = arc.lock().await;
            self.apply_host_rule(&room_id, &mut slot, user, member)
                .await;
        }
    }

    /// Brings the live peers of the room in line with its roster and access
    /// after a change to either: peers of `only` (everyone's when `None`)
    /// who may no longer see the room get `removed` and leave it; the
    /// others' room roles follow the host rule.
    pub async fn reconcile_room(&self, room_id: &str, only: Option<Uuid>) {
        let Some(arc) = self.existing_slot(room_id) else {
            return;
        };
        let users: Vec<Uuid> = {
            let slot = arc.lock().await;
            let Some(live) = slot.live.as_ref() else {
                return;
            };
            let mut ids: Vec<Uuid> = live
                .peers
                .iter()
                .map(|p| p.user_id)
                .filter(|id| only.is_none_or(|only| only == *id))
                .collect();
            ids.sort_unstable();
            ids.dedup();
            ids
        };
        for user_id in users {
            // Read outside the room's lock; a change racing this one
            // reconciles again after it.
            let standing = async {
                let user = self.store.user_by_id(user_id).await?;
                let member = self.store.member_role(room_id, user_id).await?;
                Ok::<_, vtp_store::StoreError>((user, member))
            };
            let (user, member) = match standing.await {
                Ok(found) => found,
                Err(e) => {
                    tracing::error!(error = %e, room_id, %user_id, "could not read a peer's standing");
                    continue;
                }
            };
            let mut slot = arc.lock().await;
            let Some(live) = slot.live.as_ref() else {
                return;
            };
            if can_see(&user, &live.room, member) {
                self.apply_host_rule(room_id, &mut slot, &user, member)
                    .await;
                continue;
            }
            let told = (
                "removed",
                json!({ "reason": "you are no longer a member of this class" }),
            );
            self.take_out(
                room_id,
                &arc,
                &mut slot,
                user_id,
                told,
                "no longer a member",
            )
            .await;
        }
    }

    /// Gives `user`'s peers in the room the room role the host rule gives
    /// them now (`role-changed` to everyone for each change).
    async fn apply_host_rule(
        &self,
        room_id: &str,
        slot: &mut Slot,
        user: &User,
        member: Option<MemberRole>,
    ) {
        let Some(live) = slot.live.as_mut() else {
            return;
        };
        let room: &Room = &live.room;
        let host = is_host(user, room, member);
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
