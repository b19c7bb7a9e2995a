//! The running interface: peers follow the NAS table (at start, on every index change, and
//! every `resync_every` in case someone else touched the interface), and peer status is read
//! into the metrics every `status_every`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use edge_shared::index::Index;
use edge_shared::metric_names as m;
use edge_shared::types::NasTunnel;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::interface::{Interface, Settings};
use crate::keys::PrivateKey;
use crate::reconcile::diff;
use crate::status::{from_info, PeerMetrics, PeerStatus};
use crate::WgError;

pub struct Running {
    pub task: JoinHandle<()>,
    pub interface: String,
    pub backend: &'static str,
    /// Peers on the interface after the first reconciliation, and how long it took.
    pub peers: usize,
    pub reconcile_seconds: f64,
}

/// Opens the interface, reconciles its peers once, and keeps them in step until `cancel`;
/// peers' figures go to `peer_metrics` every `status_every`.
pub async fn start(
    settings: Settings,
    key: PrivateKey,
    index: Arc<Index>,
    peer_metrics: Arc<PeerMetrics>,
    cancel: CancellationToken,
) -> Result<Running, WgError> {
    let s = settings.clone();
    let public_key = key.public_key();
    let iface = tokio::task::spawn_blocking(move || Interface::open(&s, &key))
        .await
        .map_err(|e| WgError::Config(format!("opening the interface: {e}")))??;
    let iface = Arc::new(iface);
    let started = Instant::now();
    let peers = reconcile(&iface, &index).await?;
    let reconcile_seconds = started.elapsed().as_secs_f64();
    tracing::info!(
        interface = %iface.name(),
        backend = iface.backend(),
        public_key = %public_key,
        peers,
        seconds = reconcile_seconds,
        "WireGuard interface up; peers reconciled"
    );
    let running = Running {
        interface: iface.name(),
        backend: iface.backend(),
        peers,
        reconcile_seconds,
        task: tokio::spawn(follow(iface, index, settings, peer_metrics, cancel)),
    };
    Ok(running)
}

async fn follow(
    iface: Arc<Interface>,
    index: Arc<Index>,
    settings: Settings,
    peer_metrics: Arc<PeerMetrics>,
    cancel: CancellationToken,
) {
    let mut changes = index.changes();
    let mut resync = tokio::time::interval(settings.resync_every);
    let mut status = tokio::time::interval(settings.status_every);
    resync.tick().await;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            // NAS or plans were reloaded (a closed channel cannot happen: the index lives
            // as long as this task holds it).
            _ = changes.changed() => {}
            _ = resync.tick() => {}
            _ = status.tick() => {
                record_status(&iface, &index, &peer_metrics).await;
                continue;
            }
        }
        if let Err(e) = reconcile(&iface, &index).await {
            tracing::warn!(error = %e, "WireGuard reconciliation failed; retrying at the next change or resync");
        }
    }
    // Stops a userspace implementation this process started.
    let _ = tokio::task::spawn_blocking(move || drop(iface)).await;
}

/// Makes the interface's peers match the NAS table; returns how many peers it has.
async fn reconcile(iface: &Arc<Interface>, index: &Index) -> Result<usize, WgError> {
    let desired: Vec<NasTunnel> = index
        .nas()
        .all()
        .iter()
        .filter_map(|n| n.tunnel.clone())
        .collect();
    let iface = Arc::clone(iface);
    let started = Instant::now();
    let result = tokio::task::spawn_blocking(move || {
        let current = iface.peers()?;
        let d = diff(&desired, &current);
        for update in [d.removals(), d.additions()].into_iter().flatten() {
            iface.apply(update)?;
        }
        Ok::<_, WgError>((desired.len(), d.add.len() + d.replace.len(), d.remove.len()))
    })
    .await
    .map_err(|e| WgError::Config(format!("reconciling: {e}")))?;
    let outcome = if result.is_ok() { "ok" } else { "error" };
    metrics::counter!(m::WG_RECONCILE_TOTAL, "result" => outcome).increment(1);
    let (peers, upserted, removed) = result?;
    metrics::gauge!(m::WG_RECONCILE_SECONDS).set(started.elapsed().as_secs_f64());
    metrics::gauge!(m::WG_PEERS).set(peers as f64);
    metrics::counter!(m::WG_PEER_CHANGES_TOTAL, "change" => "upsert").increment(upserted as u64);
    metrics::counter!(m::WG_PEER_CHANGES_TOTAL, "change" => "remove").increment(removed as u64);
    if upserted + removed > 0 {
        tracing::info!(peers, upserted, removed, "WireGuard peers changed");
    }
    Ok(peers)
}

/// Peers' handshakes and counters into `peer_metrics`, labelled by NAS name.
async fn record_status(iface: &Arc<Interface>, index: &Index, peer_metrics: &PeerMetrics) {
    let names: HashMap<String, String> = index
        .nas()
        .all()
        .iter()
        .filter_map(|n| Some((n.tunnel.as_ref()?.public_key.clone(), n.name.clone())))
        .collect();
    let i = Arc::clone(iface);
    let peers = match tokio::task::spawn_blocking(move || i.peers()).await {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "reading WireGuard peer status failed");
            return;
        }
        Err(_) => return,
    };
    let now = SystemTime::now();
    let now_secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let statuses: Vec<PeerStatus> = peers.iter().map(|p| from_info(p, now)).collect();
    let up = statuses
        .iter()
        .filter(|s| {
            s.last_handshake
                .is_some_and(|t| now_secs.saturating_sub(t) <= 180)
        })
        .count();
    let named: Vec<(&str, &PeerStatus)> = statuses
        .iter()
        .filter_map(|s| Some((names.get(&s.public_key)?.as_str(), s)))
        .collect();
    peer_metrics.set(&named);
    metrics::gauge!(m::WG_PEERS_UP).set(up as f64);
}
