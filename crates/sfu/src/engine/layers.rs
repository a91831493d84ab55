//! Per-consumer layer selection: which spatial layer (simulcast encoding)
//! and temporal layer (VP8 TID) a consumer gets, and the rewriting that
//! makes switches invisible to its decoder.
//!
//! The consumer's *preferred* layers are a ceiling, and so is its
//! *bandwidth* ceiling (what the transport's estimate allows, see
//! `allocation`; none until the estimate is known). Its *target* spatial
//! layer is the best active layer at or below both (or, when none of those
//! is active, the lowest active one); its *current* layer is the one being
//! sent. A switch, up or down, happens only at the first packet of a
//! keyframe of the target layer (the engine asks for one at once, rate
//! limited), so no decoder ever gets a frame that references a frame it
//! did not get; until then the current layer keeps flowing.
//!
//! Across a switch the consumer's stream stays one stream:
//! - sequence numbers continue (the consumer's [`SeqRewriter`] starts a new
//!   run);
//! - RTP timestamps continue: each layer has its own base, so at a switch
//!   an offset is chosen that puts the new layer's first frame after the
//!   last one sent, by the time elapsed since (never less than one tick);
//! - VP8 picture ids and TL0PICIDX continue from the last ones sent.
//!
//! Temporal layers (VP8 with a TID in its descriptor): frames above the
//! consumer's temporal ceiling (the lower of the preferred and the
//! bandwidth one) are dropped and their sequence numbers and picture ids
//! closed up, so the receiver sees no loss. The ceiling goes down at any
//! frame start (no keyframe needed: lower temporal layers never reference
//! higher ones), and up at a keyframe or a layer-sync frame.
//!
//! A producer with one encoding, or whose codec's keyframes the engine
//! cannot see (VP9, AV1), is never switched: the consumer gets encoding 0
//! from its first packet, as before this module.

use std::time::{Duration, Instant};

use str0m::rtp::RtpPacket;

use super::LayersSnapshot;
use super::allocation::Layers;
use super::forward::SeqRewriter;
use super::vp8::{FrameCodec, Vp8Descriptor, h264_keyframe, parse_vp8, write_vp8};

/// A producer layer that has sent nothing for this long is inactive: its
/// consumers fall to the best active one.
pub const LAYER_INACTIVE_AFTER: Duration = Duration::from_millis(1500);
/// How often layer activity is checked (and keyframes re-asked for
/// switches still waiting).
pub const LAYER_CHECK_INTERVAL: Duration = Duration::from_millis(100);
/// The highest spatial and temporal layer a consumer may prefer.
pub const MAX_LAYER: u8 = 2;

/// What the forwarding path knows of one packet's frame.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct FrameInfo {
    /// The first packet of a keyframe: a switching point.
    pub(super) keyframe: bool,
    pub(super) vp8: Option<Vp8Descriptor>,
}

impl FrameInfo {
    pub(super) fn parse(codec: FrameCodec, payload: &[u8]) -> FrameInfo {
        match codec {
            FrameCodec::Vp8 => {
                let vp8 = parse_vp8(payload);
                FrameInfo {
                    keyframe: vp8.is_some_and(|d| d.keyframe),
                    vp8,
                }
            }
            FrameCodec::H264 => FrameInfo {
                keyframe: h264_keyframe(payload),
                vp8: None,
            },
            FrameCodec::Other => FrameInfo::default(),
        }
    }
}

/// What to do with a packet for one consumer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Another layer than the one this consumer gets: not its business.
    NotMine,
    /// Its layer, but above its temporal ceiling: dropped, slot closed up.
    Drop,
    /// Send it.
    Forward,
}

/// A packet as one subscriber of the producer gets it (see
/// [`LayerSelector::rewrite`]).
#[derive(Debug)]
pub(super) struct Rewritten {
    pub(super) seq: u64,
    pub(super) timestamp: u32,
    pub(super) payload: Vec<u8>,
}

/// One subscriber's layer state (a consumer's, or a recording tap's). See
/// the module doc.
#[derive(Debug)]
pub(super) struct LayerSelector {
    layer_count: usize,
    switchable: bool,
    preferred_spatial: u8,
    preferred_temporal: u8,
    /// The bandwidth ceiling (`None`: not limited by bandwidth).
    bandwidth: Option<Layers>,
    current: Option<usize>,
    target: Option<usize>,
    temporal: u8,
    saw_tid: bool,
    /// A switch happened and nothing of the new layer was sent yet.
    rebase: bool,
    reported: Option<(u8, u8)>,
    timestamps: TimestampAligner,
    picture_id: NumberRewriter,
    tl0_pic_idx: NumberRewriter,
}

