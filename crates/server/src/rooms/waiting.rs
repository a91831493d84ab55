//! The waiting room (`settings.waitingRoom`): students who join a room
//! with a waiting room are kept out of it (no peer, no media, no chat, no
//! roster) until a host is present (`until_host_present`) or a host lets
//! them in (`host_admits`). Hosts never wait.
//!
//! The queue lives beside the live room, not in it: people may wait before
//! any session exists (a class starts when a host joins). Lock order: a
//! room's slot lock first, then the queue's mutex, which is never held
//! across an `.await`.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use tokio::sync::Mutex;
use uuid::Uuid;
use vtp_store::{MAX_DISPLAY_NAME_CHARS, MemberRole, Room, RoomRole, User, WaitingRoom};

use super::{JoinOutcome, LiveRoom, RoomHub, SignalCode, SignalError, Slot, is_host};
use crate::bus::ConnId;

/// Most people waiting for one room at once (`limit_reached` beyond): each
/// `waiting-changed` lists them all, so this bounds its size (42 kB at most
/// with the longest names: `rooms::worst_case`).
pub const MAX_WAITING: usize = 100;

/// Why someone waits, as the waiting person's page says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitStatus {
    /// No host is in the room yet: "The class has not started yet".
    NotStarted,
    /// A host is in the room and lets people in one by one.
    WaitingForHost,
}

/// One person waiting.
pub(crate) struct Waiter {
    waiting_id: String,
    conn: ConnId,
    user_id: Uuid,
    display_name: String,
    since: DateTime<Utc>,
    /// The status this person was last told.
    status: WaitStatus,
}

/// A waiting person as hosts see them (`waiting-changed`).
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WaitingView {
    pub waiting_id: String,
    pub user_id: Uuid,
    pub display_name: String,
    pub since: DateTime<Utc>,
}

/// `join-room`'s answer to someone who must wait.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WaitingAnswer {
    pub room_id: String,
    /// Always true: tells this answer from a join.
    pub waiting: bool,
    pub waiting_id: String,
    pub status: WaitStatus,
}

/// The answer to `join-room`: in the room, or waiting to be let in.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum JoinAnswer {
    Joined(Box<JoinOutcome>),
    Waiting(WaitingAnswer),
}

/// Which waiting people a host's `admit` or `deny` is about.
#[derive(Clone, Copy, Debug)]
pub enum WaitTarget<'a> {
    One(&'a str),
    All,
}

/// The display name a person goes by in a room: the one asked for
/// (trimmed; at most `MAX_DISPLAY_NAME_CHARS`, no control characters), else
/// the account's.
pub(crate) fn display_name_for(user: &User, asked: Option<&str>) -> Result<String, SignalError> {
    match asked.map(str::trim).filter(|n| !n.is_empty()) {
        Some(name)
            if name.chars().count() > MAX_DISPLAY_NAME_CHARS
                || name.chars().any(char::is_control) =>
        {
            Err(SignalError::bad_request(format!(
                "displayName: at most {MAX_DISPLAY_NAME_CHARS} characters, no control characters"
            )))
        }
        Some(name) => Ok(name.to_string()),
        None => Ok(user.display_name.clone()),
    }
}

/// Puts a person in a queue, or (already there: another tab, a reconnect)
/// moves their entry to this connection; at most `MAX_WAITING` people.
/// Their `waitingId`.
fn place(
    queue: &mut Vec<Waiter>,
    user_id: Uuid,
    conn: &str,
    display_name: String,
    status: WaitStatus,
) -> Result<String, SignalError> {
    if let Some(w) = queue.iter_mut().find(|w| w.user_id == user_id) {
        w.conn = conn.to_string();
        w.display_name = display_name;
        w.status = status;
        return Ok(w.waiting_id.clone());
    }
    if queue.len() >= MAX_WAITING {
        return Err(SignalError::new(
            SignalCode::LimitReached,
            format!("{MAX_WAITING} people are waiting for this room already"),
        ));
    }
    let waiting_id = Uuid::new_v4().to_string();
    queue.push(Waiter {
        waiting_id: waiting_id.clone(),
        conn: conn.to_string(),
        user_id,
        display_name,
        since: Utc::now(),
        status,
    });
    Ok(waiting_id)
}

fn host_present(live: &LiveRoom) -> bool {
    live.peers.iter().any(|p| p.role == RoomRole::Host)
}

fn status_in(live: Option<&LiveRoom>) -> WaitStatus {
    match live {
        Some(live)
            if host_present(live) && live.room.settings.waiting_room == WaitingRoom::HostAdmits =>
        {
            WaitStatus::WaitingForHost
        }
        _ => WaitStatus::NotStarted,
    }
}

fn host_conns(live: &LiveRoom) -> Vec<ConnId> {
    live.peers
        .iter()
        .filter(|p| p.role == RoomRole::Host)
        .filter_map(|p| p.conn.clone())
        .collect()
}

