//! Address pools: create, reserve and unreserve, utilization, next free addresses, and an
//! operator's release of a lease.

use std::collections::HashSet;

use edge_ipam::alloc::PoolAlloc;
use edge_ipam::space::Space;
use edge_radius::dict::Dictionary;
use edge_shared::accounting::unix_now;
use edge_shared::leases::{unix_micros, LeaseChange, LeaseState};
use edge_shared::store::{LeaseRow, NewPool, Store, StoreError};
use edge_shared::types::{Pool, PoolId};
use serde::Serialize;

use super::{invalid, OpError};

/// The instance name written on leases an operator released.
pub const OPERATOR_INSTANCE: &str = "operator";

/// A pool to create.
#[derive(Debug, Clone, Default)]
pub struct PoolSpec {
    pub name: String,
    /// CIDRs or IPv4 `first-last` ranges, all of one family.
    pub ranges: Vec<String>,
    pub excludes: Vec<String>,
    /// IPv6 only: the length handed out.
    pub prefix_length: u8,
    pub block_size: Option<u32>,
    pub reply_attributes: Vec<String>,
    pub next_pool: Option<String>,
    /// `subscribers` (default) or `nas-tunnels`.
    pub purpose: Option<String>,
}

/// A block size giving about 64 blocks, between 4 and 1024 slots.
fn default_block_size(len: u64) -> u32 {
    (len / 64).clamp(4, 1024).next_power_of_two().min(1024) as u32
}

/// Creates the pool; returns it with its size in slots.
pub async fn pool_add(
    store: &Store,
    dict: &Dictionary,
    s: PoolSpec,
) -> Result<(Pool, u64), OpError> {
    if s.name.is_empty() {
        return Err(invalid("name", "must not be empty"));
    }
    if s.ranges.is_empty() {
        return Err(invalid("ranges", "give at least one CIDR or range"));
    }
    let v6 = s.ranges.iter().any(|c| c.contains(':'));
    if v6 && s.ranges.iter().any(|c| !c.contains(':')) {
        return Err(invalid("ranges", "a pool is all IPv4 or all IPv6"));
    }
    let (family, prefix_len) = if v6 { (6, s.prefix_length) } else { (4, 32) };
    let space = Space::parse(family, &s.ranges, prefix_len).map_err(|e| invalid("ranges", e))?;
    space
        .excluded(&s.excludes)
        .map_err(|e| invalid("excludes", e))?;
    super::catalog::check_attributes(dict, "reply_attributes", &s.reply_attributes)?;
    if let Some(next) = &s.next_pool {
        store
            .pool_get(next)
            .await
            .map_err(|_| invalid("next_pool", format!("no pool named `{next}`")))?;
    }
    let block_size = s
        .block_size
        .unwrap_or_else(|| default_block_size(space.len()));
    if block_size == 0 {
        return Err(invalid("block_size", "must be at least 1"));
    }
    let blocks = PoolAlloc::new(space.len(), block_size).block_count();
    let pool = store
        .pool_add(&NewPool {
            name: s.name,
            family,
            ranges: s.ranges,
            excludes: s.excludes,
            prefix_len,
            block_size,
            reply_attributes: s.reply_attributes,
            next_pool: s.next_pool,
            blocks,
            purpose: s.purpose.unwrap_or_else(|| "subscribers".into()),
        })
        .await?;
    Ok((pool, space.len()))
}

/// Addresses (prefixes) in a pool's ranges; 0 if they no longer parse.
pub fn size_of(pool: &Pool) -> u64 {
    Space::parse(pool.family, &pool.ranges, pool.prefix_len).map_or(0, |s| s.len())
}

pub fn space_of(pool: &Pool) -> Result<Space, OpError> {
    // A stored pool parsed when it was added; failing now means the row was edited by hand.
    Space::parse(pool.family, &pool.ranges, pool.prefix_len).map_err(|e| invalid("ranges", e))
}

/// Keeps `address` (an address, range or CIDR inside the pool) from being handed out.
pub async fn reserve(store: &Store, name: &str, address: &str) -> Result<(), OpError> {
    let pool = store.pool_get(name).await?;
    let space = space_of(&pool)?;
    let slots = space
        .excluded(&[address.to_string()])
        .map_err(|e| invalid("address", e))?;
    if slots.is_empty() {
        return Err(invalid(
            "address",
            format!("{address} is not in pool {name}"),
        ));
    }
    let mut excludes = pool.excludes.clone();
    if !excludes.iter().any(|e| e == address) {
        excludes.push(address.to_string());
    }
    store.pool_set_excludes(name, &excludes).await?;
    Ok(())
}

/// Undoes a reservation.
pub async fn unreserve(store: &Store, name: &str, address: &str) -> Result<(), OpError> {
    let pool = store.pool_get(name).await?;
    let excludes: Vec<String> = pool
        .excludes
        .iter()
        .filter(|e| *e != address)
        .cloned()
        .collect();
    if excludes.len() == pool.excludes.len() {
        return Err(StoreError::NotFound("reservation", address.to_string()).into());
    }
    store.pool_set_excludes(name, &excludes).await?;
    Ok(())
}

