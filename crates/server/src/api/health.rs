//! Liveness and readiness probes, for load balancers and orchestrators.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::Json;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ready))
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `unavailable` with the failing checks.
    #[schema(schema_with = super::schema::health_status)]
    pub status: &'static str,
    /// Each dependency and whether it answered.
    pub checks: Vec<Check>,
}

#[derive(Serialize, ToSchema)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
}

/// Liveness: the process serves HTTP.
#[utoipa::path(get, path = "/health", tag = "operations", responses((status = 200, body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health {
        status: "ok",
        checks: Vec::new(),
    })
}

/// Readiness: the store and the SFU answer. 503 while one does not.
#[utoipa::path(get, path = "/ready", tag = "operations",
    responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let store_ok =
        match tokio::time::timeout(std::time::Duration::from_secs(2), state.store.ping()).await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "readiness: store check failed");
                false
            }
            Err(_) => false,
        };
    let sfu_ok = match tokio::time::timeout(
        std::time::Duration::from_secs(2),
        state.hub.media().health(),
    )
    .await
    {
        Ok(Ok(health)) => health.running,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: sfu check failed");
            false
        }
        Err(_) => false,
    };
    let checks = vec![
        Check {
            name: "store",
            ok: store_ok,
        },
        Check {
            name: "sfu",
            ok: sfu_ok,
        },
    ];
    if store_ok && sfu_ok {
        (
            StatusCode::OK,
            Json(Health {
                status: "ok",
                checks,
            }),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                status: "unavailable",
                checks,
            }),
        )
    }
}
