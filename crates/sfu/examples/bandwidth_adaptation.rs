//! How fast a consumer's layers follow its link, in simulated time (so a
//! debug build measures the same as a release one):
//!
//!     cargo run -p vtp-sfu --example bandwidth_adaptation [runs]
//!
//! Each run: a publisher sends three simulcast layers (150 k, 500 k,
//! 1.5 Mbit/s, VP8 L1T3), a subscriber's downlink has 20 ms of delay and
//! 0.2 % random loss (seeded by the run number). Once the subscriber gets
//! the top layer steadily, its link is capped at 800 kbit/s (300 ms
//! drop-tail queue); the figure is the simulated time from the cap to the
//! `ConsumerLayersChanged` that leaves layer 2. Ten seconds later the cap
//! is lifted; the figure is the time to the `ConsumerLayersChanged` back to
//! layer 2 (sent from a keyframe of layer 2). Prints every run, then the
//! median and the worst.

use std::time::{Duration, Instant};

#[path = "../tests/support/bwe_sim.rs"]
mod bwe_sim;
use bwe_sim::{LinkShape, Sim};

const DELAY: Duration = Duration::from_millis(20);
const LOSS: f64 = 0.002;
const CAP_BPS: u64 = 800_000;

/// Runs frames until a layer change satisfies `want`; its time.
fn until(sim: &mut Sim, limit: Duration, want: impl Fn(u8) -> bool) -> Option<Instant> {
    let seen = sim.changes.len();
    let end = sim.net.now + limit;
    while sim.net.now < end {
        sim.frame();
        if let Some((at, _, _)) = sim.changes[seen..].iter().find(|(_, s, _)| want(*s)) {
            return Some(*at);
        }
    }
    None
}

fn shape(seed: u64, rate_bps: Option<u64>) -> LinkShape {
    let base = match rate_bps {
        Some(rate) => LinkShape::capped(rate, DELAY),
        None => LinkShape::open(DELAY),
    };
    LinkShape {
        loss: LOSS,
        seed,
        ..base
    }
}

/// (drop to switch down, lift to switch up, layer changes while capped
/// after the first) of one run, or which switch never came.
fn run(seed: u64) -> Result<(Duration, Duration, usize), &'static str> {
    let mut sim = Sim::new(false, seed);
    sim.set_downlink(shape(seed, None));
    sim.warm_up(Duration::from_secs(20));
    // Start the cap at a different phase of the frame clock in each run.
    sim.net.run(Duration::from_millis(seed * 7 % 33));
    let capped = sim.net.now;
    sim.set_downlink(shape(seed, Some(CAP_BPS)));
    let down = until(&mut sim, Duration::from_secs(10), |s| s < 2)
        .ok_or("no switch down within 10 s of the cap")?;
    let settled = sim.changes.len();
    sim.run_for(Duration::from_secs(10));
    let flaps = sim.changes.len() - settled;
    let lifted = sim.net.now;
    sim.set_downlink(shape(seed, None));
    let up = until(&mut sim, Duration::from_secs(30), |s| s == 2)
        .ok_or("no switch back up within 30 s of the lift")?;
    Ok((down - capped, up - lifted, flaps))
}

fn summary(name: &str, mut values: Vec<Duration>) {
    if values.is_empty() {
        println!("{name}: no run completed");
        return;
    }
    values.sort();
    let median = values[values.len() / 2];
    let worst = values[values.len() - 1];
    println!(
        "{name}: median {} ms, worst {} ms",
        median.as_millis(),
        worst.as_millis()
    );
}

fn main() {
    let runs: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(9);
    let mut downs = Vec::new();
    let mut ups = Vec::new();
    for seed in 1..=runs {
        let (down, up, flaps) = match run(seed) {
            Ok(times) => times,
            Err(failed) => {
                println!("run {seed}: {failed} (left out of the figures)");
                continue;
            }
        };
        println!(
            "run {seed}: cap to switch down {} ms, lift to switch up {} ms, \
             {flaps} layer changes in the 10 s under the cap",
            down.as_millis(),
            up.as_millis()
        );
        downs.push(down);
        ups.push(up);
    }
    summary("cap to switch down", downs);
    summary("lift to switch up", ups);
}
