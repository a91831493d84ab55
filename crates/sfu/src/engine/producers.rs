//! Producers: `produce` (negotiation, the checks str0m needs, declaring the
//! receive streams), pausing, resuming and closing them.

use std::collections::BTreeSet;
use std::time::Instant;

use serde_json::Value;
use str0m::media::{Mid, Rid};
use str0m::rtp::Ssrc;

use super::allocation::TEMPORAL_LAYERS;
use super::forward::{BitrateMeter, KeyframeLimiter};
use super::needed::NeededLayers;
use super::rtpmap::{ProducerRtpMap, SendTables};
use super::stats::IngressStats;
use super::transport::{Direction, build_rtc};
use super::vp8::FrameCodec;
use super::{
    CloseReason, Engine, EngineError, EngineEvent, EngineOutput, ProducerInfo, str0m_kind, wire,
};
use crate::rtp::{self, MediaKind, ProducerNegotiation, uri};

const MAX_MID_LEN: usize = 16;
const MAX_RID_LEN: usize = 8;

pub(super) struct Layer {
    pub(super) rid: Option<String>,
    pub(super) ssrc: Option<u32>,
    pub(super) keyframe: KeyframeLimiter,
    /// When its last packet arrived, and whether it counts as sending
    /// (see `layers::LAYER_INACTIVE_AFTER`).
    pub(super) last_packet: Option<Instant>,
    pub(super) active: bool,
    pub(super) bitrate: BitrateMeter,
    /// What arrives on it (see `stats`).
    pub(super) stats: IngressStats,
    /// The payload bitrate of each VP8 temporal layer (TID) alone; all of
    /// it in TID 0 for a stream without temporal layers. What the
    /// bandwidth allocation counts (str0m's estimate counts payload bytes
    /// too).
    pub(super) temporal_bitrate: [BitrateMeter; TEMPORAL_LAYERS],
}

impl Layer {
    /// `None` when the layer is not arriving, else its bitrate up to each
    /// temporal layer.
    pub(super) fn rates(&self) -> Option<[u64; TEMPORAL_LAYERS]> {
        if !self.active {
            return None;
        }
        let mut out = [0; TEMPORAL_LAYERS];
        let mut sum = 0u64;
        for (t, meter) in self.temporal_bitrate.iter().enumerate() {
            sum = sum.saturating_add(meter.bitrate());
            out[t] = sum;
        }
        Some(out)
    }
}

pub(super) struct Producer {
    pub(super) transport_id: String,
    pub(super) router_id: String,
    pub(super) mid: String,
    pub(super) negotiation: ProducerNegotiation,
    pub(super) paused: bool,
    pub(super) layers: Vec<Layer>,
    /// Router payload type → codec, for what the forwarding path parses.
    pub(super) codecs: Vec<(u8, FrameCodec)>,
    /// How its packets' payload types and extensions are read.
    pub(super) rtpmap: ProducerRtpMap,
    /// RTP clock rate of its media.
    pub(super) clock_rate: u32,
    pub(super) consumers: BTreeSet<String>,
    /// Taps (recorders; see `taps`).
    pub(super) taps: BTreeSet<String>,
    /// What its publisher was told to encode (see `needed`).
    pub(super) needed: NeededLayers,
    /// A screen share: its consumers keep resolution before frame rate and
    /// come first in their transport's bandwidth (see `allocation`).
    pub(super) screen: bool,
}

impl Producer {
    /// Whether its consumers can switch layers: several encodings of a
    /// codec whose keyframes the engine recognises (see `layers`).
    pub(super) fn switchable(&self) -> bool {
        self.layers.len() > 1
            && self
                .codecs
                .iter()
                .any(|(_, c)| matches!(c, FrameCodec::Vp8 | FrameCodec::H264))
    }

    /// The codec of a packet with router payload type `pt`.
    pub(super) fn codec_of(&self, pt: u8) -> FrameCodec {
        self.codecs
            .iter()
            .find(|(p, _)| *p == pt)
            .map_or(FrameCodec::Other, |(_, c)| *c)
    }
}

