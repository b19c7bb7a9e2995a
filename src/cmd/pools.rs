//! `pools` and `leases`: address pools, reservations, utilization, next available
//! addresses, and lease search.

use anyhow::bail;
use clap::{Args, Subcommand};
use edge_radius::dict::Dictionary;
use edge_shared::accounting::unix_now;
use edge_shared::store::{LeaseQuery as StoreLeaseQuery, LeaseStateFilter};

use super::admin::open_store;
use crate::config::Config;
use crate::ops::pools as ops;

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
    /// Free a lease now (an address handed out from any pool); refused while an open
    /// session holds it.
    ReleaseLease {
        address: String,
    },
    /// The next free addresses (as NetBox's available-ips).
    Next {
        name: String,
        #[arg(long, default_value_t = 1)]
        count: usize,
    },
}

/// List leases, in address order: all of them, or of a pool, an address, a subscriber or a
/// session, in a state.
#[derive(Args)]
pub struct LeaseQuery {
    /// Leases of this pool.
    #[arg(long)]
    pool: Option<String>,
    #[arg(long)]
    address: Option<String>,
    #[arg(long)]
    username: Option<String>,
    /// The accounting session's unique id.
    #[arg(long)]
    session: Option<String>,
    /// offered, bound or released (and not expired), or expired.
    #[arg(long)]
    state: Option<String>,
    #[arg(long, default_value_t = 50)]
    limit: i64,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
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
            let dict = Dictionary::load_with(&cfg.radius.dictionary_dirs)?;
            let (p, len) = ops::pool_add(
                &store,
                &dict,
                ops::PoolSpec {
                    name,
                    ranges: cidr,
                    excludes: exclude,
                    prefix_length,
                    block_size,
                    reply_attributes: reply,
                    next_pool,
                    purpose: None,
                },
            )
            .await?;
            println!(
                "added pool {} ({len} {}, {} blocks of {})",
                p.name,
                if p.family == 6 {
                    format!("/{} prefixes", p.prefix_len)
                } else {
                    "addresses".into()
                },
                len.div_ceil(u64::from(p.block_size)),
                p.block_size
            );
        }
        PoolCmd::List => {
            println!(
                "{:<16} {:<4} {:<10} {:<7} {:<10} {:<12} RANGES",
                "NAME", "IP", "SIZE", "PREFIX", "BLOCK", "NEXT"
            );
            for p in store.pool_list().await? {
                let size = ops::size_of(&p);
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
            ops::reserve(&store, &name, &address).await?;
            println!("reserved {address} in pool {name}");
        }
        PoolCmd::Release { name, address } => {
            ops::unreserve(&store, &name, &address).await?;
            println!("released {address} in pool {name}");
        }
        PoolCmd::Usage { name, blocks } => {
            let u = ops::usage(&store, &name).await?;
            println!("pool      {name}");
            println!(
                "total     {}  (excluded or static: {})",
                u.total, u.reserved
            );
            println!(
                "used      {}  (offered {}, bound {})",
                u.offered + u.bound,
                u.offered,
                u.bound
            );
            println!(
                "kept      {}  (released, kept for their subscriber)",
                u.kept
            );
            println!("free      {}", u.free);
            println!("utilization {:.1}%", u.utilization_percent);
            if blocks {
                println!("{:<8} {:<36} {:<16} USED", "BLOCK", "RANGE", "OWNER");
                for b in &u.blocks {
                    println!(
                        "{:<8} {:<36} {:<16} {}/{}",
                        b.block,
                        format!("{} - {}", b.first, b.last),
                        b.owner.as_deref().unwrap_or("-"),
                        b.used,
                        b.size
                    );
                }
            }
        }
        PoolCmd::Next { name, count } => {
            let free = ops::next_free(&store, &name, count).await?;
            if free.is_empty() {
                bail!("pool {name} has no free address");
            }
            for a in free {
                println!("{a}");
            }
        }
        PoolCmd::ReleaseLease { address } => {
            let row = ops::release_lease(&store, &address).await?;
            println!("released lease {} of {}", row.address, row.username);
        }
    }
    Ok(())
}

pub async fn leases(cfg: &Config, q: LeaseQuery) -> anyhow::Result<()> {
    let store = open_store(cfg).await?;
    let pools = store.pool_list().await?;
    let pool = match &q.pool {
        None => None,
        Some(name) => Some(store.pool_get(name).await?.id),
    };
    let state = match q.state.as_deref() {
        None => None,
        Some(s) => Some(
            LeaseStateFilter::parse(s)
                .ok_or_else(|| anyhow::anyhow!("--state: offered, bound, released or expired"))?,
        ),
    };
    let rows = store
        .leases_list(&StoreLeaseQuery {
            pool,
            address: q.address.as_deref(),
            username: q.username.as_deref(),
            unique_id: q.session.as_deref(),
            state,
            now: unix_now(),
            after: None,
            limit: q.limit,
        })
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
