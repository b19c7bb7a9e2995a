//! `nas add --wireguard`, `nas wireguard-config` and `nas tunnels`.

use anyhow::{bail, Context};
use edge_radius::dict::Dictionary;
use edge_shared::store::{NewNas, Store};

use crate::config::Config;
use crate::ops::wireguard::{self as wg, Format, RadiusPorts, WgConfig};

fn settings(cfg: &Config) -> anyhow::Result<WgConfig> {
    if !cfg.wireguard.enabled {
        bail!("WireGuard is off: set wireguard.enabled (EDGE_WIREGUARD_ENABLED=true)");
    }
    WgConfig::from_config(&cfg.wireguard)
}

pub fn ports(cfg: &Config) -> RadiusPorts {
    RadiusPorts {
        auth: cfg.radius.auth_listen.port(),
        acct: cfg.radius.acct_listen.port(),
    }
}

pub async fn add(
    cfg: &Config,
    store: &Store,
    n: NewNas,
    public_key: Option<&str>,
) -> anyhow::Result<()> {
    let w = settings(cfg)?;
    let dict = Dictionary::load_with(&cfg.radius.dictionary_dirs)?;
    let secret = n.secret.clone();
    let r = wg::nas_add_tunneled(store, &dict, &w, n, public_key).await?;
    let edge_key = w.edge_public_key()?;
    let tunnel = r
        .nas
        .tunnel
        .as_ref()
        .context("registered without a tunnel")?;
    println!(
        "added NAS {} with a WireGuard tunnel; its address (and RADIUS client address) is {}",
        r.nas.name, tunnel.address
    );
    println!("NAS public key: {}", tunnel.public_key);
    println!("edge public key: {edge_key}");
    for (title, format) in [
        ("RouterOS", Format::RouterOs),
        ("wg-quick", Format::WgQuick),
    ] {
        println!("\n# --- {title} ---");
        print!(
            "{}",
            wg::export(
                &w,
                &edge_key,
                &r.nas,
                ports(cfg),
                r.private_key.as_deref(),
                Some(&secret),
                format
            )?
        );
    }
    if let Some(k) = &r.private_key {
        println!("\nNAS private key (shown once, not stored):\n{k}");
    }
    Ok(())
}

pub async fn config(cfg: &Config, store: &Store, name: &str, format: &str) -> anyhow::Result<()> {
    let w = settings(cfg)?;
    let format = Format::parse(format).context("--format is routeros or wg-quick")?;
    let nas = store
        .nas_list()
        .await?
        .into_iter()
        .find(|n| n.name == name)
        .with_context(|| format!("NAS `{name}` not found"))?;
    let edge_key = w.edge_public_key()?;
    print!(
        "{}",
        wg::export(&w, &edge_key, &nas, ports(cfg), None, None, format)?
    );
    Ok(())
}

pub async fn tunnels(cfg: &Config, store: &Store) -> anyhow::Result<()> {
    let w = settings(cfg)?;
    let all = store.nas_list().await?;
    println!(
        "{:<20} {:<16} {:<22} {:>14} {:>12} {:>12}",
        "NAS", "TUNNEL", "ENDPOINT", "HANDSHAKE AGO", "RX", "TX"
    );
    for t in wg::status(&w, &all).await? {
        println!(
            "{:<20} {:<16} {:<22} {:>14} {:>12} {:>12}",
            t.nas,
            t.tunnel_address,
            t.endpoint
                .as_deref()
                .unwrap_or(if t.present { "-" } else { "(no peer)" }),
            t.last_handshake_age_seconds
                .map_or("never".to_string(), |a| format!("{a} s")),
            t.rx_bytes,
            t.tx_bytes
        );
    }
    Ok(())
}
