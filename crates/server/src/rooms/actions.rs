//! What peers do in a room besides joining and leaving: chat, hands, host
//! controls and the peer-to-peer relay.

use std::time::Instant;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;
use vtp_store::{ChatQuery, NewChatMessage, Paging, RoomRole};

use super::{ChatView, RoomHub, SignalCode, SignalError, limits};
use crate::audit::{AuditEntry, AuditKind};

/// The answer to `get-chat-history`.
#[derive(Clone, Debug, Serialize)]
pub struct ChatHistory {
    /// Oldest first.
    pub messages: Vec<ChatView>,
    /// Older messages are left: ask again with `before` the first of these.
    pub more: bool,
}

/// `host-action`'s `action`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostAction {
    /// Pause the target's audio producers (or the one named).
    Mute,
    /// Send the target out of the session; they cannot come back to it.
    Remove,
    /// participant → presenter.
    Promote,
    /// presenter → participant.
    Demote,
}

impl RoomHub {
    /// Stores and delivers a chat message; the sender gets the stored copy.
    pub async fn chat(
        &self,
        conn: &str,
        room_id: &str,
        text: &str,
    ) -> Result<ChatView, SignalError> {
        let text = limits::chat_text(text)?;
        self.with_member(conn, room_id, async |hub, _, slot, peer_id| {
            let live = slot.live_mut(room_id)?;
            if let Err(wait) = hub.chat_limiter.check(&peer_id, Instant::now()) {
                return Err(SignalError::new(
                    SignalCode::RateLimited,
                    format!("too many messages; wait {wait} s"),
                ));
            }
            let peer = live
                .peer(&peer_id)
                .ok_or_else(|| SignalError::not_in_room(room_id))?;
            let message = hub
                .store
                .insert_chat_message(
                    &NewChatMessage {
                        room_id: room_id.to_string(),
                        session_id: live.session_id,
                        user_id: peer.user_id,
                        peer_id: peer_id.clone(),
                        display_name: peer.display_name.clone(),
                        body: text,
                    },
                    Utc::now(),
                )
                .await?;
            let view = ChatView::from(message);
            hub.publish(
                live.conns_except(Some(&peer_id)),
                "chat-message",
                serde_json::to_value(&view).unwrap_or(Value::Null),
            );
            live.recent_chat.push_back(view.clone());
            live.chat_total += 1;
            while live.recent_chat.len() > hub.config.chat_history_on_join {
                live.recent_chat.pop_front();
            }
            Ok(view)
        })
        .await
    }

    /// `get-chat-history`: the session's messages before `before` (a
    /// message of this session), oldest first, one page
    /// (`limits::chat_page`); `more` when older ones are left.
    pub async fn chat_history(
        &self,
        conn: &str,
        room_id: &str,
        before: Uuid,
        limit: u32,
    ) -> Result<ChatHistory, SignalError> {
        if !(1..=limits::CHAT_PAGE_MESSAGES).contains(&limit) {
            return Err(SignalError::bad_request(format!(
                "limit: 1 to {}",
                limits::CHAT_PAGE_MESSAGES
            )));
        }
        let session_id = self
            .with_member(conn, room_id, async |_, _, slot, _| {
                Ok(slot.live(room_id)?.session_id)
            })
            .await?;
        let no_such = || SignalError::not_found(format!("no message {before} in this session"));
        let from = match self.store.chat_message(before).await {
            Ok(m) if m.session_id == session_id => m,
            Ok(_) | Err(vtp_store::StoreError::NotFound) => return Err(no_such()),
            Err(e) => return Err(e.into()),
        };
        let page = self
            .store
            .chat_messages(&ChatQuery {
                room_id: room_id.to_string(),
                session_id: Some(session_id),
                attended_by: None,
                paging: Paging::After {
                    after: Some((from.sent_at, from.id)),
                    limit,
                },
            })
            .await?;
        let mut older: Vec<ChatView> = page.items.into_iter().map(ChatView::from).collect();
        older.reverse();
        let messages = limits::chat_page(&older, older.len(), limits::CHAT_PAGE_BYTES);
        Ok(ChatHistory {
            more: page.next.is_some() || messages.len() < older.len(),
            messages,
        })
    }

    /// Raises or lowers the caller's hand; others are told when it changes.
    pub async fn set_hand(
        &self,
        conn: &str,
        room_id: &str,
        raised: bool,
    ) -> Result<(), SignalError> {
        self.with_member(conn, room_id, async |hub, _, slot, peer_id| {
            let live = slot.live_mut(room_id)?;
            let peer = live
                .peer_mut(&peer_id)
                .ok_or_else(|| SignalError::not_in_room(room_id))?;
            if peer.hand_raised != raised {
                peer.hand_raised = raised;
                let event = if raised {
                    "hand-raised"
                } else {
                    "hand-lowered"
                };
                hub.publish(
                    live.conns_except(Some(&peer_id)),
                    event,
                    json!({ "peerId": peer_id }),
                );
            }
            Ok(())
        })
        .await
    }