impl LayerSelector {
    /// For a producer with `layer_count` encodings whose keyframes can be
    /// recognised or not (`switchable`). Prefers the best layers.
    pub(super) fn new(layer_count: usize, switchable: bool) -> LayerSelector {
        let switchable = switchable && layer_count > 1;
        let fixed = (!switchable).then_some(0);
        LayerSelector {
            layer_count: layer_count.max(1),
            switchable,
            preferred_spatial: MAX_LAYER,
            preferred_temporal: MAX_LAYER,
            bandwidth: None,
            current: fixed,
            target: fixed,
            temporal: MAX_LAYER,
            saw_tid: false,
            rebase: false,
            reported: None,
            timestamps: TimestampAligner::default(),
            picture_id: NumberRewriter::default(),
            tl0_pic_idx: NumberRewriter::default(),
        }
    }

    pub(super) fn set_preferred(&mut self, spatial: u8, temporal: u8) {
        self.preferred_spatial = spatial.min(MAX_LAYER);
        self.preferred_temporal = temporal.min(MAX_LAYER);
    }

    /// Sets the bandwidth ceiling (then `choose_target` again).
    pub(super) fn set_bandwidth(&mut self, ceiling: Option<Layers>) {
        self.bandwidth = ceiling;
    }

    /// The bandwidth ceiling now applied.
    pub(super) fn bandwidth(&self) -> Option<Layers> {
        self.bandwidth
    }

    /// The highest spatial layer both ceilings allow.
    fn spatial_ceiling(&self) -> u8 {
        self.bandwidth.map_or(self.preferred_spatial, |b| {
            b.spatial.min(self.preferred_spatial)
        })
    }

    /// The highest temporal layer both ceilings allow.
    fn temporal_ceiling(&self) -> u8 {
        self.bandwidth.map_or(self.preferred_temporal, |b| {
            b.temporal.min(self.preferred_temporal)
        })
    }

    /// The preferred layers (for snapshots).
    pub(super) fn preferred(&self) -> LayersSnapshot {
        LayersSnapshot {
            spatial_layer: self.preferred_spatial,
            temporal_layer: self.preferred_temporal,
        }
    }

    /// The layers last sent, as reported (for snapshots).
    pub(super) fn current(&self) -> Option<LayersSnapshot> {
        self.reported
            .map(|(spatial_layer, temporal_layer)| LayersSnapshot {
                spatial_layer,
                temporal_layer,
            })
    }

    /// The producer layer (encoding index) being sent, if any.
    pub(super) fn current_layer(&self) -> Option<usize> {
        self.current
    }

    /// The layer whose keyframe this consumer needs: the one it is
    /// switching to, else the one it gets.
    pub(super) fn keyframe_layer(&self) -> Option<usize> {
        self.target.or(self.current)
    }

    /// Whether a switch is waiting for a keyframe of the target layer.
    pub(super) fn waiting_for(&self) -> Option<usize> {
        self.target
            .filter(|t| self.switchable && Some(*t) != self.current)
    }

    /// Chooses the target from which producer layers are active; the layer
    /// to ask a keyframe of when the consumer must now switch to it.
    pub(super) fn choose_target(&mut self, active: &[bool]) -> Option<usize> {
        if !self.switchable {
            return None;
        }
        let count = self.layer_count.min(active.len());
        let ceiling = usize::from(self.spatial_ceiling()).min(count.saturating_sub(1));
        let best = (0..=ceiling)
            .rev()
            .find(|&i| active[i])
            .or_else(|| (ceiling + 1..count).find(|&i| active[i]));
        if best.is_none() || best == self.target {
            return None;
        }
        self.target = best;
        self.waiting_for()
    }

