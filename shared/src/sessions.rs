//! Open accounting sessions in memory, by unique id, username, framed address and NAS.
//! Rebuilt from the database at start; changed only by the accounting writer after each
//! commit (the reaper's closes go through the writer too), read by anyone.

use std::collections::HashSet;
use std::net::IpAddr;

use dashmap::DashMap;
use foldhash::fast::RandomState;

use crate::accounting::ActiveSession;

#[derive(Debug, Default)]
pub struct ActiveSessions {
    by_id: DashMap<String, ActiveSession, RandomState>,
    by_user: DashMap<String, HashSet<String>, RandomState>,
    by_ip: DashMap<IpAddr, String, RandomState>,
    by_nas: DashMap<String, HashSet<String>, RandomState>,
}

impl ActiveSessions {
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Records a session as open (or refreshes it).
    pub fn upsert(&self, s: ActiveSession) {
        if let Some(mut old) = self.by_id.get_mut(&s.unique_id) {
            // The common case, an Interim-Update: same user, NAS and address.
            if old.username == s.username
                && old.nas_ip_address == s.nas_ip_address
                && old.framed_ip == s.framed_ip
            {
                *old = s;
                return;
            }
            if let Some(ip) = old.framed_ip.filter(|ip| Some(*ip) != s.framed_ip) {
                drop(old);
                self.by_ip.remove_if(&ip, |_, id| *id == s.unique_id);
            }
        }
        self.by_user
            .entry(s.username.clone())
            .or_default()
            .insert(s.unique_id.clone());
        self.by_nas
            .entry(s.nas_ip_address.clone())
            .or_default()
            .insert(s.unique_id.clone());
        if let Some(ip) = s.framed_ip {
            self.by_ip.insert(ip, s.unique_id.clone());
        }
        self.by_id.insert(s.unique_id.clone(), s);
    }

    /// Forgets a session that has closed.
    pub fn remove(&self, unique_id: &str) {
        let Some((_, s)) = self.by_id.remove(unique_id) else {
            return;
        };
        let drop_from = |map: &DashMap<String, HashSet<String>, RandomState>, key: &str| {
            if let Some(mut set) = map.get_mut(key) {
                set.remove(unique_id);
            }
            map.remove_if(key, |_, set| set.is_empty());
        };
        drop_from(&self.by_user, &s.username);
        drop_from(&self.by_nas, &s.nas_ip_address);
        if let Some(ip) = s.framed_ip {
            self.by_ip.remove_if(&ip, |_, id| id == unique_id);
        }
    }

    pub fn get(&self, unique_id: &str) -> Option<ActiveSession> {
        self.by_id.get(unique_id).map(|s| s.clone())
    }

    /// How many sessions the user has open (for Simultaneous-Use).
    pub fn count_for_user(&self, username: &str) -> usize {
        self.by_user.get(username).map_or(0, |s| s.len())
    }

    pub fn for_user(&self, username: &str) -> Vec<ActiveSession> {
        self.ids_to_sessions(self.by_user.get(username).map(|s| s.clone()))
    }

    pub fn for_nas(&self, nas_ip_address: &str) -> Vec<ActiveSession> {
        self.ids_to_sessions(self.by_nas.get(nas_ip_address).map(|s| s.clone()))
    }

    pub fn by_framed_ip(&self, ip: IpAddr) -> Option<ActiveSession> {
        let id = self.by_ip.get(&ip)?.clone();
        self.get(&id)
    }

    fn ids_to_sessions(&self, ids: Option<HashSet<String>>) -> Vec<ActiveSession> {
        ids.into_iter()
            .flatten()
            .filter_map(|id| self.get(&id))
            .collect()
    }

    /// Sessions nothing has been heard of for `multiplier` interim intervals plus `grace`
    /// seconds, as of `now` (Unix seconds). `default_interval` stands in for sessions whose
    /// interval is unknown.
    pub fn stale(
        &self,
        now: i64,
        default_interval: i64,
        multiplier: i64,
        grace: i64,
    ) -> Vec<(String, i64)> {
        self.by_id
            .iter()
            .filter(|s| {
                let interval = s.interval.filter(|i| *i > 0).unwrap_or(default_interval);
                s.last_seen + interval * multiplier + grace < now
            })
            .map(|s| (s.unique_id.clone(), s.last_seen))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(id: &str, user: &str, ip: &str, last_seen: i64) -> ActiveSession {
        ActiveSession {
            unique_id: id.into(),
            session_id: id.into(),
            username: user.into(),
            nas_ip_address: "10.0.0.1".into(),
            framed_ipv6_prefix: None,
            delegated_ipv6_prefix: None,
            framed_ip: ip.parse().ok(),
            interval: Some(60),
            last_seen,
        }
    }

    #[test]
    fn indexes_follow_upserts_and_removals() {
        let a = ActiveSessions::default();
        a.upsert(session("1", "alice", "100.64.0.1", 100));
        a.upsert(session("2", "alice", "100.64.0.2", 100));
        a.upsert(session("3", "bob", "100.64.0.3", 100));
        assert_eq!(a.count_for_user("alice"), 2);
        assert_eq!(a.for_nas("10.0.0.1").len(), 3);
        // Re-addressed: the old address no longer points at it.
        a.upsert(session("2", "alice", "100.64.0.9", 200));
        assert!(a.by_framed_ip("100.64.0.2".parse().unwrap()).is_none());
        assert_eq!(
            a.by_framed_ip("100.64.0.9".parse().unwrap())
                .unwrap()
                .unique_id,
            "2"
        );
        a.remove("1");
        a.remove("2");
        assert_eq!(a.count_for_user("alice"), 0);
        assert!(a.by_framed_ip("100.64.0.1".parse().unwrap()).is_none());
        assert_eq!(a.len(), 1);
        // Its own 60 s interval (not the 300 s default), x3, +30 s grace: stale once more
        // than 210 s have passed since it was last seen at 100.
        assert!(a.stale(310, 300, 3, 30).is_empty());
        assert_eq!(a.stale(311, 300, 3, 30), vec![("3".to_string(), 100)]);
    }
}
