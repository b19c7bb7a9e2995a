//! The HTTP listener: `/metrics`, the health probes, and (role `api`) the REST API.
//!
//! It is bound first, before the database is opened, so that `/health/startup` can say
//! which startup phase the process is in; the API joins once it has its connections
//! ([`ApiSlot::install`]) and answers 503 until then. It runs on a thread of its own
//! ([`RunningHttp`]).

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use edge_shared::health::{Health, Phase};
use metrics_exporter_prometheus::PrometheusHandle;
use tower::ServiceExt;

use crate::api::ApiState;
use crate::cmd::serve::Roles;
use tokio_util::sync::CancellationToken;

/// The REST API, once it is up (it also checks `/metrics` tokens when those are required).
#[derive(Default)]
pub struct ApiSlot {
    api: OnceLock<(ApiState, Router)>,
}

impl ApiSlot {
    pub fn install(&self, state: ApiState) {
        let router = crate::api::router(state.clone());
        let _ = self.api.set((state, router));
    }

    /// Closes the API's database connections (politely: the database sees each session
    /// end, not a dropped socket), once the listener has drained.
    async fn close(&self) {
        if let Some((state, _)) = self.api.get() {
            state.store.close().await;
        }
    }
}

#[derive(Clone)]
struct AppState {
    health: Arc<Health>,
    prometheus: PrometheusHandle,
    api: Arc<ApiSlot>,
    metrics_require_token: bool,
    roles: Roles,
    instance: Arc<str>,
    born: Instant,
    peer_metrics: Arc<edge_wireguard::PeerMetrics>,
}

/// The listener runs on a runtime of its own: one thread, apart from the data plane's
/// runtime (the accounting writer, the fold, IPAM, the ACS). A burst of API work then waits
/// its turn on that thread rather than delaying commits, and a request is read, queried and
/// answered on one thread: with the data plane's two workers each lookup also woke the idle
/// one, and the server spent 10 to 15% more CPU per lookup (`perf stat` at 500 lookups/s;
/// docs/api.md).
pub struct RunningHttp {
    pub local_addr: SocketAddr,
    handle: tokio::runtime::Handle,
    done: tokio::sync::oneshot::Receiver<()>,
}

impl RunningHttp {
    /// Runs `f` on the listener's runtime: what the API's handlers use (its database
    /// connections) must be made there, so that their I/O wakes that thread only.
    pub async fn run_on<F>(&self, f: F) -> anyhow::Result<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        Ok(self.handle.spawn(f).await?)
    }

    /// Until the listener has drained (after the cancel token fired) and its thread ended.
    pub async fn join(self) {
        let _ = self.done.await;
    }
}

/// What the listener needs to know about the process.
pub struct HttpConfig {
    pub listen: SocketAddr,
    pub metrics_require_token: bool,
    pub roles: Roles,
    pub instance: String,
    /// Per-NAS tunnel figures, appended to `/metrics` (empty without WireGuard).
    pub peer_metrics: Arc<edge_wireguard::PeerMetrics>,
}

pub async fn start(
    cfg: HttpConfig,
    health: Arc<Health>,
    prometheus: PrometheusHandle,
    api: Arc<ApiSlot>,
    cancel: CancellationToken,
) -> std::io::Result<RunningHttp> {
    let slot = Arc::clone(&api);
    let state = AppState {
        health,
        prometheus,
        api,
        metrics_require_token: cfg.metrics_require_token,
        roles: cfg.roles,
        instance: cfg.instance.into(),
        born: Instant::now(),
        peer_metrics: cfg.peer_metrics,
    };
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/health/startup", get(startup))
        .fallback(to_api)
        .with_state(state);
    let listener = std::net::TcpListener::bind(cfg.listen)?;
    listener.set_nonblocking(true)?;
    let local_addr = listener.local_addr()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("http")
        .build()?;
    let handle = rt.handle().clone();
    let (finished, done) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("http".into())
        .spawn(move || {
            rt.block_on(async move {
                let r = match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => {
                        axum::serve(listener, app)
                            .with_graceful_shutdown(async move { cancel.cancelled().await })
                            .await
                    }
                    Err(e) => Err(e),
                };
                if let Err(e) = r {
                    tracing::warn!(error = %e, "http listener stopped");
                }
                // Bounded: the process's drain deadline is the outer bound anyway.
                if tokio::time::timeout(Duration::from_secs(5), slot.close())
                    .await
                    .is_err()
                {
                    tracing::warn!("the API's database connections did not close in 5 s");
                }
            });
            let _ = finished.send(());
        })?;
    Ok(RunningHttp {
        local_addr,
        handle,
        done,
    })
}

