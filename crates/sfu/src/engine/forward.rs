//! Pure pieces of the forwarding path: per-consumer sequence-number
//! rewriting, the keyframe-request rate limit, and the engine's small
//! deterministic generator.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// At most one keyframe request per producer stream in this interval.
pub const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(500);

/// Rewrites a producer stream's (extended) sequence numbers into one
/// consumer's own continuous sequence.
///
/// Forwarding happens in *runs* (between a resume and the next pause). The
/// first packet of a run continues right after the highest number sent so
/// far, so a pause leaves no gap the receiver would NACK; within a run the
/// distance between input numbers is kept, so real upstream losses stay
/// visible (and are repaired upstream, then forwarded late into the same
/// slot). Packets older than the start of the current run are dropped: their
/// slots belong to the previous run.
///
/// Input numbers dropped on purpose ([`SeqRewriter::skip`], e.g. a temporal
/// layer the consumer does not get) take no slot: the numbers after them
/// close up, so the receiver sees no loss to NACK. The most recent
/// [`MAX_SKIPPED`] of them are remembered; input older than the ones
/// forgotten is dropped (its slot can no longer be computed).
#[derive(Clone, Debug)]
pub struct SeqRewriter {
    next_start: u64,
    highest: Option<u64>,
    run: Option<Run>,
    skipped: BTreeSet<u64>,
    forgotten: u64,
    floor: Option<u64>,
}

/// Skipped input numbers a [`SeqRewriter`] remembers (a few seconds of
/// dropped temporal layers).
pub const MAX_SKIPPED: usize = 256;

#[derive(Clone, Copy, Debug)]
struct Run {
    first_in: u64,
    first_out: u64,
}

impl SeqRewriter {
    /// A rewriter whose first output is `start`.
    pub fn new(start: u64) -> Self {
        SeqRewriter {
            next_start: start,
            highest: None,
            run: None,
            skipped: BTreeSet::new(),
            forgotten: 0,
            floor: None,
        }
    }

    /// Ends the current run (pause, layer change); the next packet starts a
    /// new one.
    pub fn stop(&mut self) {
        self.run = None;
        self.skipped.clear();
        self.forgotten = 0;
        self.floor = None;
    }

    /// The output number of input `seq`, or `None` to drop it.
    pub fn rewrite(&mut self, seq: u64) -> Option<u64> {
        let run = match self.run {
            Some(run) => run,
            None => {
                let first_out = self.highest.map_or(self.next_start, |h| h + 1);
                let run = Run {
                    first_in: seq,
                    first_out,
                };
                self.run = Some(run);
                run
            }
        };
        if seq < run.first_in || self.floor.is_some_and(|f| seq <= f) || self.skipped.contains(&seq)
        {
            return None;
        }
        let closed_up = self.forgotten + self.skipped.range(..seq).count() as u64;
        let out = run
            .first_out
            .checked_add(seq - run.first_in)?
            .checked_sub(closed_up)?;
        self.highest = Some(self.highest.map_or(out, |h| h.max(out)));
        Some(out)
    }

    /// Input `seq` is dropped on purpose: it takes no output slot. Before
    /// the first packet of a run there is nothing to close up.
    pub fn skip(&mut self, seq: u64) {
        let Some(run) = self.run else {
            return;
        };
        if seq < run.first_in || self.floor.is_some_and(|f| seq <= f) {
            return;
        }
        self.skipped.insert(seq);
        while self.skipped.len() > MAX_SKIPPED {
            if let Some(oldest) = self.skipped.pop_first() {
                self.forgotten += 1;
                self.floor = Some(oldest);
            }
        }
    }
}

/// Rate limit of keyframe requests towards one producer stream. A request
/// that cannot go out yet is remembered and goes out as soon as allowed.
#[derive(Clone, Debug, Default)]
pub struct KeyframeLimiter {
    last: Option<Instant>,
    pending: bool,
}

impl KeyframeLimiter {
    /// Someone wants a keyframe.
    pub fn want(&mut self) {
        self.pending = true;
    }

    /// Whether a wanted request may go out now; if so it counts as sent.
    pub fn poll(&mut self, now: Instant) -> bool {
        let allowed = self
            .last
            .is_none_or(|last| now.saturating_duration_since(last) >= KEYFRAME_REQUEST_INTERVAL);
        if self.pending && allowed {
            self.pending = false;
            self.last = Some(now);
            true
        } else {
            false
        }
    }

