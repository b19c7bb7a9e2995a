//! Peers as the database wants them versus peers as the interface has them: the smallest
//! update that makes the interface agree. Pure, so it is tested without an interface.

use edge_shared::types::NasTunnel;
use std::collections::HashMap;
use wireguard_control::{DeviceUpdate, Key, PeerConfigBuilder, PeerInfo};

/// What to change: peers to add (new), to replace (on the interface with another address or
/// keepalive) and to remove (on the interface, not in the table).
///
/// A replaced peer is removed and added again rather than modified in place: boringtun
/// refuses (panics on) changes to an existing peer, and carries a `remove=true` over to the
/// peers after it in the same request, so removals and additions go in separate requests.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PeerDiff {
    pub add: Vec<NasTunnel>,
    pub replace: Vec<NasTunnel>,
    pub remove: Vec<String>,
}

impl PeerDiff {
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.replace.is_empty() && self.remove.is_empty()
    }

    /// The first request: the removed and the replaced peers go. `None` if there are none.
    pub(crate) fn removals(&self) -> Option<DeviceUpdate> {
        let keys: Vec<Key> = self
            .remove
            .iter()
            .map(String::as_str)
            .chain(self.replace.iter().map(|d| d.public_key.as_str()))
            .filter_map(|k| Key::from_base64(k).ok())
            .collect();
        (!keys.is_empty()).then(|| {
            keys.iter()
                .fold(DeviceUpdate::new(), |u, k| u.remove_peer_by_key(k))
        })
    }

    /// The second request: the new and the replaced peers, each with its one allowed IP.
    /// Keys that do not decode are skipped (the table's keys were checked at registration).
    pub(crate) fn additions(&self) -> Option<DeviceUpdate> {
        let peers: Vec<PeerConfigBuilder> = self
            .add
            .iter()
            .chain(&self.replace)
            .filter_map(|d| {
                let key = Key::from_base64(&d.public_key).ok()?;
                let bits = if d.address.is_ipv4() { 32 } else { 128 };
                let peer = PeerConfigBuilder::new(&key).add_allowed_ip(d.address, bits);
                // Every peer states its keepalive: boringtun also carries it over.
                Some(peer.set_persistent_keepalive_interval(d.keepalive_seconds))
            })
            .collect();
        (!peers.is_empty()).then(|| DeviceUpdate::new().add_peers(&peers))
    }
}

/// Compares the peers the NAS table wants with the interface's.
pub fn diff(desired: &[NasTunnel], current: &[PeerInfo]) -> PeerDiff {
    let have: HashMap<String, &PeerInfo> = current
        .iter()
        .map(|p| (p.config.public_key.to_base64(), p))
        .collect();
    let mut out = PeerDiff::default();
    for d in desired {
        let Some(p) = have.get(&d.public_key) else {
            out.add.push(d.clone());
            continue;
        };
        let bits = if d.address.is_ipv4() { 32 } else { 128 };
        let ips = &p.config.allowed_ips;
        let keepalive = p.config.persistent_keepalive_interval.unwrap_or(0);
        let same = ips.len() == 1
            && ips[0].address == d.address
            && ips[0].cidr == bits
            && keepalive == d.keepalive_seconds;
        if !same {
            out.replace.push(d.clone());
        }
    }
    let wanted: std::collections::HashSet<&str> =
        desired.iter().map(|d| d.public_key.as_str()).collect();
    for key in have.keys() {
        if !wanted.contains(key.as_str()) {
            out.remove.push(key.clone());
        }
    }
    out.remove.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use wireguard_control::AllowedIp;

    fn key(n: u8) -> String {
        Key([n; 32]).to_base64()
    }

    fn have(n: u8, ip: &str, keepalive: Option<u16>) -> PeerInfo {
        let mut info = PeerInfo::from_public_key(Key([n; 32]));
        info.config.allowed_ips = vec![AllowedIp {
            address: ip.parse().unwrap(),
            cidr: 32,
        }];
        info.config.persistent_keepalive_interval = keepalive;
        info
    }

    fn want(n: u8, ip: &str) -> NasTunnel {
        NasTunnel {
            public_key: key(n),
            address: ip.parse().unwrap(),
            pool: edge_shared::types::PoolId(1),
            keepalive_seconds: 25,
        }
    }

    #[test]
    fn adds_changes_and_removes_only_what_differs() {
        let current = [
            have(1, "10.0.0.2", Some(25)), // as wanted
            have(2, "10.0.0.9", Some(25)), // moved
            have(3, "10.0.0.4", None),     // keepalive differs
            have(4, "10.0.0.5", Some(25)), // no longer wanted
        ];
        let desired = [
            want(1, "10.0.0.2"),
            want(2, "10.0.0.3"),
            want(3, "10.0.0.4"),
            want(5, "10.0.0.6"),
        ];
        let d = diff(&desired, &current);
        let keys = |v: &[NasTunnel]| v.iter().map(|p| p.public_key.clone()).collect::<Vec<_>>();
        assert_eq!(keys(&d.add), vec![key(5)]);
        assert_eq!(keys(&d.replace), vec![key(2), key(3)]);
        assert_eq!(d.remove, vec![key(4)]);
        assert!(diff(&desired[..1], &current[..1]).is_empty());
    }

    #[test]
    fn replaced_peers_are_removed_then_added_in_separate_requests() {
        let d = PeerDiff {
            add: vec![want(7, "10.0.0.7")],
            replace: vec![want(9, "10.0.0.9")],
            remove: vec![key(8)],
        };
        let first = format!("{:?}", d.removals().unwrap());
        assert_eq!(first.matches("remove_me: true").count(), 2, "{first}");
        assert!(!first.contains("remove_me: false"), "{first}");
        let second = format!("{:?}", d.additions().unwrap());
        assert!(second.contains("allowed_ips: [10.0.0.7/32]"), "{second}");
        assert!(second.contains("allowed_ips: [10.0.0.9/32]"), "{second}");
        assert_eq!(
            second
                .matches("persistent_keepalive_interval: Some(25)")
                .count(),
            2
        );
        assert!(!second.contains("remove_me: true"), "{second}");
        assert!(PeerDiff::default().removals().is_none());
        assert!(PeerDiff::default().additions().is_none());
    }
}
