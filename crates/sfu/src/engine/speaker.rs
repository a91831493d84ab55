//! Active speaker detection for one router, from the `ssrc-audio-level`
//! header extension (RFC 6464) of its audio producers.
//!
//! Each audio packet's level (dBov: 0 is the loudest, -127 silence) is kept
//! for [`SPEAKER_WINDOW`]. A producer whose mean level over the window is at
//! least [`SPEAKING_THRESHOLD_DBOV`] is speaking; the loudest speaking
//! producer leads (on a tie, the first by id, so the result is
//! deterministic). A new leader becomes the active speaker only after
//! leading for [`SPEAKER_DEBOUNCE`], so a cough or a word of agreement does
//! not move the room's attention. Silence changes nothing and says nothing:
//! the last speaker stays the active one until someone else leads.
//!
//! The mean counts quiet packets, and packets that did not come (DTX, loss),
//! at [`QUIET_FLOOR_DBOV`], not at -127: speech is syllables with pauses
//! between them, and at -127 a third of pauses would drag a clearly
//! speaking voice (-15 dBov in its syllables) under the threshold. With
//! the floor, speech with pauses stays well above it, while a short click
//! (one loud packet in twenty) stays below. Chromium's fake microphone, a
//! tone every 500 ms fading out over ~300 ms, averages about -55 dBov: it
//! is heard, and any real voice is louder.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// How long levels are kept (and averaged over).
pub const SPEAKER_WINDOW: Duration = Duration::from_millis(400);
/// How long a new leader must lead before it becomes the active speaker.
pub const SPEAKER_DEBOUNCE: Duration = Duration::from_millis(300);
/// Mean level (dBov) over the window at which a producer counts as
/// speaking; below it is background noise.
pub const SPEAKING_THRESHOLD_DBOV: i32 = -60;
/// Level samples kept per producer (audio sends 50 packets a second; a
/// producer sending faster only has its latest kept).
const MAX_SAMPLES: usize = 64;
/// Audio packets per window the mean assumes (20 ms packets), so that a
/// producer that sends few packets does not look loud.
const EXPECTED_SAMPLES: usize = (SPEAKER_WINDOW.as_millis() / 20) as usize;
/// The level quiet and missing packets count as in the mean (see the
/// module doc): background noise after a browser's noise suppression.
pub const QUIET_FLOOR_DBOV: i32 = -70;

/// One router's detector. See the module doc.
#[derive(Debug, Default)]
pub(super) struct SpeakerDetector {
    levels: BTreeMap<String, VecDeque<(Instant, i8)>>,
    active: Option<String>,
    /// The producer leading now (not yet active) and since when.
    leader: Option<(String, Instant)>,
}

impl SpeakerDetector {
    /// One audio packet's level.
    pub(super) fn record(&mut self, producer_id: &str, level: i8, now: Instant) {
        let samples = match self.levels.get_mut(producer_id) {
            Some(samples) => samples,
            None => self.levels.entry(producer_id.to_owned()).or_default(),
        };
        if samples.len() >= MAX_SAMPLES {
            samples.pop_front();
        }
        samples.push_back((now, level.clamp(-127, 0)));
    }

    /// A producer went away.
    pub(super) fn remove(&mut self, producer_id: &str) {
        self.levels.remove(producer_id);
        if self.active.as_deref() == Some(producer_id) {
            self.active = None;
        }
        if self.leader.as_ref().is_some_and(|(p, _)| p == producer_id) {
            self.leader = None;
        }
    }

