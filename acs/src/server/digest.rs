//! HTTP Digest authentication (RFC 7616 with MD5 and qop=auth, as TR-069 CPEs speak it):
//! the ACS's challenge and check, and the client side for connection requests.
//!
//! Nonces are stateless: the time they were made and an HMAC of it under a per-process key,
//! so any number of CPEs can be challenged without the ACS remembering them. A nonce is good
//! for `NONCE_SECONDS`.

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;

pub const REALM: &str = "dotmac-edge";
const NONCE_SECONDS: u64 = 300;

fn md5_hex(parts: &[&str]) -> String {
    let mut h = Md5::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update(b":");
        }
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

/// The parameters of a `Digest` Authorization or WWW-Authenticate header.
pub fn params(header: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = header.trim();
    while !rest.is_empty() && out.len() < 16 {
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq]
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(r) = rest.strip_prefix('"') {
            let end = r.find('"').unwrap_or(r.len());
            value = r[..end].to_string();
            rest = r.get(end + 1..).unwrap_or("");
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_string();
            rest = &rest[end..];
        }
        rest = rest.trim_start().trim_start_matches(',').trim_start();
        out.push((key, value));
    }
    out
}

fn get<'a>(p: &'a [(String, String)], key: &str) -> Option<&'a str> {
    p.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// The ACS's side: makes challenges and checks answers.
pub struct Verifier {
    key: [u8; 32],
}

/// A checked Authorization header's username.
#[derive(Debug, PartialEq, Eq)]
pub enum Check {
    Ok,
    /// No or malformed credentials.
    Missing,
    Invalid,
    /// A nonce this process made, but too old: challenge again with `stale=true`.
    Stale,
}

impl Verifier {
    pub fn new() -> Verifier {
        Verifier {
            key: rand::random(),
        }
    }

    fn nonce_at(&self, secs: u64) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length works");
        mac.update(&secs.to_be_bytes());
        let tag = mac.finalize().into_bytes();
        format!("{secs:x}-{}", hex::encode(&tag[..12]))
    }

    /// The WWW-Authenticate value for a 401.
    pub fn challenge(&self, now_secs: u64, stale: bool) -> String {
        format!(
            "Digest realm=\"{REALM}\", qop=\"auth\", algorithm=MD5, nonce=\"{}\"{}",
            self.nonce_at(now_secs),
            if stale { ", stale=true" } else { "" }
        )
    }

    /// The username an Authorization header claims (before its password is known).
    pub fn username(header: &str) -> Option<String> {
        let rest = header.strip_prefix("Digest ")?;
        get(&params(rest), "username").map(str::to_string)
    }

    /// Checks a `Digest` Authorization header for `method` against `password`.
    pub fn check(&self, header: &str, method: &str, password: &str, now_secs: u64) -> Check {
        let Some(rest) = header.strip_prefix("Digest ") else {
            return Check::Missing;
        };
        let p = params(rest);
        let (Some(user), Some(nonce), Some(uri), Some(response)) = (
            get(&p, "username"),
            get(&p, "nonce"),
            get(&p, "uri"),
            get(&p, "response"),
        ) else {
            return Check::Missing;
        };
        let realm = get(&p, "realm").unwrap_or(REALM);
        if realm != REALM {
            return Check::Invalid;
        }
        let Some(made) = nonce
            .split_once('-')
            .and_then(|(t, _)| u64::from_str_radix(t, 16).ok())
        else {
            return Check::Invalid;
        };
        if self.nonce_at(made) != nonce {
            return Check::Invalid;
        }
        let ha1 = md5_hex(&[user, realm, password]);
        let ha2 = md5_hex(&[method, uri]);
        let expected = match (get(&p, "qop"), get(&p, "nc"), get(&p, "cnonce")) {
            (Some(qop), Some(nc), Some(cnonce)) => md5_hex(&[&ha1, nonce, nc, cnonce, qop, &ha2]),
            _ => md5_hex(&[&ha1, nonce, &ha2]),
        };
        if !constant_eq(
            expected.as_bytes(),
            response.to_ascii_lowercase().as_bytes(),
        ) {
            return Check::Invalid;
        }
        if now_secs.saturating_sub(made) > NONCE_SECONDS || made > now_secs + 60 {
            return Check::Stale;
        }
        Check::Ok
    }
}

