//! edge-ipam: address pools, the in-memory allocator, block claims shared through the
//! tenant database, and the accounting lifecycle of leases.

pub mod alloc;
mod manager;
pub mod space;
mod tracking;

pub use manager::{Ipam, IpamConfig, Upkeep};
pub use tracking::LeaseTracking;
