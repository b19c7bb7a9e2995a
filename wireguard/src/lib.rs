//! edge-wireguard: the WireGuard interface NAS routers reach the edge through.
//!
//! The database says which NAS have a tunnel (their public key and tunnel address); this
//! crate makes the interface say the same: it brings the interface up (the kernel module
//! where it exists, a userspace implementation through its UAPI socket otherwise), gives it
//! the edge's address in the management prefix, and reconciles its peers with the NAS table
//! whenever that changes. It also reads peer status (last handshake, transfer counters) and
//! writes the configuration a NAS pastes in (RouterOS commands, a wg-quick file).

mod export;
mod interface;
mod keys;
mod link;
mod reconcile;
mod run;
mod status;
pub mod uapi;

pub use export::{routeros, wg_quick, NasConfig};
pub use interface::{BackendChoice, Interface, Settings};
pub use keys::{generate_pair, parse_public_key, PrivateKey};
pub use reconcile::{diff, PeerDiff};
pub use run::{start, Running};
pub use status::{read_status, PeerMetrics, PeerStatus};
pub use wireguard_control::PeerInfo;

/// What went wrong with the interface or a key.
#[derive(Debug, thiserror::Error)]
pub enum WgError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Key(String),
    #[error("{0}")]
    Config(String),
}

impl WgError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> WgError {
        let what = what.into();
        move |source| WgError::Io { what, source }
    }
}
