//! PostgreSQL connections parked between the REST API's hot reads.
//!
//! sqlx tests every connection given back to its pool with a round trip (a Sync message and
//! its ReadyForQuery), which wakes the PostgreSQL backend a second time for each statement and
//! the server's runtime a second time for each request. A connection whose statement ran to
//! completion is known to be good, so it is parked here instead, and the next hot read takes
//! it without the test. A connection dropped before that (a cancelled request, an error) goes
//! back through sqlx, test and all, and so does a parked one left idle long enough to have
//! missed a database restart. At most half of the pool is parked, so the other statements
//! always have the rest of it.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnection, PgPool};
use sqlx::Postgres;

use super::{connection_loss, IDLE_CHECK};

/// A parked connection and when it was parked.
type Idle = (PoolConnection<Postgres>, Instant);

/// The parked connections of one pool, newest last.
#[derive(Debug, Clone)]
pub struct Parked {
    conns: Arc<Mutex<Vec<Idle>>>,
    max: usize,
}

/// A connection taken for one hot read: [`Hot::park`] it once the statement has run to
/// completion; dropped instead, it goes back to sqlx's pool (which tests it).
pub(super) struct Hot<'a> {
    conn: PoolConnection<Postgres>,
    home: &'a Parked,
}

impl Parked {
    /// Parks at most half of a pool of `connections` (none of a pool of one, whose only
    /// connection the other statements need).
    pub(super) fn new(connections: u32) -> Parked {
        Parked {
            conns: Arc::default(),
            max: connections as usize / 2,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Idle>> {
        lock(&self.conns)
    }

    /// The most recently parked connection, or one from `pool`. Parked connections idle
    /// longer than [`IDLE_CHECK`], or parked before a lost connection was seen, are given
    /// back to the pool on the way (tested there).
    pub(super) async fn take(&self, pool: &PgPool) -> Result<Hot<'_>, sqlx::Error> {
        let usable =
            |idle: std::time::Duration| idle < IDLE_CHECK && !connection_loss::predates_loss(idle);
        let mut stale = Vec::new();
        let fresh = {
            let mut conns = self.lock();
            loop {
                match conns.pop() {
                    Some((conn, at)) if usable(at.elapsed()) => break Some(conn),
                    Some((conn, _)) => stale.push(conn),
                    None => break None,
                }
            }
        };
        drop(stale);
        let conn = match fresh {
            Some(conn) => conn,
            None => pool.acquire().await?,
        };
        Ok(Hot { conn, home: self })
    }

    /// Gives parked connections back to the pool once they have been idle for
    /// [`IDLE_CHECK`], looking every [`IDLE_CHECK`]; so between bursts of reads they are the
    /// pool's again, under its idle timeout, instead of held here until the next read. Runs
    /// on the caller's runtime and ends with the last clone of this `Parked`.
    pub(super) fn reap_idle(&self) {
        let conns = Arc::downgrade(&self.conns);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(IDLE_CHECK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(conns) = conns.upgrade() else { break };
                let stale: Vec<Idle> = {
                    let mut conns = lock(&conns);
                    // Newest last: the stale ones come first.
                    let n = conns
                        .iter()
                        .take_while(|(_, at)| at.elapsed() >= IDLE_CHECK)
                        .count();
                    conns.drain(..n).collect()
                };
                drop(stale);
            }
        });
    }

    /// Gives every parked connection back to the pool (before the pool is closed, which
    /// waits for all of its connections).
    pub(super) fn release_all(&self) {
        let conns = std::mem::take(&mut *self.lock());
        drop(conns);
    }
}

/// The lock of a parking lot; a panic while it was held left the list whole.
fn lock(conns: &Mutex<Vec<Idle>>) -> MutexGuard<'_, Vec<Idle>> {
    conns.lock().unwrap_or_else(|e| e.into_inner())
}

impl Hot<'_> {
    pub(super) fn conn(&mut self) -> &mut PgConnection {
        &mut self.conn
    }

    /// Parks the connection for the next hot read: its statement ran to completion.
    pub(super) fn park(self) {
        let Hot { conn, home } = self;
        let mut conns = home.lock();
        if conns.len() < home.max {
            conns.push((conn, Instant::now()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Parked;

    #[test]
    fn at_most_half_of_the_pool_is_parked_and_none_of_a_pool_of_one() {
        assert_eq!(Parked::new(1).max, 0);
        assert_eq!(Parked::new(4).max, 2);
        assert_eq!(Parked::new(16).max, 8);
    }
}
