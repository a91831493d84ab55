//! Statistics of producer layers (what arrives) and consumers (what is
//! sent), for the control API's snapshots.
//!
//! # Sources
//!
//! Every `Rtc` is built with a stats interval of [`STATS_INTERVAL`], so
//! str0m emits `MediaIngressStats` and `MediaEgressStats` once per
//! interval and stream (keyed by MID and RID; the engine maps them to a
//! producer layer or a consumer through the transport's MIDs). str0m keeps
//! its per-stream counters private, so these events are the only way to
//! them in RTP mode.
//!
//! * A producer layer (ingress): packets, payload bytes, sequence-number
//!   loss and jitter are counted by the engine on the forwarding path
//!   ([`IngressStats::record`], O(1) per packet, simulated time friendly):
//!   - `packetsLost` = expected − received, where expected spans the
//!     lowest to the highest extended sequence number seen (RFC 3550
//!     §A.3; str0m's NACK/RTX repairs arrive as the original packets, so
//!     this is the loss left after repair; it never goes below 0);
//!   - `fractionLost` = the same over the last whole [`LOSS_WINDOW`]
//!     (counted when a packet arrives after the window ended);
//!   - `jitterMs` = RFC 3550 §6.4.1 interarrival jitter from arrival times
//!     and RTP timestamps of in-order packets, in milliseconds;
//!   - `nackCount`, `pliCount`, `firCount` (requests the engine's `Rtc`
//!     sent to the publisher) and `rttMs` (from RTCP XR DLRR, when the
//!     publisher answers one) come from str0m's ingress stats;
//!   - `bitrate` is the layer's existing one-second meter (0 once inactive).
//!
//!   Simulcast signalled by SSRCs without RIDs: str0m merges the counters
//!   of streams that share a MID and RID, so the request counts and RTT of
//!   all its encodings go to the first one.
//! * A consumer (egress), all from str0m's egress stats: packets and
//!   payload bytes sent (with retransmissions), NACK/PLI/FIR counts
//!   received, and from the receiver's RTCP receiver reports: cumulative
//!   `packetsLost`, `fractionLost` (the average over the reports of the
//!   last interval; the last value is kept while no new report arrives),
//!   `jitterMs`, and `rttMs` (RR's LSR/DLSR). `bitrate` is the payload
//!   bytes sent between the last two stats events, in bits per second.
//!
//! # Score
//!
//! 0 to 10 as mediasoup reports it (10 = perfect):
//!
//! * a producer layer: `10 − min(10, ⌈40 × fractionLost⌉)` while the layer
//!   is active, 0 when it sends nothing (see `LAYER_INACTIVE_AFTER`): any
//!   loss costs a point, each further 2.5 % another;
//! * a consumer: `min(own, producer)`, where `own` is the same formula on
//!   the fraction lost its receiver reports (10 before any report) and
//!   `producer` the score of the producer layer it gets (0 while it gets
//!   none): a consumer is never better than what it receives.
//!
//! # Cost
//!
//! Fixed-size state per producer layer and per consumer (no history); the
//! per-packet work is a handful of integer operations on the ingress side
//! and nothing on the egress side.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use str0m::stats::{MediaEgressStats, MediaIngressStats};

use super::Engine;

/// How often str0m reports each stream's counters (and how often egress
/// bitrate and loss are refreshed).
pub const STATS_INTERVAL: Duration = Duration::from_secs(1);
/// The window of a producer layer's `fractionLost`.
pub const LOSS_WINDOW: Duration = Duration::from_secs(1);
/// A sequence number this far from the highest seen is a new stream
/// (an SSRC change, a restarted encoder), not loss: counting restarts from
/// it, keeping the totals.
const SEQ_RESTART: u64 = 3000;
/// RFC 3550's jitter gain (1/16).
const JITTER_GAIN: f64 = 16.0;

