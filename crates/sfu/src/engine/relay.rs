//! The forwarding glue: which producer stream an incoming RTP packet
//! belongs to, writing it to that stream's active consumers, and sending
//! the keyframe requests consumers want (the pure parts are in
//! [`forward`](super::forward)).

use std::time::Instant;

use str0m::media::{KeyframeRequestKind, Mid, Rid};
use str0m::rtp::{ExtensionValues, RtpPacket, RtpWrite, Ssrc};

use super::{Engine, EngineEvent, EngineOutput, TapPacket};
use crate::rtp::MediaKind;

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
        let Some(producer) = self.producers.get(&producer_id) else {
            return;
        };
        if producer.paused {
            return;
        }
        let Some(pt) = producer
            .negotiation
            .rtp_mapping
            .mapped_payload_type(*packet.header.payload_type)
        else {
            return;
        };
        if layer == 0 && !producer.taps.is_empty() {
            let taps: Vec<String> = producer.taps.iter().cloned().collect();
            self.tap(
                &taps,
                TapPacket {
                    sequence_number: *packet.seq_no,
                    timestamp: packet.header.timestamp,
                    marker: packet.header.marker,
                    payload_type: pt,
                    payload: packet.payload.to_vec(),
                },
            );
        }
        let Some(producer) = self.producers.get(&producer_id) else {
            return;
        };
        let ext_vals = ExtensionValues {
            audio_level: packet.header.ext_vals.audio_level,
            voice_activity: packet.header.ext_vals.voice_activity,
            video_orientation: packet.header.ext_vals.video_orientation,
            ..Default::default()
        };
        for consumer_id in &producer.consumers {
            let Some(consumer) = self.consumers.get_mut(consumer_id) else {
                continue;
            };
            if !consumer.active()
                || consumer.layer != layer
                || !consumer.payload_types.contains(&pt)
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
            let Some(seq) = consumer.seq.rewrite(*packet.seq_no) else {
                continue;
            };
            let mut api = rtc.direct_api();
            let Some(tx) = api.stream_tx(&Ssrc::from(consumer.ssrc)) else {
                continue;
            };
            tx.write_rtp(
                RtpWrite::new(
                    pt.into(),
                    seq.into(),
                    packet.header.timestamp,
                    now,
                    packet.payload.to_vec(),
                )
                .marker(packet.header.marker)
                .ext_vals(ext_vals.clone())
                .nackable(consumer.has_rtx),
            );
            self.dirty.insert(consumer.transport_id.clone());
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
