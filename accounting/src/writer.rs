//! The group-commit writer, in two stages.
//!
//! 1. **Durable**: records are gathered for a bounded count and time, encoded, and stored as
//!    one journal row (one statement, one commit). Only then are their Accounting-Responses
//!    released; when the database refuses, none is (the NAS retransmits) and the failure is
//!    counted. Up to `concurrency` batches are stored at once; they are acknowledged in the
//!    order they were formed.
//! 2. **Fold**: one task takes the stored batches in order, merges every report of a session
//!    that waits together, and folds them into `sessions` in one transaction that also
//!    deletes their journal rows. The open sessions in memory follow each fold.
//!
//! Storing a batch costs the database one row, where folding costs an upsert per session
//! and its index entries: the answer waits only for the cheap part. When the fold falls
//! behind by `max_unfolded` records, the durable stage stops taking batches until it catches
//! up, so memory and the lag of `sessions` stay bounded. A journal row left by a crash, or by
//! an instance that vanished, is folded at start and by the periodic recovery.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use edge_shared::accounting::{unix_now, AccountingSink, AcctEvent, Done, SessionRecord};
use edge_shared::health::Health;
use edge_shared::journal;
use edge_shared::leases::LeaseChange;
use edge_shared::metric_names as m;
use edge_shared::sessions::ActiveSessions;
use edge_shared::store::{BatchOp, BatchOutcome, JournalKey, Store, StoreError};
use edge_shared::types::PoolId;
use tokio::sync::{mpsc, Notify};

use crate::spool::{Segment, Spool};
use tokio::task::JoinHandle;

#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Most records in one journal row.
    pub max_batch: usize,
    /// Longest a record waits for others to join its batch.
    pub max_wait: Duration,
    /// Records waiting for the writer; past it requests are shed (the NAS retransmits).
    pub queue: usize,
    /// Batches being stored at once (each on its own connection).
    pub concurrency: usize,
    /// Records acknowledged but not yet folded into `sessions`; at this many the writer
    /// takes no new batch until the fold catches up.
    pub max_unfolded: usize,
    /// Most records folded in one transaction.
    pub fold_max: usize,
    /// Journal rows older than this that no live fold has taken (their writer crashed or
    /// vanished) are folded by this process.
    pub orphan_age: Duration,
    /// Where acknowledged batches wait while the database is away; `None`: a batch the
    /// journal refuses is not acknowledged.
    pub spool: Option<Arc<Spool>>,
    /// A journal insert slower than this counts as the database being away.
    pub spool_after: Duration,
}

struct Pending {
    event: AcctEvent,
    more: Vec<AcctEvent>,
    done: Done,
}

/// The handle the RADIUS listener submits to. Cloning shares the one writer.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Pending>,
    id: i64,
}

impl Writer {
    /// This process's writer id: the `writer` of its journal rows.
    pub fn id(&self) -> i64 {
        self.id
    }
}

impl AccountingSink for Writer {
    fn submit_with(&self, event: AcctEvent, more: Vec<AcctEvent>, done: Done) -> Result<(), Done> {
        self.tx
            .try_send(Pending { event, more, done })
            .map_err(|e| {
                metrics::counter!(m::ACCT_SHED_TOTAL).increment(1);
                match e {
                    mpsc::error::TrySendError::Full(p) | mpsc::error::TrySendError::Closed(p) => {
                        p.done
                    }
                }
            })
    }
}

/// Records the durable stage has acknowledged and the fold has not yet folded.
#[derive(Default)]
struct Unfolded {
    records: AtomicUsize,
    /// Signalled by the fold each time it brings `records` down.
    less: Notify,
    /// The last fold's pace, records a second (0 before the first).
    pace: AtomicU64,
}

impl Unfolded {
    fn add(&self, n: usize) {
        let now = self.records.fetch_add(n, Ordering::Relaxed) + n;
        metrics::gauge!(m::ACCT_UNFOLDED).set(now as f64);
    }

