//! The signalling load: N Socket.IO clients joined into rooms of `room_size`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::Serialize;
use serde_json::json;
use tokio::sync::Semaphore;
use vtp_client::SocketIoClient;

use crate::proc_stats::{CpuMeter, rss_bytes};
use crate::spawn::{post, spawn};

#[derive(clap::Args)]
pub struct Args {
    /// Start this `vtp` binary on a free port with a fresh data directory.
    #[arg(long, conflicts_with = "server")]
    spawn: Option<PathBuf>,
    /// Or drive a running server at this URL (give --pid to read its memory).
    #[arg(long)]
    server: Option<String>,
    /// Process id of the running server, for memory and CPU figures.
    #[arg(long)]
    pid: Option<u32>,
    /// An instructor account of the running server (created when spawning).
    #[arg(long, default_value = "load-teacher@example.org")]
    instructor_email: String,
    #[arg(long, default_value = "teacher-Tq7-vB2k-9wZr")]
    instructor_password: String,
    /// Socket.IO clients to open.
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// Clients per room.
    #[arg(long, default_value_t = 20)]
    room_size: usize,
    /// Connects and joins in flight at once.
    #[arg(long, default_value_t = 50)]
    concurrency: usize,
    /// Seconds to stay idle before reading the server's memory.
    #[arg(long, default_value_t = 5)]
    idle_secs: u64,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Report {
    clients: usize,
    rooms: usize,
    room_size: usize,
    concurrency: usize,
    connect_ms: Percentiles,
    join_ms: Percentiles,
    joins_per_second: f64,
    errors: usize,
    server_cpu_percent_during_joins: Option<f64>,
    server_rss_before_mib: Option<f64>,
    /// After connecting, before joining.
    server_rss_connected_mib: Option<f64>,
    server_rss_after_mib: Option<f64>,
    server_kib_per_connection: Option<f64>,
}

/// Percentiles of a sample (NaN, shown as `null` in JSON, when empty).
#[derive(Debug, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

pub fn percentiles(mut samples: Vec<f64>) -> Percentiles {
    if samples.is_empty() {
        return Percentiles {
            p50: f64::NAN,
            p99: f64::NAN,
            max: f64::NAN,
        };
    }
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    Percentiles {
        p50: at(0.5),
        p99: at(0.99),
        max: at(1.0),
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let (spawned, base) = match (&args.spawn, &args.server) {
        (Some(bin), _) => {
            let (s, base) = spawn(bin, &args.instructor_email, &args.instructor_password, &[])?;
            (Some(s), base)
        }
        (None, Some(url)) => (None, url.trim_end_matches('/').to_string()),
        (None, None) => bail!("give --spawn <vtp binary> or --server <url>"),
    };
    let pid = spawned.as_ref().map(|s| s.child.id()).or(args.pid);
    let http = reqwest::Client::new();
    crate::spawn::wait_healthy(&http, &base).await;

    // Rooms, and one student account per room (all its clients share it:
    // each connection is a peer of its own).
    let login = post(
        &http,
        format!("{base}/api/v1/auth/login"),
        None,
        json!({ "email": args.instructor_email, "password": args.instructor_password }),
    )
    .await?;
    let teacher = login["accessToken"]
        .as_str()
        .context("no access token")?
        .to_string();
    let rooms = args.clients.div_ceil(args.room_size.max(1));
    let mut room_ids = Vec::with_capacity(rooms);
    let mut tokens = Vec::with_capacity(rooms);
    let run_id = std::process::id();
    for r in 0..rooms {
        let room = post(&http, format!("{base}/api/v1/rooms"), Some(&teacher), json!({ "title": format!("load {r}"), "settings": { "maxParticipants": args.room_size + 1, "access": "signed_in" } })).await?;
        room_ids.push(room["id"].as_str().context("room id")?.to_string());
        let email = format!("load-{run_id}-{r}@example.org");
        let reg = post(&http, format!("{base}/api/v1/auth/register"), None, json!({ "email": email, "password": "load-Tq7-vB2k-9wZr", "displayName": format!("Student {r}") })).await?;
        tokens.push(reg["accessToken"].as_str().context("token")?.to_string());
    }
    // A class starts when a host opens it (students alone get
    // `not_started`): one teacher connection per room holds its session
    // (the `+ 1` of `maxParticipants`), before anything is measured.
    let mut hosts = Vec::with_capacity(rooms);
    for room in &room_ids {
        let host = SocketIoClient::connect(&base, Some(&teacher))
            .await
            .context("the teacher connects")?;
        host.request("join-room", json!({ "roomId": room }))
            .await
            .context("the teacher opens the room")?;
        hosts.push(host);
    }
    eprintln!("set up {rooms} rooms; connecting {} clients", args.clients);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before = pid.and_then(rss_bytes);

    let limit = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let mut tasks = Vec::with_capacity(args.clients);
    for i in 0..args.clients {
        let (limit, base, token) = (
            limit.clone(),
            base.clone(),
            tokens[i / args.room_size].clone(),
        );
        tasks.push(tokio::spawn(async move {
            let _permit = limit.acquire().await;
            let started = Instant::now();
            let client = SocketIoClient::connect(&base, Some(&token)).await;
            (client, started.elapsed().as_secs_f64() * 1000.0)
        }));
    }
    let mut clients = Vec::with_capacity(args.clients);
    let mut connect_ms = Vec::with_capacity(args.clients);
    let mut errors = 0;
    for task in tasks {
        match task.await? {
            (Ok(client), ms) => {
                clients.push(Arc::new(client));
                connect_ms.push(ms);
            }
            (Err(e), _) => {
                errors += 1;
                if errors <= 3 {
                    eprintln!("connect failed: {e}");
                }
            }
        }
    }
    eprintln!("{} connected; joining", clients.len());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_connected = pid.and_then(rss_bytes);

    let cpu = pid.and_then(CpuMeter::start);
    let joins_started = Instant::now();
    let mut tasks = Vec::with_capacity(clients.len());
    for (i, client) in clients.iter().enumerate() {
        let (limit, client, room) = (
            limit.clone(),
            client.clone(),
            room_ids[i / args.room_size].clone(),
        );
        tasks.push(tokio::spawn(async move {
            let _permit = limit.acquire().await;
            let started = Instant::now();
            let result = client.request("join-room", json!({ "roomId": room })).await;
            (result.map(|_| ()), started.elapsed().as_secs_f64() * 1000.0)
        }));
    }
    let mut join_ms = Vec::with_capacity(clients.len());
    for task in tasks {
        match task.await? {
            (Ok(()), ms) => join_ms.push(ms),
            (Err(e), _) => {
                errors += 1;
                if errors <= 3 {
                    eprintln!("join failed: {e}");
                }
            }
        }
    }
    let joins_elapsed = joins_started.elapsed().as_secs_f64();
    let cpu_percent = cpu.and_then(|c| c.percent());
    let joined = join_ms.len();

    eprintln!("{joined} joined; idle {} s", args.idle_secs);
    tokio::time::sleep(Duration::from_secs(args.idle_secs)).await;
    let rss_after = pid.and_then(rss_bytes);
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let report = Report {
        clients: args.clients,
        rooms,
        room_size: args.room_size,
        concurrency: args.concurrency,
        connect_ms: percentiles(connect_ms),
        join_ms: percentiles(join_ms),
        joins_per_second: joined as f64 / joins_elapsed.max(1e-6),
        errors,
        server_cpu_percent_during_joins: cpu_percent,
        server_rss_before_mib: rss_before.map(mib),
        server_rss_connected_mib: rss_connected.map(mib),
        server_rss_after_mib: rss_after.map(mib),
        server_kib_per_connection: match (rss_before, rss_after) {
            (Some(b), Some(a)) if !clients.is_empty() => {
                Some(a.saturating_sub(b) as f64 / 1024.0 / clients.len() as f64)
            }
            _ => None,
        },
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    for client in clients {
        if let Ok(client) = Arc::try_unwrap(client) {
            client.disconnect().await;
        }
    }
    drop(hosts);
    drop(spawned);
    Ok(())
}

fn print_table(r: &Report) {
    let opt = |v: Option<f64>, unit: &str| {
        v.map(|v| format!("{v:.1} {unit}"))
            .unwrap_or_else(|| "n/a".into())
    };
    println!(
        "signalling load: {} clients in {} rooms of {} ({} in flight)",
        r.clients, r.rooms, r.room_size, r.concurrency
    );
    println!(
        "  connect        p50 {:>8.2} ms   p99 {:>8.2} ms   max {:>8.2} ms",
        r.connect_ms.p50, r.connect_ms.p99, r.connect_ms.max
    );
    println!(
        "  join-room ack  p50 {:>8.2} ms   p99 {:>8.2} ms   max {:>8.2} ms",
        r.join_ms.p50, r.join_ms.p99, r.join_ms.max
    );
    println!("  joins/s        {:.0}", r.joins_per_second);
    println!("  errors         {}", r.errors);
    println!(
        "  server CPU during joins  {}",
        opt(r.server_cpu_percent_during_joins, "%")
    );
    println!(
        "  server RSS     before {}   connected {}   joined and idle {}",
        opt(r.server_rss_before_mib, "MiB"),
        opt(r.server_rss_connected_mib, "MiB"),
        opt(r.server_rss_after_mib, "MiB")
    );
    println!(
        "  per connection {}",
        opt(r.server_kib_per_connection, "KiB")
    );
}
