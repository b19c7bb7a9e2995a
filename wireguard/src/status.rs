//! Peer status as the interface reports it: last handshake and transfer counters.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
}
