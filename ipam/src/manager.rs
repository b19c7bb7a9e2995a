//! The address manager: every pool's allocator, the instance's name and blocks in the
//! database, and the accounting lifecycle of leases.
//!
//! Allocation runs on the RADIUS receiver threads, in memory, inside blocks this instance
//! owns; the lease it makes is stored through the accounting journal before the
//! Access-Accept leaves (the caller's part). A background task keeps the name (heartbeat),
//! claims blocks ahead of need and gives idle ones back, loads pool changes and static
//! addresses, and takes in lease changes other instances stored for slots it owns.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use arc_swap::ArcSwap;
use edge_shared::accounting::{c, unix_now, AcctEvent, ActiveSession};
use edge_shared::index::Index;
use edge_shared::leases::{
    unix_micros, AddressPlane, Grant, LeaseChange, LeaseKind, LeaseState, Refusal,
};
use edge_shared::metric_names as m;
use edge_shared::sessions::ActiveSessions;
use edge_shared::store::{LeaseRow, Store, StoreError};
use edge_shared::types::{Pool, PoolId};
use foldhash::fast::RandomState;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::alloc::{PoolAlloc, Report, Slot, BOUND, FREE, OFFERED, RELEASED};
use crate::space::{lease_address, Space};

#[derive(Debug, Clone)]
pub struct IpamConfig {
    /// This instance's name among those sharing the database; its blocks are owned under it.
    pub instance: String,
    /// How long an address offered in an Access-Accept waits for its session to start.
    pub offer_seconds: u32,
    /// How long a released address is kept for the same subscriber.
    pub sticky_seconds: u32,
    /// An instance silent this long is gone; it stops allocating itself after half of it.
    pub dead_after: Duration,
    pub heartbeat: Duration,
    /// Free slots this instance keeps claimed ahead of need, per pool (bounded by a quarter
    /// of the pool).
    pub claim_ahead: u64,
    /// A bound lease lasts the session's interim interval (or this default) times
    /// `stale_multiplier` plus `stale_grace`, as the reaper judges sessions.
    pub default_interim: u32,
    pub stale_multiplier: u32,
    pub stale_grace: u32,
}

struct PoolEntry {
    def: ArcSwap<Pool>,
    space: Space,
    alloc: Mutex<PoolAlloc>,
    /// How fast new holds draw on the pool, as the balancer last measured it.
    draw: Mutex<Draw>,
    /// Whether more of the pool may be had: false once a claim found no block left (or
    /// failed), true again when one gets blocks. A request that finds this instance's blocks
    /// full is held back while this is true and refused when it is false.
    claimable: AtomicBool,
}

/// A pool's draw rate: new holds per second over the balancer's last window.
struct Draw {
    at: std::time::Instant,
    holds: u64,
    per_second: f64,
}

/// The balancer keeps this many seconds of the measured draw claimed ahead (when that is more
/// than `claim_ahead`): a reconnect storm, thousands of new subscribers a second, then finds
/// addresses claimed instead of an instance whose blocks ran out before its next claim.
const HEADROOM_SECONDS: f64 = 2.0;
/// The shortest window a draw rate is measured over.
const DRAW_WINDOW: Duration = Duration::from_millis(250);

impl Draw {
    fn new() -> Draw {
        Draw {
            at: std::time::Instant::now(),
            holds: 0,
            per_second: 0.0,
        }
    }

    /// The rate, updated with the holds counted so far once a window has passed.
    fn measure(&mut self, holds: u64) -> f64 {
        let elapsed = self.at.elapsed();
        if elapsed >= DRAW_WINDOW {
            self.per_second = holds.saturating_sub(self.holds) as f64 / elapsed.as_secs_f64();
            self.at = std::time::Instant::now();
            self.holds = holds;
        }
        self.per_second
    }
}

impl PoolEntry {
    fn lock(&self) -> MutexGuard<'_, PoolAlloc> {
        self.alloc.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn name(&self) -> String {
        self.def.load().name.clone()
    }
}

/// The background work's state between rounds.
pub struct Upkeep {
    held: bool,
    generation: u64,
    last_beat: std::time::Instant,
}