    fn sub(&self, n: usize) {
        let now = self.records.fetch_sub(n, Ordering::Relaxed) - n;
        metrics::gauge!(m::ACCT_UNFOLDED).set(now as f64);
        self.less.notify_one();
    }

    /// How long the durable stage waits after taking `n` records, so that a backlog past
    /// half of `max` grows no faster than the fold drains it. Without this the stage runs at
    /// the journal's pace until the backlog is full and then stops for most of a fold, and
    /// the requests caught in that stop wait the whole of it (the load's p99). Paced, every
    /// request waits a little instead, at the same throughput.
    fn admit_after(&self, n: usize, max: usize) -> Option<Duration> {
        let pace = self.pace.load(Ordering::Relaxed);
        (pace > 0 && self.records.load(Ordering::Relaxed) > max / 2)
            .then(|| Duration::from_secs_f64(n as f64 / pace as f64))
    }
}

impl Writer {
    /// Starts the writer's two tasks. They stop once every `Writer` handle is dropped and
    /// what was queued is stored and folded: drop the handles to shut it down cleanly.
    pub fn spawn(
        store: Store,
        active: Arc<ActiveSessions>,
        health: Arc<Health>,
        cfg: WriterConfig,
    ) -> (Writer, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(cfg.queue.max(1));
        let writer_id: i64 = rand::random();
        let unfolded = Arc::new(Unfolded::default());
        let (fold_tx, fold_rx) = mpsc::unbounded_channel();
        let fold = Fold {
            store: store.clone(),
            active,
            health: health.clone(),
            unfolded: unfolded.clone(),
            writer_id,
            cfg: cfg.clone(),
        };
        let task = tokio::spawn(async move {
            let folding = tokio::spawn(fold.run(fold_rx));
            let stop = Arc::new(Notify::new());
            let replaying = cfg.spool.clone().map(|spool| {
                tokio::spawn(replay(
                    spool,
                    store.clone(),
                    health.clone(),
                    unfolded.clone(),
                    fold_tx.clone(),
                    stop.clone(),
                ))
            });
            durable(store, health, cfg, rx, writer_id, unfolded, fold_tx).await;
            // A last replay if the database is back; what stays is replayed at next start.
            stop.notify_one();
            if let Some(r) = replaying {
                let _ = r.await;
            }
            let _ = folding.await;
        });
        (Writer { tx, id: writer_id }, task)
    }
}

/// A batch the durable stage has stored, on its way to the fold: kept encoded, as stored,
/// which takes a fifth of the memory of the decoded events while the fold is behind.
struct Stored {
    key: JournalKey,
    entry: Vec<u8>,
    records: usize,
}

/// Where a batch was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Journal,
    Spool,
}

type Outcome = (Result<Via, String>, Vec<u8>);

/// A batch on its way to the journal (or the spool).
struct InFlight {
    task: JoinHandle<Outcome>,
    key: JournalKey,
    dones: Vec<Done>,
    /// Events in the batch (a request may bring more than one).
    records: usize,
    started: Instant,
}

