//! edge-radius: the RADIUS codec and dictionaries (no I/O), authentication methods, and
//! (feature `server`) the UDP server with its reply cache and rate limits.

pub mod auth;
pub mod coa;
pub mod codec;
pub mod dict;
#[cfg(feature = "server")]
pub mod server;