pub struct Ipam {
    cfg: IpamConfig,
    incarnation: i64,
    hasher: RandomState,
    pools: ArcSwap<HashMap<PoolId, Arc<PoolEntry>>>,
    /// Unix seconds until which this instance may allocate (its name is renewed).
    allowed_until: AtomicI64,
    poke: Notify,
    /// `IPAM_ALLOCATED_TOTAL`, made once: it counts every Access-Accept with an address.
    allocated: metrics::Counter,
}

fn secs(t: i64) -> u32 {
    t.clamp(0, i64::from(u32::MAX)) as u32
}

impl Ipam {
    /// `incarnation` is the accounting writer's id: the journal rows this process writes
    /// carry it, and a peer takes over its blocks only once they are all folded.
    pub fn new(cfg: IpamConfig, incarnation: i64) -> Arc<Ipam> {
        Arc::new(Ipam {
            cfg,
            incarnation,
            hasher: RandomState::default(),
            pools: ArcSwap::default(),
            allowed_until: AtomicI64::new(0),
            poke: Notify::new(),
            allocated: metrics::counter!(m::IPAM_ALLOCATED_TOTAL),
        })
    }

    fn user(&self, name: &str) -> u64 {
        self.hasher.hash_one(name)
    }

    fn change(
        &self,
        entry: &PoolEntry,
        slot: u64,
        username: &str,
        state: LeaseState,
        unique_id: Option<&str>,
        expires: u32,
    ) -> Option<LeaseChange> {
        Some(LeaseChange {
            pool: entry.def.load().id,
            slot: slot as i64,
            address: entry.space.text(slot)?,
            username: username.to_string(),
            state,
            unique_id: unique_id.map(str::to_string),
            expires_at: i64::from(expires),
            at_us: unix_micros(),
            instance: self.cfg.instance.clone(),
        })
    }

    /// The pool (and slot) an address or prefix of a session belongs to.
    fn locate(&self, text: &str) -> Option<(Arc<PoolEntry>, u64)> {
        let addr = lease_address(text)?;
        self.pools
            .load()
            .values()
            .find_map(|e| Some((Arc::clone(e), e.space.slot(addr)?)))
    }

    fn bound_until(&self, now: i64, interval: Option<i64>) -> u32 {
        let every = interval
            .filter(|i| *i > 0)
            .map_or(self.cfg.default_interim, secs);
        secs(now + i64::from(every) * i64::from(self.cfg.stale_multiplier.max(1)))
            .saturating_add(self.cfg.stale_grace)
    }

    /// What an accounting event does to leases: Start and Interim bind (or extend) the
    /// session's addresses, Stop releases them, a reaped session and a NAS restart release
    /// those of the sessions they close. Memory changes now; the returned lease changes are
    /// stored with the event.
    pub fn on_event(&self, ev: &AcctEvent, active: &ActiveSessions) -> Vec<AcctEvent> {
        let mut out = Vec::new();
        if self.pools.load().is_empty() {
            // No pools: nothing is managed here, and no address is "external" either.
            return out;
        }
        let now = unix_now();
        let released = secs(now) + self.cfg.sticky_seconds;
        let release = |s: &ActiveSession, out: &mut Vec<AcctEvent>| {
            let v4 = s.framed_ip.map(|ip| ip.to_string());
            let addresses = [
                v4.as_deref(),
                s.framed_ipv6_prefix.as_deref(),
                s.delegated_ipv6_prefix.as_deref(),
            ];
            let what = (LeaseState::Released, released);
            self.report_all(addresses, &s.username, &s.unique_id, what, now, out);
        };
        match ev {
            AcctEvent::Session(r) => {
                let Some(username) = r.text(c::USERNAME) else {
                    return out;
                };
                let what = if r.int(c::STOP).is_some() {
                    (LeaseState::Released, released)
                } else {
                    (LeaseState::Bound, self.bound_until(now, r.int(c::INTERVAL)))
                };
                let addresses = [
                    r.text(c::FRAMED_IP_ADDRESS),
                    r.text(c::FRAMED_IPV6_PREFIX),
                    r.text(c::DELEGATED_IPV6_PREFIX),
                ];
                self.report_all(addresses, username, r.unique_id(), what, now, &mut out);
            }
            AcctEvent::NasRestart { nas_ip_address, .. } => {
                for s in active.for_nas(nas_ip_address) {
                    release(&s, &mut out);
                }
            }
            AcctEvent::Reap { unique_id, .. } => {
                if let Some(s) = active.get(unique_id) {
                    release(&s, &mut out);
                }
            }
            AcctEvent::Lease(_) => {}
        }
        out
    }

