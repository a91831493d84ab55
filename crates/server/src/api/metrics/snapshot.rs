//! The figures read at scrape time, from where they already live: taken
//! once per scrape ([`Snapshot::take`], the only async part) and encoded by
//! a `prometheus-client` collector.

use std::fmt;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::UNIX_EPOCH;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeCounterValue, EncodeMetric, NoLabelSet,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use vtp_sfu::engine::FailureReason;
use vtp_sfu_driver::DriverStats;
use vtp_store::{ExportState, QueryTimingsSnapshot, RecordingState};

use crate::state::AppState;
use crate::tls::CertResolver;

/// Everything the scrape reads, taken before encoding.
#[derive(Debug, Default)]
pub struct Snapshot {
    open_connections: usize,
    signalling_connections: usize,
    rooms: usize,
    peers: usize,
    /// `None`: a remote SFU did not answer (`vtp_sfu_up` 0).
    sfu: Option<DriverStats>,
    cpu_seconds: Option<f64>,
    process: Process,
    /// Free and total bytes of the data directory's file system.
    disk: Option<(u64, u64)>,
    /// The served certificate's notAfter, in Unix seconds.
    certificate_expiry: Option<u64>,
    store: QueryTimingsSnapshot,
    /// Count and bytes per state (absent: none, or the store failed).
    recordings: Vec<(RecordingState, u64, u64)>,
    exports: Vec<(ExportState, u64)>,
    /// Recordings in progress on this node, and the bytes of their files.
    recording: (usize, u64),
}

impl Snapshot {
    pub async fn take(state: &AppState) -> Snapshot {
        let tls = state.metrics.certificate();
        let (rooms, peers) = state.hub.counts();
        let sfu = match state.hub.media().health().await {
            Ok(health) => Some(health.stats),
            Err(e) => {
                // The rest of the page is still worth scraping.
                tracing::warn!(error = %e, "metrics: sfu health failed");
                None
            }
        };
        let recordings = state
            .store
            .count_recordings_by_state()
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "metrics: cannot count recordings");
                Vec::new()
            });
        let exports = state
            .store
            .count_exports_by_state()
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "metrics: cannot count exports");
                Vec::new()
            });
        let in_progress = state.hub.recordings_in_progress().await;
        let data_dir = state.recordings_dir.parent().unwrap_or(Path::new("."));
        Snapshot {
            recording: (
                in_progress.len(),
                in_progress.iter().map(|r| r.bytes_written).sum(),
            ),
            open_connections: state.metrics.open_connections.load(Ordering::Relaxed),
            signalling_connections: state.metrics.signalling_connections.load(Ordering::Relaxed),
            rooms,
            peers,
            sfu,
            cpu_seconds: vtp_sfu_driver::process_cpu_seconds(),
            process: Process::read(),
            disk: crate::recording::disk_space(data_dir),
            certificate_expiry: tls.and_then(|t| certificate_expiry(t)),
            store: state.store.query_timings(),
            recordings,
            exports,
        }
    }
}

pub(crate) fn certificate_expiry(resolver: &CertResolver) -> Option<u64> {
    let current = resolver.current()?;
    let (_, not_after) = crate::tls::acme::validity(current.cert.first()?)?;
    Some(not_after.duration_since(UNIX_EPOCH).ok()?.as_secs())
}

/// The process's own figures from `/proc/self`.
#[derive(Debug, Default)]
pub(crate) struct Process {
    pub(crate) resident_bytes: Option<u64>,
    pub(crate) open_fds: Option<u64>,
    pub(crate) max_fds: Option<u64>,
}

impl Process {
    pub(crate) fn read() -> Process {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let resident_bytes = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map(|kib| kib * 1024);
        let open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| d.count() as u64);
        let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
        let max_fds = limits
            .lines()
            .find_map(|l| l.strip_prefix("Max open files"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok());
        Process {
            resident_bytes,
            open_fds,
            max_fds,
        }
    }
}

/// Writes one family after another.
struct Out<'a>(DescriptorEncoder<'a>);

