//! Who is calling: a bearer token made by `dotmac-edge tokens create` (only its SHA-256 is
//! stored) or a JWT signed by the control plane (HS256 or RS256; issuer, audience and `exp`
//! checked; `scope` claim).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use edge_shared::store::Store;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::config::Api as ApiConfig;
use crate::ops::tokens::{hash_token, TOKEN_PREFIX};

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    /// `token:NAME` or `jwt:SUBJECT`; what the audit log records.
    pub actor: String,
    pub write: bool,
}

/// Why a caller was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    Missing,
    Invalid,
    Expired,
    /// The database could not be asked about a token.
    Unavailable,
}

impl AuthFailure {
    pub fn label(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing",
            AuthFailure::Invalid => "invalid",
            AuthFailure::Expired => "expired",
            AuthFailure::Unavailable => "unavailable",
        }
    }
}

#[derive(serde::Deserialize)]
struct Claims {
    sub: String,
    /// `read` or `write`, or a space-separated list holding one of them.
    #[serde(default)]
    scope: String,
}

/// How long a token, once found in the database, is trusted without asking again. A token
/// revoked through the API is forgotten at once; one revoked with the CLI (another process)
/// stops working within this time.
const TOKEN_CACHE_TTL: Duration = Duration::from_secs(10);
/// Bound on remembered tokens; when full, the cache starts over.
const TOKEN_CACHE_MAX: usize = 4096;

/// Checks credentials.
pub struct Verifier {
    jwt: Vec<(DecodingKey, Validation)>,
    /// Token hash -> (caller, when looked up): one database query per token per TTL rather
    /// than per request.
    tokens: Mutex<HashMap<String, (Principal, Instant)>>,
}

impl Verifier {
    pub fn from_config(cfg: &ApiConfig) -> anyhow::Result<Verifier> {
        let mut jwt = Vec::new();
        let validation = |alg| {
            let mut v = Validation::new(alg);
            v.set_issuer(&[&cfg.jwt_issuer]);
            v.set_audience(&[&cfg.jwt_audience]);
            v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
            v.leeway = 30;
            v
        };
        if !cfg.jwt_hs256_secret.0.is_empty() {
            jwt.push((
                DecodingKey::from_secret(cfg.jwt_hs256_secret.0.as_bytes()),
                validation(Algorithm::HS256),
            ));
        }
        if !cfg.jwt_rs256_public_key_file.is_empty() {
            let pem = std::fs::read(&cfg.jwt_rs256_public_key_file).map_err(|e| {
                anyhow::anyhow!(
                    "api.jwt_rs256_public_key_file {}: {e}",
                    cfg.jwt_rs256_public_key_file
                )
            })?;
            let key = DecodingKey::from_rsa_pem(&pem)
                .map_err(|e| anyhow::anyhow!("api.jwt_rs256_public_key_file: {e}"))?;
            jwt.push((key, validation(Algorithm::RS256)));
        }
        Ok(Verifier {
            jwt,
            tokens: Mutex::new(HashMap::new()),
        })
    }