impl Engine {
    /// `produce`: negotiates the producer against the router and gets the
    /// transport ready to receive it.
    pub fn produce(
        &mut self,
        transport_id: &str,
        producer_id: &str,
        kind: MediaKind,
        rtp_parameters: &Value,
        now: Instant,
    ) -> Result<ProducerInfo, EngineError> {
        let transport = self
            .transports
            .get(transport_id)
            .ok_or_else(|| EngineError::UnknownTransport(transport_id.into()))?;
        if self.producers.contains_key(producer_id) {
            return Err(EngineError::DuplicateId {
                what: "producer",
                id: producer_id.into(),
            });
        }
        if transport.direction == Some(Direction::Recv) {
            return Err(EngineError::WrongDirection {
                transport_id: transport_id.into(),
                used: Direction::Recv.as_str(),
                asked: Direction::Send.as_str(),
            });
        }
        if transport.producers.len() >= self.config.max_producers_per_transport {
            return Err(EngineError::LimitReached {
                what: "producers on the transport",
                max: self.config.max_producers_per_transport,
            });
        }
        let router = self
            .routers
            .get(&transport.router_id)
            .ok_or_else(|| EngineError::UnknownRouter(transport.router_id.clone()))?;

        let mut params = rtp::parse_rtp_parameters(rtp_parameters)?;
        let mut cname = transport.cname.clone();
        let generated = self.rng.token(16);
        rtp::apply_transport_cname(&mut params, &mut cname, || generated);
        let rng = &mut self.rng;
        let mut next_ssrc = || rng.next_u32();
        let negotiation = rtp::negotiate_producer(kind, &params, &router.caps, &mut next_ssrc)?;
        let accepted = &negotiation.rtp_parameters;

        // Checks str0m needs: MIDs and RIDs it can represent, unused MIDs
        // and SSRCs on this transport.
        let mid = match &accepted.mid {
            Some(mid) => mid.clone(),
            None => format!(
                "p{}",
                transport.producers.len() + transport.next_mid as usize
            ),
        };
        if !wire::valid_str0m_id(&mid, MAX_MID_LEN) {
            return Err(EngineError::Unsupported(format!(
                "mid {mid:?} (ASCII letters and digits, at most {MAX_MID_LEN})"
            )));
        }
        if transport.mids.contains_key(&mid) {
            return Err(EngineError::DuplicateId {
                what: "mid",
                id: mid,
            });
        }
        let mut new_ssrcs = BTreeSet::new();
        for enc in &accepted.encodings {
            if let Some(rid) = &enc.rid
                && !wire::valid_str0m_id(rid, MAX_RID_LEN)
            {
                return Err(EngineError::Unsupported(format!(
                    "rid {rid:?} (ASCII letters and digits, at most {MAX_RID_LEN})"
                )));
            }
            for ssrc in enc.ssrc.into_iter().chain(enc.rtx.as_ref().map(|r| r.ssrc)) {
                if transport.ssrcs.contains(&ssrc) || !new_ssrcs.insert(ssrc) {
                    return Err(EngineError::DuplicateId {
                        what: "ssrc",
                        id: ssrc.to_string(),
                    });
                }
            }
        }

        // The transport's numbering: str0m's tables are built now (first
        // producer), or this producer's numbering must not contradict what
        // the transport's earlier producers said (see `rtpmap`).
        let build = if transport.rtc.is_some() {
            transport.send_tables.check(accepted)?;
            None
        } else {
            Some(SendTables::first(accepted)?)
        };

        // Everything is checked: apply.
        let producer_type = negotiation.stream_type;
        let Some(transport) = self.transports.get_mut(transport_id) else {
            return Err(EngineError::UnknownTransport(transport_id.into()));
        };
        match build {
            Some((tables, rtc_tables)) => {
                let rtc = build_rtc(&self.config, &self.cert, transport, &rtc_tables, None, now)?;
                transport.send_tables = tables;
                transport.rtc = Some(rtc);
                transport.direction = Some(Direction::Send);
            }
            None => transport.send_tables.learn(accepted),
        }
        transport.cname = cname;
        transport.ssrcs.extend(new_ssrcs);
        transport.mids.insert(mid.clone(), producer_id.to_owned());
        transport.producers.insert(producer_id.to_owned());
        let has_twcc = accepted
            .header_extensions
            .iter()
            .any(|e| e.uri == uri::TRANSPORT_WIDE_CC);
        if let Some(rtc) = transport.rtc.as_mut() {
            let mut api = rtc.direct_api();
            let media = api.declare_media(Mid::from(mid.as_str()), str0m_kind(kind));
            for enc in &accepted.encodings {
                if let Some(rid) = &enc.rid {
                    media.expect_rid_rx(Rid::from(rid.as_str()));
                }
            }
            for enc in &accepted.encodings {
                if let (None, Some(ssrc)) = (&enc.rid, enc.ssrc) {
                    api.expect_stream_rx(
                        Ssrc::from(ssrc),
                        enc.rtx.as_ref().map(|r| Ssrc::from(r.ssrc)),
                        Mid::from(mid.as_str()),
                        None,
                    );
                }
            }
            if has_twcc {
                api.enable_twcc_feedback();
            }
        }
        if transport
            .send_tables
            .watch_rids(producer_id, &mid, accepted)
        {
            tracing::debug!(
                transport_id,
                producer_id,
                "RID streams are found by the engine"
            );
        }
        let layers = accepted
            .encodings
            .iter()
            .map(|e| Layer {
                rid: e.rid.clone(),
                ssrc: e.ssrc,
                keyframe: KeyframeLimiter::default(),
                last_packet: None,
                active: false,
                bitrate: BitrateMeter::default(),
                stats: IngressStats::default(),
                temporal_bitrate: Default::default(),
            })
            .collect();
        let consumable = &negotiation.consumable_rtp_parameters;
        let codecs = consumable
            .codecs
            .iter()
            .map(|c| (c.payload_type, FrameCodec::from_mime(&c.mime_type)))
            .collect();
        let clock_rate = consumable.codecs.first().map_or(90_000, |c| c.clock_rate);
        let rtpmap = ProducerRtpMap::new(accepted);
        let router_id = transport.router_id.clone();
        self.producers.insert(
            producer_id.to_owned(),
            Producer {
                transport_id: transport_id.to_owned(),
                router_id,
                mid,
                negotiation,
                paused: false,
                layers,
                codecs,
                rtpmap,
                clock_rate,
                consumers: BTreeSet::new(),
                taps: BTreeSet::new(),
                needed: NeededLayers::default(),
                screen: false,
            },
        );
        self.dirty.insert(transport_id.to_owned());
        self.pump(now);
        Ok(ProducerInfo {
            id: producer_id.to_owned(),
            kind,
            producer_type,
        })
    }

