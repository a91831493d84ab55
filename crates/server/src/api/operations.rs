//! `GET /operations`: what the operator's page shows (admins): the nodes,
//! the live rooms with each participant's bitrate, loss and health, the
//! recordings in progress, the export queue, the data directory's disk, the
//! certificate's expiry and the latest audit events. One answer, bounded in
//! size (`rooms::overview::MAX_ROOMS` rooms, [`RECENT_AUDIT`] events); the
//! page polls it.

use std::path::Path;
use std::time::Duration;

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use vtp_store::{AuditQuery, ExportState};

use super::audit::AuditEventDto;
use super::caller::AuthUser;
use super::extract::Json;
use super::metrics::snapshot::{Process, certificate_expiry};
use super::paging::{LIMITS, PageQuery};
use crate::error::{ApiResult, ErrorBody};
use crate::rooms::{RecordingInProgress, RoomOverview};
use crate::state::AppState;

/// Audit events the page shows.
pub const RECENT_AUDIT: u32 = 10;
/// How long the SFU's health may take before the page is answered without it.
const SFU_HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(operations))
}

/// What a node does.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    /// This process: HTTP API and signalling.
    Api,
    /// The SFU this node drives (in this process with `--role all`).
    Sfu,
}

/// A node of the deployment: this one (API, signalling and, with
/// `--role all`, media) or the SFU it drives.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeOverview {
    pub kind: NodeKind,
    /// What it is: this node's version, or where the SFU runs.
    pub name: String,
    /// Whether it answered (this node always does).
    pub up: bool,
    /// CPU use since the previous look, in percent of one core (SFU only).
    pub cpu_percent: Option<f64>,
    pub resident_memory_bytes: Option<u64>,
    pub open_fds: Option<u64>,
    /// SFU: its worker threads, and the transports on each.
    pub worker_transports: Vec<usize>,
    /// SFU: its rooms (routers) and peers.
    pub rooms: Option<usize>,
    pub peers: Option<usize>,
}

/// The export queue.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportQueueOverview {
    pub queued: u64,
    pub running: u64,
    pub failed: u64,
}

/// The file system of the data directory (recordings included).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DiskOverview {
    pub free_bytes: u64,
    pub size_bytes: u64,
}

/// The certificate HTTPS serves.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertificateOverview {
    pub not_after: DateTime<Utc>,
}

/// What the operator's page shows.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Operations {
    pub generated_at: DateTime<Utc>,
    pub nodes: Vec<NodeOverview>,
    /// Live rooms, the fullest first (at most 100).
    pub rooms: Vec<RoomOverview>,
    pub recordings: Vec<RecordingInProgress>,
    pub exports: ExportQueueOverview,
    /// Absent when the file system could not be read.
    pub disk: Option<DiskOverview>,
    /// Absent without HTTPS (a proxy in front holds the certificate).
    pub certificate: Option<CertificateOverview>,
    /// The latest audit events, newest first.
    pub audit: Vec<AuditEventDto>,
}

/// The operator's page: nodes, live rooms and their participants' media,
/// recordings in progress, exports, disk, certificate, recent audit events (admins).
#[utoipa::path(get, path = "/operations", tag = "operations",
    responses((status = 200, body = Operations), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
async fn operations(
    State(state): State<AppState>,
    caller: AuthUser,
) -> ApiResult<Json<Operations>> {
    caller.require_admin()?;
    let (rooms, recordings) = state.hub.overview().await;
    let exports = state.store.count_exports_by_state().await?;
    let count = |s: ExportState| exports.iter().find(|e| e.0 == s).map_or(0, |e| e.1);
    let audit_query = AuditQuery {
        event: None,
        actor_id: None,
        since: None,
        until: None,
        paging: PageQuery::paged(None, Some(RECENT_AUDIT), None, None).paging(LIMITS)?,
    };
    let audit = state.store.list_audit_events(&audit_query).await?;
    let data_dir = state.recordings_dir.parent().unwrap_or(Path::new("."));
    Ok(Json(Operations {
        generated_at: Utc::now(),
        nodes: nodes(&state).await,
        rooms,
        recordings,
        exports: ExportQueueOverview {
            queued: count(ExportState::Queued),
            running: count(ExportState::Running),
            failed: count(ExportState::Failed),
        },
        disk: crate::recording::disk_space(data_dir).map(|(free, size)| DiskOverview {
            free_bytes: free,
            size_bytes: size,
        }),
        certificate: state
            .metrics
            .certificate()
            .and_then(|c| certificate_expiry(c))
            .and_then(|secs| DateTime::from_timestamp(i64::try_from(secs).ok()?, 0))
            .map(|not_after| CertificateOverview { not_after }),
        audit: audit.items.into_iter().map(AuditEventDto::from).collect(),
    }))
}

async fn nodes(state: &AppState) -> Vec<NodeOverview> {
    let process = Process::read();
    let this = NodeOverview {
        kind: NodeKind::Api,
        name: format!("this node (VTP {})", env!("CARGO_PKG_VERSION")),
        up: true,
        cpu_percent: None,
        resident_memory_bytes: process.resident_bytes,
        open_fds: process.open_fds,
        worker_transports: Vec::new(),
        rooms: None,
        peers: None,
    };
    let media = state.hub.media();
    let health = match tokio::time::timeout(SFU_HEALTH_TIMEOUT, media.health()).await {
        Ok(Ok(h)) => Some(h),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "operations: sfu health failed");
            None
        }
        Err(_) => {
            tracing::warn!("operations: sfu health timed out");
            None
        }
    };
    let sfu = NodeOverview {
        kind: NodeKind::Sfu,
        name: media.describe(),
        up: health.as_ref().is_some_and(|h| h.running),
        cpu_percent: health.as_ref().and_then(|h| h.cpu_percent),
        resident_memory_bytes: None,
        open_fds: None,
        worker_transports: health
            .as_ref()
            .map(|h| h.stats.per_worker.iter().map(|w| w.transports).collect())
            .unwrap_or_default(),
        rooms: health.as_ref().map(|h| h.rooms),
        peers: health.as_ref().map(|h| h.peers),
    };
    vec![this, sfu]
}
