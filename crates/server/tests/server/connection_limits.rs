//! The cap on open connections counts websocket (signalling) connections
//! for as long as they stay open.

use crate::common;

use common::*;
use vtp_client::SocketIoClient;
use vtp_store::Role;

#[tokio::test]
async fn connections_beyond_the_cap_are_closed() {
    let mut s = TestServer::start_with(|a| a.max_connections = 3).await;
    let (_, token) = s.user("ann@example.org", Role::Student).await;
    // reqwest's pooled keep-alive connection from `user` counts too: let it go.
    s.http = reqwest::Client::new();
    wait_until(WAIT, "the pooled connection to close", async || {
        s.open_connections() == 0
    })
    .await;

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
    wait_until(WAIT, "the server to see the websocket close", async || {
        s.open_connections() == 2
    })
    .await;
    SocketIoClient::connect(&s.url(""), Some(&token))
        .await
        .expect("a place freed by a closed websocket is reused");
}
