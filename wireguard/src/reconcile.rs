//! Peers as the database wants them versus peers as the interface has them: the smallest
//! update that makes the interface agree. Pure, so it is tested without an interface.

use std::collections::HashMap;
use std::net::IpAddr;

use wireguard_control::{DeviceUpdate, Key, PeerConfigBuilder, PeerInfo};

/// A peer the NAS table asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    /// Base64.
    pub public_key: String,
    /// The one address the NAS may use inside the tunnel.
    pub address: IpAddr,
    pub keepalive_seconds: u16,
}

/// What to change: peers to add or set again (new, or with another address or keepalive),
/// and peers to remove (on the interface, not in the table).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PeerDiff {
    pub upsert: Vec<Desired>,
    pub remove: Vec<String>,
}

impl PeerDiff {
    pub fn is_empty(&self) -> bool {
        self.upsert.is_empty() && self.remove.is_empty()
    }

    /// The interface update; keys that do not decode are skipped (the table's keys were
    /// checked when the NAS was registered).
    pub(crate) fn to_update(&self) -> DeviceUpdate {
        let mut update = DeviceUpdate::new();
        for d in &self.upsert {
            let Ok(key) = Key::from_base64(&d.public_key) else {
                continue;
            };
            let bits = if d.address.is_ipv4() { 32 } else { 128 };
            let mut peer = PeerConfigBuilder::new(&key)
                .replace_allowed_ips()
                .add_allowed_ip(d.address, bits);
            peer = if d.keepalive_seconds > 0 {
                peer.set_persistent_keepalive_interval(d.keepalive_seconds)
            } else {
                peer.unset_persistent_keepalive()
            };
            update = update.add_peer(peer);
        }
        for k in &self.remove {
            if let Ok(key) = Key::from_base64(k) {
                update = update.remove_peer_by_key(&key);
            }
        }
        update
    }
}

/// Compares the wanted peers with the interface's.
pub fn diff(desired: &[Desired], current: &[PeerInfo]) -> PeerDiff {
    let have: HashMap<String, &PeerInfo> = current
        .iter()
        .map(|p| (p.config.public_key.to_base64(), p))
        .collect();
    let mut out = PeerDiff::default();
    for d in desired {
        let same = have.get(&d.public_key).is_some_and(|p| {
            let bits = if d.address.is_ipv4() { 32 } else { 128 };
            let ips = &p.config.allowed_ips;
            let keepalive = p.config.persistent_keepalive_interval.unwrap_or(0);
            ips.len() == 1
                && ips[0].address == d.address
                && ips[0].cidr == bits
                && keepalive == d.keepalive_seconds
        });
        if !same {
            out.upsert.push(d.clone());
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

    fn want(n: u8, ip: &str) -> Desired {
        Desired {
            public_key: key(n),
            address: ip.parse().unwrap(),
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
        let upserted: Vec<_> = d.upsert.iter().map(|p| p.public_key.clone()).collect();
        assert_eq!(upserted, vec![key(2), key(3), key(5)]);
        assert_eq!(d.remove, vec![key(4)]);
        assert!(diff(&desired[..1], &current[..1]).is_empty());
    }

    #[test]
    fn update_carries_one_allowed_ip_per_peer() {
        let d = PeerDiff {
            upsert: vec![want(7, "10.0.0.7")],
            remove: vec![key(8)],
        };
        let text = format!("{:?}", d.to_update());
        assert!(text.contains("allowed_ips: [10.0.0.7/32]"), "{text}");
        assert!(text.contains("replace_allowed_ips: true"), "{text}");
        assert!(text.contains("persistent_keepalive_interval: Some(25)"), "{text}");
        assert!(text.contains("remove_me: true"), "{text}");
    }
}
