//! The operator commands: NAS clients, plans and subscribers.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use edge_radius::dict::Dictionary;
use edge_shared::store::{NewNas, Store};
use edge_shared::types::{SubscriberRecord, SubscriberStatus};

use crate::config::Config;
use crate::ops::catalog;

#[derive(Subcommand)]
pub enum NasCmd {
    /// Register a NAS by its source address or a CIDR, or with `--wireguard` through a tunnel
    /// (its address then comes from the management pool).
    Add {
        #[arg(long)]
        name: String,
        #[arg(
            long,
            required_unless_present = "wireguard",
            conflicts_with = "wireguard"
        )]
        address: Option<String>,
        #[arg(long)]
        secret: String,
        /// mikrotik, cisco, juniper, huawei, accel-ppp, nokia or generic.
        #[arg(long, default_value = "generic")]
        vendor: String,
        #[arg(long, default_value_t = 3799)]
        coa_port: u16,
        /// Accept Access-Requests without Message-Authenticator from this NAS (not
        /// recommended: CVE-2024-3596).
        #[arg(long)]
        allow_missing_message_authenticator: bool,
        /// Access-Requests per second this NAS may send; 0 is unlimited.
        #[arg(long, default_value_t = 0)]
        rate_limit: u32,
        /// Reach the edge through WireGuard: a key pair is generated (the private key is
        /// printed once) unless `--public-key` gives the NAS's own.
        #[arg(long)]
        wireguard: bool,
        #[arg(long, requires = "wireguard")]
        public_key: Option<String>,
    },
    List,
    Remove {
        name: String,
    },
    /// The configuration a WireGuard NAS pastes (its private key as a placeholder).
    WireguardConfig {
        name: String,
        /// routeros or wg-quick.
        #[arg(long, default_value = "routeros")]
        format: String,
    },
    /// Last handshake and transfer counters of every WireGuard NAS, read from the interface.
    Tunnels,
}

#[derive(Subcommand)]
pub enum PlanCmd {
    /// Create a plan. Reply attributes are written by dictionary name and checked now.
    Add {
        #[arg(long)]
        name: String,
        /// `Attribute = value`, e.g. 'Mikrotik-Rate-Limit = "20M/20M"'. Repeat for more.
        #[arg(long = "reply")]
        reply: Vec<String>,
        #[arg(long)]
        session_timeout: Option<u32>,
        #[arg(long)]
        interim_interval: Option<u32>,
        /// Most sessions a subscriber on this plan may have open at once; more are rejected.
        #[arg(long)]
        simultaneous_use: Option<u32>,
        /// IPv4 pool for Framed-IP-Address.
        #[arg(long)]
        pool: Option<String>,
        /// IPv6 pool for Framed-IPv6-Prefix.
        #[arg(long)]
        ipv6_pool: Option<String>,
        /// IPv6 pool for Delegated-IPv6-Prefix.
        #[arg(long)]
        delegated_pool: Option<String>,
    },
    List,
    Remove {
        name: String,
    },
}

#[derive(Subcommand)]
pub enum SubscriberCmd {
    /// Add or update a subscriber.
    Add {
        #[arg(long)]
        username: String,
        /// Cleartext, or a hash: {SSHA}…, {NT}…, $6$…, $2y$…, $argon2id$…
        #[arg(long)]
        password: String,
        #[arg(long)]
        plan: Option<String>,
        #[arg(long, default_value = "active")]
        status: String,
        #[arg(long)]
        static_ipv4: Option<Ipv4Addr>,
        /// Bind the subscriber to this Calling-Station-Id (MAC).
        #[arg(long)]
        calling_station_id: Option<String>,
    },
    Remove {
        username: String,
    },
    List {
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[arg(long, default_value = "")]
        after: String,
    },
    /// Import a CSV (header row; username,password required; plan,status,static_ipv4,
    /// calling_station_id optional) as one all-or-nothing upsert.
    Import {
        file: PathBuf,
    },
}

pub async fn open_store(cfg: &Config) -> anyhow::Result<Store> {
    let store = Store::connect(&cfg.database.url)
        .await
        .context("cannot open the database")?;
    store.migrate().await?;
    Ok(store)
}

