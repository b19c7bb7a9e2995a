//! A CPE's own address when it reaches the ACS through proxies (an HTTP load balancer, an
//! ingress): read from `Forwarded` (RFC 7239) or else `X-Forwarded-For`, and only when the
//! connection comes from a proxy the operator trusts (`acs.trusted_proxies`), since anyone
//! can send either header.
//!
//! The list is walked from the right (the hop nearest to us): each address that is itself a
//! trusted proxy passed the request on, and the first one that is not is the client. A hop
//! that names no address (`unknown`, an obfuscated name, anything unreadable) ends the walk
//! at the last trusted hop, which is then the best that is known.

use std::net::IpAddr;

pub use ipnetwork::IpNetwork;

/// The client's address: `peer` unless `peer` is a trusted proxy and the headers say more.
/// `forwarded` and `x_forwarded_for` are every value of those headers, in order.
pub fn client_ip<'a>(
    peer: IpAddr,
    forwarded: impl IntoIterator<Item = &'a [u8]>,
    x_forwarded_for: impl IntoIterator<Item = &'a [u8]>,
    trusted: &[IpNetwork],
) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let mut hops: Vec<Option<IpAddr>> = Vec::new();
    for value in forwarded {
        for element in split(value, b',') {
            // `for=…` among `;`-separated pairs; an element without one names no address.
            let name = split(element, b';').find_map(|pair| {
                let (k, v) = pair.split_at(pair.iter().position(|&b| b == b'=')?);
                k.trim_ascii()
                    .eq_ignore_ascii_case(b"for")
                    .then(|| v[1..].trim_ascii())
            });
            hops.push(name.and_then(node_ip));
        }
    }
    if hops.is_empty() {
        for value in x_forwarded_for {
            hops.extend(split(value, b',').map(|v| node_ip(v.trim_ascii())));
        }
    }
    let mut client = peer;
    for hop in hops.into_iter().rev() {
        match hop {
            Some(ip) => {
                client = ip;
                if !is_trusted(ip) {
                    break;
                }
            }
            None => break,
        }
    }
    client
}

fn split(value: &[u8], sep: u8) -> impl Iterator<Item = &[u8]> {
    value.split(move |&b| b == sep).filter(|s| !s.is_empty())
}

/// An address from a node: `192.0.2.1`, `192.0.2.1:4711`, `"[2001:db8::1]:4711"`,
/// `2001:db8::1`; `None` for `unknown`, obfuscated names and anything else.
fn node_ip(node: &[u8]) -> Option<IpAddr> {
    let node = std::str::from_utf8(node).ok()?;
    let node = node
        .strip_prefix('"')
        .and_then(|n| n.strip_suffix('"'))
        .unwrap_or(node);
    if let Some(rest) = node.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.starts_with(':')) {
            return None;
        }
        return ip.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6);
    }
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    // IPv4 with a port.
    let (ip, port) = node.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    ip.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn nets(list: &[&str]) -> Vec<IpNetwork> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn client(peer: &str, fwd: &[&str], xff: &[&str], trusted: &[&str]) -> IpAddr {
        client_ip(
            ip(peer),
            fwd.iter().map(|s| s.as_bytes()),
            xff.iter().map(|s| s.as_bytes()),
            &nets(trusted),
        )
    }

    #[test]
    fn headers_count_only_from_a_trusted_proxy() {
        // Nobody trusted: the peer, whatever it claims.
        assert_eq!(
            client("10.0.0.5", &[], &["198.51.100.7"], &[]),
            ip("10.0.0.5")
        );
        // A peer outside the trusted ranges cannot claim another address.
        assert_eq!(
            client(
                "203.0.113.9",
                &["for=198.51.100.7"],
                &["198.51.100.7"],
                &["10.0.0.0/8"]
            ),
            ip("203.0.113.9")
        );
        assert_eq!(
            client("10.0.0.5", &[], &["198.51.100.7"], &["10.0.0.0/8"]),
            ip("198.51.100.7")
        );
        // A trusted proxy that says nothing: the proxy.
        assert_eq!(
            client("10.0.0.5", &[], &[], &["10.0.0.0/8"]),
            ip("10.0.0.5")
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let t = ["10.0.0.0/8", "fd00::/8"];
        // A client that sent its own X-Forwarded-For cannot choose what is read.
        assert_eq!(
            client("10.0.0.5", &[], &["6.6.6.6, 198.51.100.7, 10.1.1.1"], &t),
            ip("198.51.100.7")
        );
        // Several header lines are one list, in order.
        assert_eq!(
            client(
                "10.0.0.5",
                &[],
                &["6.6.6.6", "198.51.100.7:5555,10.1.1.1"],
                &t
            ),
            ip("198.51.100.7")
        );
        // Every hop trusted: the farthest.
        assert_eq!(
            client("10.0.0.5", &[], &["10.9.9.9, 10.1.1.1"], &t),
            ip("10.9.9.9")
        );
        // An unreadable hop ends the walk at the last trusted one.
        assert_eq!(
            client("10.0.0.5", &[], &["198.51.100.7, garbage, 10.1.1.1"], &t),
            ip("10.1.1.1")
        );
    }

    #[test]
    fn forwarded_wins_and_reads_rfc_7239_nodes() {
        let t = ["10.0.0.0/8"];
        assert_eq!(
            client(
                "10.0.0.5",
                &["for=192.0.2.60;proto=http;by=203.0.113.43, For=\"[2001:db8:cafe::17]:4711\""],
                &["6.6.6.6"],
                &t
            ),
            ip("2001:db8:cafe::17")
        );
        assert_eq!(
            client(
                "10.0.0.5",
                &["proto=https; for=\"192.0.2.43:47011\""],
                &[],
                &t
            ),
            ip("192.0.2.43")
        );
        // `unknown` and obfuscated names name no address: the proxy is what is known.
        assert_eq!(
            client("10.0.0.5", &["for=unknown"], &["6.6.6.6"], &t),
            ip("10.0.0.5")
        );
        assert_eq!(
            client("10.0.0.5", &["for=_hidden"], &[], &t),
            ip("10.0.0.5")
        );
        assert_eq!(
            client("10.0.0.5", &["by=10.0.0.1"], &[], &t),
            ip("10.0.0.5")
        );
    }

    #[test]
    fn nodes() {
        assert_eq!(node_ip(b"2001:db8::1"), Some(ip("2001:db8::1")));
        assert_eq!(node_ip(b"[2001:db8::1]"), Some(ip("2001:db8::1")));
        assert_eq!(node_ip(b"\"[2001:db8::1]:80\""), Some(ip("2001:db8::1")));
        assert_eq!(node_ip(b"[2001:db8::1]x"), None);
        assert_eq!(node_ip(b"[192.0.2.1]"), None);
        assert_eq!(node_ip(b"192.0.2.1:99999"), None);
        assert_eq!(node_ip(b"\xff"), None);
        assert_eq!(node_ip(b""), None);
    }
}