impl RoomHub {
    fn with_queue<R>(&self, room_id: &str, f: impl FnOnce(&mut Vec<Waiter>) -> R) -> R {
        let mut all = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        let queue = all.entry(room_id.to_string()).or_default();
        let out = f(queue);
        if queue.is_empty() {
            all.remove(room_id);
        }
        out
    }

    fn waiting_views(&self, room_id: &str) -> Vec<WaitingView> {
        self.with_queue(room_id, |queue| {
            queue
                .iter()
                .map(|w| WaitingView {
                    waiting_id: w.waiting_id.clone(),
                    user_id: w.user_id,
                    display_name: w.display_name.clone(),
                    since: w.since,
                })
                .collect()
        })
    }

    /// Tells the room's hosts (or the connections given) who waits now.
    fn tell_hosts(&self, room_id: &str, live: &LiveRoom, only: Option<ConnId>) {
        let conns = match only {
            Some(conn) => vec![conn],
            None => host_conns(live),
        };
        if conns.is_empty() {
            return;
        }
        let waiting = self.waiting_views(room_id);
        self.publish(
            conns,
            "waiting-changed",
            json!({ "roomId": room_id, "waiting": waiting }),
        );
    }

    /// Whether this join must wait, given the live room (or none yet).
    /// Called under the room's lock.
    pub(crate) fn must_wait(
        &self,
        live: Option<&LiveRoom>,
        room: &Room,
        user: &User,
        member: Option<MemberRole>,
    ) -> bool {
        if is_host(user, room, member) {
            return false;
        }
        let mode = room.settings.waiting_room;
        let Some(live) = live else {
            return mode != WaitingRoom::Off;
        };
        // Admitted once this session (a reload, a second tab), still in the
        // room (the grace period), or removed (`join_live` refuses them).
        let known = live.admitted.contains(&user.id)
            || live.removed_users.contains(&user.id)
            || live.peers.iter().any(|p| p.user_id == user.id);
        match mode {
            WaitingRoom::Off => false,
            _ if known => false,
            WaitingRoom::UntilHostPresent => !host_present(live),
            WaitingRoom::HostAdmits => true,
        }
    }

    /// Puts the caller in the room's queue (again: one entry per person,
    /// the newest connection wins) and tells the hosts.
    pub(crate) fn enqueue(
        &self,
        slot: &Slot,
        room_id: &str,
        user: &User,
        conn: &str,
        display_name: Option<&str>,
    ) -> Result<JoinAnswer, SignalError> {
        let display_name = display_name_for(user, display_name)?;
        let live = slot.live.as_ref();
        let status = status_in(live);
        let waiting_id = self.with_queue(room_id, |queue| {
            place(queue, user.id, conn, display_name, status)
        })?;
        tracing::info!(room_id, user_id = %user.id, %waiting_id, "waiting to be let in");
        if let Some(live) = live {
            self.tell_hosts(room_id, live, None);
        }
        Ok(JoinAnswer::Waiting(WaitingAnswer {
            room_id: room_id.to_string(),
            waiting: true,
            waiting_id,
            status,
        }))
    }

    /// After a join, a leave or a settings change in a live room: lets
    /// everyone in when the room no longer makes them wait (a host came to
    /// a `until_host_present` room, the waiting room was turned off), and
    /// tells the others what they now wait for. A host who just joined
    /// (`joined_host`) gets the list.
    pub(crate) fn sync_waiting(
        &self,
        room_id: &str,
        live: &mut LiveRoom,
        joined_host: Option<ConnId>,
    ) {
        let mode = live.room.settings.waiting_room;
        let open = mode == WaitingRoom::Off
            || (mode == WaitingRoom::UntilHostPresent && host_present(live));
        if open {
            let admitted = self.with_queue(room_id, std::mem::take);
            self.let_in(room_id, live, admitted);
        } else {
            self.retell(room_id, status_in(Some(live)));
        }
        if let Some(conn) = joined_host {
            self.tell_hosts(room_id, live, Some(conn));
        }
    }

    /// Tells each waiting person whose status changed.
    fn retell(&self, room_id: &str, status: WaitStatus) {
        let changed: Vec<ConnId> = self.with_queue(room_id, |queue| {
            queue
                .iter_mut()
                .filter(|w| w.status != status)
                .map(|w| {
                    w.status = status;
                    w.conn.clone()
                })
                .collect()
        });
        if !changed.is_empty() {
            self.publish(
                changed,
                "waiting-status",
                json!({ "roomId": room_id, "status": status }),
            );
        }
    }

    fn let_in(&self, room_id: &str, live: &mut LiveRoom, admitted: Vec<Waiter>) {
        if admitted.is_empty() {
            return;
        }
        for w in &admitted {
            live.admitted.insert(w.user_id);
            tracing::info!(room_id, user_id = %w.user_id, waiting_id = %w.waiting_id, "let in");
        }
        self.publish(
            admitted.into_iter().map(|w| w.conn).collect(),
            "admitted",
            json!({ "roomId": room_id }),
        );
    }

