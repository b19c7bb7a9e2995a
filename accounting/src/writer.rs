//! The group-commit writer.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use edge_shared::accounting::{AccountingSink, AcctEvent, Done, SessionRecord};
use edge_shared::health::Health;
use edge_shared::metric_names as m;
use edge_shared::sessions::ActiveSessions;
use edge_shared::store::{BatchOp, BatchOutcome, Store, StoreError};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Most records in one transaction.
    pub max_batch: usize,
    /// Longest a record waits for others to join its batch.
    pub max_wait: Duration,
    /// Records waiting for the writer; past it requests are shed (the NAS retransmits).
    pub queue: usize,
    /// Batches being committed at once (each on its own connection). Rows are locked in
    /// one order, so concurrent batches touching one session wait rather than deadlock.
    pub concurrency: usize,
}

struct Pending {
    event: AcctEvent,
    done: Done,
}

/// The handle the RADIUS listener submits to. Cloning shares the one writer.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Pending>,
}

impl AccountingSink for Writer {
    fn submit(&self, event: AcctEvent, done: Done) -> Result<(), Done> {
        self.tx.try_send(Pending { event, done }).map_err(|e| {
            metrics::counter!(m::ACCT_SHED_TOTAL).increment(1);
            match e {
                mpsc::error::TrySendError::Full(p) | mpsc::error::TrySendError::Closed(p) => p.done,
            }
        })
    }
}

impl Writer {
    /// Starts the writer task. It stops once every `Writer` handle is dropped and the queue
    /// is drained, committing what was queued: drop the handles to shut it down cleanly.
    pub fn spawn(
        store: Store,
        active: Arc<ActiveSessions>,
        health: Arc<Health>,
        cfg: WriterConfig,
    ) -> (Writer, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(cfg.queue.max(1));
        let task = tokio::spawn(run(store, active, health, cfg, rx));
        (Writer { tx }, task)
    }
}

/// A batch on its way to the database.
struct InFlight {
    number: u64,
    task: JoinHandle<Result<BatchOutcome, StoreError>>,
    dones: Vec<Done>,
    records: usize,
    started: Instant,
}

/// Sessions recently closed, remembered while a batch formed after the closing one may
/// still report them open: two batches in flight can reach the database in either order,
/// and the one that ran first reports the row as it was then. A closed session never
/// reopens, so the close wins.
#[derive(Default)]
struct RecentlyClosed {
    ids: std::collections::HashSet<String>,
    /// (last batch number in flight when these closed, their ids), oldest first.
    horizon: VecDeque<(u64, Vec<String>)>,
}

impl RecentlyClosed {
    fn record(&mut self, horizon: u64, ids: Vec<String>) {
        if !ids.is_empty() {
            self.ids.extend(ids.iter().cloned());
            self.horizon.push_back((horizon, ids));
        }
    }

    /// Brings the open sessions in memory in step with batch `number`'s outcome; batches
    /// up to `newest_in_flight` were formed before it finished.
    fn apply(
        &mut self,
        outcome: BatchOutcome,
        active: &ActiveSessions,
        number: u64,
        newest_in_flight: u64,
    ) {
        for s in outcome.open {
            if !self.ids.contains(&s.unique_id) {
                active.upsert(s);
            }
        }
        for id in &outcome.closed {
            active.remove(id);
        }
        self.settle(number);
        self.record(newest_in_flight, outcome.closed);
    }

    /// Forgets what no batch still in flight can contradict.
    fn settle(&mut self, finished: u64) {
        while self.horizon.front().is_some_and(|(h, _)| *h <= finished) {
            if let Some((_, ids)) = self.horizon.pop_front() {
                for id in ids {
                    self.ids.remove(&id);
                }
            }
        }
    }
}

