//! Authenticators and the attribute-hiding schemes of RFC 2865, 2866, 2868 and 3579.

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};

use super::error::DecodeError;
use super::packet::{RawPacket, HEADER_LEN};

pub const MESSAGE_AUTHENTICATOR_LEN: usize = 16;

type HmacMd5 = Hmac<Md5>;

/// A shared secret made ready for Message-Authenticator: HMAC-MD5 with the key's inner and
/// outer blocks already hashed, so each packet costs two MD5 blocks fewer. Build one per
/// client and clone it per packet.
#[derive(Clone)]
pub struct MacKey(HmacMd5);

impl std::fmt::Debug for MacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MacKey(..)")
    }
}

impl MacKey {
    pub fn new(secret: &[u8]) -> MacKey {
        MacKey(HmacMd5::new_from_slice(secret).expect("HMAC takes keys of any length"))
    }

    /// HMAC-MD5 over `packet` as if its authenticator field held `auth` and the 16 octets at
    /// `ma_offset` were zero (RFC 3579 section 3.2).
    pub fn sign(&self, packet: &[u8], ma_offset: usize, auth: &[u8; 16]) -> [u8; 16] {
        let mut mac = self.0.clone();
        mac.update(&packet[..4]);
        mac.update(auth);
        mac.update(&packet[HEADER_LEN..ma_offset]);
        mac.update(&[0u8; 16]);
        mac.update(&packet[ma_offset + 16..]);
        mac.finalize().into_bytes().into()
    }

    /// Checks a packet's Message-Authenticator. `None` when the packet has none;
    /// `Some(false)` when it is present but wrong or malformed. `auth` is what the
    /// authenticator field held when the sender computed it: the packet's own for
    /// Access-Request and Status-Server, the request's for responses, zeros for accounting
    /// and CoA requests (RFC 5176 section 3.3).
    pub fn verify(&self, packet: &RawPacket<'_>, auth: &[u8; 16]) -> Option<bool> {
        let attr = packet
            .attrs()
            .find(|a| a.typ == super::attr::MESSAGE_AUTHENTICATOR)?;
        if attr.value.len() != MESSAGE_AUTHENTICATOR_LEN {
            return Some(false);
        }
        let expected = self.sign(packet.bytes(), attr.offset + 2, auth);
        Some(constant_time_eq(&expected, attr.value))
    }
}

/// [`MacKey::sign`] for a one-off secret.
pub fn message_authenticator(
    packet: &[u8],
    ma_offset: usize,
    auth: &[u8; 16],
    secret: &[u8],
) -> [u8; 16] {
    MacKey::new(secret).sign(packet, ma_offset, auth)
}

/// [`MacKey::verify`] for a one-off secret.
pub fn verify_message_authenticator(
    packet: &RawPacket<'_>,
    auth: &[u8; 16],
    secret: &[u8],
) -> Option<bool> {
    MacKey::new(secret).verify(packet, auth)
}

/// RFC 2865 section 3: MD5(Code+ID+Length+RequestAuth+Attributes+Secret). `packet` holds the
/// response with the request's authenticator in its authenticator field.
pub fn response_authenticator(packet: &[u8], request_auth: &[u8; 16], secret: &[u8]) -> [u8; 16] {
    let mut h = Md5::new();
    h.update(&packet[..4]);
    h.update(request_auth);
    h.update(&packet[HEADER_LEN..]);
    h.update(secret);
    h.finalize().into()
}

/// RFC 2866 section 3 (and RFC 5176 for CoA/Disconnect): MD5 over the packet with a zeroed
/// authenticator field, followed by the secret.
pub fn accounting_request_authenticator(packet: &[u8], secret: &[u8]) -> [u8; 16] {
    response_authenticator(packet, &[0u8; 16], secret)
}

/// RFC 2865 section 5.2: pad to a multiple of 16 (at most 128 octets) and chain MD5 blocks.
pub fn hide_password(password: &[u8], secret: &[u8], request_auth: &[u8; 16]) -> Vec<u8> {
    let len = password.len().clamp(1, 128).div_ceil(16) * 16;
    let mut out = vec![0u8; len];
    out[..password.len().min(128)].copy_from_slice(&password[..password.len().min(128)]);
    xor_chain_iv(&mut out, secret, request_auth, true);
    out
}

/// Reverses [`hide_password`]; trailing NUL padding is removed.
pub fn unhide_password(
    cipher: &[u8],
    secret: &[u8],
    request_auth: &[u8; 16],
) -> Result<Vec<u8>, DecodeError> {
    if cipher.is_empty() || !cipher.len().is_multiple_of(16) || cipher.len() > 128 {
        return Err(DecodeError::BadCipherLength);
    }
    let mut out = cipher.to_vec();
    xor_chain_iv(&mut out, secret, request_auth, false);
    while out.last() == Some(&0) {
        out.pop();
    }
    Ok(out)
}

/// RFC 2868 section 3.5: salt (high bit set), then the length-prefixed password hidden with
/// MD5(secret + request authenticator + salt). Returns salt + ciphertext (no tag octet).
pub fn hide_tunnel_password(
    password: &[u8],
    secret: &[u8],
    request_auth: &[u8; 16],
    salt: [u8; 2],
) -> Vec<u8> {
    let pw = &password[..password.len().min(239)];
    let salt = [salt[0] | 0x80, salt[1]];
    let len = (pw.len() + 1).div_ceil(16) * 16;
    let mut plain = vec![0u8; len];
    plain[0] = pw.len() as u8;
    plain[1..=pw.len()].copy_from_slice(pw);
    let mut iv = Vec::with_capacity(18);
    iv.extend_from_slice(request_auth);
    iv.extend_from_slice(&salt);
    xor_chain_iv(&mut plain, secret, &iv, true);
    let mut out = salt.to_vec();
    out.extend_from_slice(&plain);
    out
}

