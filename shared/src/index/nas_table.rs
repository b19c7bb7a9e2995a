//! NAS clients by source address: exact addresses in a hash map, CIDRs longest prefix first.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use ipnetwork::IpNetwork;

use crate::types::Nas;

#[derive(Debug, Default)]
pub struct NasTable {
    exact: HashMap<IpAddr, Arc<Nas>>,
    networks: Vec<(IpNetwork, Arc<Nas>)>,
    all: Vec<Arc<Nas>>,
}

impl NasTable {
    /// Builds the table; entries whose address does not parse are left out (the CLI refuses
    /// them, so only a hand-edited database can hold one).
    pub fn build(list: Vec<Nas>) -> NasTable {
        let mut t = NasTable::default();
        for nas in list {
            let nas = Arc::new(nas);
            t.all.push(Arc::clone(&nas));
            if let Ok(ip) = nas.address.parse::<IpAddr>() {
                t.exact.insert(ip, nas);
            } else if let Ok(net) = nas.address.parse::<IpNetwork>() {
                t.networks.push((net, nas));
            }
        }
        t.networks
            .sort_by_key(|(n, _)| std::cmp::Reverse(n.prefix()));
        t
    }

    pub fn lookup(&self, ip: IpAddr) -> Option<&Arc<Nas>> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.exact.get(&ip).or_else(|| {
            self.networks
                .iter()
                .find(|(n, _)| n.contains(ip))
                .map(|(_, n)| n)
        })
    }

    pub fn all(&self) -> &[Arc<Nas>] {
        &self.all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::NasId;

    fn nas(id: i64, address: &str) -> Nas {
        Nas {
            id: NasId(id),
            name: format!("n{id}"),
            address: address.into(),
            secret: "s".into(),
            vendor: "generic".into(),
            coa_port: 3799,
            require_message_authenticator: true,
            rate_limit_per_second: 0,
            tunnel: None,
        }
    }

    #[test]
    fn exact_then_longest_prefix() {
        let t = NasTable::build(vec![
            nas(1, "10.0.0.0/8"),
            nas(2, "10.1.0.0/16"),
            nas(3, "10.1.2.3"),
            nas(4, "2001:db8::/32"),
        ]);
        let id = |s: &str| t.lookup(s.parse().unwrap()).map(|n| n.id.0);
        assert_eq!(id("10.1.2.3"), Some(3));
        assert_eq!(id("10.1.9.9"), Some(2));
        assert_eq!(id("10.9.9.9"), Some(1));
        assert_eq!(id("::ffff:10.1.2.3"), Some(3));
        assert_eq!(id("2001:db8::5"), Some(4));
        assert_eq!(id("192.0.2.1"), None);
    }
}