/// Everything but the probes and metrics: the REST API, when this process runs it.
async fn to_api(State(s): State<AppState>, req: Request) -> Response {
    match s.api.api.get() {
        Some((_, router)) => match router.clone().oneshot(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        },
        None if s.roles.api => crate::api::ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "starting",
            "the API is starting; try again shortly",
        )
        .into_response(),
        None => crate::api::ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "this process does not serve the REST API (serve --roles)",
        )
        .into_response(),
    }
}

async fn metrics(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if s.metrics_require_token {
        let Some((api, _)) = s.api.api.get() else {
            return crate::api::ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "starting",
                "metrics need a token, and tokens cannot be checked until the API is up",
            )
            .into_response();
        };
        let header = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
        if let Err(f) = api.verifier().check(&api.store, header).await {
            return crate::api::refusal(f).into_response();
        }
    }
    let mut text = s.prometheus.render();
    text.push_str(&s.peer_metrics.render());
    text.into_response()
}

/// The state of a listener of a role: `off`, `pending` (startup has not reached it),
/// `listening`, or `closed` (draining).
fn listener_state(on: bool, phase: Phase) -> &'static str {
    match (on, phase) {
        (false, _) => "off",
        (true, Phase::Draining) => "closed",
        (true, Phase::Ready) => "listening",
        (true, _) => "pending",
    }
}

fn probe(ok: bool, s: &AppState) -> (StatusCode, Json<serde_json::Value>) {
    let h = &s.health;
    let phase = h.phase();
    let (batches, bytes) = h.spool();
    let status = match phase {
        Phase::Draining => "draining",
        Phase::Ready if h.degraded() => "degraded",
        Phase::Ready => "ok",
        _ => "starting",
    };
    let body = serde_json::json!({
        "status": status,
        "phase": phase.name(),
        "pid": std::process::id(),
        "instance": &*s.instance,
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": s.born.elapsed().as_secs(),
        "checks": {
            "database": {
                "state": h.database_state(),
                "backend": h.backend(),
            },
            "radius": listener_state(s.roles.radius, phase),
            "acs": listener_state(s.roles.acs, phase),
            "api": listener_state(s.roles.api, phase),
            "accounting_spool": {
                "state": if !h.spool_enabled() { "off" } else if batches > 0 { "holding" } else { "empty" },
                "batches": batches,
                "bytes": bytes,
            },
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// The listener has a thread of its own: it answers while the runtime it was started
    /// from (the data plane's) cannot run anything.
    #[test]
    fn the_listener_answers_while_the_data_plane_runtime_is_stuck() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let cancel = CancellationToken::new();
        let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new()
            .build_recorder()
            .handle();
        let cfg = HttpConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            metrics_require_token: false,
            roles: Roles {
                radius: true,
                acs: false,
                api: false,
            },
            instance: "test".into(),
            peer_metrics: Arc::default(),
        };
        let http = rt
            .block_on(start(
                cfg,
                Arc::new(Health::default()),
                prometheus,
                Arc::new(ApiSlot::default()),
                cancel.clone(),
            ))
            .unwrap();
        let addr = http.local_addr;
        // The runtime's only thread blocks in `join` while another thread asks the probe.
        let answer = rt.block_on(async move {
            std::thread::spawn(move || {
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
                    .unwrap();
                s.write_all(b"GET /health/live HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                    .unwrap();
                let mut answer = String::new();
                let _ = s.read_to_string(&mut answer);
                answer
            })
            .join()
            .unwrap()
        });
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.contains("\"status\":\"starting\""), "{answer}");
        // And it drains on the cancel token.
        cancel.cancel();
        rt.block_on(http.join());
    }
}
