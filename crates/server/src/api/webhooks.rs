//! `/webhooks`: the endpoints admins register for the platform's events
//! (docs/operations.md, "Webhooks"), and each one's delivery log. The
//! signing secret is in the answer that creates an endpoint, and never again.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use vtp_store::{DeliveryState, WebhookDelivery, WebhookEndpoint};

use super::caller::AuthUser;
use super::extract::{Json, Path, Query};
use super::paging::{LIMITS, PageDto, PageQuery};
use super::request_context::RequestContext;
use crate::audit::{AuditEntry, AuditKind};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;
use crate::webhooks::{WebhookEvent, target};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_endpoints, create_endpoint))
        .routes(routes!(patch_endpoint, delete_endpoint))
        .routes(routes!(list_deliveries))
}

/// A registered endpoint (without its secret).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEndpointDto {
    pub id: Uuid,
    pub url: String,
    /// Of `room.started`, `room.ended`, `participant.joined`, `participant.left`,
    /// `recording.ready`, `export.ready`, `user.created`.
    pub events: Vec<String>,
    pub enabled: bool,
    /// Why it is off (persistent failure, or an admin turned it off).
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<WebhookEndpoint> for WebhookEndpointDto {
    fn from(e: WebhookEndpoint) -> Self {
        WebhookEndpointDto {
            id: e.id,
            url: e.url,
            events: e.events,
            enabled: e.enabled,
            disabled_reason: e.disabled_reason,
            created_at: e.created_at,
        }
    }
}

