//! Bandwidth glue of the receive transports: str0m's egress estimate in,
//! the allocation (`allocation`) run over the transport's consumers, their
//! bandwidth ceilings applied through their up-gates, the target layers
//! chosen again (keyframes asked for the switches), and str0m told what
//! the consumers would like to be sent so that it probes towards it.

use std::collections::BTreeSet;
use std::time::Instant;

use str0m::bwe::Bitrate;

use super::Engine;
use super::allocation::{Demand, Layers, VideoDemand, allocate};
use crate::rtp::MediaKind;

/// str0m is told a new (minimum, desired) pair only when one of them moved
/// by more than this share (in percent) of the last one told: a higher
/// desired rate may start a probe, and the measured rates wobble.
const RETELL_PERCENT: u64 = 10;
/// While the estimate holds a consumer below its preferred layers, str0m is
/// asked this often for a higher desired rate for one tick (a rise of the
/// desired rate is what starts an allocation probe in str0m), so that a
/// lifted cap is found without waiting for its slower probes.
const NUDGE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

/// A receive transport's view of its estimate.
#[derive(Clone, Debug, Default)]
pub(super) struct BweState {
    /// The last estimate str0m reported (bit/s).
    pub(super) estimate: Option<u64>,
    /// Whether the estimate limits the consumers: str0m can probe and
    /// TWCC feedback has moved the estimate off its initial value (a client
    /// that sends no feedback leaves it there forever: it is not limited).
    pub(super) informed: bool,
    /// The (minimum, desired) rates last given to str0m.
    told: Option<(u64, u64)>,
    /// When str0m was last nudged to probe, and whether the desired rate
    /// it has is still the nudged one.
    nudged_at: Option<Instant>,
    nudged: bool,
}

fn moved(old: u64, new: u64) -> bool {
    old.abs_diff(new).saturating_mul(100) > old.saturating_mul(RETELL_PERCENT)
}

impl Engine {
    /// The egress bandwidth estimate of a receive transport (bit/s), once
    /// TWCC feedback informs it (see the module doc); `None` before, and
    /// for transports without estimation.
    pub fn egress_estimate(&self, transport_id: &str) -> Option<u64> {
        let t = self.transports.get(transport_id)?;
        t.bwe.informed.then_some(t.bwe.estimate).flatten()
    }

    /// `Event::EgressBitrateEstimate` (TWCC) of a transport.
    pub(super) fn on_estimate(
        &mut self,
        transport_id: &str,
        estimate: Bitrate,
        can_probe: bool,
        now: Instant,
    ) {
        let initial = self.config.initial_bandwidth_estimate_bps;
        let Some(t) = self.transports.get_mut(transport_id) else {
            return;
        };
        let bps = estimate.as_u64();
        t.bwe.informed = can_probe && (t.bwe.informed || Some(bps) != initial);
        t.bwe.estimate = Some(bps);
        tracing::debug!(
            transport_id,
            bps,
            can_probe,
            informed = t.bwe.informed,
            "egress estimate"
        );
        self.reallocate(transport_id, now);
    }

