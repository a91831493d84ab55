//! The media fan-out load: one publisher (video at a chosen bitrate plus
//! audio) to N subscribers, through one SFU worker, for each N asked.
//! Reports the server's CPU and memory and the subscribers' loss.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;
use tokio::sync::Semaphore;
use vtp_client::{AudioOptions, LocalProducer, MediaPeer, VideoOptions};

use crate::proc_stats::{CpuMeter, rss_bytes};
use crate::spawn::{spawn_pinned, wait_healthy};
use crate::vtp_peers;

#[derive(clap::Args)]
pub struct Args {
    /// The `vtp` binary to start (a fresh server per subscriber count).
    #[arg(long)]
    spawn: PathBuf,
    /// Subscriber counts to run, one after the other.
    #[arg(long, value_delimiter = ',', default_value = "10,50,100,200")]
    subscribers: Vec<usize>,
    /// Seconds of media per run.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Publisher video bitrate (audio adds 32 kbit/s).
    #[arg(long, default_value_t = 1_000_000)]
    video_bitrate: u32,
    /// Print the reports as JSON.
    #[arg(long)]
    json: bool,
    /// Publisher and subscribers reach the SFU over ICE-TCP only (its
    /// passive TCP candidate) instead of UDP.
    #[arg(long)]
    ice_tcp: bool,
    /// Subscribers count packets from the clear-text RTP header without
    /// decrypting (no repair: loss is before NACK/RTX), so one core of load
    /// generation drives many more of them.
    #[arg(long)]
    count_only: bool,
}

/// One fan-out run (one system, one subscriber count).
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub subscribers: usize,
    pub video_bitrate: u32,
    pub sent_packets: u64,
    pub server_cpu_percent: f64,
    pub server_rss_mib: f64,
    /// Mean over subscribers of (sent − received) / sent, in percent.
    pub mean_loss_percent: f64,
    pub worst_loss_percent: f64,
    /// Packets received by the subscriber that received the fewest.
    pub min_received_packets: u64,
    /// The load generator's own CPU over the window (% of one core): near
    /// 100 % of its cores, the rig, not the server, sets the figures.
    pub loadgen_cpu_percent: f64,
    pub forwarded_packets_per_second: f64,
}

impl Row {
    /// The row of a run from what the publisher sent and what each
    /// subscriber received (packets after NACK/RTX repair).
    pub fn from_counts(
        sent: u64,
        received: &[u64],
        duration: Duration,
        video_bitrate: u32,
        server_cpu_percent: f64,
        server_rss_mib: f64,
    ) -> Row {
        let losses: Vec<f64> = received
            .iter()
            .map(|&got| 100.0 * sent.saturating_sub(got) as f64 / sent.max(1) as f64)
            .collect();
        Row {
            subscribers: received.len(),
            video_bitrate,
            sent_packets: sent,
            server_cpu_percent,
            server_rss_mib,
            mean_loss_percent: losses.iter().sum::<f64>() / losses.len().max(1) as f64,
            worst_loss_percent: losses.iter().copied().fold(0.0, f64::max),
            min_received_packets: received.iter().copied().min().unwrap_or(0),
            loadgen_cpu_percent: f64::NAN,
            forwarded_packets_per_second: sent as f64 * received.len() as f64
                / duration.as_secs_f64().max(1e-6),
        }
    }

    /// Server CPU time per forwarded packet, in µs.
    pub fn cpu_us_per_packet(&self) -> f64 {
        self.server_cpu_percent / 100.0 * 1e6 / self.forwarded_packets_per_second.max(1e-6)
    }
}

/// What one fan-out run needs.
pub struct Fanout<'a> {
    pub bin: &'a std::path::Path,
    pub subscribers: usize,
    pub duration: Duration,
    pub video_bitrate: u32,
    /// Pin the server to this core.
    pub server_cpu: Option<usize>,
    /// How the VTP peers reach the SFU (UDP, or ICE-TCP only).
    pub ice: vtp_client::IceTransport,
    /// Subscribers count without decrypting (`MediaPeer::with_count_only`).
    pub count_only: bool,
}

const EMAIL: &str = "media-load@example.org";
const PASSWORD: &str = "media-Tq7-vB2k-9wZr";

pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for &n in &args.subscribers {
        let run = Fanout {
            bin: &args.spawn,
            subscribers: n,
            duration: Duration::from_secs(args.duration),
            video_bitrate: args.video_bitrate,
            server_cpu: None,
            count_only: args.count_only,
            ice: if args.ice_tcp {
                vtp_client::IceTransport::Tcp
            } else {
                vtp_client::IceTransport::Udp
            },
        };
        let row = vtp_run(&run)
            .await
            .with_context(|| format!("run with {n} subscribers"))?;
        if !args.json {
            print_row(&row);
        }
        rows.push(row);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    }
    Ok(())
}

