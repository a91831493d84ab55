//! `/sfu/v1`: the routes of docs/protocol.md, "SFU control API", each a thin call of
//! [`SfuControl`], behind the shared secret.
//!
//! Additions to the seed's table (all in the same pattern): `PUT` and
//! `DELETE /rooms/{roomId}` open and close a room explicitly, `…/pause`,
//! `…/resume` for producers and consumers, `…/layers` (preferred layers)
//! for consumers, `…/restart-ice` for transports,
//! and `GET /events`, a server-sent-event stream of the SFU's events (what
//! closed or paused as a consequence of something else) for API nodes.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use vtp_sfu::engine::{ConsumerInfo, IceParameters, ProducerInfo, RouterSnapshot, RouterSummary};
use vtp_sfu::rtp::RtpCapabilities;
use vtp_sfu_driver::{
    Consume, CreateTransport, PreferredLayers, Produce, SfuControl, SfuError, SfuErrorCode,
    SfuHealth,
};

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
            SfuErrorCode::Unavailable => ErrorCode::Unavailable,
            SfuErrorCode::Internal => ErrorCode::Internal,
        };
        ApiError::new(code, err.message)
    }
}

type Answer<T> = Result<Json<T>, ApiError>;

/// `{}`: the answer of calls that only act.
#[derive(Serialize)]
struct Done {}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AddPeer {
    peer_id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RoomOpened {
    room_id: String,
    rtp_capabilities: RtpCapabilities,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PeerAdded {
    peer_id: String,
    rtp_capabilities: RtpCapabilities,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Connect {
    dtls_parameters: Value,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IceRestarted {
    ice_parameters: IceParameters,
}

/// The `/sfu/v1` routes for `sfu`, behind `secret`, ready to merge into
/// any router.
pub fn router<S>(sfu: Arc<dyn SfuControl>, secret: Secret) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let secret = Arc::new(secret);
    let room = "/sfu/v1/rooms/{room_id}";
    Router::new()
        .route("/sfu/v1/health", get(health))
        .route("/sfu/v1/events", get(events))
        .route("/sfu/v1/rooms", get(rooms))
        .route(room, get(room_details).put(open_room).delete(close_room))
        .route(&format!("{room}/peers"), post(add_peer))
        .route(
            &format!("{room}/peers/{{peer_id}}/leave"),
            post(remove_peer),
        )
        .route(&format!("{room}/transports"), post(create_transport))
        .route(
            &format!("{room}/transports/{{id}}/connect"),
            post(connect_transport),
        )
        .route(
            &format!("{room}/transports/{{id}}/restart-ice"),
            post(restart_ice),
        )
        .route(
            &format!("{room}/transports/{{id}}/close"),
            post(close_transport),
        )
        .route(&format!("{room}/producers"), post(produce))
        .route(
            &format!("{room}/producers/{{id}}/pause"),
            post(pause_producer),
        )
        .route(
            &format!("{room}/producers/{{id}}/resume"),
            post(resume_producer),
        )
        .route(
            &format!("{room}/producers/{{id}}/close"),
            post(close_producer),
        )
        .route(&format!("{room}/consumers"), post(consume))
        .route(
            &format!("{room}/consumers/{{id}}/pause"),
            post(pause_consumer),
        )
        .route(
            &format!("{room}/consumers/{{id}}/resume"),
            post(resume_consumer),
        )
        .route(
            &format!("{room}/consumers/{{id}}/layers"),
            post(set_consumer_layers),
        )
        .route(
            &format!("{room}/consumers/{{id}}/close"),
            post(close_consumer),
        )
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            let secret = secret.clone();
            async move { require_secret(&secret, request, next).await }
        }))
        .with_state(SfuApi { sfu })
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
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(token) if same_secret(token, secret.expose()) => next.run(request).await,
        _ => ApiError::unauthorized(
            "the SFU control API needs `Authorization: Bearer <VTP_SFU_SECRET>`",
        )
        .into_response(),
    }
}