/// The statistics of one stream: a producer layer or a consumer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct StreamStats {
    /// Payload bits per second (see the module doc for the period).
    pub bitrate: u64,
    /// RTP packets received (producer) or sent (consumer, with
    /// retransmissions).
    pub packets: u64,
    /// RTP payload bytes, likewise.
    pub bytes: u64,
    /// Packets lost in total (producer: sequence gaps not repaired;
    /// consumer: as its receiver reports).
    pub packets_lost: u64,
    /// Recent fraction of packets lost, 0 to 1.
    pub fraction_lost: f64,
    /// Interarrival jitter in milliseconds.
    pub jitter_ms: f64,
    /// Round-trip time in milliseconds, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
    /// NACKs sent to the publisher (producer) or received (consumer).
    pub nack_count: u64,
    /// PLIs, likewise.
    pub pli_count: u64,
    /// FIRs, likewise.
    pub fir_count: u64,
    /// 0 to 10; see the module doc.
    pub score: u8,
}

/// The score of a stream losing `fraction_lost` of its packets (see the
/// module doc).
pub fn loss_score(fraction_lost: f64) -> u8 {
    // NaN and 0 alike: no loss known.
    if fraction_lost.is_nan() || fraction_lost <= 0.0 {
        return 10;
    }
    let penalty = (fraction_lost.min(1.0) * 40.0).ceil();
    10 - penalty.min(10.0) as u8
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Engine-wide media counters since the engine started, for operators'
/// metrics: they only grow (closed streams keep their share), so they can
/// be exported as Prometheus counters. Plain integers bumped on the
/// engine's own thread (no atomics, no allocation per packet); the driver
/// copies them out once per turn.
///
/// * `*_in`: RTP arriving from publishers (`packets_in`/`bytes_in` per
///   packet, payload bytes); `packets_lost_in` the sequence gaps left after
///   repair, counted when each producer layer's 1 s loss window closes;
///   `nacks_sent`/`plis_sent` the requests the engine sent to publishers.
/// * `*_out`: RTP sent to subscribers, from str0m's egress counters (once
///   per [`STATS_INTERVAL`] and stream, retransmissions included);
///   `packets_lost_out` what subscribers' receiver reports say they lost;
///   `nacks_received`/`plis_received` their requests.
/// * `layer_switches`: simulcast layer changes of consumers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MediaTotals {
    pub packets_in: u64,
    pub bytes_in: u64,
    pub packets_lost_in: u64,
    pub nacks_sent: u64,
    pub plis_sent: u64,
    pub packets_out: u64,
    pub bytes_out: u64,
    pub packets_lost_out: u64,
    pub nacks_received: u64,
    pub plis_received: u64,
    pub layer_switches: u64,
}

impl MediaTotals {
    /// One packet in from a publisher, `lost` packets missing before it.
    /// Nothing without the `media-totals` feature (a measurement's baseline).
    #[inline]
    pub(super) fn count_in(&mut self, bytes: usize, lost: u64) {
        #[cfg(feature = "media-totals")]
        {
            self.packets_in += 1;
            self.bytes_in += bytes as u64;
            self.packets_lost_in += lost;
        }
        #[cfg(not(feature = "media-totals"))]
        let _ = (bytes, lost);
    }

    /// How many counters [`MediaTotals::to_array`] has.
    pub const LEN: usize = 11;

    /// The counters in field order (for copying into atomics).
    pub fn to_array(&self) -> [u64; Self::LEN] {
        [
            self.packets_in,
            self.bytes_in,
            self.packets_lost_in,
            self.nacks_sent,
            self.plis_sent,
            self.packets_out,
            self.bytes_out,
            self.packets_lost_out,
            self.nacks_received,
            self.plis_received,
            self.layer_switches,
        ]
    }

    /// The inverse of [`MediaTotals::to_array`].
    pub fn from_array(a: [u64; Self::LEN]) -> MediaTotals {
        MediaTotals {
            packets_in: a[0],
            bytes_in: a[1],
            packets_lost_in: a[2],
            nacks_sent: a[3],
            plis_sent: a[4],
            packets_out: a[5],
            bytes_out: a[6],
            packets_lost_out: a[7],
            nacks_received: a[8],
            plis_received: a[9],
            layer_switches: a[10],
        }
    }

