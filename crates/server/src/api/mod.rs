//! The HTTP API of docs/protocol.md ("HTTP API") under `/api/v1`, its OpenAPI document, the
//! human-readable API page, and the layers every request passes through.
//!
//! Handlers are thin: they check who is calling and what was sent, call the
//! store, and shape the answer. They know nothing of sockets or media.

pub mod audit;
pub mod auth;
pub mod calendar;
pub mod caller;
pub mod client_addr;
pub mod dto;
pub mod exports;
pub mod extract;
pub mod files;
pub mod health;
pub mod links;
pub mod live;
pub mod members;
pub mod metrics;
pub mod operations;
pub mod paging;
pub mod recordings;
pub mod request_context;
pub mod room_recording;
pub mod rooms;
pub mod schema;
pub mod two_factor;
pub mod user_admin;
pub mod users;
pub mod web;
pub mod webhooks;

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;
use schema::CommonResponses;

#[derive(OpenApi)]
#[openapi(
    info(title = "VTP API", description = "Accounts, users, rooms and recordings of the VTP live classroom."),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Sign-in and tokens"),
        (name = "users", description = "Account administration"),
        (name = "rooms", description = "Classrooms"),
        (name = "recordings", description = "Recorded sessions: listing, downloads (with ranges), deletion, exports to MP4"),
        (name = "operations", description = "Probes for operators")
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.bearer_format = Some("JWT".into());
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// The OpenAPI document and the router it describes, built together so they cannot drift.
fn api_routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    let (router, mut doc) = OpenApiRouter::with_openapi(doc)
        .nest(
            "/api/v1",
            OpenApiRouter::new()
                .merge(auth::router())
                .merge(two_factor::router())
                .merge(users::router())
                .merge(user_admin::router())
                .merge(rooms::router())
                .merge(live::router())
                .merge(members::router())
                .merge(calendar::router())
                .merge(recordings::router())
                .merge(exports::router())
                .merge(links::router())
                .merge(room_recording::router())
                .merge(health::router())
                // Operations: the audit log and webhooks (issue 20).
                .merge(audit::router())
                .merge(webhooks::router())
                .merge(operations::router()),
        )
        .split_for_parts();
    // After the routes are in: `ApiDoc`'s own modifiers run before.
    CommonResponses.modify(&mut doc);
    (router, doc)
}

/// The OpenAPI document, for tools and tests.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_routes().1
}

/// Limits and cross-origin settings of the HTTP layer.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    pub max_body_bytes: usize,
    /// Empty: same origin only. `*`: any origin.
    pub cors_origins: Vec<String>,
    /// The built web app, served at `/` (see [`web`]).
    pub web_dir: PathBuf,
    /// Whether `/metrics` is on this port, and its token.
    pub metrics: metrics::MetricsAccess,
}

pub fn router(state: AppState, options: &HttpOptions) -> Router {
    let (mut api, openapi) = api_routes();
    if options.metrics.public {
        api = api.merge(metrics::routes(options.metrics.token.clone()));
    }
    let openapi_json: Arc<str> = openapi
        .to_pretty_json()
        .unwrap_or_else(|_| "{}".into())
        .into();
    let mut app = api
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let json = openapi_json.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "application/json")],
                        json.to_string(),
                    )
                }
            }),
        )
        .merge(web::docs_routes())
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .fallback({
            let web_dir = Arc::new(options.web_dir.clone());
            move |request: axum::extract::Request| async move { web::serve(&web_dir, request).await }
        })
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(options.max_body_bytes))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("a request handler panicked");
            ApiError::new(ErrorCode::Internal, "internal error").into_response()
        }))
        // Paths without their query: a signed link's signature is a
        // credential and must not reach the logs.
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
                tracing::debug_span!("request", method = %request.method(), path = %request.uri().path())
            }),
        )
        // Outside the trace layer, so that its span (and every line under it)
        // carries the request id.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            request_context::layer,
        ));
    if let Some(cors) = cors_layer(&options.cors_origins) {
        app = app.layer(cors);
    }
    app.with_state(state)
}

fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    let origins: Vec<&str> = origins
        .iter()
        .map(|o| o.trim())
        .filter(|o| !o.is_empty())
        .collect();
    if origins.is_empty() {
        return None;
    }
    let layer = CorsLayer::new()
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PATCH,
            Method::PUT,
            Method::DELETE,
        ])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE]);
    if origins.contains(&"*") {
        return Some(layer.allow_origin(Any));
    }
    let list: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    Some(layer.allow_origin(AllowOrigin::list(list)))
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("{method} is not allowed on {}", uri.path()),
    )
    .into_response()
}
