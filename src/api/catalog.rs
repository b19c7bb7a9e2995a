//! Subscribers, plans and NAS clients.

use std::net::Ipv4Addr;

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use edge_shared::store::NewNas;
use edge_shared::types::{Nas, Plan, Pool, SubscriberRecord, SubscriberStatus};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use super::envelope::{
    created, decode_cursor, limit_of, one, page, page_by_key, split_page, Answer, ApiError,
    ApiJson, ApiPath, ApiQuery, Created, Envelope, ErrorBody, PageQuery,
};
use super::ApiState;
use crate::ops::catalog::{self, PlanSpec};

/// A subscriber (never its password).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SubscriberView {
    username: String,
    plan: Option<String>,
    /// `active` or `suspended`.
    status: String,
    static_ipv4: Option<String>,
    calling_station_id: Option<String>,
}

impl From<SubscriberRecord> for SubscriberView {
    fn from(r: SubscriberRecord) -> Self {
        SubscriberView {
            username: r.username,
            plan: r.plan,
            status: r.status.as_str().to_string(),
            static_ipv4: r.static_ipv4.map(|a| a.to_string()),
            calling_station_id: r.calling_station_id,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriberCreate {
    username: String,
    /// Cleartext, or a hash: `{SSHA}…`, `{NT}…`, `$6$…`, `$2y$…`, `$argon2id$…`.
    password: String,
    plan: Option<String>,
    /// `active` (default) or `suspended`.
    status: Option<String>,
    static_ipv4: Option<String>,
    calling_station_id: Option<String>,
}

/// Fields to change; `null` clears an optional one.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriberPatch {
    password: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    plan: Option<Option<String>>,
    status: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    static_ipv4: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    calling_station_id: Option<Option<String>>,
}

/// A field that is present (maybe `null`) is `Some`; an absent one stays `None`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

fn status_of(s: Option<&str>) -> Result<SubscriberStatus, ApiError> {
    SubscriberStatus::parse(s.unwrap_or("active"))
        .ok_or_else(|| ApiError::invalid("status", "active or suspended"))
}

fn ipv4_of(s: Option<&str>) -> Result<Option<Ipv4Addr>, ApiError> {
    s.map(|a| {
        a.parse()
            .map_err(|_| ApiError::invalid("static_ipv4", "not an IPv4 address"))
    })
    .transpose()
}

/// Subscribers in username order.
#[utoipa::path(get, path = "/api/v1/subscribers", tag = "subscribers", params(PageQuery),
    responses((status = 200, body = Envelope<Vec<SubscriberView>>)), security(("bearer" = [])))]
