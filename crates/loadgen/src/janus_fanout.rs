//! The fan-out workload of `media` against Janus's VideoRoom: one publisher
//! (synthetic VP8 at the chosen bitrate plus Opus) and N subscribers, each
//! its own plugin handle and str0m peer, counted by the same code as the
//! VTP run (`vtp_client::media`), so the two rows compare.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::Semaphore;
use vtp_client::janus::{self, JanusSession, JanusSubscriber};
use vtp_client::{AudioOptions, MediaPeer, VideoOptions};

use crate::janus_server;
use crate::media::{Fanout, Row, measure};
use crate::netns;

/// Subscribers set up at once.
const SETUP_CONCURRENCY: usize = 16;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// One fan-out run against a fresh Janus (`args.bin` is the `janus` binary).
pub async fn janus_run(args: &Fanout<'_>) -> anyhow::Result<Row> {
    anyhow::ensure!(
        netns::inside(),
        "Janus runs only inside vtp-load's private network namespace"
    );
    let server = janus_server::start(args.bin, args.server_cpu, netns::JANUS_IP).await?;
    let pid = server.process.child.id();
    let session = JanusSession::create(&server.url).await?;
    let admin = session.attach_videoroom().await?;
    let room = janus::create_room(&admin, 1234).await?;

    let publisher_peer = MediaPeer::with_bind_ip(netns::JANUS_IP);
    let count_only = args.count_only;
    let publisher = janus::publish(
        &session,
        &publisher_peer,
        room,
        Some(VideoOptions {
            bitrate_bps: args.video_bitrate,
            ..VideoOptions::default()
        }),
        Some(AudioOptions::default()),
    )
    .await
    .context("publishing to janus")?;
    publisher
        .transport
        .wait_connected(CONNECT_TIMEOUT)
        .await
        .context("the publisher's transport")?;
    let (video, audio) = match (&publisher.video, &publisher.audio) {
        (Some(v), Some(a)) => (v, a),
        _ => anyhow::bail!("janus did not accept both tracks"),
    };

    let limit = Arc::new(Semaphore::new(SETUP_CONCURRENCY));
    let mut tasks = Vec::new();
    for _ in 0..args.subscribers {
        let (limit, session, feed) = (limit.clone(), session.clone(), publisher.feed);
        tasks.push(tokio::spawn(async move {
            let _permit = limit.acquire().await;
            let peer = MediaPeer::with_bind_ip(netns::JANUS_IP).with_count_only(count_only);
            let sub = janus::subscribe(&session, &peer, room, feed).await?;
            sub.transport.wait_connected(CONNECT_TIMEOUT).await?;
            anyhow::Ok((peer, sub))
        }));
    }
    let mut subscribers: Vec<(MediaPeer, JanusSubscriber)> = Vec::new();
    for task in tasks {
        subscribers.push(task.await??);
    }
    eprintln!(
        "janus: {} subscribers connected; sending for {} s",
        args.subscribers,
        args.duration.as_secs()
    );

    let row = measure(pid, args, &[video, audio], || {
        subscribers
            .iter()
            .map(|(_, s)| s.consumers.iter().map(|c| c.stats().packets).sum())
            .collect()
    })
    .await?;
    drop(subscribers);
    drop(publisher);
    drop(session);
    drop(server);
    Ok(row)
}
