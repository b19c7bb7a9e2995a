//! Operations as Kubernetes and an on-call engineer see them: startup phases and health
//! bodies, a clean drain on SIGTERM under load, and a PostgreSQL outage under load with the
//! accounting spool. Real binary, real PostgreSQL clusters of the tests' own.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    assert_acked_stored_once, cli, cli_line, eventually, http_get, read_acked, sql, Backend,
    PgCluster, Server, TestDb,
};
use serde_json::Value;

const SECRET: &str = "ops-s3cret";
const LOAD: &str = env!("CARGO_BIN_EXE_radius-load");

fn health(s: &Server, probe: &str) -> (u16, Value) {
    let (code, body) = http_get(s.http, &format!("/health/{probe}")).expect("health answers");
    (code, serde_json::from_str(&body).expect("JSON health body"))
}

/// A NAS, and `users` subscribers as `radius-load` names them (user000000 / pw0 …).
fn provision(url: &str, users: usize) {
    cli_line(
        url,
        &format!("nas add --name bng1 --address 127.0.0.1 --secret {SECRET}"),
    );
    if users > 0 {
        let out = Command::new(LOAD)
            .args(["csv", "--users", &users.to_string()])
            .output()
            .expect("radius-load csv");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("users.csv");
        std::fs::write(&file, out.stdout).unwrap();
        cli(url, &["subscribers", "import", file.to_str().unwrap()]);
    }
}

/// `radius-load load` in the background for `seconds`.
fn load(
    server: std::net::SocketAddr,
    method: &str,
    seconds: u32,
    acked: Option<&std::path::Path>,
) -> std::process::Child {
    let mut c = Command::new(LOAD);
    c.args([
        "load",
        "--method",
        method,
        "--seconds",
        &seconds.to_string(),
    ])
    .args(["--server", &server.to_string(), "--secret", SECRET])
    .args(["--users", "500", "--threads", "1", "--window", "16"])
    .stdout(Stdio::piped());
    if let Some(p) = acked {
        c.args(["--acked", p.to_str().unwrap()]);
    }
    c.spawn().expect("radius-load")
}

/// The `key=value` figures of radius-load's RESULT line.
fn result(child: std::process::Child) -> std::collections::HashMap<String, String> {
    let out = child.wait_with_output().expect("radius-load ends");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = text
        .lines()
        .find(|l| l.starts_with("RESULT"))
        .unwrap_or_else(|| panic!("no RESULT in {text}"));
    line.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Startup waits for a database that is not there yet, and says so on /health/startup;
/// once it is there the body names every dependency.
#[test]
fn startup_phases_and_health_bodies() {
    let pg = PgCluster::start("phases");
    let url = pg.database("edge");
    provision(&url, 0);
    pg.stop();
    let s = Server::spawn(&url, &[], &[]);
    // Up and saying where it is, once the first attempt to reach the database failed.
    assert!(eventually(Duration::from_secs(20), || {
        http_get(s.http, "/health/startup").is_some_and(|(_, b)| b.contains("\"down\""))
    }));
    let (code, body) = health(&s, "startup");
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["status"], "starting");
    assert_eq!(body["phase"], "database");
    assert_eq!(body["checks"]["database"]["state"], "down");
    assert_eq!(body["checks"]["radius"], "pending");
    assert_eq!(health(&s, "ready").0, 503);
    // Alive all along: a slow start is not a dead process.
    assert_eq!(health(&s, "live").0, 200);

    pg.resume();
    let mut s = s;
    assert!(s.wait_ready(), "ready once the database is back");
    for probe in ["startup", "ready", "live"] {
        let (code, body) = health(&s, probe);
        assert_eq!(code, 200, "{probe}: {body}");
        assert_eq!(body["status"], "ok");
        assert_eq!(body["phase"], "ready");
        assert_eq!(body["pid"], s.pid());
        assert_eq!(body["checks"]["database"]["state"], "ok");
        assert_eq!(body["checks"]["database"]["backend"], "postgres");
        for part in ["radius", "acs", "api"] {
            assert_eq!(body["checks"][part], "listening", "{part}: {body}");
        }
        assert_eq!(body["checks"]["accounting_spool"]["state"], "off");
    }

    // A process that does not run a role says so.
    let db = TestDb::new(Backend::Sqlite);
    let api_only = Server::start_args(&db.url, &["--roles", "api"], &[]);
    let (_, body) = health(&api_only, "ready");
    assert_eq!(body["checks"]["radius"], "off");
    assert_eq!(body["checks"]["acs"], "off");
    assert_eq!(body["checks"]["database"]["backend"], "sqlite");
}

