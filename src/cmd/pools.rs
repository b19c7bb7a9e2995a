//! `pools` and `leases`: address pools, reservations, utilization, next available
//! addresses, and lease search.

use std::collections::HashSet;
use std::net::IpAddr;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use edge_ipam::alloc::PoolAlloc;
use edge_ipam::space::Space;
use edge_radius::dict::Dictionary;
use edge_shared::accounting::unix_now;
use edge_shared::store::{NewPool, Store};
use edge_shared::types::Pool;

use super::admin::open_store;
use crate::config::Config;

#[derive(Subcommand)]
pub enum PoolCmd {
    /// Create a pool from CIDRs and ranges (all IPv4, or all IPv6).
    Add {
        #[arg(long)]
        name: String,
        /// A CIDR (`100.64.0.0/16`, `2001:db8::/40`) or an IPv4 range (`10.0.0.10-10.0.0.99`).
        /// Repeat for more.
        #[arg(long = "cidr", required = true)]
        cidr: Vec<String>,
        /// An address, CIDR or range never handed out. Repeat for more.
        #[arg(long = "exclude")]
        exclude: Vec<String>,
        /// IPv6: the length of the prefixes handed out (64 for Framed-IPv6-Prefix, 56 for
        /// Delegated-IPv6-Prefix, ...).
        #[arg(long, default_value_t = 64)]
        prefix_length: u8,
        /// Addresses per block an instance claims; default from the pool's size.
        #[arg(long)]
        block_size: Option<u32>,
        /// `Attribute = value` added to every Access-Accept with an address from this pool
        /// (DNS servers and the like). Repeat for more.
        #[arg(long = "reply")]
        reply: Vec<String>,
        /// Pool to take from when this one has nothing free.
        #[arg(long)]
        next_pool: Option<String>,
    },
    List,
    Remove {
        name: String,
    },
    /// Keep an address (or range, or CIDR) from being handed out.
    Reserve {
        name: String,
        address: String,
    },
    /// Undo a reservation.
    Release {
        name: String,
        address: String,
    },
    /// Utilization: total, held, kept for subscribers, free; with --blocks, by block.
    Usage {
        name: String,
        #[arg(long)]
        blocks: bool,
    },
    /// The next free addresses (as NetBox's available-ips).
    Next {
        name: String,
        #[arg(long, default_value_t = 1)]
        count: usize,
    },
}

/// Search leases by address, subscriber or session.
#[derive(Args)]
pub struct LeaseQuery {
    #[arg(long)]
    address: Option<String>,
    #[arg(long)]
    username: Option<String>,
    /// The accounting session's unique id.
    #[arg(long)]
    session: Option<String>,
    #[arg(long, default_value_t = 50)]
    limit: i64,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
}

/// A block size giving about 64 blocks, between 4 and 1024 slots.
fn default_block_size(len: u64) -> u32 {
    (len / 64).clamp(4, 1024).next_power_of_two().min(1024) as u32
}

