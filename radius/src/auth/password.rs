//! Stored subscriber passwords and PAP verification.
//!
//! A stored value is cleartext unless it says otherwise, the way FreeRADIUS's rlm_pap reads
//! "{header}" prefixes: `{cleartext}`, `{crypt}`, `{md5}`, `{smd5}`, `{sha}`, `{ssha}`,
//! `{ssha256}`, `{ssha512}`, `{nt}`/`{nthash}`. A bare crypt(3) string (`$1$`, `$5$`, `$6$`,
//! `$2a$`/`$2b$`/`$2y$`) or a PHC `$argon2id$` string is recognised without a header.

use base64::Engine;
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use crate::codec::constant_time_eq as ct_eq;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredPassword<'a> {
    Cleartext(&'a str),
    /// crypt(3): MD5-crypt, SHA-256/512-crypt, bcrypt, DES.
    Crypt(&'a str),
    Argon2(&'a str),
    /// Unsalted or salted digests: digest octets followed by salt octets.
    Digest {
        alg: DigestAlg,
        bytes: Vec<u8>,
    },
    NtHash([u8; 16]),
    /// A header we know but whose payload does not decode.
    Invalid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestAlg {
    Md5,
    Sha1,
    Sha256,
    Sha512,
}

impl DigestAlg {
    fn len(self) -> usize {
        match self {
            DigestAlg::Md5 => 16,
            DigestAlg::Sha1 => 20,
            DigestAlg::Sha256 => 32,
            DigestAlg::Sha512 => 64,
        }
    }

    fn hash(self, parts: &[&[u8]]) -> Vec<u8> {
        fn run<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
            let mut d = D::new();
            for p in parts {
                d.update(p);
            }
            d.finalize().to_vec()
        }
        match self {
            DigestAlg::Md5 => run::<Md5>(parts),
            DigestAlg::Sha1 => run::<Sha1>(parts),
            DigestAlg::Sha256 => run::<Sha256>(parts),
            DigestAlg::Sha512 => run::<Sha512>(parts),
        }
    }
}

impl<'a> StoredPassword<'a> {
    pub fn parse(stored: &'a str) -> Self {
        if let Some(rest) = stored.strip_prefix('{') {
            if let Some((header, payload)) = rest.split_once('}') {
                return Self::from_header(&header.to_ascii_lowercase(), payload);
            }
        }
        if stored.starts_with("$argon2") {
            return StoredPassword::Argon2(stored);
        }
        if ["$1$", "$5$", "$6$", "$2a$", "$2b$", "$2y$"]
            .iter()
            .any(|p| stored.starts_with(p))
        {
            return StoredPassword::Crypt(stored);
        }
        StoredPassword::Cleartext(stored)
    }

    fn from_header(header: &str, payload: &'a str) -> Self {
        let digest = |alg: DigestAlg, salted: bool| {
            let bytes = decode_b64_or_hex(payload);
            match bytes {
                Some(b) if (salted && b.len() > alg.len()) || (!salted && b.len() == alg.len()) => {
                    StoredPassword::Digest { alg, bytes: b }
                }
                _ => StoredPassword::Invalid,
            }
        };
        match header {
            "cleartext" | "cleartext-password" | "plain" => StoredPassword::Cleartext(payload),
            "crypt" | "crypt-password" => {
                if payload.starts_with("$argon2") {
                    StoredPassword::Argon2(payload)
                } else {
                    StoredPassword::Crypt(payload)
                }
            }
            "md5" => digest(DigestAlg::Md5, false),
            "smd5" => digest(DigestAlg::Md5, true),
            "sha" | "sha1" => digest(DigestAlg::Sha1, false),
            "ssha" | "ssha1" => digest(DigestAlg::Sha1, true),
            "sha256" | "sha2-256" => digest(DigestAlg::Sha256, false),
            "ssha256" | "ssha2-256" => digest(DigestAlg::Sha256, true),
            "sha512" | "sha2-512" => digest(DigestAlg::Sha512, false),
            "ssha512" | "ssha2-512" => digest(DigestAlg::Sha512, true),
            "nt" | "nthash" | "x-nthash" => match hex::decode(payload) {
                Ok(b) if b.len() == 16 => StoredPassword::NtHash(b.try_into().unwrap_or([0; 16])),
                _ => StoredPassword::Invalid,
            },
            _ => StoredPassword::Invalid,
        }
    }

    /// Hashes that cost milliseconds on purpose; the server runs them off the packet path.
    pub fn is_expensive(&self) -> bool {
        matches!(self, StoredPassword::Crypt(_) | StoredPassword::Argon2(_))
    }

    /// The cleartext, which CHAP needs.
    pub fn cleartext(&self) -> Option<&'a str> {
        match self {
            StoredPassword::Cleartext(c) => Some(c),
            _ => None,
        }
    }

    /// The NT hash, which MS-CHAP needs: from cleartext or stored as such.
    pub fn nt_hash(&self) -> Option<[u8; 16]> {
        match self {
            StoredPassword::Cleartext(c) => Some(super::mschap::nt_password_hash(c)),
            StoredPassword::NtHash(h) => Some(*h),
            _ => None,
        }
    }

    /// PAP: does the offered password match?
    pub fn verify(&self, offered: &[u8]) -> bool {
        match self {
            StoredPassword::Cleartext(c) => ct_eq(c.as_bytes(), offered),
            StoredPassword::Crypt(h) => match std::str::from_utf8(offered) {
                Ok(o) => pwhash::unix::verify(o, h),
                Err(_) => false,
            },
            StoredPassword::Argon2(h) => {
                use argon2::password_hash::{PasswordHash, PasswordVerifier};
                match PasswordHash::new(h) {
                    Ok(parsed) => argon2::Argon2::default()
                        .verify_password(offered, &parsed)
                        .is_ok(),
                    Err(_) => false,
                }
            }
            StoredPassword::Digest { alg, bytes } => {
                let (digest, salt) = bytes.split_at(alg.len());
                ct_eq(&alg.hash(&[offered, salt]), digest)
            }
            StoredPassword::NtHash(h) => match std::str::from_utf8(offered) {
                Ok(o) => ct_eq(&super::mschap::nt_password_hash(o), h),
                Err(_) => false,
            },
            StoredPassword::Invalid => false,
        }
    }
}

fn decode_b64_or_hex(s: &str) -> Option<Vec<u8>> {
    if s.len().is_multiple_of(2) && s.bytes().all(|c| c.is_ascii_hexdigit()) {
        if let Ok(b) = hex::decode(s) {
            return Some(b);
        }
    }
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleartext_and_headers() {
        assert!(StoredPassword::parse("secret").verify(b"secret"));
        assert!(!StoredPassword::parse("secret").verify(b"Secret"));
        assert!(StoredPassword::parse("{cleartext}$1$notcrypt").verify(b"$1$notcrypt"));
        let md5 = hex::encode(Md5::digest(b"pw"));
        assert!(StoredPassword::parse(&format!("{{md5}}{md5}")).verify(b"pw"));
        let mut ssha = Sha1::digest(b"pwSALT").to_vec();
        ssha.extend_from_slice(b"SALT");
        let enc = base64::engine::general_purpose::STANDARD.encode(&ssha);
        let s = format!("{{SSHA}}{enc}");
        assert!(StoredPassword::parse(&s).verify(b"pw"));
        assert!(!StoredPassword::parse(&s).verify(b"px"));
        let nt = hex::encode(super::super::mschap::nt_password_hash("pw"));
        let p = format!("{{NT}}{nt}");
        assert!(StoredPassword::parse(&p).verify(b"pw"));
        assert!(StoredPassword::parse(&p).nt_hash().is_some());
        assert_eq!(StoredPassword::parse("{md5}zz"), StoredPassword::Invalid);
        assert!(!StoredPassword::parse("{bogus}x").verify(b"x"));
    }

    #[test]
    fn crypt_formats() {
        let sha512 = pwhash::sha512_crypt::hash("pw").unwrap();
        #[allow(deprecated)]
        let md5 = pwhash::md5_crypt::hash("pw").unwrap();
        let bcrypt = pwhash::bcrypt::hash_with(
            pwhash::bcrypt::BcryptSetup {
                cost: Some(4),
                ..Default::default()
            },
            "pw",
        )
        .unwrap();
        for h in [sha512, md5, bcrypt] {
            let s = StoredPassword::parse(&h);
            assert!(s.is_expensive(), "{h}");
            assert!(s.verify(b"pw"), "{h}");
            assert!(!s.verify(b"px"), "{h}");
            assert!(StoredPassword::parse(&format!("{{crypt}}{h}")).verify(b"pw"));
        }
    }

    #[test]
    fn argon2id() {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let h = argon2::Argon2::default()
            .hash_password(b"pw", &salt)
            .unwrap()
            .to_string();
        let s = StoredPassword::parse(&h);
        assert!(matches!(s, StoredPassword::Argon2(_)));
        assert!(s.verify(b"pw"));
        assert!(!s.verify(b"px"));
    }
}
