//! Consumers: `consume` (parameters for the device, fresh SSRCs and MID,
//! declaring the send stream), pausing, resuming and closing them.

use std::collections::BTreeSet;
use std::time::Instant;

use serde_json::Value;
use str0m::media::Mid;
use str0m::rtp::Ssrc;

use super::allocation::UpGate;
use super::forward::SeqRewriter;
use super::layers::{LayerSelector, MAX_LAYER};
use super::stats::EgressStats;
use super::transport::{Direction, build_rtc, recv_tables};
use super::{CloseReason, ConsumerInfo, Engine, EngineError, EngineEvent, str0m_kind};
use crate::rtp::{self, ConsumerOptions, RtpParameters, RtpStreamType, is_rtx};

pub(super) struct Consumer {
    pub(super) transport_id: String,
    pub(super) producer_id: String,
    pub(super) mid: String,
    pub(super) ssrc: u32,
    pub(super) has_rtx: bool,
    pub(super) payload_types: BTreeSet<u8>,
    pub(super) paused: bool,
    pub(super) producer_paused: bool,
    /// Which producer layers it gets (see `layers`).
    pub(super) layers: LayerSelector,
    /// Holds rises of its bandwidth ceiling (see `allocation`).
    pub(super) bandwidth_gate: UpGate,
    pub(super) seq: SeqRewriter,
    /// What it sent and its receiver reported (see `stats`).
    pub(super) stats: EgressStats,
}

impl Consumer {
    pub(super) fn active(&self) -> bool {
        !self.paused && !self.producer_paused
    }
}