    /// Applies a bind or a release (`what`: the state and its expiry) to each address a
    /// session reports. A bound address outside every pool is counted as external.
    fn report_all(
        &self,
        addresses: [Option<&str>; 3],
        username: &str,
        unique_id: &str,
        (state, until): (LeaseState, u32),
        now: i64,
        out: &mut Vec<AcctEvent>,
    ) {
        for text in addresses.into_iter().flatten() {
            match self.locate(text) {
                Some((entry, slot)) => {
                    self.report(&entry, slot, username, unique_id, state, until, now, out)
                }
                None if state == LeaseState::Bound => {
                    metrics::counter!(m::IPAM_EXTERNAL_TOTAL).increment(1);
                }
                None => {}
            }
        }
    }

    /// Applies a bind or release to a slot. On a slot of a block another instance owns,
    /// only the stored change is made; that instance takes it in (see `sync`).
    #[allow(clippy::too_many_arguments)]
    fn report(
        &self,
        entry: &PoolEntry,
        slot: u64,
        username: &str,
        unique_id: &str,
        state: LeaseState,
        until: u32,
        now: i64,
        out: &mut Vec<AcctEvent>,
    ) {
        let user = self.user(username);
        let outcome = {
            let mut a = entry.lock();
            let block = (slot / u64::from(a.block_size())) as u32;
            if !a.owns(block) {
                None
            } else if state == LeaseState::Released {
                Some(a.release(slot, user, secs(now), until))
            } else {
                Some(a.bind(slot, user, secs(now), until))
            }
        };
        let noted = match outcome {
            Some(Report::Ignored) => return,
            Some(Report::Conflict) => Some((
                "held",
                "accounting reports an address another subscriber holds; lease left alone",
            )),
            Some(Report::Adopted) => Some((
                "unallocated",
                "accounting reports an address nobody was given; recorded as bound to it",
            )),
            Some(Report::Applied) | None => None,
        };
        if let Some((kind, message)) = noted {
            metrics::counter!(m::IPAM_CONFLICTS_TOTAL, "kind" => kind).increment(1);
            let address = entry.space.text(slot).unwrap_or_default();
            tracing::warn!(pool = %entry.name(), address, username, "{message}");
            if outcome == Some(Report::Conflict) {
                return;
            }
        }
        if let Some(ch) = self.change(entry, slot, username, state, Some(unique_id), until) {
            out.push(AcctEvent::Lease(Box::new(ch)));
        }
    }

    /// Lease changes for the slots an Access-Accept was given, should it go out.
    fn grant(
        &self,
        username: &str,
        pool: PoolId,
        kind: LeaseKind,
        now: i64,
    ) -> Result<Grant, Refusal> {
        let pools = self.pools.load();
        // The name asked for, for a refusal (not worked out on the way to a success).
        let first = || {
            pools
                .get(&pool)
                .map_or_else(|| format!("#{}", pool.0), |e| e.name())
        };
        if now > self.allowed_until.load(Ordering::Acquire) {
            metrics::counter!(m::IPAM_UNAVAILABLE_TOTAL).increment(1);
            return Err(Refusal::Unavailable(first()));
        }
        let user = self.user(username);
        let until = secs(now) + self.cfg.offer_seconds;
        let mut id = pool;
        // A chain of fallbacks, followed a bounded number of steps (it may loop).
        for _ in 0..8 {
            let Some(entry) = pools.get(&id) else { break };
            let fits = match kind {
                LeaseKind::Ipv4 => !entry.space.is_v6(),
                LeaseKind::Ipv6Prefix | LeaseKind::Delegated => entry.space.is_v6(),
            };
            if fits {
                let (got, low) = {
                    let mut a = entry.lock();
                    let got = a.allocate(user, secs(now), until);
                    if got.is_none() {
                        // Demand too: the claim it pokes should cover it.
                        a.new_holds += 1;
                    }
                    (got, a.free_hint < a.low_water)
                };
                if low {
                    self.poke.notify_one();
                }
                if let Some((slot, prev)) = got {
                    let address = entry
                        .space
                        .address(slot)
                        .ok_or_else(|| Refusal::Unavailable(entry.name()))?;
                    let change = self
                        .change(entry, slot, username, LeaseState::Offered, None, until)
                        .ok_or_else(|| Refusal::Unavailable(entry.name()))?;
                    self.allocated.increment(1);
                    return Ok(Grant {
                        pool: id,
                        kind,
                        address,
                        prefix_len: entry.space.prefix_len(),
                        change,
                        undo: prev.pack(),
                    });
                }
                // Perhaps only this instance's blocks are full: claim more now.
                self.poke.notify_one();
                if entry.claimable.load(Ordering::Acquire) {
                    metrics::counter!(m::IPAM_DEFERRED_TOTAL, "pool" => entry.name()).increment(1);
                    return Err(Refusal::Claiming(entry.name()));
                }
                metrics::counter!(m::IPAM_EXHAUSTED_TOTAL, "pool" => entry.name()).increment(1);
            }
            let next = entry.def.load().next_pool.clone();
            let Some(next) = next else { break };
            match pools.iter().find(|(_, e)| e.def.load().name == next) {
                Some((nid, _)) => id = *nid,
                None => break,
            }
        }
        Err(Refusal::Exhausted(first()))
    }