impl Out<'_> {
    fn gauge(&mut self, name: &str, help: &str, value: f64) -> fmt::Result {
        let m = self
            .0
            .encode_descriptor(name, help, None, MetricType::Gauge)?;
        ConstGauge::new(value).encode(m)
    }

    /// `name` without `_total` (the encoder adds it).
    fn counter(&mut self, name: &str, help: &str, value: u64) -> fmt::Result {
        let m = self
            .0
            .encode_descriptor(name, help, None, MetricType::Counter)?;
        ConstCounter::new(value).encode(m)
    }

    fn gauges<'l>(
        &mut self,
        name: &str,
        help: &str,
        series: impl IntoIterator<Item = ([(&'l str, String); 1], f64)>,
    ) -> fmt::Result {
        let mut m = self
            .0
            .encode_descriptor(name, help, None, MetricType::Gauge)?;
        for (labels, value) in series {
            ConstGauge::new(value).encode(m.encode_family(&labels)?)?;
        }
        Ok(())
    }

    fn counters<'l, V: EncodeCounterValue + fmt::Debug + Send + Sync + 'static>(
        &mut self,
        name: &str,
        help: &str,
        series: impl IntoIterator<Item = ([(&'l str, String); 1], V)>,
    ) -> fmt::Result {
        let mut m = self
            .0
            .encode_descriptor(name, help, None, MetricType::Counter)?;
        for (labels, value) in series {
            ConstCounter::new(value).encode(m.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

fn label(key: &str, value: impl ToString) -> [(&str, String); 1] {
    [(key, value.to_string())]
}

impl Collector for Snapshot {
    fn encode(&self, encoder: DescriptorEncoder) -> fmt::Result {
        let mut out = Out(encoder);
        out.gauge(
            "vtp_http_connections",
            "Open TCP connections (HTTP and websockets).",
            self.open_connections as f64,
        )?;
        out.gauge(
            "vtp_signalling_connections",
            "Authenticated Socket.IO connections.",
            self.signalling_connections as f64,
        )?;
        out.gauge(
            "vtp_live_rooms",
            "Rooms with a live session on this node.",
            self.rooms as f64,
        )?;
        out.gauge(
            "vtp_live_peers",
            "Peers in live rooms (within their reconnect grace included).",
            self.peers as f64,
        )?;
        self.encode_sfu(&mut out)?;
        self.encode_store(&mut out)?;
        self.encode_node(&mut out)
    }
}

impl Snapshot {
    fn encode_sfu(&self, out: &mut Out<'_>) -> fmt::Result {
        out.gauge(
            "vtp_sfu_up",
            "1 when the SFU answered this scrape's health check (a remote SFU may not).",
            if self.sfu.is_some() { 1.0 } else { 0.0 },
        )?;
        // A silent SFU shows as zeros, so that every series exists.
        let default = DriverStats::default();
        let sfu = self.sfu.as_ref().unwrap_or(&default);
        out.gauge("vtp_sfu_workers", "SFU worker threads.", sfu.workers as f64)?;
        out.gauge(
            "vtp_sfu_routers",
            "SFU routers (one per live session).",
            sfu.routers as f64,
        )?;
        out.gauge(
            "vtp_sfu_transports",
            "WebRTC transports.",
            sfu.transports as f64,
        )?;
        out.gauge(
            "vtp_sfu_producers",
            "Producers (published tracks).",
            sfu.producers as f64,
        )?;
        out.gauge(
            "vtp_sfu_consumers",
            "Consumers (received tracks).",
            sfu.consumers as f64,
        )?;
        out.gauge(
            "vtp_sfu_tcp_connections",
            "Open ICE-TCP connections (clients whose network blocks UDP).",
            sfu.tcp.connections as f64,
        )?;
        let sum = |f: fn(&vtp_sfu_driver::WorkerStats) -> usize| -> usize {
            sfu.per_worker.iter().map(f).sum()
        };
        let connected = sum(|w| w.connected_transports);
        out.gauges(
            "vtp_sfu_transports_by_state",
            "WebRTC transports: connected (ICE and DTLS up) or connecting (not yet, or never).",
            [
                (label("state", "connected"), connected as f64),
                (
                    label("state", "connecting"),
                    sfu.transports.saturating_sub(connected) as f64,
                ),
            ],
        )?;
        let by_kind = |total: usize, video: usize| {
            [
                (label("kind", "audio"), total.saturating_sub(video) as f64),
                (label("kind", "video"), video as f64),
            ]
        };
        out.gauges(
            "vtp_sfu_producers_by_kind",
            "Producers (published tracks) by kind.",
            by_kind(sfu.producers, sum(|w| w.video_producers)),
        )?;
        out.gauges(
            "vtp_sfu_consumers_by_kind",
            "Consumers (received tracks) by kind.",
            by_kind(sfu.consumers, sum(|w| w.video_consumers)),
        )?;
        out.counter(
            "vtp_sfu_datagrams_received",
            "UDP datagrams read by the SFU.",
            sfu.datagrams_in,
        )?;
        out.counter(
            "vtp_sfu_datagrams_sent",
            "UDP datagrams sent by the SFU.",
            sfu.datagrams_out,
        )?;
        out.counter(
            "vtp_sfu_datagrams_dropped_unknown",
            "Datagrams of no known transport.",
            sfu.dropped_unknown,
        )?;
        out.counter(
            "vtp_sfu_datagrams_dropped_overload",
            "Datagrams dropped because a worker was behind.",
            sfu.dropped_queue_full,
        )?;
        out.counter(
            "vtp_sfu_tcp_rejected",
            "ICE-TCP connections closed at accept: over the total or per-IP limit.",
            sfu.tcp.rejected_limit,
        )?;
        out.counter(
            "vtp_sfu_tcp_closed_abuse",
            "ICE-TCP connections closed for bad framing, no STUN in time or idleness.",
            sfu.tcp.closed_bad_frame + sfu.tcp.closed_no_stun + sfu.tcp.closed_idle,
        )?;
        out.counter(
            "vtp_sfu_tcp_send_dropped",
            "Packets not sent on an ICE-TCP connection: its queue was full or it had closed.",
            sfu.tcp.send_dropped,
        )?;
        out.counters(
            "vtp_transport_failures",
            "WebRTC transports that did not connect (ICE or DTLS) within the deadline \
             or whose connection died, by reason.",
            FailureReason::ALL
                .iter()
                .map(|r| (label("reason", r.as_str()), sfu.transport_failures.get(*r))),
        )?;
        out.counters(
            "vtp_sfu_worker_busy_seconds",
            "Time each SFU worker spent working rather than waiting; its rate is the \
             worker's load (1 = a whole core).",
            sfu.per_worker
                .iter()
                .enumerate()
                .map(|(i, w)| (label("worker", i), w.busy_nanos as f64 / 1e9)),
        )?;
        out.gauges(
            "vtp_sfu_worker_transports",
            "WebRTC transports on each SFU worker.",
            sfu.per_worker
                .iter()
                .enumerate()
                .map(|(i, w)| (label("worker", i), w.transports as f64)),
        )?;
        out.counter(
            "vtp_sfu_recording_packets_dropped",
            "Packets not recorded because a recording's writer was behind.",
            sfu.per_worker.iter().map(|w| w.tap_drops).sum(),
        )?;
        self.encode_media(out, sfu)
    }

    fn encode_media(&self, out: &mut Out<'_>, sfu: &DriverStats) -> fmt::Result {
        let m = &sfu.media;
        let both = |inbound: u64, outbound: u64| {
            [
                (label("direction", "in"), inbound),
                (label("direction", "out"), outbound),
            ]
        };
        out.counters(
            "vtp_media_packets",
            "RTP packets: in from publishers, out to subscribers (retransmissions included).",
            both(m.packets_in, m.packets_out),
        )?;
        out.counters(
            "vtp_media_bytes",
            "RTP payload bytes: in from publishers, out to subscribers.",
            both(m.bytes_in, m.bytes_out),
        )?;
        out.counters(
            "vtp_media_packets_lost",
            "RTP packets lost: in, from publishers after repair; out, as subscribers report.",
            both(m.packets_lost_in, m.packets_lost_out),
        )?;
        out.counters(
            "vtp_media_nacks",
            "NACKs: in, sent to publishers; out, received from subscribers.",
            both(m.nacks_sent, m.nacks_received),
        )?;
        out.counters(
            "vtp_media_plis",
            "Picture loss indications: in, sent to publishers; out, received from subscribers.",
            both(m.plis_sent, m.plis_received),
        )?;
        out.counter(
            "vtp_media_layer_switches",
            "Simulcast layer changes of consumers.",
            m.layer_switches,
        )
    }

    fn encode_store(&self, out: &mut Out<'_>) -> fmt::Result {
        let mut m = out.0.encode_descriptor(
            "vtp_store_query_duration_seconds",
            "Time each database query took.",
            None,
            MetricType::Histogram,
        )?;
        m.encode_histogram::<NoLabelSet>(
            self.store.sum_seconds,
            self.store.count,
            &self.store.buckets,
            None,
        )?;
        let recordings = |pick: fn(&(RecordingState, u64, u64)) -> u64| {
            RecordingState::ALL.map(|s| {
                let row = self.recordings.iter().find(|r| r.0 == s);
                (label("state", s.as_str()), row.map_or(0, pick) as f64)
            })
        };
        out.gauges(
            "vtp_recordings",
            "Recordings by state (recording, finalizing, ready, failed).",
            recordings(|r| r.1),
        )?;
        out.gauges(
            "vtp_recordings_size_bytes",
            "Bytes of the recordings in each state, as last written to the store.",
            recordings(|r| r.2),
        )?;
        out.gauge(
            "vtp_recordings_active",
            "Recordings in progress on this node.",
            self.recording.0 as f64,
        )?;
        out.gauge(
            "vtp_recording_written_bytes",
            "Bytes written so far by the recordings in progress on this node (their files on disk).",
            self.recording.1 as f64,
        )?;
        out.gauges(
            "vtp_exports",
            "Exports of recordings by state; queued ones are the export queue.",
            ExportState::ALL.map(|s| {
                let n = self.exports.iter().find(|e| e.0 == s).map_or(0, |e| e.1);
                (label("state", s.as_str()), n as f64)
            }),
        )
    }

    fn encode_node(&self, out: &mut Out<'_>) -> fmt::Result {
        // Under the names Prometheus's client libraries use, so that
        // dashboards and load tools read them as usual.
        if let Some(cpu) = self.cpu_seconds {
            let m = out.0.encode_descriptor(
                "process_cpu_seconds",
                "User and system CPU time of this process.",
                None,
                MetricType::Counter,
            )?;
            ConstCounter::new(cpu).encode(m)?;
        }
        let p = &self.process;
        for (name, help, value) in [
            (
                "process_resident_memory_bytes",
                "Resident memory of this process.",
                p.resident_bytes,
            ),
            ("process_open_fds", "Open file descriptors.", p.open_fds),
            (
                "process_max_fds",
                "The limit on open file descriptors.",
                p.max_fds,
            ),
        ] {
            if let Some(v) = value {
                out.gauge(name, help, v as f64)?;
            }
        }
        if let Some((free, size)) = self.disk {
            out.gauge(
                "vtp_data_dir_free_bytes",
                "Bytes free to VTP on the data directory's file system.",
                free as f64,
            )?;
            out.gauge(
                "vtp_data_dir_size_bytes",
                "Size of the data directory's file system.",
                size as f64,
            )?;
        }
        if let Some(expiry) = self.certificate_expiry {
            out.gauge(
                "vtp_tls_certificate_expiry_timestamp_seconds",
                "When the certificate HTTPS serves expires (notAfter), in Unix seconds.",
                expiry as f64,
            )?;
        }
        let mut m = out.0.encode_descriptor(
            "vtp_build",
            "The running build (always 1).",
            None,
            MetricType::Info,
        )?;
        m.encode_info(&label("version", env!("CARGO_PKG_VERSION")))
    }
}
