//! `/audit`: the audit log for admins (docs/operations.md, "Audit log"):
//! a page at a time, filtered by event, actor and time, and an export of
//! the same filters as CSV or JSON lines.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use vtp_store::{AuditEvent, AuditQuery, Paging};

use super::caller::AuthUser;
use super::extract::{Json, Query};
use super::paging::{LIMITS, PageDto, PageQuery};
use super::request_context::RequestContext;
use crate::audit::{AuditEntry, AuditKind};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

/// Rows an export holds at most; past it the answer says so in `X-Export-Truncated`.
pub const MAX_EXPORT_ROWS: u32 = 100_000;
/// Rows read from the store at a time while exporting.
const EXPORT_BATCH: u32 = 1000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_audit))
        .routes(routes!(export_audit))
}

/// An audit event.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEventDto {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    /// Its stable name, e.g. `auth.sign_in_failed` (docs/operations.md lists them).
    pub event: String,
    pub actor_id: Option<Uuid>,
    /// The actor's e-mail at the time (for failed sign-ins: what was typed).
    pub actor: Option<String>,
    /// `user:<id>`, `room:<id>`, `recording:<id>`, `webhook:<id>`.
    pub target: Option<String>,
    /// The client address.
    pub address: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub detail: Option<serde_json::Value>,
}

impl From<AuditEvent> for AuditEventDto {
    fn from(e: AuditEvent) -> Self {
        AuditEventDto {
            id: e.id,
            at: e.at,
            event: e.event,
            actor_id: e.actor_id,
            actor: e.actor,
            target: e.target,
            address: e.address,
            detail: e.detail,
        }
    }
}

/// Filters of the audit log.
#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditListParams {
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
    /// Items per page, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// Only this event (e.g. `user.role_changed`).
    pub event: Option<String>,
    /// Only what this account did.
    pub actor_id: Option<Uuid>,
    /// At or after this time (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Before this time (RFC 3339).
    pub until: Option<DateTime<Utc>>,
}

#[derive(Clone, Copy, Debug, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    Csv,
    Jsonl,
}

/// Filters and format of an export.
#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditExportParams {
    /// `csv` or `jsonl` (one JSON object a line).
    #[param(inline)]
    pub format: ExportFormat,
    pub event: Option<String>,
    pub actor_id: Option<Uuid>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

fn event_filter(event: Option<String>) -> ApiResult<Option<String>> {
    match event.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
        None => Ok(None),
        Some(name) if AuditKind::parse(name).is_some() => Ok(Some(name.to_string())),
        Some(name) => Err(ApiError::validation(format!(
            "event: unknown event {name:?} (docs/operations.md lists them)"
        ))),
    }
}

/// The audit log, newest first (admins).
#[utoipa::path(get, path = "/audit", tag = "operations", params(AuditListParams),
    responses((status = 200, body = PageDto<AuditEventDto>), (status = 400, description = "a cursor this API did not make", body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn list_audit(
    State(state): State<AppState>,
    caller: AuthUser,
    Query(params): Query<AuditListParams>,
) -> ApiResult<Json<PageDto<AuditEventDto>>> {
    caller.require_admin()?;
    let paging =
        PageQuery::paged(params.cursor.as_deref(), params.limit, None, None).paging(LIMITS)?;
    let query = AuditQuery {
        event: event_filter(params.event)?,
        actor_id: params.actor_id,
        since: params.since,
        until: params.until,
        paging,
    };
    let page = state.store.list_audit_events(&query).await?;
    Ok(Json(PageDto::new(page, &query.paging, AuditEventDto::from)))
}

/// The audit log as a file, newest first (admins): CSV or JSON lines, at
/// most 100 000 events (`X-Export-Truncated: true` when more matched).
#[utoipa::path(get, path = "/audit/export", tag = "operations", params(AuditExportParams),
    responses((status = 200, description = "the events as CSV or JSON lines (`format`)",
                content((String = "text/csv"), (String = "application/x-ndjson"))),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn export_audit(
    State(state): State<AppState>,
    caller: AuthUser,
    context: RequestContext,
    Query(params): Query<AuditExportParams>,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let format_name = params.format_name();
    let mut query = AuditQuery {
        event: event_filter(params.event)?,
        actor_id: params.actor_id,
        since: params.since,
        until: params.until,
        paging: Paging::first(EXPORT_BATCH),
    };
    let mut out = String::new();
    if params.format == ExportFormat::Csv {
        out.push_str("id,at,event,actor_id,actor,target,address,detail\n");
    }
    let mut rows = 0u32;
    let mut truncated = false;
    loop {
        let page = state.store.list_audit_events(&query).await?;
        for event in page.items {
            if rows == MAX_EXPORT_ROWS {
                truncated = true;
                break;
            }
            rows += 1;
            write_row(&mut out, params.format, event);
        }
        match page.next {
            Some(next) if !truncated => {
                query.paging = Paging::After {
                    after: Some(next),
                    limit: EXPORT_BATCH,
                }
            }
            _ => break,
        }
    }
    state
        .audit
        .record(
            AuditEntry::new(AuditKind::AuditExported)
                .by(&caller.0)
                .from_address(context.address_text())
                .with_detail(serde_json::json!({ "rows": rows, "format": format_name })),
        )
        .await;
    let (content_type, extension) = match params.format {
        ExportFormat::Csv => ("text/csv; charset=utf-8", "csv"),
        ExportFormat::Jsonl => ("application/x-ndjson", "jsonl"),
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"audit.{extension}\""),
            ),
            (
                header::HeaderName::from_static("x-export-truncated"),
                truncated.to_string(),
            ),
        ],
        out,
    )
        .into_response())
}

impl AuditExportParams {
    fn format_name(&self) -> &'static str {
        match self.format {
            ExportFormat::Csv => "csv",
            ExportFormat::Jsonl => "jsonl",
        }
    }
}

fn write_row(out: &mut String, format: ExportFormat, event: AuditEvent) {
    match format {
        ExportFormat::Jsonl => {
            let line = serde_json::to_string(&AuditEventDto::from(event)).unwrap_or_default();
            out.push_str(&line);
            out.push('\n');
        }
        ExportFormat::Csv => {
            let fields = [
                event.id.to_string(),
                event
                    .at
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                event.event,
                event.actor_id.map(|i| i.to_string()).unwrap_or_default(),
                event.actor.unwrap_or_default(),
                event.target.unwrap_or_default(),
                event.address.unwrap_or_default(),
                event.detail.map(|d| d.to_string()).unwrap_or_default(),
            ];
            let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            out.push_str(&line.join(","));
            out.push('\n');
        }
    }
}

/// RFC 4180 quoting, and a leading `'` before what a spreadsheet would run
/// as a formula (a failed sign-in's e-mail is the caller's text).
fn csv_field(text: &str) -> String {
    let guarded = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_string()
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=cmd()"), "'=cmd()");
        assert_eq!(csv_field("line\nbreak"), "\"line\nbreak\"");
    }
}
