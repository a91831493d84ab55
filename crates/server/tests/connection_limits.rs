//! The cap on open connections counts websocket (signalling) connections
//! for as long as they stay open.

mod common;

use std::time::Duration;

use common::*;
use vtp_client::SocketIoClient;
use vtp_store::Role;

#[tokio::test]
async fn connections_beyond_the_cap_are_closed() {
    let mut s = TestServer::start_with(|a| a.max_connections = 3).await;
    let (_, token) = s.user("ann@example.org", Role::Student).await;
    // reqwest's pooled keep-alive connection from `user` counts too: let it go.
    s.http = reqwest::Client::new();
    tokio::time::sleep(Duration::from_millis(100)).await;

    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(
            SocketIoClient::connect(&s.url(""), Some(&token))
                .await
                .expect("within the cap"),
        );
    }
    assert!(
        SocketIoClient::connect(&s.url(""), Some(&token))
            .await
            .is_err(),
        "a fourth is refused"
    );

    // Closing one frees its place.
    open.pop().unwrap().disconnect().await;
    let mut admitted = None;
    for _ in 0..50 {
        if let Ok(c) = SocketIoClient::connect(&s.url(""), Some(&token)).await {
            admitted = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        admitted.is_some(),
        "a place freed by a closed websocket is reused"
    );
}
