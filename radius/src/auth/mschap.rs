//! MS-CHAPv2 (RFC 2759) and its MPPE keys (RFC 3079), as carried in RADIUS by the
//! Microsoft vendor attributes of RFC 2548.

use des::cipher::{BlockEncrypt, KeyInit};
use des::Des;
use md4::Md4;
use sha1::{Digest, Sha1};

/// Microsoft's vendor id and the attribute types of RFC 2548 used here.
pub const VENDOR_MICROSOFT: u32 = 311;
pub const MS_CHAP_ERROR: u32 = 2;
pub const MS_CHAP_CHALLENGE: u32 = 11;
pub const MS_MPPE_ENCRYPTION_POLICY: u32 = 7;
pub const MS_MPPE_ENCRYPTION_TYPES: u32 = 8;
pub const MS_MPPE_SEND_KEY: u32 = 16;
pub const MS_MPPE_RECV_KEY: u32 = 17;
pub const MS_CHAP2_RESPONSE: u32 = 25;
pub const MS_CHAP2_SUCCESS: u32 = 26;

/// The fields of an MS-CHAP2-Response attribute (RFC 2548 section 2.3.2).
#[derive(Debug, Clone, Copy)]
pub struct Response<'a> {
    pub ident: u8,
    pub peer_challenge: &'a [u8; 16],
    pub nt_response: &'a [u8; 24],
}

impl<'a> Response<'a> {
    /// Ident(1) Flags(1) Peer-Challenge(16) Reserved(8) Response(24).
    pub fn parse(v: &'a [u8]) -> Option<Self> {
        if v.len() != 50 {
            return None;
        }
        Some(Response {
            ident: v[0],
            peer_challenge: v[2..18].try_into().ok()?,
            nt_response: v[26..50].try_into().ok()?,
        })
    }
}

/// What a successful verification gives the reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Success {
    /// "S=" and 40 hex digits, for MS-CHAP2-Success after the ident octet.
    pub authenticator_response: String,
    pub send_key: [u8; 16],
    pub recv_key: [u8; 16],
}

/// NtPasswordHash: MD4 of the UTF-16LE password.
pub fn nt_password_hash(password: &str) -> [u8; 16] {
    let utf16: Vec<u8> = password.encode_utf16().flat_map(u16::to_le_bytes).collect();
    Md4::digest(&utf16).into()
}

fn challenge_hash(peer: &[u8; 16], auth: &[u8; 16], user: &[u8]) -> [u8; 8] {
    // RFC 2759 section 8.2: the user name is stripped of any domain prefix.
    let user = match user.iter().rposition(|&c| c == b'\\') {
        Some(i) => &user[i + 1..],
        None => user,
    };
    let d = Sha1::new()
        .chain_update(peer)
        .chain_update(auth)
        .chain_update(user)
        .finalize();
    d[..8].try_into().expect("SHA-1 gives 20 octets")
}

fn des_key(k7: &[u8]) -> [u8; 8] {
    let mut k = [0u8; 8];
    k[0] = k7[0];
    k[1] = (k7[0] << 7) | (k7[1] >> 1);
    k[2] = (k7[1] << 6) | (k7[2] >> 2);
    k[3] = (k7[2] << 5) | (k7[3] >> 3);
    k[4] = (k7[3] << 4) | (k7[4] >> 4);
    k[5] = (k7[4] << 3) | (k7[5] >> 5);
    k[6] = (k7[5] << 2) | (k7[6] >> 6);
    k[7] = k7[6] << 1;
    k
}

fn challenge_response(challenge: &[u8; 8], hash: &[u8; 16]) -> [u8; 24] {
    let mut z = [0u8; 21];
    z[..16].copy_from_slice(hash);
    let mut out = [0u8; 24];
    for i in 0..3 {
        let cipher = Des::new(&des_key(&z[i * 7..i * 7 + 7]).into());
        let mut block = (*challenge).into();
        cipher.encrypt_block(&mut block);
        out[i * 8..i * 8 + 8].copy_from_slice(&block);
    }
    out
}

/// GenerateNTResponse of RFC 2759 section 8.1.
pub fn nt_response(
    auth_challenge: &[u8; 16],
    peer_challenge: &[u8; 16],
    user: &[u8],
    password_hash: &[u8; 16],
) -> [u8; 24] {
    challenge_response(
        &challenge_hash(peer_challenge, auth_challenge, user),
        password_hash,
    )
}

const MAGIC1: &[u8] = b"Magic server to client signing constant";
const MAGIC2: &[u8] = b"Pad to make it do more than one iteration";

