//! Waiting for what a test expects: a condition is looked at again and
//! again until it holds, and a test that waits in vain fails after a
//! deadline naming what it waited for and what it saw last. Tests never
//! sleep a fixed time hoping that something has happened by then.
//!
//! Shared through `#[path]` by the suites of `vtp-server`, `vtp-client` and
//! `vtp-sfu-driver`, so it uses nothing but std and tokio.
#![allow(dead_code)] // each suite uses a different part

use std::fmt::Debug;
use std::time::{Duration, Instant};

/// How often a condition is looked at.
const POLL: Duration = Duration::from_millis(10);

/// Runs `probe` until it gives `Ok(value)` and returns the value; after
/// `within` fails with `what` and the last `Err` (what was seen instead).
pub async fn wait_for<T, S: Debug>(
    within: Duration,
    what: &str,
    mut probe: impl AsyncFnMut() -> Result<T, S>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(seen) if Instant::now() >= deadline => {
                panic!("waited {within:?} in vain for {what}; last seen: {seen:?}")
            }
            Err(_) => tokio::time::sleep(POLL).await, // sleep-ok: the poll interval
        }
    }
}

/// Waits until `condition` holds; after `within` fails naming `what`.
pub async fn wait_until(within: Duration, what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !condition().await {
        assert!(
            Instant::now() < deadline,
            "waited {within:?} in vain for {what}"
        );
        tokio::time::sleep(POLL).await; // sleep-ok: the poll interval
    }
}

/// [`wait_for`] for a test without an async runtime (it blocks the thread).
pub fn wait_for_blocking<T, S: Debug>(
    within: Duration,
    what: &str,
    mut probe: impl FnMut() -> Result<T, S>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        match probe() {
            Ok(value) => return value,
            Err(seen) if Instant::now() >= deadline => {
                panic!("waited {within:?} in vain for {what}; last seen: {seen:?}")
            }
            Err(_) => std::thread::sleep(POLL), // sleep-ok: the poll interval
        }
    }
}

/// [`wait_until`] for a test without an async runtime (it blocks the thread).
pub fn wait_until_blocking(within: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "waited {within:?} in vain for {what}"
        );
        std::thread::sleep(POLL); // sleep-ok: the poll interval
    }
}
