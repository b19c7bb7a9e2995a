//! The device registry as the sessions see it: memory caches (device state, devices with
//! queued tasks, presets, per-device credentials) and the writer that persists sessions'
//! effects in batches.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use dashmap::{DashMap, DashSet};
use edge_shared::metric_names as m;
use edge_shared::store::{AcsBatch, DeviceSeen, ParameterRow, Store, TaskUpdate};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::preset::Preset;
use crate::session::{Effect, TaskOutcome};
use crate::task::task_of_command_key;

type Hasher = foldhash::fast::RandomState;

/// Changes made by other processes arrive through `devices_changed_since`; this bounds how
/// long a missed one could linger.
const STATE_TTL: Duration = Duration::from_secs(3600);

/// What the registry keeps of a device between sessions.
#[derive(Debug, Clone, Default)]
pub struct Cached {
    pub tags: Arc<[String]>,
    pub fingerprint: Option<u64>,
    /// A hash of the last Inform's parameter values: unchanged ones are not written again.
    pub inform_hash: u64,
    /// When tags and fingerprint were read from the database; they are read again after
    /// `STATE_TTL` (tags changed by another process show up within it).
    pub loaded_at: Option<std::time::Instant>,
}

/// A write for the batch writer.
#[derive(Debug)]
pub enum Write {
    Seen {
        device: Box<DeviceSeen>,
        parameters: Vec<ParameterRow>,
    },
    Effects {
        device: String,
        effects: Vec<Effect>,
        at_us: i64,
    },
}

#[derive(Debug, Clone)]
pub struct WriterConfig {
    pub batch_max: usize,
    pub batch_wait: Duration,
    pub queue: usize,
    pub task_retry: Duration,
    pub task_max_attempts: i32,
    pub refresh_every: Duration,
    /// Devices whose state is cached; past it, arbitrary entries are dropped (they are read
    /// from the database again at their next session), so made-up device ids cannot grow
    /// memory without bound.
    pub cache_max_devices: usize,
}

pub struct Registry {
    pub store: Store,
    devices: DashMap<String, Cached, Hasher>,
    pending: DashSet<String, Hasher>,
    presets: ArcSwap<Vec<Preset>>,
    /// Per-device CPE credentials: username to (password, the device they belong to).
    credentials: ArcSwap<HashMap<String, (String, String)>>,
    /// Tasks sent to a device whose outcome is not committed yet: not sent again meanwhile.
    inflight: Arc<DashSet<i64, Hasher>>,
    /// The newest device change (tags, credentials) seen by `refresh`.
    changes_seen: std::sync::atomic::AtomicI64,
    cache_max_devices: usize,
    tx: mpsc::Sender<Write>,
}

impl Registry {
    /// The registry and its writer task. The writer ends once every sender is gone and what
    /// was queued is written.
    pub fn spawn(
        store: Store,
        cfg: WriterConfig,
        cancel: CancellationToken,
    ) -> (Arc<Registry>, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(cfg.queue);
        let reg = Arc::new(Registry {
            store: store.clone(),
            devices: DashMap::with_hasher(Hasher::default()),
            pending: DashSet::with_hasher(Hasher::default()),
            presets: ArcSwap::from_pointee(Vec::new()),
            credentials: ArcSwap::from_pointee(HashMap::new()),
            inflight: Arc::new(DashSet::with_hasher(Hasher::default())),
            changes_seen: std::sync::atomic::AtomicI64::new(edge_shared::leases::unix_micros()),
            cache_max_devices: cfg.cache_max_devices.max(1),
            tx,
        });
        let writer = tokio::spawn(write_loop(
            store,
            rx,
            cfg.clone(),
            Arc::clone(&reg.inflight),
        ));
        let r = Arc::clone(&reg);
        let refresher = tokio::spawn(async move {
            let mut tick = tokio::time::interval(cfg.refresh_every);
            loop {
                tokio::select! {
                    _ = tick.tick() => r.refresh().await,
                    _ = cancel.cancelled() => break,
                }
            }
        });
        let joined = tokio::spawn(async move {
            let _ = refresher.await;
            let _ = writer.await;
        });
        (reg, joined)
    }

