//! Bandwidth allocation of one receive transport: given the transport's
//! estimated egress bitrate (str0m's TWCC estimator) and what its consumers
//! could get, the highest (spatial, temporal) layers each video consumer may
//! be sent. Pure: the engine gathers the [`Demand`]s, applies the result
//! through each consumer's [`UpGate`] and the layer selector's bandwidth
//! ceiling.
//!
//! The budget is spent in this order:
//! 1. audio (never limited; its measured rate, or [`AUDIO_GUESS_BPS`]);
//! 2. every active video consumer's lowest step, whether it fits or not (a
//!    consumer is never starved to nothing by the estimate: the lowest layer
//!    is the floor, as the preferred layers are the ceiling);
//! 3. upgrades, one step at a time: screen shares first (each as far as the
//!    budget goes), then cameras round-robin, one step each per round.
//!
//! A consumer's *ladder* is the sequence of steps it can climb, within its
//! preferred layers and over the producer's active spatial layers. A camera
//! keeps its frame rate and gives up resolution: its lowest spatial layer
//! climbs through the temporal layers, each higher spatial layer comes with
//! every temporal layer it may have. A screen share keeps its resolution and
//! gives up frame rate: it climbs through the spatial layers at the base
//! temporal layer, then through the temporal layers of the top one. Going
//! down is the same ladder backwards.
//!
//! Hysteresis, so that the choice does not flap: a step at or below what
//! the consumer is sent now is kept while the estimate covers the
//! transport's total with it (it goes down as soon as it no longer does); a
//! step above it needs the estimate to cover the total with it plus
//! [`UP_HEADROOM_PERCENT`] (on the total: the estimate's noise grows with
//! what the transport carries), and the [`UpGate`] lets a higher ceiling
//! through only once every allocation for [`UP_HOLD`] has asked for more.

use std::time::{Duration, Instant};

/// A step up needs the estimate to cover its rate plus this much.
pub(super) const UP_HEADROOM_PERCENT: u64 = 15;
/// A higher ceiling is applied only once it has been asked for this long.
pub(super) const UP_HOLD: Duration = Duration::from_millis(500);
/// The rate counted for an audio consumer whose producer has no measured
/// bitrate yet (opus voice is 30 to 50 kbit/s).
pub(super) const AUDIO_GUESS_BPS: u64 = 40_000;
/// The temporal layers a rate table has (VP8 L1T3).
pub(super) const TEMPORAL_LAYERS: usize = 3;

/// A spatial and temporal layer pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Layers {
    pub(super) spatial: u8,
    pub(super) temporal: u8,
}

impl Layers {
    pub(super) const fn new(spatial: u8, temporal: u8) -> Layers {
        Layers { spatial, temporal }
    }

    /// Neither layer above `other`'s.
    pub(super) fn within(self, other: Layers) -> bool {
        self.spatial <= other.spatial && self.temporal <= other.temporal
    }
}

/// What one consumer of the transport could get.
#[derive(Clone, Debug)]
pub(super) enum Demand {
    /// An active audio consumer: its producer's measured rate (0 = unknown).
    Audio { bps: u64 },
    /// A video consumer.
    Video(VideoDemand),
}

#[derive(Clone, Debug)]
pub(super) struct VideoDemand {
    /// Paused (by the client or its producer): costs nothing, gets nothing.
    pub(super) active: bool,
    /// A screen share (resolution before frame rate, served first).
    pub(super) screen: bool,
    /// The consumer's preferred layers (its own ceiling).
    pub(super) preferred: Layers,
    /// Per spatial layer of the producer: `None` when it is not arriving,
    /// else its measured bitrate up to each temporal layer (cumulative; all
    /// equal for a producer without temporal layers).
    pub(super) rates: Vec<Option<[u64; TEMPORAL_LAYERS]>>,
    /// The ceiling it has now (`None`: not limited, counts as the top).
    pub(super) current: Option<Layers>,
}

/// The result for one transport.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Allocation {
    /// Per demand, in order: the bandwidth ceiling of a video consumer;
    /// `None` for audio, paused consumers and producers with nothing
    /// arriving.
    pub(super) ceilings: Vec<Option<Layers>>,
    /// What the allocation sends (bit/s).
    pub(super) allocated_bps: u64,
    /// What would be sent with every consumer at the top of its ladder.
    pub(super) desired_bps: u64,
    /// What would be sent after the cheapest step up still missing (equal
    /// to `allocated_bps` when nobody can climb).
    pub(super) next_bps: u64,
}