pub async fn pools(cfg: &Config, c: PoolCmd) -> anyhow::Result<()> {
    let store = open_store(cfg).await?;
    match c {
        PoolCmd::Add {
            name,
            cidr,
            exclude,
            prefix_length,
            block_size,
            reply,
            next_pool,
        } => {
            let v6 = cidr.iter().any(|c| c.contains(':'));
            if v6 && cidr.iter().any(|c| !c.contains(':')) {
                bail!("a pool is all IPv4 or all IPv6");
            }
            let (family, prefix_len) = if v6 { (6, prefix_length) } else { (4, 32) };
            let space = Space::parse(family, &cidr, prefix_len).map_err(anyhow::Error::msg)?;
            space.excluded(&exclude).map_err(anyhow::Error::msg)?;
            let dict = Dictionary::load_with(&cfg.radius.dictionary_dirs)?;
            for line in &reply {
                dict.compile_pair(line)
                    .with_context(|| format!("reply attribute `{line}`"))?;
            }
            if let Some(next) = &next_pool {
                store.pool_get(next).await?;
            }
            let block_size = block_size.unwrap_or_else(|| default_block_size(space.len()));
            if block_size == 0 {
                bail!("--block-size must be at least 1");
            }
            let blocks = PoolAlloc::new(space.len(), block_size).block_count();
            let p = store
                .pool_add(&NewPool {
                    name,
                    family,
                    ranges: cidr,
                    excludes: exclude,
                    prefix_len,
                    block_size,
                    reply_attributes: reply,
                    next_pool,
                    blocks,
                })
                .await?;
            println!(
                "added pool {} ({} {}, {} blocks of {block_size})",
                p.name,
                space.len(),
                if v6 {
                    format!("/{prefix_len} prefixes")
                } else {
                    "addresses".into()
                },
                blocks
            );
        }
        PoolCmd::List => {
            println!(
                "{:<16} {:<4} {:<10} {:<7} {:<10} {:<12} RANGES",
                "NAME", "IP", "SIZE", "PREFIX", "BLOCK", "NEXT"
            );
            for p in store.pool_list().await? {
                let size = Space::parse(p.family, &p.ranges, p.prefix_len).map_or(0, |s| s.len());
                println!(
                    "{:<16} {:<4} {:<10} {:<7} {:<10} {:<12} {}",
                    p.name,
                    format!("v{}", p.family),
                    size,
                    format!("/{}", p.prefix_len),
                    p.block_size,
                    p.next_pool.as_deref().unwrap_or("-"),
                    p.ranges.join(",")
                );
                for e in &p.excludes {
                    println!("    exclude {e}");
                }
                for r in &p.reply_attributes {
                    println!("    {r}");
                }
            }
        }
        PoolCmd::Remove { name } => {
            store.pool_remove(&name).await?;
            println!("removed pool {name}");
        }
        PoolCmd::Reserve { name, address } => {
            let pool = store.pool_get(&name).await?;
            let space = space_of(&pool)?;
            if space
                .excluded(std::slice::from_ref(&address))
                .map_err(anyhow::Error::msg)?
                .is_empty()
            {
                bail!("{address} is not in pool {name}");
            }
            let mut excludes = pool.excludes.clone();
            if !excludes.contains(&address) {
                excludes.push(address.clone());
            }
            store.pool_set_excludes(&name, &excludes).await?;
            println!("reserved {address} in pool {name}");
        }
        PoolCmd::Release { name, address } => {
            let pool = store.pool_get(&name).await?;
            let excludes: Vec<String> = pool
                .excludes
                .iter()
                .filter(|e| **e != address)
                .cloned()
                .collect();
            if excludes.len() == pool.excludes.len() {
                bail!("{address} is not reserved in pool {name}");
            }
            store.pool_set_excludes(&name, &excludes).await?;
            println!("released {address} in pool {name}");
        }
        PoolCmd::Usage { name, blocks } => {
            let pool = store.pool_get(&name).await?;
            let space = space_of(&pool)?;
            let reserved = reserved(&store, &pool, &space).await?;
            let total = space.len() - reserved.len() as u64;
            let u = store.pool_use(&pool, unix_now()).await?;
            let used = (u.offered + u.bound) as u64;
            println!("pool      {name}");
            println!(
                "total     {total}  (excluded or static: {})",
                reserved.len()
            );
            println!(
                "used      {used}  (offered {}, bound {})",
                u.offered, u.bound
            );
            println!(
                "kept      {}  (released, kept for their subscriber)",
                u.sticky
            );
            println!("free      {}", total.saturating_sub(used));
            println!(
                "utilization {:.1}%",
                if total == 0 {
                    0.0
                } else {
                    used as f64 * 100.0 / total as f64
                }
            );
            if blocks {
                let alloc = PoolAlloc::new(space.len(), pool.block_size);
                println!("{:<8} {:<36} {:<16} USED", "BLOCK", "RANGE", "OWNER");
                for b in &u.blocks {
                    let (from, to) = alloc.block_range(b.block as u32);
                    println!(
                        "{:<8} {:<36} {:<16} {}/{}",
                        b.block,
                        format!(
                            "{} - {}",
                            space.text(from).unwrap_or_default(),
                            space.text(to.saturating_sub(1)).unwrap_or_default()
                        ),
                        b.owner.as_deref().unwrap_or("-"),
                        b.used,
                        to - from
                    );
                }
            }
        }
        PoolCmd::Next { name, count } => {
            let pool = store.pool_get(&name).await?;
            let space = space_of(&pool)?;
            let mut taken = reserved(&store, &pool, &space).await?;
            taken.extend(
                store
                    .leases_held(pool.id, unix_now())
                    .await?
                    .into_iter()
                    .map(|s| s as u64),
            );
            let free: Vec<String> = (0..space.len())
                .filter(|s| !taken.contains(s))
                .take(count)
                .filter_map(|s| space.text(s))
                .collect();
            if free.is_empty() {
                bail!("pool {name} has no free address");
            }
            for a in free {
                println!("{a}");
            }
        }
    }
    Ok(())
}

