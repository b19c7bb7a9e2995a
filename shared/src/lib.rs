//! edge-shared: domain types, storage (PostgreSQL and SQLite), the in-memory index the data
//! plane serves from, metric names and health state.

pub mod accounting;
pub mod health;
pub mod index;
pub mod journal;
pub mod leases;
pub mod metric_names;
pub mod sessions;
pub mod store;
pub mod types;