/// Reverses [`hide_tunnel_password`] given salt + ciphertext.
pub fn unhide_tunnel_password(
    value: &[u8],
    secret: &[u8],
    request_auth: &[u8; 16],
) -> Result<Vec<u8>, DecodeError> {
    if value.len() < 18 || !(value.len() - 2).is_multiple_of(16) {
        return Err(DecodeError::BadCipherLength);
    }
    let mut iv = Vec::with_capacity(18);
    iv.extend_from_slice(request_auth);
    iv.extend_from_slice(&value[..2]);
    let mut plain = value[2..].to_vec();
    xor_chain_iv(&mut plain, secret, &iv, false);
    let n = usize::from(plain[0]);
    if n + 1 > plain.len() {
        return Err(DecodeError::BadCipherLength);
    }
    Ok(plain[1..=n].to_vec())
}

/// b1 = MD5(S + iv), c1 = p1 xor b1, bi = MD5(S + c(i-1)), ci = pi xor bi.
fn xor_chain_iv(buf: &mut [u8], secret: &[u8], iv: &[u8], encrypt: bool) {
    let mut prev: Vec<u8> = iv.to_vec();
    for block in buf.chunks_mut(16) {
        let mut h = Md5::new();
        h.update(secret);
        h.update(&prev);
        let b: [u8; 16] = h.finalize().into();
        let cipher_in: Vec<u8> = block.to_vec();
        for (x, k) in block.iter_mut().zip(b.iter()) {
            *x ^= k;
        }
        prev = if encrypt { block.to_vec() } else { cipher_in };
    }
}

/// Compares without an early exit so that timing reveals nothing of a secret-derived value.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Code, PacketBuilder};

    #[test]
    fn password_round_trips_at_every_length() {
        let ra = [0x42u8; 16];
        for n in 1..=128 {
            let pw: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
            let c = hide_password(&pw, b"secret", &ra);
            assert_eq!(c.len() % 16, 0);
            assert_eq!(unhide_password(&c, b"secret", &ra).unwrap(), pw);
        }
        assert!(unhide_password(&[0u8; 15], b"s", &ra).is_err());
    }

    /// RFC 2865 section 7.1: the Access-Request from nas 192.168.1.16 for user "nemo" with
    /// password "arctangent" and secret "xyzzy5461".
    #[test]
    fn rfc2865_example_user_password() {
        let ra: [u8; 16] = hex::decode("0f403f9473978057bd83d5cb98f4227a")
            .unwrap()
            .try_into()
            .unwrap();
        let cipher =
            hex::decode("0d be 70 8d 93 d4 13 ce 31 96 e4 3f 78 2a 0a ee".replace(' ', ""))
                .unwrap();
        assert_eq!(hide_password(b"arctangent", b"xyzzy5461", &ra), cipher);
        assert_eq!(
            unhide_password(&cipher, b"xyzzy5461", &ra).unwrap(),
            b"arctangent"
        );
    }

    /// RFC 2865 section 7.1: the Access-Accept's Response Authenticator.
    #[test]
    fn rfc2865_example_response_authenticator() {
        let ra: [u8; 16] = hex::decode("0f403f9473978057bd83d5cb98f4227a")
            .unwrap()
            .try_into()
            .unwrap();
        let accept = hex::decode(
            "0200002686fe220e7624ba2a1005f6bf9b55e0b20606000000010f06000000000e06c0a80103",
        )
        .unwrap();
        let got = response_authenticator(&accept, &ra, b"xyzzy5461");
        assert_eq!(&got[..], &accept[4..20]);
    }

    #[test]
    fn tunnel_password_round_trips() {
        let ra = [7u8; 16];
        let v = hide_tunnel_password(b"tunnel-secret", b"s3", &ra, [0x12, 0x34]);
        assert_eq!(v[0] & 0x80, 0x80);
        assert_eq!(
            unhide_tunnel_password(&v, b"s3", &ra).unwrap(),
            b"tunnel-secret"
        );
        assert!(unhide_tunnel_password(&v[..10], b"s3", &ra).is_err());
    }

    #[test]
    fn message_authenticator_signs_and_verifies() {
        let ra = [3u8; 16];
        let mut b = PacketBuilder::new(Code::ACCESS_REQUEST, 1, &ra);
        b.attr(1, b"bob");
        let off = b.message_authenticator_placeholder();
        let mut bytes = b.finish();
        let ma = message_authenticator(&bytes, off, &ra, b"secret");
        bytes[off..off + 16].copy_from_slice(&ma);
        let raw = RawPacket::parse(&bytes).unwrap();
        assert_eq!(
            verify_message_authenticator(&raw, &ra, b"secret"),
            Some(true)
        );
        assert_eq!(
            verify_message_authenticator(&raw, &ra, b"other"),
            Some(false)
        );
        bytes[off] ^= 1;
        let raw = RawPacket::parse(&bytes).unwrap();
        assert_eq!(
            verify_message_authenticator(&raw, &ra, b"secret"),
            Some(false)
        );
    }
}