    /// Adds `other`'s counts, field by field.
    pub fn add(&mut self, other: &MediaTotals) {
        let (a, b) = (self.to_array(), other.to_array());
        *self = MediaTotals::from_array(std::array::from_fn(|i| a[i].saturating_add(b[i])));
    }
}

/// Requests and round-trip time str0m counts for a stream.
#[derive(Clone, Copy, Debug, Default)]
struct Requests {
    nacks: u64,
    plis: u64,
    firs: u64,
    rtt: Option<Duration>,
}

/// What arrives on one producer layer. See the module doc.
#[derive(Clone, Debug, Default)]
pub(super) struct IngressStats {
    packets: u64,
    bytes: u64,
    /// Lowest and highest extended sequence numbers of the current stream.
    seq: Option<(u64, u64)>,
    /// Expected and received packets of earlier streams (see
    /// [`SEQ_RESTART`]).
    earlier_expected: u64,
    earlier_received: u64,
    /// Packets of the current stream.
    received: u64,
    /// The loss window: when it started, expected and received then.
    window: Option<(Instant, u64, u64)>,
    fraction_lost: f64,
    /// The arrival clock's origin, the last transit time (RTP units) and
    /// the jitter estimate (RTP units).
    epoch: Option<Instant>,
    last_transit: Option<u32>,
    jitter: f64,
    clock_rate: u32,
    requests: Requests,
    /// Loss already added to the engine's [`MediaTotals`].
    lost_counted: u64,
}

impl IngressStats {
    /// One packet arrived: extended sequence number `seq`, RTP timestamp
    /// `rtp_ts` at `clock_rate`, `bytes` of payload. Returns the packets
    /// newly known lost (non-zero only when a loss window closes).
    pub(super) fn record(
        &mut self,
        seq: u64,
        rtp_ts: u32,
        bytes: usize,
        clock_rate: u32,
        now: Instant,
    ) -> u64 {
        let newly_lost = self.roll_window(now);
        self.packets += 1;
        self.bytes = self.bytes.saturating_add(bytes as u64);
        let newest = match self.seq {
            None => {
                self.seq = Some((seq, seq));
                true
            }
            Some((low, high)) if seq.abs_diff(high) > SEQ_RESTART => {
                self.earlier_expected += high - low + 1;
                self.earlier_received += self.received;
                self.received = 0;
                self.seq = Some((seq, seq));
                self.last_transit = None;
                true
            }
            Some((low, high)) => {
                self.seq = Some((low.min(seq), high.max(seq)));
                seq > high
            }
        };
        self.received += 1;
        if newest && clock_rate > 0 {
            self.clock_rate = clock_rate;
            let epoch = *self.epoch.get_or_insert(now);
            // u64 microseconds × clock rate lasts years before saturating.
            let micros =
                u64::try_from(now.saturating_duration_since(epoch).as_micros()).unwrap_or(u64::MAX);
            let ticks = micros.saturating_mul(u64::from(clock_rate)) / 1_000_000;
            // Arrival and RTP timestamps both wrap at 2^32 ticks; only
            // differences matter.
            let transit = (ticks as u32).wrapping_sub(rtp_ts);
            if let Some(last) = self.last_transit {
                let d = f64::from((transit.wrapping_sub(last) as i32).unsigned_abs());
                self.jitter += (d - self.jitter) / JITTER_GAIN;
            }
            self.last_transit = Some(transit);
        }
        newly_lost
    }

    fn expected(&self) -> u64 {
        self.earlier_expected + self.seq.map_or(0, |(low, high)| high - low + 1)
    }

    fn total_received(&self) -> u64 {
        self.earlier_received + self.received
    }

