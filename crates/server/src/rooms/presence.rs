//! Presence: a connection that drops keeps its peers' places for the
//! reconnect grace period (docs/protocol.md, *Presence*).

use std::sync::Arc;

use super::RoomHub;

impl RoomHub {
    /// A connection went away: each of its peers keeps its place for the
    /// grace period, then leaves unless it came back.
    pub async fn connection_lost(self: &Arc<Self>, conn: &str, room_ids: Vec<String>) {
        for room_id in room_ids {
            // Waiting is not a place: it is not kept for a reconnect.
            self.stop_waiting(conn, &room_id).await;
            let Some(arc) = self.existing_slot(&room_id) else {
                continue;
            };
            let mut slot = arc.lock().await;
            let Some(peer) = slot.live.as_mut().and_then(|l| l.peer_of_conn_mut(conn)) else {
                continue;
            };
            peer.conn = None;
            peer.disconnect_epoch += 1;
            let (peer_id, epoch) = (peer.peer_id.clone(), peer.disconnect_epoch);
            tracing::info!(
                room_id,
                peer_id,
                "connection lost; keeping the place for the grace period"
            );
            let hub = Arc::clone(self);
            let grace = self.config.reconnect_grace;
            tokio::spawn(async move {
                tokio::time::sleep(grace).await;
                hub.expire(&room_id, &peer_id, epoch).await;
            });
        }
    }

    async fn expire(&self, room_id: &str, peer_id: &str, epoch: u64) {
        let Some(arc) = self.existing_slot(room_id) else {
            return;
        };
        let mut slot = arc.lock().await;
        let still_gone = slot
            .live
            .as_ref()
            .and_then(|l| l.peer(peer_id))
            .is_some_and(|p| p.conn.is_none() && p.disconnect_epoch == epoch);
        if still_gone {
            self.remove_peer(
                room_id,
                &arc,
                &mut slot,
                peer_id,
                "did not reconnect in time",
            )
            .await;
        }
    }
}
