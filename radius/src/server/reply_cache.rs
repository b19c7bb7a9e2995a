//! Duplicate detection and the reply cache of RFC 5080 section 2.2.2: a request is the same
//! when its source address and port, Identifier and Request Authenticator are; a retransmit
//! gets the cached answer, and one that arrives while the first is still being worked on is
//! dropped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct RequestKey {
    pub src: SocketAddr,
    pub identifier: u8,
    pub authenticator: [u8; 16],
}

#[derive(Debug, Clone)]
pub(super) enum Cached {
    InProgress,
    Done(Arc<[u8]>),
}

#[derive(Debug)]
pub(super) struct ReplyCache {
    map: DashMap<RequestKey, (Instant, Cached), foldhash::fast::RandomState>,
    ttl: Duration,
    max_entries: usize,
}

pub(super) enum Lookup {
    Miss,
    InProgress,
    Hit(Arc<[u8]>),
}

impl ReplyCache {
    pub(super) fn new(ttl: Duration, max_entries: usize) -> Self {
        ReplyCache {
            map: DashMap::default(),
            ttl,
            max_entries,
        }
    }

    pub(super) fn lookup(&self, key: &RequestKey, now: Instant) -> Lookup {
        match self.map.get(key) {
            Some(e) if now.saturating_duration_since(e.0) < self.ttl => match &e.1 {
                Cached::InProgress => Lookup::InProgress,
                Cached::Done(b) => Lookup::Hit(Arc::clone(b)),
            },
            _ => Lookup::Miss,
        }
    }

    /// Records a request or its answer. False when the cache is full and it was not kept.
    pub(super) fn put(&self, key: RequestKey, value: Cached, now: Instant) -> bool {
        if self.map.len() >= self.max_entries && !self.map.contains_key(&key) {
            return false;
        }
        self.map.insert(key, (now, value));
        true
    }

    pub(super) fn remove(&self, key: &RequestKey) {
        self.map.remove(key);
    }

    pub(super) fn sweep(&self, now: Instant) {
        self.map
            .retain(|_, (at, _)| now.saturating_duration_since(*at) < self.ttl);
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.map.len()
    }
}

pub(super) async fn sweep_loop(handler: Arc<super::Handler>, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => handler.sweep(Instant::now()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: u8) -> RequestKey {
        RequestKey {
            src: "127.0.0.1:5000".parse().unwrap(),
            identifier: id,
            authenticator: [id; 16],
        }
    }

    #[test]
    fn hits_expire_and_bound() {
        let c = ReplyCache::new(Duration::from_secs(5), 2);
        let t = Instant::now();
        assert!(matches!(c.lookup(&key(1), t), Lookup::Miss));
        assert!(c.put(key(1), Cached::InProgress, t));
        assert!(matches!(c.lookup(&key(1), t), Lookup::InProgress));
        assert!(c.put(key(1), Cached::Done(Arc::from(&b"x"[..])), t));
        assert!(matches!(c.lookup(&key(1), t), Lookup::Hit(_)));
        assert!(c.put(key(2), Cached::InProgress, t));
        assert!(!c.put(key(3), Cached::InProgress, t));
        let later = t + Duration::from_secs(6);
        assert!(matches!(c.lookup(&key(1), later), Lookup::Miss));
        c.sweep(later);
        assert_eq!(c.len(), 0);
    }
}