fn authenticator_response(
    password_hash: &[u8; 16],
    nt_response: &[u8; 24],
    peer: &[u8; 16],
    auth: &[u8; 16],
    user: &[u8],
) -> String {
    let hash_hash: [u8; 16] = Md4::digest(password_hash).into();
    let d = Sha1::new()
        .chain_update(hash_hash)
        .chain_update(nt_response)
        .chain_update(MAGIC1)
        .finalize();
    let c = challenge_hash(peer, auth, user);
    let d = Sha1::new()
        .chain_update(d)
        .chain_update(c)
        .chain_update(MAGIC2)
        .finalize();
    format!("S={}", hex::encode_upper(d))
}

const MPPE_MAGIC1: &[u8] = b"This is the MPPE Master Key";
const MPPE_MAGIC2: &[u8] =
    b"On the client side, this is the send key; on the server side, it is the receive key.";
const MPPE_MAGIC3: &[u8] =
    b"On the client side, this is the receive key; on the server side, it is the send key.";

/// RFC 3079 section 3.4: GetMasterKey.
pub fn master_key(password_hash_hash: &[u8; 16], nt_response: &[u8; 24]) -> [u8; 16] {
    let d = Sha1::new()
        .chain_update(password_hash_hash)
        .chain_update(nt_response)
        .chain_update(MPPE_MAGIC1)
        .finalize();
    d[..16].try_into().expect("SHA-1 gives 20 octets")
}

/// RFC 3079 section 3.4: GetAsymmetricStartKey for a 128-bit session key.
pub fn asymmetric_start_key(master: &[u8; 16], is_send: bool, is_server: bool) -> [u8; 16] {
    let s = if is_send == is_server {
        MPPE_MAGIC3
    } else {
        MPPE_MAGIC2
    };
    let d = Sha1::new()
        .chain_update(master)
        .chain_update([0u8; 40])
        .chain_update(s)
        .chain_update([0xf2u8; 40])
        .finalize();
    d[..16].try_into().expect("SHA-1 gives 20 octets")
}

/// Verifies an MS-CHAP2-Response against the NT hash of the password and, on success,
/// derives the authenticator response and the server's MPPE send and receive keys.
pub fn verify(
    auth_challenge: &[u8; 16],
    response: &Response<'_>,
    user: &[u8],
    password_hash: &[u8; 16],
) -> Option<Success> {
    let expected = nt_response(auth_challenge, response.peer_challenge, user, password_hash);
    if !crate::codec::constant_time_eq(&expected, response.nt_response) {
        return None;
    }
    let hash_hash: [u8; 16] = Md4::digest(password_hash).into();
    let master = master_key(&hash_hash, response.nt_response);
    Some(Success {
        authenticator_response: authenticator_response(
            password_hash,
            response.nt_response,
            response.peer_challenge,
            auth_challenge,
            user,
        ),
        send_key: asymmetric_start_key(&master, true, true),
        recv_key: asymmetric_start_key(&master, false, true),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h<const N: usize>(s: &str) -> [u8; N] {
        hex::decode(s.replace(' ', "")).unwrap().try_into().unwrap()
    }

    /// RFC 2759 section 9.2.
    #[test]
    fn rfc2759_vectors() {
        let auth: [u8; 16] = h("5B5D7C7D7B3F2F3E3C2C602132262628");
        let peer: [u8; 16] = h("21402324255E262A28295F2B3A337C7E");
        let hash = nt_password_hash("clientPass");
        assert_eq!(hash, h::<16>("44EBBA8D5312B8D611474411F56989AE"));
        assert_eq!(
            challenge_hash(&peer, &auth, b"User"),
            h::<8>("D02E4386BCE91226")
        );
        let nt = nt_response(&auth, &peer, b"User", &hash);
        assert_eq!(
            nt,
            h::<24>("82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF")
        );
        let mut v = vec![1u8, 0];
        v.extend_from_slice(&peer);
        v.extend_from_slice(&[0; 8]);
        v.extend_from_slice(&nt);
        let resp = Response::parse(&v).unwrap();
        let ok = verify(&auth, &resp, b"User", &hash).unwrap();
        assert_eq!(
            ok.authenticator_response,
            "S=407A5589115FD0D6209F510FE9C04566932CDA56"
        );
        assert!(verify(&auth, &resp, b"User", &nt_password_hash("wrong")).is_none());
        // A domain prefix does not enter the challenge hash.
        assert!(verify(&auth, &resp, b"CORP\\User", &hash).is_some());
    }

    /// RFC 3079 section 3.5.3: 128-bit keys from the RFC 2759 exchange.
    #[test]
    fn rfc3079_vectors() {
        let hash_hash: [u8; 16] = h("41C00C584BD2D91C4017A2A12FA59F3F");
        let nt: [u8; 24] = h("82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF");
        let master = master_key(&hash_hash, &nt);
        assert_eq!(master, h::<16>("FDECE3717A8C838CB388E527AE3CDD31"));
        assert_eq!(
            asymmetric_start_key(&master, true, true),
            h::<16>("8B7CDC149B993A1BA118CB153F56DCCB")
        );
    }
}
