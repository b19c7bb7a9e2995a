//! Network namespaces made by a test: two hosts joined by a veth pair, so that a WireGuard
//! tunnel between them carries real traffic without touching the machine's own network.
//! The namespaces (and every process left in them) go when the pair is dropped.

use std::fs::File;
use std::os::fd::AsFd;
use std::process::{Command, Output};

use nix::sched::{setns, CloneFlags};

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip runs");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two namespaces, `edge` (198.18.0.1/24) and `far` (198.18.0.2/24), joined by a veth pair,
/// and a WireGuard interface name for each side (unique on the machine: userspace
/// implementations keep their sockets in one directory for all namespaces).
pub struct NetnsPair {
    pub edge: String,
    pub far: String,
    pub edge_iface: String,
    pub far_iface: String,
}

impl NetnsPair {
    /// `tag` keeps the names of tests running at once apart.
    pub fn new(tag: &str) -> NetnsPair {
        let id = std::process::id();
        let short = id % 100_000;
        let pair = NetnsPair {
            edge: format!("edge-{tag}-{id}"),
            far: format!("far-{tag}-{id}"),
            edge_iface: format!("e{tag}{short}"),
            far_iface: format!("f{tag}{short}"),
        };
        for ns in [&pair.edge, &pair.far] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
            ip(&["netns", "add", ns]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        ip(&[
            "link", "add", "veth-e", "netns", &pair.edge, "type", "veth", "peer", "name", "veth-f",
            "netns", &pair.far,
        ]);
        ip(&[
            "-n",
            &pair.edge,
            "addr",
            "add",
            "198.18.0.1/24",
            "dev",
            "veth-e",
        ]);
        ip(&[
            "-n",
            &pair.far,
            "addr",
            "add",
            "198.18.0.2/24",
            "dev",
            "veth-f",
        ]);
        ip(&["-n", &pair.edge, "link", "set", "veth-e", "up"]);
        ip(&["-n", &pair.far, "link", "set", "veth-f", "up"]);
        pair
    }

    /// Runs a command inside namespace `ns` with extra environment.
    pub fn run(ns: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]).args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().expect("ip netns exec runs")
    }
}

impl Drop for NetnsPair {
    fn drop(&mut self) {
        for ns in [&self.edge, &self.far] {
            if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-9", pid]).output();
                }
            }
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        for iface in [&self.edge_iface, &self.far_iface] {
            let _ = std::fs::remove_file(format!("/var/run/wireguard/{iface}.sock"));
        }
    }
}

/// Moves the calling thread into namespace `ns` until the guard is dropped. Sockets made
/// meanwhile, and processes spawned, belong to `ns` for good.
pub struct Inside {
    home: File,
}

impl Inside {
    pub fn enter(ns: &str) -> Inside {
        let home = File::open("/proc/thread-self/ns/net").expect("own namespace");
        let target = File::open(format!("/var/run/netns/{ns}")).expect("namespace file");
        setns(target.as_fd(), CloneFlags::CLONE_NEWNET).expect("setns");
        Inside { home }
    }
}

impl Drop for Inside {
    fn drop(&mut self) {
        let _ = setns(self.home.as_fd(), CloneFlags::CLONE_NEWNET);
    }
}