    /// Closes the loss window if it is over; returns the loss not counted
    /// before (what repairs did not fill by then).
    fn roll_window(&mut self, now: Instant) -> u64 {
        let (expected, received) = (self.expected(), self.total_received());
        let mut newly_lost = 0;
        match self.window {
            None => self.window = Some((now, expected, received)),
            Some((start, e0, r0)) if now.saturating_duration_since(start) >= LOSS_WINDOW => {
                let expected_in = expected.saturating_sub(e0);
                let received_in = received.saturating_sub(r0);
                self.fraction_lost = if expected_in == 0 {
                    0.0
                } else {
                    expected_in.saturating_sub(received_in) as f64 / expected_in as f64
                };
                self.window = Some((now, expected, received));
                let lost = expected.saturating_sub(received);
                newly_lost = lost.saturating_sub(self.lost_counted);
                self.lost_counted = self.lost_counted.max(lost);
            }
            Some(_) => {}
        }
        newly_lost
    }

    fn apply(&mut self, s: &MediaIngressStats) {
        self.requests = Requests {
            nacks: s.nacks,
            plis: s.plis,
            firs: s.firs,
            rtt: s.rtt.or(self.requests.rtt),
        };
    }

    /// The layer's statistics; `bitrate` is its meter's figure, 0 when
    /// `active` is false.
    pub(super) fn snapshot(&self, active: bool, bitrate: u64) -> StreamStats {
        let jitter_ms = if self.clock_rate > 0 {
            self.jitter * 1000.0 / f64::from(self.clock_rate)
        } else {
            0.0
        };
        StreamStats {
            bitrate: if active { bitrate } else { 0 },
            packets: self.packets,
            bytes: self.bytes,
            packets_lost: self.expected().saturating_sub(self.total_received()),
            fraction_lost: self.fraction_lost,
            jitter_ms,
            rtt_ms: self.requests.rtt.map(millis),
            nack_count: self.requests.nacks,
            pli_count: self.requests.plis,
            fir_count: self.requests.firs,
            score: if active {
                loss_score(self.fraction_lost)
            } else {
                0
            },
        }
    }
}

/// What one consumer sent and its receiver reported. See the module doc.
#[derive(Clone, Debug, Default)]
pub(super) struct EgressStats {
    packets: u64,
    bytes: u64,
    bitrate: u64,
    /// When the last stats event came and the bytes it counted.
    last: Option<(Instant, u64)>,
    packets_lost: u64,
    fraction_lost: Option<f64>,
    /// Receiver-reported jitter, RTP units.
    jitter: u32,
    requests: Requests,
}

impl EgressStats {
    fn apply(&mut self, s: &MediaEgressStats) {
        if let Some((at, bytes)) = self.last {
            let elapsed = s.timestamp.saturating_duration_since(at).as_micros();
            let sent = u128::from(s.bytes.saturating_sub(bytes));
            if let Some(bps) = (sent * 8_000_000).checked_div(elapsed) {
                self.bitrate = u64::try_from(bps).unwrap_or(u64::MAX);
            }
        }
        self.last = Some((s.timestamp, s.bytes));
        self.packets = s.packets;
        self.bytes = s.bytes;
        if let Some(loss) = s.loss.filter(|l| l.is_finite()) {
            self.fraction_lost = Some(f64::from(loss).clamp(0.0, 1.0));
        }
        if let Some(remote) = &s.remote {
            self.packets_lost = remote.packets_lost;
            self.jitter = remote.jitter;
        }
        self.requests = Requests {
            nacks: s.nacks,
            plis: s.plis,
            firs: s.firs,
            rtt: s.rtt.or(self.requests.rtt),
        };
    }

