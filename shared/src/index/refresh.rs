//! Keeps the index fresh: PostgreSQL's LISTEN/NOTIFY wakes the refresher at once; a periodic
//! revision check (both backends) catches anything a lost notification or another process
//! writing to SQLite leaves behind.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::Index;
use crate::health::Health;
use crate::store::{Store, CHANGE_CHANNEL};

pub fn spawn_refresher(
    index: Arc<Index>,
    store: Store,
    health: Arc<Health>,
    interval: Duration,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    let (wake_tx, mut wake_rx) = tokio::sync::mpsc::channel::<()>(1);
    if let Some(pool) = store.pg_pool().cloned() {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            loop {
                let listener = async {
                    let mut l = sqlx::postgres::PgListener::connect_with(&pool).await?;
                    l.listen(CHANGE_CHANNEL).await?;
                    loop {
                        l.recv().await?;
                        let _ = wake_tx.try_send(());
                    }
                    #[allow(unreachable_code)]
                    Ok::<(), sqlx::Error>(())
                };
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    r = listener => {
                        if let Err(e) = r {
                            tracing::warn!(error = %e, "change listener lost; retrying");
                        }
                    }
                }
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        });
    }
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                // `None` (no listener, as on SQLite) fails the pattern and so leaves only
                // the timer to wait on; matching `_` here made that loop spin.
                Some(()) = wake_rx.recv() => {}
                _ = index.poked() => {}
                _ = tokio::time::sleep(interval) => {}
            }
            match index.refresh(&store).await {
                Ok(changed) => {
                    health.set_database_ok(true);
                    if changed {
                        tracing::debug!(revision = index.revision(), "index refreshed");
                    }
                }
                Err(e) => {
                    health.set_database_ok(false);
                    tracing::warn!(error = %e, "index refresh failed; serving from memory");
                }
            }
        }
    })
}