    /// Re-evaluates at `now`; the new active speaker and its mean level
    /// (dBov) when it changed.
    pub(super) fn tick(&mut self, now: Instant) -> Option<(String, i8)> {
        self.levels.retain(|_, samples| {
            while samples
                .front()
                .is_some_and(|(at, _)| now.saturating_duration_since(*at) > SPEAKER_WINDOW)
            {
                samples.pop_front();
            }
            !samples.is_empty()
        });
        let mut loudest: Option<(&str, i32)> = None;
        for (producer_id, samples) in &self.levels {
            let sum: i32 = samples
                .iter()
                .map(|(_, l)| i32::from(*l).max(QUIET_FLOOR_DBOV))
                .sum();
            let missing = EXPECTED_SAMPLES.saturating_sub(samples.len()) as i32;
            let count = samples.len().max(EXPECTED_SAMPLES) as i32;
            let mean = (sum + missing * QUIET_FLOOR_DBOV) / count;
            if mean >= SPEAKING_THRESHOLD_DBOV && loudest.is_none_or(|(_, best)| mean > best) {
                loudest = Some((producer_id.as_str(), mean));
            }
        }
        let Some((producer_id, mean)) = loudest else {
            self.leader = None;
            return None;
        };
        if self.active.as_deref() == Some(producer_id) {
            self.leader = None;
            return None;
        }
        let since = match &self.leader {
            Some((leader, since)) if leader == producer_id => *since,
            _ => {
                self.leader = Some((producer_id.to_owned(), now));
                now
            }
        };
        if now.saturating_duration_since(since) < SPEAKER_DEBOUNCE {
            return None;
        }
        let producer_id = producer_id.to_owned();
        self.active = Some(producer_id.clone());
        self.leader = None;
        Some((producer_id, mean as i8))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds 20 ms packets of both producers for `ms`, ticking every 100 ms.
    fn talk(d: &mut SpeakerDetector, t: &mut Instant, ms: u64, a: i8, b: i8) -> Vec<(String, i8)> {
        let mut out = Vec::new();
        for step in 0..ms / 20 {
            *t += Duration::from_millis(20);
            d.record("a", a, *t);
            d.record("b", b, *t);
            if step % 5 == 4 {
                out.extend(d.tick(*t));
            }
        }
        out
    }

    #[test]
    fn the_louder_leads_after_the_debounce_and_silence_says_nothing() {
        let mut d = SpeakerDetector::default();
        let mut t = Instant::now();
        assert!(talk(&mut d, &mut t, 1000, -127, -127).is_empty(), "silence");
        let got = talk(&mut d, &mut t, 1000, -20, -45);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "a");
        assert!((-22..=-18).contains(&got[0].1), "{got:?}");
        // A short interjection by b does not move it.
        assert!(talk(&mut d, &mut t, 200, -70, -10).is_empty());
        assert!(talk(&mut d, &mut t, 600, -20, -45).is_empty());
        // b takes over for real.
        let got = talk(&mut d, &mut t, 1000, -80, -15);
        assert_eq!(got.iter().map(|g| g.0.as_str()).collect::<Vec<_>>(), ["b"]);
        // Everyone silent: nothing, and b stays active.
        assert!(talk(&mut d, &mut t, 1000, -127, -127).is_empty());
        d.remove("b");
        assert_eq!(talk(&mut d, &mut t, 1000, -30, -127).len(), 1);
    }

    /// 20 ms packets of one producer for `ms`, its level given per packet
    /// index, ticking every 100 ms.
    fn one(
        d: &mut SpeakerDetector,
        t: &mut Instant,
        ms: u64,
        level: impl Fn(u64) -> i8,
    ) -> Vec<(String, i8)> {
        let mut out = Vec::new();
        for step in 0..ms / 20 {
            *t += Duration::from_millis(20);
            d.record("a", level(step), *t);
            if step % 5 == 4 {
                out.extend(d.tick(*t));
            }
        }
        out
    }

    #[test]
    fn speech_with_pauses_speaks_and_a_click_does_not() {
        let mut d = SpeakerDetector::default();
        let mut t = Instant::now();
        // One 20 ms click at -6 dBov every 500 ms, silence between.
        let clicks = one(
            &mut d,
            &mut t,
            3000,
            |i| if i % 25 == 0 { -6 } else { -127 },
        );
        assert!(clicks.is_empty(), "{clicks:?}");
        // Syllables of 180 ms at -18 dBov, pauses of 120 ms.
        let speech = one(
            &mut d,
            &mut t,
            3000,
            |i| if i % 15 < 9 { -18 } else { -127 },
        );
        assert_eq!(speech.len(), 1, "{speech:?}");
        assert!((-45..=-30).contains(&speech[0].1), "{speech:?}");
    }
}
