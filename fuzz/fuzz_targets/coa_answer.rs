//! A NAS's answer to a Disconnect/CoA request: any datagram must be either a verified
//! answer or a typed refusal, never a panic. The input's first byte picks the request kind;
//! the rest is the datagram, with the request's identifier patched in half the time so the
//! authenticator check is reached.
#![no_main]

use std::sync::OnceLock;

use edge_radius::coa::{identification, DynAuthKind, DynAuthRequest, SessionIdent};
use libfuzzer_sys::fuzz_target;

const SECRET: &[u8] = b"fuzz-secret";

fn requests() -> &'static [DynAuthRequest; 2] {
    static R: OnceLock<[DynAuthRequest; 2]> = OnceLock::new();
    R.get_or_init(|| {
        let ident = identification(
            "generic",
            &SessionIdent {
                username: "u".into(),
                acct_session_id: "s".into(),
                nas_ip_address: Some([10, 0, 0, 1].into()),
                framed_ip_address: None,
            },
        );
        let make = |k| DynAuthRequest::build(k, 7, &ident, &[], 1, SECRET).expect("fits");
        [make(DynAuthKind::Disconnect), make(DynAuthKind::Coa)]
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let req = &requests()[usize::from(pick & 1)];
    let mut datagram = rest.to_vec();
    if pick & 2 != 0 && datagram.len() > 1 {
        datagram[1] = req.identifier();
    }
    if let Ok(answer) = req.read_response(&datagram, SECRET) {
        // Only a correctly signed answer gets here; its code is one of the two expected.
        assert!(matches!(datagram[0], 41 | 42 | 44 | 45));
        let _ = answer.error_cause.map(edge_radius::coa::error_cause_name);
    }
});
