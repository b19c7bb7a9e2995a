//! Keys: the edge's private key from a file (created on first start), NAS public keys as
//! operators paste them, and key pairs generated for a NAS.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use wireguard_control::{Key, KeyPair};

use crate::WgError;

/// The interface's private key. `Debug` leaves it out, so no log line can carry it.
#[derive(Clone)]
pub struct PrivateKey(Key);

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

impl PrivateKey {
    /// Reads a base64 key (as `wg genkey` writes it) from `path`; when the file does not exist,
    /// generates one and writes it readable by the owner only.
    pub fn load_or_create(path: &Path) -> Result<PrivateKey, WgError> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let key = Key::from_base64(text.trim()).map_err(|_| {
                    WgError::Key(format!(
                        "{} does not hold a WireGuard private key (32 bytes, base64)",
                        path.display()
                    ))
                })?;
                Ok(PrivateKey(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Key::generate_private();
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)
                        .map_err(WgError::io(format!("creating {}", dir.display())))?;
                }
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(WgError::io(format!("creating {}", path.display())))?;
                writeln!(f, "{}", key.to_base64())
                    .and_then(|()| f.sync_all())
                    .map_err(WgError::io(format!("writing {}", path.display())))?;
                tracing::info!(file = %path.display(), "generated the WireGuard private key");
                Ok(PrivateKey(key))
            }
            Err(e) => Err(WgError::Io {
                what: format!("reading {}", path.display()),
                source: e,
            }),
        }
    }

    pub fn public_key(&self) -> String {
        self.0.get_public().to_base64()
    }

    pub(crate) fn key(&self) -> &Key {
        &self.0
    }
}

/// A NAS's public key as an operator gives it: 32 bytes in base64. Returned normalised.
pub fn parse_public_key(text: &str) -> Result<String, WgError> {
    Key::from_base64(text.trim())
        .map(|k| k.to_base64())
        .map_err(|_| {
            WgError::Key("a WireGuard public key is 32 bytes in base64 (44 characters)".into())
        })
}

/// A fresh key pair for a NAS: (private, public), both base64.
pub fn generate_pair() -> (String, String) {
    let pair = KeyPair::generate();
    (pair.private.to_base64(), pair.public.to_base64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_keys_are_checked_and_normalised() {
        let (_, public) = generate_pair();
        assert_eq!(parse_public_key(&format!(" {public}\n")).unwrap(), public);
        assert!(parse_public_key("not a key").is_err());
        assert!(parse_public_key("AAAA").is_err());
    }

    #[test]
    fn a_missing_key_file_is_created_private_and_read_back() {
        let dir = std::env::temp_dir().join(format!("edge-wg-key-{}", std::process::id()));
        let path = dir.join("wg.key");
        let _ = std::fs::remove_file(&path);
        let first = PrivateKey::load_or_create(&path).unwrap();
        let again = PrivateKey::load_or_create(&path).unwrap();
        assert_eq!(first.public_key(), again.public_key());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!format!("{first:?}").contains(&first.0.to_base64()));
        std::fs::write(&path, "garbage").unwrap();
        assert!(PrivateKey::load_or_create(&path).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
