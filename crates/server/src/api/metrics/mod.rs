//! `GET /metrics` for Prometheus, in the OpenMetrics text format made by
//! the `prometheus-client` crate (docs/operations.md lists every family),
//! and who may read it: see [`MetricsAccess`] and docs/deploy.md
//! ("Metrics"). Only counts: nothing that names a user or a room.
//!
//! Two kinds of figures: counted as things happen (`crate::metrics`: HTTP
//! requests through the layer in [`http`], Socket.IO events), and read at
//! scrape time from where they already live ([`snapshot`]: rooms and peers,
//! the SFU's counters with media totals and each worker's load, the
//! store's timings and row counts, the process, the disk, the
//! certificate). The media path itself only bumps plain integers in the
//! engine, copied to atomics once per worker turn
//! (`vtp_sfu::engine::MediaTotals`).

pub mod http;
pub mod snapshot;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use prometheus_client::registry::Registry;

use crate::config::Secret;
use crate::error::ApiError;
use crate::state::AppState;

/// Where `/metrics` is served and what it asks for.
#[derive(Clone, Debug, Default)]
pub struct MetricsAccess {
    /// On the public port (no `--metrics-bind`, and a token or a loopback
    /// bind; see [`MetricsAccess::from_flags`]).
    pub public: bool,
    /// `--metrics-token`: `Authorization: Bearer <token>` required.
    pub token: Option<Secret>,
}

impl MetricsAccess {
    /// The rule of docs/deploy.md: with `--metrics-bind`, only there; else
    /// on the public port when a token guards it or the port is loopback
    /// only; else nowhere (and [`MetricsAccess::warning`] says why).
    pub fn from_flags(
        bind: SocketAddr,
        metrics_bind: Option<SocketAddr>,
        token: Option<Secret>,
    ) -> Self {
        let public = metrics_bind.is_none() && (token.is_some() || bind.ip().is_loopback());
        MetricsAccess { public, token }
    }

    /// A start-up warning when `/metrics` is off for lack of a setting.
    pub fn warning(&self, metrics_bind: Option<SocketAddr>) -> Option<&'static str> {
        (!self.public && metrics_bind.is_none()).then_some(
            "/metrics is off: the HTTP port is reachable from other hosts and neither \
             --metrics-bind (VTP_METRICS_BIND) nor --metrics-token (VTP_METRICS_TOKEN) is set",
        )
    }
}

/// The content type of the page (OpenMetrics text; Prometheus asks for it).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], render(&state).await)
}

/// The whole page: the counters kept as things happen, the export
/// durations, then the scrape-time snapshot.
pub async fn render(state: &AppState) -> String {
    let snapshot = snapshot::Snapshot::take(state).await;
    let mut registry = Registry::default();
    state.metrics.register(&mut registry);
    registry.register(
        "vtp_export_duration_seconds",
        "Time an export of a recording to MP4 ran, by outcome.",
        state.exports.durations().clone(),
    );
    registry.register_collector(Box::new(snapshot));
    let mut out = String::with_capacity(32 * 1024);
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}

/// `/metrics` behind the token, if one is set, as a router to merge.
pub fn routes(token: Option<Secret>) -> Router<AppState> {
    let router = Router::new().route("/metrics", get(metrics));
    match token {
        Some(token) => router.layer(axum::middleware::from_fn(
            move |request: Request, next: Next| {
                let token = token.clone();
                async move { require_token(&token, request, next).await }
            },
        )),
        None => router,
    }
}

/// The router of `--metrics-bind`: `/metrics` and nothing else.
pub fn private_router(state: AppState, token: Option<Secret>) -> Router {
    routes(token)
        .fallback(|| async { ApiError::not_found("only /metrics is served here").into_response() })
        .with_state(state)
}

async fn require_token(token: &Secret, request: Request, next: Next) -> Response {
    match crate::auth::tokens::bearer_token(request.headers()) {
        Some(given) if token.matches(given) => next.run(request).await,
        _ => {
            let mut response = ApiError::unauthorized(
                "/metrics needs `Authorization: Bearer <VTP_METRICS_TOKEN>`",
            )
            .into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"metrics\""),
            );
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn metrics_are_public_only_on_loopback_or_behind_a_token() {
        let token = Some(Secret::new("t"));
        let open = addr("0.0.0.0:8080");
        let local = addr("127.0.0.1:8080");
        let private = Some(addr("127.0.0.1:9100"));
        assert!(MetricsAccess::from_flags(local, None, None).public);
        assert!(!MetricsAccess::from_flags(open, None, None).public);
        assert!(
            MetricsAccess::from_flags(open, None, None)
                .warning(None)
                .is_some()
        );
        assert!(MetricsAccess::from_flags(open, None, token.clone()).public);
        assert!(!MetricsAccess::from_flags(open, private, token).public);
        assert!(!MetricsAccess::from_flags(local, private, None).public);
        assert!(
            MetricsAccess::from_flags(local, private, None)
                .warning(private)
                .is_none()
        );
    }
}
