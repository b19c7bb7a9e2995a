//! edge-accounting: the session lifecycle behind UDP 1813.
//!
//! - [`Writer`]: the group-commit writer. Verified Accounting-Requests arrive as events; it
//!   gathers what arrived within a bounded count and time, stores the batch as one journal
//!   row, and only after that commit releases the Accounting-Responses. When the database
//!   refuses, nothing is answered (the NAS retransmits) and the failure is counted. A second
//!   stage folds stored batches into `sessions`, merging the reports of each session.
//! - [`spool::Spool`]: while the database is away, batches are appended to a local file
//!   and fsynced before they are answered, then replayed into the journal, in order, once it
//!   is back.
//! - [`recover`]: folds journal rows a crash or a vanished instance left behind.
//! - [`spawn_reaper`]: closes sessions that have gone silent, through the writer.
//! - [`spawn_sync`]: with other instances on the database, follows the sessions they open
//!   and close.
//! - The open sessions in memory ([`edge_shared::sessions::ActiveSessions`]) are rebuilt at
//!   start ([`load_active`]) and kept in step by the fold.

mod reaper;
pub mod spool;
mod sync;
mod writer;

pub use reaper::{spawn_reaper, ReaperConfig};
pub use sync::{spawn_sync, SyncConfig};
pub use writer::{load_active, recover, Writer, WriterConfig};