    /// Marks a producer as a screen share (`appData.source == "screen"`,
    /// which the engine does not see) or not: under a tight bandwidth
    /// estimate its consumers lose frame rate before resolution and are
    /// served before cameras (see `allocation`).
    pub fn set_producer_screen(
        &mut self,
        producer_id: &str,
        screen: bool,
        now: Instant,
    ) -> Result<(), EngineError> {
        let producer = self
            .producers
            .get_mut(producer_id)
            .ok_or_else(|| EngineError::UnknownProducer(producer_id.into()))?;
        producer.screen = screen;
        self.reallocate_consumers_of(producer_id, now);
        self.pump(now);
        Ok(())
    }

    /// Pauses a producer: nothing is forwarded; its consumers get
    /// `ConsumerPaused` events.
    pub fn pause_producer(&mut self, producer_id: &str) -> Result<(), EngineError> {
        self.set_producer_paused(producer_id, true, None)
    }

    /// Resumes a producer; its consumers get `ConsumerResumed` events, and
    /// a keyframe is requested for the active ones.
    pub fn resume_producer(&mut self, producer_id: &str, now: Instant) -> Result<(), EngineError> {
        self.set_producer_paused(producer_id, false, Some(now))
    }

    fn set_producer_paused(
        &mut self,
        producer_id: &str,
        paused: bool,
        now: Option<Instant>,
    ) -> Result<(), EngineError> {
        let producer = self
            .producers
            .get_mut(producer_id)
            .ok_or_else(|| EngineError::UnknownProducer(producer_id.into()))?;
        if producer.paused == paused {
            return Ok(());
        }
        producer.paused = paused;
        // As for its consumers: no gap in a tap's numbering across a pause.
        for tap_id in &producer.taps {
            if let Some(tap) = self.taps.get_mut(tap_id) {
                tap.seq.stop();
            }
        }
        let consumers: Vec<String> = producer.consumers.iter().cloned().collect();
        let mut keyframe_layers = BTreeSet::new();
        for consumer_id in consumers {
            let Some(consumer) = self.consumers.get_mut(&consumer_id) else {
                continue;
            };
            consumer.producer_paused = paused;
            consumer.seq.stop();
            if consumer.active()
                && let Some(layer) = consumer.layers.keyframe_layer()
            {
                keyframe_layers.insert(layer);
            }
            self.outputs.push_back(EngineOutput::Event(if paused {
                EngineEvent::ConsumerPaused { consumer_id }
            } else {
                EngineEvent::ConsumerResumed { consumer_id }
            }));
        }
        if let Some(now) = now {
            for layer in keyframe_layers {
                self.want_keyframe(producer_id, layer, now);
            }
            self.pump(now);
        }
        Ok(())
    }

    /// Closes a producer; its consumers close with events.
    pub fn close_producer(&mut self, producer_id: &str) -> Result<(), EngineError> {
        if !self.producers.contains_key(producer_id) {
            return Err(EngineError::UnknownProducer(producer_id.into()));
        }
        self.remove_producer(producer_id, None);
        Ok(())
    }

    /// Removes a producer and its consumers (with events for them);
    /// `reason` = emit `ProducerClosed` with it.
    pub(super) fn remove_producer(&mut self, producer_id: &str, reason: Option<CloseReason>) {
        let Some(producer) = self.producers.remove(producer_id) else {
            return;
        };
        if let Some(router) = self.routers.get_mut(&producer.router_id) {
            router.speaker.remove(producer_id);
        }
        for consumer_id in &producer.consumers {
            self.remove_consumer(consumer_id, Some(CloseReason::ProducerClosed));
        }
        self.close_taps_of(producer_id, producer.taps.iter().cloned().collect());
        if let Some(t) = self.transports.get_mut(&producer.transport_id) {
            t.producers.remove(producer_id);
            t.ssrc_layers.retain(|_, (p, _)| p != producer_id);
            t.send_tables.forget(producer_id);
            if let Some(rtc) = t.rtc.as_mut() {
                rtc.direct_api()
                    .remove_media(Mid::from(producer.mid.as_str()));
                self.dirty.insert(producer.transport_id.clone());
            }
        }
        if let Some(reason) = reason {
            self.emit(EngineEvent::ProducerClosed {
                producer_id: producer_id.to_owned(),
                reason,
            });
        }
    }
}
