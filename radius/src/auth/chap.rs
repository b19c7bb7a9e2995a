//! CHAP (RFC 1994, RFC 2865 section 5.3): Response = MD5(Ident + secret + Challenge).

use md5::{Digest, Md5};

use crate::codec::{attr, RawPacket};

/// Checks a CHAP-Password against a cleartext password. The challenge is CHAP-Challenge when
/// present, otherwise the Request Authenticator (RFC 2865 section 2.2).
pub fn verify(packet: &RawPacket<'_>, password: &[u8]) -> bool {
    let Some(chap) = packet.find(attr::CHAP_PASSWORD) else {
        return false;
    };
    if chap.len() != 17 {
        return false;
    }
    let challenge = packet
        .find(attr::CHAP_CHALLENGE)
        .unwrap_or(packet.authenticator());
    let expected = response(chap[0], password, challenge);
    crate::codec::constant_time_eq(&expected, &chap[1..])
}

pub fn response(ident: u8, password: &[u8], challenge: &[u8]) -> [u8; 16] {
    let mut h = Md5::new();
    h.update([ident]);
    h.update(password);
    h.update(challenge);
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Code, PacketBuilder};

    #[test]
    fn verifies_with_and_without_chap_challenge() {
        let ra = [1u8; 16];
        for challenge in [None, Some(&b"0123456789abcdef"[..])] {
            let mut b = PacketBuilder::new(Code::ACCESS_REQUEST, 1, &ra);
            let c = challenge.unwrap_or(&ra);
            let mut v = vec![9u8];
            v.extend_from_slice(&response(9, b"hello", c));
            b.attr(attr::CHAP_PASSWORD, &v);
            if let Some(c) = challenge {
                b.attr(attr::CHAP_CHALLENGE, c);
            }
            let bytes = b.finish();
            let p = RawPacket::parse(&bytes).unwrap();
            assert!(verify(&p, b"hello"));
            assert!(!verify(&p, b"hellO"));
        }
    }
}
