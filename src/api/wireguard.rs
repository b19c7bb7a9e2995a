//! NAS tunnels over WireGuard: registration (through `POST /nas`), each tunnel's status and
//! configuration, and the interface with all its tunnels.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode, Uri};
use axum::response::IntoResponse;
use edge_shared::store::NewNas;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::catalog::NasView;
use super::envelope::{one, Answer, ApiError, ApiPath, ApiQuery, Envelope, ErrorBody};
use super::ApiState;
use crate::ops::wireguard::{self as wg, Format, TunnelStatus, WgConfig};

fn enabled(s: &ApiState) -> Result<&Arc<WgConfig>, ApiError> {
    s.wireguard.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "wireguard_off",
            "WireGuard is not enabled on this edge (wireguard.enabled)",
        )
    })
}

/// `POST /nas` with `wireguard`: the NAS, its tunnel, and (this once) its configuration.
pub(super) async fn register(
    s: &ApiState,
    n: NewNas,
    public_key: Option<&str>,
) -> Result<NasView, ApiError> {
    let w = enabled(s)?;
    if !n.address.is_empty() {
        return Err(ApiError::invalid(
            "address",
            "a WireGuard NAS's address is its tunnel address, assigned from the management pool",
        ));
    }
    let secret = n.secret.clone();
    let r = wg::nas_add_tunneled(&s.store, &s.dict, w, n, public_key).await?;
    let edge_key = w.edge_public_key()?;
    let text = |format| {
        wg::export(
            w,
            &edge_key,
            &r.nas,
            s.radius_ports,
            r.private_key.as_deref(),
            Some(&secret),
            format,
        )
    };
    let (routeros, wg_quick) = (text(Format::RouterOs)?, text(Format::WgQuick)?);
    Ok(NasView::from(&r.nas).with_secrets(r.private_key.clone(), routeros, wg_quick))
}

async fn nas_named(s: &ApiState, name: &str) -> Result<edge_shared::types::Nas, ApiError> {
    s.store
        .nas_list()
        .await?
        .into_iter()
        .find(|n| n.name == name)
        .ok_or_else(|| ApiError::not_found(format!("NAS `{name}` not found")))
}

async fn statuses(
    w: &WgConfig,
    nas: &[edge_shared::types::Nas],
) -> Result<Vec<TunnelStatus>, ApiError> {
    wg::status(w, nas).await.map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("cannot read the WireGuard interface here: {e}"),
        )
    })
}

/// A NAS's tunnel: its peer on the interface, last handshake and transfer counters.
#[utoipa::path(get, path = "/api/v1/nas/{name}/wireguard", tag = "nas",
    params(("name" = String, Path)),
    responses((status = 200, body = Envelope<TunnelStatus>), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn tunnel_status(
    State(s): State<ApiState>,
    uri: Uri,
    ApiPath(name): ApiPath<String>,
) -> Answer<TunnelStatus> {
    let w = enabled(&s)?;
    let nas = nas_named(&s, &name).await?;
    if nas.tunnel.is_none() {
        return Err(ApiError::not_found(format!(
            "NAS `{name}` has no WireGuard tunnel"
        )));
    }
    let status = statuses(w, std::slice::from_ref(&nas))
        .await?
        .pop()
        .ok_or_else(|| ApiError::not_found(format!("NAS `{name}` has no WireGuard tunnel")))?;
    one(&uri, status)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ConfigQuery {
    /// `routeros` (default) or `wg-quick`.
    format: Option<String>,
}

/// The configuration to paste into the NAS, as text. Its private key and the RADIUS secret
/// are placeholders: they were shown only when the NAS was registered.
#[utoipa::path(get, path = "/api/v1/nas/{name}/wireguard/config", tag = "nas",
    params(("name" = String, Path), ConfigQuery),
    responses((status = 200, body = String, content_type = "text/plain"),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn tunnel_config(
    State(s): State<ApiState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<ConfigQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let w = enabled(&s)?;
    let format = Format::parse(q.format.as_deref().unwrap_or("routeros"))
        .ok_or_else(|| ApiError::invalid("format", "routeros or wg-quick"))?;
    let nas = nas_named(&s, &name).await?;
    let text = wg::export(
        w,
        &w.edge_public_key()?,
        &nas,
        s.radius_ports,
        None,
        None,
        format,
    )?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text))
}

/// The edge's WireGuard interface and every NAS tunnel on it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InterfaceView {
    interface: String,
    listen_port: u16,
    public_key: String,
    /// The edge's address in the tunnels (the NAS's RADIUS server).
    address: String,
    management_prefix: String,
    pool: String,
    /// What NAS dial; empty when not configured.
    endpoint: String,
    tunnels: Vec<TunnelStatus>,
}

#[utoipa::path(get, path = "/api/v1/wireguard", tag = "nas",
    responses((status = 200, body = Envelope<InterfaceView>), (status = 409, body = ErrorBody),
        (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn interface(State(s): State<ApiState>, uri: Uri) -> Answer<InterfaceView> {
    let w = enabled(&s)?;
    let all = s.store.nas_list().await?;
    let tunnels = statuses(w, &all).await?;
    one(
        &uri,
        InterfaceView {
            interface: w.link.interface.clone(),
            listen_port: w.link.listen_port,
            public_key: w.edge_public_key()?,
            address: w.link.edge_address.to_string(),
            management_prefix: w.link.prefix.to_string(),
            pool: w.pool.clone(),
            endpoint: w.endpoint.clone(),
            tunnels,
        },
    )
}
