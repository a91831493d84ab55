//! `vtp-load loadtest`: R rooms × P publishers × S subscribers through the
//! HTTP API and the signalling protocol, synthetic audio and video at the
//! chosen bitrates (optionally simulcast, optionally recorded), for a
//! duration; a progress line each second, then a table (or `--json`) of
//! join times, time to first frame, received bitrate, loss, jitter, NACKs
//! and the server's CPU and memory (figures in `loadtest_report`).
//!
//! Accounts: publishers connect with the instructor account that creates
//! the rooms (so they are the rooms' hosts, who may always publish and
//! record); subscribers with one registered student account per room (each
//! connection is a peer of its own).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::Value;
use tokio::sync::Semaphore;
use vtp_client::{AudioOptions, ConsumerStats, Kind, VideoOptions};

use crate::loadtest_report::{self, ServerFigures, Shape, SubscriberSample};
use crate::proc_stats::{CpuMeter, rss_bytes};
use crate::spawn::{spawn, wait_healthy};
use crate::vtp_peers::{self, Publisher, Subscriber};
use vtp_client::{IceTransport, MediaPeer};

#[derive(clap::Args)]
pub struct Args {
    /// Start this `vtp` binary on a free port with a fresh data directory.
    #[arg(long, conflicts_with = "url")]
    spawn: Option<PathBuf>,
    /// Or drive a running server at this URL.
    #[arg(long)]
    url: Option<String>,
    /// Process id of a running local server, for CPU and memory from /proc
    /// (else they are read from its /metrics when it exports them).
    #[arg(long)]
    pid: Option<u32>,
    /// An instructor (or admin) of the server (created when spawning).
    #[arg(long, default_value = "loadtest-host@example.org")]
    email: String,
    #[arg(long, default_value = "host-Tq7-vB2k-9wZr")]
    password: String,
    #[arg(long, default_value_t = 1)]
    rooms: usize,
    /// Publishers per room (each sends video and audio).
    #[arg(long, default_value_t = 1)]
    publishers: usize,
    /// Subscribers per room (each consumes every track of the room).
    #[arg(long, default_value_t = 10)]
    subscribers: usize,
    /// Video bitrate per publisher (0: no video).
    #[arg(long, default_value_t = 1_000_000)]
    video_bitrate: u32,
    /// Audio bitrate per publisher (0: no audio).
    #[arg(long, default_value_t = 32_000)]
    audio_bitrate: u32,
    /// Three simulcast layers instead of one video stream.
    #[arg(long)]
    simulcast: bool,
    /// Start recording each room (as its host) once its publishers publish.
    #[arg(long)]
    record: bool,
    /// Seconds of measurement once everyone is connected.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Clients set up at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Print the report as JSON (progress still goes to stderr).
    #[arg(long)]
    json: bool,
}

/// The most clients one run opens (each has a socket, a task and a peer).
const MAX_CLIENTS: usize = 5000;

struct Room {
    id: String,
    student_token: String,
    publishers: Vec<Publisher>,
    subscribers: Vec<Subscriber>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let clients = args.rooms * (args.publishers + args.subscribers);
    if args.rooms == 0 || args.publishers == 0 {
        bail!("--rooms and --publishers must be at least 1");
    }
    if clients > MAX_CLIENTS {
        bail!("{clients} clients is more than this tool opens ({MAX_CLIENTS})");
    }
    if args.video_bitrate == 0 && args.audio_bitrate == 0 {
        bail!("give a video or an audio bitrate");
    }
    let (spawned, base) = match (&args.spawn, &args.url) {
        (Some(bin), _) => {
            let (s, base) = spawn(bin, &args.email, &args.password, &[])?;
            (Some(s), base)
        }
        (None, Some(url)) => (None, url.trim_end_matches('/').to_string()),
        (None, None) => bail!("give --spawn <vtp binary> or --url <server>"),
    };
    let pid = spawned.as_ref().map(|s| s.child.id()).or(args.pid);
    let http = reqwest::Client::new();
    wait_healthy(&http, &base).await;
    let host = vtp_peers::login(&http, &base, &args.email, &args.password).await?;
    let run_id = crate::spawn::rand_suffix();

    let mut rooms = Vec::new();
    for r in 0..args.rooms {
        let capacity = args.publishers + args.subscribers + 1;
        let id =
            vtp_peers::create_room(&http, &base, &host, &format!("load {r}"), capacity).await?;
        let email = format!("loadtest-{run_id}-{r}@example.org");
        let student_token = vtp_peers::register(&http, &base, &email).await?;
        rooms.push(Room {
            id,
            student_token,
            publishers: Vec::new(),
            subscribers: Vec::new(),
        });
    }

