//! edge-acs: the TR-069 (CWMP) auto-configuration server.
//!
//! `codec`, `session`, `task` and `preset` are pure (bytes in, values out; the time passed
//! in); the `server` feature adds the HTTP service on TCP 7547 and what it needs around it.

pub mod codec;
pub mod forwarded;
pub mod preset;
#[cfg(feature = "server")]
pub mod server;
pub mod session;
pub mod task;
