//! A userspace WireGuard implementation's UAPI answer (`get=1`): whatever the bytes, the
//! reader must not panic, and every peer it yields has a key and at most the allowed IPs the
//! answer listed.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(peers) = edge_wireguard::uapi::parse(data) {
        let listed = data.split(|b| *b == b'\n').filter(|l| l.starts_with(b"allowed_ip=")).count();
        let kept: usize = peers.iter().map(|p| p.config.allowed_ips.len()).sum();
        assert!(kept <= listed);
    }
});
