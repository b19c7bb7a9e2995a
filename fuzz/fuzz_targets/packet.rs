//! Packet decode, encode, decode again: whatever parses must re-encode to the same bytes, and
//! the dictionary-driven decoder (VSAs, extended attributes, tags) must not panic on it.
#![no_main]

use std::sync::OnceLock;

use edge_radius::codec::{unhide_password, PacketBuilder, RawPacket};
use edge_radius::dict::Dictionary;
use libfuzzer_sys::fuzz_target;

fn dict() -> &'static Dictionary {
    static D: OnceLock<Dictionary> = OnceLock::new();
    D.get_or_init(|| Dictionary::builtin().expect("shipped dictionaries load"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(p) = RawPacket::parse(data) else {
        return;
    };
    let mut b = PacketBuilder::new(p.code(), p.identifier(), p.authenticator());
    for a in p.attrs() {
        b.attr(a.typ, a.value);
    }
    let again = b.finish();
    assert_eq!(&again[..], p.bytes(), "re-encoding changed the packet");
    let q = RawPacket::parse(&again).expect("re-encoded packet parses");
    assert_eq!(q.attrs().count(), p.attrs().count());
    for pair in dict().decode_packet(&p) {
        let _ = pair.to_string();
    }
    if let Some(pw) = p.find(2) {
        let _ = unhide_password(pw, b"secret", p.authenticator());
    }
});
