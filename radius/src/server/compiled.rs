//! What the server compiles from the index's NAS and plans: plans compiled against the
//! dictionary, and each client's Message-Authenticator key. Rebuilt when the index reloads
//! NAS or plans (its generation changes).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arc_swap::{ArcSwap, Guard};
use edge_shared::index::Index;
use edge_shared::types::{NasId, PlanId, PoolId};

use crate::codec::MacKey;
use crate::dict::{CompiledPair, Dictionary};

#[derive(Debug)]
pub(super) struct CompiledPlan {
    pub pairs: Vec<CompiledPair>,
    pub session_timeout: Option<u32>,
    pub interim_interval: Option<u32>,
    pub simultaneous_use: Option<u32>,
    pub pool: Option<PoolId>,
    pub ipv6_pool: Option<PoolId>,
    pub delegated_pool: Option<PoolId>,
}

#[derive(Debug, Default)]
pub(super) struct Generation {
    number: u64,
    plans: HashMap<PlanId, Arc<CompiledPlan>>,
    /// Each pool's reply attributes, added to an Access-Accept with an address from it.
    pool_pairs: HashMap<PoolId, Vec<CompiledPair>>,
    mac_keys: HashMap<NasId, (Box<[u8]>, MacKey)>,
}

impl Generation {
    pub(super) fn plan(&self, id: PlanId) -> Option<&Arc<CompiledPlan>> {
        self.plans.get(&id)
    }

    pub(super) fn pool_pairs(&self, id: PoolId) -> &[CompiledPair] {
        self.pool_pairs.get(&id).map_or(&[], Vec::as_slice)
    }

    /// The key, with the secret it was made from.
    pub(super) fn mac_key(&self, id: NasId) -> Option<&(Box<[u8]>, MacKey)> {
        self.mac_keys.get(&id)
    }
}

#[derive(Debug, Default)]
pub(super) struct Compiled {
    current: ArcSwap<Generation>,
    rebuild: Mutex<()>,
}

impl Compiled {
    /// The generation matching the index, rebuilt first when the index has moved on. A
    /// borrowed guard, not an `Arc`: every packet asks, and a reference count shared by all
    /// receiver threads would be one more contended cache line per packet.
    pub(super) fn current(&self, index: &Index, dict: &Dictionary) -> Guard<Arc<Generation>> {
        let want = index.generation();
        let cur = self.current.load();
        if cur.number == want {
            return cur;
        }
        drop(cur);
        // One thread rebuilds; the others wait for it rather than compile the same plans.
        let _guard = self.rebuild.lock().unwrap_or_else(|p| p.into_inner());
        if self.current.load().number != want {
            self.current.store(Arc::new(build(index, dict, want)));
        }
        self.current.load()
    }
}

fn compile_all(dict: &Dictionary, owner: &str, lines: &[String]) -> Vec<CompiledPair> {
    let mut pairs = Vec::new();
    for line in lines {
        match dict.compile_pair(line) {
            Ok(p) => pairs.push(p),
            Err(e) => tracing::warn!(owner, error = %e, "reply attribute skipped"),
        }
    }
    pairs
}

fn build(index: &Index, dict: &Dictionary, number: u64) -> Generation {
    let mut plans = HashMap::new();
    for (pid, plan) in index.plans().iter() {
        let pairs = compile_all(dict, &plan.name, &plan.reply_attributes);
        plans.insert(
            *pid,
            Arc::new(CompiledPlan {
                pairs,
                session_timeout: plan.session_timeout_seconds,
                interim_interval: plan.interim_interval_seconds,
                simultaneous_use: plan.simultaneous_use,
                pool: plan.pool,
                ipv6_pool: plan.ipv6_pool,
                delegated_pool: plan.delegated_pool,
            }),
        );
    }
    let mac_keys = index
        .nas()
        .all()
        .iter()
        .map(|n| {
            let secret: Box<[u8]> = n.secret.as_bytes().into();
            let key = MacKey::new(&secret);
            (n.id, (secret, key))
        })
        .collect();
    let pool_pairs = index
        .pools()
        .iter()
        .map(|(id, p)| (*id, compile_all(dict, &p.name, &p.reply_attributes)))
        .collect();
    Generation {
        number,
        plans,
        pool_pairs,
        mac_keys,
    }
}