/// A new endpoint and, this once, its signing secret.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedWebhookDto {
    #[serde(flatten)]
    pub endpoint: WebhookEndpointDto,
    /// The HMAC-SHA256 key of `VTP-Signature`; shown only now.
    pub secret: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateWebhookRequest {
    /// `https://…` (or `http://`); no credentials in it.
    #[schema(max_length = 2048)]
    pub url: String,
    /// The events to send, at least one.
    #[schema(min_items = 1, max_items = 7)]
    pub events: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchWebhookRequest {
    /// Turn it on (pending deliveries resume) or off.
    pub enabled: bool,
}

/// One delivery of the log.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookDeliveryDto {
    pub id: i64,
    pub event_id: Uuid,
    pub event: String,
    pub state: DeliveryState,
    pub attempts: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The HTTP status of the last attempt, if one answered.
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<WebhookDelivery> for WebhookDeliveryDto {
    fn from(d: WebhookDelivery) -> Self {
        WebhookDeliveryDto {
            id: d.id,
            event_id: d.event_id,
            event: d.event,
            state: d.state,
            attempts: d.attempts,
            next_attempt_at: (d.state == DeliveryState::Pending).then_some(d.next_attempt_at),
            last_status: d.last_status,
            last_error: d.last_error,
            created_at: d.created_at,
            finished_at: d.finished_at,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryListParams {
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
    /// Items per page, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("whsec_{}", data_encoding::HEXLOWER.encode(&bytes))
}

fn check_events(events: &[String]) -> ApiResult<Vec<String>> {
    if events.is_empty() {
        return Err(ApiError::validation("events: name at least one"));
    }
    let mut out: Vec<String> = Vec::new();
    for name in events {
        let Some(event) = WebhookEvent::parse(name.trim()) else {
            let known: Vec<&str> = WebhookEvent::ALL.iter().map(|e| e.as_str()).collect();
            return Err(ApiError::validation(format!(
                "events: unknown event {name:?} (known: {})",
                known.join(", ")
            )));
        };
        if !out.iter().any(|e| e == event.as_str()) {
            out.push(event.as_str().to_string());
        }
    }
    Ok(out)
}

/// The webhook endpoints, oldest first (admins).
#[utoipa::path(get, path = "/webhooks", tag = "operations",
    responses((status = 200, body = Vec<WebhookEndpointDto>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
async fn list_endpoints(
    State(state): State<AppState>,
    caller: AuthUser,
) -> ApiResult<Json<Vec<WebhookEndpointDto>>> {
    caller.require_admin()?;
    let endpoints = state.store.list_webhook_endpoints().await?;
    Ok(Json(endpoints.into_iter().map(Into::into).collect()))
}

/// Register an endpoint (admins). The answer holds its signing secret, shown only now.
#[utoipa::path(post, path = "/webhooks", tag = "operations", request_body = CreateWebhookRequest,
    responses((status = 201, body = CreatedWebhookDto), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 409, description = "as many endpoints as allowed already", body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn create_endpoint(
    State(state): State<AppState>,
    caller: AuthUser,
    context: RequestContext,
    Json(body): Json<CreateWebhookRequest>,
) -> ApiResult<(StatusCode, Json<CreatedWebhookDto>)> {
    caller.require_admin()?;
    let url = target::check_url(body.url.trim(), state.webhook_policy.allow_private)
        .map_err(ApiError::validation)?;
    let events = check_events(&body.events)?;
    let secret = new_secret();
    let endpoint = state
        .store
        .create_webhook_endpoint(
            url.as_str(),
            &events,
            &secret,
            state.webhook_policy.max_endpoints,
            Utc::now(),
        )
        .await?;
    state
        .audit
        .record(
            AuditEntry::new(AuditKind::WebhookCreated)
                .by(&caller.0)
                .on("webhook", endpoint.id)
                .from_address(context.address_text())
                .with_detail(serde_json::json!({ "url": endpoint.url, "events": endpoint.events })),
        )
        .await;
    Ok((
        StatusCode::CREATED,
        Json(CreatedWebhookDto {
            endpoint: endpoint.into(),
            secret,
        }),
    ))
}

/// Turn an endpoint on or off (admins).
#[utoipa::path(patch, path = "/webhooks/{id}", tag = "operations", params(("id" = Uuid, Path)), request_body = PatchWebhookRequest,
    responses((status = 200, body = WebhookEndpointDto), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn patch_endpoint(
    State(state): State<AppState>,
    caller: AuthUser,
    context: RequestContext,
    Path(id): Path<Uuid>,
    Json(body): Json<PatchWebhookRequest>,
) -> ApiResult<Json<WebhookEndpointDto>> {
    caller.require_admin()?;
    let endpoint = state
        .store
        .set_webhook_endpoint_enabled(id, body.enabled, Some("turned off by an admin"), Utc::now())
        .await?;
    if body.enabled {
        state.webhooks.wake();
    } else {
        state
            .audit
            .record(
                AuditEntry::new(AuditKind::WebhookDisabled)
                    .by(&caller.0)
                    .on("webhook", id)
                    .from_address(context.address_text()),
            )
            .await;
    }
    Ok(Json(endpoint.into()))
}

/// Delete an endpoint and its delivery log (admins).
#[utoipa::path(delete, path = "/webhooks/{id}", tag = "operations", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn delete_endpoint(
    State(state): State<AppState>,
    caller: AuthUser,
    context: RequestContext,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    state.store.delete_webhook_endpoint(id).await?;
    state
        .audit
        .record(
            AuditEntry::new(AuditKind::WebhookDeleted)
                .by(&caller.0)
                .on("webhook", id)
                .from_address(context.address_text()),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// An endpoint's delivery log, newest first (admins).
#[utoipa::path(get, path = "/webhooks/{id}/deliveries", tag = "operations", params(("id" = Uuid, Path), DeliveryListParams),
    responses((status = 200, body = PageDto<WebhookDeliveryDto>), (status = 400, description = "a cursor this API did not make", body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn list_deliveries(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
    Query(params): Query<DeliveryListParams>,
) -> ApiResult<Json<PageDto<WebhookDeliveryDto>>> {
    caller.require_admin()?;
    state.store.webhook_endpoint(id).await?;
    let paging = PageQuery::paged(params.cursor.as_deref(), params.limit, None, None)
        .paging::<i64>(LIMITS)?;
    let page = state.store.list_webhook_deliveries(id, &paging).await?;
    Ok(Json(PageDto::new(page, &paging, WebhookDeliveryDto::from)))
}