    /// The consumer's statistics, given the score of the producer layer it
    /// gets (0 when none) and its media's clock rate.
    pub(super) fn snapshot(&self, producer_score: u8, clock_rate: u32) -> StreamStats {
        let fraction_lost = self.fraction_lost.unwrap_or(0.0);
        let jitter_ms = if clock_rate > 0 {
            f64::from(self.jitter) * 1000.0 / f64::from(clock_rate)
        } else {
            0.0
        };
        StreamStats {
            bitrate: self.bitrate,
            packets: self.packets,
            bytes: self.bytes,
            packets_lost: self.packets_lost,
            fraction_lost,
            jitter_ms,
            rtt_ms: self.requests.rtt.map(millis),
            nack_count: self.requests.nacks,
            pli_count: self.requests.plis,
            fir_count: self.requests.firs,
            score: loss_score(fraction_lost).min(producer_score),
        }
    }
}

impl Engine {
    /// str0m's periodic ingress counters of one stream of a send
    /// transport: the requests it sent go to the producer layer.
    pub(super) fn ingress_stats(&mut self, transport_id: &str, s: &MediaIngressStats) {
        let Some(producer_id) = self
            .transports
            .get(transport_id)
            .and_then(|t| t.mids.get(&*s.mid))
        else {
            return;
        };
        let Some(producer) = self.producers.get_mut(producer_id) else {
            return;
        };
        let rid = s.rid.as_deref();
        if let Some(layer) = producer.layers.iter_mut().find(|l| l.rid.as_deref() == rid) {
            let before = layer.stats.requests;
            layer.stats.apply(s);
            let after = layer.stats.requests;
            self.media.nacks_sent += after.nacks.saturating_sub(before.nacks);
            self.media.plis_sent += after.plis.saturating_sub(before.plis);
        }
    }

    /// str0m's periodic egress counters of one consumer's stream.
    pub(super) fn egress_stats(&mut self, transport_id: &str, s: &MediaEgressStats) {
        let Some(consumer_id) = self
            .transports
            .get(transport_id)
            .and_then(|t| t.mids.get(&*s.mid))
        else {
            return;
        };
        if let Some(consumer) = self.consumers.get_mut(consumer_id) {
            let before = consumer.stats.clone();
            consumer.stats.apply(s);
            let after = &consumer.stats;
            let m = &mut self.media;
            m.packets_out += after.packets.saturating_sub(before.packets);
            m.bytes_out += after.bytes.saturating_sub(before.bytes);
            m.packets_lost_out += after.packets_lost.saturating_sub(before.packets_lost);
            m.nacks_received += after.requests.nacks.saturating_sub(before.requests.nacks);
            m.plis_received += after.requests.plis.saturating_sub(before.requests.plis);
        }
    }