    /// The caller named by an `Authorization` header value.
    pub async fn check(
        &self,
        store: &Store,
        authorization: Option<&str>,
    ) -> Result<Principal, AuthFailure> {
        let header = authorization.ok_or(AuthFailure::Missing)?;
        let (scheme, credential) = header.split_once(' ').ok_or(AuthFailure::Invalid)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthFailure::Invalid);
        }
        let credential = credential.trim();
        if credential.starts_with(TOKEN_PREFIX) {
            let hash = hash_token(credential);
            if let Some(p) = self.cached(&hash) {
                return Ok(p);
            }
            let t = store
                .token_by_hash(&hash)
                .await
                .map_err(|_| AuthFailure::Unavailable)?
                .ok_or(AuthFailure::Invalid)?;
            let p = Principal {
                actor: format!("token:{}", t.name),
                write: t.scope == "write",
            };
            let mut cache = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
            if cache.len() >= TOKEN_CACHE_MAX {
                cache.clear();
            }
            cache.insert(hash, (p.clone(), Instant::now()));
            return Ok(p);
        }
        self.check_jwt(credential)
    }

    fn cached(&self, hash: &str) -> Option<Principal> {
        let cache = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .get(hash)
            .filter(|(_, at)| at.elapsed() < TOKEN_CACHE_TTL)
            .map(|(p, _)| p.clone())
    }

    /// Forgets the token named `name` (revoked through the API).
    pub fn forget(&self, name: &str) {
        let actor = format!("token:{name}");
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, (p, _)| p.actor != actor);
    }

    fn check_jwt(&self, jwt: &str) -> Result<Principal, AuthFailure> {
        let header = jsonwebtoken::decode_header(jwt).map_err(|_| AuthFailure::Invalid)?;
        let mut failure = AuthFailure::Invalid;
        for (key, validation) in &self.jwt {
            if validation.algorithms[0] != header.alg {
                continue;
            }
            match jsonwebtoken::decode::<Claims>(jwt, key, validation) {
                Ok(data) => {
                    let scopes: Vec<&str> = data.claims.scope.split_whitespace().collect();
                    let write = scopes.contains(&"write");
                    if !write && !scopes.contains(&"read") {
                        return Err(AuthFailure::Invalid);
                    }
                    return Ok(Principal {
                        actor: format!("jwt:{}", data.claims.sub),
                        write,
                    });
                }
                Err(e) if *e.kind() == jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    failure = AuthFailure::Expired;
                }
                Err(_) => {}
            }
        }
        Err(failure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};

    fn cfg() -> ApiConfig {
        ApiConfig {
            jwt_hs256_secret: crate::config::Secret("k".repeat(32)),
            jwt_issuer: "control-plane".into(),
            jwt_audience: "edge".into(),
            ..ApiConfig::default()
        }
    }

    fn jwt(claims: serde_json::Value, key: &str) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(key.as_bytes()),
        )
        .unwrap()
    }

    fn now() -> i64 {
        edge_shared::accounting::unix_now()
    }

    /// RS256 with a key pair made for this test only (`testdata/`, never used elsewhere).
    #[test]
    fn rs256_jwts_verify_with_the_public_key() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api/testdata");
        let cfg = ApiConfig {
            jwt_rs256_public_key_file: dir.join("rs256-test-public.pem").display().to_string(),
            jwt_issuer: "control-plane".into(),
            jwt_audience: "edge".into(),
            ..ApiConfig::default()
        };
        let v = Verifier::from_config(&cfg).unwrap();
        let private = std::fs::read(dir.join("rs256-test-private.pem")).unwrap();
        let claims = serde_json::json!({"sub": "cp", "iss": "control-plane", "aud": "edge",
            "exp": now() + 60, "scope": "write"});
        let signed = encode(
            &Header::new(Algorithm::RS256),
            &claims,
            &EncodingKey::from_rsa_pem(&private).unwrap(),
        )
        .unwrap();
        assert!(v.check_jwt(&signed).unwrap().write);
        // An HS256 token is refused where only RS256 is configured (no algorithm confusion).
        let hs = jwt(claims, "anything-at-all-32-characters-long");
        assert_eq!(v.check_jwt(&hs).unwrap_err(), AuthFailure::Invalid);
    }

    #[test]
    fn jwt_claims_are_checked() {
        let v = Verifier::from_config(&cfg()).unwrap();
        let good = serde_json::json!({"sub": "ops", "iss": "control-plane", "aud": "edge",
            "exp": now() + 60, "scope": "read write"});
        let p = v.check_jwt(&jwt(good.clone(), &"k".repeat(32))).unwrap();
        assert_eq!(p.actor, "jwt:ops");
        assert!(p.write);
        let mut read = good.clone();
        read["scope"] = "read".into();
        assert!(!v.check_jwt(&jwt(read, &"k".repeat(32))).unwrap().write);
        let mut expired = good.clone();
        expired["exp"] = (now() - 3600).into();
        assert_eq!(
            v.check_jwt(&jwt(expired, &"k".repeat(32))).unwrap_err(),
            AuthFailure::Expired
        );
        let mut wrong_aud = good.clone();
        wrong_aud["aud"] = "other".into();
        assert!(v.check_jwt(&jwt(wrong_aud, &"k".repeat(32))).is_err());
        let mut wrong_iss = good.clone();
        wrong_iss["iss"] = "someone".into();
        assert!(v.check_jwt(&jwt(wrong_iss, &"k".repeat(32))).is_err());
        assert!(v.check_jwt(&jwt(good.clone(), &"x".repeat(32))).is_err());
        let mut no_scope = good;
        no_scope["scope"] = "".into();
        assert!(v.check_jwt(&jwt(no_scope, &"k".repeat(32))).is_err());
        assert!(v.check_jwt("not.a.jwt").is_err());
    }
}
