//! The figures of `vtp-load loadtest`: what each subscriber measured, the
//! aggregate report, its table and the server figures read from `/metrics`.
//! Pure: the orchestration in `loadtest` fills the samples.

use serde::Serialize;

use crate::signalling::{Percentiles, percentiles};

/// What one subscriber measured.
#[derive(Clone, Debug, Default)]
pub struct SubscriberSample {
    pub join_ms: f64,
    /// Per video consumer: from the resume to the first keyframe packet;
    /// `None` if no keyframe arrived.
    pub ttff_ms: Vec<Option<f64>>,
    /// Payload bytes received during the measurement window.
    pub window_bytes: u64,
    /// Packets received, and gaps left unrepaired, over the whole run.
    pub packets: u64,
    pub lost: u64,
    pub frames: u64,
    pub nacks_sent: u64,
    /// Per consumer, from the last receiver report.
    pub jitter_us: Vec<u64>,
}

/// The run's shape, echoed in the report.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Shape {
    pub rooms: usize,
    pub publishers_per_room: usize,
    pub subscribers_per_room: usize,
    pub video_bitrate: u32,
    pub audio_bitrate: u32,
    pub simulcast: bool,
    pub record: bool,
    pub duration_s: f64,
}

/// The server's CPU and memory over the window, when known.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq)]
pub struct ServerFigures {
    /// In % of one core.
    pub cpu_percent: Option<f64>,
    pub rss_mib: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    #[serde(flatten)]
    pub shape: Shape,
    pub publishers: usize,
    pub subscribers: usize,
    pub errors: usize,
    /// `join-room` acknowledgement, every client.
    pub join_ms: Percentiles,
    /// Time to first frame of each video consumer.
    pub ttff_ms: Percentiles,
    pub video_consumers_without_keyframe: usize,
    pub received_kbps_per_subscriber: f64,
    pub received_mbps_total: f64,
    pub frames_received: u64,
    /// Unrepaired gaps over packets expected, all consumers.
    pub packet_loss_percent: f64,
    pub worst_subscriber_loss_percent: f64,
    pub jitter_ms_mean: f64,
    pub jitter_ms_max: f64,
    pub nacks_sent: u64,
    pub server: ServerFigures,
}

fn loss_percent(packets: u64, lost: u64) -> f64 {
    100.0 * lost as f64 / (packets + lost).max(1) as f64
}

/// Aggregates the samples of a run.
pub fn aggregate(
    shape: Shape,
    publisher_join_ms: &[f64],
    subs: &[SubscriberSample],
    errors: usize,
    server: ServerFigures,
) -> Report {
    let joins: Vec<f64> = publisher_join_ms
        .iter()
        .copied()
        .chain(subs.iter().map(|s| s.join_ms))
        .collect();
    let ttffs: Vec<Option<f64>> = subs.iter().flat_map(|s| s.ttff_ms.clone()).collect();
    let jitters: Vec<f64> = subs
        .iter()
        .flat_map(|s| s.jitter_us.iter().map(|j| *j as f64 / 1000.0))
        .collect();
    let duration = shape.duration_s.max(1e-6);
    let window_bits = subs
        .iter()
        .fold(0.0, |sum, s| sum + s.window_bytes as f64 * 8.0);
    let (packets, lost) = subs
        .iter()
        .fold((0, 0), |(p, l), s| (p + s.packets, l + s.lost));
    Report {
        publishers: publisher_join_ms.len(),
        subscribers: subs.len(),
        errors,
        join_ms: percentiles(joins),
        ttff_ms: percentiles(ttffs.iter().flatten().copied().collect()),
        video_consumers_without_keyframe: ttffs.iter().filter(|t| t.is_none()).count(),
        received_kbps_per_subscriber: window_bits / duration / 1000.0 / subs.len().max(1) as f64,
        received_mbps_total: window_bits / duration / 1e6,
        frames_received: subs.iter().map(|s| s.frames).sum(),
        packet_loss_percent: loss_percent(packets, lost),
        worst_subscriber_loss_percent: subs
            .iter()
            .map(|s| loss_percent(s.packets, s.lost))
            .fold(0.0, f64::max),
        jitter_ms_mean: jitters.iter().fold(0.0, |sum, j| sum + j) / jitters.len().max(1) as f64,
        jitter_ms_max: jitters.iter().copied().fold(0.0, f64::max),
        nacks_sent: subs.iter().map(|s| s.nacks_sent).sum(),
        server,
        shape,
    }
}

/// Milliseconds, or n/a for an empty sample (NaN).
fn ms(v: f64) -> String {
    if v.is_nan() {
        "n/a".into()
    } else {
        format!("{v:.1} ms")
    }
}

fn opt(v: Option<f64>, unit: &str) -> String {
    v.map(|v| format!("{v:.1} {unit}"))
        .unwrap_or_else(|| "n/a".into())
}

