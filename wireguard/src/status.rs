//! Peer status as the interface reports it: last handshake and transfer counters.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use edge_shared::metric_names as m;

use wireguard_control::PeerInfo;

/// One peer's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    /// Base64.
    pub public_key: String,
    /// Where the peer's packets last came from.
    pub endpoint: Option<SocketAddr>,
    /// Unix seconds of the last completed handshake; `None` if there was none.
    pub last_handshake: Option<u64>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

/// Handshake times before this (2001) are not times but ages: boringtun answers the UAPI's
/// `last_handshake_time_sec` with the time elapsed since the handshake, where the protocol
/// and every other implementation give the Unix time.
const AGE_NOT_TIME: Duration = Duration::from_secs(1_000_000_000);

pub(crate) fn from_info(p: &PeerInfo, now: SystemTime) -> PeerStatus {
    let last_handshake = p.stats.last_handshake_time.and_then(|t| {
        let since_epoch = t.duration_since(UNIX_EPOCH).ok()?;
        let at = if since_epoch < AGE_NOT_TIME {
            now.checked_sub(since_epoch)?
        } else {
            t
        };
        at.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs())
    });
    PeerStatus {
        public_key: p.config.public_key.to_base64(),
        endpoint: p.config.endpoint,
        last_handshake,
        rx_bytes: p.stats.rx_bytes,
        tx_bytes: p.stats.tx_bytes,
    }
}

/// Each NAS's peer figures as of the last status read, as Prometheus text that `/metrics`
/// appends at every scrape. They are kept here and not in the process's metrics recorder,
/// where a series stays at its last value for as long as the process runs: a NAS removed
/// from the table would go on being exported, and the tunnel-down alert (no handshake for
/// ten minutes) would fire for it until the next restart.
#[derive(Debug, Default)]
pub struct PeerMetrics(Mutex<String>);

impl PeerMetrics {
    /// The text to append to `/metrics` (empty before the first read, or with no tunnels).
    pub fn render(&self) -> String {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the figures with those of `peers`, each with its NAS's name.
    pub(crate) fn set(&self, peers: &[(&str, &PeerStatus)]) {
        type Value = fn(&PeerStatus) -> u64;
        let families: [(&str, &str, Value); 3] = [
            (m::WG_PEER_LAST_HANDSHAKE, "gauge", |s| {
                s.last_handshake.unwrap_or(0)
            }),
            (m::WG_PEER_RECEIVE_BYTES, "counter", |s| s.rx_bytes),
            (m::WG_PEER_TRANSMIT_BYTES, "counter", |s| s.tx_bytes),
        ];
        let mut out = String::new();
        if !peers.is_empty() {
            for (name, kind, value) in families {
                out.push_str(&format!("# TYPE {name} {kind}\n"));
                for (nas, s) in peers {
                    out.push_str(&format!("{name}{{nas=\"{}\"}} {}\n", label(nas), value(s)));
                }
            }
        }
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = out;
    }
}

/// A label value as the exposition format writes it: backslash, quote and newline escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The status of every peer of interface `name`. Blocking.
pub fn read_status(
    name: &str,
    backend_choice: crate::BackendChoice,
) -> Result<Vec<PeerStatus>, crate::WgError> {
    let peers = crate::interface::read_peers(name, backend_choice.resolve())?;
    let now = SystemTime::now();
    Ok(peers.iter().map(|p| from_info(p, now)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wireguard_control::Key;

    #[test]
    fn handshake_ages_from_boringtun_become_times() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut p = PeerInfo::from_public_key(Key([1; 32]));
        assert_eq!(from_info(&p, now).last_handshake, None);
        p.stats.last_handshake_time = Some(UNIX_EPOCH + Duration::from_secs(7));
        assert_eq!(from_info(&p, now).last_handshake, Some(1_799_999_993));
        p.stats.last_handshake_time = Some(UNIX_EPOCH + Duration::from_secs(1_799_999_000));
        assert_eq!(from_info(&p, now).last_handshake, Some(1_799_999_000));
    }

    #[test]
    fn peer_metrics_hold_the_last_read_only() {
        let peer = |rx| PeerStatus {
            public_key: String::new(),
            endpoint: None,
            last_handshake: None,
            rx_bytes: rx,
            tx_bytes: 9,
        };
        let metrics = PeerMetrics::default();
        assert_eq!(metrics.render(), "");
        let (a, b) = (peer(5), peer(6));
        metrics.set(&[("bng-1", &a), ("odd \"name\"\\", &b)]);
        let text = metrics.render();
        assert!(text.contains(
            "# TYPE edge_wireguard_peer_receive_bytes_total counter\n\
             edge_wireguard_peer_receive_bytes_total{nas=\"bng-1\"} 5\n\
             edge_wireguard_peer_receive_bytes_total{nas=\"odd \\\"name\\\"\\\\\"} 6\n"
        ));
        assert!(text
            .contains("edge_wireguard_peer_last_handshake_timestamp_seconds{nas=\"bng-1\"} 0\n"));
        // A NAS gone from the next read is gone from the text.
        metrics.set(&[("odd \"name\"\\", &b)]);
        assert!(!metrics.render().contains("bng-1"));
        metrics.set(&[]);
        assert_eq!(metrics.render(), "");
    }
}
