//! Duplicate detection and the reply cache of RFC 5080 section 2.2.2: a request is the same
//! when its source address and port, Identifier and Request Authenticator are; a retransmit
//! gets the cached answer, and one that arrives while the first is still being worked on is
//! dropped.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;

use crate::codec::RawPacket;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct RequestKey {
    pub src: SocketAddr,
    pub identifier: u8,
    pub authenticator: [u8; 16],
}

impl RequestKey {
    pub(super) fn of(pkt: &RawPacket<'_>, src: SocketAddr) -> RequestKey {
        RequestKey {
            src,
            identifier: pkt.identifier(),
            authenticator: *pkt.authenticator(),
        }
    }
}

#[derive(Debug, Clone)]
pub(super) enum Cached {
    InProgress,
    Done(Arc<[u8]>),
}

#[derive(Debug)]
pub(super) struct ReplyCache {
    map: DashMap<RequestKey, (Instant, Cached), foldhash::fast::RandomState>,
    /// Entries in `map`, kept alongside it: `DashMap::len` locks every shard.
    count: AtomicUsize,
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
            count: AtomicUsize::new(0),
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
        if self.count.load(Ordering::Relaxed) >= self.max_entries && !self.map.contains_key(&key) {
            return false;
        }
        if self.map.insert(key, (now, value)).is_none() {
            self.count.fetch_add(1, Ordering::Relaxed);
        }
        true
    }

    pub(super) fn remove(&self, key: &RequestKey) {
        if self.map.remove(key).is_some() {
            self.count.fetch_sub(1, Ordering::Relaxed);
        }
    }

    pub(super) fn sweep(&self, now: Instant) {
        let mut removed = 0;
        self.map.retain(|_, (at, _)| {
            let keep = now.saturating_duration_since(*at) < self.ttl;
            removed += usize::from(!keep);
            keep
        });
        self.count.fetch_sub(removed, Ordering::Relaxed);
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
