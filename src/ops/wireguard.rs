//! NAS over WireGuard: the `[wireguard]` settings, registering a NAS with a tunnel (its key,
//! an address from the management pool), the configuration it pastes, and its peer status.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{bail, Context};
use edge_radius::dict::Dictionary;
use edge_shared::store::{NewNas, Store, StoreError, TUNNEL_ADDRESS};
use edge_shared::types::{Nas, NasTunnel, Pool};
use edge_wireguard::{BackendChoice, NasConfig, PeerStatus, PrivateKey, Settings};
use ipnetwork::IpNetwork;
use serde::Serialize;

use super::{invalid, pools, OpError};
use crate::config;

/// The purpose a management pool carries.
pub const TUNNEL_POOL_PURPOSE: &str = "nas-tunnels";

/// `[wireguard]`, checked: the interface's settings, and what registrations and NAS
/// configurations need besides.
#[derive(Debug, Clone)]
pub struct WgConfig {
    pub link: Settings,
    pub private_key_file: PathBuf,
    pub pool: String,
    /// `host:port` NAS dial, written into their configuration.
    pub endpoint: String,
    pub keepalive_seconds: u16,
    /// The edge's public key, read from the key file at first use.
    public_key: Arc<OnceLock<String>>,
}

impl WgConfig {
    pub fn from_config(c: &config::Wireguard) -> anyhow::Result<WgConfig> {
        if c.interface.is_empty() || c.interface.len() > 15 {
            bail!("wireguard.interface must be 1 to 15 characters (a Linux interface name)");
        }
        let prefix: IpNetwork = c
            .management_prefix
            .parse()
            .context("wireguard.management_prefix must be a CIDR")?;
        let max_bits = if prefix.is_ipv4() { 30 } else { 126 };
        let min_bits = if prefix.is_ipv4() { 8 } else { 112 };
        if prefix.prefix() > max_bits || prefix.prefix() < min_bits {
            bail!("wireguard.management_prefix must be /{min_bits} to /{max_bits}");
        }
        let backend = BackendChoice::parse(&c.backend)
            .context("wireguard.backend must be auto, kernel or userspace")?;
        if !c.endpoint.is_empty()
            && c.endpoint
                .rsplit_once(':')
                .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
        {
            bail!("wireguard.endpoint must be host:port");
        }
        if c.private_key_file.is_empty() || c.pool.is_empty() {
            bail!("wireguard.private_key_file and wireguard.pool must not be empty");
        }
        crate::config::at_least(
            "wireguard",
            1,
            &[
                ("resync_seconds", c.resync_seconds),
                ("status_seconds", c.status_seconds),
            ],
        )?;
        Ok(WgConfig {
            link: Settings {
                interface: c.interface.clone(),
                listen_port: c.listen_port,
                prefix,
                edge_address: first_host(prefix),
                backend,
                userspace_command: c
                    .userspace_command
                    .split_whitespace()
                    .map(str::to_string)
                    .collect(),
                resync_every: Duration::from_secs(c.resync_seconds),
                status_every: Duration::from_secs(c.status_seconds),
            },
            private_key_file: PathBuf::from(&c.private_key_file),
            pool: c.pool.clone(),
            endpoint: c.endpoint.clone(),
            keepalive_seconds: c.keepalive_seconds,
            public_key: Arc::default(),
        })
    }

    /// The interface's private key, read (or created) from its file.
    pub fn private_key(&self) -> anyhow::Result<PrivateKey> {
        Ok(PrivateKey::load_or_create(&self.private_key_file)?)
    }

    /// The edge's public key, from its private key file (created if this is the first use).
    pub fn edge_public_key(&self) -> Result<String, OpError> {
        if let Some(k) = self.public_key.get() {
            return Ok(k.clone());
        }
        let key = PrivateKey::load_or_create(&self.private_key_file)
            .map(|k| k.public_key())
            .map_err(|e| OpError::Conflict(format!("the edge's WireGuard key: {e}")))?;
        Ok(self.public_key.get_or_init(|| key).clone())
    }
}

