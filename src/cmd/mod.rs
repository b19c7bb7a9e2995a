pub mod acs;
pub mod admin;
pub mod import;
pub mod pools;
pub mod serve;
pub mod sessions;
pub mod tokens;
pub mod wireguard;
