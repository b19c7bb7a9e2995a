//! The ACS's tests drive it through the CLI as operators do: queue tasks, read tasks and
//! devices back, with the environment that makes a server pick up changes quickly.

use std::time::Duration;

use serde_json::Value;

use super::{cli, eventually, TestDb};

/// The server picks up tasks queued by another process each second; failed tasks are
/// retried at once, twice at most.
pub const ENV: &[(&str, &str)] = &[
    ("EDGE_ACS_REFRESH_SECONDS", "1"),
    ("EDGE_ACS_TASK_RETRY_SECONDS", "0"),
    ("EDGE_ACS_TASK_MAX_ATTEMPTS", "2"),
];

pub fn task(db: &TestDb, id: i64) -> Value {
    serde_json::from_str(&cli(&db.url, &["tasks", "show", &id.to_string()])).unwrap()
}

pub fn queue(db: &TestDb, device: &str, args: &[&str]) -> i64 {
    let mut a = vec!["tasks", "add", device];
    a.extend_from_slice(args);
    let out = cli(&db.url, &a);
    out.split_whitespace()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{out}"))
}

/// Whether the device is in the registry within a few seconds (rows follow the answers).
pub fn registered(db: &TestDb, id: &str) -> bool {
    eventually(Duration::from_secs(10), || {
        cli(&db.url, &["devices", "list"]).contains(id)
    })
}

pub fn device_json(db: &TestDb, id: &str) -> (Value, String) {
    let out = cli(&db.url, &["devices", "show", id]);
    let end = out.find("\n}").unwrap() + 2;
    (
        serde_json::from_str(&out[..end]).unwrap(),
        out[end..].to_string(),
    )
}
