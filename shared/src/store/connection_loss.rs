//! Lost connections. A database restart, a failover or an operator ending backends closes
//! every connection the process holds at once, and each pooled connection finds out only when
//! its next statement fails. The first such failure is noted here, so that pooled and parked
//! connections last used before it are tested before they are used again, and so that a read
//! that failed on one is worth one more try (the REST API does that for GET requests).
//!
//! The note is process-wide: the stores of one process talk to one database, and a restart
//! seen through one pool (the data plane's) has closed the other's (the API's) connections too.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// When the last loss was seen: microseconds since [`epoch`], plus one (0: none yet).
static LAST: AtomicU64 = AtomicU64::new(0);
/// Losses seen since the process started.
static COUNT: AtomicU64 = AtomicU64::new(0);

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_mark() -> u64 {
    u64::try_from(epoch().elapsed().as_micros())
        .unwrap_or(u64::MAX - 1)
        .saturating_add(1)
}

/// Whether `e` says the connection itself is gone, rather than the statement refused: an I/O
/// error, or PostgreSQL's SQLSTATE class 08 (connection exception) or 57P (the server shutting
/// down, crashed, or not yet accepting connections: 57P01 is what a terminated backend sends).
fn is_loss(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) => true,
        sqlx::Error::Database(d) => d
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
        _ => false,
    }
}

/// Notes `e` if it is a loss (every database error passes here on its way into a
/// `StoreError`).
pub(crate) fn note(e: &sqlx::Error) {
    if is_loss(e) {
        LAST.fetch_max(now_mark(), Ordering::Relaxed);
        COUNT.fetch_add(1, Ordering::Relaxed);
    }
}

/// How many losses this process has seen: a caller compares two readings to learn whether a
/// failure it saw came with one.
pub fn losses() -> u64 {
    COUNT.load(Ordering::Relaxed)
}

/// Whether a connection idle for `idle_for` was last used before the last loss (and so may
/// have been closed by it).
pub(crate) fn predates_loss(idle_for: Duration) -> bool {
    let last = LAST.load(Ordering::Relaxed);
    if last == 0 {
        return false;
    }
    let idle = u64::try_from(idle_for.as_micros()).unwrap_or(u64::MAX);
    now_mark().saturating_sub(idle) <= last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_and_connection_states_are_losses() {
        let io = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert!(is_loss(&io));
        assert!(!is_loss(&sqlx::Error::RowNotFound));
        assert!(!is_loss(&sqlx::Error::PoolTimedOut));
    }

    #[test]
    fn a_connection_used_after_the_loss_is_not_suspect() {
        let before = losses();
        note(&sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::UnexpectedEof,
        )));
        assert!(losses() > before);
        // Idle for an hour: last used long before the loss just noted.
        assert!(predates_loss(Duration::from_secs(3600)));
        std::thread::sleep(Duration::from_millis(5));
        // Used a millisecond ago, after the loss.
        assert!(!predates_loss(Duration::from_millis(1)));
        // A statement refused by the database is no loss.
        let counted = losses();
        note(&sqlx::Error::RowNotFound);
        assert_eq!(losses(), counted);
    }
}