pub async fn nas(cfg: &Config, c: NasCmd) -> anyhow::Result<()> {
    let store = open_store(cfg).await?;
    match c {
        NasCmd::Add {
            name,
            address,
            secret,
            vendor,
            coa_port,
            allow_missing_message_authenticator,
            rate_limit,
            wireguard,
            public_key,
        } => {
            let n = NewNas {
                name,
                address: address.unwrap_or_default(),
                secret,
                vendor,
                coa_port,
                require_message_authenticator: !allow_missing_message_authenticator,
                rate_limit_per_second: rate_limit,
                tunnel: None,
            };
            if wireguard {
                super::wireguard::add(cfg, &store, n, public_key.as_deref()).await?;
            } else {
                let n = catalog::nas_add(&store, n).await?;
                println!("added NAS {} ({})", n.name, n.address);
            }
        }
        NasCmd::List => {
            println!(
                "{:<20} {:<20} {:<10} {:<6} {:<8} RATE",
                "NAME", "ADDRESS", "VENDOR", "COA", "MSG-AUTH"
            );
            for n in store.nas_list().await? {
                println!(
                    "{:<20} {:<20} {:<10} {:<6} {:<8} {}",
                    n.name,
                    n.address,
                    n.vendor,
                    n.coa_port,
                    if n.require_message_authenticator {
                        "required"
                    } else {
                        "optional"
                    },
                    n.rate_limit_per_second
                );
            }
        }
        NasCmd::Remove { name } => {
            store.nas_remove(&name).await?;
            println!("removed NAS {name}");
        }
        NasCmd::WireguardConfig { name, format } => {
            super::wireguard::config(cfg, &store, &name, &format).await?;
        }
        NasCmd::Tunnels => super::wireguard::tunnels(cfg, &store).await?,
    }
    Ok(())
}

pub async fn plans(cfg: &Config, c: PlanCmd) -> anyhow::Result<()> {
    let store = open_store(cfg).await?;
    match c {
        PlanCmd::Add {
            name,
            reply,
            session_timeout,
            interim_interval,
            simultaneous_use,
            pool,
            ipv6_pool,
            delegated_pool,
        } => {
            let dict = Dictionary::load_with(&cfg.radius.dictionary_dirs)?;
            let p = catalog::plan_add(
                &store,
                &dict,
                catalog::PlanSpec {
                    name,
                    reply_attributes: reply,
                    session_timeout_seconds: session_timeout,
                    interim_interval_seconds: interim_interval,
                    simultaneous_use,
                    pool,
                    ipv6_pool,
                    delegated_pool,
                },
            )
            .await?;
            println!("added plan {}", p.name);
        }
        PlanCmd::List => {
            let pools = store.pool_list().await?;
            let pool_name = |id| {
                pools
                    .iter()
                    .find(|p| Some(p.id) == id)
                    .map_or("?".to_string(), |p| p.name.clone())
            };
            for p in store.plan_list().await? {
                println!("{}", p.name);
                for r in &p.reply_attributes {
                    println!("    {r}");
                }
                if let Some(t) = p.session_timeout_seconds {
                    println!("    Session-Timeout = {t}");
                }
                if let Some(t) = p.interim_interval_seconds {
                    println!("    Acct-Interim-Interval = {t}");
                }
                if let Some(n) = p.simultaneous_use {
                    println!("    Simultaneous-Use := {n}");
                }
                for (label, id) in [
                    ("pool", p.pool),
                    ("ipv6-pool", p.ipv6_pool),
                    ("delegated-pool", p.delegated_pool),
                ] {
                    if id.is_some() {
                        println!("    {label}: {}", pool_name(id));
                    }
                }
            }
        }
        PlanCmd::Remove { name } => {
            store.plan_remove(&name).await?;
            println!("removed plan {name}");
        }
    }
    Ok(())
}

pub async fn subscribers(cfg: &Config, c: SubscriberCmd) -> anyhow::Result<()> {
    let store = open_store(cfg).await?;
    match c {
        SubscriberCmd::Add {
            username,
            password,
            plan,
            status,
            static_ipv4,
            calling_station_id,
        } => {
            let status =
                SubscriberStatus::parse(&status).context("--status must be active or suspended")?;
            let rec = SubscriberRecord {
                username: username.clone(),
                password,
                plan,
                status,
                static_ipv4,
                calling_station_id,
            };
            catalog::subscriber_save(&store, rec).await?;
            println!("saved subscriber {username}");
        }
        SubscriberCmd::Remove { username } => {
            store.subscriber_remove(&username).await?;
            println!("removed subscriber {username}");
        }
        SubscriberCmd::List { limit, after } => {
            println!(
                "{:<24} {:<16} {:<10} {:<16} CALLING-STATION-ID",
                "USERNAME", "PLAN", "STATUS", "STATIC-IPV4"
            );
            for s in store.subscriber_list(&after, limit).await? {
                println!(
                    "{:<24} {:<16} {:<10} {:<16} {}",
                    s.username,
                    s.plan.as_deref().unwrap_or("-"),
                    s.status.as_str(),
                    s.static_ipv4.map_or("-".to_string(), |a| a.to_string()),
                    s.calling_station_id.as_deref().unwrap_or("-")
                );
            }
        }
        SubscriberCmd::Import { file } => {
            let started = std::time::Instant::now();
            let records = super::import::read_csv(&file)?;
            let n = store.subscribers_upsert(&records).await?;
            println!(
                "imported {n} subscribers in {:.2} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}