/// One fan-out run against a fresh `vtp` with one SFU worker.
pub async fn vtp_run(args: &Fanout<'_>) -> anyhow::Result<Row> {
    let n = args.subscribers;
    let (server, base) = spawn_pinned(
        args.bin,
        EMAIL,
        PASSWORD,
        &["--sfu-workers", "1"],
        args.server_cpu,
    )?;
    let pid = server.child.id();
    let http = reqwest::Client::new();
    wait_healthy(&http, &base).await;
    let teacher = vtp_peers::login(&http, &base, EMAIL, PASSWORD).await?;
    let room = vtp_peers::create_room(&http, &base, &teacher, "fan-out", n + 1).await?;
    let student = vtp_peers::register(&http, &base, "media-student@example.org").await?;

    let publisher = vtp_peers::publish(
        &base,
        &teacher,
        &room,
        Some(VideoOptions {
            bitrate_bps: args.video_bitrate,
            ..VideoOptions::default()
        }),
        Some(AudioOptions::default()),
        args.ice,
    )
    .await?;

    // The subscribers, a few at a time.
    let limit = Arc::new(Semaphore::new(16));
    let mut tasks = Vec::new();
    for _ in 0..n {
        let peer = MediaPeer::new()
            .with_ice_transport(args.ice)
            .with_count_only(args.count_only);
        let (limit, base, token, room, producers) = (
            limit.clone(),
            base.clone(),
            student.clone(),
            room.clone(),
            publisher.producer_ids.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let _permit = limit.acquire().await;
            vtp_peers::subscribe(&base, &token, &room, &producers, peer).await
        }));
    }
    let mut subscribers = Vec::new();
    for task in tasks {
        subscribers.push(task.await??);
    }
    eprintln!(
        "{n} subscribers connected; sending for {} s",
        args.duration.as_secs()
    );

    let sources: Vec<&LocalProducer> = publisher.producers.iter().collect();
    let row = measure(pid, args, &sources, || {
        subscribers
            .iter()
            .map(|s| s.consumers.iter().map(|c| c.stats().packets).sum())
            .collect()
    })
    .await?;
    drop(subscribers);
    drop(publisher);
    drop(server);
    Ok(row)
}

/// Runs the sources for `WARMUP` and then `args.duration`, and measures
/// over the second part only: the server's CPU (in % of one core), its RSS
/// just after (MiB), and the row from the packets sent and each
/// subscriber's packets received (`received` counts them) in that window.
/// The warm-up keeps set-up transients (the first keyframe to a subscriber
/// whose path is not quite ready) out of the steady-state figures, the same
/// way for every system.
pub async fn measure(
    pid: u32,
    args: &Fanout<'_>,
    sources: &[&LocalProducer],
    received: impl Fn() -> Vec<u64>,
) -> anyhow::Result<Row> {
    let sent = || sources.iter().map(|p| p.stats().packets).sum::<u64>();
    for s in sources {
        s.start();
    }
    tokio::time::sleep(WARMUP).await;
    let (sent_before, received_before) = (sent(), received());
    let cpu = CpuMeter::start(pid).context("reading the server's CPU")?;
    let own_cpu = CpuMeter::start(std::process::id());
    tokio::time::sleep(args.duration).await;
    let cpu_percent = cpu.percent().unwrap_or(f64::NAN);
    let loadgen_cpu_percent = own_cpu.and_then(|c| c.percent()).unwrap_or(f64::NAN);
    for s in sources {
        s.stop();
    }
    let sent_in_window = sent().saturating_sub(sent_before);
    // Packets in flight arrive (or are repaired) before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss = rss_bytes(pid)
        .map(|b| b as f64 / (1024.0 * 1024.0))
        .unwrap_or(f64::NAN);
    let received_in_window: Vec<u64> = received()
        .iter()
        .zip(received_before)
        .map(|(after, before)| after.saturating_sub(before))
        .collect();
    Ok(Row {
        loadgen_cpu_percent,
        ..Row::from_counts(
            sent_in_window,
            &received_in_window,
            args.duration,
            args.video_bitrate,
            cpu_percent,
            rss,
        )
    })
}

/// Sending before the measurement window.
const WARMUP: Duration = Duration::from_secs(1);

pub fn print_row(r: &Row) {
    println!("{}", row_line(r));
}

pub fn row_line(r: &Row) -> String {
    format!(
        "{:>4} subscribers: server CPU {:>6.1} %  RSS {:>6.1} MiB  loss mean {:.2} % worst {:.2} %  ({:.0} packets/s forwarded; load generator CPU {:.0} %)",
        r.subscribers,
        r.server_cpu_percent,
        r.server_rss_mib,
        r.mean_loss_percent,
        r.worst_loss_percent,
        r.forwarded_packets_per_second,
        r.loadgen_cpu_percent
    )
}
