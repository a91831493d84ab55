//! `vtp-load compare`: the one-publisher fan-out against VTP and against
//! Janus's VideoRoom, one after the other with the same subscriber counts,
//! each server pinned to the same single core and the load generator to
//! the others; prints both tables, the ratios and each system as a
//! fraction of the machine's physical limit (per-packet costs of the
//! `physical_limit` bench, given as flags).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;

use crate::janus_fanout::janus_run;
use crate::media::{Fanout, Row, vtp_run};
use crate::netns;

#[derive(clap::Args)]
pub struct Args {
    /// The `vtp` binary.
    #[arg(long, default_value = "target/release/vtp")]
    vtp: PathBuf,
    /// The `janus` binary (Debian's package).
    #[arg(long, default_value = "/usr/bin/janus")]
    janus: PathBuf,
    /// Which systems to run.
    #[arg(long, value_enum, default_value = "both")]
    systems: Systems,
    /// Subscriber counts, run in this order on each system.
    #[arg(long, value_delimiter = ',', default_value = "10,50,100,200")]
    subscribers: Vec<usize>,
    /// Seconds of media per run.
    #[arg(long, default_value_t = 8)]
    duration: u64,
    /// Publisher video bitrate (audio adds 32 kbit/s).
    #[arg(long, default_value_t = 1_000_000)]
    video_bitrate: u32,
    /// The core each server is pinned to (`taskset -c`).
    #[arg(long, default_value_t = 1)]
    server_cpu: usize,
    /// The cores of the load generator (`taskset -a -p -c`); empty: not pinned.
    #[arg(long, default_value = "0")]
    loadgen_cpus: String,
    /// SRTP protect per 1200-byte packet, µs (physical_limit bench).
    #[arg(long, default_value_t = 0.41)]
    protect_us: f64,
    /// One UDP `send_to` on loopback, µs (physical_limit bench).
    #[arg(long, default_value_t = 3.73)]
    send_us: f64,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// VTP's publisher and subscribers use ICE-TCP only (Janus keeps UDP).
    #[arg(long)]
    ice_tcp: bool,
    /// Both systems' subscribers count packets from the clear-text RTP
    /// header without decrypting: loss is before repair, and the load
    /// generator can drive far more subscribers per core.
    #[arg(long)]
    count_only: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Systems {
    Both,
    Vtp,
    Janus,
}

/// One system's figures.
#[derive(Debug, Serialize, PartialEq)]
pub struct Summary {
    /// Largest subscriber count whose worst subscriber lost under 1 %.
    pub max_subscribers_under_1pct_loss: Option<usize>,
    /// Server CPU (% of one core) per 100 subscribers, at that count.
    pub cpu_percent_per_100_subscribers: Option<f64>,
    /// Server CPU per forwarded packet at that count, µs.
    pub cpu_us_per_forwarded_packet: Option<f64>,
    /// The physical floor per packet divided by the measured cost.
    pub fraction_of_physical_limit_per_packet: Option<f64>,
    /// The largest count as a fraction of what the physical limit allows
    /// on one core at the same packet rate per subscriber.
    pub fraction_of_physical_limit_subscribers: Option<f64>,
}

/// The floor: one SRTP protect and one send per forwarded packet.
#[derive(Debug, Serialize, PartialEq)]
pub struct PhysicalLimit {
    pub protect_us: f64,
    pub send_us: f64,
    pub floor_us_per_packet: f64,
    pub packets_per_core_second: f64,
}

impl PhysicalLimit {
    pub fn new(protect_us: f64, send_us: f64) -> PhysicalLimit {
        let floor = protect_us + send_us;
        PhysicalLimit {
            protect_us,
            send_us,
            floor_us_per_packet: floor,
            packets_per_core_second: 1e6 / floor.max(1e-9),
        }
    }
}

#[derive(Serialize)]
struct Report {
    setup: String,
    physical_limit: PhysicalLimit,
    vtp: Option<SystemReport>,
    janus: Option<SystemReport>,
    /// Janus's CPU per 100 subscribers over VTP's (above 1: VTP is cheaper).
    janus_over_vtp_cpu: Option<f64>,
    /// VTP's largest count under 1 % loss over Janus's.
    vtp_over_janus_subscribers: Option<f64>,
    /// Runs that could not be set up (each ends its system's series).
    failures: Vec<String>,
}

#[derive(Serialize)]
struct SystemReport {
    rows: Vec<Row>,
    summary: Summary,
}

/// Whether the publisher kept its rate in `row`: at least 95 % of the
/// highest per-subscriber packet rate of the series. Below, the load
/// generator fell behind (its sources skip ahead rather than burst), so
/// the row does not show the load asked for and no figure is taken from it.
pub fn kept_rate(row: &Row, rows: &[Row]) -> bool {
    let rate = |r: &Row| r.forwarded_packets_per_second / r.subscribers.max(1) as f64;
    let best = rows.iter().map(rate).fold(0.0, f64::max);
    rate(row) >= 0.95 * best
}

/// The summary of a system's rows against `limit`.
pub fn summarize(rows: &[Row], limit: &PhysicalLimit) -> Summary {
    let best = rows
        .iter()
        .filter(|r| r.worst_loss_percent < 1.0 && r.subscribers > 0 && kept_rate(r, rows))
        .max_by_key(|r| r.subscribers);
    let per_packet = best.map(Row::cpu_us_per_packet);
    Summary {
        max_subscribers_under_1pct_loss: best.map(|r| r.subscribers),
        cpu_percent_per_100_subscribers: best
            .map(|r| r.server_cpu_percent * 100.0 / r.subscribers as f64),
        cpu_us_per_forwarded_packet: per_packet,
        fraction_of_physical_limit_per_packet: per_packet.map(|p| limit.floor_us_per_packet / p),
        fraction_of_physical_limit_subscribers: best.map(|r| {
            let per_subscriber = r.forwarded_packets_per_second / r.subscribers as f64;
            r.subscribers as f64 * per_subscriber / limit.packets_per_core_second
        }),
    }
}

fn summary(s: &Option<SystemReport>) -> Option<&Summary> {
    s.as_ref().map(|s| &s.summary)
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    // Janus needs a non-loopback address (see `netns`): the whole
    // comparison runs again inside a network namespace of its own.
    if args.systems != Systems::Vtp && !netns::inside() {
        let code = netns::run_again_inside()?;
        anyhow::ensure!(code == 0, "the run inside the network namespace failed");
        return Ok(());
    }
    if netns::inside() {
        netns::set_up().context("setting up the private network namespace")?;
    }
    let pinned = pin_self(&args.loadgen_cpus);
    let setup = format!(
        "each server pinned to CPU {} (taskset -c; VTP with one SFU worker, all of Janus's threads); \
         load generator {}{}{}",
        args.server_cpu,
        match &pinned {
            Ok(()) if !args.loadgen_cpus.is_empty() => format!("on CPU {}", args.loadgen_cpus),
            Ok(()) => "not pinned".to_string(),
            Err(e) => format!("not pinned ({e})"),
        },
        if netns::inside() {
            format!(
                "; in a private network namespace (Janus's ICE and its peers on {}, VTP on 127.0.0.1)",
                netns::JANUS_IP
            )
        } else {
            String::new()
        },
        if args.count_only {
            "; subscribers count RTP headers without decrypting (loss before repair)"
        } else {
            ""
        }
    );
    eprintln!("{setup}");
    let limit = PhysicalLimit::new(args.protect_us, args.send_us);
    let duration = Duration::from_secs(args.duration);
    let mut report = Report {
        setup,
        physical_limit: limit,
        vtp: None,
        janus: None,
        janus_over_vtp_cpu: None,
        vtp_over_janus_subscribers: None,
        failures: Vec::new(),
    };
    let mut failures = Vec::new();
    for system in [Systems::Vtp, Systems::Janus] {
        if args.systems != Systems::Both && args.systems != system {
            continue;
        }
        let mut rows = Vec::new();
        for &n in &args.subscribers {
            let run = Fanout {
                bin: if system == Systems::Vtp {
                    &args.vtp
                } else {
                    &args.janus
                },
                subscribers: n,
                duration,
                video_bitrate: args.video_bitrate,
                ice: if args.ice_tcp {
                    vtp_client::IceTransport::Tcp
                } else {
                    vtp_client::IceTransport::Udp
                },
                server_cpu: Some(args.server_cpu),
                count_only: args.count_only,
            };
            let row = match system {
                Systems::Janus => janus_run(&run).await,
                _ => vtp_run(&run).await,
            };
            // A count the system cannot even set up (timeouts) ends its
            // series; the other system still runs.
            let row = match row {
                Ok(row) => row,
                Err(e) => {
                    eprintln!("{}: {n} subscribers failed: {e:#}", system_name(system));
                    failures.push(format!("{}: {n} subscribers: {e:#}", system_name(system)));
                    break;
                }
            };
            eprintln!("{}: {}", system_name(system), crate::media::row_line(&row));
            rows.push(row);
        }
        let summary = summarize(&rows, &report.physical_limit);
        let sys = Some(SystemReport { rows, summary });
        match system {
            Systems::Janus => report.janus = sys,
            _ => report.vtp = sys,
        }
    }
    report.failures = failures;
    report.janus_over_vtp_cpu = ratio(
        summary(&report.janus).and_then(|s| s.cpu_percent_per_100_subscribers),
        summary(&report.vtp).and_then(|s| s.cpu_percent_per_100_subscribers),
    );
    report.vtp_over_janus_subscribers = ratio(
        summary(&report.vtp).and_then(|s| s.max_subscribers_under_1pct_loss.map(|n| n as f64)),
        summary(&report.janus).and_then(|s| s.max_subscribers_under_1pct_loss.map(|n| n as f64)),
    );
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(())
}

fn system_name(s: Systems) -> &'static str {
    match s {
        Systems::Janus => "janus",
        _ => "vtp",
    }
}

