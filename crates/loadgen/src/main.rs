//! `vtp-load`: drives a VTP server with many clients and reports figures.
//!
//! `vtp-load signalling --spawn target/release/vtp --clients 1000` starts a
//! fresh server, opens the clients, joins them into rooms of 20 and reports
//! the `join-room` acknowledgement latency and the server's memory per
//! connection. `vtp-load media` fans one publisher out to N subscribers;
//! `vtp-load compare` runs that fan-out against VTP and against Janus's
//! VideoRoom (started by `janus_server`) and prints both with the ratios.
//! `vtp-load loadtest` runs R rooms × P publishers × S subscribers and
//! reports what a classroom would feel (join, first frame, loss, jitter).

mod compare;
mod janus_fanout;
mod janus_server;
mod loadtest;
mod loadtest_report;
mod media;
mod netns;
mod proc_stats;
mod signalling;
mod spawn;
mod vtp_peers;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "vtp-load", about = "Load generator for VTP")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Socket.IO joins: latency of `join-room` and memory per connection.
    Signalling(signalling::Args),
    /// Media fan-out: one publisher to N subscribers through one SFU worker.
    Media(media::Args),
    /// The fan-out against VTP and Janus, each pinned to one core: both
    /// tables, the ratios and the fraction of the physical limit.
    Compare(compare::Args),
    /// R rooms × P publishers × S subscribers: join times, time to first
    /// frame, bitrate, loss, jitter, NACKs, server CPU and memory.
    Loadtest(loadtest::Args),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Signalling(args) => signalling::run(args).await,
        Command::Media(args) => media::run(args).await,
        Command::Compare(args) => compare::run(args).await,
        Command::Loadtest(args) => loadtest::run(args).await,
    }
}