/// Compares digests, so the time taken says nothing about the secret.
fn same_secret(given: &str, expected: &str) -> bool {
    let (a, b) = (
        Sha256::digest(given.as_bytes()),
        Sha256::digest(expected.as_bytes()),
    );
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

async fn health(State(api): State<SfuApi>) -> Answer<SfuHealth> {
    Ok(Json(api.sfu.health().await?))
}

async fn rooms(State(api): State<SfuApi>) -> Answer<Vec<RouterSummary>> {
    Ok(Json(api.sfu.rooms().await?))
}

async fn room_details(
    State(api): State<SfuApi>,
    Path(room_id): Path<String>,
) -> Answer<RouterSnapshot> {
    Ok(Json(api.sfu.room(&room_id).await?))
}

async fn open_room(State(api): State<SfuApi>, Path(room_id): Path<String>) -> Answer<RoomOpened> {
    let rtp_capabilities = api.sfu.open_room(&room_id).await?;
    Ok(Json(RoomOpened {
        room_id,
        rtp_capabilities,
    }))
}

async fn close_room(State(api): State<SfuApi>, Path(room_id): Path<String>) -> Answer<Done> {
    api.sfu.close_room(&room_id).await?;
    Ok(Json(Done {}))
}

async fn add_peer(
    State(api): State<SfuApi>,
    Path(room_id): Path<String>,
    Json(body): Json<AddPeer>,
) -> Answer<PeerAdded> {
    let rtp_capabilities = api.sfu.add_peer(&room_id, &body.peer_id).await?;
    Ok(Json(PeerAdded {
        peer_id: body.peer_id,
        rtp_capabilities,
    }))
}

async fn remove_peer(
    State(api): State<SfuApi>,
    Path((room_id, peer_id)): Path<(String, String)>,
) -> Answer<Done> {
    api.sfu.remove_peer(&room_id, &peer_id).await?;
    Ok(Json(Done {}))
}

async fn create_transport(
    State(api): State<SfuApi>,
    Path(room_id): Path<String>,
    Json(body): Json<CreateTransport>,
) -> Answer<vtp_sfu::engine::TransportInfo> {
    Ok(Json(api.sfu.create_transport(&room_id, body).await?))
}

async fn connect_transport(
    State(api): State<SfuApi>,
    Path((room_id, id)): Path<(String, String)>,
    Json(body): Json<Connect>,
) -> Answer<Done> {
    api.sfu
        .connect_transport(&room_id, &id, body.dtls_parameters)
        .await?;
    Ok(Json(Done {}))
}

async fn restart_ice(
    State(api): State<SfuApi>,
    Path((room_id, id)): Path<(String, String)>,
) -> Answer<IceRestarted> {
    let ice_parameters = api.sfu.restart_ice(&room_id, &id).await?;
    Ok(Json(IceRestarted { ice_parameters }))
}

async fn close_transport(
    State(api): State<SfuApi>,
    Path((room_id, id)): Path<(String, String)>,
) -> Answer<Done> {
    api.sfu.close_transport(&room_id, &id).await?;
    Ok(Json(Done {}))
}

async fn produce(
    State(api): State<SfuApi>,
    Path(room_id): Path<String>,
    Json(body): Json<Produce>,
) -> Answer<ProducerInfo> {
    Ok(Json(api.sfu.produce(&room_id, body).await?))
}

async fn pause_producer(
    State(api): State<SfuApi>,
    Path((room_id, id)): Path<(String, String)>,
) -> Answer<Done> {
    api.sfu.set_producer_paused(&room_id, &id, true).await?;
    Ok(Json(Done {}))
}

async fn resume_producer(
    State(api): State<SfuApi>,
    Path((room_id, id)): Path<(String, String)>,
) -> Answer<Done> {
    api.sfu.set_producer_paused(&room_id, &id, false).await?;
    Ok(Json(Done {}))
}

async fn close_producer(
    State(api): State<SfuApi>,
    Path((room_id, id)): Path<(String, String)>,
) -> Answer<Done> {
    api.sfu.close_producer(&room_id, &id).await?;
    Ok(Json(Done {}))
}

async fn consume(
    State(api): State<SfuApi>,
    Path(room_id): Path<String>,
    Json(body): Json<Consume>,
) -> Answer<ConsumerInfo> {
    Ok(Json(api.sfu.consume(&room_id, body).await?))
}

async fn pause_consumer(
    State(api): State<SfuApi>,
    Path((room_id, id)): Path<(String, String)>,
) -> Answer<Done> {
    api.sfu.set_consumer_paused(&room_id, &id, true).await?;
    Ok(Json(Done {}))
}

async fn resume_consumer(
    State(api): State<SfuApi>,
    Path((room_id, id)): Path<(String, String)>,
) -> Answer<Done> {
    api.sfu.set_consumer_paused(&room_id, &id, false).await?;
    Ok(Json(Done {}))
}

async fn set_consumer_layers(
    State(api): State<SfuApi>,
    Path((room_id, id)): Path<(String, String)>,
    Json(body): Json<PreferredLayers>,
) -> Answer<Done> {
    api.sfu
        .set_consumer_preferred_layers(&room_id, &id, body)
        .await?;
    Ok(Json(Done {}))
}

async fn close_consumer(
    State(api): State<SfuApi>,
    Path((room_id, id)): Path<(String, String)>,
) -> Answer<Done> {
    api.sfu.close_consumer(&room_id, &id).await?;
    Ok(Json(Done {}))
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
