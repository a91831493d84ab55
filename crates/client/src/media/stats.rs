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

    /// The 64-bit sequence number of a 16-bit one: the candidate nearest to
    /// the highest seen so far, so a wrap (65535 → 0) counts forward and a
    /// late packet from before a wrap counts back. (str0m does this for the
    /// packets it decrypts; count-only mode reads the header itself.)
    pub(crate) fn extend(&self, seq: u16) -> u64 {
        let Some(h) = self.highest else {
            // Start far from zero so a first packet just before a wrap
            // still has room to count back.
            return (1 << 16) + u64::from(seq);
        };
        let base = h & !0xffff;
        [base.wrapping_sub(1 << 16), base, base + (1 << 16)]
            .into_iter()
            .map(|b| b + u64::from(seq))
            .min_by_key(|c| c.abs_diff(h))
            .unwrap_or(h)
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
    if !count_arrival(stats, tracker, seq, payload.len(), now) {
        return;
    }
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

/// Counts one packet that count-only mode read from its clear-text RTP
/// header without decrypting it: `bytes` is the encrypted payload (with
/// the SRTP tag); the payload cannot be checked, keyframes not seen.
pub(crate) fn count_header(
    stats: &mut ConsumerStats,
    tracker: &mut RxTracker,
    kind: Kind,
    header: &PlainRtp,
    now: Instant,
) {
    if header.padded {
        // Probing padding sets the P bit; the synthetic media never does.
        stats.padding += 1;
        return;
    }
    let seq = tracker.extend(header.seq);
    if count_arrival(stats, tracker, seq, header.payload_len, now)
        && (kind == Kind::Audio || header.marker)
    {
        stats.frames += 1;
    }
}

/// The accounting every arrival shares; false for a duplicate.
fn count_arrival(
    stats: &mut ConsumerStats,
    tracker: &mut RxTracker,
    seq: u64,
    bytes: usize,
    now: Instant,
) -> bool {
    match tracker.record(seq) {
        Arrival::Duplicate => {
            stats.duplicates += 1;
            return false;
        }
        Arrival::Late => stats.late += 1,
        Arrival::New => {}
    }
    stats.lost = tracker.lost();
    stats.packets += 1;
    stats.bytes += bytes as u64;
    stats.first_packet_at.get_or_insert(now);
    stats.last_packet_at = Some(now);
    true
}

/// What the clear-text part of an SRTP packet tells (RFC 3550 §5.1; SRTP
/// encrypts only the payload, RFC 3711 §3.1).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct PlainRtp {
    pub ssrc: u32,
    pub seq: u16,
    pub marker: bool,
    /// The P bit: the (encrypted) payload ends with padding.
    pub padded: bool,
    /// Bytes after the header (encrypted payload and authentication tag).
    pub payload_len: usize,
}

/// Reads an RTP header, or `None` for anything else (STUN, DTLS, RTCP —
/// whose packet types 192–223 would be RTP payload types 64–95 with the
/// marker bit — or a truncated packet).
pub(crate) fn plain_rtp(data: &[u8]) -> Option<PlainRtp> {
    let (&b0, &b1) = (data.first()?, data.get(1)?);
    if b0 >> 6 != 2 || (64..=95).contains(&(b1 & 0x7f)) {
        return None;
    }
    let mut header = 12 + 4 * usize::from(b0 & 0x0f);
    if b0 & 0x10 != 0 {
        let words = data.get(header + 2..header + 4)?;
        header += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
    }
    let payload_len = data.len().checked_sub(header)?;
    let seq = data.get(2..4)?;
    let ssrc = data.get(8..12)?;
    Some(PlainRtp {
        ssrc: u32::from_be_bytes([ssrc[0], ssrc[1], ssrc[2], ssrc[3]]),
        seq: u16::from_be_bytes([seq[0], seq[1]]),
        marker: b1 & 0x80 != 0,
        padded: b0 & 0x20 != 0,
        payload_len,
    })
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

    #[test]
    fn sequence_numbers_extend_across_a_wrap_both_ways() {
        let mut t = RxTracker::default();
        let first = t.extend(65_534);
        t.record(first);
        let after_wrap = t.extend(1);
        assert_eq!(after_wrap, first + 3);
        t.record(after_wrap);
        // A late packet from before the wrap counts back, and repairs.
        let late = t.extend(65_535);
        assert_eq!(late, first + 1);
        assert!(matches!(t.record(late), Arrival::Late));
        assert_eq!(t.lost(), 1);
    }

    #[test]
    fn the_clear_text_header_is_read_and_rtcp_is_not_rtp() {
        // V=2, X=1, CC=1, marker, PT 96, seq 0x1234, ts, SSRC 0xdeadbeef,
        // one CSRC, a one-word extension, then 5 payload bytes.
        let mut p = vec![
            0x91,
            0x80 | 96,
            0x12,
            0x34,
            0,
            0,
            0,
            1,
            0xde,
            0xad,
            0xbe,
            0xef,
        ];
        p.extend_from_slice(&[0, 0, 0, 7]);
        p.extend_from_slice(&[0xbe, 0xde, 0, 1, 1, 2, 3, 4]);
        p.extend_from_slice(&[9; 5]);
        let h = plain_rtp(&p).unwrap();
        assert_eq!(
            h,
            PlainRtp {
                ssrc: 0xdead_beef,
                seq: 0x1234,
                marker: true,
                padded: false,
                payload_len: 5
            }
        );
        // A receiver report (PT 201) is RTCP.
        assert_eq!(plain_rtp(&[0x81, 201, 0, 1, 0, 0, 0, 1]), None);
        // An extension that runs past the end is refused.
        assert_eq!(plain_rtp(&p[..20]), None);
        // STUN (first two bits 00) and DTLS (20–63) are not RTP.
        assert_eq!(plain_rtp(&[0x00, 0x01, 0, 0]), None);
        assert_eq!(plain_rtp(&[22, 0xfe, 0xfd]), None);
    }
}