    /// A host acts on another peer.
    pub async fn host_action(
        &self,
        conn: &str,
        room_id: &str,
        action: HostAction,
        target_id: &str,
        producer_id: Option<&str>,
    ) -> Result<(), SignalError> {
        self.with_member(conn, room_id, async |hub, arc, slot, caller_id| {
            let live = slot.live_mut(room_id)?;
            let caller_role = live.peer(&caller_id).map(|p| p.role);
            let caller_user = live.peer(&caller_id).map(|p| p.user_id);
            if caller_role != Some(RoomRole::Host) {
                return Err(SignalError::forbidden("only hosts may do this"));
            }
            let target = live.peer_mut(target_id).ok_or_else(|| {
                SignalError::not_found(format!("no peer {target_id:?} in this room"))
            })?;
            if target.peer_id == caller_id && action != HostAction::Mute {
                return Err(SignalError::bad_request(
                    "a host cannot do this to themselves",
                ));
            }
            match action {
                HostAction::Mute => {
                    if let Some(id) = producer_id
                        && !target.producers.iter().any(|p| p.producer_id == id)
                    {
                        return Err(SignalError::not_found(format!(
                            "peer {target_id:?} has no producer {id:?}"
                        )));
                    }
                    let selected: Vec<String> = target
                        .producers
                        .iter()
                        .filter(|p| match producer_id {
                            Some(id) => p.producer_id == id,
                            None => p.kind == "audio",
                        })
                        .map(|p| p.producer_id.clone())
                        .collect();
                    let owner = target.peer_id.clone();
                    for id in selected {
                        hub.pause_producer_in(live, &owner, &id, true).await?;
                    }
                    Ok(())
                }
                HostAction::Remove => {
                    if target.role == RoomRole::Host {
                        return Err(SignalError::forbidden("hosts cannot remove other hosts"));
                    }
                    let (user_id, conn) = (target.user_id, target.conn.clone());
                    live.removed_users.insert(user_id);
                    hub.publish(
                        conn.into_iter().collect(),
                        "removed",
                        json!({ "reason": "removed by a host" }),
                    );
                    let target_id = target_id.to_string();
                    hub.config().audit.record_later(
                        AuditEntry::new(AuditKind::ParticipantRemoved)
                            .by_id(caller_user, None)
                            .on("user", user_id)
                            .with_detail(json!({ "roomId": room_id, "peerId": target_id })),
                    );
                    hub.remove_peer(room_id, arc, slot, &target_id, "removed by a host")
                        .await;
                    Ok(())
                }
                HostAction::Promote | HostAction::Demote => {
                    let new_role = match (action, target.role) {
                        (_, RoomRole::Host) => {
                            return Err(SignalError::forbidden("a host's role cannot be changed"));
                        }
                        (HostAction::Promote, _) => RoomRole::Presenter,
                        _ => RoomRole::Participant,
                    };
                    if target.role != new_role {
                        target.role = new_role;
                        let (participant_id, target_peer) =
                            (target.participant_id, target.peer_id.clone());
                        if let Err(e) = hub
                            .store
                            .set_participant_role(participant_id, new_role)
                            .await
                        {
                            tracing::error!(error = %e, "could not record the role change");
                        }
                        hub.publish(
                            live.conns_except(None),
                            "role-changed",
                            json!({ "peerId": target_peer, "role": new_role }),
                        );
                    }
                    Ok(())
                }
            }
        })
        .await
    }

    /// Relays a peer-to-peer signalling message to one peer of the same room,
    /// as the same event with `from` added.
    pub async fn relay(
        &self,
        conn: &str,
        room_id: &str,
        to: &str,
        event: &'static str,
        mut payload: Value,
    ) -> Result<(), SignalError> {
        self.with_member(conn, room_id, async |hub, _, slot, caller_id| {
            let live = slot.live(room_id)?;
            let target_conn = live
                .peer(to)
                .filter(|p| p.peer_id != caller_id)
                .and_then(|p| p.conn.clone())
                .ok_or_else(|| {
                    SignalError::not_found(format!("no connected peer {to:?} in this room"))
                })?;
            if let Some(object) = payload.as_object_mut() {
                object.insert("from".into(), Value::String(caller_id));
            }
            hub.publish(vec![target_conn], event, payload);
            Ok(())
        })
        .await
    }

    /// Closes the room the caller is in, if the caller is a host there.
    pub async fn close_room_as(&self, conn: &str, room_id: &str) -> Result<(), SignalError> {
        if !self.is_host_in(conn, room_id).await? {
            return Err(SignalError::forbidden("only hosts may close the room"));
        }
        self.close_room(room_id, "closed by a host").await?;
        Ok(())
    }

    /// Ends today's session of the room the caller is in, if the caller is
    /// a host there; the room stays open for the next class.
    pub async fn end_session_as(&self, conn: &str, room_id: &str) -> Result<(), SignalError> {
        if !self.is_host_in(conn, room_id).await? {
            return Err(SignalError::forbidden("only hosts may end the class"));
        }
        self.end_live_session(room_id, "ended by a host").await;
        Ok(())
    }

    /// Whether the caller is a host in the room's live session.
    async fn is_host_in(&self, conn: &str, room_id: &str) -> Result<bool, SignalError> {
        self.with_member(conn, room_id, async |_, _, slot, caller_id| {
            Ok(slot
                .live
                .as_ref()
                .and_then(|l| l.peer(&caller_id))
                .map(|p| p.role)
                == Some(RoomRole::Host))
        })
        .await
    }
}
