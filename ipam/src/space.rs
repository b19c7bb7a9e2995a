//! A pool's address space, numbered in slots: slot i is the i-th address (IPv4) or the i-th
//! prefix of the handed-out length (IPv6) across the pool's ranges, in the order given.
//! No I/O: text in, numbers out.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnetwork::IpNetwork;

/// Most slots one pool may have (a bitmap-sized bound on memory and block rows).
pub const MAX_SLOTS: u64 = 1 << 26;
/// Most slots one exclude may cover.
const MAX_EXCLUDE: u64 = 1 << 16;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Run {
    /// The first address of the run, as a number (IPv4 in the low 32 bits).
    first: u128,
    count: u64,
    /// Slots before this run.
    offset: u64,
}

impl Run {
    /// The last address the run covers (a run may end at the top of the address space, so
    /// one past it may not exist).
    fn last(&self, shift: u32) -> u128 {
        self.first + (u128::from(self.count - 1) << shift) + ((1u128 << shift) - 1)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Space {
    v6: bool,
    prefix_len: u8,
    runs: Vec<Run>,
    len: u64,
}

impl Space {
    /// Parses `ranges`: IPv4 CIDRs (network and broadcast addresses left out from /30 and
    /// wider) and `first-last` ranges; IPv6 CIDRs no longer than `prefix_len`.
    pub fn parse(family: u8, ranges: &[String], prefix_len: u8) -> Result<Space, String> {
        let v6 = match family {
            4 => false,
            6 => true,
            _ => return Err("family must be 4 or 6".into()),
        };
        if v6 && !(1..=128).contains(&prefix_len) || !v6 && prefix_len != 32 {
            return Err(format!(
                "prefix length {prefix_len} does not fit the family"
            ));
        }
        if ranges.is_empty() {
            return Err("a pool needs at least one range".into());
        }
        let mut runs: Vec<Run> = Vec::new();
        let mut len = 0u64;
        for r in ranges {
            let (first, count) = if v6 {
                parse_v6(r, prefix_len)?
            } else {
                parse_v4(r)?
            };
            if count == 0 {
                return Err(format!("`{r}` holds no address"));
            }
            let shift = if v6 { 128 - u32::from(prefix_len) } else { 0 };
            let run = Run {
                first,
                count,
                offset: len,
            };
            let last = run.last(shift);
            if runs
                .iter()
                .any(|o| first <= o.last(shift) && o.first <= last)
            {
                return Err(format!("`{r}` overlaps another range"));
            }
            runs.push(run);
            len += count;
            if len > MAX_SLOTS {
                return Err(format!("a pool may hold at most {MAX_SLOTS} slots"));
            }
        }
        Ok(Space {
            v6,
            prefix_len,
            runs,
            len,
        })
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn is_v6(&self) -> bool {
        self.v6
    }

    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    fn shift(&self) -> u32 {
        if self.v6 {
            128 - u32::from(self.prefix_len)
        } else {
            0
        }
    }

    /// The address (IPv6: the prefix's first address) of a slot.
    pub fn address(&self, slot: u64) -> Option<IpAddr> {
        let run = self
            .runs
            .iter()
            .find(|r| slot >= r.offset && slot < r.offset + r.count)?;
        let n = run.first + (u128::from(slot - run.offset) << self.shift());
        Some(if self.v6 {
            IpAddr::V6(Ipv6Addr::from(n))
        } else {
            IpAddr::V4(Ipv4Addr::from(n as u32))
        })
    }

    /// How a slot is written in leases: `10.0.0.7`, or `2001:db8:0:7::/64`.
    pub fn text(&self, slot: u64) -> Option<String> {
        let a = self.address(slot)?;
        Some(if self.v6 {
            format!("{a}/{}", self.prefix_len)
        } else {
            a.to_string()
        })
    }

    /// The slot holding an address (IPv6: the prefix it falls in).
    pub fn slot(&self, addr: IpAddr) -> Option<u64> {
        let n = match (addr, self.v6) {
            (IpAddr::V4(a), false) => u128::from(u32::from(a)),
            (IpAddr::V6(a), true) => u128::from(a),
            _ => return None,
        };
        let shift = self.shift();
        self.runs.iter().find_map(|r| {
            (n >= r.first && n <= r.last(shift)).then(|| r.offset + ((n - r.first) >> shift) as u64)
        })
    }

    /// The slot a lease text names (`10.0.0.7`, `2001:db8::/64` or an address inside).
    pub fn slot_of_text(&self, text: &str) -> Option<u64> {
        self.slot(lease_address(text)?)
    }

    /// The slots `excludes` name (addresses, CIDRs, IPv4 ranges); those outside the pool
    /// are left out.
    pub fn excluded(&self, excludes: &[String]) -> Result<Vec<u64>, String> {
        let mut out = Vec::new();
        for e in excludes {
            let (first, last): (IpAddr, IpAddr) = if let Some((a, b)) = e.split_once('-') {
                (ip(a)?, ip(b)?)
            } else if e.contains('/') {
                let net: IpNetwork = e.trim().parse().map_err(|_| format!("bad exclude `{e}`"))?;
                (net.network(), last_of(&net))
            } else {
                let a = ip(e)?;
                (a, a)
            };
            let (Some(lo), Some(hi)) = (
                self.first_slot_at_or_after(first),
                self.last_slot_at_or_before(last),
            ) else {
                continue;
            };
            if hi >= lo {
                if hi - lo >= MAX_EXCLUDE {
                    return Err(format!(
                        "exclude `{e}` covers more than {MAX_EXCLUDE} slots"
                    ));
                }
                out.extend(lo..=hi);
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// The slots never handed out: those `excludes` name and those of static addresses;
    /// sorted, each once.
    pub fn reserved(&self, excludes: &[String], statics: &[Ipv4Addr]) -> Result<Vec<u64>, String> {
        let mut out = self.excluded(excludes)?;
        out.extend(statics.iter().filter_map(|ip| self.slot(IpAddr::V4(*ip))));
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    fn first_slot_at_or_after(&self, a: IpAddr) -> Option<u64> {
        if let Some(s) = self.slot(a) {
            return Some(s);
        }
        let n = num(a, self.v6)?;
        self.runs
            .iter()
            .filter(|r| r.first > n)
            .map(|r| r.offset)
            .min()
    }

    fn last_slot_at_or_before(&self, a: IpAddr) -> Option<u64> {
        if let Some(s) = self.slot(a) {
            return Some(s);
        }
        let n = num(a, self.v6)?;
        let shift = self.shift();
        self.runs
            .iter()
            .filter(|r| r.last(shift) < n)
            .map(|r| r.offset + r.count - 1)
            .max()
    }
}

/// The address a lease text starts with: `10.0.0.7`, or `2001:db8::` of `2001:db8::/64`.
pub fn lease_address(text: &str) -> Option<IpAddr> {
    let addr = text.split_once('/').map_or(text, |(a, _)| a);
    addr.trim().parse().ok()
}

fn num(a: IpAddr, v6: bool) -> Option<u128> {
    match (a, v6) {
        (IpAddr::V4(a), false) => Some(u128::from(u32::from(a))),
        (IpAddr::V6(a), true) => Some(u128::from(a)),
        _ => None,
    }
}

fn ip(s: &str) -> Result<IpAddr, String> {
    s.trim().parse().map_err(|_| format!("bad address `{s}`"))
}

fn last_of(net: &IpNetwork) -> IpAddr {
    match net {
        IpNetwork::V4(n) => IpAddr::V4(n.broadcast()),
        IpNetwork::V6(n) => {
            let host = u128::MAX.checked_shr(u32::from(n.prefix())).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(n.network()) | host))
        }
    }
}

fn parse_v4(r: &str) -> Result<(u128, u64), String> {
    if let Some((a, b)) = r.split_once('-') {
        let (IpAddr::V4(a), IpAddr::V4(b)) = (ip(a)?, ip(b)?) else {
            return Err(format!("`{r}` is not an IPv4 range"));
        };
        let (a, b) = (u32::from(a), u32::from(b));
        if b < a {
            return Err(format!("`{r}` ends before it starts"));
        }
        return Ok((u128::from(a), u64::from(b - a) + 1));
    }
    let net: ipnetwork::Ipv4Network = r
        .trim()
        .parse()
        .map_err(|_| format!("`{r}` is not an IPv4 CIDR or range"))?;
    if net.ip() != net.network() {
        return Err(format!("`{r}` has host bits set"));
    }
    let first = u32::from(net.network());
    let size = 1u64 << (32 - u32::from(net.prefix()));
    // The network and broadcast addresses of a subnet are left out: CPEs and routers treat
    // x.x.x.0 and x.x.x.255 badly even on point-to-point links.
    Ok(if net.prefix() <= 30 {
        (u128::from(first) + 1, size - 2)
    } else {
        (u128::from(first), size)
    })
}

fn parse_v6(r: &str, prefix_len: u8) -> Result<(u128, u64), String> {
    let net: ipnetwork::Ipv6Network = r
        .trim()
        .parse()
        .map_err(|_| format!("`{r}` is not an IPv6 CIDR"))?;
    if net.ip() != net.network() {
        return Err(format!("`{r}` has host bits set"));
    }
    if net.prefix() > prefix_len {
        return Err(format!(
            "`{r}` is longer than the /{prefix_len} prefixes handed out"
        ));
    }
    let bits = u32::from(prefix_len - net.prefix());
    if bits >= 63 || (1u64 << bits) > MAX_SLOTS {
        return Err(format!(
            "`{r}` holds more than {MAX_SLOTS} prefixes of /{prefix_len}"
        ));
    }
    Ok((u128::from(net.network()), 1u64 << bits))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn ipv4_cidrs_and_ranges_number_in_order() {
        let sp = Space::parse(4, &s(&["10.0.0.0/30", "192.168.1.10-192.168.1.12"]), 32).unwrap();
        assert_eq!(sp.len(), 2 + 3);
        assert_eq!(sp.text(0).unwrap(), "10.0.0.1");
        assert_eq!(sp.text(1).unwrap(), "10.0.0.2");
        assert_eq!(sp.text(2).unwrap(), "192.168.1.10");
        assert_eq!(sp.text(4).unwrap(), "192.168.1.12");
        assert_eq!(sp.address(5), None);
        assert_eq!(sp.slot("192.168.1.11".parse().unwrap()), Some(3));
        assert_eq!(sp.slot("10.0.0.0".parse().unwrap()), None);
        assert_eq!(sp.slot("10.0.0.3".parse().unwrap()), None);
        assert_eq!(sp.slot("::1".parse().unwrap()), None);
        let full = Space::parse(4, &s(&["100.64.0.0/12"]), 32).unwrap();
        assert_eq!(full.len(), (1 << 20) - 2);
        let host = Space::parse(4, &s(&["10.9.9.9/32"]), 32).unwrap();
        assert_eq!(host.len(), 1);
    }

    #[test]
    fn ipv6_pools_hand_out_prefixes() {
        let sp = Space::parse(6, &s(&["2001:db8::/40"]), 56).unwrap();
        assert_eq!(sp.len(), 1 << 16);
        assert_eq!(sp.text(0).unwrap(), "2001:db8::/56");
        assert_eq!(sp.text(1).unwrap(), "2001:db8:0:100::/56");
        let inside: IpAddr = "2001:db8:0:1ff::1".parse().unwrap();
        assert_eq!(sp.slot(inside), Some(1));
        assert_eq!(sp.slot_of_text("2001:db8:0:100::/56"), Some(1));
        assert!(Space::parse(6, &s(&["2001:db8::/64"]), 56).is_err());
        assert!(Space::parse(6, &s(&["2001:db8::/20"]), 64).is_err());
    }

    #[test]
    fn a_run_may_end_at_the_top_of_the_address_space() {
        let sp = Space::parse(6, &s(&["::/0"]), 1).unwrap();
        assert_eq!(sp.len(), 2);
        let top = sp.address(1).unwrap();
        assert_eq!(sp.slot(top), Some(1));
        assert_eq!(sp.slot("ffff::1".parse().unwrap()), Some(1));
        let v4 = Space::parse(4, &s(&["255.255.255.254-255.255.255.255"]), 32).unwrap();
        assert_eq!(v4.slot("255.255.255.255".parse().unwrap()), Some(1));
    }

    #[test]
    fn bad_definitions_are_refused() {
        assert!(Space::parse(4, &s(&["10.0.0.1/24"]), 32).is_err());
        assert!(Space::parse(4, &s(&["10.0.0.0/24", "10.0.0.128/25"]), 32).is_err());
        assert!(Space::parse(4, &s(&["10.0.0.9-10.0.0.1"]), 32).is_err());
        assert!(Space::parse(4, &s(&["2001:db8::/64"]), 32).is_err());
        assert!(Space::parse(4, &[], 32).is_err());
        assert!(Space::parse(4, &s(&["10.0.0.0/4"]), 32).is_err());
    }

    #[test]
    fn excludes_name_slots_inside_the_pool() {
        let sp = Space::parse(4, &s(&["10.0.0.0/24"]), 32).unwrap();
        let ex = sp
            .excluded(&s(&[
                "10.0.0.1",
                "10.0.0.10-10.0.0.12",
                "10.0.0.0/30",
                "172.16.0.1",
            ]))
            .unwrap();
        assert_eq!(ex, vec![0, 1, 2, 9, 10, 11]);
        let v6 = Space::parse(6, &s(&["2001:db8::/48"]), 64).unwrap();
        assert_eq!(v6.excluded(&s(&["2001:db8:0:2::/64"])).unwrap(), vec![2]);
        assert_eq!(v6.excluded(&s(&["2001:db8:0:3::5"])).unwrap(), vec![3]);
        // A static address that is also excluded counts once.
        let statics = ["10.0.0.2".parse().unwrap(), "10.0.0.200".parse().unwrap()];
        assert_eq!(
            sp.reserved(&s(&["10.0.0.2"]), &statics).unwrap(),
            vec![1, 199]
        );
    }
}
