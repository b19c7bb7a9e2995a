//! Keeps the open sessions in memory in step with what other instances sharing the database
//! write: a session one instance opened and another closed (its Stop went elsewhere, or an
//! Accounting-On arrived at another instance) leaves this one's memory too, and sessions
//! opened elsewhere join it, so Simultaneous-Use and the reaper see the whole fleet's
//! sessions within `every`.
//!
//! It reads by event time (start and stop times) from a watermark less a `margin` that
//! covers Acct-Delay-Time and the fold's lag; a session whose start or stop the NAS reports
//! as older than that is caught only by the reaper. It runs only while another live
//! instance shares the database; alone, this process wrote everything it knows.

use std::sync::Arc;
use std::time::Duration;

use edge_shared::accounting::unix_now;
use edge_shared::metric_names as m;
use edge_shared::sessions::ActiveSessions;
use edge_shared::store::Store;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct SyncConfig {
    pub every: Duration,
    /// How far behind the last look each look reads again.
    pub margin: Duration,
    /// This process's incarnation (its writer id), as the IPAM registers it.
    pub incarnation: i64,
    /// An instance silent this long does not count as live.
    pub dead_after: Duration,
}

pub fn spawn_sync(
    store: Store,
    active: Arc<ActiveSessions>,
    cfg: SyncConfig,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(cfg.every.max(Duration::from_millis(100)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut watermark = unix_now();
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            let now = unix_now();
            let alive_since = now - cfg.dead_after.as_secs() as i64;
            match store.instances_others(cfg.incarnation, alive_since).await {
                Ok(0) => {
                    watermark = now;
                    continue;
                }
                Ok(_) => {}
                Err(_) => continue,
            }
            let since = watermark - cfg.margin.as_secs() as i64;
            match store.sessions_changed_since(since).await {
                Ok((opened, closed)) => {
                    for s in opened {
                        if active.get(&s.unique_id).is_none() {
                            active.upsert(s);
                        }
                    }
                    for id in &closed {
                        active.remove(id);
                    }
                    metrics::gauge!(m::ACCT_ACTIVE_SESSIONS).set(active.len() as f64);
                    watermark = now;
                }
                Err(e) => tracing::debug!(error = %e, "session sync waits for the database"),
            }
        }
    })
}
