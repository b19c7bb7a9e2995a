//! The REST API under `/api/v1`: thin handlers over the store and the shared operations,
//! bearer-token or JWT authentication, an audit record for every write, and an OpenAPI
//! document generated from the handlers themselves.
//!
//! It never slows the data plane: its own database connections, a cap on requests in
//! flight (429 past it), a deadline per request, and no lock the RADIUS path takes.

mod acs;
mod admin;
mod auth;
mod catalog;
mod envelope;
mod ipam;
mod openapi;
mod sessions;
mod wireguard;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use edge_radius::dict::Dictionary;
use edge_shared::accounting::unix_now;
use edge_shared::leases::unix_micros;
use edge_shared::metric_names as m;
use edge_shared::store::{connection_loss, AuditEntry, Store};
use tokio::sync::Semaphore;

pub use auth::{AuthFailure, Verifier};
pub use envelope::ApiError;
use envelope::REQUEST_ID;
use tracing::Instrument;

use crate::config::{Acs as AcsConfig, Api as ApiConfig};

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub store: Store,
    pub dict: Arc<Dictionary>,
    pub cfg: Arc<ApiConfig>,
    /// For connection requests (their credentials and timeout) and files' public URLs.
    pub acs: Arc<AcsConfig>,
    verifier: Arc<Verifier>,
    permits: Arc<Semaphore>,
    /// One file upload at a time: each holds its whole body in memory.
    uploads: Arc<Semaphore>,
    /// NAS tunnels, when `[wireguard]` is on.
    pub wireguard: Option<Arc<crate::ops::wireguard::WgConfig>>,
    /// The RADIUS ports NAS configurations point at.
    pub radius_ports: crate::ops::wireguard::RadiusPorts,
    /// This process's data-plane index, poked after NAS writes so that they apply at once.
    pub index: Option<Arc<edge_shared::index::Index>>,
}

impl ApiState {
    pub fn new(
        store: Store,
        dict: Arc<Dictionary>,
        cfg: ApiConfig,
        acs: AcsConfig,
    ) -> anyhow::Result<ApiState> {
        Ok(ApiState {
            verifier: Arc::new(Verifier::from_config(&cfg)?),
            permits: Arc::new(Semaphore::new(cfg.max_concurrent)),
            uploads: Arc::new(Semaphore::new(1)),
            acs: Arc::new(acs),
            store,
            dict,
            cfg: Arc::new(cfg),
            wireguard: None,
            radius_ports: crate::ops::wireguard::RadiusPorts {
                auth: 1812,
                acct: 1813,
            },
            index: None,
        })
    }

    /// NAS tunnels over WireGuard, and the RADIUS ports their configuration points at.
    pub fn with_wireguard(
        mut self,
        wg: Option<crate::ops::wireguard::WgConfig>,
        ports: crate::ops::wireguard::RadiusPorts,
    ) -> ApiState {
        self.wireguard = wg.map(Arc::new);
        self.radius_ports = ports;
        self
    }

    /// The index of the data plane running in this process.
    pub fn with_index(mut self, index: Arc<edge_shared::index::Index>) -> ApiState {
        self.index = Some(index);
        self
    }

    /// After a write the data plane serves from: refresh this process's index now.
    pub fn changed(&self) {
        if let Some(i) = &self.index {
            i.poke();
        }
    }

    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    fn retry(&self) -> edge_radius::server::coa_client::Retry {
        crate::ops::dynauth::retry(self.cfg.coa_timeout_ms, self.cfg.coa_tries)
    }
}

/// The `/api/v1` routes with their middleware.
pub fn router(state: ApiState) -> Router {
    let (routes, doc) = openapi::routes().split_for_parts();
    let doc = Arc::new(doc);
    let limit = state.cfg.max_body_bytes;
    let api = routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authenticate,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(limit))
        .with_state(state.clone());
    Router::new()
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || {
                let doc = Arc::clone(&doc);
                async move { axum::Json((*doc).clone()) }
            }),
        )
        .merge(api)
        .layer(axum::middleware::from_fn_with_state(state, frame))
}

