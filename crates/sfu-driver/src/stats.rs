//! The driver's counts and health, as `GET /sfu/v1/health` carries them.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use vtp_sfu::engine::{MediaTotals, TransportFailures};

use crate::tcp::TcpStats;

/// Counts of one worker.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerStats {
    pub routers: usize,
    pub transports: usize,
    pub producers: usize,
    pub consumers: usize,
    /// Datagrams handed to this worker's engine.
    pub datagrams_in: u64,
    pub datagrams_out: u64,
    /// Datagrams dropped because this worker's queue was full.
    pub dropped_queue_full: u64,
    /// Tapped packets dropped because a recorder was behind.
    #[serde(default)]
    pub tap_drops: u64,
    /// Nanoseconds spent working rather than waiting (its rate is the
    /// worker's load, 1.0 = a whole core).
    #[serde(default)]
    pub busy_nanos: u64,
    /// Transports whose ICE and DTLS are up.
    #[serde(default)]
    pub connected_transports: usize,
    /// Video producers and consumers (the rest are audio).
    #[serde(default)]
    pub video_producers: usize,
    #[serde(default)]
    pub video_consumers: usize,
    /// System calls that sent UDP datagrams: with batching, fewer than the
    /// datagrams sent.
    #[serde(default)]
    pub udp_send_calls: u64,
    /// UDP datagrams that went out in GSO sends (several to one
    /// destination in one call).
    #[serde(default)]
    pub udp_segmented: u64,
}

/// Counts of the whole driver (`GET /sfu/v1/health` material).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DriverStats {
    pub workers: usize,
    pub routers: usize,
    pub transports: usize,
    pub producers: usize,
    pub consumers: usize,
    /// Datagrams read from the socket.
    pub datagrams_in: u64,
    /// Datagrams sent on the socket.
    pub datagrams_out: u64,
    /// Datagrams dropped: `dropped_unknown + dropped_queue_full`.
    pub datagrams_dropped: u64,
    /// Datagrams of no known transport.
    pub dropped_unknown: u64,
    /// Datagrams dropped because their worker's queue was full.
    pub dropped_queue_full: u64,
    pub send_errors: u64,
    pub recv_errors: u64,
    pub per_worker: Vec<WorkerStats>,
    /// The ICE-TCP listener's counts.
    #[serde(default)]
    pub tcp: TcpStats,
    /// Transports that failed to connect or stopped working, by reason.
    #[serde(default)]
    pub transport_failures: TransportFailures,
    /// Media counters of every worker's engine, summed (boxed: the
    /// health answer stays small beside the control API's others).
    #[serde(default)]
    pub media: Box<MediaTotals>,
}

/// Liveness plus load.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DriverHealth {
    /// Not shut down, and every thread is alive.
    pub running: bool,
    pub local_addr: SocketAddr,
    pub stats: DriverStats,
}