    /// Whether a request is waiting.
    pub fn is_pending(&self) -> bool {
        self.pending
    }
}

/// Bitrate of one stream, over whole one-second periods: the figure of
/// the last complete period (what the control API shows, and what a
/// bandwidth-driven layer choice would compare).
#[derive(Clone, Debug, Default)]
pub struct BitrateMeter {
    period_start: Option<Instant>,
    bytes: u64,
    last_bps: u64,
}

/// The length of a [`BitrateMeter`] period.
pub const BITRATE_PERIOD: Duration = Duration::from_secs(1);

impl BitrateMeter {
    /// A packet of `bytes` payload bytes arrived at `now`.
    pub fn record(&mut self, bytes: usize, now: Instant) {
        let start = *self.period_start.get_or_insert(now);
        let elapsed = now.saturating_duration_since(start);
        if elapsed >= BITRATE_PERIOD {
            let micros = elapsed.as_micros().max(1) as u64;
            self.last_bps = self.bytes.saturating_mul(8_000_000) / micros;
            self.period_start = Some(now);
            self.bytes = 0;
        }
        self.bytes = self.bytes.saturating_add(bytes as u64);
    }

    /// Bits per second over the last complete period.
    pub fn bitrate(&self) -> u64 {
        self.last_bps
    }
}

/// xorshift64*: deterministic for a seed, good enough for SSRCs and
/// CNAMEs (not for secrets; ICE credentials come from str0m).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// `len` ASCII alphanumerics.
    pub fn token(&mut self, len: usize) -> String {
        const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..len)
            .map(|_| char::from(CHARS[(self.next_u64() % CHARS.len() as u64) as usize]))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_continuous_and_keep_gaps() {
        let mut r = SeqRewriter::new(1000);
        assert_eq!(r.rewrite(50), Some(1000));
        assert_eq!(r.rewrite(51), Some(1001));
        assert_eq!(r.rewrite(53), Some(1003)); // upstream loss stays a gap
        assert_eq!(r.rewrite(52), Some(1002)); // repaired late, same slot
        r.stop();
        assert_eq!(r.rewrite(400), Some(1004)); // no gap across the pause
        assert_eq!(r.rewrite(399), None); // belongs to the previous run
        assert_eq!(r.rewrite(401), Some(1005));
    }

    #[test]
    fn skipped_numbers_take_no_slot() {
        let mut r = SeqRewriter::new(10);
        r.skip(4); // before the run: nothing to close up
        assert_eq!(r.rewrite(5), Some(10));
        r.skip(6);
        assert_eq!(r.rewrite(7), Some(11));
        assert_eq!(r.rewrite(6), None, "skipped stays skipped");
        r.skip(9);
        assert_eq!(r.rewrite(10), Some(13), "8 is a real loss: a gap at 12");
        assert_eq!(r.rewrite(8), Some(12));
        for s in 11..11 + MAX_SKIPPED as u64 + 5 {
            r.skip(s);
        }
        let next = 11 + MAX_SKIPPED as u64 + 5;
        assert_eq!(r.rewrite(next), Some(14), "many skips still close up");
        assert_eq!(r.rewrite(11), None, "older than what is remembered");
        r.stop();
        assert_eq!(r.rewrite(3), Some(15));
    }

    #[test]
    fn keyframe_requests_are_limited_and_not_lost() {
        let t0 = Instant::now();
        let mut k = KeyframeLimiter::default();
        assert!(!k.poll(t0));
        k.want();
        assert!(k.poll(t0));
        k.want();
        assert!(!k.poll(t0 + Duration::from_millis(100)));
        assert!(k.is_pending());
        assert!(k.poll(t0 + KEYFRAME_REQUEST_INTERVAL));
        assert!(!k.is_pending());
    }

    #[test]
    fn bitrate_is_measured_over_whole_periods() {
        let t0 = Instant::now();
        let mut m = BitrateMeter::default();
        for i in 0..=100u64 {
            // 1250 bytes every 10 ms: 1 Mbit/s.
            m.record(1250, t0 + Duration::from_millis(10 * i));
        }
        assert_eq!(m.bitrate(), 1_000_000);
    }

    #[test]
    fn rng_is_deterministic() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        assert_eq!(a.next_u64(), b.next_u64());
        assert_eq!(a.token(8).len(), 8);
    }
}
