//! What the operator's page shows of the live rooms (`GET /operations`):
//! each room with its participants and, per participant, the bitrate, loss
//! and health the SFU measures; and the recordings in progress with the
//! bytes they have written so far.
//!
//! Bounded: at most [`MAX_ROOMS`] rooms (the fullest first), each slot's
//! lock held only to copy ids (and waited for at most `SFU_STATS_TIMEOUT`),
//! and one SFU snapshot per room taken after the lock is released, all at
//! once and each within `SFU_STATS_TIMEOUT`.

use std::path::PathBuf;
use std::time::Duration;

use futures_util::future::join_all;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;
use vtp_sfu::engine::{RouterSnapshot, StreamStats};
use vtp_store::RoomRole;

use super::RoomHub;
use super::info::SFU_STATS_TIMEOUT;

/// Rooms the overview lists at most (the ones with most peers first).
pub const MAX_ROOMS: usize = 100;

/// A participant's health, from the SFU's scores and loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Scores 7 and up, under 2 % loss.
    Good,
    /// Scores 4 to 6, or 2 % to 10 % loss.
    Fair,
    /// Scores under 4, or 10 % loss and more.
    Poor,
    /// Its connection dropped: within the reconnect grace.
    Reconnecting,
    /// No media measured yet (or the SFU did not answer).
    Unknown,
}

/// One participant of a live room, with what the SFU measures of it.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantOverview {
    pub peer_id: String,
    pub user_id: Uuid,
    pub display_name: String,
    pub role: RoomRole,
    /// Bits per second the participant sends (all its tracks).
    pub bitrate_in: u64,
    /// Bits per second the participant receives (all its consumers).
    pub bitrate_out: u64,
    /// The highest recent fraction of packets lost (0 to 1) over its tracks,
    /// both ways.
    pub loss: f64,
    /// The lowest score (0 to 10) over its tracks, both ways; absent when
    /// nothing was measured.
    pub score: Option<u8>,
    pub health: Health,
    pub producers: usize,
    pub consumers: usize,
}

/// One live room.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoomOverview {
    pub room_id: String,
    pub title: String,
    pub session_id: Uuid,
    pub recording_id: Option<Uuid>,
    /// Whether the SFU answered for this room (no figures otherwise).
    pub media_stats: bool,
    pub participants: Vec<ParticipantOverview>,
}

/// A recording in progress.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordingInProgress {
    pub recording_id: Uuid,
    pub room_id: String,
    pub title: String,
    /// Seconds since it started.
    pub seconds: u64,
    /// Bytes of its files on disk now.
    pub bytes_written: u64,
}

/// What a room's lock gives: ids only.
struct Copied {
    room_id: String,
    title: String,
    session_id: Uuid,
    router_id: String,
    recording: Option<(Uuid, PathBuf, u64)>,
    peers: Vec<CopiedPeer>,
}

struct CopiedPeer {
    peer_id: String,
    user_id: Uuid,
    display_name: String,
    role: RoomRole,
    connected: bool,
    producers: Vec<String>,
    consumers: Vec<String>,
}

impl RoomHub {
    /// Ids of the live rooms, copied one lock at a time. A room whose lock
    /// is busy (a join waiting on a slow SFU, say) is waited for up to
    /// `wait`, then left out: the answer comes in time.
    async fn copy_live(&self, wait: Duration) -> Vec<Copied> {
        let mut copied = Vec::new();
        for slot in self.all_slots() {
            let slot = match slot.try_lock() {
                Ok(slot) => slot,
                Err(_) if wait.is_zero() => continue,
                Err(_) => match tokio::time::timeout(wait, slot.lock()).await {
                    Ok(slot) => slot,
                    Err(_) => continue,
                },
            };
            let Some(live) = slot.live.as_ref() else {
                continue;
            };
            copied.push(Copied {
                room_id: live.room.id.clone(),
                title: live.room.title.clone(),
                session_id: live.session_id,
                router_id: live.router_id.clone(),
                recording: live
                    .recording
                    .as_ref()
                    .map(|r| (r.id, r.dir().to_path_buf(), r.elapsed().as_secs())),
                peers: live
                    .peers
                    .iter()
                    .map(|p| CopiedPeer {
                        peer_id: p.peer_id.clone(),
                        user_id: p.user_id,
                        display_name: p.display_name.clone(),
                        role: p.role,
                        connected: p.conn.is_some(),
                        producers: p.producers.iter().map(|x| x.producer_id.clone()).collect(),
                        consumers: p.consumers.iter().map(|c| c.id.clone()).collect(),
                    })
                    .collect(),
            });
        }
        copied.sort_by(|a, b| {
            b.peers
                .len()
                .cmp(&a.peers.len())
                .then(a.room_id.cmp(&b.room_id))
        });
        copied.truncate(MAX_ROOMS);
        copied
    }

