//! Plans compiled against the dictionary, rebuilt when the index reloads plans.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use edge_shared::index::Index;
use edge_shared::types::PlanId;

use crate::dict::{CompiledPair, Dictionary};

#[derive(Debug)]
pub(super) struct CompiledPlan {
    pub pairs: Vec<CompiledPair>,
    pub session_timeout: Option<u32>,
    pub interim_interval: Option<u32>,
}

#[derive(Debug, Default)]
struct Generation {
    number: u64,
    plans: HashMap<PlanId, Arc<CompiledPlan>>,
}

#[derive(Debug, Default)]
pub(super) struct PlanCache {
    current: ArcSwap<Generation>,
    rebuild: Mutex<()>,
}

impl PlanCache {
    pub(super) fn get(
        &self,
        index: &Index,
        dict: &Dictionary,
        id: PlanId,
    ) -> Option<Arc<CompiledPlan>> {
        let want = index.generation();
        let cur = self.current.load();
        if cur.number == want {
            return cur.plans.get(&id).cloned();
        }
        drop(cur);
        // One thread rebuilds; the others wait for it rather than compile the same plans.
        let _guard = self.rebuild.lock().unwrap_or_else(|p| p.into_inner());
        let cur = self.current.load();
        if cur.number != want {
            let mut plans = HashMap::new();
            for (pid, plan) in index.plans().iter() {
                let mut pairs = Vec::new();
                for line in &plan.reply_attributes {
                    match dict.compile_pair(line) {
                        Ok(p) => pairs.push(p),
                        Err(e) => {
                            tracing::warn!(plan = %plan.name, error = %e, "reply attribute skipped")
                        }
                    }
                }
                plans.insert(
                    *pid,
                    Arc::new(CompiledPlan {
                        pairs,
                        session_timeout: plan.session_timeout_seconds,
                        interim_interval: plan.interim_interval_seconds,
                    }),
                );
            }
            self.current.store(Arc::new(Generation {
                number: want,
                plans,
            }));
        }
        self.current.load().plans.get(&id).cloned()
    }
}