    let limit = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let mut errors = 0;
    // Publishers, their sources started at once.
    let video = (args.video_bitrate > 0).then(|| VideoOptions {
        bitrate_bps: args.video_bitrate,
        simulcast: args.simulcast,
        ..VideoOptions::default()
    });
    let audio = (args.audio_bitrate > 0).then(|| AudioOptions {
        bitrate_bps: args.audio_bitrate,
        ..AudioOptions::default()
    });
    let mut tasks = Vec::new();
    for (r, room) in rooms.iter().enumerate() {
        for _ in 0..args.publishers {
            let (limit, base, host, id) =
                (limit.clone(), base.clone(), host.clone(), room.id.clone());
            let (video, audio) = (video.clone(), audio.clone());
            tasks.push((
                r,
                tokio::spawn(async move {
                    let _permit = limit.acquire().await;
                    vtp_peers::publish(&base, &host, &id, video, audio, IceTransport::Udp).await
                }),
            ));
        }
    }
    for (r, task) in tasks {
        match task.await? {
            Ok(p) => {
                p.producers.iter().for_each(|p| p.start());
                rooms[r].publishers.push(p);
            }
            Err(e) => errors += report_error(errors, "publish", &e),
        }
    }
    if args.record {
        for room in rooms.iter().filter(|r| !r.publishers.is_empty()) {
            let url = format!("{base}/api/v1/rooms/{}/recording", room.id);
            let resp = http.post(url).bearer_auth(&host).send().await?;
            if !resp.status().is_success() {
                bail!("starting the recording: {}", resp.text().await?);
            }
        }
    }
    eprintln!(
        "{} publishers publishing; subscribing",
        rooms.iter().map(|r| r.publishers.len()).sum::<usize>()
    );

    // Subscribers.
    let mut tasks = Vec::new();
    for (r, room) in rooms.iter().enumerate() {
        let producers: Vec<Value> = room
            .publishers
            .iter()
            .flat_map(|p| p.producer_ids.clone())
            .collect();
        for _ in 0..args.subscribers {
            let (limit, base, token, id, producers) = (
                limit.clone(),
                base.clone(),
                room.student_token.clone(),
                room.id.clone(),
                producers.clone(),
            );
            tasks.push((
                r,
                tokio::spawn(async move {
                    let _permit = limit.acquire().await;
                    vtp_peers::subscribe(&base, &token, &id, &producers, MediaPeer::new()).await
                }),
            ));
        }
    }
    for (r, task) in tasks {
        match task.await? {
            Ok(s) => rooms[r].subscribers.push(s),
            Err(e) => errors += report_error(errors, "subscribe", &e),
        }
    }

    // The measurement window.
    let before: Vec<Vec<ConsumerStats>> = all_subscribers(&rooms).map(consumer_stats).collect();
    let cpu = pid.and_then(CpuMeter::start);
    let metrics_before = remote_cpu_seconds(&http, &base, pid).await;
    let window = Instant::now();
    let duration = Duration::from_secs(args.duration);
    let mut last = Tick {
        at: Instant::now(),
        cpu: pid.and_then(CpuMeter::start),
        bytes: 0,
    };
    while window.elapsed() < duration {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (line, bytes) = progress(&rooms, window.elapsed(), &last);
        eprintln!("{line}");
        last = Tick {
            at: Instant::now(),
            cpu: pid.and_then(CpuMeter::start),
            bytes,
        };
    }
    let elapsed = window.elapsed();
    let server = ServerFigures {
        cpu_percent: match (cpu, metrics_before) {
            (Some(c), _) => c.percent(),
            (None, Some(b)) => remote_cpu_seconds(&http, &base, None)
                .await
                .map(|a| 100.0 * (a - b) / elapsed.as_secs_f64()),
            _ => None,
        },
        rss_mib: match pid {
            Some(p) => rss_bytes(p).map(|b| b as f64 / (1024.0 * 1024.0)),
            None => remote_metric(&http, &base, "process_resident_memory_bytes")
                .await
                .map(|b| b / (1024.0 * 1024.0)),
        },
    };
    let samples: Vec<SubscriberSample> = all_subscribers(&rooms)
        .zip(before)
        .map(|(s, before)| sample(s, &before))
        .collect();
    let publisher_joins: Vec<f64> = rooms
        .iter()
        .flat_map(|r| r.publishers.iter().map(|p| p.joined.join_ms))
        .collect();
    if args.record {
        for room in &rooms {
            let url = format!("{base}/api/v1/rooms/{}/recording", room.id);
            let _ = http.delete(url).bearer_auth(&host).send().await;
        }
    }
    let shape = Shape {
        rooms: args.rooms,
        publishers_per_room: args.publishers,
        subscribers_per_room: args.subscribers,
        video_bitrate: args.video_bitrate,
        audio_bitrate: args.audio_bitrate,
        simulcast: args.simulcast,
        record: args.record,
        duration_s: elapsed.as_secs_f64(),
    };
    let report = loadtest_report::aggregate(shape, &publisher_joins, &samples, errors, server);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", loadtest_report::render(&report));
    }
    drop(rooms);
    drop(spawned);
    Ok(())
}