    /// The live rooms with their participants' media figures, and the
    /// recordings in progress.
    pub async fn overview(&self) -> (Vec<RoomOverview>, Vec<RecordingInProgress>) {
        let copied = self.copy_live(SFU_STATS_TIMEOUT).await;
        let snapshots = join_all(copied.iter().map(|c| self.media_snapshot(&c.router_id))).await;
        let recordings = self.recordings_in_progress_of(&copied).await;
        let rooms = copied
            .into_iter()
            .zip(snapshots)
            .map(|(c, snapshot)| RoomOverview {
                participants: c
                    .peers
                    .iter()
                    .map(|p| participant(p, snapshot.as_ref()))
                    .collect(),
                room_id: c.room_id,
                title: c.title,
                session_id: c.session_id,
                recording_id: c.recording.map(|r| r.0),
                media_stats: snapshot.is_some(),
            })
            .collect();
        (rooms, recordings)
    }

    /// The recordings in progress on this node, for `/metrics`: rooms
    /// whose lock is busy are left out rather than waited for (a scrape
    /// must not hang on a room).
    pub async fn recordings_in_progress(&self) -> Vec<RecordingInProgress> {
        let copied = self.copy_live(Duration::ZERO).await;
        self.recordings_in_progress_of(&copied).await
    }

    async fn recordings_in_progress_of(&self, copied: &[Copied]) -> Vec<RecordingInProgress> {
        let mut out = Vec::new();
        for c in copied {
            let Some((id, dir, seconds)) = &c.recording else {
                continue;
            };
            out.push(RecordingInProgress {
                recording_id: *id,
                room_id: c.room_id.clone(),
                title: c.title.clone(),
                seconds: *seconds,
                bytes_written: bytes_in(dir.clone()).await,
            });
        }
        out
    }
}

/// Bytes of the files directly in `dir` (a recording's tracks and manifest).
async fn bytes_in(dir: PathBuf) -> u64 {
    tokio::task::spawn_blocking(move || {
        std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok()?.metadata().ok())
                    .filter(|m| m.is_file())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    })
    .await
    .unwrap_or(0)
}

fn participant(p: &CopiedPeer, snapshot: Option<&RouterSnapshot>) -> ParticipantOverview {
    let mut sent: Vec<&StreamStats> = Vec::new();
    let mut received: Vec<&StreamStats> = Vec::new();
    if let Some(s) = snapshot {
        for producer in s.producers.iter().filter(|x| p.producers.contains(&x.id)) {
            sent.extend(
                producer
                    .layers
                    .iter()
                    .filter(|l| l.active)
                    .map(|l| &l.stats),
            );
        }
        received.extend(
            s.consumers
                .iter()
                .filter(|c| p.consumers.contains(&c.id) && !c.paused && !c.producer_paused)
                .map(|c| &c.stats),
        );
    }
    let bitrate_in = sent.iter().map(|s| s.bitrate).sum();
    let bitrate_out = received.iter().map(|s| s.bitrate).sum();
    let all = || sent.iter().chain(received.iter());
    let loss = all().map(|s| s.fraction_lost).fold(0.0, f64::max);
    // A stream that sent nothing yet has no score worth showing.
    let score = all().filter(|s| s.packets > 0).map(|s| s.score).min();
    ParticipantOverview {
        peer_id: p.peer_id.clone(),
        user_id: p.user_id,
        display_name: p.display_name.clone(),
        role: p.role,
        bitrate_in,
        bitrate_out,
        loss,
        score,
        health: health(p.connected, score, loss),
        producers: p.producers.len(),
        consumers: p.consumers.len(),
    }
}

fn health(connected: bool, score: Option<u8>, loss: f64) -> Health {
    if !connected {
        return Health::Reconnecting;
    }
    let Some(score) = score else {
        return Health::Unknown;
    };
    if score < 4 || loss >= 0.10 {
        Health::Poor
    } else if score < 7 || loss >= 0.02 {
        Health::Fair
    } else {
        Health::Good
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_follows_score_and_loss() {
        assert_eq!(health(false, Some(10), 0.0), Health::Reconnecting);
        assert_eq!(health(true, None, 0.0), Health::Unknown);
        assert_eq!(health(true, Some(10), 0.0), Health::Good);
        assert_eq!(health(true, Some(10), 0.05), Health::Fair);
        assert_eq!(health(true, Some(5), 0.0), Health::Fair);
        assert_eq!(health(true, Some(9), 0.2), Health::Poor);
        assert_eq!(health(true, Some(2), 0.0), Health::Poor);
    }
}