/// Pins this process's threads to `cpus` with `taskset -a -p -c`.
fn pin_self(cpus: &str) -> anyhow::Result<()> {
    if cpus.is_empty() {
        return Ok(());
    }
    let status = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &std::process::id().to_string()])
        .stdout(std::process::Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "taskset failed: {status}");
    Ok(())
}

fn opt(v: Option<f64>, digits: usize, unit: &str) -> String {
    v.map(|v| format!("{v:.digits$}{unit}"))
        .unwrap_or_else(|| "n/a".into())
}

fn render(r: &Report) -> String {
    let mut out = String::new();
    out.push_str(&format!("setup: {}\n", r.setup));
    let l = &r.physical_limit;
    out.push_str(&format!(
        "physical limit: {:.2} µs protect + {:.2} µs send = {:.2} µs per forwarded packet = {:.0} packets per core-second\n",
        l.protect_us, l.send_us, l.floor_us_per_packet, l.packets_per_core_second
    ));
    for (name, sys) in [("VTP", &r.vtp), ("Janus", &r.janus)] {
        let Some(sys) = sys else { continue };
        out.push_str(&format!(
            "\n{name}\n| subscribers | packets/s forwarded | server CPU | CPU per 100 subs | µs per packet | RSS | loss mean / worst | load generator CPU |\n|---|---|---|---|---|---|---|---|\n"
        ));
        for row in &sys.rows {
            out.push_str(&format!(
                "| {} | {:.0}{} | {:.1} % | {:.1} % | {:.2} | {:.0} MiB | {:.2} % / {:.2} % | {:.0} % |\n",
                row.subscribers,
                row.forwarded_packets_per_second,
                if kept_rate(row, &sys.rows) { "" } else { " (rate not kept)" },
                row.server_cpu_percent,
                row.server_cpu_percent * 100.0 / row.subscribers.max(1) as f64,
                row.cpu_us_per_packet(),
                row.server_rss_mib,
                row.mean_loss_percent,
                row.worst_loss_percent,
                row.loadgen_cpu_percent
            ));
        }
        let s = &sys.summary;
        out.push_str(&format!(
            "{name}: largest N with loss < 1 %: {}; CPU per 100 subscribers there: {}; {} per packet = {} of the physical limit; N = {} of the physical limit\n",
            s.max_subscribers_under_1pct_loss
                .map(|n| n.to_string())
                .unwrap_or_else(|| "none".into()),
            opt(s.cpu_percent_per_100_subscribers, 1, " %"),
            opt(s.cpu_us_per_forwarded_packet, 2, " µs"),
            opt(s.fraction_of_physical_limit_per_packet, 2, ""),
            opt(s.fraction_of_physical_limit_subscribers, 2, ""),
        ));
    }
    for failure in &r.failures {
        out.push_str(&format!("failed: {failure}\n"));
    }
    if r.vtp.is_some() && r.janus.is_some() {
        out.push_str(&format!(
            "\nratios: Janus CPU / VTP CPU per 100 subscribers = {}; VTP largest N / Janus largest N = {}\n",
            opt(r.janus_over_vtp_cpu, 2, "×"),
            opt(r.vtp_over_janus_subscribers, 2, "×"),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(n: usize, cpu: f64, worst: f64) -> Row {
        Row {
            subscribers: n,
            video_bitrate: 1_000_000,
            sent_packets: 1600,
            server_cpu_percent: cpu,
            server_rss_mib: 10.0,
            mean_loss_percent: worst / 2.0,
            worst_loss_percent: worst,
            min_received_packets: 1600,
            loadgen_cpu_percent: 50.0,
            // 200 packets/s per subscriber.
            forwarded_packets_per_second: 200.0 * n as f64,
        }
    }

    #[test]
    fn summary_takes_the_largest_count_under_one_percent_loss() {
        let limit = PhysicalLimit::new(1.0, 4.0); // 5 µs: 200,000 packets/s
        let rows = [
            row(100, 20.0, 0.0),
            row(200, 40.0, 0.5),
            row(400, 99.0, 12.0),
        ];
        let s = summarize(&rows, &limit);
        assert_eq!(s.max_subscribers_under_1pct_loss, Some(200));
        assert_eq!(s.cpu_percent_per_100_subscribers, Some(20.0));
        // 40 % of a core for 40,000 packets/s: 10 µs each, twice the floor.
        let per_packet = s.cpu_us_per_forwarded_packet.unwrap();
        assert!((per_packet - 10.0).abs() < 1e-9);
        assert!((s.fraction_of_physical_limit_per_packet.unwrap() - 0.5).abs() < 1e-9);
        // The floor allows 1,000 subscribers at 200 packets/s each.
        assert!((s.fraction_of_physical_limit_subscribers.unwrap() - 0.2).abs() < 1e-9);
    }

    #[test]
    fn no_run_under_one_percent_gives_no_figures_and_ratios_need_both() {
        let limit = PhysicalLimit::new(0.4, 3.7);
        let s = summarize(&[row(10, 5.0, 3.0)], &limit);
        assert_eq!(s.max_subscribers_under_1pct_loss, None);
        assert_eq!(s.cpu_percent_per_100_subscribers, None);
        assert_eq!(ratio(Some(2.0), None), None);
        assert_eq!(ratio(Some(2.0), Some(0.0)), None);
        assert_eq!(ratio(Some(3.0), Some(1.5)), Some(2.0));
    }

    #[test]
    fn the_table_shows_both_systems_and_the_ratios() {
        let limit = PhysicalLimit::new(1.0, 4.0);
        let vtp = vec![row(100, 20.0, 0.0)];
        let janus = vec![row(100, 60.0, 0.0)];
        let report = Report {
            setup: "pinned".into(),
            vtp: Some(SystemReport {
                summary: summarize(&vtp, &limit),
                rows: vtp,
            }),
            janus: Some(SystemReport {
                summary: summarize(&janus, &limit),
                rows: janus,
            }),
            physical_limit: limit,
            janus_over_vtp_cpu: Some(3.0),
            vtp_over_janus_subscribers: Some(1.0),
            failures: vec!["janus: 700 subscribers: timed out".into()],
        };
        let text = render(&report);
        assert!(
            text.contains("\nVTP\n") && text.contains("\nJanus\n"),
            "{text}"
        );
        assert!(
            text.contains("| 100 | 20000 | 60.0 % | 60.0 % | 30.00 |"),
            "{text}"
        );
        assert!(text.contains("= 3.00×"), "{text}");
        assert!(text.contains("failed: janus: 700 subscribers"), "{text}");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json["vtp"]["summary"]["max_subscribers_under_1pct_loss"],
            100
        );
        assert_eq!(json["physical_limit"]["floor_us_per_packet"], 5.0);
    }
}