/// The first host address of a prefix: the edge's own.
fn first_host(prefix: IpNetwork) -> IpAddr {
    match prefix {
        IpNetwork::V4(p) => IpAddr::V4((u32::from(p.network()) + 1).into()),
        IpNetwork::V6(p) => IpAddr::V6((u128::from(p.network()) + 1).into()),
    }
}

/// The management pool, made from the prefix on first use (the edge's address excluded).
async fn tunnel_pool(store: &Store, dict: &Dictionary, wg: &WgConfig) -> Result<Pool, OpError> {
    for _ in 0..2 {
        match store.pool_get(&wg.pool).await {
            Ok(p) if p.purpose == TUNNEL_POOL_PURPOSE => return Ok(p),
            Ok(p) => {
                return Err(OpError::Conflict(format!(
                    "pool {} is for {}, not NAS tunnels (wireguard.pool)",
                    p.name, p.purpose
                )))
            }
            Err(StoreError::NotFound(..)) => {}
            Err(e) => return Err(e.into()),
        }
        let spec = pools::PoolSpec {
            name: wg.pool.clone(),
            ranges: vec![wg.link.prefix.to_string()],
            excludes: vec![wg.link.edge_address.to_string()],
            prefix_length: if wg.link.prefix.is_ipv4() { 32 } else { 128 },
            purpose: Some(TUNNEL_POOL_PURPOSE.into()),
            ..Default::default()
        };
        match pools::pool_add(store, dict, spec).await {
            Ok((p, _)) => return Ok(p),
            // Another registration made it first: read it.
            Err(OpError::Store(StoreError::Exists(..))) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(OpError::Conflict(format!(
        "pool {} could not be made",
        wg.pool
    )))
}

/// A NAS registered with a tunnel; `private_key` is set when the edge generated the key
/// pair, and is not kept anywhere: this is the one time it is shown.
#[derive(Debug)]
pub struct Registered {
    pub nas: Nas,
    pub private_key: Option<String>,
}

/// Registers a NAS reaching the edge through WireGuard: its public key (or a fresh key
/// pair), the lowest free address of the management pool as its tunnel and RADIUS client
/// address. Two registrations racing for an address (on any instance) are kept apart by the
/// database's unique index; the loser takes the next address.
pub async fn nas_add_tunneled(
    store: &Store,
    dict: &Dictionary,
    wg: &WgConfig,
    mut n: NewNas,
    public_key: Option<&str>,
) -> Result<Registered, OpError> {
    super::catalog::check_nas(&n)?;
    let (public_key, private_key) = match public_key {
        Some(k) => (
            edge_wireguard::parse_public_key(k)
                .map_err(|e| invalid("public_key", e.to_string()))?,
            None,
        ),
        None => {
            let (private, public) = edge_wireguard::generate_pair();
            (public, Some(private))
        }
    };
    let pool = tunnel_pool(store, dict, wg).await?;
    let space = pools::space_of(&pool)?;
    let mut taken: HashSet<u64> = space
        .excluded(&pool.excludes)
        .map_err(|e| invalid("excludes", e))?
        .into_iter()
        .collect();
    taken.extend(space.slot_of_text(&wg.link.edge_address.to_string()));
    for a in store.nas_tunnel_addresses(pool.id).await? {
        taken.extend(space.slot_of_text(&a));
    }
    for _ in 0..16 {
        let Some(address) = (0..space.len())
            .find(|s| !taken.contains(s))
            .and_then(|s| space.address(s))
        else {
            return Err(OpError::Conflict(format!(
                "management pool {} has no free address",
                pool.name
            )));
        };
        n.address = address.to_string();
        n.tunnel = Some(NasTunnel {
            public_key: public_key.clone(),
            address,
            pool: pool.id,
            keepalive_seconds: wg.keepalive_seconds,
        });
        match store.nas_add(&n).await {
            Ok(nas) => return Ok(Registered { nas, private_key }),
            Err(StoreError::Exists(what, _)) if what == TUNNEL_ADDRESS => {
                taken.extend(space.slot(address));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(OpError::Conflict(
        "every address tried was taken by concurrent registrations; try again".into(),
    ))
}

/// Which configuration to write for a NAS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    RouterOs,
    WgQuick,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "routeros" | "mikrotik" => Some(Format::RouterOs),
            "wg-quick" | "wg" => Some(Format::WgQuick),
            _ => None,
        }
    }
}

/// What the NAS needs to know of the edge's RADIUS ports.
#[derive(Debug, Clone, Copy)]
pub struct RadiusPorts {
    pub auth: u16,
    pub acct: u16,
}

/// The configuration NAS `nas` pastes. Secrets not given are placeholders.
pub fn export(
    wg: &WgConfig,
    edge_public_key: &str,
    nas: &Nas,
    ports: RadiusPorts,
    private_key: Option<&str>,
    radius_secret: Option<&str>,
    format: Format,
) -> Result<String, OpError> {
    let Some(t) = &nas.tunnel else {
        return Err(OpError::Conflict(format!(
            "NAS {} has no WireGuard tunnel",
            nas.name
        )));
    };
    let c = NasConfig {
        nas_name: &nas.name,
        tunnel_address: t.address,
        private_key,
        edge_public_key,
        edge_address: wg.link.edge_address,
        endpoint: &wg.endpoint,
        keepalive_seconds: t.keepalive_seconds,
        radius_secret,
        auth_port: ports.auth,
        acct_port: ports.acct,
        coa_port: nas.coa_port,
    };
    Ok(match format {
        Format::RouterOs => edge_wireguard::routeros(&c),
        Format::WgQuick => edge_wireguard::wg_quick(&c),
    })
}

/// A NAS peer's state on the interface, as the API and CLI show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TunnelStatus {
    pub nas: String,
    pub public_key: String,
    pub tunnel_address: String,
    /// On the interface now (false: not reconciled yet, or the interface is down).
    pub present: bool,
    /// Where its packets last came from.
    pub endpoint: Option<String>,
    /// Unix seconds of the last handshake; null before the first.
    pub last_handshake: Option<u64>,
    /// Seconds since then.
    pub last_handshake_age_seconds: Option<u64>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

/// The status of every NAS tunnel in `nas`, read from the interface.
pub async fn status(wg: &WgConfig, nas: &[Nas]) -> Result<Vec<TunnelStatus>, OpError> {
    let (name, backend) = (wg.link.interface.clone(), wg.link.backend);
    let peers: Vec<PeerStatus> =
        tokio::task::spawn_blocking(move || edge_wireguard::read_status(&name, backend))
            .await
            .map_err(|e| OpError::Conflict(e.to_string()))?
            .map_err(|e| OpError::Conflict(format!("the WireGuard interface: {e}")))?;
    let now = edge_shared::accounting::unix_now().max(0) as u64;
    let by_key: std::collections::HashMap<&str, &PeerStatus> =
        peers.iter().map(|p| (p.public_key.as_str(), p)).collect();
    Ok(nas
        .iter()
        .filter_map(|n| {
            let t = n.tunnel.as_ref()?;
            let p = by_key.get(t.public_key.as_str()).copied();
            Some(TunnelStatus {
                nas: n.name.clone(),
                public_key: t.public_key.clone(),
                tunnel_address: t.address.to_string(),
                present: p.is_some(),
                endpoint: p.and_then(|p| p.endpoint).map(|e| e.to_string()),
                last_handshake: p.and_then(|p| p.last_handshake),
                last_handshake_age_seconds: p
                    .and_then(|p| p.last_handshake)
                    .map(|t| now.saturating_sub(t)),
                rx_bytes: p.map_or(0, |p| p.rx_bytes),
                tx_bytes: p.map_or(0, |p| p.tx_bytes),
            })
        })
        .collect())
}