    /// A host's `admit` (`deny: false`) or `deny`.
    pub async fn decide_waiting(
        &self,
        conn: &str,
        room_id: &str,
        target: WaitTarget<'_>,
        deny: bool,
    ) -> Result<usize, SignalError> {
        self.with_member(conn, room_id, async |hub, _arc, slot, peer_id| {
            let live = slot.live_mut(room_id)?;
            if live.peer(&peer_id).is_none_or(|p| p.role != RoomRole::Host) {
                return Err(SignalError::forbidden(
                    "only a host may let people in or turn them away",
                ));
            }
            let chosen = hub.with_queue(room_id, |queue| match target {
                WaitTarget::All => Ok(std::mem::take(queue)),
                WaitTarget::One(id) => match queue.iter().position(|w| w.waiting_id == id) {
                    Some(i) => Ok(vec![queue.remove(i)]),
                    None => Err(SignalError::not_found(format!(
                        "nobody is waiting as {id:?}"
                    ))),
                },
            })?;
            let count = chosen.len();
            if deny {
                for w in &chosen {
                    tracing::info!(room_id, user_id = %w.user_id, by = %peer_id, "not let in");
                }
                if count > 0 {
                    hub.publish(
                        chosen.into_iter().map(|w| w.conn).collect(),
                        "denied",
                        json!({ "roomId": room_id, "reason": "a host did not let you in" }),
                    );
                }
            } else {
                hub.let_in(room_id, live, chosen);
            }
            hub.tell_hosts(room_id, live, None);
            Ok(count)
        })
        .await
    }

    /// The connection stops waiting for the room (`leave-room`, or the
    /// connection went). Whether it was waiting.
    pub async fn stop_waiting(&self, conn: &str, room_id: &str) -> bool {
        let arc: Option<Arc<Mutex<Slot>>> = self.existing_slot(room_id);
        let slot = match &arc {
            Some(arc) => Some(arc.lock().await),
            None => None,
        };
        let removed = self.with_queue(room_id, |queue| {
            let before = queue.len();
            queue.retain(|w| w.conn != conn);
            before != queue.len()
        });
        if removed {
            tracing::info!(room_id, conn, "stopped waiting");
            if let Some(live) = slot.as_ref().and_then(|s| s.live.as_ref()) {
                self.tell_hosts(room_id, live, None);
            }
        }
        removed
    }

    /// Whether the connection waits for the room.
    pub fn is_waiting(&self, conn: &str, room_id: &str) -> bool {
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(room_id)
            .is_some_and(|q| q.iter().any(|w| w.conn == conn))
    }

    /// A session ended by a host (`room-closed`, `session-ended`): the
    /// people waiting for it are told the same and the queue is emptied.
    pub(crate) fn dismiss_waiting(&self, room_id: &str, event: &'static str, reason: &str) {
        let gone = self.with_queue(room_id, std::mem::take);
        if !gone.is_empty() {
            self.publish(
                gone.into_iter().map(|w| w.conn).collect(),
                event,
                json!({ "reason": reason }),
            );
        }
    }

    /// A session ended by itself (everyone left): whoever waits, waits for
    /// the next one.
    pub(crate) fn session_over_for_waiting(&self, room_id: &str) {
        self.retell(room_id, WaitStatus::NotStarted);
    }
}

/// Waiting queues by room id.
pub(crate) type Queues = HashMap<String, Vec<Waiter>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_holds_one_entry_per_person_and_at_most_max_waiting() {
        let mut queue = Vec::new();
        let first = Uuid::new_v4();
        let id = place(
            &mut queue,
            first,
            "c0",
            "Ann".into(),
            WaitStatus::NotStarted,
        )
        .unwrap();
        for i in 1..MAX_WAITING {
            place(
                &mut queue,
                Uuid::new_v4(),
                &format!("c{i}"),
                "x".into(),
                WaitStatus::NotStarted,
            )
            .unwrap();
        }
        assert_eq!(queue.len(), MAX_WAITING);
        let refused = place(
            &mut queue,
            Uuid::new_v4(),
            "late",
            "y".into(),
            WaitStatus::NotStarted,
        )
        .unwrap_err();
        assert_eq!(refused.code, SignalCode::LimitReached);
        assert_eq!(queue.len(), MAX_WAITING, "nothing added");
        // The same person again (a second tab) takes over the entry, even when full.
        let again = place(
            &mut queue,
            first,
            "tab2",
            "Ann B".into(),
            WaitStatus::WaitingForHost,
        )
        .unwrap();
        assert_eq!(again, id);
        assert_eq!(queue.len(), MAX_WAITING);
        assert_eq!(
            (queue[0].conn.as_str(), queue[0].display_name.as_str()),
            ("tab2", "Ann B")
        );
    }
}