/// Outermost: request id, the concurrency cap, the deadline, the status metric.
async fn frame(State(s): State<ApiState>, req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| format!("{:016x}", rand::random::<u64>()));
    let timeout = Duration::from_secs(s.cfg.request_timeout_seconds);
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let started = std::time::Instant::now();
    let span = tracing::info_span!("api", request_id = %id);
    let mut resp = REQUEST_ID
        .scope(id.clone(), async move {
            let Ok(_permit) = s.permits.try_acquire() else {
                metrics::counter!(m::API_SHED_TOTAL).increment(1);
                return ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "busy",
                    "too many requests in flight; retry shortly",
                )
                .into_response();
            };
            match tokio::time::timeout(timeout, run_again_after_loss(req, next)).await {
                Ok(r) => r,
                Err(_) => ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "timeout",
                    "the request took too long and was abandoned",
                )
                .into_response(),
            }
        })
        .instrument(span)
        .await;
    log_request(&id, &method, &path, resp.status(), started.elapsed());
    let class = match resp.status().as_u16() {
        200..=299 => "2xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "other",
    };
    metrics::counter!(m::API_REQUESTS_TOTAL, "class" => class).increment(1);
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

/// Runs the request. A read (GET or HEAD, without a body) answered 503 while a database
/// connection was found lost runs once more: the connections a database restart or failover
/// closed are tested and replaced on the way (`store/connection_loss.rs`), so the read is
/// answered from the database that is back instead of failing on a connection that is gone.
async fn run_again_after_loss(req: Request, next: Next) -> Response {
    use axum::body::HttpBody as _;
    let read = matches!(*req.method(), Method::GET | Method::HEAD)
        && req.body().size_hint().exact() == Some(0);
    if !read {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let again = Request::from_parts(parts.clone(), axum::body::Body::empty());
    let losses = connection_loss::losses();
    let first = next.clone().run(Request::from_parts(parts, body)).await;
    if first.status() != StatusCode::SERVICE_UNAVAILABLE || connection_loss::losses() == losses {
        return first;
    }
    metrics::counter!(m::API_RETRIED_TOTAL).increment(1);
    next.run(again).await
}

/// The access log: failures at warn, writes at info, reads at debug; each line carries the
/// request id that the answer (and any error body) carries too.
fn log_request(
    id: &str,
    method: &axum::http::Method,
    path: &str,
    status: StatusCode,
    took: Duration,
) {
    let ms = took.as_secs_f64() * 1000.0;
    let status = status.as_u16();
    if status >= 500 {
        tracing::warn!(request_id = %id, %method, path, status, ms, "api request failed");
    } else if method != axum::http::Method::GET && method != axum::http::Method::HEAD {
        tracing::info!(request_id = %id, %method, path, status, ms, "api request");
    } else {
        tracing::debug!(request_id = %id, %method, path, status, ms, "api request");
    }
}

/// Credentials for every route under it; write scope for anything but reads; an audit
/// record for every write.
async fn authenticate(State(s): State<ApiState>, req: Request, next: Next) -> Response {
    let header = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let principal = match s.verifier.check(&s.store, header).await {
        Ok(p) => p,
        Err(f) => {
            metrics::counter!(m::API_AUTH_FAILURES_TOTAL, "reason" => f.label()).increment(1);
            return refusal(f).into_response();
        }
    };
    let read_only = matches!(*req.method(), Method::GET | Method::HEAD);
    if !read_only && !principal.write {
        metrics::counter!(m::API_AUTH_FAILURES_TOTAL, "reason" => "scope").increment(1);
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this credential may only read",
        )
        .into_response();
    }
    let (method, path) = (req.method().to_string(), req.uri().path().to_string());
    let resp = next.run(req).await;
    if !read_only {
        let entry = AuditEntry {
            id: 0,
            at_us: unix_micros(),
            actor: principal.actor,
            method,
            path,
            status: i32::from(resp.status().as_u16()),
            request_id: envelope::request_id(),
        };
        if let Err(e) = s.store.audit_append(&entry).await {
            tracing::warn!(error = %e, request_id = %entry.request_id, "api: audit record not stored");
        }
    }
    resp
}

pub fn refusal(f: AuthFailure) -> ApiError {
    match f {
        AuthFailure::Unavailable => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "credentials cannot be checked now; try again",
        ),
        AuthFailure::Expired => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the token has expired",
        ),
        AuthFailure::Missing => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send Authorization: Bearer <token>",
        ),
        AuthFailure::Invalid => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the credential is not valid",
        ),
    }
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method",
    )
}

/// Unix seconds now; handlers' default time ranges.
fn now() -> i64 {
    unix_now()
}
