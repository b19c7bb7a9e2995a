//! The HTTP listener: `/metrics` and the health probes (the REST API joins it later).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use edge_shared::health::Health;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
struct AppState {
    health: Arc<Health>,
    prometheus: PrometheusHandle,
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
    cancel: CancellationToken,
) -> std::io::Result<RunningHttp> {
    let state = AppState { health, prometheus };
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/health/startup", get(startup))
        .with_state(state);
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

async fn metrics(State(s): State<AppState>) -> String {
    s.prometheus.render()
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