type Step = (Layers, u64);

/// The steps a video consumer can climb, lowest first (see the module doc).
fn ladder(d: &VideoDemand) -> Vec<Step> {
    let active: Vec<usize> = (0..d.rates.len())
        .filter(|&s| d.rates[s].is_some())
        .collect();
    let mut allowed: Vec<usize> = active
        .iter()
        .copied()
        .filter(|&s| s <= usize::from(d.preferred.spatial))
        .collect();
    if allowed.is_empty() {
        // As the layer selector does: nothing under the ceiling arrives, so
        // the lowest layer that does is sent.
        allowed.extend(active.first());
    }
    let top_t = usize::from(d.preferred.temporal).min(TEMPORAL_LAYERS - 1);
    let step = |s: usize, t: usize| -> Option<Step> {
        let rate = d.rates.get(s).copied().flatten()?[t];
        Some((Layers::new(s as u8, t as u8), rate))
    };
    let mut out = Vec::new();
    let Some((&lowest, &top)) = allowed.first().zip(allowed.last()) else {
        return out;
    };
    if d.screen {
        out.extend(allowed.iter().filter_map(|&s| step(s, 0)));
        out.extend((1..=top_t).filter_map(|t| step(top, t)));
    } else {
        out.extend((0..=top_t).filter_map(|t| step(lowest, t)));
        out.extend(allowed[1..].iter().filter_map(|&s| step(s, top_t)));
    }
    out
}

/// Allocates `estimate_bps` over `demands` (see the module doc).
pub(super) fn allocate(estimate_bps: u64, demands: &[Demand]) -> Allocation {
    let mut allocated: u64 = 0;
    let mut desired: u64 = 0;
    let ladders: Vec<Vec<Step>> = demands
        .iter()
        .map(|d| match d {
            Demand::Video(v) if v.active => ladder(v),
            _ => Vec::new(),
        })
        .collect();
    let mut positions: Vec<Option<usize>> = vec![None; demands.len()];
    for (i, d) in demands.iter().enumerate() {
        if let Demand::Audio { bps } = d {
            let bps = if *bps == 0 { AUDIO_GUESS_BPS } else { *bps };
            allocated = allocated.saturating_add(bps);
            desired = desired.saturating_add(bps);
        }
        if let Some((_, rate)) = ladders[i].first() {
            positions[i] = Some(0);
            allocated = allocated.saturating_add(*rate);
        }
        if let Some((_, rate)) = ladders[i].last() {
            desired = desired.saturating_add(*rate);
        }
    }
    // The position on its ladder that a consumer is sent now.
    let sent_now: Vec<usize> = demands
        .iter()
        .zip(&ladders)
        .map(|(d, ladder)| match d {
            Demand::Video(VideoDemand {
                current: Some(cur), ..
            }) => ladder
                .iter()
                .rposition(|(l, _)| l.within(*cur))
                .unwrap_or(0),
            _ => ladder.len(),
        })
        .collect();
    // What the next step of consumer `i` costs, and whether it is sent now
    // (then the estimate need only cover it, else it needs headroom).
    let next_step = |i: usize, pos: usize| -> Option<(u64, bool)> {
        let ladder = &ladders[i];
        let (_, from) = ladder.get(pos)?;
        let (_, to) = ladder.get(pos + 1)?;
        Some((to.saturating_sub(*from), pos < sent_now[i]))
    };
    // The headroom is on the transport's total: the estimate's noise grows
    // with what the transport carries, not with the one layer.
    let fits = |total: u64, sent: bool| -> bool {
        let need = if sent {
            u128::from(total)
        } else {
            u128::from(total) * u128::from(100 + UP_HEADROOM_PERCENT) / 100
        };
        need <= u128::from(estimate_bps)
    };
    let mut climb = |i: usize, positions: &mut Vec<Option<usize>>| -> bool {
        let Some(pos) = positions[i] else {
            return false;
        };
        match next_step(i, pos) {
            Some((cost, sent)) if fits(allocated.saturating_add(cost), sent) => {
                allocated = allocated.saturating_add(cost);
                positions[i] = Some(pos + 1);
                true
            }
            _ => false,
        }
    };
    let is_screen = |d: &Demand| matches!(d, Demand::Video(v) if v.screen);
    for (i, d) in demands.iter().enumerate() {
        if is_screen(d) {
            while climb(i, &mut positions) {}
        }
    }
    let cameras: Vec<usize> = (0..demands.len())
        .filter(|&i| !is_screen(&demands[i]))
        .collect();
    loop {
        let mut any = false;
        for &i in &cameras {
            any |= climb(i, &mut positions);
        }
        if !any {
            break;
        }
    }
    let cheapest_next = positions
        .iter()
        .enumerate()
        .filter_map(|(i, pos)| next_step(i, (*pos)?).map(|(cost, _)| cost))
        .min()
        .unwrap_or(0);
    Allocation {
        ceilings: positions
            .iter()
            .enumerate()
            .map(|(i, pos)| Some(ladders[i].get((*pos)?)?.0))
            .collect(),
        allocated_bps: allocated,
        desired_bps: desired,
        next_bps: allocated.saturating_add(cheapest_next),
    }
}