    /// The first round of background work, before the server answers: takes the name
    /// (unless a live process holds it), loads pools and blocks and claims ahead.
    pub async fn prepare(&self, store: &Store, index: &Index) -> Upkeep {
        let mut u = Upkeep {
            held: false,
            generation: u64::MAX,
            last_beat: std::time::Instant::now(),
        };
        self.step(&mut u, store, index).await;
        u
    }

    /// Runs the background work until `cancel`; lets the name go on the way out.
    pub async fn run(
        self: Arc<Self>,
        mut u: Upkeep,
        store: Store,
        index: Arc<Index>,
        cancel: CancellationToken,
    ) {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = self.poke.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            self.step(&mut u, &store, &index).await;
        }
        if u.held {
            let _ = store
                .instance_release(&self.cfg.instance, self.incarnation)
                .await;
        }
    }

    async fn step(&self, u: &mut Upkeep, store: &Store, index: &Index) {
        if u.held && u.last_beat.elapsed() >= self.cfg.heartbeat {
            match store
                .instance_heartbeat(&self.cfg.instance, self.incarnation, unix_now())
                .await
            {
                Ok(true) => {
                    u.last_beat = std::time::Instant::now();
                    self.extend_allowance();
                }
                Ok(false) => {
                    tracing::error!(instance = %self.cfg.instance, "instance name taken by another process; dropping all blocks");
                    u.held = false;
                    self.allowed_until.store(0, Ordering::Release);
                    self.pools.store(Arc::default());
                    u.generation = u64::MAX;
                    metrics::gauge!(m::IPAM_READY).set(0.0);
                }
                Err(e) => tracing::warn!(error = %e, "IPAM heartbeat failed"),
            }
        }
        if !u.held {
            match self.acquire(store).await {
                Ok(true) => {
                    u.held = true;
                    u.last_beat = std::time::Instant::now();
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "IPAM: cannot take the instance name"),
            }
        }
        if !u.held {
            return;
        }
        if index.generation() != u.generation {
            u.generation = index.generation();
            if let Err(e) = self.reload(store, index).await {
                tracing::warn!(error = %e, "IPAM: reloading pools failed");
                u.generation = u64::MAX;
            }
        }
        if let Err(e) = self.balance(store).await {
            tracing::warn!(error = %e, "IPAM: claiming blocks failed");
        }
        if let Err(e) = self.sync(store).await {
            tracing::warn!(error = %e, "IPAM: reading peers' lease changes failed");
        }
    }

    fn extend_allowance(&self) {
        let half = (self.cfg.dead_after.as_secs() / 2).max(1) as i64;
        self.allowed_until
            .store(unix_now() + half, Ordering::Release);
        metrics::gauge!(m::IPAM_READY).set(1.0);
    }

    /// Takes the instance name (once a previous holder is gone) and loads its blocks.
    async fn acquire(&self, store: &Store) -> Result<bool, StoreError> {
        let now = unix_now();
        let dead_before = now - self.cfg.dead_after.as_secs() as i64;
        if !store
            .instance_acquire(&self.cfg.instance, self.incarnation, now, dead_before)
            .await?
        {
            tracing::info!(instance = %self.cfg.instance, "instance name held by a live process; waiting");
            return Ok(false);
        }
        tracing::info!(instance = %self.cfg.instance, "instance name taken");
        self.extend_allowance();
        Ok(true)
    }

    /// Brings pools in step with the index: new pools, excludes and static addresses
    /// (reserved), removed pools; loads the blocks this instance owns of new pools.
    async fn reload(&self, store: &Store, index: &Index) -> Result<(), StoreError> {
        let defs = index.pools();
        let statics: Vec<Ipv4Addr> = store
            .static_addresses()
            .await?
            .into_iter()
            .map(|(_, ip)| ip)
            .collect();
        let old = self.pools.load_full();
        let mut next: HashMap<PoolId, Arc<PoolEntry>> = HashMap::new();
        let mut fresh = Vec::new();
        // A management pool's addresses belong to NAS tunnels, assigned by registration.
        for (id, def) in defs.iter().filter(|(_, d)| d.purpose == "subscribers") {
            let space = match Space::parse(def.family, &def.ranges, def.prefix_len) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(pool = %def.name, error = %e, "pool skipped");
                    continue;
                }
            };
            let entry = match old.get(id) {
                Some(e) if e.space == space && e.lock().block_size() == def.block_size => {
                    e.def.store(Arc::clone(def));
                    Arc::clone(e)
                }
                _ => {
                    fresh.push(*id);
                    Arc::new(PoolEntry {
                        def: ArcSwap::new(Arc::clone(def)),
                        alloc: Mutex::new(PoolAlloc::new(space.len(), def.block_size)),
                        draw: Mutex::new(Draw::new()),
                        claimable: AtomicBool::new(true),
                        space,
                    })
                }
            };
            let reserved = entry
                .space
                .reserved(&def.excludes, &statics)
                .unwrap_or_else(|e| {
                    tracing::warn!(pool = %def.name, error = %e, "pool excludes skipped");
                    entry.space.reserved(&[], &statics).unwrap_or_default()
                });
            let total = entry.space.len() - reserved.len() as u64;
            metrics::gauge!(m::IPAM_POOL_SLOTS, "pool" => def.name.clone()).set(total as f64);
            entry.lock().reserved = reserved.into_iter().collect();
            next.insert(*id, entry);
        }
        self.pools.store(Arc::new(next));
        if !fresh.is_empty() {
            let owned = store.blocks_owned(&self.cfg.instance).await?;
            let pools = self.pools.load();
            for pool in fresh {
                let Some(entry) = pools.get(&pool) else {
                    continue;
                };
                let blocks: Vec<u32> = owned
                    .iter()
                    .filter(|(p, _)| *p == pool)
                    .map(|(_, b)| *b)
                    .collect();
                self.load_blocks(store, entry, pool, &blocks).await?;
            }
        }
        Ok(())
    }

    /// Loads blocks this instance now owns into memory, with the leases stored in them.
    async fn load_blocks(
        &self,
        store: &Store,
        entry: &PoolEntry,
        pool: PoolId,
        blocks: &[u32],
    ) -> Result<(), StoreError> {
        if blocks.is_empty() {
            return Ok(());
        }
        let ranges: Vec<(i64, i64)> = {
            let a = entry.lock();
            blocks
                .iter()
                .map(|b| {
                    let (from, to) = a.block_range(*b);
                    (from as i64, to as i64)
                })
                .collect()
        };
        let rows = store.blocks_leases(pool, &ranges).await?;
        let mut a = entry.lock();
        for b in blocks {
            a.add_block(*b);
        }
        for row in rows {
            if let Some(s) = self.slot_of_row(&row) {
                a.load(row.slot as u64, s);
            }
        }
        Ok(())
    }

    fn slot_of_row(&self, row: &LeaseRow) -> Option<Slot> {
        let state = match LeaseState::parse(&row.state)? {
            LeaseState::Offered => OFFERED,
            LeaseState::Bound => BOUND,
            LeaseState::Released => RELEASED,
        };
        Some(Slot {
            user: self.user(&row.username),
            expires: secs(row.expires_at),
            state,
        })
    }

    /// Claims blocks where fewer than the target are free; gives back idle blocks where
    /// far more are.
    async fn balance(&self, store: &Store) -> Result<(), StoreError> {
        let now = unix_now();
        let pools = self.pools.load_full();
        for (id, entry) in pools.iter() {
            let name = entry.name();
            let (free, bs, idle, holds) = {
                let a = entry.lock();
                let free = a.usage(secs(now)).1;
                let bs = u64::from(a.block_size());
                (free, bs, a.idle_blocks(secs(now)), a.new_holds)
            };
            let rate = entry
                .draw
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .measure(holds);
            let target = self
                .cfg
                .claim_ahead
                .max((rate * HEADROOM_SECONDS) as u64)
                .min(entry.space.len() / 4)
                .max(bs);
            if free < target {
                let dead_before = now - self.cfg.dead_after.as_secs() as i64;
                let mut free = free;
                // Until the target is met or nothing more can be had.
                while free < target {
                    let want = (target - free).div_ceil(bs).clamp(1, 256) as u32;
                    let got = store
                        .blocks_claim(*id, &self.cfg.instance, want, now, dead_before)
                        .await
                        .inspect_err(|_| entry.claimable.store(false, Ordering::Release))?;
                    entry.claimable.store(!got.is_empty(), Ordering::Release);
                    if got.is_empty() {
                        break;
                    }
                    metrics::counter!(m::IPAM_BLOCKS_CLAIMED_TOTAL).increment(got.len() as u64);
                    self.load_blocks(store, entry, *id, &got).await?;
                    free = entry.lock().usage(secs(now)).1;
                }
            } else if free > 3 * target && !idle.is_empty() {
                let spare = ((free - 2 * target) / bs) as usize;
                let give: Vec<u32> = idle.into_iter().take(spare.min(64)).collect();
                if !give.is_empty() {
                    {
                        let mut a = entry.lock();
                        for b in &give {
                            a.remove_block(*b);
                        }
                    }
                    store.blocks_return(*id, &self.cfg.instance, &give).await?;
                    metrics::counter!(m::IPAM_BLOCKS_RETURNED_TOTAL).increment(give.len() as u64);
                }
            }
            // As things stand after the claims or returns.
            let (owned, free) = {
                let mut a = entry.lock();
                let (owned, free) = a.usage(secs(now));
                a.free_hint = free;
                a.low_water = target / 2;
                (owned, free)
            };
            metrics::gauge!(m::IPAM_POOL_OWNED, "pool" => name.clone()).set(owned as f64);
            metrics::gauge!(m::IPAM_POOL_FREE, "pool" => name).set(free as f64);
        }
        Ok(())
    }

    /// Takes in lease changes other instances stored (an accounting report that reached a
    /// peer, an operator's release) for slots this instance owns, from the notices the fold
    /// left for it.
    async fn sync(&self, store: &Store) -> Result<(), StoreError> {
        let rows = store.leases_noticed(&self.cfg.instance).await?;
        let pools = self.pools.load();
        let now = secs(unix_now());
        for row in rows {
            let (Some(entry), Some(s)) = (pools.get(&PoolId(row.pool_id)), self.slot_of_row(&row))
            else {
                continue;
            };
            let mut a = entry.lock();
            let slot = row.slot as u64;
            match a.get(slot) {
                Some(cur) if cur.user == s.user || !cur.held(now) || cur.state == FREE => {
                    a.load(slot, s);
                }
                Some(_) => {
                    metrics::counter!(m::IPAM_CONFLICTS_TOTAL, "kind" => "held").increment(1);
                }
                None => {}
            }
        }
        Ok(())
    }
}

impl AddressPlane for Ipam {
    fn allocate(
        &self,
        username: &str,
        pool: PoolId,
        kind: LeaseKind,
        now: i64,
    ) -> Result<Grant, Refusal> {
        self.grant(username, pool, kind, now)
    }

    fn undo(&self, grant: &Grant) {
        if let Some(entry) = self.pools.load().get(&grant.pool) {
            let user = self.user(&grant.change.username);
            entry
                .lock()
                .restore(grant.change.slot as u64, user, Slot::unpack(grant.undo));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_draw_rate_is_new_holds_over_a_window() {
        let mut d = Draw::new();
        d.at = std::time::Instant::now() - Duration::from_secs(2);
        let rate = d.measure(10_000);
        assert!((4_000.0..=5_000.0).contains(&rate), "{rate}");
        // Within the next window the last rate stands, whatever was counted meanwhile.
        assert_eq!(d.measure(90_000), rate);
        d.at = std::time::Instant::now() - Duration::from_secs(1);
        let rate = d.measure(90_000);
        assert!((70_000.0..=80_000.0).contains(&rate), "{rate}");
    }
}