async fn run(
    store: Store,
    active: Arc<ActiveSessions>,
    health: Arc<Health>,
    cfg: WriterConfig,
    mut rx: mpsc::Receiver<Pending>,
) {
    let mut inflight: VecDeque<InFlight> = VecDeque::new();
    let mut closed = RecentlyClosed::default();
    let mut next_number = 0u64;
    let mut open_channel = true;
    loop {
        if !open_channel && inflight.is_empty() {
            return;
        }
        tokio::select! {
            biased;
            // The oldest batch first: outcomes are applied in the order batches were formed.
            r = async { (&mut inflight.front_mut().expect("guarded").task).await }, if !inflight.is_empty() => {
                let batch = inflight.pop_front().expect("guarded");
                let newest = inflight.back().map_or(batch.number, |b| b.number);
                finish(batch, r, &active, &health, &mut closed, newest);
            }
            first = rx.recv(), if open_channel && inflight.len() < cfg.concurrency.max(1) => {
                let Some(first) = first else {
                    open_channel = false;
                    continue;
                };
                let batch = gather(first, &mut rx, &cfg).await;
                let records = batch.len();
                let mut dones = Vec::with_capacity(records);
                let ops = plan(batch.into_iter().map(|p| {
                    dones.push(p.done);
                    p.event
                }));
                let store = store.clone();
                next_number += 1;
                inflight.push_back(InFlight {
                    number: next_number,
                    task: tokio::spawn(async move { store.sessions_apply(ops).await }),
                    dones,
                    records,
                    started: Instant::now(),
                });
            }
        }
    }
}

/// The batch that starts with `first`: whatever else arrives within the count and time bounds.
async fn gather(
    first: Pending,
    rx: &mut mpsc::Receiver<Pending>,
    cfg: &WriterConfig,
) -> Vec<Pending> {
    let mut batch = Vec::with_capacity(cfg.max_batch.min(4096));
    batch.push(first);
    let deadline = tokio::time::Instant::now() + cfg.max_wait;
    while batch.len() < cfg.max_batch {
        match rx.try_recv() {
            Ok(p) => batch.push(p),
            Err(mpsc::error::TryRecvError::Empty) => {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(p)) => batch.push(p),
                    // Time is up, or every sender is gone: write what we have.
                    Ok(None) | Err(_) => break,
                }
            }
            Err(mpsc::error::TryRecvError::Disconnected) => break,
        }
    }
    batch
}

fn finish(
    batch: InFlight,
    result: Result<Result<BatchOutcome, StoreError>, tokio::task::JoinError>,
    active: &ActiveSessions,
    health: &Health,
    closed: &mut RecentlyClosed,
    newest_in_flight: u64,
) {
    metrics::histogram!(m::ACCT_BATCH_SIZE).record(batch.records as f64);
    metrics::histogram!(m::ACCT_COMMIT_SECONDS).record(batch.started.elapsed().as_secs_f64());
    let stored = match result {
        Ok(Ok(outcome)) => {
            health.set_database_ok(true);
            closed.apply(outcome, active, batch.number, newest_in_flight);
            metrics::counter!(m::ACCT_RECORDS_TOTAL).increment(batch.records as u64);
            metrics::gauge!(m::ACCT_ACTIVE_SESSIONS).set(active.len() as f64);
            true
        }
        Ok(Err(e)) => report_failure(health, &e.to_string(), batch.records),
        Err(e) => report_failure(health, &e.to_string(), batch.records),
    };
    batch.dones.into_iter().for_each(|d| d(stored));
}

/// Counts a batch that was not stored; `false`, for its requests' answers.
fn report_failure(health: &Health, e: &str, records: usize) -> bool {
    health.set_database_ok(false);
    metrics::counter!(m::ACCT_FAILED_TOTAL).increment(records as u64);
    tracing::warn!(error = %e, records, "accounting batch not stored; not acknowledged");
    false
}