/// The WWW-Authenticate value offering Basic, sent beside the Digest challenge over TLS only.
pub fn basic_challenge() -> String {
    format!("Basic realm=\"{REALM}\", charset=\"UTF-8\"")
}

/// The username and password of a `Basic` Authorization header (RFC 7617).
pub fn basic(header: &str) -> Option<(String, String)> {
    use base64::Engine;
    let (scheme, rest) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

/// Checks Basic credentials against `password` in constant time.
pub fn check_basic(given: &str, password: &str) -> Check {
    if constant_eq(given.as_bytes(), password.as_bytes()) {
        Check::Ok
    } else {
        Check::Invalid
    }
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier::new()
    }
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The client's side: an Authorization header answering a `Digest` challenge.
pub fn answer(
    challenge: &str,
    method: &str,
    uri: &str,
    username: &str,
    password: &str,
    cnonce: &str,
) -> Option<String> {
    let rest = challenge.trim().strip_prefix("Digest ")?;
    let p = params(rest);
    let realm = get(&p, "realm").unwrap_or("");
    let nonce = get(&p, "nonce")?;
    let ha1 = md5_hex(&[username, realm, password]);
    let ha2 = md5_hex(&[method, uri]);
    let qop_auth = get(&p, "qop").is_some_and(|q| q.split(',').any(|q| q.trim() == "auth"));
    let mut h = format!(
        "Digest username=\"{username}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\""
    );
    if qop_auth {
        let nc = "00000001";
        let response = md5_hex(&[&ha1, nonce, nc, cnonce, "auth", &ha2]);
        h.push_str(&format!(
            ", qop=auth, nc={nc}, cnonce=\"{cnonce}\", response=\"{response}\""
        ));
    } else {
        let response = md5_hex(&[&ha1, nonce, &ha2]);
        h.push_str(&format!(", response=\"{response}\""));
    }
    if let Some(opaque) = get(&p, "opaque") {
        h.push_str(&format!(", opaque=\"{opaque}\""));
    }
    Some(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2617_example_response() {
        // RFC 2617 §3.5: Mufasa / "Circle Of Life".
        let ha1 = md5_hex(&["Mufasa", "testrealm@host.com", "Circle Of Life"]);
        let ha2 = md5_hex(&["GET", "/dir/index.html"]);
        let r = md5_hex(&[
            &ha1,
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            "00000001",
            "0a4f113b",
            "auth",
            &ha2,
        ]);
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn challenge_answer_check() {
        let v = Verifier::new();
        let ch = v.challenge(1_000, false);
        let auth = answer(&ch, "POST", "/", "cpe", "secret", "abc").unwrap();
        assert_eq!(Verifier::username(&auth).as_deref(), Some("cpe"));
        assert_eq!(v.check(&auth, "POST", "secret", 1_010), Check::Ok);
        assert_eq!(v.check(&auth, "POST", "wrong", 1_010), Check::Invalid);
        assert_eq!(v.check(&auth, "POST", "secret", 2_000), Check::Stale);
        // A nonce from another key (another process, or forged).
        let other = Verifier::new().challenge(1_000, false);
        let forged = answer(&other, "POST", "/", "cpe", "secret", "abc").unwrap();
        assert_eq!(v.check(&forged, "POST", "secret", 1_010), Check::Invalid);
        assert_eq!(
            v.check("Basic Y3BlOnNlY3JldA==", "POST", "secret", 1_010),
            Check::Missing
        );
        assert_eq!(
            v.check("Digest garbage", "POST", "secret", 1_010),
            Check::Missing
        );
    }
}
