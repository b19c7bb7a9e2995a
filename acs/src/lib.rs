//! edge-acs: the TR-069 (CWMP) auto-configuration server.
//!
//! `codec` and `session` are pure (bytes in, values out; the time passed in); the `server`
//! feature adds the HTTP service on TCP 7547 and what it needs around it.

pub mod codec;
