//! Startup, readiness and liveness as the HTTP probes report them.

use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, Default)]
pub struct Health {
    started: AtomicBool,
    ready: AtomicBool,
    database_ok: AtomicBool,
}

impl Health {
    pub fn set_started(&self) {
        self.started.store(true, Ordering::Release);
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    pub fn set_database_ok(&self, ok: bool) {
        self.database_ok.store(ok, Ordering::Release);
    }

    pub fn started(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }

    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub fn database_ok(&self) -> bool {
        self.database_ok.load(Ordering::Acquire)
    }
}
