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
    // Held here for the refresher's life, so that `recv` waits (rather than returning `None`
    // at once) when no listener owns a sender, as on SQLite.
    let keep_open = wake_tx.clone();
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
        let _keep_open = keep_open;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = wake_rx.recv() => {}
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
