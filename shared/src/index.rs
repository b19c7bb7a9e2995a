//! What the data plane answers from: subscribers, NAS clients and plans in memory, loaded at
//! start and kept in step with the database by revision (see `refresh`).

mod nas_table;
mod refresh;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use dashmap::DashMap;

use crate::store::{Store, StoreError};
use crate::types::{Plan, PlanId, Pool, PoolId, Subscriber};

pub use nas_table::NasTable;
pub use refresh::spawn_refresher;

#[derive(Debug, Default)]
pub struct Index {
    subscribers: DashMap<Box<str>, Arc<Subscriber>, foldhash::fast::RandomState>,
    nas: ArcSwap<NasTable>,
    plans: ArcSwap<HashMap<PlanId, Arc<Plan>>>,
    pools: ArcSwap<HashMap<PoolId, Arc<Pool>>>,
    revision: AtomicI64,
    /// Bumped whenever NAS or plans are reloaded, so that derived caches know to rebuild.
    generation: AtomicU64,
    /// The generation, for tasks that wait for the NAS or plans to change.
    changes: tokio::sync::watch::Sender<u64>,
    /// Wakes the refresher at once (a write in this process, say) instead of at its next tick.
    poke: tokio::sync::Notify,
}

impl Index {
    pub fn new() -> Arc<Index> {
        Arc::new(Index::default())
    }

    pub fn subscriber(&self, username: &str) -> Option<Arc<Subscriber>> {
        self.subscribers.get(username).map(|s| Arc::clone(&s))
    }

    pub fn subscriber_count(&self) -> usize {
        self.subscribers.len()
    }

    pub fn nas(&self) -> arc_swap::Guard<Arc<NasTable>> {
        self.nas.load()
    }

    pub fn plan(&self, id: PlanId) -> Option<Arc<Plan>> {
        self.plans.load().get(&id).cloned()
    }

    pub fn plans(&self) -> Arc<HashMap<PlanId, Arc<Plan>>> {
        self.plans.load_full()
    }

    pub fn pools(&self) -> Arc<HashMap<PoolId, Arc<Pool>>> {
        self.pools.load_full()
    }

    pub fn revision(&self) -> i64 {
        self.revision.load(Ordering::Acquire)
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Resolves each time NAS or plans are reloaded (see [`Index::generation`]).
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Asks the refresher to look at the database now: this process has just written.
    pub fn poke(&self) {
        self.poke.notify_one();
    }

    pub(crate) async fn poked(&self) {
        self.poke.notified().await;
    }

    /// Brings the index up to the database's revision. Returns whether anything changed.
    ///
    /// The revision is read first: rows written after that read carry a higher revision and
    /// are picked up by the next call, so nothing is skipped.
    pub async fn refresh(&self, store: &Store) -> Result<bool, StoreError> {
        let db_rev = store.revision().await?;
        let seen = self.revision();
        if db_rev == seen && seen != 0 {
            return Ok(false);
        }
        let nas = store.nas_list().await?;
        let plans = store.plan_list().await?;
        let pools = store.pool_list().await?;
        self.pools.store(Arc::new(
            pools.into_iter().map(|p| (p.id, Arc::new(p))).collect(),
        ));
        self.nas.store(Arc::new(NasTable::build(nas)));
        self.plans.store(Arc::new(
            plans.into_iter().map(|p| (p.id, Arc::new(p))).collect(),
        ));
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        self.changes.send_replace(generation);
        let changes = store.subscriber_changes(seen).await?;
        for username in changes.deletions {
            self.subscribers.remove(username.as_str());
        }
        for row in changes.upserts {
            let (username, sub) = row.into_index();
            self.subscribers
                .insert(username.into_boxed_str(), Arc::new(sub));
        }
        self.revision.store(db_rev, Ordering::Release);
        metrics::gauge!(crate::metric_names::INDEX_SUBSCRIBERS).set(self.subscribers.len() as f64);
        metrics::gauge!(crate::metric_names::INDEX_REVISION).set(db_rev as f64);
        metrics::counter!(crate::metric_names::INDEX_REFRESH_TOTAL).increment(1);
        Ok(true)
    }
}
