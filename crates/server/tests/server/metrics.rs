//! `/metrics`: who may read it (`--metrics-bind`, `--metrics-token`) and
//! what it counts: HTTP requests by route template, Socket.IO events by
//! name and result, the certificate's expiry (docs/deploy.md "Metrics",
//! docs/operations.md).

use crate::common;

use common::pki::{CertFiles, Pki};
use common::*;
use reqwest::StatusCode;
use serde_json::json;
use vtp_server::Server;
use vtp_server::config::Secret;
use vtp_store::Role;

const TOKEN: &str = "metrics-token-for-tests-0123456789";

fn private_url(s: &TestServer) -> String {
    format!(
        "http://{}/metrics",
        s.metrics_addr.expect("--metrics-bind set")
    )
}

#[tokio::test]
async fn metrics_bind_moves_the_page_off_the_public_port() {
    let s = TestServer::start_with(|a| {
        a.metrics.metrics_bind = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let public = s.http.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(public.status(), StatusCode::NOT_FOUND);
    let private = s.http.get(private_url(&s)).send().await.unwrap();
    assert_eq!(private.status(), StatusCode::OK);
    let content_type = private.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let text = private.text().await.unwrap();
    assert_eq!(metric_in(&text, "vtp_live_rooms"), Some(0.0), "{text}");
    assert!(text.ends_with("# EOF\n"), "a complete OpenMetrics page");
    // Only /metrics there: the API stays on the public port.
    let base = private_url(&s).replace("/metrics", "");
    let api = s
        .http
        .get(format!("{base}/api/v1/rooms"))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::NOT_FOUND);
    s.stop().await;
}

#[tokio::test]
async fn metrics_token_is_required() {
    let s = TestServer::start_with(|a| {
        a.metrics.metrics_token = Some(Secret::new(TOKEN));
    })
    .await;
    let bare = s.http.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(bare.status(), StatusCode::UNAUTHORIZED);
    assert!(bare.headers().contains_key("www-authenticate"));
    let body: serde_json::Value = bare.json().await.unwrap();
    assert_eq!(code(&body), "unauthorized");
    for wrong in ["", "metrics-token-for-tests-012345678", "x"] {
        let resp = s
            .http
            .get(s.url("/metrics"))
            .bearer_auth(wrong)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "token {wrong:?}");
    }
    let ok = s
        .http
        .get(s.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert!(ok.text().await.unwrap().contains("vtp_live_peers"));
    // The rest of the API does not ask for it.
    assert_eq!(s.get("/health", None).await.0, StatusCode::OK);
    s.stop().await;
}

#[tokio::test]
async fn a_short_metrics_token_stops_the_start() {
    let home = Home::new().await;
    let mut args = home.args();
    args.metrics.metrics_token = Some(Secret::new("short"));
    let err = Server::build(&args).await.err().expect("refused");
    assert!(format!("{err:#}").contains("--metrics-token"), "{err:#}");
}

#[tokio::test]
async fn http_requests_are_counted_by_route_template_not_path() {
    let s = TestServer::start().await;
    let (_, token) = s.user("ann@example.org", Role::Student).await;
    for id in ["r-one", "r-two", "r-three"] {
        let (status, _) = s.get(&format!("/api/v1/rooms/{id}"), Some(&token)).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let (status, _) = s.get("/no/such/page/12345", None).await;
    assert!(status.is_client_error() || status.is_success());
    let text = s.metrics().await;
    assert_eq!(
        metric_in(
            &text,
            r#"vtp_http_requests_total{method="GET",route="/api/v1/rooms/{id}",status="4xx"}"#
        ),
        Some(3.0),
        "{text}"
    );
    assert!(
        metric_in(
            &text,
            r#"vtp_http_request_duration_seconds_count{method="GET",route="/api/v1/rooms/{id}"}"#
        ) == Some(3.0),
        "{text}"
    );
    for raw in ["r-one", "12345", "/no/such"] {
        assert!(!text.contains(raw), "a raw path in a label: {raw}");
    }
    s.stop().await;
}

#[tokio::test]
async fn socketio_events_are_counted_by_name_and_result() {
    let s = TestServer::start().await;
    let (_, token) = s.user("ann@example.org", Role::Student).await;
    let socket = s.socket(&token).await;
    wait_until(WAIT, "the connection to count", async || {
        s.metric("vtp_signalling_connections").await == 1.0
    })
    .await;
    let missing = json!({ "roomId": "00000000-0000-4000-8000-000000000000" });
    let _ = socket.request("get-room-info", missing.clone()).await;
    let _ = socket.request("get-room-info", missing).await;
    for i in 0..3 {
        let _ = socket.request(&format!("made-up-{i}"), json!({})).await;
    }
    let text = s.metrics().await;
    let refused = metric_in(
        &text,
        r#"vtp_signalling_events_total{event="get-room-info",result="not_found"}"#,
    );
    assert_eq!(refused, Some(2.0), "{text}");
    assert_eq!(
        metric_in(
            &text,
            r#"vtp_signalling_events_total{event="unknown",result="bad_request"}"#
        ),
        Some(3.0),
        "{text}"
    );
    assert!(
        !text.contains("made-up"),
        "client-chosen names never become labels"
    );
    assert_eq!(
        metric_in(
            &text,
            r#"vtp_signalling_ack_duration_seconds_count{event="get-room-info"}"#
        ),
        Some(2.0)
    );
    s.stop().await;
}

#[tokio::test]
async fn the_certificate_expiry_and_the_disk_are_exported() {
    let pki = Pki::new();
    let leaf = pki.leaf(1);
    let files = CertFiles::new(&leaf);
    let s = TestServer::start_with(|a| {
        a.tls.tls_cert = Some(files.cert.clone());
        a.tls.tls_key = Some(files.key.clone());
        a.metrics.metrics_bind = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let text = s
        .http
        .get(private_url(&s))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (_, not_after) = vtp_server::tls::acme::validity(&leaf.der).expect("validity");
    let expected = not_after
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as f64;
    assert_eq!(
        metric_in(&text, "vtp_tls_certificate_expiry_timestamp_seconds"),
        Some(expected),
        "{text}"
    );
    let free = metric_in(&text, "vtp_data_dir_free_bytes").expect("disk free");
    let size = metric_in(&text, "vtp_data_dir_size_bytes").expect("disk size");
    assert!(free > 0.0 && free <= size, "{free} of {size}");
    assert!(metric_in(&text, "process_open_fds").is_some_and(|n| n > 3.0));
    assert!(metric_in(&text, "vtp_store_query_duration_seconds_count").is_some_and(|n| n > 0.0));
    s.stop().await;
}
