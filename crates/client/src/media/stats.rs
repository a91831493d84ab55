//! Counters of the media peer, as snapshots for tests and the load generator.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Instant;

use super::params::Kind;
use super::payload;

/// One transport.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransportStats {
    pub id: String,
    /// `"send"` or `"recv"`.
    pub direction: &'static str,
    pub local_addr: SocketAddr,
    pub remote_addr: SocketAddr,
    pub connected: bool,
    /// When ICE and DTLS came up.
    pub connected_at: Option<Instant>,
    pub datagrams_in: u64,
    pub bytes_in: u64,
    pub datagrams_out: u64,
    pub bytes_out: u64,
    /// Datagrams str0m refused (unparseable, not ours, …).
    pub datagrams_dropped: u64,
}

/// One simulcast layer (or the single stream) of a producer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LayerStats {
    pub rid: Option<String>,
    pub ssrc: u32,
    pub rtx_ssrc: Option<u32>,
    pub packets: u64,
    pub bytes: u64,
    pub frames: u64,
    pub keyframes: u64,
}

/// One local producer (what the synthetic source sent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducerStats {
    pub mid: String,
    pub kind: Kind,
    /// Sum over the layers.
    pub packets: u64,
    pub bytes: u64,
    pub frames: u64,
    pub keyframes: u64,
    /// PLI and FIR received for this producer.
    pub keyframe_requests: u64,
    pub layers: Vec<LayerStats>,
}

/// One remote consumer (what arrived, after str0m's NACK/RTX repair).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConsumerStats {
    pub consumer_id: String,
    pub producer_id: String,
    pub mid: String,
    pub ssrc: u32,
    /// Distinct RTP packets with media (duplicates and padding excluded).
    pub packets: u64,
    /// Payload bytes of those packets.
    pub bytes: u64,
    /// Video: packets with the marker bit (last packet of a frame).
    /// Audio: every packet (one 20 ms frame each).
    pub frames: u64,
    /// Video: first packets of VP8 keyframes.
    pub keyframes: u64,
    /// Sequence numbers skipped and not (yet) repaired; with RTX most gaps
    /// are filled within a round trip.
    pub lost: u64,
    /// Packets that arrived after a later one (NACK/RTX repairs, reorder).
    pub late: u64,
    pub duplicates: u64,
    /// Packets with an empty payload (padding).
    pub padding: u64,
    /// Payloads that do not parse as this peer's synthetic VP8/Opus.
    pub integrity_failures: u64,
    /// Keyframe requests this peer sent for the consumer.
    pub keyframe_requests_sent: u64,
    /// NACKs str0m sent for the stream (from its periodic ingress stats).
    pub nacks_sent: u64,
    /// Interarrival jitter of the last receiver report str0m sent, in µs.
    pub jitter_us: u64,
    /// When the first packet of a VP8 keyframe arrived (video).
    pub first_keyframe_at: Option<Instant>,
    pub first_packet_at: Option<Instant>,
    pub last_packet_at: Option<Instant>,
}

/// Everything of a peer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerStats {
    pub transports: Vec<TransportStats>,
    pub producers: Vec<ProducerStats>,
    pub consumers: Vec<ConsumerStats>,
}

/// At most this many missing sequence numbers are remembered per consumer;
/// older ones stay counted as lost.
const MAX_MISSING: usize = 4096;

/// Loss and repair accounting of one received stream.
#[derive(Debug, Default)]
pub(crate) struct RxTracker {
    highest: Option<u64>,
    missing: BTreeSet<u64>,
    forgotten: u64,
}

pub(crate) enum Arrival {
    New,
    Late,
    Duplicate,
}

impl RxTracker {
    pub(crate) fn record(&mut self, seq: u64) -> Arrival {
        match self.highest {
            None => {
                self.highest = Some(seq);
                Arrival::New
            }
            Some(h) if seq > h => {
                // Remember what was skipped (bounded).
                let skipped = seq - h - 1;
                if skipped as usize > MAX_MISSING {
                    self.forgotten += skipped;
                } else {
                    self.missing.extend(h + 1..seq);
                }
                while self.missing.len() > MAX_MISSING {
                    self.missing.pop_first();
                    self.forgotten += 1;
                }
                self.highest = Some(seq);
                Arrival::New
            }
            Some(_) => {
                if self.missing.remove(&seq) {
                    Arrival::Late
                } else {
                    Arrival::Duplicate
                }
            }
        }
    }

    pub(crate) fn lost(&self) -> u64 {
        self.missing.len() as u64 + self.forgotten
    }
}

/// Counts one received packet into `stats`.
pub(crate) fn count_packet(
    stats: &mut ConsumerStats,
    tracker: &mut RxTracker,
    kind: Kind,
    seq: u64,
    marker: bool,
    payload: &[u8],
    now: Instant,
) {
    if payload.is_empty() {
        stats.padding += 1;
        return;
    }
    match tracker.record(seq) {
        Arrival::Duplicate => {
            stats.duplicates += 1;
            return;
        }
        Arrival::Late => stats.late += 1,
        Arrival::New => {}
    }
    stats.lost = tracker.lost();
    stats.packets += 1;
    stats.bytes += payload.len() as u64;
    stats.first_packet_at.get_or_insert(now);
    stats.last_packet_at = Some(now);
    let parsed = match kind {
        Kind::Video => payload::parse_vp8(payload),
        Kind::Audio => payload::parse_opus(payload),
    };
    match parsed {
        None => stats.integrity_failures += 1,
        Some(p) => {
            if p.keyframe {
                stats.keyframes += 1;
                stats.first_keyframe_at.get_or_insert(now);
            }
        }
    }
    if kind == Kind::Audio || marker {
        stats.frames += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_are_counted_and_repaired() {
        let mut t = RxTracker::default();
        for s in [10, 11, 14, 15] {
            t.record(s);
        }
        assert_eq!(t.lost(), 2);
        assert!(matches!(t.record(12), Arrival::Late));
        assert!(matches!(t.record(12), Arrival::Duplicate));
        assert!(matches!(t.record(9), Arrival::Duplicate));
        assert_eq!(t.lost(), 1);
        t.record(100_000);
        assert_eq!(t.lost(), 1 + (100_000 - 16));
    }
}
