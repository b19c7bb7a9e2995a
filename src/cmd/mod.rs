pub mod admin;
pub mod import;
pub mod serve;
pub mod sessions;
pub mod pools;
