//! Operations shared by the CLI and the REST API: each checks its input, writes through the
//! store, and returns what a user sees. The CLI prints it; the API wraps it in its envelope.

pub mod acs;
pub mod catalog;
pub mod dynauth;
pub mod pools;
pub mod tokens;
pub mod wireguard;

use edge_shared::store::StoreError;

/// Why an operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// Input that can never succeed as given; `field` names the offending input.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// The request is valid but the current state forbids it.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub fn invalid(field: &'static str, message: impl Into<String>) -> OpError {
    OpError::Invalid {
        field,
        message: message.into(),
    }
}