/// A critical failure at start exits non-zero with a message that says what failed and
/// does not show the database password.
#[test]
fn critical_failures_exit_with_a_clear_message() {
    let port = common::free_tcp_port();
    let started = Instant::now();
    let out = Command::new(common::BIN)
        .arg("serve")
        .env(
            "EDGE_DATABASE_URL",
            format!("postgres://edge:hunter2@127.0.0.1:{port}/edge"),
        )
        .env("EDGE_DATABASE_STARTUP_WAIT_SECONDS", "1")
        .env(
            "EDGE_HTTP_LISTEN",
            format!("127.0.0.1:{}", common::free_tcp_port()),
        )
        .env_remove("EDGE_CONFIG")
        .output()
        .expect("binary runs");
    assert!(!out.status.success());
    assert!(started.elapsed() < Duration::from_secs(30));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not reachable within 1 s"), "{err}");
    assert!(err.contains("edge:***@127.0.0.1"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");

    // A port already taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let db = TestDb::new(Backend::Sqlite);
    let out = Command::new(common::BIN)
        .arg("serve")
        .env("EDGE_DATABASE_URL", &db.url)
        .env("EDGE_HTTP_LISTEN", taken.local_addr().unwrap().to_string())
        .env_remove("EDGE_CONFIG")
        .output()
        .expect("binary runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot bind HTTP"), "{err}");
}

/// SIGTERM in the middle of an accounting load: readiness goes first, every answered
/// record is stored, and the process exits 0 well within the drain deadline.
#[test]
fn sigterm_drains_under_load() {
    let db = TestDb::new(Backend::Postgres);
    provision(&db.url, 0);
    let mut server = Server::start(&db.url);
    let dir = tempfile::tempdir().unwrap();
    let acked = dir.path().join("acked");
    let run = load(server.acct, "acct-start", 4, Some(&acked));
    std::thread::sleep(Duration::from_millis(1500));
    let sent = Instant::now();
    let ok = Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let status = loop {
        if let Some(st) = server.try_wait() {
            break st;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(30),
            "not gone within the drain deadline"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit {status:?}");
    let _ = result(run);
    let acked = read_acked(&acked);
    assert!(acked.len() > 100, "the load got answers before SIGTERM");
    // Every acknowledged record is in the journal or the table; a start folds the rest.
    let _again = Server::start(&db.url);
    assert_acked_stored_once(&db.url, &acked);
}

/// PostgreSQL stopped in the middle of an authentication and accounting load, then started
/// again: authentication of known subscribers never fails, accounting goes on being
/// acknowledged from the spool, and once the database is back every acknowledged record is
/// in it exactly once.
#[test]
fn database_outage_under_load() {
    let pg = PgCluster::start("outage");
    let url = pg.database("edge");
    provision(&url, 500);
    let spool = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        &url,
        &[
            ("EDGE_ACCOUNTING_SPOOL_DIR", spool.path().to_str().unwrap()),
            ("EDGE_ACCOUNTING_SPOOL_AFTER_MS", "500"),
        ],
    );
    assert_eq!(
        health(&server, "ready").1["checks"]["accounting_spool"]["state"],
        "empty"
    );
    let dir = tempfile::tempdir().unwrap();
    let acked = dir.path().join("acked");
    let acct = load(server.acct, "acct-start", 10, Some(&acked));
    let auth = load(server.auth, "pap", 10, None);
    std::thread::sleep(Duration::from_secs(2));
    pg.stop();
    // Degraded, still ready: authentication answers from memory, accounting from the spool.
    assert!(eventually(Duration::from_secs(10), || {
        let (code, body) = health(&server, "ready");
        code == 200
            && body["status"] == "degraded"
            && body["checks"]["database"]["state"] == "down"
            && body["checks"]["accounting_spool"]["batches"].as_u64() > Some(0)
    }));
    std::thread::sleep(Duration::from_secs(3));
    pg.resume();
    let auth = result(auth);
    let _ = result(acct);
    assert_eq!(auth["rejects"], "0", "{auth:?}");
    assert_ne!(auth["accepts"], "0", "{auth:?}");
    assert!(server.metric("edge_accounting_spooled_total") > 0.0);
    // The spool drains into the database.
    assert!(
        eventually(Duration::from_secs(60), || {
            let (_, body) = health(&server, "ready");
            body["status"] == "ok" && body["checks"]["accounting_spool"]["batches"] == 0
        }),
        "{:?}",
        health(&server, "ready")
    );
    server.settled();
    assert!(server.metric("edge_accounting_replayed_total") > 0.0);
    let acked = read_acked(&acked);
    eprintln!(
        "outage: auth {auth:?}; {} accounting records acknowledged, {} of them from the spool",
        acked.len(),
        server.metric("edge_accounting_spooled_total")
    );
    assert!(acked.len() > 100);
    assert_acked_stored_once(&url, &acked);
    assert_eq!(sql(&url, "SELECT COUNT(*) FROM acct_journal").trim(), "0");
}

fn access(server: &Server, user: &str) -> String {
    common::radclient(
        server.auth,
        "auth",
        SECRET,
        &format!("User-Name = \"{user}\"\nUser-Password = \"pw\"\nMessage-Authenticator = 0x00\n"),
    )
}

fn framed_ip(answer: &str) -> Option<String> {
    answer
        .lines()
        .find_map(|l| match l.trim().split_once(" = ") {
            Some(("Framed-IP-Address", v)) => Some(v.to_string()),
            _ => None,
        })
}

fn json_lines(url: &str, args: &[&str]) -> Vec<Value> {
    cli(url, args)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// Three instances on one PostgreSQL, as a NAS fleet spread over them sees them: a
/// subscriber added anywhere authenticates everywhere; one session's Start, Interim and
/// Stop arriving at three different instances make one correct row; the address it held is
/// released and handed back to the same subscriber; an Accounting-On through one instance
/// closes sessions another one opened. (Concurrent allocation: `ipam.rs`,
/// `three_instances_never_share_an_address`.)
#[test]
fn three_instances_share_one_database() {
    let db = TestDb::new(Backend::Postgres);
    provision(&db.url, 0);
    for line in [
        "pools add --name shared --cidr 10.9.0.0/24 --block-size 16",
        "plans add --name dyn --pool shared --simultaneous-use 1",
        "subscribers add --username alice --password pw --plan dyn",
    ] {
        cli_line(&db.url, line);
    }
    let servers: Vec<Server> = ["a", "b", "c"]
        .iter()
        .map(|n| Server::start_with(&db.url, &[("EDGE_IPAM_INSTANCE", n)]))
        .collect();
    let (a, b, c) = (&servers[0], &servers[1], &servers[2]);

    // Added while they run: every instance learns of it.
    cli_line(
        &db.url,
        "subscribers add --username bob --password pw --plan dyn",
    );
    for s in &servers {
        assert!(
            eventually(Duration::from_secs(10), || access(s, "bob")
                .contains("Received Access-Accept")),
            "bob accepted by every instance"
        );
    }

    let answer = access(a, "alice");
    let ip = framed_ip(&answer).unwrap_or_else(|| panic!("an address: {answer}"));
    let acct = |s: &Server, status: &str, extra: &str| {
        common::accounting(s, SECRET, status, "alice", "s-alice", extra)
    };
    acct(a, "Start", &format!("Framed-IP-Address = {ip}\n"));
    acct(
        b,
        "Interim-Update",
        &format!("Framed-IP-Address = {ip}\nAcct-Input-Octets = 1000\nAcct-Session-Time = 60\n"),
    );
    acct(
        c,
        "Stop",
        &format!(
            "Framed-IP-Address = {ip}\nAcct-Input-Octets = 2000\nAcct-Session-Time = 120\n\
             Acct-Terminate-Cause = User-Request\n"
        ),
    );
    for s in &servers {
        s.settled();
    }
    let rows = json_lines(&db.url, &["sessions", "list", "--username", "alice"]);
    assert_eq!(rows.len(), 1, "one session: {rows:?}");
    let row = &rows[0];
    assert_eq!(row["acct_input_octets"], 2000, "{row}");
    assert_eq!(row["acct_session_time"], 120, "{row}");
    assert_eq!(row["acct_terminate_cause"], "User-Request", "{row}");
    assert!(!row["acct_stop_time"].is_null(), "{row}");
    let leases = json_lines(&db.url, &["leases", "--json", "--address", &ip]);
    assert_eq!(leases.len(), 1, "{leases:?}");
    assert_eq!(leases[0]["state"], "released", "{leases:?}");
    assert_eq!(leases[0]["username"], "alice");
    // The owner of the block read the release; alice gets her address back from it.
    assert!(
        eventually(Duration::from_secs(10), || framed_ip(&access(a, "alice"))
            .as_deref()
            == Some(ip.as_str())),
        "alice's sticky address"
    );

    // bob's session opened through c: a, which never saw it, counts it for
    // Simultaneous-Use once it has read it.
    common::accounting(c, SECRET, "Start", "bob", "s-bob", "");
    c.settled();
    assert!(
        eventually(Duration::from_secs(10), || access(a, "bob")
            .contains("Received Access-Reject")),
        "bob is online through c; a refuses a second session"
    );
    // The NAS reboots and says so through b.
    common::accounting(b, SECRET, "Accounting-On", "", "on-1", "");
    b.settled();
    let bob = json_lines(&db.url, &["sessions", "list", "--username", "bob"]);
    assert_eq!(bob.len(), 1);
    assert_eq!(bob[0]["acct_terminate_cause"], "NAS-Reboot", "{bob:?}");
    // Every instance's memory follows: nobody is online anywhere, and bob may log in.
    for s in &servers {
        assert!(eventually(Duration::from_secs(10), || s
            .metric("edge_accounting_active_sessions")
            == 0.0));
    }
    assert!(access(a, "bob").contains("Received Access-Accept"));
}

/// Logs as JSON by config, one object a line, and the request id of an API error is in
/// the answer's body, its header, and the log line of that request; secrets are not.
#[test]
fn json_logs_carry_the_request_id() {
    let db = TestDb::new(Backend::Sqlite);
    provision(&db.url, 0);
    let token = common::api_client::token(&db, "ops", "write");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("edge.log");
    let s = Server::start_logged(
        &db.url,
        &[("EDGE_LOG_FORMAT", "json"), ("EDGE_LOG_LEVEL", "info")],
        &log,
    );
    let auth = format!("Authorization: Bearer {token}");
    let answer = common::http(
        s.http,
        "POST",
        "/api/v1/plans",
        &[
            &auth,
            "Content-Type: application/json",
            "X-Request-Id: trace-4711",
        ],
        Some(br#"{"name": "x", "bogus": 1}"#),
    );
    assert_eq!(answer.status, 422, "{}", answer.body);
    assert_eq!(answer.header("x-request-id"), Some("trace-4711"));
    assert_eq!(answer.json()["error"]["request_id"], "trace-4711");
    let line = || {
        std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .find(|l| l.contains("trace-4711"))
            .map(str::to_string)
    };
    assert!(eventually(Duration::from_secs(5), || line().is_some()));
    let entry: Value = serde_json::from_str(&line().unwrap()).expect("a JSON log line");
    assert_eq!(entry["fields"]["request_id"], "trace-4711", "{entry}");
    assert_eq!(entry["fields"]["status"], 422, "{entry}");
    assert_eq!(entry["fields"]["path"], "/api/v1/plans", "{entry}");
    // Every line is JSON, and neither the NAS secret nor the token shows.
    let all = std::fs::read_to_string(&log).unwrap();
    for l in all.lines() {
        serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}"));
    }
    assert!(!all.contains(SECRET) && !all.contains(&token), "{all}");
}