async fn durable(
    store: Store,
    health: Arc<Health>,
    cfg: WriterConfig,
    mut rx: mpsc::Receiver<Pending>,
    writer_id: i64,
    unfolded: Arc<Unfolded>,
    fold: mpsc::UnboundedSender<Stored>,
) {
    let mut inflight: VecDeque<InFlight> = VecDeque::new();
    let mut next_batch = 0i64;
    let mut open_channel = true;
    let mut admit_at = tokio::time::Instant::now();
    let mut was_full = false;
    loop {
        if !open_channel && inflight.is_empty() {
            return;
        }
        let room = unfolded.records.load(Ordering::Relaxed) < cfg.max_unfolded;
        if !room && !was_full {
            metrics::counter!(m::ACCT_BACKLOG_FULL_TOTAL).increment(1);
        }
        was_full = !room;
        let admit = tokio::time::Instant::now() >= admit_at;
        tokio::select! {
            biased;
            // The oldest batch first: answers go out, and batches reach the fold, in the
            // order the batches were formed.
            r = async { (&mut inflight.front_mut().expect("guarded").task).await }, if !inflight.is_empty() => {
                let batch = inflight.pop_front().expect("guarded");
                finish(batch, r, &health, &unfolded, &fold);
            }
            first = rx.recv(), if open_channel && room && admit && inflight.len() < cfg.concurrency.max(1) => {
                let Some(first) = first else {
                    open_channel = false;
                    continue;
                };
                let batch = gather(first, &mut rx, &cfg).await;
                let mut dones = Vec::with_capacity(batch.len());
                let mut events: Vec<AcctEvent> = Vec::with_capacity(batch.len());
                for p in batch {
                    dones.push(p.done);
                    events.push(p.event);
                    events.extend(p.more);
                }
                let records = events.len();
                if let Some(wait) = unfolded.admit_after(records, cfg.max_unfolded) {
                    admit_at = tokio::time::Instant::now() + wait;
                    metrics::counter!(m::ACCT_PACED_TOTAL).increment(1);
                }
                next_batch += 1;
                let key = JournalKey { writer: writer_id, batch: next_batch };
                let store = store.clone();
                let spool = cfg.spool.clone();
                let spool_after = cfg.spool_after;
                inflight.push_back(InFlight {
                    task: tokio::spawn(async move {
                        let entry = journal::encode(&events);
                        store_batch(&store, spool, spool_after, key, entry).await
                    }),
                    key,
                    dones,
                    records,
                    started: Instant::now(),
                });
            }
            // The fold caught up a little: look at `room` again.
            _ = unfolded.less.notified(), if !room => {}
            _ = tokio::time::sleep_until(admit_at), if !admit => {}
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

/// Stores one batch: in the journal, or in the spool when the spool holds batches already
/// (behind them) or the journal fails or is slower than `spool_after`.
async fn store_batch(
    store: &Store,
    spool: Option<Arc<Spool>>,
    spool_after: Duration,
    key: JournalKey,
    entry: Vec<u8>,
) -> Outcome {
    let Some(spool) = spool else {
        let r = store.journal_append(key, &entry).await;
        return (r.map(|()| Via::Journal).map_err(|e| e.to_string()), entry);
    };
    if !spool.holding() {
        match tokio::time::timeout(spool_after, store.journal_append(key, &entry)).await {
            Ok(Ok(())) => return (Ok(Via::Journal), entry),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, batch = key.batch, "journal refused a batch; spooling");
            }
            Err(_) => {
                tracing::warn!(batch = key.batch, "journal too slow; spooling");
            }
        }
    }
    // The fold never sees a spooled batch (the replay hands it over): no entry comes back.
    let r = on_disk(&spool, move |s| s.append(key, &entry)).await;
    (
        r.map(|()| Via::Spool).map_err(|e| format!("spool: {e}")),
        Vec::new(),
    )
}

/// Releases a stored batch's answers (or counts its failure) and hands a journaled batch to
/// the fold.
fn finish(
    batch: InFlight,
    result: Result<Outcome, tokio::task::JoinError>,
    health: &Health,
    unfolded: &Unfolded,
    fold: &mpsc::UnboundedSender<Stored>,
) {
    let records = batch.records;
    metrics::histogram!(m::ACCT_BATCH_SIZE).record(records as f64);
    metrics::histogram!(m::ACCT_COMMIT_SECONDS).record(batch.started.elapsed().as_secs_f64());
    let stored = match result {
        Ok((Ok(Via::Journal), entry)) => {
            health.set_database_ok(true);
            metrics::counter!(m::ACCT_RECORDS_TOTAL).increment(records as u64);
            // Counted before any answer leaves, so a NAS that has its answer never sees
            // nothing unfolded while its record still waits.
            unfolded.add(records);
            let stored = Stored {
                key: batch.key,
                entry,
                records,
            };
            if fold.send(stored).is_err() {
                // The fold is gone (shutting down): the row stays in the journal and is
                // folded at the next start.
                unfolded.sub(records);
            }
            true
        }
        Ok((Ok(Via::Spool), _)) => {
            // The journal refused this batch or one before it: down until a replay succeeds.
            health.set_database_ok(false);
            metrics::counter!(m::ACCT_RECORDS_TOTAL).increment(records as u64);
            metrics::counter!(m::ACCT_SPOOLED_TOTAL).increment(records as u64);
            true
        }
        Ok((Err(e), _)) => report_failure(health, &e, records),
        Err(e) => report_failure(health, &e.to_string(), records),
    };
    batch.dones.into_iter().for_each(|d| d(stored));
}

/// Moves spooled batches into the journal once the database is back, oldest first, and
/// hands them to the fold; runs until `stop`, then tries once more.
async fn replay(
    spool: Arc<Spool>,
    store: Store,
    health: Arc<Health>,
    unfolded: Arc<Unfolded>,
    fold: mpsc::UnboundedSender<Stored>,
    stop: Arc<Notify>,
) {
    let publish = |spool: &Spool| {
        let (batches, bytes) = spool.pending();
        health.set_spool(batches, bytes);
        metrics::gauge!(m::ACCT_SPOOL_BATCHES).set(batches as f64);
        metrics::gauge!(m::ACCT_SPOOL_BYTES).set(bytes as f64);
    };
    let mut last = false;
    loop {
        publish(&spool);
        // A cheap question first: a segment is read from disk only when it can be stored.
        if spool.holding() && store.ping().await.is_ok() {
            for seg in spool.segments() {
                match replay_segment(&spool, &store, &unfolded, &fold, seg).await {
                    Ok(records) => {
                        health.set_database_ok(true);
                        metrics::counter!(m::ACCT_REPLAYED_TOTAL).increment(records as u64);
                        tracing::info!(
                            segment = seg.seq,
                            records,
                            "spool segment replayed into the journal"
                        );
                        publish(&spool);
                    }
                    Err(e) => {
                        tracing::warn!(segment = seg.seq, error = %e, "spool replay stopped; will retry");
                        break;
                    }
                }
            }
        }
        if last {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = stop.notified() => last = true,
        }
    }
}

/// One segment into the journal (one transaction), off the disk, and on to the fold; the
/// records it held.
async fn replay_segment(
    spool: &Arc<Spool>,
    store: &Store,
    unfolded: &Unfolded,
    fold: &mpsc::UnboundedSender<Stored>,
    seg: Segment,
) -> Result<usize, String> {
    let batches = on_disk(spool, move |s| s.read(&seg)).await?;
    store
        .journal_replay(&batches)
        .await
        .map_err(|e| e.to_string())?;
    // In the journal now: should the removal fail, a later replay of it is harmless.
    on_disk(spool, move |s| s.remove(&seg)).await?;
    let mut replayed = 0;
    for (key, entry) in batches {
        let records = journal::count(&entry);
        replayed += records;
        unfolded.add(records);
        if fold
            .send(Stored {
                key,
                entry,
                records,
            })
            .is_err()
        {
            unfolded.sub(records);
        }
    }
    Ok(replayed)
}

/// Runs blocking file work on the spool off the async threads.
async fn on_disk<T: Send + 'static, E: std::fmt::Display + Send + 'static>(
    spool: &Arc<Spool>,
    f: impl FnOnce(&Spool) -> Result<T, E> + Send + 'static,
) -> Result<T, String> {
    let s = Arc::clone(spool);
    tokio::task::spawn_blocking(move || f(&s))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

/// Counts a batch that was not stored; `false`, for its requests' answers.
fn report_failure(health: &Health, e: &str, records: usize) -> bool {
    health.set_database_ok(false);
    metrics::counter!(m::ACCT_FAILED_TOTAL).increment(records as u64);
    tracing::warn!(error = %e, records, "accounting batch not stored; not acknowledged");
    false
}

/// The second stage: stored batches into `sessions`, one transaction at a time.
struct Fold {
    store: Store,
    active: Arc<ActiveSessions>,
    health: Arc<Health>,
    unfolded: Arc<Unfolded>,
    writer_id: i64,
    cfg: WriterConfig,
}

impl Fold {
    async fn run(self, mut rx: mpsc::UnboundedReceiver<Stored>) {
        let mut recovery = tokio::time::interval(self.cfg.orphan_age.max(Duration::from_secs(1)));
        recovery.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is immediate; start-up recovery has just run.
        recovery.tick().await;
        loop {
            tokio::select! {
                biased;
                _ = recovery.tick() => {
                    let before = unix_now() - self.cfg.orphan_age.as_secs() as i64;
                    if let Err(e) = recover(&self.store, &self.active, before, self.writer_id).await {
                        tracing::warn!(error = %e, "journal recovery failed; will retry");
                    }
                }
                first = rx.recv() => {
                    let Some(first) = first else { return };
                    let mut batches = vec![first];
                    let mut records = batches[0].records;
                    while records < self.cfg.fold_max {
                        match rx.try_recv() {
                            Ok(b) => {
                                records += b.records;
                                batches.push(b);
                            }
                            Err(_) => break,
                        }
                    }
                    let started = Instant::now();
                    let keys: Vec<JournalKey> = batches.iter().map(|b| b.key).collect();
                    let ops = plan(batches.iter().flat_map(|b| {
                        // Encoded by this process a moment ago; should it not decode, the
                        // row stays in the journal for an operator (see `recover`).
                        journal::decode(&b.entry).unwrap_or_else(|e| {
                            metrics::counter!(m::ACCT_JOURNAL_CORRUPT_TOTAL).increment(1);
                            tracing::error!(batch = b.key.batch, error = %e, "journal entry does not decode");
                            Vec::new()
                        })
                    }));
                    let closing = rx.is_closed();
                    self.fold_until_stored(&ops, &keys, records, closing).await;
                    let pace = records as f64 / started.elapsed().as_secs_f64().max(1e-6);
                    self.unfolded.pace.store(pace as u64, Ordering::Relaxed);
                    self.unfolded.sub(records);
                }
            }
        }
    }

    /// Folds, retrying while the database refuses: the rows are safe in the journal, and
    /// the durable stage stops taking batches once too many wait. At shutdown one failure
    /// is the last word; the next start folds the rows.
    async fn fold_until_stored(
        &self,
        ops: &[BatchOp],
        keys: &[JournalKey],
        records: usize,
        closing: bool,
    ) {
        let mut backoff = Duration::from_millis(50);
        loop {
            let started = Instant::now();
            match self.store.sessions_fold(ops, keys).await {
                Ok(outcome) => {
                    metrics::histogram!(m::ACCT_FOLD_SIZE).record(records as f64);
                    metrics::histogram!(m::ACCT_FOLD_SECONDS)
                        .record(started.elapsed().as_secs_f64());
                    apply(outcome, &self.active);
                    return;
                }
                Err(e) => {
                    self.health.set_database_ok(false);
                    metrics::counter!(m::ACCT_FOLD_FAILED_TOTAL).increment(1);
                    tracing::warn!(error = %e, records, "fold into sessions failed; the journal keeps the records");
                    if closing {
                        return;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

/// Brings the open sessions in memory in step with a fold. Folds run one at a time, in the
/// order their batches were stored, so each outcome is the newest word on its sessions.
fn apply(outcome: BatchOutcome, active: &ActiveSessions) {
    metrics::counter!(m::ACCT_REAPED_TOTAL).increment(outcome.reaped as u64);
    for s in outcome.open {
        active.upsert(s);
    }
    for id in &outcome.closed {
        active.remove(id);
    }
    metrics::gauge!(m::ACCT_ACTIVE_SESSIONS).set(active.len() as f64);
}

/// Folds journal rows written at or before `created_before` by any writer but `except`
/// (this process's own, which its fold holds): what a crash or a vanished instance left.
/// Returns the records folded. A row that does not decode is logged, counted and left in
/// place for an operator.
pub async fn recover(
    store: &Store,
    active: &ActiveSessions,
    created_before: i64,
    except: i64,
) -> Result<usize, StoreError> {
    const ROWS: i64 = 64;
    let mut total = 0;
    let mut skipped = std::collections::HashSet::new();
    loop {
        let limit = ROWS + skipped.len() as i64;
        let rows = store.journal_rows(created_before, except, limit).await?;
        let fetched = rows.len();
        let mut keys = Vec::new();
        let mut events = Vec::new();
        for (key, entry) in rows {
            if skipped.contains(&key) {
                continue;
            }
            match journal::decode(&entry) {
                Ok(ev) => {
                    keys.push(key);
                    events.extend(ev);
                }
                Err(e) => {
                    metrics::counter!(m::ACCT_JOURNAL_CORRUPT_TOTAL).increment(1);
                    tracing::error!(writer = key.writer, batch = key.batch, error = %e, "journal row left unfolded");
                    skipped.insert(key);
                }
            }
        }
        if keys.is_empty() {
            return Ok(total);
        }
        let records = events.len();
        let outcome = store
            .sessions_fold(&plan(events.into_iter()), &keys)
            .await?;
        apply(outcome, active);
        metrics::counter!(m::ACCT_RECOVERED_TOTAL).increment(records as u64);
        total += records;
        if (fetched as i64) < limit {
            return Ok(total);
        }
    }
}

/// Turns a batch of events, in arrival order, into the steps of one transaction: runs of
/// session reports folded to one record per session, cut wherever a NAS restart or a reap
/// must come between them; lease changes (another table) to the newest per slot, last.
fn plan(events: impl Iterator<Item = AcctEvent>) -> Vec<BatchOp> {
    let mut ops = Vec::new();
    let mut leases: HashMap<(PoolId, i64), LeaseChange> = HashMap::new();
    // Boxed as decoded: a record is about 900 bytes, and a fold holds up to `fold_max`.
    let mut run: Vec<Box<SessionRecord>> = Vec::new();
    let mut slot: HashMap<String, usize> = HashMap::new();
    let flush = |run: &mut Vec<Box<SessionRecord>>,
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
                    run.push(r);
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
            AcctEvent::Lease(l) => match leases.entry((l.pool, l.slot)) {
                Entry::Occupied(mut o) => {
                    if o.get().at_us <= l.at_us {
                        o.insert(*l);
                    }
                }
                Entry::Vacant(v) => {
                    v.insert(*l);
                }
            },
        }
    }
    flush(&mut run, &mut slot, &mut ops);
    if !leases.is_empty() {
        ops.push(BatchOp::Leases(leases.into_values().collect()));
    }
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

    #[test]
    fn a_backlog_past_half_paces_the_durable_stage_to_the_fold() {
        let u = Unfolded::default();
        // Before any fold has been measured: never held back.
        u.add(900);
        assert_eq!(u.admit_after(1_000, 1_000), None);
        u.pace.store(100_000, Ordering::Relaxed);
        assert_eq!(
            u.admit_after(1_000, 1_000),
            Some(Duration::from_millis(10)),
            "1,000 records at a fold pace of 100,000 a second"
        );
        // At half the bound or below, the stage runs at the journal's pace.
        u.sub(400);
        assert_eq!(u.admit_after(1_000, 1_000), None);
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
