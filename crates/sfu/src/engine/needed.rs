//! Which simulcast layers a publisher needs to encode: the highest spatial
//! layer some consumer of its producer may use, announced to the producer's
//! owner ([`EngineEvent::ProducerLayersNeeded`]) so its client can stop
//! encoding the layers above (issue 6).
//!
//! For a simulcast producer whose consumers can switch layers (see
//! `layers`), the need is the highest `min(preferred spatial, layer count −
//! 1)` over its consumers that are not paused by their owner, and the top
//! layer while a recording taps it (a tap records the best layer, see
//! `taps`); with neither it is 0. Layer 0 is always needed: a new consumer
//! starts on it at once while the upper layers come back.
//! Only the *preferred* ceiling counts, never what a consumer's link allows
//! now: a consumer held down by bandwidth must be able to rise again when
//! its link recovers, and it can only rise to a layer that is being sent.
//! A producer that is paused as a whole does not lower the need either (its
//! publisher sends nothing anyway, and on resume everyone wants what they
//! wanted before).
//!
//! When the need changes:
//! - a rise is announced at once (a consumer is waiting for the layer);
//! - a fall only once the need has stayed below the last announced value for
//!   [`LAYERS_NEEDED_HOLD`] (counted from when it first fell), and then the
//!   need of that moment is announced, so a tile being resized does not make
//!   the publisher's encoders flap.
//!
//! A publisher starts with all its encodings on, so the engine starts from
//! "all layers" as if announced: a producer whose consumers want every layer
//! hears nothing, one that nobody watches hears 0 after the hold. Producers
//! with one encoding, or whose consumers cannot switch (VP9, AV1), never
//! hear anything.
//!
//! Nothing else is needed when layers come back: their packets arrive, the
//! layer becomes active, and the consumers' targets rise with a keyframe
//! request (`relay::update_targets`).
//!
//! Rises are evaluated when a preference rises or a consumer resumes; falls
//! (lower preferences, paused or closed consumers) on the layer tick
//! (`relay::check_layers`), which also ends the holds.

use std::time::{Duration, Instant};

use super::{Engine, EngineEvent};

/// How long the need must stay below what was last announced before the
/// lower value is announced.
pub const LAYERS_NEEDED_HOLD: Duration = Duration::from_secs(2);

/// One producer's announcement state. See the module doc.
#[derive(Debug, Default)]
pub(super) struct NeededLayers {
    /// The value last announced; `None` until the first announcement (the
    /// publisher then sends all its layers).
    announced: Option<u8>,
    /// Since when the need has been below `announced` (a fall on hold).
    falling_since: Option<Instant>,
}

impl NeededLayers {
    /// The need is `needed` now and did not fall: the value to announce, if
    /// any (a fall is left for [`NeededLayers::update`]).
    fn rise(&mut self, needed: u8, top: u8) -> Option<u8> {
        let announced = self.announced.unwrap_or(top);
        if needed < announced {
            return None;
        }
        self.falling_since = None;
        if needed == announced {
            return None;
        }
        self.announced = Some(needed);
        Some(needed)
    }

    /// The need is `needed` now, of a producer whose highest layer is
    /// `top`: the value to announce, if any.
    fn update(&mut self, needed: u8, top: u8, now: Instant) -> Option<u8> {
        let announced = self.announced.unwrap_or(top);
        if needed >= announced {
            return self.rise(needed, top);
        }
        let since = *self.falling_since.get_or_insert(now);
        if now.saturating_duration_since(since) < LAYERS_NEEDED_HOLD {
            return None;
        }
        self.falling_since = None;
        self.announced = Some(needed);
        Some(needed)
    }
}

impl Engine {
    /// The highest spatial layer some consumer of a simulcast producer may
    /// use, with the producer's highest layer; `None` for a producer that
    /// is not a switchable simulcast one (or unknown).
    fn layers_needed_now(&self, producer_id: &str) -> Option<(u8, u8)> {
        let producer = self.producers.get(producer_id)?;
        if !producer.switchable() {
            return None;
        }
        let top = u8::try_from(producer.layers.len().saturating_sub(1)).unwrap_or(u8::MAX);
        if !producer.taps.is_empty() {
            return Some((top, top));
        }
        let needed = producer
            .consumers
            .iter()
            .filter_map(|id| self.consumers.get(id))
            .filter(|c| !c.paused)
            .map(|c| c.layers.preferred().spatial_layer.min(top))
            .max()
            .unwrap_or(0);
        Some((needed, top))
    }

    /// Re-evaluates what a producer's publisher needs to send and emits
    /// `ProducerLayersNeeded` when that is to be announced now.
    pub(super) fn update_layers_needed(&mut self, producer_id: &str, now: Instant) {
        let Some((needed, top)) = self.layers_needed_now(producer_id) else {
            return;
        };
        let Some(producer) = self.producers.get_mut(producer_id) else {
            return;
        };
        if let Some(max_spatial_layer) = producer.needed.update(needed, top, now) {
            self.emit(EngineEvent::ProducerLayersNeeded {
                producer_id: producer_id.to_owned(),
                max_spatial_layer,
            });
        }
    }

    /// Announces at once a rise of what a producer's publisher needs to
    /// send (a tap was added); falls wait for the layer tick.
    pub(super) fn raise_layers_needed(&mut self, producer_id: &str) {
        let Some((needed, top)) = self.layers_needed_now(producer_id) else {
            return;
        };
        let Some(producer) = self.producers.get_mut(producer_id) else {
            return;
        };
        if let Some(max_spatial_layer) = producer.needed.rise(needed, top) {
            self.emit(EngineEvent::ProducerLayersNeeded {
                producer_id: producer_id.to_owned(),
                max_spatial_layer,
            });
        }
    }

    /// The layer tick: every producer's need, so falls start and end their
    /// hold.
    pub(super) fn check_layers_needed(&mut self, now: Instant) {
        let producers: Vec<String> = self
            .producers
            .iter()
            .filter(|(_, p)| p.switchable())
            .map(|(id, _)| id.clone())
            .collect();
        for producer_id in producers {
            self.update_layers_needed(&producer_id, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rises_at_once_and_falls_after_the_hold() {
        let t0 = Instant::now();
        let mut n = NeededLayers::default();
        assert_eq!(n.update(2, 2, t0), None, "all layers: already sent");
        assert_eq!(n.update(0, 2, t0), None, "a fall waits");
        let almost = t0 + LAYERS_NEEDED_HOLD - Duration::from_millis(1);
        assert_eq!(n.update(1, 2, almost), None);
        assert_eq!(n.update(1, 2, t0 + LAYERS_NEEDED_HOLD), Some(1));
        assert_eq!(n.update(1, 2, t0 + LAYERS_NEEDED_HOLD * 2), None);
        let t1 = t0 + LAYERS_NEEDED_HOLD * 3;
        assert_eq!(n.update(2, 2, t1), Some(2), "a rise is at once");
        // A fall that comes back before the hold ends tells nothing, and
        // the next fall waits a whole hold again.
        assert_eq!(n.update(0, 2, t1), None);
        assert_eq!(n.update(2, 2, t1 + LAYERS_NEEDED_HOLD / 2), None);
        let t2 = t1 + LAYERS_NEEDED_HOLD;
        assert_eq!(n.update(0, 2, t2), None);
        assert_eq!(n.update(0, 2, t2 + LAYERS_NEEDED_HOLD), Some(0));
    }
}
