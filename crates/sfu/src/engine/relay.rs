//! The forwarding glue: which producer stream an incoming RTP packet
//! belongs to, writing it to the active consumers that get that layer,
//! keeping layer activity and targets up to date, and sending the keyframe
//! requests consumers want (the pure parts are in
//! [`forward`](super::forward) and [`layers`](super::layers)).

use std::time::{Duration, Instant};

use str0m::media::{KeyframeRequestKind, Mid, Rid};
use str0m::rtp::{RtpPacket, RtpWrite, Ssrc};

use super::allocation::TEMPORAL_LAYERS;
use super::layers::{FrameInfo, LAYER_CHECK_INTERVAL, LAYER_INACTIVE_AFTER};
use super::{Engine, EngineEvent, EngineOutput, TapPacket};
use crate::rtp::MediaKind;

/// How often active speakers are re-evaluated.
const SPEAKER_TICK: Duration = Duration::from_millis(100);

impl Engine {
    /// Which producer stream an incoming SSRC belongs to (learnt once from
    /// str0m's receive stream, by MID and RID or SSRC).
    fn classify(&mut self, transport_id: &str, ssrc: u32) -> Option<(String, usize)> {
        let t = self.transports.get_mut(transport_id)?;
        if let Some(found) = t.ssrc_layers.get(&ssrc) {
            return Some(found.clone());
        }
        let rtc = t.rtc.as_mut()?;
        let (mid, rid) = {
            let mut api = rtc.direct_api();
            let rx = api.stream_rx(&Ssrc::from(ssrc))?;
            (rx.mid().to_string(), rx.rid().map(|r| r.to_string()))
        };
        let producer_id = t.mids.get(&mid)?.clone();
        let producer = self.producers.get_mut(&producer_id)?;
        let layer = producer.layers.iter().position(|l| match (&rid, &l.rid) {
            (Some(rid), Some(lrid)) => rid == lrid,
            (None, None) => l.ssrc.is_none_or(|s| s == ssrc),
            _ => false,
        })?;
        producer.layers[layer].ssrc = Some(ssrc);
        t.ssrc_layers.insert(ssrc, (producer_id.clone(), layer));
        Some((producer_id, layer))
    }