/// Utilization of a pool.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PoolReport {
    pub pool: String,
    /// Addresses (prefixes) that can be handed out: the pool less excluded and static ones.
    pub total: u64,
    /// Excluded, reserved or static.
    pub reserved: u64,
    pub offered: u64,
    pub bound: u64,
    /// Addresses held by NAS tunnels (a `nas-tunnels` pool).
    pub tunnels: u64,
    /// Released, kept for their subscriber for a while (free for others only when nothing
    /// else is).
    pub kept: u64,
    pub free: u64,
    pub utilization_percent: f64,
    pub blocks: Vec<BlockReport>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BlockReport {
    pub block: i64,
    pub first: String,
    pub last: String,
    pub size: u64,
    pub owner: Option<String>,
    pub used: i64,
}

pub async fn usage(store: &Store, name: &str) -> Result<PoolReport, OpError> {
    let pool = store.pool_get(name).await?;
    let space = space_of(&pool)?;
    let reserved = reserved(store, &pool, &space).await?;
    let total = space.len() - reserved.len() as u64;
    let u = store.pool_use(&pool, unix_now()).await?;
    let tunnels = store.nas_tunnel_addresses(pool.id).await?.len() as u64;
    let used = (u.offered + u.bound) as u64 + tunnels;
    let alloc = PoolAlloc::new(space.len(), pool.block_size);
    let blocks = u
        .blocks
        .iter()
        .map(|b| {
            let (from, to) = alloc.block_range(b.block as u32);
            BlockReport {
                block: b.block,
                first: space.text(from).unwrap_or_default(),
                last: space.text(to.saturating_sub(1)).unwrap_or_default(),
                size: to - from,
                owner: b.owner.clone(),
                used: b.used,
            }
        })
        .collect();
    Ok(PoolReport {
        pool: pool.name,
        total,
        reserved: reserved.len() as u64,
        offered: u.offered as u64,
        bound: u.bound as u64,
        tunnels,
        kept: u.sticky as u64,
        free: total.saturating_sub(used),
        utilization_percent: if total == 0 {
            0.0
        } else {
            (used as f64 * 1000.0 / total as f64).round() / 10.0
        },
        blocks,
    })
}

/// The first `count` free addresses (NetBox's available-ips).
pub async fn next_free(store: &Store, name: &str, count: usize) -> Result<Vec<String>, OpError> {
    let pool = store.pool_get(name).await?;
    let space = space_of(&pool)?;
    let mut taken = reserved(store, &pool, &space).await?;
    taken.extend(
        store
            .leases_held(pool.id, unix_now())
            .await?
            .into_iter()
            .map(|s| s as u64),
    );
    for a in store.nas_tunnel_addresses(pool.id).await? {
        taken.extend(space.slot_of_text(&a));
    }
    Ok((0..space.len())
        .filter(|s| !taken.contains(s))
        .take(count)
        .filter_map(|s| space.text(s))
        .collect())
}

/// Excluded slots and those of static addresses.
async fn reserved(store: &Store, pool: &Pool, space: &Space) -> Result<HashSet<u64>, OpError> {
    let statics: Vec<_> = store
        .static_addresses()
        .await?
        .into_iter()
        .map(|(_, ip)| ip)
        .collect();
    let slots = space
        .reserved(&pool.excludes, &statics)
        .map_err(|e| invalid("excludes", e))?;
    Ok(slots.into_iter().collect())
}

/// Frees a lease now (no stickiness). A lease bound to an open accounting session is
/// refused: disconnect the session first, or its next Interim-Update claims the address
/// again. The instance owning the address's block takes the change in its next sync.
pub async fn release_lease(store: &Store, address: &str) -> Result<LeaseRow, OpError> {
    let now = unix_now();
    let rows = store.leases_of_address(address).await?;
    let Some(row) = rows
        .into_iter()
        .find(|r| r.state != "released" && r.expires_at > now)
    else {
        return Err(StoreError::NotFound("lease", address.to_string()).into());
    };
    if let (Some(id), "bound") = (&row.acct_unique_id, row.state.as_str()) {
        if matches!(store.session_get(id).await, Ok(s) if s.is_open()) {
            return Err(OpError::Conflict(format!(
                "{address} is bound to open session {id}; disconnect it first"
            )));
        }
    }
    let change = LeaseChange {
        pool: PoolId(row.pool_id),
        slot: row.slot,
        address: row.address.clone(),
        username: row.username.clone(),
        state: LeaseState::Released,
        unique_id: None,
        expires_at: now,
        at_us: unix_micros(),
        instance: OPERATOR_INSTANCE.into(),
    };
    store.lease_write(&change).await?;
    Ok(LeaseRow {
        state: "released".into(),
        acct_unique_id: None,
        expires_at: now,
        updated_us: change.at_us,
        instance: change.instance,
        ..row
    })
}
