//! Startup phases, readiness and the state of each dependency, as the HTTP probes report
//! them (`/health/startup`, `/health/ready`, `/health/live`).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};

/// Where the process is in its life, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Phase {
    /// Reading the configuration and dictionaries.
    Config = 0,
    /// Connecting to the database and running migrations.
    Database = 1,
    /// Loading subscribers, NAS, open sessions and address blocks into memory.
    Caches = 2,
    /// Binding the RADIUS, ACS and API listeners.
    Listeners = 3,
    /// Serving.
    Ready = 4,
    /// SIGTERM or SIGINT came: not ready, finishing in-flight work.
    Draining = 5,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Config => "config",
            Phase::Database => "database",
            Phase::Caches => "caches",
            Phase::Listeners => "listeners",
            Phase::Ready => "ready",
            Phase::Draining => "draining",
        }
    }

    fn from_u8(v: u8) -> Phase {
        match v {
            0 => Phase::Config,
            1 => Phase::Database,
            2 => Phase::Caches,
            3 => Phase::Listeners,
            4 => Phase::Ready,
            _ => Phase::Draining,
        }
    }
}

/// Shared by every part that has something to say about the process's health.
#[derive(Debug, Default)]
pub struct Health {
    phase: AtomicU8,
    /// Set once the database answered, then kept in step by every query path.
    database_ok: AtomicBool,
    database_seen: AtomicBool,
    /// Accounting batches acknowledged from the local spool, not yet in the database.
    spooled_batches: AtomicU64,
    spooled_bytes: AtomicU64,
    spool_enabled: AtomicBool,
    backend: std::sync::OnceLock<&'static str>,
}

impl Health {
    pub fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Release);
    }

    pub fn phase(&self) -> Phase {
        Phase::from_u8(self.phase.load(Ordering::Acquire))
    }

    pub fn set_database_ok(&self, ok: bool) {
        self.database_seen.store(true, Ordering::Release);
        self.database_ok.store(ok, Ordering::Release);
    }

    /// Whether the database answered last time it was asked (false before it was asked).
    pub fn database_ok(&self) -> bool {
        self.database_ok.load(Ordering::Acquire)
    }

    /// `ok`, `down` or `unknown` (not reached yet).
    pub fn database_state(&self) -> &'static str {
        if !self.database_seen.load(Ordering::Acquire) {
            "unknown"
        } else if self.database_ok() {
            "ok"
        } else {
            "down"
        }
    }

    /// `postgres` or `sqlite`, once connected.
    pub fn set_backend(&self, backend: &'static str) {
        let _ = self.backend.set(backend);
    }

    pub fn backend(&self) -> Option<&'static str> {
        self.backend.get().copied()
    }

    pub fn set_spool_enabled(&self, on: bool) {
        self.spool_enabled.store(on, Ordering::Release);
    }

    pub fn spool_enabled(&self) -> bool {
        self.spool_enabled.load(Ordering::Acquire)
    }

    pub fn set_spool(&self, batches: u64, bytes: u64) {
        self.spooled_batches.store(batches, Ordering::Release);
        self.spooled_bytes.store(bytes, Ordering::Release);
    }

    /// Batches and bytes waiting in the accounting spool.
    pub fn spool(&self) -> (u64, u64) {
        (
            self.spooled_batches.load(Ordering::Acquire),
            self.spooled_bytes.load(Ordering::Acquire),
        )
    }

    /// Every startup phase is behind us (also true while draining).
    pub fn started(&self) -> bool {
        self.phase() >= Phase::Ready
    }

    /// Serving: traffic should be sent here. Stays true while the database is down, since
    /// authentication answers from memory and accounting goes to the spool; the body says
    /// `degraded`.
    pub fn ready(&self) -> bool {
        self.phase() == Phase::Ready
    }

    /// Ready, but a dependency is down or work waits in the spool.
    pub fn degraded(&self) -> bool {
        !self.database_ok() || self.spool().0 > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_drive_started_and_ready() {
        let h = Health::default();
        assert_eq!(h.phase(), Phase::Config);
        assert!(!h.started() && !h.ready());
        assert_eq!(h.database_state(), "unknown");
        h.set_phase(Phase::Caches);
        assert!(!h.started());
        h.set_database_ok(true);
        h.set_phase(Phase::Ready);
        assert!(h.started() && h.ready() && !h.degraded());
        h.set_spool(2, 100);
        assert!(h.ready() && h.degraded());
        h.set_phase(Phase::Draining);
        assert!(h.started() && !h.ready());
    }
}