    /// Decides for a packet of producer layer `layer`.
    pub(super) fn decide(&mut self, layer: usize, frame: &FrameInfo) -> Verdict {
        if self.switchable
            && frame.keyframe
            && Some(layer) == self.target
            && self.current != self.target
        {
            self.current = Some(layer);
            self.rebase = true;
        }
        if Some(layer) != self.current {
            return Verdict::NotMine;
        }
        if let Some(d) = frame.vp8
            && let Some(tid) = d.tid
        {
            self.saw_tid = true;
            if d.frame_start {
                let ceiling = self.temporal_ceiling();
                if d.keyframe || ceiling < self.temporal {
                    self.temporal = ceiling;
                } else if tid > self.temporal && tid <= ceiling && d.layer_sync {
                    self.temporal = tid;
                }
            }
            if tid > self.temporal {
                return Verdict::Drop;
            }
        }
        Verdict::Forward
    }

    /// Whether the packet about to be sent is the first of a new layer
    /// (then the consumer's sequence numbers start a new run, and its
    /// timestamps and picture ids a new base). Taken once, when something
    /// is actually sent, so a switching packet that is dropped or cannot
    /// be sent leaves the rebase to the next one.
    fn take_rebase(&mut self) -> bool {
        std::mem::take(&mut self.rebase)
    }

    /// [`LayerSelector::decide`] for a subscriber whose sequence numbers
    /// `seq` keeps: whether to send the packet. One it drops takes no slot
    /// (see [`LayerSelector::skip`]).
    pub(super) fn admit(
        &mut self,
        seq: &mut SeqRewriter,
        layer: usize,
        packet: &RtpPacket,
        frame: &FrameInfo,
    ) -> bool {
        match self.decide(layer, frame) {
            Verdict::NotMine => false,
            Verdict::Drop => {
                self.skip(seq, packet, frame);
                false
            }
            Verdict::Forward => true,
        }
    }

    /// A packet the verdict dropped: neither its sequence number (in the
    /// subscriber's `seq`) nor its picture id takes a slot.
    fn skip(&mut self, seq: &mut SeqRewriter, packet: &RtpPacket, frame: &FrameInfo) {
        seq.skip(*packet.seq_no);
        if let Some((id, bits, _)) = frame.vp8.and_then(|d| d.picture_id) {
            self.picture_id.skip(id, bits);
        }
    }

    /// A packet the verdict forwards, rewritten for the subscriber whose
    /// sequence numbers `seq` keeps: a new run of sequence numbers, a new
    /// timestamp base and new picture-id bases when it is the first of a
    /// new layer. Call it only for a packet that is then sent (the rebase
    /// is taken); `None` when its sequence slot is gone (drop it).
    pub(super) fn rewrite(
        &mut self,
        seq: &mut SeqRewriter,
        packet: &RtpPacket,
        frame: &FrameInfo,
        clock_rate: u32,
        now: Instant,
    ) -> Option<Rewritten> {
        let new_layer = self.take_rebase();
        if new_layer {
            seq.stop();
        }
        let out_seq = seq.rewrite(*packet.seq_no)?;
        let timestamp = self.timestamp(packet.header.timestamp, new_layer, clock_rate, now);
        let mut payload = packet.payload.to_vec();
        self.rewrite_payload(&mut payload, frame, new_layer);
        Some(Rewritten {
            seq: out_seq,
            timestamp,
            payload,
        })
    }

    /// The consumer's timestamp for a forwarded packet.
    fn timestamp(&mut self, ts: u32, new_layer: bool, clock_rate: u32, now: Instant) -> u32 {
        self.timestamps.align(ts, new_layer, clock_rate, now)
    }

    /// Rewrites a forwarded VP8 packet's picture id and TL0PICIDX in place.
    fn rewrite_payload(&mut self, payload: &mut [u8], frame: &FrameInfo, new_layer: bool) {
        let Some(d) = frame.vp8 else {
            return;
        };
        if new_layer {
            self.picture_id.restart();
            self.tl0_pic_idx.restart();
        }
        let picture_id = d
            .picture_id
            .and_then(|(id, bits, _)| self.picture_id.rewrite(id, bits));
        let tl0 = d
            .tl0_pic_idx
            .and_then(|(idx, _)| self.tl0_pic_idx.rewrite(u16::from(idx), 8));
        let picture_id = picture_id.or(d.picture_id.map(|p| p.0)).unwrap_or(0);
        let tl0 = tl0.map_or(d.tl0_pic_idx.map_or(0, |t| t.0), |t| t as u8);
        write_vp8(payload, &d, picture_id, tl0);
    }

