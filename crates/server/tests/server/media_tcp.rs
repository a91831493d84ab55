//! Media over ICE-TCP through the real server, as from a network that
//! blocks UDP: the Rust client's peers use only the SFU's passive TCP
//! candidate (one loopback connection per transport, RFC 4571 frames); a
//! publisher's audio and video reach a subscriber whole.

use crate::common;

use std::time::Duration;

use common::media::{publish_over, subscribe_over};
use common::*;
use serde_json::json;
use vtp_client::IceTransport;
use vtp_store::Role;

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test]
async fn a_publisher_and_a_subscriber_over_ice_tcp_only() {
    let s = TestServer::start().await;
    let (_, teacher) = s.user("t@example.org", Role::Instructor).await;
    let (_, ann) = s.user("ann@example.org", Role::Student).await;
    let room = s.room(&teacher, json!({})).await;

    let a = publish_over(&s, &teacher, &room, IceTransport::Tcp).await;
    let b = subscribe_over(&s, &ann, &room, &a.ids, IceTransport::Tcp).await;
    a.video.start();
    a.audio.start();
    wait_for(
        WAIT,
        "30 frames and 50 audio packets over TCP",
        async || {
            let (v, au) = (b.video.stats(), b.audio.stats());
            if v.frames >= 30 && au.packets >= 50 {
                Ok(())
            } else {
                Err((v, au))
            }
        },
    )
    .await;
    a.video.stop();
    a.audio.stop();
    let (v, au) = (b.video.stats(), b.audio.stats());
    assert_eq!((v.integrity_failures, au.integrity_failures), (0, 0));
    // TCP loses nothing, and neither may the SFU or the client on top.
    assert_eq!((v.lost, au.lost), (0, 0), "{v:?} {au:?}");
    assert!(v.keyframes >= 1, "{v:?}");

    // The operator sees two ICE-TCP connections and no UDP at all.
    let text = s.metrics().await;
    let metric = |name: &str| -> f64 {
        metric_in(&text, name).unwrap_or_else(|| panic!("{name} missing from /metrics:\n{text}"))
    };
    assert_eq!(metric("vtp_sfu_tcp_connections"), 2.0);
    assert_eq!(metric("vtp_sfu_datagrams_received_total"), 0.0);
    assert_eq!(
        metric("vtp_transport_failures_total{reason=\"ice_timeout\"}"),
        0.0
    );
}
