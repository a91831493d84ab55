//! Reactions and the host's room-wide tools (issue 18): `send-reaction`,
//! `mute-all`, `lower-all-hands` and `ask-to-unmute` of docs/protocol.md.
//! Kept apart from `actions.rs` (one peer at a time) because these act on
//! the whole room or only ever ask.

use std::time::Instant;

use serde::Serialize;
use serde_json::json;
use vtp_store::RoomRole;

use super::{LiveRoom, RoomHub, SignalCode, SignalError};

/// The reactions a peer may send: a closed list, so that a reaction is
/// never free text (no second chat without its checks) and the web app
/// can show each one.
pub const REACTIONS: [&str; 6] = ["👍", "👏", "😂", "😮", "❤️", "🎉"];

/// Reactions a peer may send in a burst; refilled at one a second
/// (`RoomHub::reaction_limiter`).
pub const REACTION_BURST: u32 = 3;

/// `mute-all`'s answer.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct MutedAll {
    /// Peers of whom at least one microphone was paused.
    pub muted: usize,
}

/// `lower-all-hands`' answer.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct LoweredAll {
    /// Hands that were up and are now down.
    pub lowered: usize,
}

/// The caller must be a host of the live room.
fn host_only(live: &LiveRoom, caller_id: &str) -> Result<(), SignalError> {
    match live.peer(caller_id).map(|p| p.role) {
        Some(RoomRole::Host) => Ok(()),
        _ => Err(SignalError::forbidden("only hosts may do this")),
    }
}

impl RoomHub {
    /// `send-reaction`: everyone in the room, the sender included, gets
    /// `reaction { peerId, emoji }`.
    pub async fn react(&self, conn: &str, room_id: &str, emoji: &str) -> Result<(), SignalError> {
        if !REACTIONS.contains(&emoji) {
            return Err(SignalError::bad_request(format!(
                "emoji: one of {}",
                REACTIONS.join(" ")
            )));
        }
        self.with_member(conn, room_id, async |hub, _, slot, peer_id| {
            let live = slot.live(room_id)?;
            if let Err(wait) = hub.reaction_limiter.check(&peer_id, Instant::now()) {
                return Err(SignalError::new(
                    SignalCode::RateLimited,
                    format!("too many reactions; wait {wait} s"),
                ));
            }
            hub.publish(
                live.conns_except(None),
                "reaction",
                json!({ "peerId": peer_id, "emoji": emoji }),
            );
            Ok(())
        })
        .await
    }

    /// `mute-all`: pauses the microphones of every peer who is not a host,
    /// as `host-action` `mute` does for one (the room gets
    /// `producer-paused` for each).
    pub async fn mute_all(&self, conn: &str, room_id: &str) -> Result<MutedAll, SignalError> {
        self.with_member(conn, room_id, async |hub, _, slot, caller_id| {
            let live = slot.live_mut(room_id)?;
            host_only(live, &caller_id)?;
            let targets: Vec<(String, Vec<String>)> = live
                .peers
                .iter()
                .filter(|p| p.role != RoomRole::Host)
                .map(|p| {
                    let mics = p
                        .producers
                        .iter()
                        .filter(|x| x.kind == "audio" && !x.paused)
                        .map(|x| x.producer_id.clone())
                        .collect();
                    (p.peer_id.clone(), mics)
                })
                .filter(|(_, mics): &(String, Vec<String>)| !mics.is_empty())
                .collect();
            let muted = targets.len();
            for (owner, mics) in targets {
                for id in mics {
                    hub.pause_producer_in(live, &owner, &id, true).await?;
                }
            }
            tracing::info!(room_id, peers = muted, "a host muted everyone");
            Ok(MutedAll { muted })
        })
        .await
    }

    /// `lower-all-hands`: every raised hand goes down; everyone, the hand's
    /// owner included, gets `hand-lowered` for each.
    pub async fn lower_all_hands(
        &self,
        conn: &str,
        room_id: &str,
    ) -> Result<LoweredAll, SignalError> {
        self.with_member(conn, room_id, async |hub, _, slot, caller_id| {
            let live = slot.live_mut(room_id)?;
            host_only(live, &caller_id)?;
            let mut lowered = Vec::new();
            for peer in live.peers.iter_mut().filter(|p| p.hand_raised) {
                peer.hand_raised = false;
                lowered.push(peer.peer_id.clone());
            }
            let everyone = live.conns_except(None);
            for peer_id in &lowered {
                hub.publish(
                    everyone.clone(),
                    "hand-lowered",
                    json!({ "peerId": peer_id }),
                );
            }
            Ok(LoweredAll {
                lowered: lowered.len(),
            })
        })
        .await
    }

    /// `ask-to-unmute`: the target gets `unmute-requested { peerId }` (the
    /// host who asks). Only ever a request: the server never unmutes
    /// anyone, the person decides on their page.
    pub async fn ask_to_unmute(
        &self,
        conn: &str,
        room_id: &str,
        target_id: &str,
    ) -> Result<(), SignalError> {
        self.with_member(conn, room_id, async |hub, _, slot, caller_id| {
            let live = slot.live(room_id)?;
            host_only(live, &caller_id)?;
            if target_id == caller_id {
                return Err(SignalError::bad_request("a host cannot ask themselves"));
            }
            let target_conn = live
                .peer(target_id)
                .and_then(|p| p.conn.clone())
                .ok_or_else(|| {
                    SignalError::not_found(format!("no connected peer {target_id:?} in this room"))
                })?;
            hub.publish(
                vec![target_conn],
                "unmute-requested",
                json!({ "peerId": caller_id }),
            );
            Ok(())
        })
        .await
    }
}