    /// The layers now sent, when they differ from the last reported. The
    /// first layers of a fixed (unswitchable) consumer are not news.
    pub(super) fn take_change(&mut self) -> Option<(u8, u8)> {
        let spatial = self.current? as u8;
        let temporal = if self.saw_tid { self.temporal } else { 0 };
        let now = (spatial, temporal);
        let first = self.reported.is_none();
        if self.reported == Some(now) {
            return None;
        }
        self.reported = Some(now);
        (!first || self.switchable).then_some(now)
    }
}

/// Keeps a consumer's RTP timestamps continuous across layers with
/// different bases.
#[derive(Debug, Default)]
struct TimestampAligner {
    offset: u32,
    /// The highest timestamp sent and when it was first sent.
    last: Option<(u32, Instant)>,
}

impl TimestampAligner {
    fn align(&mut self, ts: u32, new_base: bool, clock_rate: u32, now: Instant) -> u32 {
        if new_base && let Some((last, at)) = self.last {
            let elapsed = now.saturating_duration_since(at);
            let ticks = (elapsed.as_micros() * u128::from(clock_rate) / 1_000_000).max(1);
            let ticks = u32::try_from(ticks)
                .unwrap_or(u32::MAX / 2)
                .min(u32::MAX / 2);
            self.offset = last.wrapping_add(ticks).wrapping_sub(ts);
        }
        let out = ts.wrapping_add(self.offset);
        if self
            .last
            .is_none_or(|(last, _)| (out.wrapping_sub(last) as i32) > 0)
        {
            self.last = Some((out, now));
        }
        out
    }
}

/// Rewrites a wrapping counter of `bits` bits (VP8 picture id, TL0PICIDX)
/// into a continuous one: unwraps it, then numbers it like sequence
/// numbers (runs across switches, dropped values closed up).
#[derive(Debug, Default)]
struct NumberRewriter {
    bits: u8,
    last: Option<u64>,
    numbers: Option<SeqRewriter>,
}

impl NumberRewriter {
    fn unwrap(&mut self, value: u16, bits: u8) -> u64 {
        if bits != self.bits {
            // A stream that changes its picture-id width starts afresh.
            self.bits = bits;
            self.last = None;
            if let Some(n) = self.numbers.as_mut() {
                n.stop();
            }
        }
        let modulus = 1u64 << bits;
        let value = u64::from(value) & (modulus - 1);
        let ext = match self.last {
            // Far from zero so that older values never go below it.
            None => modulus * 1024 + value,
            Some(last) => {
                let diff = value.wrapping_sub(last) & (modulus - 1);
                if diff < modulus / 2 {
                    last + diff
                } else {
                    last - (modulus - diff)
                }
            }
        };
        if self.last.is_none_or(|l| ext > l) {
            self.last = Some(ext);
        }
        ext
    }

    fn rewrite(&mut self, value: u16, bits: u8) -> Option<u16> {
        let ext = self.unwrap(value, bits);
        let numbers = self.numbers.get_or_insert_with(|| SeqRewriter::new(ext));
        let out = numbers.rewrite(ext)?;
        Some((out & ((1u64 << bits) - 1)) as u16)
    }

    fn skip(&mut self, value: u16, bits: u8) {
        let ext = self.unwrap(value, bits);
        if let Some(n) = self.numbers.as_mut() {
            n.skip(ext);
        }
    }

