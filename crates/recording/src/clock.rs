//! The file's clock: RTP timestamps of one track to milliseconds from its
//! first frame.

use std::time::Instant;

/// RTP time going back more than this is a jump, not reordering...
const MAX_BACKWARD_MS: i64 = 1_000;
/// ...and so is RTP time running this far ahead of the arrival times.
const MAX_AHEAD_MS: i64 = 5_000;

/// Maps a track's RTP timestamps to milliseconds from its first frame,
/// unwrapping the 32-bit timestamp to the value nearest the previous one.
///
/// RTP time that jumps (the sender restarted its encoder, or the SFU
/// switched streams) is not followed: a frame whose RTP time moved back more
/// than a second, or ahead more than 5 s beyond what its arrival says,
/// continues the clock by arrival time instead, so the file keeps a sane
/// timeline and a duration limit stays meaningful.
pub struct MediaClock {
    rate: i64,
    /// RTP time `base_ts` (unwrapped) is `base_ms` in the file.
    base_ts: i64,
    base_ms: u64,
    last_ts: i64,
    last_ms: u64,
    last_arrival: Option<Instant>,
}

impl MediaClock {
    /// A clock whose zero is the frame with RTP time `first_ts`.
    pub fn new(clock_rate: u32, first_ts: u32, arrived: Option<Instant>) -> Self {
        MediaClock {
            rate: i64::from(clock_rate.max(1)),
            base_ts: i64::from(first_ts),
            base_ms: 0,
            last_ts: i64::from(first_ts),
            last_ms: 0,
            last_arrival: arrived,
        }
    }

    /// Milliseconds of a frame with RTP time `ts` that arrived at `arrived`
    /// (`None` when unknown: the frame is placed by RTP time alone).
    pub fn ms(&mut self, ts: u32, arrived: Option<Instant>) -> u64 {
        let ts = self.last_ts + i64::from(ts.wrapping_sub(self.last_ts as u32) as i32);
        let mut ms = self.base_ms as i64 + (ts - self.base_ts) * 1000 / self.rate;
        if let (Some(now), Some(last)) = (arrived, self.last_arrival) {
            let by_arrival = now.saturating_duration_since(last).as_millis() as i64;
            let by_rtp = ms - self.last_ms as i64;
            if by_rtp < -MAX_BACKWARD_MS || by_rtp > by_arrival + MAX_AHEAD_MS {
                self.base_ts = ts;
                self.base_ms = self.last_ms + by_arrival as u64;
                ms = self.base_ms as i64;
            }
        }
        let ms = ms.max(0) as u64;
        self.last_ts = ts;
        self.last_ms = ms;
        self.last_arrival = arrived.or(self.last_arrival);
        ms
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn follows_rtp_time_across_the_32_bit_wrap() {
        let t0 = Instant::now();
        let start = u32::MAX - 45_000;
        let mut clock = MediaClock::new(90_000, start, Some(t0));
        assert_eq!(clock.ms(start, Some(t0)), 0);
        let at = |s: u64| Some(t0 + Duration::from_millis(s));
        assert_eq!(clock.ms(start.wrapping_add(90_000), at(1000)), 1000);
        assert_eq!(clock.ms(start.wrapping_add(180_000), at(2000)), 2000);
        // A long pause that the arrival times confirm is followed.
        assert_eq!(
            clock.ms(start.wrapping_add(90_000 * 62), at(62_000)),
            62_000
        );
    }

    #[test]
    fn jumps_continue_by_arrival_time() {
        let t0 = Instant::now();
        let at = |ms: u64| Some(t0 + Duration::from_millis(ms));
        let mut clock = MediaClock::new(48_000, 1000, at(0));
        assert_eq!(clock.ms(1000 + 48_000, at(1000)), 1000);
        // Forward by hours while 20 ms passed.
        assert_eq!(clock.ms(2_000_000_000, at(1020)), 1020);
        assert_eq!(clock.ms(2_000_000_960, at(1040)), 1040);
        // Back by a minute.
        assert_eq!(clock.ms(2_000_000_960 - 48_000 * 60, at(1060)), 1060);
        // Without arrival times RTP time is all there is.
        assert_eq!(clock.ms(2_000_000_960 - 48_000 * 59, None), 2060);
    }
}
