//! NAS links over WireGuard, over a real tunnel: two network namespaces made by the test,
//! boringtun (userspace WireGuard) on both ends, `wg` and `wg-quick` from wireguard-tools,
//! radclient and a NAS simulator in the far namespace talking to the edge through the tunnel.

mod common;

use std::path::Path;
use std::time::Duration;

use common::api_client::{call, error_code, ok, token};
use common::nas_sim::NasSim;
use common::netns::{Inside, NetnsPair};
use common::{eventually, Backend, Server, TestDb};
use serde_json::json;

const SECRET: &str = "tunnel-s3cret";

fn need_tools() {
    for tool in ["ip", "wg", "wg-quick", "boringtun-cli", "radclient"] {
        let found = std::process::Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(found, "{tool} is missing: scripts/test.sh installs it");
    }
}

/// The edge's `[wireguard]` settings for a test: interface `iface`, key in `dir`.
fn wg_env(iface: &str, dir: &Path) -> Vec<(String, String)> {
    [
        ("EDGE_WIREGUARD_ENABLED", "true".to_string()),
        ("EDGE_WIREGUARD_INTERFACE", iface.to_string()),
        (
            "EDGE_WIREGUARD_PRIVATE_KEY_FILE",
            dir.join("edge.key").display().to_string(),
        ),
        ("EDGE_WIREGUARD_MANAGEMENT_PREFIX", "10.77.0.0/24".into()),
        ("EDGE_WIREGUARD_ENDPOINT", "198.18.0.1:51820".into()),
        (
            "EDGE_WIREGUARD_USERSPACE_COMMAND",
            "boringtun-cli --foreground --disable-drop-privileges".into(),
        ),
        ("EDGE_WIREGUARD_STATUS_SECONDS", "1".into()),
        ("EDGE_WIREGUARD_RESYNC_SECONDS", "2".into()),
        ("EDGE_RADIUS_AUTH_LISTEN", "0.0.0.0:1812".into()),
        ("EDGE_RADIUS_ACCT_LISTEN", "0.0.0.0:1813".into()),
        ("EDGE_API_COA_TIMEOUT_MS", "500".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn as_refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// The public keys of the interface's peers, as `wg` (wireguard-tools) sees them.
fn wg_peers(ns: &str, iface: &str) -> Vec<String> {
    let out = NetnsPair::run(ns, &["wg", "show", iface, "peers"], &[]);
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// `wg show IFACE dump` lines of peers: key, psk, endpoint, allowed ips, handshake, rx, tx, keepalive.
fn wg_dump(ns: &str, iface: &str) -> Vec<Vec<String>> {
    let out = NetnsPair::run(ns, &["wg", "show", iface, "dump"], &[]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

/// radclient in namespace `ns`: its output (stdout and stderr).
fn radclient_in(ns: &str, server: &str, kind: &str, attrs: &str) -> String {
    let mut c = std::process::Command::new("ip");
    c.args(["netns", "exec", ns, "radclient", "-x", "-r", "2", "-t", "1"])
        .args([server, kind, SECRET]);
    let out = common::with_input(c, attrs.as_bytes());
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `wg pubkey` of a private key.
fn wg_pubkey(private: &str) -> String {
    let mut c = std::process::Command::new("wg");
    c.arg("pubkey");
    let out = common::with_input(c, private.as_bytes());
    String::from_utf8(out.stdout)
        .expect("base64")
        .trim()
        .to_string()
}

fn access_request(user: &str, password: &str) -> String {
    format!(
        "User-Name = \"{user}\"\nUser-Password = \"{password}\"\nMessage-Authenticator = 0x00\n"
    )
}

/// The NAS side: its wg-quick file brought up with boringtun in namespace `ns`.
fn wg_quick_up(ns: &str, conf: &Path) {
    let out = NetnsPair::run(
        ns,
        &["wg-quick", "up", &conf.display().to_string()],
        &[
            ("WG_QUICK_USERSPACE_IMPLEMENTATION", "boringtun-cli"),
            ("WG_SUDO", "true"),
        ],
    );
    assert!(
        out.status.success(),
        "wg-quick up: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_nas_authenticates_and_is_disconnected_through_its_tunnel_and_removal_cuts_it_off() {
    need_tools();
    let net = NetnsPair::new("wg1");
    let (iface, nas_iface) = (net.edge_iface.clone(), net.far_iface.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    let db = TestDb::new(Backend::Sqlite);
    common::cli_line(&db.url, "subscribers add --username alice --password pw");
    let api = token(&db, "ops", "write");
    let env = wg_env(&iface, dir.path());

    // The edge, its API and its interface live in the edge namespace.
    let _inside = Inside::enter(&net.edge);
    let server = Server::start_with(&db.url, &as_refs(&env));
    let get = |path: &str| ok(call(&server, Some(&api), "GET", path, None), 200);
    assert!(wg_peers(&net.edge, &iface).is_empty());

    // Registration: the edge generates the NAS's key pair and assigns a tunnel address.
    let created = ok(
        call(
            &server,
            Some(&api),
            "POST",
            "/api/v1/nas",
            Some(json!({"name": "bng-1", "secret": SECRET, "vendor": "mikrotik", "wireguard": {}})),
        ),
        201,
    );
    let t = &created["data"]["wireguard"];
    let nas_key = t["public_key"].as_str().expect("public key").to_string();
    assert_eq!(created["data"]["address"], "10.77.0.2");
    assert_eq!(t["tunnel_address"], "10.77.0.2");
    let private = t["private_key"].as_str().expect("private key shown once");
    let derived = wg_pubkey(private);
    assert_eq!(
        derived.trim(),
        nas_key,
        "the private key shown belongs to the peer"
    );
    let routeros = t["config"]["routeros"].as_str().expect("RouterOS commands");
    assert!(routeros.contains(&format!("private-key=\"{private}\"")));
    assert!(routeros.contains("/radius add address=10.77.0.1 "));
    assert!(routeros.contains(&format!("secret=\"{SECRET}\"")));
    // The listing never shows it again.
    let listed = get("/api/v1/nas/bng-1");
    assert!(listed["data"]["wireguard"].get("private_key").is_none());
    assert!(!listed.to_string().contains(private));

    // The peer is on the interface with the tunnel address as its only allowed IP.
    assert!(
        eventually(Duration::from_secs(10), || wg_peers(&net.edge, &iface)
            .contains(&nas_key)),
        "the peer reached the interface"
    );
    let dump = wg_dump(&net.edge, &iface);
    assert_eq!(dump.len(), 1);
    assert_eq!(dump[0][3], "10.77.0.2/32");
    assert_eq!(dump[0][7], "25");

    // The NAS pastes the wg-quick file as it came and brings its side up.
    let conf = dir.path().join(format!("{nas_iface}.conf"));
    std::fs::write(
        &conf,
        t["config"]["wg_quick"].as_str().expect("wg-quick file"),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    wg_quick_up(&net.far, &conf);
    let sim = {
        let _far = Inside::enter(&net.far);
        NasSim::start_on("10.77.0.2:3799", SECRET, &["tun-1"])
    };

    // RADIUS from the NAS arrives through the tunnel from its tunnel address.
    let out = radclient_in(
        &net.far,
        "10.77.0.1:1812",
        "auth",
        &access_request("alice", "pw"),
    );
    assert!(out.contains("Received Access-Accept"), "{out}");
    assert!(out.contains("from 10.77.0.1:1812 to 10.77.0.2"), "{out}");
    let out = radclient_in(
        &net.far,
        "10.77.0.1:1813",
        "acct",
        "User-Name = \"alice\"\nAcct-Status-Type = Start\nAcct-Session-Id = \"tun-1\"\n\
         NAS-IP-Address = 10.77.0.2\nFramed-IP-Address = 100.64.0.20\n",
    );
    assert!(out.contains("Received Accounting-Response"), "{out}");
    server.settled();

    // Disconnect goes back through the tunnel, signed with the NAS's secret.
    let answer = ok(
        call(
            &server,
            Some(&api),
            "POST",
            "/api/v1/subscribers/alice/disconnect",
            None,
        ),
        200,
    );
    assert_eq!(answer["data"][0]["result"], "ack", "{answer}");
    let (code, attrs) = sim.last();
    assert_eq!(code, 40, "a Disconnect-Request");
    assert_eq!(
        common::nas_sim::attr(&attrs, 44),
        Some(&b"tun-1"[..]),
        "it names the session"
    );
    assert_eq!(sim.log.lock().unwrap().forged, 0);

    // Status: a handshake and traffic, in the API, from `wg`, and in the metrics.
    let status = get("/api/v1/nas/bng-1/wireguard");
    let s = &status["data"];
    assert_eq!(s["present"], true, "{status}");
    assert!(
        s["last_handshake_age_seconds"]
            .as_u64()
            .is_some_and(|a| a < 120),
        "{status}"
    );
    assert!(s["rx_bytes"].as_u64().unwrap() > 0 && s["tx_bytes"].as_u64().unwrap() > 0);
    assert_eq!(
        s["endpoint"].as_str().unwrap().split(':').next(),
        Some("198.18.0.2")
    );
    let dump = wg_dump(&net.edge, &iface);
    assert!(
        dump[0][2].starts_with("198.18.0.2:"),
        "wg shows the NAS's endpoint"
    );
    assert_ne!(dump[0][5], "0", "wg shows bytes received");
    assert!(
        eventually(Duration::from_secs(10), || server
            .metric("edge_wireguard_peer_receive_bytes_total{nas=\"bng-1\"}")
            > 0.0),
        "per-NAS transfer counters in the metrics"
    );
    assert!(
        server.metric("edge_wireguard_peer_last_handshake_timestamp_seconds{nas=\"bng-1\"}")
            > 1.0e9
    );
    assert_eq!(server.metric("edge_wireguard_peers_up"), 1.0);
    let iface_view = get("/api/v1/wireguard");
    assert_eq!(iface_view["data"]["address"], "10.77.0.1");
    assert_eq!(iface_view["data"]["tunnels"][0]["nas"], "bng-1");
    let usage = get("/api/v1/pools/nas-tunnels/usage");
    assert_eq!(usage["data"]["tunnels"], 1);
    // The data plane's IPAM never claims blocks of a management pool.
    let blocks = usage["data"]["blocks"].as_array().expect("blocks");
    assert!(!blocks.is_empty());
    assert!(blocks.iter().all(|b| b["owner"].is_null()), "{usage}");

    // A later export has placeholders where the secrets were.
    let later = call(
        &server,
        Some(&api),
        "GET",
        "/api/v1/nas/bng-1/wireguard/config?format=wg-quick",
        None,
    );
    assert_eq!(later.status, 200);
    assert!(later.body.contains("PrivateKey = <the NAS's private key>"));
    assert!(later.body.contains("AllowedIPs = 10.77.0.1/32"));
    assert!(!later.body.contains(private));

    // Removal: the peer leaves the interface, the NAS is cut off, the address is free.
    ok(
        call(&server, Some(&api), "DELETE", "/api/v1/nas/bng-1", None),
        204,
    );
    assert!(
        eventually(Duration::from_secs(10), || !wg_peers(&net.edge, &iface)
            .contains(&nas_key)),
        "the peer left the interface"
    );
    assert!(
        eventually(Duration::from_secs(10), || !server
            .metrics()
            .contains("nas=\"bng-1\"")),
        "the removed NAS's tunnel series left /metrics"
    );
    let out = radclient_in(
        &net.far,
        "10.77.0.1:1812",
        "auth",
        &access_request("alice", "pw"),
    );
    assert!(!out.contains("Received"), "{out}");
    let usage = get("/api/v1/pools/nas-tunnels/usage");
    assert_eq!(usage["data"]["tunnels"], 0);
    let next = get("/api/v1/pools/nas-tunnels/available");
    assert_eq!(next["data"][0], "10.77.0.2", "{next}");
    let gone = call(
        &server,
        Some(&api),
        "GET",
        "/api/v1/nas/bng-1/wireguard",
        None,
    );
    assert_eq!(gone.status, 404);
    assert_eq!(error_code(&gone), "not_found");
}

/// A key pair from `wg genkey` and `wg pubkey`: (private, public).
fn wg_keys() -> (String, String) {
    let private = std::process::Command::new("wg")
        .arg("genkey")
        .output()
        .expect("wg genkey")
        .stdout;
    let private = String::from_utf8(private)
        .expect("base64")
        .trim()
        .to_string();
    let public = wg_pubkey(&private);
    (private, public)
}

/// The CLI with the `[wireguard]` settings (another process than the server).
fn cli_wg(db: &str, env: &[(String, String)], args: &[&str]) -> std::process::Output {
    let mut c = std::process::Command::new(common::BIN);
    c.args(args)
        .env("EDGE_DATABASE_URL", db)
        .env_remove("EDGE_CONFIG");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("the CLI runs")
}

fn cli_wg_ok(db: &str, env: &[(String, String)], args: &[&str]) -> String {
    let out = cli_wg(db, env, args);
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn peers_follow_the_nas_table_at_start_across_processes_and_after_tampering() {
    need_tools();
    let net = NetnsPair::new("wg2");
    let iface = net.edge_iface.clone();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = TestDb::new(Backend::Sqlite);
    let env = wg_env(&iface, dir.path());

    // NAS registered with their own keys while no server runs.
    let keys: Vec<(String, String)> = (0..4).map(|_| wg_keys()).collect();
    for (i, (_, public)) in keys.iter().take(3).enumerate() {
        let out = cli_wg_ok(
            &db.url,
            &env,
            &[
                "nas",
                "add",
                "--name",
                &format!("n{i}"),
                "--secret",
                SECRET,
                "--wireguard",
                "--public-key",
                public,
            ],
        );
        assert!(out.contains(&format!("is 10.77.0.{}", i + 2)), "{out}");
        assert!(
            out.contains("private-key=\"<the NAS's private key>\""),
            "{out}"
        );
        assert!(!out.contains("shown once"), "{out}");
    }
    // The same key twice, an address with a tunnel, and WireGuard off are refused.
    let dup = cli_wg(
        &db.url,
        &env,
        &[
            "nas",
            "add",
            "--name",
            "dup",
            "--secret",
            "x",
            "--wireguard",
            "--public-key",
            &keys[0].1,
        ],
    );
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));
    let both = cli_wg(
        &db.url,
        &env,
        &[
            "nas",
            "add",
            "--name",
            "b",
            "--secret",
            "x",
            "--wireguard",
            "--address",
            "10.0.0.1",
        ],
    );
    assert!(!both.status.success());
    let plan = cli_wg(
        &db.url,
        &env,
        &["plans", "add", "--name", "p", "--pool", "nas-tunnels"],
    );
    assert!(
        !plan.status.success(),
        "a plan cannot hand out tunnel addresses"
    );
    assert!(String::from_utf8_lossy(&plan.stderr).contains("NAS tunnel addresses"));
    let off = common::cli_output(
        &db.url,
        &["nas", "add", "--name", "o", "--secret", "x", "--wireguard"],
    );
    assert!(String::from_utf8_lossy(&off.stderr).contains("WireGuard is off"));

    // The interface already runs (a sidecar, or a previous life of the server) with a peer
    // nobody registered and a registered one with the wrong address.
    let up = NetnsPair::run(
        &net.edge,
        &["boringtun-cli", &iface, "--disable-drop-privileges"],
        &[("WG_SUDO", "true")],
    );
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let (_, stranger) = wg_keys();
    let old_key = dir.path().join("old.key");
    std::fs::write(&old_key, wg_keys().0).unwrap();
    let set = NetnsPair::run(
        &net.edge,
        &[
            "wg",
            "set",
            &iface,
            "private-key",
            &old_key.display().to_string(),
        ],
        &[],
    );
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    for (key, ip) in [(&stranger, "10.77.0.200/32"), (&keys[0].1, "10.77.0.99/32")] {
        let set = NetnsPair::run(
            &net.edge,
            &["wg", "set", &iface, "peer", key, "allowed-ips", ip],
            &[],
        );
        assert!(
            set.status.success(),
            "{}",
            String::from_utf8_lossy(&set.stderr)
        );
    }

    // At start the interface is made to match the table before the server reports ready.
    let _inside = Inside::enter(&net.edge);
    let mut server = Server::start_with(&db.url, &as_refs(&env));
    let registered: Vec<String> = keys.iter().take(3).map(|(_, p)| p.clone()).collect();
    assert_eq!(
        sorted(wg_peers(&net.edge, &iface)),
        sorted(registered.clone())
    );
    let dump = wg_dump(&net.edge, &iface);
    let n0 = dump.iter().find(|l| l[0] == keys[0].1).expect("n0's peer");
    assert_eq!(n0[3], "10.77.0.2/32", "the wrong address was put right");
    assert_eq!(server.metric("edge_wireguard_peers"), 3.0);

    // Another process registers and removes NAS: the running server follows.
    cli_wg_ok(
        &db.url,
        &env,
        &[
            "nas",
            "add",
            "--name",
            "n3",
            "--secret",
            SECRET,
            "--wireguard",
            "--public-key",
            &keys[3].1,
        ],
    );
    assert!(
        eventually(Duration::from_secs(10), || wg_peers(&net.edge, &iface)
            .contains(&keys[3].1)),
        "a NAS added by another process reached the interface"
    );
    cli_wg_ok(&db.url, &env, &["nas", "remove", "n1"]);
    assert!(
        eventually(Duration::from_secs(10), || !wg_peers(&net.edge, &iface)
            .contains(&keys[1].1)),
        "a NAS removed by another process left the interface"
    );

    // Someone removes a peer by hand: the periodic resync puts it back.
    NetnsPair::run(
        &net.edge,
        &["wg", "set", &iface, "peer", &keys[0].1, "remove"],
        &[],
    );
    assert!(
        eventually(Duration::from_secs(10), || wg_peers(&net.edge, &iface)
            .contains(&keys[0].1)),
        "the resync restored the peer"
    );

    // The API refuses what cannot be a tunnel.
    let api = token(&db, "ops", "write");
    let with_address = call(
        &server,
        Some(&api),
        "POST",
        "/api/v1/nas",
        Some(json!({"name": "x", "secret": "s", "address": "10.0.0.9", "wireguard": {}})),
    );
    assert_eq!(with_address.status, 422, "{}", with_address.body);
    let bad_key = call(
        &server,
        Some(&api),
        "POST",
        "/api/v1/nas",
        Some(json!({"name": "x", "secret": "s", "wireguard": {"public_key": "nope"}})),
    );
    assert_eq!(bad_key.status, 422);
    assert_eq!(bad_key.json()["error"]["details"][0]["field"], "public_key");
    let taken = call(
        &server,
        Some(&api),
        "POST",
        "/api/v1/nas",
        Some(json!({"name": "x", "secret": "s", "wireguard": {"public_key": keys[0].1}})),
    );
    assert_eq!(taken.status, 409);
    let routeros = call(
        &server,
        Some(&api),
        "GET",
        "/api/v1/nas/n0/wireguard/config",
        None,
    );
    assert!(
        routeros.body.contains("/interface wireguard peers add"),
        "{}",
        routeros.body
    );
    let cli_status = cli_wg_ok(&db.url, &env, &["nas", "tunnels"]);
    assert!(
        cli_status.contains("n0") && cli_status.contains("10.77.0.2"),
        "{cli_status}"
    );

    // A NAS removed while the server is down is gone from the interface once it is back.
    server.kill();
    cli_wg_ok(&db.url, &env, &["nas", "remove", "n2"]);
    let server = Server::start_with(&db.url, &as_refs(&env));
    assert_eq!(
        sorted(wg_peers(&net.edge, &iface)),
        sorted(vec![keys[0].1.clone(), keys[3].1.clone()])
    );
    drop(server);
}
