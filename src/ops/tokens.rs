//! API bearer tokens: made here (for the CLI and the API alike), checked by the API.

use base64::Engine;
use edge_shared::accounting::unix_now;
use edge_shared::store::{ApiToken, Store};
use sha2::{Digest, Sha256};

use super::{invalid, OpError};

/// Tokens start with this, so they are told from JWTs at a glance (and by secret scanners).
pub const TOKEN_PREFIX: &str = "edge_";

/// A new token: 32 random bytes, base64url, with our prefix.
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// What is stored for a token. Tokens carry 256 random bits, so a fast hash is enough
/// (a slow one protects guessable passwords, not random keys).
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Creates a token named `name`; returns it with the token itself (the only time it exists
/// outside the caller's hands: only its hash is stored).
pub async fn create(store: &Store, name: &str, scope: &str) -> Result<(ApiToken, String), OpError> {
    if name.is_empty() || name.len() > 64 {
        return Err(invalid("name", "1 to 64 characters"));
    }
    if scope != "read" && scope != "write" {
        return Err(invalid("scope", "read or write"));
    }
    let token = new_token();
    let t = store
        .token_create(name, scope, &hash_token(&token), unix_now())
        .await?;
    Ok((t, token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashed() {
        let a = new_token();
        assert!(a.starts_with("edge_") && a.len() > 40);
        assert_ne!(a, new_token());
        assert_eq!(hash_token(&a).len(), 64);
        assert_ne!(hash_token(&a), a);
    }
}