    /// A new layer: a new input space, numbered on from the last output.
    fn restart(&mut self) {
        self.last = None;
        if let Some(n) = self.numbers.as_mut() {
            n.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vp8_frame(keyframe: bool, tid: u8, sync: bool) -> FrameInfo {
        FrameInfo {
            keyframe,
            vp8: Some(Vp8Descriptor {
                frame_start: true,
                keyframe,
                picture_id: None,
                tl0_pic_idx: None,
                tid: Some(tid),
                layer_sync: sync,
            }),
        }
    }

    #[test]
    fn switches_wait_for_a_keyframe_of_the_target() {
        let mut s = LayerSelector::new(3, true);
        s.set_preferred(0, 2);
        assert_eq!(s.choose_target(&[true, true, true]), Some(0));
        let delta = vp8_frame(false, 0, false);
        let key = vp8_frame(true, 0, false);
        assert_eq!(s.decide(0, &delta), Verdict::NotMine, "no keyframe yet");
        assert_eq!(s.decide(0, &key), Verdict::Forward);
        assert!(s.take_rebase() && !s.take_rebase(), "a new layer, once");
        assert_eq!(s.take_change(), Some((0, 2)));
        assert_eq!(s.take_change(), None);
        s.set_preferred(2, 2);
        assert_eq!(s.choose_target(&[true, true, true]), Some(2));
        assert_eq!(s.decide(2, &delta), Verdict::NotMine);
        assert_eq!(s.decide(0, &delta), Verdict::Forward);
        assert!(!s.take_rebase());
        assert_eq!(s.decide(2, &key), Verdict::Forward);
        assert!(s.take_rebase());
        assert_eq!(s.decide(0, &key), Verdict::NotMine);
        assert_eq!(s.take_change(), Some((2, 2)));
        // Layer 2 goes away: the target falls to 1.
        assert_eq!(s.choose_target(&[true, true, false]), Some(1));
        assert_eq!(s.choose_target(&[true, true, false]), None, "unchanged");
    }

    #[test]
    fn the_bandwidth_ceiling_bounds_the_target_and_the_temporal_layer() {
        let mut s = LayerSelector::new(3, true);
        let all = [true, true, true];
        assert_eq!(s.choose_target(&all), Some(2));
        assert_eq!(s.decide(2, &vp8_frame(true, 0, false)), Verdict::Forward);
        assert_eq!(s.decide(2, &vp8_frame(false, 2, true)), Verdict::Forward);
        // The estimate allows layer 1 up to TID 1: a switch down (at a
        // keyframe of layer 1), and TID 2 dropped from the next frame on.
        s.set_bandwidth(Some(Layers::new(1, 1)));
        assert_eq!(s.choose_target(&all), Some(1));
        assert_eq!(s.decide(2, &vp8_frame(false, 2, true)), Verdict::Drop);
        assert_eq!(s.decide(1, &vp8_frame(true, 0, false)), Verdict::Forward);
        assert_eq!(s.decide(1, &vp8_frame(false, 1, true)), Verdict::Forward);
        assert_eq!(s.decide(1, &vp8_frame(false, 2, true)), Verdict::Drop);
        assert_eq!(s.take_change(), Some((1, 1)));
        // The lower of the two ceilings wins.
        s.set_preferred(0, 2);
        assert_eq!(s.choose_target(&all), Some(0));
        s.set_preferred(2, 2);
        assert_eq!(s.choose_target(&all), None, "back to layer 1, still sent");
        assert_eq!(s.waiting_for(), None);
        // No longer limited: back to the top.
        s.set_bandwidth(None);
        assert_eq!(s.choose_target(&all), Some(2));
    }

    #[test]
    fn temporal_ceiling_drops_higher_frames() {
        let mut s = LayerSelector::new(1, true);
        s.set_preferred(0, 0);
        assert_eq!(s.decide(0, &vp8_frame(false, 0, false)), Verdict::Forward);
        assert_eq!(s.decide(0, &vp8_frame(false, 2, true)), Verdict::Drop);
        s.set_preferred(0, 2);
        assert_eq!(s.decide(0, &vp8_frame(false, 2, false)), Verdict::Drop);
        assert_eq!(
            s.decide(0, &vp8_frame(false, 1, true)),
            Verdict::Forward,
            "layer sync raises the ceiling"
        );
        assert_eq!(s.decide(0, &vp8_frame(false, 2, true)), Verdict::Forward);
    }

    #[test]
    fn timestamps_continue_across_bases() {
        let t0 = Instant::now();
        let mut a = TimestampAligner::default();
        assert_eq!(a.align(1000, true, 90_000, t0), 1000);
        assert_eq!(a.align(4000, false, 90_000, t0), 4000);
        let t1 = t0 + Duration::from_millis(10);
        assert_eq!(a.align(u32::MAX - 5, true, 90_000, t1), 4900);
        assert_eq!(a.align(2994, false, 90_000, t1), 4900 + 3000);
    }

    #[test]
    fn picture_ids_wrap_and_close_up() {
        let mut n = NumberRewriter::default();
        assert_eq!(n.rewrite(0x7ffe, 15), Some(0x7ffe));
        n.skip(0x7fff, 15);
        assert_eq!(n.rewrite(0, 15), Some(0x7fff));
        n.restart();
        assert_eq!(n.rewrite(42, 15), Some(0));
    }
}
