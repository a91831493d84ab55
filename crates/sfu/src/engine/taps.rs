//! Taps: a producer's media handed out as plain RTP, for recording.
//!
//! A tap is a subscriber without a transport (Galène's "recording is just
//! another subscriber"): each packet the producer's forwarded stream gets
//! (after SRTP, and after str0m's NACK/RTX repair, so retransmissions come
//! with their original sequence numbers) is also emitted as
//! [`EngineOutput::Tapped`](super::EngineOutput::Tapped), in the router's
//! payload types. The engine neither buffers nor writes anything for a
//! tap; what to do with the packets is the driver's business. A simulcast
//! producer is tapped on its first encoding, as consumers are for now.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{Engine, EngineError, EngineEvent, EngineOutput};
use crate::rtp::{MediaKind, RtpCodecParameters, is_rtx};

/// At most this many taps per producer (a recording needs one).
pub const MAX_TAPS_PER_PRODUCER: usize = 4;

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

/// One tapped RTP packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TapPacket {
    /// str0m's extended (64-bit) sequence number of the producer's stream.
    pub sequence_number: u64,
    pub timestamp: u32,
    pub marker: bool,
    /// The router's payload type.
    pub payload_type: u8,
    pub payload: Vec<u8>,
}

pub(super) struct Tap {
    pub(super) producer_id: String,
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
            },
        );
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

    /// Asks the tapped producer for a keyframe (a recorder lost packets for
    /// good), with the same rate limit as consumers' requests.
    pub fn request_tap_keyframe(&mut self, tap_id: &str, now: Instant) -> Result<(), EngineError> {
        let producer_id = self
            .taps
            .get(tap_id)
            .map(|t| t.producer_id.clone())
            .ok_or_else(|| EngineError::UnknownTap(tap_id.into()))?;
        self.want_keyframe(&producer_id, 0, now);
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

    /// Hands a forwarded packet to the producer's taps.
    pub(super) fn tap(&mut self, taps: &[String], packet: TapPacket) {
        if let Some((last, rest)) = taps.split_last() {
            for tap_id in rest {
                self.outputs.push_back(EngineOutput::Tapped {
                    tap_id: tap_id.clone(),
                    packet: packet.clone(),
                });
            }
            self.outputs.push_back(EngineOutput::Tapped {
                tap_id: last.clone(),
                packet,
            });
        }
    }
}
