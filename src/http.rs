//! The HTTP listener: `/metrics`, the health probes, and (role `api`) the REST API.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use edge_shared::health::Health;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::task::JoinHandle;

use crate::api::ApiState;
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
struct AppState {
    health: Arc<Health>,
    prometheus: PrometheusHandle,
    /// Set when `/metrics` needs a read token.
    metrics_auth: Option<ApiState>,
}

pub struct RunningHttp {
    pub local_addr: SocketAddr,
    task: JoinHandle<()>,
}

impl RunningHttp {
    pub async fn join(self) {
        let _ = self.task.await;
    }
}

pub async fn start(
    listen: SocketAddr,
    health: Arc<Health>,
    prometheus: PrometheusHandle,
    api: Option<ApiState>,
    metrics_require_token: bool,
    cancel: CancellationToken,
) -> std::io::Result<RunningHttp> {
    let state = AppState {
        health,
        prometheus,
        metrics_auth: api.clone().filter(|_| metrics_require_token),
    };
    let mut app = Router::new()
        .route("/metrics", get(metrics))
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/health/startup", get(startup))
        .with_state(state);
    if let Some(api) = api {
        app = app.merge(crate::api::router(api));
    }
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let local_addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let r = axum::serve(listener, app)
            .with_graceful_shutdown(async move { cancel.cancelled().await })
            .await;
        if let Err(e) = r {
            tracing::warn!(error = %e, "http listener stopped");
        }
    });
    Ok(RunningHttp { local_addr, task })
}

async fn metrics(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(api) = &s.metrics_auth {
        let header = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
        if let Err(f) = api.verifier().check(&api.store, header).await {
            return crate::api::refusal(f).into_response();
        }
    }
    s.prometheus.render().into_response()
}

fn probe(ok: bool, s: &AppState) -> (StatusCode, Json<serde_json::Value>) {
    let body = serde_json::json!({
        "status": if ok { "ok" } else { "unavailable" },
        "checks": {
            "started": s.health.started(),
            "ready": s.health.ready(),
            "database": if s.health.database_ok() { "ok" } else { "degraded" },
        }
    });
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body))
}

async fn live(State(s): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    probe(true, &s)
}

async fn ready(State(s): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    probe(s.health.ready(), &s)
}

async fn startup(State(s): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    probe(s.health.started(), &s)
}
