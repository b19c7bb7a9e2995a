//! The interface's address and state over rtnetlink: what `ip address add` and
//! `ip link set up` do, without shelling out.

use std::io;
use std::net::IpAddr;

use netlink_packet_core::{NLM_F_ACK, NLM_F_CREATE, NLM_F_REPLACE, NLM_F_REQUEST};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_request::netlink_request_rtnl;

/// The index of interface `name`.
pub(crate) fn index_of(name: &str) -> io::Result<u32> {
    nix::net::if_::if_nametoindex(name).map_err(io::Error::from)
}

/// Sets `address/prefix_len` on the interface (replacing the same address if present), so
/// the kernel routes the management prefix into the tunnel.
pub(crate) fn set_address(index: u32, address: IpAddr, prefix_len: u8) -> io::Result<()> {
    let mut m = AddressMessage::default();
    m.header.family = if address.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    m.header.prefix_len = prefix_len;
    m.header.index = index;
    m.attributes.push(AddressAttribute::Local(address));
    m.attributes.push(AddressAttribute::Address(address));
    netlink_request_rtnl(
        RouteNetlinkMessage::NewAddress(m),
        Some(NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE),
    )
    .map(|_| ())
}

/// The MTU wg-quick sets: 1500 less the 80 bytes of WireGuard's IPv6 encapsulation.
const MTU: u32 = 1420;

/// Sets the interface up with WireGuard's MTU.
pub(crate) fn set_up(index: u32) -> io::Result<()> {
    let mut m = LinkMessage::default();
    m.header.index = index;
    m.attributes.push(LinkAttribute::Mtu(MTU));
    m.header.flags = LinkFlags::Up;
    m.header.change_mask = LinkFlags::Up;
    netlink_request_rtnl(
        RouteNetlinkMessage::SetLink(m),
        Some(NLM_F_REQUEST | NLM_F_ACK),
    )
    .map(|_| ())
}
