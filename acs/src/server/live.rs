//! The open CWMP sessions: by token (the connection's, or the cookie's) and by device, so a
//! device has one session at a time. Idle sessions are swept.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use edge_shared::metric_names as m;
use tokio::sync::Mutex;

use crate::session::Session;

type Hasher = foldhash::fast::RandomState;

/// One open session and what the service tracks around it.
#[derive(Debug)]
pub struct Live {
    pub session: Session,
    pub device: String,
    pub last_activity: Instant,
    /// The idle limit (the CPE's SessionTimeout when it gave one, within bounds).
    pub idle: Duration,
    /// Tasks and presets are looked up once, at the CPE's first empty POST.
    pub jobs_loaded: bool,
    /// Whether the connection that opened the session is still open.
    pub attached: bool,
    /// The device whose own credentials opened the session; an Inform that starts the
    /// session over must be that device's.
    pub bound: Option<String>,
}

pub type LiveRef = Arc<Mutex<Live>>;

#[derive(Default)]
pub struct Sessions {
    by_token: DashMap<u64, LiveRef, Hasher>,
    by_device: DashMap<String, u64, Hasher>,
    next: AtomicU64,
}

/// Why a new session was not opened.
#[derive(Debug, PartialEq, Eq)]
pub enum Busy {
    /// The device is in a session on another open connection.
    DeviceInSession,
}

impl Sessions {
    pub fn get(&self, token: u64) -> Option<LiveRef> {
        self.by_token.get(&token).map(|l| Arc::clone(&l))
    }

    /// Opens a session for `live.device`; a detached earlier one (its connection gone) is
    /// replaced, a live one refuses. Returns the new token and what was replaced.
    pub fn open(&self, live: Live) -> Result<(u64, Option<LiveRef>), Busy> {
        // Tokens are random-looking but unique: a counter mixed with a per-process key.
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let token = splitmix(n ^ process_key());
        let device = live.device.clone();
        let mut replaced = None;
        let entry = self.by_device.entry(device);
        if let dashmap::Entry::Occupied(e) = &entry {
            if let Some(old) = self.get(*e.get()) {
                let busy = match old.try_lock() {
                    Ok(o) => o.attached && o.last_activity.elapsed() < o.idle,
                    // Someone is working on it right now: it is live.
                    Err(_) => true,
                };
                if busy {
                    return Err(Busy::DeviceInSession);
                }
                self.by_token.remove(e.get());
                replaced = Some(old);
            }
        }
        entry.insert(token);
        self.by_token.insert(token, Arc::new(Mutex::new(live)));
        metrics::gauge!(m::ACS_SESSIONS_OPEN).set(self.by_token.len() as f64);
        Ok((token, replaced))
    }

    /// Forgets a session (ended, or swept).
    pub fn close(&self, token: u64, device: &str) {
        self.by_token.remove(&token);
        self.by_device.remove_if(device, |_, t| *t == token);
        metrics::gauge!(m::ACS_SESSIONS_OPEN).set(self.by_token.len() as f64);
    }

    /// Sessions idle past their limit, removed from the table.
    pub fn sweep(&self) -> Vec<LiveRef> {
        let mut stale = Vec::new();
        self.by_token.retain(|_, l| match l.try_lock() {
            Ok(g) if g.last_activity.elapsed() >= g.idle => {
                stale.push(Arc::clone(l));
                false
            }
            _ => true,
        });
        if !stale.is_empty() {
            self.by_device.retain(|_, t| self.by_token.contains_key(t));
            metrics::gauge!(m::ACS_SESSIONS_OPEN).set(self.by_token.len() as f64);
        }
        stale
    }
}

impl Sessions {
    /// Every session, removed from the table (at shutdown).
    pub fn sweep_all(&self) -> Vec<LiveRef> {
        let all: Vec<LiveRef> = self.by_token.iter().map(|l| Arc::clone(&l)).collect();
        self.by_token.clear();
        self.by_device.clear();
        all
    }
}

fn process_key() -> u64 {
    static KEY: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *KEY.get_or_init(rand::random)
}

/// SplitMix64's finalizer: a bijection, so distinct counters give distinct tokens.
fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