    /// Media counters since the engine started (see [`MediaTotals`]).
    pub fn media_totals(&self) -> MediaTotals {
        self.media
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_falls_with_loss() {
        assert_eq!(loss_score(0.0), 10);
        assert_eq!(loss_score(f64::NAN), 10);
        assert_eq!(loss_score(1.0 / 255.0), 9, "any loss costs a point");
        assert_eq!(loss_score(0.1), 6);
        assert_eq!(loss_score(0.25), 0);
        assert_eq!(loss_score(1.0), 0);
    }

    #[test]
    fn ingress_counts_gaps_and_steady_jitter() {
        let t0 = Instant::now();
        let mut s = IngressStats::default();
        // 20 ms apart with matching timestamps: no jitter; 2 of every 10
        // sequence numbers are never sent.
        for i in 0..200u64 {
            if i % 10 < 2 && i > 0 {
                continue;
            }
            let now = t0 + Duration::from_millis(20 * i);
            s.record(1000 + i, (i * 1800) as u32, 100, 90_000, now);
        }
        let snap = s.snapshot(true, 1);
        assert_eq!(snap.packets_lost, 39);
        assert!((snap.fraction_lost - 0.2).abs() < 0.03, "{snap:?}");
        assert!(snap.jitter_ms < 0.01, "{snap:?}");
        assert_eq!(snap.score, 2);
        assert_eq!(s.snapshot(false, 1).score, 0, "inactive");
    }

    #[test]
    fn ingress_jitter_follows_arrival_spread() {
        let t0 = Instant::now();
        let mut s = IngressStats::default();
        for i in 0..500u64 {
            // Every other packet 10 ms late.
            let late = if i % 2 == 1 { 10 } else { 0 };
            let now = t0 + Duration::from_millis(20 * i + late);
            s.record(i, (i * 960) as u32, 100, 48_000, now);
        }
        let snap = s.snapshot(true, 0);
        assert!((snap.jitter_ms - 10.0).abs() < 1.0, "{snap:?}");
        assert_eq!(snap.packets_lost, 0);
        assert_eq!(snap.score, 10);
    }

    #[test]
    fn stats_serialise_in_camel_case_and_default_when_absent() {
        let stats = StreamStats {
            bitrate: 800_000,
            packets: 10,
            bytes: 9000,
            packets_lost: 1,
            fraction_lost: 0.25,
            jitter_ms: 1.5,
            rtt_ms: Some(12.0),
            nack_count: 2,
            pli_count: 3,
            fir_count: 0,
            score: 0,
        };
        let json = serde_json::to_value(&stats).unwrap();
        assert_eq!(json["packetsLost"], 1);
        assert_eq!(json["jitterMs"], 1.5);
        assert_eq!(json["rttMs"], 12.0);
        assert_eq!(serde_json::from_value::<StreamStats>(json).unwrap(), stats);
        let unknown_rtt = serde_json::to_value(StreamStats::default()).unwrap();
        assert!(unknown_rtt.get("rttMs").is_none());
        // A snapshot from an SFU node without statistics still parses.
        let old: super::super::ConsumerSnapshot = serde_json::from_value(serde_json::json!({
            "id": "c", "transportId": "t", "producerId": "p", "paused": false,
            "producerPaused": false,
            "preferredLayers": {"spatialLayer": 2, "temporalLayer": 2}
        }))
        .unwrap();
        assert_eq!(old.stats, StreamStats::default());
    }

    #[test]
    fn loss_reaches_the_totals_once_per_window_and_only_grows() {
        let t0 = Instant::now();
        let mut s = IngressStats::default();
        let mut counted = 0;
        // 1 of every 10 sequence numbers missing, 20 ms apart, for 3 s.
        for i in 0..150u64 {
            if i % 10 == 5 {
                continue;
            }
            let now = t0 + Duration::from_millis(20 * i);
            counted += s.record(i, 0, 10, 90_000, now);
        }
        // Two whole windows closed (at 1 s and 2 s): the gaps up to then.
        assert_eq!(counted, 10, "counted at window ends");
        // The third window closes when a late copy of an old gap arrives:
        // its 5 gaps are counted, and the repair does not take one back
        // (a counter never falls), though the snapshot's figure does.
        counted += s.record(5, 0, 10, 90_000, t0 + Duration::from_millis(3100));
        assert_eq!(counted, 15);
        assert_eq!(s.snapshot(true, 0).packets_lost, 14);
    }

    #[test]
    fn media_totals_round_trip_and_add() {
        let mut a = MediaTotals {
            packets_in: 1,
            layer_switches: 7,
            ..MediaTotals::default()
        };
        assert_eq!(MediaTotals::from_array(a.to_array()), a);
        a.add(&MediaTotals {
            packets_in: 2,
            bytes_out: 5,
            ..MediaTotals::default()
        });
        assert_eq!((a.packets_in, a.bytes_out, a.layer_switches), (3, 5, 7));
    }

    #[test]
    fn a_new_stream_is_not_loss() {
        let t0 = Instant::now();
        let mut s = IngressStats::default();
        for i in 0..10u64 {
            s.record(100 + i, 0, 10, 90_000, t0);
        }
        for i in 0..10u64 {
            s.record(50_000 + i, 0, 10, 90_000, t0);
        }
        assert_eq!(s.snapshot(true, 0).packets_lost, 0);
        assert_eq!(s.snapshot(true, 0).packets, 20);
    }
}