fn space_of(pool: &Pool) -> anyhow::Result<Space> {
    Space::parse(pool.family, &pool.ranges, pool.prefix_len).map_err(anyhow::Error::msg)
}

/// Excluded slots and those of static addresses.
async fn reserved(store: &Store, pool: &Pool, space: &Space) -> anyhow::Result<HashSet<u64>> {
    let statics: Vec<_> = store
        .static_addresses()
        .await?
        .into_iter()
        .map(|(_, ip)| ip)
        .collect();
    let slots = space
        .reserved(&pool.excludes, &statics)
        .map_err(anyhow::Error::msg)?;
    Ok(slots.into_iter().collect())
}

pub async fn leases(cfg: &Config, q: LeaseQuery) -> anyhow::Result<()> {
    let store = open_store(cfg).await?;
    if q.address.is_none() && q.username.is_none() && q.session.is_none() {
        bail!("give --address, --username or --session");
    }
    let pools = store.pool_list().await?;
    let rows = store
        .lease_search(
            q.address.as_deref(),
            q.username.as_deref(),
            q.session.as_deref(),
            q.limit,
        )
        .await?;
    let now = unix_now();
    if q.json {
        for r in rows {
            println!("{}", serde_json::to_string(&r)?);
        }
        return Ok(());
    }
    println!(
        "{:<28} {:<12} {:<20} {:<9} {:<10} {:<16} SESSION",
        "ADDRESS", "POOL", "USERNAME", "STATE", "EXPIRES", "INSTANCE"
    );
    for r in rows {
        let pool = pools
            .iter()
            .find(|p| p.id.0 == r.pool_id)
            .map_or("-", |p| p.name.as_str());
        let live = r.expires_at > now;
        println!(
            "{:<28} {:<12} {:<20} {:<9} {:<10} {:<16} {}",
            r.address,
            pool,
            r.username,
            if live { r.state.as_str() } else { "expired" },
            format!("{:+}s", r.expires_at - now),
            r.instance,
            r.acct_unique_id.as_deref().unwrap_or("-")
        );
    }
    Ok(())
}

/// Refuses a static address that a pool has leased to somebody else.
pub async fn check_static(store: &Store, username: &str, ip: IpAddr) -> anyhow::Result<()> {
    let now = unix_now();
    for row in store
        .lease_search(Some(&ip.to_string()), None, None, 10)
        .await?
    {
        if row.username != username && row.expires_at > now && row.state != "released" {
            bail!(
                "{ip} is leased to {} from a pool until it is released; a static address must not be in use",
                row.username
            );
        }
    }
    Ok(())
}
