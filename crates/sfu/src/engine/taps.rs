//! Taps: a producer's media handed out as plain RTP, for recording.
//!
//! A tap is a subscriber without a transport (Galène's "recording is just
//! another subscriber"): each packet the producer's forwarded stream gets
//! (after SRTP, and after str0m's NACK/RTX repair, so retransmissions come
//! with their original sequence numbers) is also emitted as
//! [`EngineOutput::Tapped`](super::EngineOutput::Tapped), in the router's
//! payload types. The engine neither buffers nor writes anything for a
//! tap; what to do with the packets is the driver's business.
//!
//! A tap of a simulcast producer records its best arriving layer. It picks
//! and switches layers with a consumer's own machinery (`layers`: no
//! preferred or bandwidth ceiling, so the best active encoding; a switch
//! only at a keyframe of the new layer; sequence numbers, timestamps and
//! VP8 picture ids continuous across switches), and while it exists its
//! publisher is told to send every layer (`needed`). A recording's file
//! takes its picture size from its first keyframe, so a tap does not start
//! on a lower layer at once: it waits up to [`TAP_TOP_LAYER_WAIT`] from the
//! first arriving layer for the top one (a camera's encodings come up one
//! by one, the top last while the publisher's estimate grows), then starts
//! on the best layer arriving and rises when a better one comes.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::forward::SeqRewriter;
use super::layers::LayerSelector;
use super::{Engine, EngineError, EngineEvent};
use crate::rtp::{MediaKind, RtpCodecParameters, is_rtx};

/// At most this many taps per producer (a recording needs one).
pub const MAX_TAPS_PER_PRODUCER: usize = 4;

/// How long a tap of a simulcast producer waits, from when the first of its
/// layers arrives, for the top layer before starting on a lower one.
pub const TAP_TOP_LAYER_WAIT: Duration = Duration::from_secs(2);

/// What `add_tap` answers: enough to set up a recorder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TapInfo {
    pub tap_id: String,
    pub producer_id: String,
    pub kind: MediaKind,
    /// The producer's media codecs in router numbering (no RTX): the
    /// payload type of a tapped packet says which.
    pub codecs: Vec<RtpCodecParameters>,
}

/// One tapped RTP packet, numbered as one stream whatever layer it came
/// from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TapPacket {
    /// The tap's own sequence number (continuous across layer switches;
    /// a loss upstream stays a gap).
    pub sequence_number: u64,
    /// The tap's RTP timestamp (continuous across layer switches).
    pub timestamp: u32,
    pub marker: bool,
    /// The router's payload type.
    pub payload_type: u8,
    pub payload: Vec<u8>,
}

pub(super) struct Tap {
    pub(super) producer_id: String,
    /// Which layer it gets, and the rewriting across switches.
    pub(super) layers: LayerSelector,
    pub(super) seq: SeqRewriter,
    /// When the first of the producer's layers was seen active (the start
    /// of [`TAP_TOP_LAYER_WAIT`]).
    first_active: Option<Instant>,
}

impl Tap {
    /// Chooses the layer to record from the producer's active layers (see
    /// the module doc); the layer to ask a keyframe of when it must now
    /// switch.
    pub(super) fn choose_target(&mut self, active: &[bool], now: Instant) -> Option<usize> {
        if !active.contains(&true) {
            return None;
        }
        let since = *self.first_active.get_or_insert(now);
        let started = self.layers.keyframe_layer().is_some();
        let top_active = active.last().copied().unwrap_or(false);
        if !started && !top_active && now.saturating_duration_since(since) < TAP_TOP_LAYER_WAIT {
            return None;
        }
        self.layers.choose_target(active)
    }
}

impl Engine {
    /// Starts handing out the packets of `producer_id` under `tap_id`.
    pub fn add_tap(&mut self, producer_id: &str, tap_id: &str) -> Result<TapInfo, EngineError> {
        if self.taps.contains_key(tap_id) {
            return Err(EngineError::DuplicateId {
                what: "tap",
                id: tap_id.into(),
            });
        }
        let producer = self
            .producers
            .get_mut(producer_id)
            .ok_or_else(|| EngineError::UnknownProducer(producer_id.into()))?;
        if producer.taps.len() >= MAX_TAPS_PER_PRODUCER {
            return Err(EngineError::LimitReached {
                what: "taps on the producer",
                max: MAX_TAPS_PER_PRODUCER,
            });
        }
        producer.taps.insert(tap_id.to_owned());
        let layers = LayerSelector::new(producer.layers.len(), producer.switchable());
        let info = TapInfo {
            tap_id: tap_id.to_owned(),
            producer_id: producer_id.to_owned(),
            kind: producer.negotiation.kind,
            codecs: producer
                .negotiation
                .consumable_rtp_parameters
                .codecs
                .iter()
                .filter(|c| !is_rtx(&c.mime_type))
                .cloned()
                .collect(),
        };
        self.taps.insert(
            tap_id.to_owned(),
            Tap {
                producer_id: producer_id.to_owned(),
                layers,
                seq: SeqRewriter::new(0),
                first_active: None,
            },
        );
        // A recording wants the best layer from now on.
        self.raise_layers_needed(producer_id);
        Ok(info)
    }

    /// Stops a tap (no event: the caller asked).
    pub fn remove_tap(&mut self, tap_id: &str) -> Result<(), EngineError> {
        let tap = self
            .taps
            .remove(tap_id)
            .ok_or_else(|| EngineError::UnknownTap(tap_id.into()))?;
        if let Some(p) = self.producers.get_mut(&tap.producer_id) {
            p.taps.remove(tap_id);
        }
        Ok(())
    }

    /// Asks the tapped producer for a keyframe of the layer the tap gets
    /// (a recorder lost packets for good), with the same rate limit as
    /// consumers' requests.
    pub fn request_tap_keyframe(&mut self, tap_id: &str, now: Instant) -> Result<(), EngineError> {
        let (producer_id, layer) = self
            .taps
            .get(tap_id)
            .map(|t| (t.producer_id.clone(), t.layers.keyframe_layer()))
            .ok_or_else(|| EngineError::UnknownTap(tap_id.into()))?;
        if let Some(layer) = layer {
            self.want_keyframe(&producer_id, layer, now);
        }
        Ok(())
    }

    /// The taps of a producer that was closed end with it.
    pub(super) fn close_taps_of(&mut self, producer_id: &str, taps: Vec<String>) {
        for tap_id in taps {
            if self.taps.remove(&tap_id).is_some() {
                self.emit(EngineEvent::TapClosed {
                    tap_id,
                    producer_id: producer_id.to_owned(),
                });
            }
        }
    }
}
