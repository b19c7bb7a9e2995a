//! Address pools, their utilization and free addresses, reservations, and leases.

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use edge_shared::accounting::unix_now;
use edge_shared::store::{LeaseQuery, LeaseRow, LeaseStateFilter, StoreError};
use edge_shared::types::Pool;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::envelope::{
    created, created_at, decode_pair_cursor, limit_of, one, page, page_by_key, split_page, Answer,
    ApiError, ApiJson, ApiPath, ApiQuery, Created, Envelope, ErrorBody, PageQuery,
};
use super::ApiState;
use crate::ops::pools::{self as ops, PoolReport, PoolSpec};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PoolView {
    name: String,
    /// 4 or 6.
    family: u8,
    /// CIDRs or IPv4 `first-last` ranges.
    ranges: Vec<String>,
    /// Excluded and reserved addresses.
    excludes: Vec<String>,
    /// What is handed out: 32 for IPv4, the prefix length for IPv6.
    prefix_len: u8,
    block_size: u32,
    reply_attributes: Vec<String>,
    next_pool: Option<String>,
    /// Addresses (prefixes) in the ranges.
    size: u64,
}

impl From<Pool> for PoolView {
    fn from(p: Pool) -> Self {
        let size = ops::size_of(&p);
        PoolView {
            name: p.name,
            family: p.family,
            ranges: p.ranges,
            excludes: p.excludes,
            prefix_len: p.prefix_len,
            block_size: p.block_size,
            reply_attributes: p.reply_attributes,
            next_pool: p.next_pool,
            size,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolCreate {
    name: String,
    /// CIDRs (`100.64.0.0/16`, `2001:db8::/40`) or IPv4 ranges (`10.0.0.10-10.0.0.99`).
    ranges: Vec<String>,
    #[serde(default)]
    excludes: Vec<String>,
    /// IPv6: the length of the prefixes handed out (default 64).
    prefix_length: Option<u8>,
    /// Slots per block an instance claims; default from the pool's size.
    block_size: Option<u32>,
    #[serde(default)]
    reply_attributes: Vec<String>,
    next_pool: Option<String>,
}

/// Pools in name order.
#[utoipa::path(get, path = "/api/v1/pools", tag = "ipam", params(PageQuery),
    responses((status = 200, body = Envelope<Vec<PoolView>>)), security(("bearer" = [])))]
pub async fn list_pools(
    State(s): State<ApiState>,
    uri: Uri,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Answer<Vec<PoolView>> {
    let pools: Vec<PoolView> = s
        .store
        .pool_list()
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    page_by_key(&uri, pools, |p| &p.name, &q)
}

/// Creates a pool.
#[utoipa::path(post, path = "/api/v1/pools", tag = "ipam", request_body = PoolCreate,
    responses((status = 201, body = Envelope<PoolView>), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_pool(
    State(s): State<ApiState>,
    uri: Uri,
    ApiJson(b): ApiJson<PoolCreate>,
) -> Created<PoolView> {
    let (pool, _) = ops::pool_add(
        &s.store,
        &s.dict,
        PoolSpec {
            name: b.name,
            ranges: b.ranges,
            excludes: b.excludes,
            prefix_length: b.prefix_length.unwrap_or(64),
            block_size: b.block_size,
            reply_attributes: b.reply_attributes,
            next_pool: b.next_pool,
            purpose: None,
        },
    )
    .await?;
    let name = pool.name.clone();
    created(&uri, &name, pool.into())
}

/// One pool.
#[utoipa::path(get, path = "/api/v1/pools/{name}", tag = "ipam", params(("name" = String, Path)),
    responses((status = 200, body = Envelope<PoolView>), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_pool(
    State(s): State<ApiState>,
    uri: Uri,
    ApiPath(name): ApiPath<String>,
) -> Answer<PoolView> {
    one(&uri, s.store.pool_get(&name).await?.into())
}

/// Removes a pool no plan uses.
#[utoipa::path(delete, path = "/api/v1/pools/{name}", tag = "ipam",
    params(("name" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete_pool(
    State(s): State<ApiState>,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    s.store.pool_remove(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Utilization: total, reserved, offered, bound, kept, free, and per block.
#[utoipa::path(get, path = "/api/v1/pools/{name}/usage", tag = "ipam",
    params(("name" = String, Path)),
    responses((status = 200, body = Envelope<PoolReport>), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn pool_usage(
    State(s): State<ApiState>,
    uri: Uri,
    ApiPath(name): ApiPath<String>,
) -> Answer<PoolReport> {
    one(&uri, ops::usage(&s.store, &name).await?)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CountQuery {
    /// How many (1 to 1000, default 1).
    count: Option<usize>,
}

/// The next free addresses, lowest first (NetBox's available-ips).
#[utoipa::path(get, path = "/api/v1/pools/{name}/available", tag = "ipam",
    params(("name" = String, Path), CountQuery),
    responses((status = 200, body = Envelope<Vec<String>>), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn pool_available(
    State(s): State<ApiState>,
    uri: Uri,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<CountQuery>,
) -> Answer<Vec<String>> {
    let count = match q.count {
        None => 1,
        Some(n @ 1..=1000) => n,
        Some(_) => return Err(ApiError::invalid("count", "must be between 1 and 1000")),
    };
    one(&uri, ops::next_free(&s.store, &name, count).await?)
}

#[derive(Debug, Deserialize, ToSchema, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AddressBody {
    /// An address, a range or a CIDR (reservations); an address or IPv6 prefix (leases).
    address: String,
}

/// Reserves an address (or range, or CIDR) of the pool: never handed out.
#[utoipa::path(post, path = "/api/v1/pools/{name}/reservations", tag = "ipam",
    params(("name" = String, Path)), request_body = AddressBody,
    responses((status = 201, body = Envelope<PoolView>), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn reserve(
    State(s): State<ApiState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(b): ApiJson<AddressBody>,
) -> Created<PoolView> {
    ops::reserve(&s.store, &name, &b.address).await?;
    // The reservation lives in the pool's excludes; the pool is what there is to GET.
    let pool = s.store.pool_get(&name).await?;
    created_at(format!("/api/v1/pools/{name}"), pool.into())
}

/// Undoes a reservation.
#[utoipa::path(delete, path = "/api/v1/pools/{name}/reservations", tag = "ipam",
    params(("name" = String, Path), AddressBody),
    responses((status = 204), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn unreserve(
    State(s): State<ApiState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(b): ApiQuery<AddressBody>,
) -> Result<StatusCode, ApiError> {
    ops::unreserve(&s.store, &name, &b.address).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A lease.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LeaseView {
    pool: String,
    address: String,
    username: String,
    /// `offered`, `bound`, `released` (kept for its subscriber until `expires_at`) or
    /// `expired`.
    state: String,
    /// The accounting session's unique id, once bound.
    session: Option<String>,
    /// Unix seconds.
    expires_at: i64,
    /// The instance that last changed it (`operator` for a release through the API).
    instance: String,
}

fn lease_view(r: LeaseRow, pools: &[Pool], now: i64) -> LeaseView {
    LeaseView {
        pool: pools
            .iter()
            .find(|p| p.id.0 == r.pool_id)
            .map_or_else(String::new, |p| p.name.clone()),
        state: if r.expires_at > now {
            r.state
        } else {
            "expired".into()
        },
        address: r.address,
        username: r.username,
        session: r.acct_unique_id,
        expires_at: r.expires_at,
        instance: r.instance,
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LeaseFilter {
    /// The pool's name.
    pool: Option<String>,
    address: Option<String>,
    username: Option<String>,
    /// The accounting session's unique id.
    session: Option<String>,
    /// `offered`, `bound` or `released` (and not expired), or `expired`.
    state: Option<String>,
    /// 1 to 1000 (default 50).
    limit: Option<usize>,
    cursor: Option<String>,
}

/// Leases, in pool and address order: all of them, or by pool, address, subscriber, session
/// and state.
#[utoipa::path(get, path = "/api/v1/leases", tag = "ipam", params(LeaseFilter),
    responses((status = 200, body = Envelope<Vec<LeaseView>>), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_leases(
    State(s): State<ApiState>,
    uri: Uri,
    ApiQuery(f): ApiQuery<LeaseFilter>,
) -> Answer<Vec<LeaseView>> {
    let limit = limit_of(f.limit)?;
    let state = match f.state.as_deref() {
        None => None,
        Some(v) => Some(
            LeaseStateFilter::parse(v)
                .ok_or_else(|| ApiError::invalid("state", "offered, bound, released or expired"))?,
        ),
    };
    let after = f.cursor.as_deref().map(decode_pair_cursor).transpose()?;
    let pools = s.store.pool_list().await?;
    let pool = match &f.pool {
        None => None,
        Some(name) => Some(
            pools
                .iter()
                .find(|p| &p.name == name)
                .map(|p| p.id)
                .ok_or_else(|| StoreError::NotFound("pool", name.clone()))?,
        ),
    };
    let now = unix_now();
    let rows = s
        .store
        .leases_list(&LeaseQuery {
            pool,
            address: f.address.as_deref(),
            username: f.username.as_deref(),
            unique_id: f.session.as_deref(),
            state,
            now,
            after,
            limit: limit as i64 + 1,
        })
        .await?;
    let (rows, next) = split_page(rows, limit, |r| format!("{}:{}", r.pool_id, r.slot));
    let items = rows
        .into_iter()
        .map(|r| lease_view(r, &pools, now))
        .collect();
    page(&uri, items, limit, next)
}

/// Frees a lease now. Refused (409) while an open session holds it: disconnect first.
#[utoipa::path(post, path = "/api/v1/leases/release", tag = "ipam", request_body = AddressBody,
    responses((status = 200, body = Envelope<LeaseView>), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn release_lease(
    State(s): State<ApiState>,
    uri: Uri,
    ApiJson(b): ApiJson<AddressBody>,
) -> Answer<LeaseView> {
    let row = ops::release_lease(&s.store, &b.address).await?;
    let pools = s.store.pool_list().await?;
    // Released now: shown as released (not expired) in this answer.
    one(&uri, lease_view(row, &pools, i64::MIN))
}