impl Engine {
    /// `consume`: a consumer of `producer_id` on a receive transport, for a
    /// device with `rtp_capabilities`. Starts paused (resume it once the
    /// client has set up its side).
    pub fn consume(
        &mut self,
        transport_id: &str,
        consumer_id: &str,
        producer_id: &str,
        rtp_capabilities: &Value,
        now: Instant,
    ) -> Result<ConsumerInfo, EngineError> {
        let transport = self
            .transports
            .get(transport_id)
            .ok_or_else(|| EngineError::UnknownTransport(transport_id.into()))?;
        let producer = self
            .producers
            .get(producer_id)
            .ok_or_else(|| EngineError::UnknownProducer(producer_id.into()))?;
        if self.consumers.contains_key(consumer_id) {
            return Err(EngineError::DuplicateId {
                what: "consumer",
                id: consumer_id.into(),
            });
        }
        if producer.router_id != transport.router_id {
            return Err(EngineError::OtherRouter {
                producer_id: producer_id.into(),
                transport_id: transport_id.into(),
            });
        }
        if transport.direction == Some(Direction::Send) {
            return Err(EngineError::WrongDirection {
                transport_id: transport_id.into(),
                used: Direction::Send.as_str(),
                asked: Direction::Recv.as_str(),
            });
        }
        if transport.consumers.len() >= self.config.max_consumers_per_transport {
            return Err(EngineError::LimitReached {
                what: "consumers on the transport",
                max: self.config.max_consumers_per_transport,
            });
        }
        let caps = rtp::parse_rtp_capabilities(rtp_capabilities)?;
        let consumable = &producer.negotiation.consumable_rtp_parameters;
        if !rtp::can_consume(consumable, &caps)? {
            return Err(EngineError::CannotConsume(producer_id.into()));
        }
        let kind = producer.negotiation.kind;
        let mut mid_n = transport.next_mid;
        while transport.mids.contains_key(&mid_n.to_string()) {
            mid_n += 1;
        }
        let mid = mid_n.to_string();
        let options = ConsumerOptions {
            mid: Some(mid.clone()),
            ..ConsumerOptions::for_kind(kind)
        };
        // Fresh SSRCs that the transport does not use yet.
        let mut params = None;
        for _ in 0..8 {
            let rng = &mut self.rng;
            let mut next_ssrc = || rng.next_u32();
            let p = rtp::consumer_rtp_parameters(consumable, &caps, &options, &mut next_ssrc)?;
            if consumer_ssrcs(&p)
                .iter()
                .all(|s| !transport.ssrcs.contains(s))
            {
                params = Some(p);
                break;
            }
        }
        let params =
            params.ok_or_else(|| EngineError::Internal("cannot allocate consumer SSRCs".into()))?;
        let enc = params
            .encodings
            .first()
            .ok_or_else(|| EngineError::Internal("consumer without encoding".into()))?;
        let ssrc = enc
            .ssrc
            .ok_or_else(|| EngineError::Internal("consumer encoding without ssrc".into()))?;
        let rtx = enc.rtx.as_ref().map(|r| r.ssrc);
        let payload_types = params
            .codecs
            .iter()
            .filter(|c| !is_rtx(&c.mime_type))
            .map(|c| c.payload_type)
            .collect();
        let consumer_type = match producer.negotiation.stream_type {
            RtpStreamType::Pipe => RtpStreamType::Simple,
            other => other,
        };
        let producer_paused = producer.paused;
        let layers = LayerSelector::new(producer.layers.len(), producer.switchable());
        let build = if transport.rtc.is_none() {
            let router = self
                .routers
                .get(&transport.router_id)
                .ok_or_else(|| EngineError::UnknownRouter(transport.router_id.clone()))?;
            Some(recv_tables(&router.caps)?)
        } else {
            None
        };

        // Everything is checked: apply.
        let seq_start = u64::from(self.rng.next_u32() & 0x7fff);
        let Some(transport) = self.transports.get_mut(transport_id) else {
            return Err(EngineError::UnknownTransport(transport_id.into()));
        };
        if let Some(tables) = build {
            // Only a client that answers with TWCC feedback can inform an
            // estimate; for any other, str0m's pacer would hold everything
            // to the initial guess for ever.
            let bwe = self
                .config
                .initial_bandwidth_estimate_bps
                .filter(|_| sends_twcc_feedback(&params));
            let rtc = build_rtc(&self.config, &self.cert, transport, &tables, bwe, now)?;
            transport.rtc = Some(rtc);
            transport.direction = Some(Direction::Recv);
        }
        transport.next_mid = mid_n + 1;
        transport.mids.insert(mid.clone(), consumer_id.to_owned());
        transport.ssrcs.extend(consumer_ssrcs(&params));
        transport.consumers.insert(consumer_id.to_owned());
        if let Some(rtc) = transport.rtc.as_mut() {
            let mut api = rtc.direct_api();
            api.declare_media(Mid::from(mid.as_str()), str0m_kind(kind));
            api.declare_stream_tx(
                Ssrc::from(ssrc),
                rtx.map(Ssrc::from),
                Mid::from(mid.as_str()),
                None,
            );
        }
        if let Some(producer) = self.producers.get_mut(producer_id) {
            producer.consumers.insert(consumer_id.to_owned());
        }
        self.consumers.insert(
            consumer_id.to_owned(),
            Consumer {
                transport_id: transport_id.to_owned(),
                producer_id: producer_id.to_owned(),
                mid,
                ssrc,
                has_rtx: rtx.is_some(),
                payload_types,
                paused: true,
                producer_paused,
                layers,
                bandwidth_gate: UpGate::default(),
                seq: SeqRewriter::new(seq_start),
                stats: EgressStats::default(),
            },
        );
        self.update_targets(producer_id, now);
        self.reallocate(transport_id, now);
        self.dirty.insert(transport_id.to_owned());
        self.pump(now);
        Ok(ConsumerInfo {
            id: consumer_id.to_owned(),
            producer_id: producer_id.to_owned(),
            kind,
            rtp_parameters: params,
            consumer_type,
            producer_paused,
        })
    }

    /// Stops forwarding to a consumer.
    pub fn pause_consumer(&mut self, consumer_id: &str) -> Result<(), EngineError> {
        let consumer = self
            .consumers
            .get_mut(consumer_id)
            .ok_or_else(|| EngineError::UnknownConsumer(consumer_id.into()))?;
        consumer.paused = true;
        consumer.seq.stop();
        Ok(())
    }

