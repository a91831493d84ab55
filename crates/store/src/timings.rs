//! How long the store's queries take, for operators' metrics: one
//! histogram over every query that goes through `on_pool!` (the seam all
//! of them share). Atomics only, so that timing costs nothing next to the
//! query itself; the server exports it as
//! `vtp_store_query_duration_seconds`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in seconds (an `+Inf` bucket follows).
pub const QUERY_BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// The histogram's counters.
#[derive(Debug, Default)]
pub struct QueryTimings {
    /// Per bucket (not cumulative), the last one `+Inf`.
    buckets: [AtomicU64; QUERY_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

/// A copy of [`QueryTimings`] at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueryTimingsSnapshot {
    pub sum_seconds: f64,
    pub count: u64,
    /// (upper bound, observations in this bucket only), ending with `+Inf`.
    pub buckets: Vec<(f64, u64)>,
}

impl QueryTimings {
    pub fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let i = QUERY_BUCKETS
            .iter()
            .position(|le| seconds <= *le)
            .unwrap_or(QUERY_BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> QueryTimingsSnapshot {
        let bounds = QUERY_BUCKETS.iter().copied().chain([f64::INFINITY]);
        QueryTimingsSnapshot {
            sum_seconds: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
            count: self.count.load(Ordering::Relaxed),
            buckets: bounds
                .zip(&self.buckets)
                .map(|(le, n)| (le, n.load(Ordering::Relaxed)))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_their_bucket() {
        let t = QueryTimings::default();
        t.observe(Duration::from_micros(200));
        t.observe(Duration::from_millis(3));
        t.observe(Duration::from_secs(2));
        let s = t.snapshot();
        assert_eq!(s.count, 3);
        assert_eq!(s.buckets.len(), QUERY_BUCKETS.len() + 1);
        assert_eq!(s.buckets[0], (0.0005, 1));
        assert_eq!(s.buckets[3], (0.005, 1));
        assert_eq!(s.buckets[10], (f64::INFINITY, 1));
        assert!((s.sum_seconds - 2.0032).abs() < 1e-9, "{s:?}");
    }
}
