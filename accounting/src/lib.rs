//! edge-accounting: the session lifecycle behind UDP 1813.
//!
//! - [`Writer`]: the group-commit writer. Verified Accounting-Requests arrive as events; it
//!   gathers what arrived within a bounded count and time, folds reports of the same session
//!   together in arrival order, applies the batch in one transaction, and only after the
//!   commit releases the Accounting-Responses. When the database refuses, nothing is answered
//!   (the NAS retransmits) and the failure is counted.
//! - [`spawn_reaper`]: closes sessions that have gone silent, through the writer.
//! - The open sessions in memory ([`edge_shared::sessions::ActiveSessions`]) are rebuilt at
//!   start ([`load_active`]) and kept in step by the writer after each commit.

mod reaper;
mod writer;

pub use reaper::{spawn_reaper, ReaperConfig};
pub use writer::{load_active, Writer, WriterConfig};