pub async fn list_subscribers(
    State(s): State<ApiState>,
    uri: Uri,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Answer<Vec<SubscriberView>> {
    let limit = limit_of(q.limit)?;
    let after = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let rows = s
        .store
        .subscriber_list(after.as_deref().unwrap_or(""), limit as i64 + 1)
        .await?;
    let (rows, next) = split_page(rows, limit, |r| r.username.clone());
    page(
        &uri,
        rows.into_iter().map(Into::into).collect(),
        limit,
        next,
    )
}

/// Creates a subscriber.
#[utoipa::path(post, path = "/api/v1/subscribers", tag = "subscribers",
    request_body = SubscriberCreate,
    responses((status = 201, body = Envelope<SubscriberView>),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_subscriber(
    State(s): State<ApiState>,
    uri: Uri,
    ApiJson(b): ApiJson<SubscriberCreate>,
) -> Created<SubscriberView> {
    let rec = SubscriberRecord {
        username: b.username,
        password: b.password,
        plan: b.plan,
        status: status_of(b.status.as_deref())?,
        static_ipv4: ipv4_of(b.static_ipv4.as_deref())?,
        calling_station_id: b.calling_station_id,
    };
    catalog::subscriber_create(&s.store, rec.clone()).await?;
    created(&uri, &rec.username.clone(), rec.into())
}

/// One subscriber.
#[utoipa::path(get, path = "/api/v1/subscribers/{username}", tag = "subscribers",
    params(("username" = String, Path)),
    responses((status = 200, body = Envelope<SubscriberView>), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_subscriber(
    State(s): State<ApiState>,
    uri: Uri,
    ApiPath(username): ApiPath<String>,
) -> Answer<SubscriberView> {
    one(&uri, s.store.subscriber_get(&username).await?.into())
}

/// Changes a subscriber; absent fields keep their value.
#[utoipa::path(patch, path = "/api/v1/subscribers/{username}", tag = "subscribers",
    params(("username" = String, Path)), request_body = SubscriberPatch,
    responses((status = 200, body = Envelope<SubscriberView>), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn patch_subscriber(
    State(s): State<ApiState>,
    uri: Uri,
    ApiPath(username): ApiPath<String>,
    ApiJson(p): ApiJson<SubscriberPatch>,
) -> Answer<SubscriberView> {
    let mut rec = s.store.subscriber_get(&username).await?;
    if let Some(pw) = p.password {
        rec.password = pw;
    }
    if let Some(plan) = p.plan {
        rec.plan = plan;
    }
    if let Some(st) = p.status {
        rec.status = status_of(Some(&st))?;
    }
    if let Some(ip) = p.static_ipv4 {
        rec.static_ipv4 = ipv4_of(ip.as_deref())?;
    }
    if let Some(c) = p.calling_station_id {
        rec.calling_station_id = c;
    }
    catalog::subscriber_save(&s.store, rec.clone()).await?;
    one(&uri, rec.into())
}

/// Deletes a subscriber (open sessions are not disconnected: use `.../disconnect`).
#[utoipa::path(delete, path = "/api/v1/subscribers/{username}", tag = "subscribers",
    params(("username" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn delete_subscriber(
    State(s): State<ApiState>,
    ApiPath(username): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    s.store.subscriber_remove(&username).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A plan, its pools by name.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanView {
    name: String,
    /// `Attribute = value` lines, by dictionary name.
    #[serde(default)]
    reply_attributes: Vec<String>,
    session_timeout_seconds: Option<u32>,
    interim_interval_seconds: Option<u32>,
    simultaneous_use: Option<u32>,
    /// IPv4 pool for Framed-IP-Address.
    pool: Option<String>,
    /// IPv6 pool for Framed-IPv6-Prefix.
    ipv6_pool: Option<String>,
    /// IPv6 pool for Delegated-IPv6-Prefix.
    delegated_pool: Option<String>,
}

fn plan_view(p: Plan, pools: &[Pool]) -> PlanView {
    let name = |id| {
        pools
            .iter()
            .find(|x| Some(x.id) == id)
            .map(|x| x.name.clone())
    };
    PlanView {
        pool: name(p.pool),
        ipv6_pool: name(p.ipv6_pool),
        delegated_pool: name(p.delegated_pool),
        name: p.name,
        reply_attributes: p.reply_attributes,
        session_timeout_seconds: p.session_timeout_seconds,
        interim_interval_seconds: p.interim_interval_seconds,
        simultaneous_use: p.simultaneous_use,
    }
}

async fn plans(s: &ApiState) -> Result<Vec<PlanView>, ApiError> {
    let pools = s.store.pool_list().await?;
    let v: Vec<PlanView> = s
        .store
        .plan_list()
        .await?
        .into_iter()
        .map(|p| plan_view(p, &pools))
        .collect();
    Ok(v)
}

/// Plans in name order.
#[utoipa::path(get, path = "/api/v1/plans", tag = "plans", params(PageQuery),
    responses((status = 200, body = Envelope<Vec<PlanView>>)), security(("bearer" = [])))]
pub async fn list_plans(
    State(s): State<ApiState>,
    uri: Uri,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Answer<Vec<PlanView>> {
    page_by_key(&uri, plans(&s).await?, |p| &p.name, &q)
}

/// Creates a plan; reply attributes are checked against the dictionaries.
#[utoipa::path(post, path = "/api/v1/plans", tag = "plans", request_body = PlanView,
    responses((status = 201, body = Envelope<PlanView>), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_plan(
    State(s): State<ApiState>,
    uri: Uri,
    ApiJson(b): ApiJson<PlanView>,
) -> Created<PlanView> {
    let p = catalog::plan_add(
        &s.store,
        &s.dict,
        PlanSpec {
            name: b.name.clone(),
            reply_attributes: b.reply_attributes.clone(),
            session_timeout_seconds: b.session_timeout_seconds,
            interim_interval_seconds: b.interim_interval_seconds,
            simultaneous_use: b.simultaneous_use,
            pool: b.pool.clone(),
            ipv6_pool: b.ipv6_pool.clone(),
            delegated_pool: b.delegated_pool.clone(),
        },
    )
    .await?;
    created(&uri, &p.name, b)
}

/// One plan.
#[utoipa::path(get, path = "/api/v1/plans/{name}", tag = "plans", params(("name" = String, Path)),
    responses((status = 200, body = Envelope<PlanView>), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_plan(
    State(s): State<ApiState>,
    uri: Uri,
    ApiPath(name): ApiPath<String>,
) -> Answer<PlanView> {
    let p = plans(&s)
        .await?
        .into_iter()
        .find(|p| p.name == name)
        .ok_or_else(|| ApiError::not_found(format!("plan `{name}` not found")))?;
    one(&uri, p)
}

/// Deletes a plan no subscriber uses.
#[utoipa::path(delete, path = "/api/v1/plans/{name}", tag = "plans",
    params(("name" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete_plan(
    State(s): State<ApiState>,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    s.store.plan_remove(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A NAS client (never its secret).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NasView {
    name: String,
    /// An address or a CIDR; for a WireGuard NAS, its tunnel address.
    address: String,
    vendor: String,
    coa_port: u16,
    require_message_authenticator: bool,
    rate_limit_per_second: u32,
    /// Its WireGuard peer, when it reaches the edge through a tunnel.
    wireguard: Option<TunnelView>,
}

/// A NAS's WireGuard peer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TunnelView {
    public_key: String,
    tunnel_address: String,
    keepalive_seconds: u16,
    /// Only in the answer to the registration that generated the key pair: the NAS's
    /// private key, kept nowhere else.
    #[serde(skip_serializing_if = "Option::is_none")]
    private_key: Option<String>,
    /// Only in the answer to the registration: the configuration to paste into the NAS
    /// (with the private key and secret when they were given or generated just now).
    #[serde(skip_serializing_if = "Option::is_none")]
    config: Option<TunnelConfig>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TunnelConfig {
    routeros: String,
    wg_quick: String,
}

impl From<&Nas> for NasView {
    fn from(n: &Nas) -> Self {
        NasView {
            name: n.name.clone(),
            address: n.address.clone(),
            vendor: n.vendor.clone(),
            coa_port: n.coa_port,
            require_message_authenticator: n.require_message_authenticator,
            rate_limit_per_second: n.rate_limit_per_second,
            wireguard: n.tunnel.as_ref().map(|t| TunnelView {
                public_key: t.public_key.clone(),
                tunnel_address: t.address.to_string(),
                keepalive_seconds: t.keepalive_seconds,
                private_key: None,
                config: None,
            }),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NasCreate {
    name: String,
    /// Required unless `wireguard` is given (the tunnel address is then assigned).
    address: Option<String>,
    secret: String,
    /// mikrotik, cisco, juniper, huawei, accel-ppp, nokia or generic (default).
    vendor: Option<String>,
    /// Default 3799.
    coa_port: Option<u16>,
    /// Default true (CVE-2024-3596).
    require_message_authenticator: Option<bool>,
    /// Default 0: unlimited.
    rate_limit_per_second: Option<u32>,
    /// Reach the edge through WireGuard (`{}`: the edge generates the NAS's key pair).
    wireguard: Option<TunnelCreate>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TunnelCreate {
    /// The NAS's own public key (base64); absent: a key pair is generated and its private
    /// key returned once.
    public_key: Option<String>,
}

async fn nas_views(s: &ApiState) -> Result<Vec<NasView>, ApiError> {
    Ok(s.store.nas_list().await?.iter().map(Into::into).collect())
}

/// NAS clients in name order.
#[utoipa::path(get, path = "/api/v1/nas", tag = "nas", params(PageQuery),
    responses((status = 200, body = Envelope<Vec<NasView>>)), security(("bearer" = [])))]
pub async fn list_nas(
    State(s): State<ApiState>,
    uri: Uri,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Answer<Vec<NasView>> {
    page_by_key(&uri, nas_views(&s).await?, |n| &n.name, &q)
}

/// Registers a NAS.
#[utoipa::path(post, path = "/api/v1/nas", tag = "nas", request_body = NasCreate,
    responses((status = 201, body = Envelope<NasView>), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_nas(
    State(s): State<ApiState>,
    uri: Uri,
    ApiJson(b): ApiJson<NasCreate>,
) -> Created<NasView> {
    let n = NewNas {
        name: b.name,
        address: b.address.unwrap_or_default(),
        secret: b.secret,
        vendor: b.vendor.unwrap_or_else(|| "generic".into()),
        coa_port: b.coa_port.unwrap_or(3799),
        require_message_authenticator: b.require_message_authenticator.unwrap_or(true),
        rate_limit_per_second: b.rate_limit_per_second.unwrap_or(0),
        tunnel: None,
    };
    let view = match b.wireguard {
        None => {
            let n = catalog::nas_add(&s.store, n).await?;
            (&n).into()
        }
        Some(t) => super::wireguard::register(&s, n, t.public_key.as_deref()).await?,
    };
    s.changed();
    created(&uri, &view.name.clone(), view)
}

impl NasView {
    /// The registration's answer: the view with what is shown only once.
    pub(super) fn with_secrets(
        mut self,
        private_key: Option<String>,
        routeros: String,
        wg_quick: String,
    ) -> NasView {
        if let Some(t) = &mut self.wireguard {
            t.private_key = private_key;
            t.config = Some(TunnelConfig { routeros, wg_quick });
        }
        self
    }
}

/// One NAS.
#[utoipa::path(get, path = "/api/v1/nas/{name}", tag = "nas", params(("name" = String, Path)),
    responses((status = 200, body = Envelope<NasView>), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_nas(
    State(s): State<ApiState>,
    uri: Uri,
    ApiPath(name): ApiPath<String>,
) -> Answer<NasView> {
    let n = nas_views(&s)
        .await?
        .into_iter()
        .find(|n| n.name == name)
        .ok_or_else(|| ApiError::not_found(format!("NAS `{name}` not found")))?;
    one(&uri, n)
}

/// Removes a NAS.
#[utoipa::path(delete, path = "/api/v1/nas/{name}", tag = "nas", params(("name" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn delete_nas(
    State(s): State<ApiState>,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    s.store.nas_remove(&name).await?;
    s.changed();
    Ok(StatusCode::NO_CONTENT)
}