    /// Runs the allocation of every receive transport with consumers and an
    /// estimate (the layer tick: measured rates and active layers change).
    /// Transports without estimation are left out: nothing limits them.
    pub(super) fn reallocate_all(&mut self, now: Instant) {
        let ids: Vec<String> = self
            .transports
            .iter()
            .filter(|(_, t)| t.bwe.estimate.is_some() && !t.consumers.is_empty())
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            self.reallocate(&id, now);
        }
    }

    /// Runs the allocation of every transport a producer's consumers are on.
    pub(super) fn reallocate_consumers_of(&mut self, producer_id: &str, now: Instant) {
        let Some(producer) = self.producers.get(producer_id) else {
            return;
        };
        let transports: BTreeSet<String> = producer
            .consumers
            .iter()
            .filter_map(|c| self.consumers.get(c))
            .map(|c| c.transport_id.clone())
            .collect();
        for id in transports {
            self.reallocate(&id, now);
        }
    }

    /// Allocates a receive transport's estimate over its consumers and
    /// applies the result (see the module doc).
    pub(super) fn reallocate(&mut self, transport_id: &str, now: Instant) {
        if self.config.initial_bandwidth_estimate_bps.is_none() {
            return;
        }
        let Some(t) = self.transports.get(transport_id) else {
            return;
        };
        let mut ids = Vec::with_capacity(t.consumers.len());
        let mut demands = Vec::with_capacity(t.consumers.len());
        for id in &t.consumers {
            let Some(c) = self.consumers.get(id) else {
                continue;
            };
            let Some(p) = self.producers.get(&c.producer_id) else {
                continue;
            };
            let demand = match p.negotiation.kind {
                MediaKind::Audio if !c.active() => continue,
                MediaKind::Audio => Demand::Audio {
                    bps: p.layers.iter().map(|l| l.bitrate.bitrate()).sum(),
                },
                MediaKind::Video => {
                    // A consumer that cannot switch gets the first encoding
                    // whatever happens: only its temporal layers count.
                    let layers = if p.switchable() {
                        &p.layers[..]
                    } else {
                        &p.layers[..p.layers.len().min(1)]
                    };
                    let preferred = c.layers.preferred();
                    Demand::Video(VideoDemand {
                        active: c.active(),
                        screen: p.screen,
                        preferred: Layers::new(preferred.spatial_layer, preferred.temporal_layer),
                        rates: layers.iter().map(|l| l.rates()).collect(),
                        current: c.layers.bandwidth(),
                    })
                }
            };
            ids.push(id.clone());
            demands.push(demand);
        }
        let limit = t.bwe.informed.then_some(t.bwe.estimate).flatten();
        let allocation = allocate(limit.unwrap_or(u64::MAX), &demands);
        let mut keyframes = Vec::new();
        for (id, proposed) in ids.iter().zip(&allocation.ceilings) {
            let proposed = limit.and(*proposed);
            let Some(c) = self.consumers.get_mut(id) else {
                continue;
            };
            let Some(p) = self.producers.get(&c.producer_id) else {
                continue;
            };
            // A paused consumer keeps its ceiling until it is resumed.
            if p.negotiation.kind != MediaKind::Video || !c.active() {
                continue;
            }
            let applied = c.layers.bandwidth();
            let next = c.bandwidth_gate.pass(applied, proposed, now);
            if next == applied {
                continue;
            }
            tracing::debug!(
                consumer_id = %id,
                transport_id,
                ?next,
                estimate = ?limit,
                "bandwidth ceiling"
            );
            c.layers.set_bandwidth(next);
            let active: Vec<bool> = p.layers.iter().map(|l| l.active).collect();
            if let Some(layer) = c.layers.choose_target(&active) {
                keyframes.push((c.producer_id.clone(), layer));
            }
        }
        // Short: the estimate holds someone below their preferred layers.
        let short = limit.is_some() && allocation.allocated_bps < allocation.desired_bps;
        self.tell_bitrates(
            transport_id,
            (allocation.next_bps, allocation.desired_bps),
            short,
            now,
        );
        for (producer_id, layer) in keyframes {
            self.want_keyframe(&producer_id, layer, now);
        }
    }

    /// Gives str0m the rate to keep the link filled to with padding (what
    /// the next step up needs) and the rate to probe towards (every
    /// consumer at its preferred layers), when they moved; while the
    /// estimate is `short`, nudges it to probe (see [`NUDGE_INTERVAL`]).
    fn tell_bitrates(
        &mut self,
        transport_id: &str,
        (minimum, desired): (u64, u64),
        short: bool,
        now: Instant,
    ) {
        let Some(t) = self.transports.get_mut(transport_id) else {
            return;
        };
        let minimum = minimum.min(desired);
        let nudge = short
            && t.bwe
                .nudged_at
                .is_none_or(|at| now.saturating_duration_since(at) >= NUDGE_INTERVAL);
        let (minimum, desired) = if nudge {
            t.bwe.nudged_at = Some(now);
            t.bwe.nudged = true;
            (minimum, desired.saturating_add(desired / 8))
        } else if std::mem::take(&mut t.bwe.nudged) {
            t.bwe.told = None;
            (minimum, desired)
        } else {
            (minimum, desired)
        };
        if t.bwe
            .told
            .is_some_and(|(m, d)| !moved(m, minimum) && !moved(d, desired))
        {
            return;
        }
        let Some(rtc) = t.rtc.as_mut() else {
            return;
        };
        t.bwe.told = Some((minimum, desired));
        rtc.bwe()
            .set_bitrate(Bitrate::bps(minimum), Bitrate::bps(desired));
        self.dirty.insert(transport_id.to_owned());
    }
}