    /// Resumes forwarding to a consumer and asks its producer stream for a
    /// keyframe.
    pub fn resume_consumer(&mut self, consumer_id: &str, now: Instant) -> Result<(), EngineError> {
        let consumer = self
            .consumers
            .get_mut(consumer_id)
            .ok_or_else(|| EngineError::UnknownConsumer(consumer_id.into()))?;
        if !consumer.paused {
            return Ok(());
        }
        consumer.paused = false;
        consumer.seq.stop();
        let transport_id = consumer.transport_id.clone();
        self.reallocate(&transport_id, now);
        let Some(consumer) = self.consumers.get(consumer_id) else {
            return Ok(());
        };
        let producer_id = consumer.producer_id.clone();
        if consumer.active()
            && let Some(layer) = consumer.layers.keyframe_layer()
        {
            self.want_keyframe(&producer_id, layer, now);
        }
        // Its layers may be needed again (see `needed`).
        self.update_layers_needed(&producer_id, now);
        self.pump(now);
        Ok(())
    }

    /// `set-preferred-layers`: the best spatial layer (simulcast encoding)
    /// and temporal layer (VP8 TID; all when `None`) the consumer wants.
    /// It gets the best active layers up to these, switching at keyframes
    /// (see `layers`); `ConsumerLayersChanged` tells when what it gets
    /// changes.
    pub fn set_consumer_preferred_layers(
        &mut self,
        consumer_id: &str,
        spatial_layer: u8,
        temporal_layer: Option<u8>,
        now: Instant,
    ) -> Result<(), EngineError> {
        let temporal_layer = temporal_layer.unwrap_or(MAX_LAYER);
        if spatial_layer > MAX_LAYER || temporal_layer > MAX_LAYER {
            return Err(EngineError::InvalidLayers(format!(
                "spatialLayer {spatial_layer} and temporalLayer {temporal_layer} must be 0 to {MAX_LAYER}"
            )));
        }
        let consumer = self
            .consumers
            .get_mut(consumer_id)
            .ok_or_else(|| EngineError::UnknownConsumer(consumer_id.into()))?;
        consumer.layers.set_preferred(spatial_layer, temporal_layer);
        let producer_id = consumer.producer_id.clone();
        let transport_id = consumer.transport_id.clone();
        self.reallocate(&transport_id, now);
        self.update_targets(&producer_id, now);
        self.update_layers_needed(&producer_id, now);
        self.pump(now);
        Ok(())
    }

    /// Closes a consumer.
    pub fn close_consumer(&mut self, consumer_id: &str) -> Result<(), EngineError> {
        if !self.consumers.contains_key(consumer_id) {
            return Err(EngineError::UnknownConsumer(consumer_id.into()));
        }
        self.remove_consumer(consumer_id, None);
        Ok(())
    }

    /// Removes a consumer; `reason` = emit `ConsumerClosed` with it.
    pub(super) fn remove_consumer(&mut self, consumer_id: &str, reason: Option<CloseReason>) {
        let Some(consumer) = self.consumers.remove(consumer_id) else {
            return;
        };
        if let Some(p) = self.producers.get_mut(&consumer.producer_id) {
            p.consumers.remove(consumer_id);
        }
        if let Some(t) = self.transports.get_mut(&consumer.transport_id) {
            t.consumers.remove(consumer_id);
            if let Some(rtc) = t.rtc.as_mut() {
                rtc.direct_api()
                    .remove_media(Mid::from(consumer.mid.as_str()));
                self.dirty.insert(consumer.transport_id.clone());
            }
        }
        if let Some(reason) = reason {
            self.emit(EngineEvent::ConsumerClosed {
                consumer_id: consumer_id.to_owned(),
                producer_id: consumer.producer_id,
                reason,
            });
        }
    }
}

fn consumer_ssrcs(params: &RtpParameters) -> Vec<u32> {
    params
        .encodings
        .iter()
        .flat_map(|e| e.ssrc.into_iter().chain(e.rtx.as_ref().map(|r| r.ssrc)))
        .collect()
}

/// Whether a consumer's client sends transport-wide congestion-control
/// feedback: its parameters keep the transport-wide sequence number
/// extension and its codec takes `transport-cc` feedback (a device lists it
/// in its capabilities only when it sends it, as browsers do).
fn sends_twcc_feedback(params: &RtpParameters) -> bool {
    params
        .header_extensions
        .iter()
        .any(|e| e.uri == rtp::uri::TRANSPORT_WIDE_CC)
        && params
            .codecs
            .iter()
            .any(|c| c.rtcp_feedback.iter().any(|f| f.kind == "transport-cc"))
}
