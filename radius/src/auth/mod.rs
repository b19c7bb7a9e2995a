//! Authentication methods: pure functions over the request's values and the stored secret.

pub mod chap;
pub mod mschap;
pub mod password;

pub use password::StoredPassword;