/// Turns a batch of events, in arrival order, into the steps of one transaction: runs of
/// session reports folded to one record per session, cut wherever a NAS restart or a reap
/// must come between them.
fn plan(events: impl Iterator<Item = AcctEvent>) -> Vec<BatchOp> {
    let mut ops = Vec::new();
    let mut run: Vec<SessionRecord> = Vec::new();
    let mut slot: HashMap<String, usize> = HashMap::new();
    let flush = |run: &mut Vec<SessionRecord>,
                 slot: &mut HashMap<String, usize>,
                 ops: &mut Vec<BatchOp>| {
        if !run.is_empty() {
            ops.push(BatchOp::Upsert(std::mem::take(run)));
            slot.clear();
        }
    };
    for ev in events {
        match ev {
            AcctEvent::Session(r) => match slot.get(r.unique_id()) {
                Some(&i) => run[i].merge(*r),
                None => {
                    slot.insert(r.unique_id().to_string(), run.len());
                    run.push(*r);
                }
            },
            AcctEvent::NasRestart { nas_ip_address, at } => {
                flush(&mut run, &mut slot, &mut ops);
                ops.push(BatchOp::NasRestart { nas_ip_address, at });
            }
            AcctEvent::Reap {
                unique_id,
                last_seen,
            } => {
                flush(&mut run, &mut slot, &mut ops);
                ops.push(BatchOp::Reap {
                    unique_id,
                    last_seen,
                });
            }
        }
    }
    flush(&mut run, &mut slot, &mut ops);
    ops
}

/// Rebuilds the open sessions from the database.
pub async fn load_active(store: &Store, active: &ActiveSessions) -> Result<usize, StoreError> {
    let open = store.sessions_open().await?;
    let n = open.len();
    for s in open {
        active.upsert(s);
    }
    metrics::gauge!(m::ACCT_ACTIVE_SESSIONS).set(active.len() as f64);
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use edge_shared::accounting::c;

    fn rec(id: &str, octets: i64) -> AcctEvent {
        let mut r = SessionRecord::default();
        r.set_text(c::ACCT_UNIQUE_ID, id);
        r.set_int(c::INPUT_OCTETS, octets);
        AcctEvent::Session(Box::new(r))
    }

    fn open(id: &str) -> edge_shared::accounting::ActiveSession {
        edge_shared::accounting::ActiveSession {
            unique_id: id.into(),
            session_id: id.into(),
            username: "alice".into(),
            nas_ip_address: "10.0.0.1".into(),
            framed_ip: None,
            interval: None,
            last_seen: 0,
        }
    }

    #[test]
    fn an_older_batch_finishing_late_does_not_reopen_a_session() {
        let active = ActiveSessions::default();
        let mut closed = RecentlyClosed::default();
        let outcome = |open_ids: &[&str], closed_ids: &[&str]| BatchOutcome {
            open: open_ids.iter().map(|id| open(id)).collect(),
            closed: closed_ids.iter().map(|id| id.to_string()).collect(),
        };
        // Batch 1 opens "a". Batch 2 (holding a Stop) ran first in the database, batch 3 (an
        // Interim formed after it) ran before the Stop and so reports "a" open.
        closed.apply(outcome(&["a"], &[]), &active, 1, 3);
        assert_eq!(active.count_for_user("alice"), 1);
        closed.apply(outcome(&[], &["a"]), &active, 2, 3);
        closed.apply(outcome(&["a", "b"], &[]), &active, 3, 3);
        assert!(active.get("a").is_none(), "closed stays closed");
        assert!(active.get("b").is_some());
        // Once nothing formed before the close is in flight, the memory is let go.
        assert!(closed.ids.is_empty());
    }

    #[test]
    fn batches_fold_per_session_and_cut_at_restarts() {
        let events = [
            rec("a", 1),
            rec("b", 1),
            rec("a", 5),
            AcctEvent::NasRestart {
                nas_ip_address: "10.0.0.1".into(),
                at: 10,
            },
            rec("a", 7),
        ];
        let ops = plan(events.into_iter());
        assert_eq!(ops.len(), 3);
        let BatchOp::Upsert(first) = &ops[0] else {
            panic!("upsert first")
        };
        assert_eq!(first.len(), 2);
        assert_eq!(first[0].int(c::INPUT_OCTETS), Some(5));
        assert!(matches!(ops[1], BatchOp::NasRestart { at: 10, .. }));
        let BatchOp::Upsert(last) = &ops[2] else {
            panic!("upsert last")
        };
        assert_eq!(last[0].int(c::INPUT_OCTETS), Some(7));
    }
}