/// Lets a consumer's bandwidth ceiling go down at once and up only once it
/// has been asked for [`UP_HOLD`] without a break.
#[derive(Clone, Debug, Default)]
pub(super) struct UpGate {
    rising_since: Option<Instant>,
}

impl UpGate {
    /// The ceiling to apply now, from the one applied and the one proposed
    /// (`None` = not limited, above everything).
    pub(super) fn pass(
        &mut self,
        applied: Option<Layers>,
        proposed: Option<Layers>,
        now: Instant,
    ) -> Option<Layers> {
        let down_or_same = match (proposed, applied) {
            (_, None) => true,
            (None, Some(_)) => false,
            (Some(p), Some(a)) => p.within(a),
        };
        if down_or_same {
            self.rising_since = None;
            return proposed;
        }
        let since = *self.rising_since.get_or_insert(now);
        if now.saturating_duration_since(since) >= UP_HOLD {
            self.rising_since = None;
            proposed
        } else {
            applied
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three spatial layers of about 150 k, 500 k and 1.5 Mbit/s, their
    /// temporal layers at 40 %, 60 % and 100 % of each.
    fn rates() -> Vec<Option<[u64; TEMPORAL_LAYERS]>> {
        [150_000u64, 500_000, 1_500_000]
            .into_iter()
            .map(|r| Some([r * 4 / 10, r * 6 / 10, r]))
            .collect()
    }

    fn video(screen: bool, current: Option<Layers>) -> Demand {
        Demand::Video(VideoDemand {
            active: true,
            screen,
            preferred: Layers::new(2, 2),
            rates: rates(),
            current,
        })
    }

    fn ceiling(estimate: u64, demands: &[Demand]) -> Vec<Option<Layers>> {
        allocate(estimate, demands).ceilings
    }

    #[test]
    fn camera_gets_the_best_layer_that_fits() {
        let top = Some(Layers::new(2, 2));
        assert_eq!(ceiling(5_000_000, &[video(false, None)]), vec![top]);
        assert_eq!(
            ceiling(700_000, &[video(false, None)]),
            vec![Some(Layers::new(1, 2))]
        );
        assert_eq!(
            ceiling(100_000, &[video(false, None)]),
            vec![Some(Layers::new(0, 1))],
            "a camera keeps frame rate on its lowest layer as long as it can"
        );
        assert_eq!(
            ceiling(10_000, &[video(false, None)]),
            vec![Some(Layers::new(0, 0))],
            "the lowest step is the floor"
        );
    }

    #[test]
    fn screen_share_keeps_resolution_and_is_served_first() {
        // 1.2 Mbit/s: the screen gets its top resolution at a lower frame
        // rate (1.5 M * 60 % = 900 k), the camera what is left.
        let got = ceiling(1_200_000, &[video(false, None), video(true, None)]);
        assert_eq!(got[1], Some(Layers::new(2, 1)));
        assert_eq!(got[0], Some(Layers::new(0, 2)), "the camera gets the rest");
        // Too little for the top resolution even at its base frame rate.
        assert_eq!(
            ceiling(500_000, &[video(true, None)]),
            vec![Some(Layers::new(1, 0))]
        );
    }

    #[test]
    fn cameras_share_round_robin() {
        let got = ceiling(1_100_000, &[video(false, None), video(false, None)]);
        assert_eq!(got, vec![Some(Layers::new(1, 2)); 2]);
    }

    #[test]
    fn audio_and_preferences_count() {
        // Audio comes first: 700 k minus 300 k of audio leaves too little
        // for layer 1.
        let demands = [Demand::Audio { bps: 300_000 }, video(false, None)];
        assert_eq!(
            ceiling(700_000, &demands),
            vec![None, Some(Layers::new(0, 2))]
        );
        // The preferred layers bound the ladder.
        let mut low = VideoDemand {
            active: true,
            screen: false,
            preferred: Layers::new(0, 1),
            rates: rates(),
            current: None,
        };
        assert_eq!(
            ceiling(5_000_000, &[Demand::Video(low.clone())]),
            vec![Some(Layers::new(0, 1))]
        );
        let alloc = allocate(5_000_000, &[Demand::Video(low.clone())]);
        assert_eq!(alloc.desired_bps, 90_000);
        // A paused consumer costs nothing and gets no ceiling.
        low.active = false;
        let alloc = allocate(100_000, &[Demand::Video(low), video(false, None)]);
        assert_eq!(alloc.ceilings, vec![None, Some(Layers::new(0, 1))]);
        // Only layer 2 arrives: it is sent whatever the estimate.
        let only_top = Demand::Video(VideoDemand {
            active: true,
            screen: false,
            preferred: Layers::new(0, 2),
            rates: vec![None, None, Some([1, 2, 3])],
            current: None,
        });
        assert_eq!(ceiling(0, &[only_top]), vec![Some(Layers::new(2, 0))]);
    }

    #[test]
    fn going_up_needs_headroom_going_down_does_not() {
        let at_1 = Some(Layers::new(1, 2));
        // 520 k covers layer 1 (500 k): kept while sent...
        assert_eq!(ceiling(520_000, &[video(false, at_1)]), vec![at_1]);
        // ...but not reached from below without 15 % headroom.
        let at_0 = Some(Layers::new(0, 2));
        assert_eq!(ceiling(520_000, &[video(false, at_0)]), vec![at_0]);
        assert_eq!(ceiling(580_000, &[video(false, at_0)]), vec![at_1]);
        // Below what is sent: down at once.
        assert_eq!(ceiling(480_000, &[video(false, at_1)]), vec![at_0]);
        // The headroom is on the total: with a screen share taking 900 k,
        // the camera's layer 1 (350 k more) needs 1.4 M * 1.15.
        let screen_at = Some(Layers::new(2, 1));
        let both = |camera| [video(false, camera), video(true, screen_at)];
        assert_eq!(ceiling(1_520_000, &both(at_0)), vec![at_0, screen_at]);
        assert_eq!(ceiling(1_620_000, &both(at_0)), vec![at_1, screen_at]);
        assert_eq!(ceiling(1_450_000, &both(at_1)), vec![at_1, screen_at]);
    }

    #[test]
    fn next_and_desired_rates() {
        let alloc = allocate(700_000, &[video(false, Some(Layers::new(1, 2)))]);
        assert_eq!(alloc.allocated_bps, 500_000);
        assert_eq!(alloc.next_bps, 1_500_000);
        assert_eq!(alloc.desired_bps, 1_500_000);
    }

    #[test]
    fn up_gate_holds_rises_only() {
        let t0 = Instant::now();
        let low = Some(Layers::new(0, 2));
        let high = Some(Layers::new(2, 2));
        let mut gate = UpGate::default();
        assert_eq!(gate.pass(high, low, t0), low, "down at once");
        assert_eq!(gate.pass(low, high, t0), low);
        let later = t0 + UP_HOLD / 2;
        assert_eq!(gate.pass(low, high, later), low);
        // A break in the rise starts the hold again.
        assert_eq!(gate.pass(low, low, later), low);
        assert_eq!(gate.pass(low, high, t0 + UP_HOLD), low);
        assert_eq!(gate.pass(low, high, t0 + UP_HOLD * 2), high);
        assert_eq!(
            gate.pass(low, None, t0 + UP_HOLD * 2),
            low,
            "unlimited is up too"
        );
    }
}