    pub(super) fn forward(&mut self, transport_id: &str, packet: &RtpPacket, now: Instant) {
        let Some((producer_id, layer)) = self.classify(transport_id, *packet.header.ssrc) else {
            return;
        };
        self.flush_keyframes(&producer_id, now);
        let Some(producer) = self.producers.get_mut(&producer_id) else {
            return;
        };
        // Counted before the pause check: statistics describe what arrives.
        let clock_rate = producer.clock_rate;
        if let Some(l) = producer.layers.get_mut(layer) {
            let lost = l.stats.record(
                *packet.seq_no,
                packet.header.timestamp,
                packet.payload.len(),
                clock_rate,
                now,
            );
            self.media.count_in(packet.payload.len(), lost);
        }
        if producer.paused {
            return;
        }
        // The producer's own numbering (see `rtpmap`): a repaired packet
        // may carry its RTX payload type, extensions are at its own ids.
        let Some(pt) = producer
            .negotiation
            .rtp_mapping
            .mapped_payload_type(producer.rtpmap.main_pt(*packet.header.payload_type))
        else {
            return;
        };
        let ext_vals = producer.rtpmap.ext_vals(&packet.header.ext_vals);
        if let (MediaKind::Audio, Some(level)) = (producer.negotiation.kind, ext_vals.audio_level)
            && let Some(router) = self.routers.get_mut(&producer.router_id)
        {
            router.speaker.record(&producer_id, level, now);
        }
        let frame = FrameInfo::parse(producer.codec_of(pt), &packet.payload);
        if let Some(l) = producer.layers.get_mut(layer) {
            l.last_packet = Some(now);
            l.bitrate.record(packet.payload.len(), now);
            // TIDs above the table's (VP8 allows 3) count with the top one.
            let tid = frame.vp8.and_then(|d| d.tid).map_or(0, usize::from);
            let tid = tid.min(TEMPORAL_LAYERS - 1);
            l.temporal_bitrate[tid].record(packet.payload.len(), now);
            if !l.active {
                l.active = true;
                self.update_targets(&producer_id, now);
            }
        }
        let Some(producer) = self.producers.get(&producer_id) else {
            return;
        };
        for tap_id in &producer.taps {
            let Some(tap) = self.taps.get_mut(tap_id) else {
                continue;
            };
            if !tap.layers.admit(&mut tap.seq, layer, packet, &frame) {
                continue;
            }
            let Some(out) = tap
                .layers
                .rewrite(&mut tap.seq, packet, &frame, clock_rate, now)
            else {
                continue;
            };
            self.outputs.push_back(EngineOutput::Tapped {
                tap_id: tap_id.clone(),
                packet: TapPacket {
                    sequence_number: out.seq,
                    timestamp: out.timestamp,
                    marker: packet.header.marker,
                    payload_type: pt,
                    payload: out.payload,
                },
            });
        }
        let mut changes = Vec::new();
        for consumer_id in &producer.consumers {
            let Some(consumer) = self.consumers.get_mut(consumer_id) else {
                continue;
            };
            if !consumer.active() || !consumer.payload_types.contains(&pt) {
                continue;
            }
            if !consumer
                .layers
                .admit(&mut consumer.seq, layer, packet, &frame)
            {
                continue;
            }
            let Some(transport) = self.transports.get_mut(&consumer.transport_id) else {
                continue;
            };
            if !transport.connected {
                continue;
            }
            let Some(rtc) = transport.rtc.as_mut() else {
                continue;
            };
            let Some(out) =
                consumer
                    .layers
                    .rewrite(&mut consumer.seq, packet, &frame, clock_rate, now)
            else {
                continue;
            };
            let mut api = rtc.direct_api();
            let Some(tx) = api.stream_tx(&Ssrc::from(consumer.ssrc)) else {
                continue;
            };
            tx.write_rtp(
                RtpWrite::new(pt.into(), out.seq.into(), out.timestamp, now, out.payload)
                    .marker(packet.header.marker)
                    .ext_vals(ext_vals.clone())
                    .nackable(consumer.has_rtx),
            );
            self.dirty.insert(consumer.transport_id.clone());
            if let Some((spatial_layer, temporal_layer)) = consumer.layers.take_change() {
                changes.push(EngineEvent::ConsumerLayersChanged {
                    consumer_id: consumer_id.clone(),
                    spatial_layer,
                    temporal_layer,
                });
            }
        }
        self.media.layer_switches += changes.len() as u64;
        for change in changes {
            self.emit(change);
        }
    }

    /// Re-chooses the target layer of every consumer of a producer (its
    /// layers' activity or a preference changed) and asks for the
    /// keyframes the switches need.
    pub(super) fn update_targets(&mut self, producer_id: &str, now: Instant) {
        let Some(producer) = self.producers.get(producer_id) else {
            return;
        };
        let active: Vec<bool> = producer.layers.iter().map(|l| l.active).collect();
        let mut wanted = Vec::new();
        for consumer_id in &producer.consumers {
            if let Some(consumer) = self.consumers.get_mut(consumer_id)
                && let Some(layer) = consumer.layers.choose_target(&active)
                && consumer.active()
            {
                wanted.push(layer);
            }
        }
        for tap_id in &producer.taps {
            if let Some(tap) = self.taps.get_mut(tap_id)
                && let Some(layer) = tap.choose_target(&active, now)
            {
                wanted.push(layer);
            }
        }
        for layer in wanted {
            self.want_keyframe(producer_id, layer, now);
        }
    }

