//! Accounting-Request to session row: whatever the attributes, decoding must not panic, and a
//! session report must carry its unique id and keep its counters non-negative.
#![no_main]

use std::sync::OnceLock;

use edge_radius::codec::RawPacket;
use edge_radius::dict::Dictionary;
use edge_radius::server::decode_accounting;
use edge_shared::accounting::{c, AcctEvent};
use edge_shared::types::{Nas, NasId};
use libfuzzer_sys::fuzz_target;

fn dict() -> &'static Dictionary {
    static D: OnceLock<Dictionary> = OnceLock::new();
    D.get_or_init(|| Dictionary::builtin().expect("shipped dictionaries load"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(p) = RawPacket::parse(data) else {
        return;
    };
    let nas = Nas {
        id: NasId(1),
        name: "fuzz".into(),
        address: "127.0.0.1".into(),
        secret: "s".into(),
        vendor: "generic".into(),
        coa_port: 3799,
        require_message_authenticator: false,
        rate_limit_per_second: 0,
        tunnel: None,
    };
    let src = "127.0.0.1".parse().expect("address");
    if let Ok(AcctEvent::Session(r)) = decode_accounting(&p, dict(), &nas, src, 1_700_000_000) {
        assert_eq!(r.unique_id().len(), 32);
        for i in [c::INPUT_OCTETS, c::OUTPUT_OCTETS, c::SESSION_TIME] {
            assert!(r.int(i).is_some_and(|v| v >= 0));
        }
    }
});
