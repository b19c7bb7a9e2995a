//! The stale-session reaper: a session nothing has been heard of for `multiplier` interim
//! intervals plus a grace period is closed, through the writer, with its last update as the
//! stop time and the terminate cause `Stale-Session`.

use std::sync::Arc;
use std::time::Duration;

use edge_shared::accounting::{unix_now, AccountingSink, AcctEvent};
use edge_shared::sessions::ActiveSessions;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct ReaperConfig {
    /// How often to look.
    pub every: Duration,
    /// Interim interval assumed for sessions that did not say theirs.
    pub default_interval: Duration,
    pub multiplier: u32,
    pub grace: Duration,
}

pub fn spawn_reaper(
    active: Arc<ActiveSessions>,
    writer: Arc<dyn AccountingSink>,
    cfg: ReaperConfig,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(cfg.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            let stale = active.stale(
                unix_now(),
                cfg.default_interval.as_secs() as i64,
                i64::from(cfg.multiplier),
                cfg.grace.as_secs() as i64,
            );
            for (unique_id, last_seen) in stale {
                let event = AcctEvent::Reap {
                    unique_id,
                    last_seen,
                };
                // Nobody waits for the answer; a full queue means the next sweep tries again.
                // The fold counts what it actually closed (edge_accounting_reaped_total).
                let _ = writer.submit(event, Box::new(|_| {}));
            }
        }
    })
}