    /// Every [`LAYER_CHECK_INTERVAL`]: layers that stopped sending become
    /// inactive (their consumers fall to another), switches still
    /// waiting ask again for their keyframe (rate-limited per stream), and
    /// each publisher's needed layers are re-evaluated (see `needed`).
    pub(super) fn check_layers(&mut self, now: Instant) {
        if self.next_layer_check.is_some_and(|at| now < at) {
            return;
        }
        self.next_layer_check = Some(now + LAYER_CHECK_INTERVAL);
        let mut changed = Vec::new();
        let mut waiting = Vec::new();
        for (producer_id, producer) in &mut self.producers {
            let mut any = false;
            for l in &mut producer.layers {
                let silent = l
                    .last_packet
                    .is_none_or(|at| now.saturating_duration_since(at) >= LAYER_INACTIVE_AFTER);
                if l.active && silent {
                    l.active = false;
                    any = true;
                }
            }
            if any {
                changed.push(producer_id.clone());
            }
            for consumer_id in &producer.consumers {
                if let Some(c) = self.consumers.get(consumer_id)
                    && c.active()
                    && let Some(layer) = c.layers.waiting_for()
                {
                    waiting.push((producer_id.clone(), layer));
                }
            }
            // A tap also ends its wait for the top layer here (see `taps`).
            if producer.taps.is_empty() {
                continue;
            }
            let active: Vec<bool> = producer.layers.iter().map(|l| l.active).collect();
            for tap_id in &producer.taps {
                if let Some(tap) = self.taps.get_mut(tap_id)
                    && let Some(layer) =
                        tap.choose_target(&active, now).or(tap.layers.waiting_for())
                {
                    waiting.push((producer_id.clone(), layer));
                }
            }
        }
        for producer_id in changed {
            self.update_targets(&producer_id, now);
        }
        for (producer_id, layer) in waiting {
            self.want_keyframe(&producer_id, layer, now);
        }
        self.check_layers_needed(now);
        self.reallocate_all(now);
    }

    /// Every [`SPEAKER_TICK`]: each router's active speaker detector
    /// re-evaluates, and a change is an event.
    pub(super) fn check_speakers(&mut self, now: Instant) {
        if self.next_speaker_check.is_some_and(|at| now < at) {
            return;
        }
        self.next_speaker_check = Some(now + SPEAKER_TICK);
        let mut changes = Vec::new();
        for router in self.routers.values_mut() {
            if let Some((producer_id, volume)) = router.speaker.tick(now) {
                changes.push(EngineEvent::ActiveSpeaker {
                    producer_id,
                    volume,
                });
            }
        }
        for change in changes {
            self.emit(change);
        }
    }

    pub(super) fn want_keyframe(&mut self, producer_id: &str, layer: usize, now: Instant) {
        if let Some(l) = self
            .producers
            .get_mut(producer_id)
            .filter(|p| p.negotiation.kind == MediaKind::Video)
            .and_then(|p| p.layers.get_mut(layer))
        {
            l.keyframe.want();
        }
        self.flush_keyframes(producer_id, now);
    }

    /// Sends the keyframe requests of a producer that are wanted and allowed
    /// (needs the stream to have been seen by str0m).
    pub(super) fn flush_keyframes(&mut self, producer_id: &str, now: Instant) {
        let Some(producer) = self.producers.get_mut(producer_id) else {
            return;
        };
        let Some(transport) = self.transports.get_mut(&producer.transport_id) else {
            return;
        };
        let Some(rtc) = transport.rtc.as_mut() else {
            return;
        };
        let mut sent = Vec::new();
        for (index, layer) in producer.layers.iter_mut().enumerate() {
            if !layer.keyframe.is_pending() || producer.paused {
                continue;
            }
            let mut api = rtc.direct_api();
            let rx = match (layer.ssrc, &layer.rid) {
                (Some(ssrc), _) => api.stream_rx(&Ssrc::from(ssrc)),
                (None, Some(rid)) => api.stream_rx_by_mid(
                    Mid::from(producer.mid.as_str()),
                    Some(Rid::from(rid.as_str())),
                ),
                (None, None) => api.stream_rx_by_mid(Mid::from(producer.mid.as_str()), None),
            };
            let Some(rx) = rx else {
                continue;
            };
            if layer.keyframe.poll(now) {
                rx.request_keyframe(KeyframeRequestKind::Pli);
                sent.push(index);
            }
        }
        if !sent.is_empty() {
            self.dirty.insert(producer.transport_id.clone());
        }
        for layer in sent {
            self.outputs
                .push_back(EngineOutput::Event(EngineEvent::KeyframeRequested {
                    producer_id: producer_id.to_owned(),
                    layer,
                }));
        }
    }
}