/// Prints the first few errors; returns 1 (to count it).
fn report_error(so_far: usize, what: &str, e: &anyhow::Error) -> usize {
    if so_far < 3 {
        eprintln!("{what} failed: {e:#}");
    }
    1
}

fn all_subscribers(rooms: &[Room]) -> impl Iterator<Item = &Subscriber> {
    rooms.iter().flat_map(|r| r.subscribers.iter())
}

fn consumer_stats(s: &Subscriber) -> Vec<ConsumerStats> {
    s.consumers.iter().map(|c| c.stats()).collect()
}

fn sample(s: &Subscriber, before: &[ConsumerStats]) -> SubscriberSample {
    let now = consumer_stats(s);
    let ms = |a: Instant, b: Instant| a.saturating_duration_since(b).as_secs_f64() * 1000.0;
    SubscriberSample {
        join_ms: s.joined.join_ms,
        ttff_ms: s
            .consumers
            .iter()
            .zip(&now)
            .filter(|(c, _)| c.kind() == Kind::Video)
            .map(|(_, st)| st.first_keyframe_at.map(|t| ms(t, s.resumed_at)))
            .collect(),
        window_bytes: now
            .iter()
            .zip(before)
            .map(|(n, b)| n.bytes.saturating_sub(b.bytes))
            .sum(),
        packets: now.iter().map(|c| c.packets).sum(),
        lost: now.iter().map(|c| c.lost).sum(),
        frames: now.iter().map(|c| c.frames).sum(),
        nacks_sent: now.iter().map(|c| c.nacks_sent).sum(),
        jitter_us: now.iter().map(|c| c.jitter_us).collect(),
    }
}

/// The previous progress line's point in time.
struct Tick {
    at: Instant,
    cpu: Option<CpuMeter>,
    /// Payload bytes received by every subscriber until then.
    bytes: u64,
}

/// One progress line (clients, received rate since the last line, loss so
/// far, server CPU since the last line) and the bytes received until now.
fn progress(rooms: &[Room], elapsed: Duration, last: &Tick) -> (String, u64) {
    let (mut subs, mut bytes, mut packets, mut lost) = (0, 0u64, 0u64, 0u64);
    for s in all_subscribers(rooms) {
        subs += 1;
        for c in consumer_stats(s) {
            bytes += c.bytes;
            packets += c.packets;
            lost += c.lost;
        }
    }
    let publishers: usize = rooms.iter().map(|r| r.publishers.len()).sum();
    let seconds = last.at.elapsed().as_secs_f64().max(1e-6);
    let line = format!(
        "t={:>3.0}s  {publishers} publishers  {subs} subscribers  receiving {:.1} Mbit/s  loss {:.3} %  server CPU {}",
        elapsed.as_secs_f64(),
        bytes.saturating_sub(last.bytes) as f64 * 8.0 / seconds / 1e6,
        100.0 * lost as f64 / (packets + lost).max(1) as f64,
        last.cpu
            .as_ref()
            .and_then(CpuMeter::percent)
            .map(|c| format!("{c:.0} %"))
            .unwrap_or_else(|| "n/a".into())
    );
    (line, bytes)
}

/// The server's CPU seconds from its `/metrics`, when no local pid is known.
async fn remote_cpu_seconds(http: &reqwest::Client, base: &str, pid: Option<u32>) -> Option<f64> {
    match pid {
        Some(_) => None,
        None => remote_metric(http, base, "process_cpu_seconds_total").await,
    }
}

async fn remote_metric(http: &reqwest::Client, base: &str, name: &str) -> Option<f64> {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    loadtest_report::metric(&text, name)
}
