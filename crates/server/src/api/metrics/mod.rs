//! `GET /metrics`: counts in the Prometheus text format, for operators.
//! Only counts: nothing that names a user or a room.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::state::AppState;

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let (rooms, peers) = state.hub.counts();
    // A remote SFU that does not answer shows as zeros, not as an error:
    // the rest of the page is still worth scraping.
    let sfu = match state.hub.media().health().await {
        Ok(health) => health.stats,
        Err(e) => {
            tracing::warn!(error = %e, "metrics: sfu health failed");
            vtp_sfu_driver::DriverStats::default()
        }
    };
    let mut out = String::with_capacity(2048);
    let mut gauge = |name: &str, help: &str, value: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
        );
    };
    gauge(
        "vtp_http_connections",
        "Open TCP connections (HTTP and websockets).",
        state.metrics.open_connections.load(Ordering::Relaxed) as u64,
    );
    gauge(
        "vtp_signalling_connections",
        "Authenticated Socket.IO connections.",
        state.metrics.signalling_connections.load(Ordering::Relaxed) as u64,
    );
    gauge(
        "vtp_live_rooms",
        "Rooms with a live session on this node.",
        rooms as u64,
    );
    gauge(
        "vtp_live_peers",
        "Peers in live rooms (within their reconnect grace included).",
        peers as u64,
    );
    gauge("vtp_sfu_workers", "SFU worker threads.", sfu.workers as u64);
    gauge(
        "vtp_sfu_routers",
        "SFU routers (one per live session).",
        sfu.routers as u64,
    );
    gauge(
        "vtp_sfu_transports",
        "WebRTC transports.",
        sfu.transports as u64,
    );
    gauge(
        "vtp_sfu_producers",
        "Producers (published tracks).",
        sfu.producers as u64,
    );
    gauge(
        "vtp_sfu_consumers",
        "Consumers (received tracks).",
        sfu.consumers as u64,
    );
    gauge(
        "vtp_sfu_tcp_connections",
        "Open ICE-TCP connections (clients whose network blocks UDP).",
        sfu.tcp.connections,
    );
    let mut counter = |name: &str, help: &str, value: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
        );
    };
    counter(
        "vtp_sfu_datagrams_received_total",
        "UDP datagrams read by the SFU.",
        sfu.datagrams_in,
    );
    counter(
        "vtp_sfu_datagrams_sent_total",
        "UDP datagrams sent by the SFU.",
        sfu.datagrams_out,
    );
    counter(
        "vtp_sfu_datagrams_dropped_unknown_total",
        "Datagrams of no known transport.",
        sfu.dropped_unknown,
    );
    counter(
        "vtp_sfu_datagrams_dropped_overload_total",
        "Datagrams dropped because a worker was behind.",
        sfu.dropped_queue_full,
    );
    counter(
        "vtp_sfu_tcp_rejected_total",
        "ICE-TCP connections closed at accept: over the total or per-IP limit.",
        sfu.tcp.rejected_limit,
    );
    counter(
        "vtp_sfu_tcp_closed_abuse_total",
        "ICE-TCP connections closed for bad framing, no STUN in time or idleness.",
        sfu.tcp.closed_bad_frame + sfu.tcp.closed_no_stun + sfu.tcp.closed_idle,
    );
    counter(
        "vtp_sfu_tcp_send_dropped_total",
        "Packets not sent on an ICE-TCP connection: its queue was full or it had closed.",
        sfu.tcp.send_dropped,
    );
    // One family, a series per reason (zeros included, so that rates work
    // from the start).
    let _ = writeln!(
        out,
        "# HELP vtp_transport_failures_total WebRTC transports that did not connect \
         (ICE or DTLS) within the deadline or whose connection died, by reason.\n\
         # TYPE vtp_transport_failures_total counter"
    );
    for reason in vtp_sfu::engine::FailureReason::ALL {
        let _ = writeln!(
            out,
            "vtp_transport_failures_total{{reason=\"{}\"}} {}",
            reason.as_str(),
            sfu.transport_failures.get(reason)
        );
    }
    // The process's own figures, under the names Prometheus's client
    // libraries use, so that load tools and dashboards read them as usual.
    if let Some(cpu) = vtp_sfu_driver::process_cpu_seconds() {
        let _ = writeln!(
            out,
            "# HELP process_cpu_seconds_total User and system CPU time of this process.\n\
             # TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total {cpu}"
        );
    }
    if let Some(rss) = resident_memory_bytes() {
        let _ = writeln!(
            out,
            "# HELP process_resident_memory_bytes Resident memory of this process.\n\
             # TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {rss}"
        );
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}

/// `VmRSS` of `/proc/self/status`, in bytes.
fn resident_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