/// The report as a table.
pub fn render(r: &Report) -> String {
    let s = &r.shape;
    let rows = [
        (
            "shape".to_string(),
            format!(
                "{} rooms × {} publishers × {} subscribers, video {} kbit/s{}, audio {} kbit/s, {:.0} s{}",
                s.rooms,
                s.publishers_per_room,
                s.subscribers_per_room,
                s.video_bitrate / 1000,
                if s.simulcast { " (simulcast)" } else { "" },
                s.audio_bitrate / 1000,
                s.duration_s,
                if s.record { ", recording" } else { "" }
            ),
        ),
        (
            "clients".into(),
            format!(
                "{} publishers, {} subscribers, {} errors",
                r.publishers, r.subscribers, r.errors
            ),
        ),
        (
            "join-room".into(),
            format!("p50 {}   p99 {}", ms(r.join_ms.p50), ms(r.join_ms.p99)),
        ),
        (
            "first frame".into(),
            format!(
                "p50 {}   p99 {}   ({} video consumers without a keyframe)",
                ms(r.ttff_ms.p50),
                ms(r.ttff_ms.p99),
                r.video_consumers_without_keyframe
            ),
        ),
        (
            "received".into(),
            format!(
                "{:.0} kbit/s per subscriber, {:.1} Mbit/s in all, {} frames",
                r.received_kbps_per_subscriber, r.received_mbps_total, r.frames_received
            ),
        ),
        (
            "packet loss".into(),
            format!(
                "{:.3} % (worst subscriber {:.3} %), {} NACKs sent",
                r.packet_loss_percent, r.worst_subscriber_loss_percent, r.nacks_sent
            ),
        ),
        (
            "jitter".into(),
            format!(
                "mean {:.2} ms   max {:.2} ms",
                r.jitter_ms_mean, r.jitter_ms_max
            ),
        ),
        (
            "server".into(),
            format!(
                "CPU {}   RSS {}",
                opt(r.server.cpu_percent, "%"),
                opt(r.server.rss_mib, "MiB")
            ),
        ),
    ];
    let mut out = String::new();
    for (name, value) in rows {
        out.push_str(&format!("  {name:<12} {value}\n"));
    }
    out
}

/// A sample of the Prometheus text format: the value of `name` (a line
/// `name value`, no labels), if present and numeric.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let mut parts = l.split_whitespace();
        (parts.next() == Some(name))
            .then(|| parts.next()?.parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape() -> Shape {
        Shape {
            rooms: 1,
            publishers_per_room: 1,
            subscribers_per_room: 2,
            video_bitrate: 1_000_000,
            audio_bitrate: 32_000,
            simulcast: false,
            record: true,
            duration_s: 2.0,
        }
    }

    fn sub(join: f64, ttff: Option<f64>, packets: u64, lost: u64) -> SubscriberSample {
        SubscriberSample {
            join_ms: join,
            ttff_ms: vec![ttff],
            window_bytes: 250_000,
            packets,
            lost,
            frames: 60,
            nacks_sent: 3,
            jitter_us: vec![2000, 4000],
        }
    }

    #[test]
    fn aggregate_counts_every_client_and_consumer() {
        let subs = [sub(4.0, Some(40.0), 990, 10), sub(6.0, None, 1000, 0)];
        let server = ServerFigures {
            cpu_percent: Some(12.5),
            rss_mib: None,
        };
        let r = aggregate(shape(), &[2.0], &subs, 1, server);
        assert_eq!((r.publishers, r.subscribers, r.errors), (1, 2, 1));
        assert_eq!(r.join_ms.max, 6.0);
        assert_eq!(r.ttff_ms.p50, 40.0);
        assert_eq!(r.video_consumers_without_keyframe, 1);
        // 250 kB in 2 s = 1 Mbit/s per subscriber.
        assert!((r.received_kbps_per_subscriber - 1000.0).abs() < 1e-9);
        assert!((r.received_mbps_total - 2.0).abs() < 1e-9);
        assert!((r.packet_loss_percent - 0.5).abs() < 1e-9);
        assert!((r.worst_subscriber_loss_percent - 1.0).abs() < 1e-9);
        assert!((r.jitter_ms_mean - 3.0).abs() < 1e-9);
        assert_eq!(r.jitter_ms_max, 4.0);
        assert_eq!((r.nacks_sent, r.frames_received), (6, 120));
        let json = serde_json::to_value(&r).unwrap();
        for field in [
            "join_ms",
            "ttff_ms",
            "packet_loss_percent",
            "nacks_sent",
            "server",
            "rooms",
        ] {
            assert!(json.get(field).is_some(), "{field} missing: {json}");
        }
        assert_eq!(json["server"]["rss_mib"], serde_json::Value::Null);
        let table = render(&r);
        assert!(table.contains("p50 40.0 ms"), "{table}");
        assert!(table.contains("CPU 12.5 %   RSS n/a"), "{table}");
        assert!(table.contains("recording"), "{table}");
    }

    #[test]
    fn an_empty_run_gives_no_figures_and_no_panic() {
        let r = aggregate(shape(), &[], &[], 0, ServerFigures::default());
        assert!(r.join_ms.p50.is_nan());
        assert_eq!(r.packet_loss_percent, 0.0);
        // Plain zeros (an empty float sum is -0.0).
        assert!(r.received_mbps_total.is_sign_positive() && r.jitter_ms_mean.is_sign_positive());
        let table = render(&r);
        assert!(table.contains("0 subscribers"), "{table}");
        assert!(table.contains("p50 n/a"), "{table}");
    }

    #[test]
    fn metrics_are_read_from_the_prometheus_text() {
        let text = "# HELP process_cpu_seconds_total CPU\nprocess_cpu_seconds_total 12.5\n\
                    vtp_live_rooms 3\nprocess_resident_memory_bytes 1.5e7\nbad_line x\n";
        assert_eq!(metric(text, "process_cpu_seconds_total"), Some(12.5));
        assert_eq!(metric(text, "process_resident_memory_bytes"), Some(1.5e7));
        assert_eq!(metric(text, "vtp_live_rooms"), Some(3.0));
        assert_eq!(metric(text, "bad_line"), None);
        assert_eq!(metric(text, "missing"), None);
    }
}