    /// Reloads presets, the devices with queued tasks and per-device credentials.
    pub async fn refresh(&self) {
        match self.store.preset_list().await {
            Ok(rows) => {
                let mut list: Vec<Preset> = Vec::with_capacity(rows.len());
                for (name, spec) in rows {
                    match serde_json::from_str::<Preset>(&spec) {
                        Ok(p) => list.push(p),
                        Err(e) => tracing::warn!(preset = %name, error = %e, "preset unreadable"),
                    }
                }
                self.presets.store(Arc::new(list));
            }
            Err(e) => tracing::warn!(error = %e, "cannot load presets"),
        }
        match self.store.tasks_pending_devices().await {
            Ok(ids) => {
                let now: std::collections::HashSet<String> = ids.into_iter().collect();
                self.pending.retain(|id| now.contains(id));
                for id in now {
                    self.pending.insert(id);
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot load pending tasks"),
        }
        use std::sync::atomic::Ordering;
        let since = self.changes_seen.load(Ordering::Relaxed);
        match self.store.devices_changed_since(since).await {
            Ok(rows) => {
                for (id, at) in rows {
                    self.forget(&id);
                    self.changes_seen.fetch_max(at, Ordering::Relaxed);
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read device changes"),
        }
        match self.store.device_credentials().await {
            Ok(rows) => {
                let map = rows.into_iter().map(|(u, p, d)| (u, (p, d))).collect();
                self.credentials.store(Arc::new(map));
            }
            Err(e) => tracing::warn!(error = %e, "cannot load device credentials"),
        }
    }

    pub fn presets(&self) -> Arc<Vec<Preset>> {
        self.presets.load_full()
    }

    /// The password of a device's own CPE username, and that device.
    pub fn credential_of(&self, username: &str) -> Option<(String, String)> {
        self.credentials.load().get(username).cloned()
    }

    /// Whether any device has credentials of its own.
    pub fn has_credentials(&self) -> bool {
        !self.credentials.load().is_empty()
    }

    /// Claims a task for sending; false when it was sent and its outcome is not written yet.
    pub fn claim(&self, task: i64) -> bool {
        self.inflight.insert(task)
    }

    pub fn has_pending(&self, device: &str) -> bool {
        self.pending.contains(device)
    }

    /// The cached state, if any (no database access).
    pub fn cached(&self, device: &str) -> Option<Cached> {
        self.devices.get(device).map(|c| c.clone())
    }

    /// Drops what is cached of a device's tags and fingerprint (changed through the API).
    pub fn forget(&self, device: &str) {
        if let Some(mut c) = self.devices.get_mut(device) {
            c.loaded_at = None;
        }
    }

    /// Records an Inform: the hash of its parameters, and a bootstrap's forgotten presets.
    /// Returns whether the device was new to this process and whether its Inform parameters
    /// changed (one map access per Inform).
    pub fn note_inform(&self, device: &str, hash: u64, bootstrap: bool) -> (bool, bool) {
        let update = |c: &mut Cached| {
            let changed = c.inform_hash != hash;
            c.inform_hash = hash;
            if bootstrap {
                c.fingerprint = None;
            }
            changed
        };
        if let Some(mut c) = self.devices.get_mut(device) {
            return (false, update(&mut c));
        }
        let mut c = Cached::default();
        update(&mut c);
        self.make_room();
        self.devices.insert(device.to_string(), c);
        (true, true)
    }

    pub fn remember(&self, device: &str, update: impl FnOnce(&mut Cached)) {
        if !self.devices.contains_key(device) {
            self.make_room();
        }
        let mut e = self.devices.entry(device.to_string()).or_default();
        update(&mut e);
    }

    /// At the cap, drops a 64th of the cached devices (whichever the map yields first).
    fn make_room(&self) {
        let len = self.devices.len();
        metrics::gauge!(m::ACS_CACHED_DEVICES).set(len as f64);
        if len < self.cache_max_devices {
            return;
        }
        let victims: Vec<String> = self
            .devices
            .iter()
            .take((self.cache_max_devices / 64).max(1))
            .map(|e| e.key().clone())
            .collect();
        for v in &victims {
            self.devices.remove(v);
        }
        metrics::gauge!(m::ACS_CACHED_DEVICES).set(self.devices.len() as f64);
        metrics::counter!(m::ACS_CACHE_EVICTIONS_TOTAL).increment(victims.len() as u64);
    }

    /// The device's state, from the cache or (once per process) the database.
    pub async fn state(&self, device: &str) -> Cached {
        if let Some(c) = self.cached(device) {
            if c.loaded_at.is_some_and(|t| t.elapsed() < STATE_TTL) {
                return c;
            }
        }
        let row = match self.store.device_state(device).await {
            Ok(r) => r.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read device state");
                return self.cached(device).unwrap_or_default();
            }
        };
        let tags: Vec<String> = serde_json::from_str(&row.tags).unwrap_or_default();
        let mut out = Cached::default();
        self.remember(device, |c| {
            c.tags = tags.into();
            c.fingerprint = row.preset_fingerprint.map(|f| f as u64);
            c.loaded_at = Some(std::time::Instant::now());
            out = c.clone();
        });
        out
    }

    /// Queues a write; waits when the writer is behind (sessions slow down, nothing is lost).
    pub async fn write(&self, w: Write) {
        if self.tx.send(w).await.is_err() {
            tracing::warn!("acs writer gone; device state not written");
        }
    }
}

async fn write_loop(
    store: Store,
    mut rx: mpsc::Receiver<Write>,
    cfg: WriterConfig,
    inflight: Arc<DashSet<i64, Hasher>>,
) {
    let mut buf = Vec::with_capacity(cfg.batch_max);
    loop {
        buf.clear();
        if rx.recv_many(&mut buf, cfg.batch_max).await == 0 {
            return;
        }
        // Gather a little more for a fuller batch, bounded in time.
        let deadline = tokio::time::Instant::now() + cfg.batch_wait;
        while buf.len() < cfg.batch_max {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(w)) => buf.push(w),
                _ => break,
            }
        }
        let batch = to_batch(std::mem::take(&mut buf), &cfg);
        if batch.is_empty() {
            continue;
        }
        metrics::histogram!(m::ACS_BATCH_SIZE).record(batch.devices.len() as f64);
        let mut tries = 0;
        loop {
            match store.acs_apply(&batch).await {
                Ok(()) => {
                    for t in &batch.tasks {
                        inflight.remove(&t.id());
                    }
                    break;
                }
                Err(e) if tries < 3 => {
                    tries += 1;
                    tracing::warn!(error = %e, tries, "acs batch refused; retrying");
                    tokio::time::sleep(Duration::from_millis(200 << tries)).await;
                }
                Err(e) => {
                    // The tasks stay claimed: sending them again could repeat a reboot.
                    metrics::counter!(m::ACS_WRITE_FAILURES_TOTAL).increment(1);
                    tracing::error!(error = %e, devices = batch.devices.len(), "acs batch dropped");
                    break;
                }
            }
        }
    }
}

fn to_batch(writes: Vec<Write>, cfg: &WriterConfig) -> AcsBatch {
    let mut b = AcsBatch {
        now_us: edge_shared::leases::unix_micros(),
        ..AcsBatch::default()
    };
    for w in writes {
        match w {
            Write::Seen { device, parameters } => {
                b.devices.push(*device);
                b.parameters.extend(parameters);
            }
            Write::Effects {
                device,
                effects,
                at_us,
            } => {
                for e in effects {
                    add_effect(&mut b, &device, e, at_us, cfg);
                }
            }
        }
    }
    b
}

/// One session effect as the rows it changes.
fn add_effect(b: &mut AcsBatch, device: &str, e: Effect, at_us: i64, cfg: &WriterConfig) {
    let failed = |id: i64, code: Option<i32>, string: String| TaskUpdate::Failed {
        id,
        code,
        string,
        base_backoff_us: cfg.task_retry.as_micros() as i64,
        max_attempts: cfg.task_max_attempts,
    };
    match e {
        Effect::Parameters(values) => {
            b.parameters
                .extend(values.into_iter().map(|v| ParameterRow {
                    device_id: device.to_string(),
                    name: v.name,
                    value: v.value,
                    kind: v.kind,
                    at_us,
                }))
        }
        Effect::Task { id, outcome } => {
            let (label, update) = match outcome {
                TaskOutcome::Done(v) => (
                    "done",
                    TaskUpdate::Done {
                        id,
                        result: v.to_string(),
                    },
                ),
                TaskOutcome::Waiting => ("waiting", TaskUpdate::Waiting { id }),
                TaskOutcome::Fault(f) => ("fault", failed(id, Some(f.code as i32), fault_text(&f))),
                TaskOutcome::Unanswered => (
                    "unanswered",
                    failed(id, None, "the session ended without an answer".into()),
                ),
            };
            metrics::counter!(m::ACS_TASKS_TOTAL, "outcome" => label).increment(1);
            b.tasks.push(update);
        }
        // An autonomous transfer (no task's command key) is only acknowledged.
        Effect::TransferComplete { command_key, fault } => {
            if let Some(id) = task_of_command_key(&command_key) {
                b.tasks.push(if fault.code == 0 {
                    TaskUpdate::Done {
                        id,
                        result: serde_json::json!({"transfer": "complete"}).to_string(),
                    }
                } else {
                    failed(id, Some(fault.code as i32), fault_text(&fault))
                });
            }
        }
        Effect::PresetsConverged(fp) => b.fingerprints.push((device.to_string(), fp as i64)),
        Effect::PresetFault(f) => {
            metrics::counter!(m::ACS_PRESET_FAULTS_TOTAL).increment(1);
            tracing::info!(device = %device, code = f.code, "preset fault");
        }
    }
}

fn fault_text(f: &crate::codec::FaultStruct) -> String {
    let mut s = f.string.clone();
    for p in f.parameter_faults.iter().take(16) {
        s.push_str(&format!("; {}: {} {}", p.name, p.code, p.string));
    }
    s
}
