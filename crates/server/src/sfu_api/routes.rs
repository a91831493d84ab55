//! `/sfu/v1`: the routes of docs/protocol.md, "SFU control API", behind the
//! shared secret. They are made from the control API's table
//! ([`SfuRequest::ROUTES`]): each turns its path and body into an
//! [`SfuRequest`], hands it to [`SfuControl::call`] and answers with the
//! response's JSON. `GET /events` is the one route of its own: a
//! server-sent-event stream of the SFU's events (what closed or paused as a
//! consequence of something else) for API nodes.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{FromRequest, Request, State};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, get, on};
use serde_json::{Value, json};
use vtp_sfu_driver::control::{REST_PREFIX, RestMethod, Route};
use vtp_sfu_driver::{SfuControl, SfuError, SfuErrorCode, SfuRequest, SfuResponse};

use crate::api::extract::{Json, Path};
use crate::config::Secret;
use crate::error::{ApiError, ErrorCode};

#[derive(Clone)]
struct SfuApi {
    sfu: Arc<dyn SfuControl>,
}

impl From<SfuError> for ApiError {
    fn from(err: SfuError) -> ApiError {
        let code = match err.code {
            SfuErrorCode::BadRequest => ErrorCode::BadRequest,
            SfuErrorCode::Unauthorized => ErrorCode::Unauthorized,
            SfuErrorCode::Forbidden => ErrorCode::Forbidden,
            SfuErrorCode::NotFound => ErrorCode::NotFound,
            SfuErrorCode::Conflict => ErrorCode::Conflict,
            SfuErrorCode::RateLimited => ErrorCode::RateLimited,
            SfuErrorCode::LimitReached => ErrorCode::LimitReached,
            SfuErrorCode::Unavailable => ErrorCode::Unavailable,
            SfuErrorCode::Internal => ErrorCode::Internal,
        };
        ApiError::new(code, err.message)
    }
}

/// The `/sfu/v1` routes for `sfu`, behind `secret`, ready to merge into
/// any router: one route per operation of the control API's table
/// ([`SfuRequest::ROUTES`]), plus the event stream.
pub fn router<S>(sfu: Arc<dyn SfuControl>, secret: Secret) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let secret = Arc::new(secret);
    let mut routes = Router::new().route(&format!("{REST_PREFIX}/events"), get(events));
    for &route in SfuRequest::ROUTES {
        let handler = move |State(api): State<SfuApi>,
                            Path(params): Path<HashMap<String, String>>,
                            request: Request| async move {
            answer(&api, route, params, request).await
        };
        let method = match route.method {
            RestMethod::Get => MethodFilter::GET,
            RestMethod::Put => MethodFilter::PUT,
            RestMethod::Post => MethodFilter::POST,
            RestMethod::Delete => MethodFilter::DELETE,
        };
        // Rows with the same path (a room's GET, PUT, DELETE) merge.
        routes = routes.route(&format!("{REST_PREFIX}{}", route.path), on(method, handler));
    }
    routes
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            let secret = secret.clone();
            async move { require_secret(&secret, request, next).await }
        }))
        .with_state(SfuApi { sfu })
}

/// One REST call: the request from the path (and the JSON body, for the
/// operations that take one), answered by the SFU.
async fn answer(
    api: &SfuApi,
    route: Route,
    params: HashMap<String, String>,
    request: Request,
) -> Result<Json<SfuResponse>, ApiError> {
    let body = if route.has_body {
        let Json(body) = Json::<Value>::from_request(request, &()).await?;
        Some(body)
    } else {
        None
    };
    let request = SfuRequest::from_rest(&route, params, body)?;
    Ok(Json(api.sfu.call(request).await?))
}

/// The whole HTTP surface of an `sfu` node: `/health`, `/ready` and the
/// control API; anything else is the API's JSON 404.
pub fn node_router(sfu: Arc<dyn SfuControl>, secret: Secret) -> Router {
    let ready_sfu = sfu.clone();
    Router::new()
        .route("/health", get(|| async { Json(json!({ "status": "ok" })) }))
        .route(
            "/ready",
            get(move || {
                let sfu = ready_sfu.clone();
                async move {
                    match sfu.health().await {
                        Ok(h) if h.running => {
                            (axum::http::StatusCode::OK, Json(json!({ "status": "ok" })))
                        }
                        _ => (
                            axum::http::StatusCode::SERVICE_UNAVAILABLE,
                            Json(json!({ "status": "unavailable" })),
                        ),
                    }
                }
            }),
        )
        .merge(router(sfu, secret))
        .fallback(|uri: axum::http::Uri| async move {
            ApiError::not_found(format!("no route for {}", uri.path())).into_response()
        })
}

async fn require_secret(secret: &Secret, request: Request, next: Next) -> Response {
    match crate::auth::tokens::bearer_token(request.headers()) {
        Some(token) if secret.matches(token) => next.run(request).await,
        _ => ApiError::unauthorized(
            "the SFU control API needs `Authorization: Bearer <VTP_SFU_SECRET>`",
        )
        .into_response(),
    }
}

/// The SFU's events as server-sent events, one JSON `DriverEvent` per
/// `data:` line, with a comment every 15 s so idle proxies keep it open.
async fn events(State(api): State<SfuApi>) -> impl IntoResponse {
    let receiver = api.sfu.events();
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let event = receiver.recv().await?;
        let data = serde_json::to_string(&event).unwrap_or_else(|_| "null".into());
        Some((Ok::<_, Infallible>(Event::default().data(data)), receiver))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
