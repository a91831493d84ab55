//! A simulated network link for one direction of one test client: a
//! bandwidth cap (serialisation at the link rate behind a bounded drop-tail
//! queue), random loss from a seeded generator, and a fixed one-way delay.
//! Its shape can change during a run; what is queued keeps its schedule.
#![allow(dead_code)]

use std::time::{Duration, Instant};

/// Which way a datagram goes, seen from the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dir {
    /// Client to engine.
    Up,
    /// Engine to client.
    Down,
}

/// The shape of one link direction.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkShape {
    /// The link rate (bit/s); `None` = unlimited (no queueing).
    pub rate_bps: Option<u64>,
    /// One-way propagation delay, added after serialisation.
    pub delay: Duration,
    /// Share of datagrams lost at random (0 to 1).
    pub loss: f64,
    /// The drop-tail queue: a datagram that would find more than this many
    /// bytes waiting ahead of it is dropped.
    pub queue_bytes: usize,
    /// Seed of the loss generator.
    pub seed: u64,
}

impl Default for LinkShape {
    /// An ideal link: no cap, no delay, no loss.
    fn default() -> Self {
        LinkShape {
            rate_bps: None,
            delay: Duration::ZERO,
            loss: 0.0,
            queue_bytes: 64 * 1024,
            seed: 1,
        }
    }
}

impl LinkShape {
    /// A link capped at `rate_bps` with a queue of about 300 ms at that
    /// rate (a home router's buffer), `delay` each way, no loss.
    pub fn capped(rate_bps: u64, delay: Duration) -> LinkShape {
        LinkShape {
            rate_bps: Some(rate_bps),
            delay,
            queue_bytes: usize::try_from(rate_bps * 3 / 80).unwrap_or(usize::MAX),
            ..LinkShape::default()
        }
    }

    /// No cap, `delay` each way, no loss.
    pub fn open(delay: Duration) -> LinkShape {
        LinkShape {
            delay,
            ..LinkShape::default()
        }
    }
}

/// What a link did with the datagrams given to it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    pub sent: u64,
    pub lost: u64,
    pub overflowed: u64,
}

/// One link direction in use.
#[derive(Debug)]
pub struct Link {
    shape: LinkShape,
    /// When the link finishes serialising what it has queued.
    busy_until: Option<Instant>,
    rng: u64,
    pub stats: LinkStats,
}

impl Link {
    pub fn new(shape: LinkShape) -> Link {
        let rng = shape.seed | 1;
        Link {
            shape,
            busy_until: None,
            rng,
            stats: LinkStats::default(),
        }
    }

    /// A new shape from now on (the loss generator is reseeded only when
    /// the seed changes).
    pub fn set_shape(&mut self, shape: LinkShape) {
        if shape.seed != self.shape.seed {
            self.rng = shape.seed | 1;
        }
        self.shape = shape;
    }

    pub fn shape(&self) -> &LinkShape {
        &self.shape
    }

    fn next_unit(&mut self) -> f64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// When a datagram of `bytes` given to the link at `now` arrives at
    /// the other end; `None` when it is lost or the queue is full.
    pub fn admit(&mut self, now: Instant, bytes: usize) -> Option<Instant> {
        self.stats.sent += 1;
        if self.shape.loss > 0.0 && self.next_unit() < self.shape.loss {
            self.stats.lost += 1;
            return None;
        }
        let Some(rate) = self.shape.rate_bps.filter(|r| *r > 0) else {
            return Some(now + self.shape.delay);
        };
        let start = self.busy_until.filter(|b| *b > now).unwrap_or(now);
        let waiting = start.saturating_duration_since(now);
        let queued = waiting.as_secs_f64() * rate as f64 / 8.0;
        if queued + bytes as f64 > self.shape.queue_bytes as f64 {
            self.stats.overflowed += 1;
            return None;
        }
        let serialise = Duration::from_secs_f64(bytes as f64 * 8.0 / rate as f64);
        let done = start + serialise;
        self.busy_until = Some(done);
        Some(done + self.shape.delay)
    }
}
