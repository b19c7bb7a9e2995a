//! Any `Forwarded` and `X-Forwarded-For` values a client or proxy sends: the ACS's reading of
//! the CPE's address returns an address, never a panic, and ignores the headers when the
//! peer is not a trusted proxy.
#![no_main]

use std::net::IpAddr;

use edge_acs::forwarded::{client_ip, IpNetwork};
use libfuzzer_sys::fuzz_target;

/// Header values, one per line.
fn lines(b: &[u8]) -> impl Iterator<Item = &[u8]> {
    b.split(|&c| c == b'\n')
}

fuzz_target!(|data: &[u8]| {
    // A NUL starts the X-Forwarded-For values.
    let (fwd, xff) = data
        .iter()
        .position(|&b| b == 0)
        .map_or((data, &[][..]), |i| (&data[..i], &data[i + 1..]));
    let peer: IpAddr = "10.0.0.1".parse().unwrap();
    let trusted: [IpNetwork; 2] = ["10.0.0.0/8".parse().unwrap(), "fd00::/8".parse().unwrap()];
    let _ = client_ip(peer, lines(fwd), lines(xff), &trusted);
    let all: [IpNetwork; 2] = ["0.0.0.0/0".parse().unwrap(), "::/0".parse().unwrap()];
    let _ = client_ip(peer, lines(fwd), lines(xff), &all);
    let outside: IpAddr = "192.0.2.1".parse().unwrap();
    assert_eq!(client_ip(outside, lines(fwd), lines(xff), &trusted), outside);
});
