//! RADIUS accounting as a NAS sees it: radclient sends Accounting-Requests to the real
//! binary, and the sessions table (through `dotmac-edge sessions list` and the radacct view)
//! must say what happened, whatever order the packets came in. Both backends.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{
    assert_acked_stored_once, cli, cli_line, eventually, radclient, read_acked, sql, Backend,
    Server, TestDb,
};
use serde_json::Value;

const SECRET: &str = "acct-s3cret";

fn provisioned(backend: Backend) -> TestDb {
    let db = TestDb::new(backend);
    for line in [
        &format!("nas add --name bng1 --address 127.0.0.1 --secret {SECRET}"),
        "plans add --name single --simultaneous-use 1",
        "subscribers add --username alice --password wonderland --plan single",
    ] {
        cli_line(&db.url, line);
    }
    db
}

/// Sends one Accounting-Request with radclient; true when it was answered. Returns once the
/// record is folded into `sessions`, where the checks look.
fn acct(server: &Server, attrs: &str) -> bool {
    let answered =
        radclient(server.acct, "acct", SECRET, attrs).contains("Received Accounting-Response");
    if answered {
        server.settled();
    }
    answered
}

fn sessions(db: &TestDb, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["sessions", "list"];
    all.extend_from_slice(args);
    cli(&db.url, &all)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn session(db: &TestDb, username: &str) -> Value {
    let mut rows = sessions(db, &["--username", username]);
    assert_eq!(rows.len(), 1, "one session for {username}: {rows:?}");
    rows.remove(0)
}

fn packet(status: &str, user: &str, id: &str, extra: &str) -> String {
    format!(
        "Acct-Status-Type = {status}\nUser-Name = \"{user}\"\nAcct-Session-Id = \"{id}\"\n\
         NAS-IP-Address = 127.0.0.1\nNAS-Port = 7\n{extra}"
    )
}

fn lifecycle(backend: Backend) {
    let db = provisioned(backend);
    let server = Server::start(&db.url);
    let start = packet(
        "Start",
        "alice",
        "s-1",
        "Framed-IP-Address = 100.64.0.10\nNAS-Port-Type = Ethernet\n\
         Calling-Station-Id = \"02:00:00:00:00:01\"\nConnect-Info = \"1G\"\n\
         Class = 0x6162\nAcct-Authentic = RADIUS\n",
    );
    assert!(acct(&server, &start));
    let s = session(&db, "alice");
    assert!(s["acct_stop_time"].is_null());
    assert_eq!(s["framed_ip_address"], "100.64.0.10");
    assert_eq!(s["nas_port_type"], "Ethernet");
    assert_eq!(s["acct_authentic"], "RADIUS");
    assert_eq!(s["class"], "0x6162");
    assert_eq!(s["connect_info_start"], "1G");
    // The unique id FreeRADIUS's acct_unique policy gives these attributes.
    assert_eq!(
        s["acct_unique_id"],
        md5_hex("alice,s-1,127.0.0.1,,,7"),
        "{s}"
    );

    let interim = packet(
        "Interim-Update",
        "alice",
        "s-1",
        "Acct-Session-Time = 300\nAcct-Input-Octets = 1000\nAcct-Output-Octets = 5000\n\
         Acct-Input-Gigawords = 1\nAcct-Input-Packets = 10\n",
    );
    assert!(acct(&server, &interim));
    let s = session(&db, "alice");
    assert_eq!(s["acct_input_octets"], (1u64 << 32) + 1000);
    assert_eq!(s["acct_session_time"], 300);

    let stop = packet(
        "Stop",
        "alice",
        "s-1",
        "Acct-Session-Time = 600\nAcct-Input-Octets = 2000\nAcct-Output-Octets = 9000\n\
         Acct-Input-Gigawords = 1\nAcct-Terminate-Cause = Lost-Carrier\n\
         Acct-Delay-Time = 30\nConnect-Info = \"1G down\"\n",
    );
    assert!(acct(&server, &stop));
    let s = session(&db, "alice");
    assert_eq!(s["acct_terminate_cause"], "Lost-Carrier");
    assert_eq!(s["acct_input_octets"], (1u64 << 32) + 2000);
    assert_eq!(s["acct_output_octets"], 9000);
    assert_eq!(s["acct_session_time"], 600);
    assert_eq!(s["connect_info_stop"], "1G down");
    let stop_time = s["acct_stop_time"].as_i64().expect("closed");
    // The update time never goes back: the Interim (sent after the Stop's event time, which
    // the delay puts 30 s in the past) stays the latest.
    let update = s["acct_update_time"].as_i64().expect("updated");
    assert!(stop_time <= update);
    // Acct-Delay-Time: the Stop happened 30 s before it arrived.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (now - 40..=now - 25).contains(&stop_time),
        "{stop_time} vs {now}"
    );
    assert!(sessions(&db, &["--open"]).is_empty());
    assert_eq!(sessions(&db, &["--address", "100.64.0.10"]).len(), 1);

    // The radacct view answers FreeRADIUS-style reporting queries.
    let view = sql(&db.url, "SELECT acctsessionid, acctterminatecause, acctinputoctets FROM radacct WHERE username = 'alice'");
    assert!(
        view.contains("s-1") && view.contains("Lost-Carrier"),
        "{view}"
    );
    assert!(server.metric("edge_accounting_records_total") >= 3.0);
}
both_backends!(start_interim_stop, crate::lifecycle);

fn out_of_order(backend: Backend) {
    let db = provisioned(backend);
    let server = Server::start(&db.url);
    // Stop first (it creates the session), then a late Interim, then a very late Start.
    let stop = packet(
        "Stop",
        "bob",
        "s-2",
        "Acct-Session-Time = 900\nAcct-Input-Octets = 7000\nAcct-Terminate-Cause = User-Request\n",
    );
    let interim = packet(
        "Interim-Update",
        "bob",
        "s-2",
        "Acct-Session-Time = 300\nAcct-Input-Octets = 3000\n",
    );
    let start = packet("Start", "bob", "s-2", "");
    for p in [&stop, &interim, &start, &start, &stop] {
        assert!(acct(&server, p));
    }
    let s = session(&db, "bob");
    assert_eq!(s["acct_terminate_cause"], "User-Request");
    assert!(!s["acct_stop_time"].is_null(), "a late Start never reopens");
    assert_eq!(s["acct_input_octets"], 7000, "counters never go backwards");
    assert_eq!(s["acct_session_time"], 900);

    // An Interim before any Start creates the session, open.
    let interim = packet(
        "Interim-Update",
        "carol",
        "s-3",
        "Acct-Session-Time = 120\nAcct-Input-Octets = 10\n",
    );
    assert!(acct(&server, &interim));
    let s = session(&db, "carol");
    assert!(s["acct_stop_time"].is_null());
    let started = s["acct_start_time"].as_i64().unwrap();
    let updated = s["acct_update_time"].as_i64().unwrap();
    assert_eq!(
        updated - started,
        120,
        "start derived from the session time"
    );
}
both_backends!(out_of_order_and_duplicates, crate::out_of_order);

fn retransmits(backend: Backend) {
    let db = provisioned(backend);
    let server = Server::start(&db.url);
    // The same packet (same Identifier and authenticator) twice, through the `radius`
    // crate's wire format: a raw socket so that the retransmit is byte-for-byte the same.
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let pkt = raw_accounting(1, "dave", "s-4", SECRET);
    let mut buf = [0u8; 4096];
    for _ in 0..2 {
        sock.send_to(&pkt, server.acct).unwrap();
        let (n, _) = sock.recv_from(&mut buf).expect("an answer each time");
        assert_eq!(buf[0], 5, "Accounting-Response");
        assert_eq!(n, 20);
    }
    assert_eq!(sessions(&db, &["--username", "dave"]).len(), 1);
    assert!(server.metric("edge_radius_duplicates_total") >= 1.0);

    // A wrong secret (bad Request Authenticator) and an unknown client are dropped, counted.
    let bad = raw_accounting(2, "dave", "s-5", "not-the-secret");
    sock.send_to(&bad, server.acct).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    assert!(sock.recv_from(&mut buf).is_err(), "no answer to a forgery");
    assert!(eventually(Duration::from_secs(5), || server.metric(
        "edge_radius_dropped_total{reason=\"bad_authenticator\"}"
    ) >= 1.0));
    assert!(sessions(&db, &["--username", "dave"]).len() == 1);
    let stranger = std::net::UdpSocket::bind("127.0.0.2:0").unwrap();
    stranger.send_to(&pkt, server.acct).unwrap();
    assert!(eventually(Duration::from_secs(5), || server
        .metric("edge_radius_dropped_total{reason=\"unknown_client\"}")
        >= 1.0));
}
both_backends!(retransmits_and_forgeries, crate::retransmits);

fn nas_reboot(backend: Backend) {
    let db = provisioned(backend);
    let server = Server::start(&db.url);
    assert!(acct(&server, &packet("Start", "erin", "s-6", "")));
    assert!(acct(&server, &packet("Start", "frank", "s-7", "")));
    assert_eq!(sessions(&db, &["--open"]).len(), 2);
    assert!(acct(
        &server,
        "Acct-Status-Type = Accounting-On\nNAS-IP-Address = 127.0.0.1\nAcct-Delay-Time = 0\n"
    ));
    assert!(sessions(&db, &["--open"]).is_empty());
    for user in ["erin", "frank"] {
        assert_eq!(session(&db, user)["acct_terminate_cause"], "NAS-Reboot");
    }
    // A session after the reboot stays open.
    std::thread::sleep(Duration::from_millis(1100));
    assert!(acct(&server, &packet("Start", "gina", "s-8", "")));
    assert_eq!(sessions(&db, &["--open"]).len(), 1);
}
both_backends!(accounting_on_closes_the_nas_sessions, crate::nas_reboot);

fn reaper(backend: Backend) {
    let db = provisioned(backend);
    let server = Server::start_with(
        &db.url,
        &[
            ("EDGE_ACCOUNTING_REAPER_INTERVAL_SECONDS", "1"),
            ("EDGE_ACCOUNTING_DEFAULT_INTERIM_SECONDS", "1"),
            ("EDGE_ACCOUNTING_STALE_MULTIPLIER", "1"),
            ("EDGE_ACCOUNTING_STALE_GRACE_SECONDS", "1"),
        ],
    );
    // A session that says its interval is an hour is left alone; one that says nothing gets
    // the 1 s default and goes stale.
    assert!(acct(
        &server,
        &packet("Start", "hank", "s-9", "Acct-Interim-Interval = 3600\n")
    ));
    assert!(acct(&server, &packet("Start", "ivy", "s-10", "")));
    assert!(eventually(Duration::from_secs(15), || {
        session(&db, "ivy")["acct_terminate_cause"] == "Stale-Session"
    }));
    assert!(session(&db, "hank")["acct_stop_time"].is_null());
    // The counter counts sessions closed, not closes asked for: one, however many sweeps
    // saw ivy before the fold closed her.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(server.metric("edge_accounting_reaped_total"), 1.0);
    // A real Stop arriving later replaces the reaper's verdict.
    assert!(acct(
        &server,
        &packet(
            "Stop",
            "ivy",
            "s-10",
            "Acct-Session-Time = 5\nAcct-Terminate-Cause = Idle-Timeout\n"
        )
    ));
    assert_eq!(session(&db, "ivy")["acct_terminate_cause"], "Idle-Timeout");
}
both_backends!(stale_sessions_are_reaped, crate::reaper);

fn simultaneous_use(backend: Backend) {
    let db = provisioned(backend);
    let server = Server::start(&db.url);
    let login = || {
        radclient(
            server.auth,
            "auth",
            SECRET,
            "User-Name = alice\nUser-Password = wonderland\nMessage-Authenticator = 0x00\n",
        )
    };
    assert!(login().contains("Access-Accept"));
    assert!(acct(&server, &packet("Start", "alice", "s-11", "")));
    let second = login();
    assert!(second.contains("Access-Reject"), "{second}");
    assert!(second.contains("Simultaneous-Use"), "{second}");
    assert!(acct(
        &server,
        &packet("Stop", "alice", "s-11", "Acct-Session-Time = 10\n")
    ));
    assert!(login().contains("Access-Accept"));
}
both_backends!(simultaneous_use_is_enforced, crate::simultaneous_use);

/// Open sessions are rebuilt from the database at start: the limit holds across a restart.
fn restart_keeps_open_sessions(backend: Backend) {
    let db = provisioned(backend);
    {
        let server = Server::start(&db.url);
        assert!(acct(&server, &packet("Start", "alice", "s-12", "")));
    }
    let server = Server::start(&db.url);
    assert_eq!(server.metric("edge_accounting_active_sessions"), 1.0);
    let reply = radclient(
        server.auth,
        "auth",
        SECRET,
        "User-Name = alice\nUser-Password = wonderland\nMessage-Authenticator = 0x00\n",
    );
    assert!(reply.contains("Access-Reject"), "{reply}");
}
both_backends!(
    open_sessions_survive_a_restart,
    crate::restart_keeps_open_sessions
);

/// `radius-load` sending `method` reports of 1,000 users' sessions to `server` for
/// `seconds`, with 64 requests in flight per thread; add arguments, then spawn.
fn load_command(server: &Server, method: &str, seconds: u32) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_radius-load"));
    c.args(["load", "--method", method])
        .args(["--seconds", &seconds.to_string()])
        .args(["--server", &server.acct.to_string(), "--secret", SECRET])
        .args(["--users", "1000", "--window", "64"])
        .stdout(Stdio::null());
    c
}

/// Starts from two threads in the background, writing the session ids it got answers for
/// to `acked`.
fn start_load(server: &Server, seconds: u32, acked: &std::path::Path) -> std::process::Child {
    load_command(server, "acct-start", seconds)
        .args(["--threads", "2", "--acked", acked.to_str().unwrap()])
        .spawn()
        .expect("radius-load")
}

/// SIGKILL in the middle of a load: once the server is back, every Start that was answered
/// is in the sessions table, once.
fn crash(backend: Backend) {
    let db = provisioned(backend);
    let mut server = Server::start(&db.url);
    let acked = tempfile::NamedTempFile::new().unwrap();
    let mut load = start_load(&server, 4, acked.path());
    std::thread::sleep(Duration::from_millis(1500));
    server.kill();
    assert!(load.wait().unwrap().success());
    let acked = read_acked(acked.path());
    assert!(acked.len() > 100, "the load got answers before the kill");
    // Back up: start-up folds what the journal held and the fold had not reached.
    let _server = Server::start(&db.url);
    assert_acked_stored_once(&db.url, &acked);
}
both_backends!(nothing_acknowledged_is_lost_on_sigkill, crate::crash);

/// Another client holding the sessions table (`LOCK … IN SHARE MODE`, open transaction), so
/// that folds wait while the journal does not; released when dropped.
struct SessionsLock(std::process::Child);

impl SessionsLock {
    fn take(url: &str) -> SessionsLock {
        use std::io::Write;
        let mut psql = Command::new("psql")
            .args(["-XAtq", url])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("psql");
        let stdin = psql.stdin.as_mut().unwrap();
        writeln!(stdin, "BEGIN; LOCK TABLE sessions IN SHARE MODE; SELECT 1;").unwrap();
        stdin.flush().unwrap();
        std::thread::sleep(Duration::from_millis(500));
        SessionsLock(psql)
    }
}

impl Drop for SessionsLock {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An answered record whose fold never happened (the sessions table was locked, then the
/// process was killed) is in the journal, and the next start folds it into sessions.
#[test]
fn the_journal_is_folded_at_start_postgres() {
    let db = provisioned(Backend::Postgres);
    let mut server = Server::start(&db.url);
    // Another client holds the sessions table: the fold waits, the journal does not.
    let locker = SessionsLock::take(&db.url);
    let answer = radclient(
        server.acct,
        "acct",
        SECRET,
        &packet("Start", "carol", "s-journal", ""),
    );
    assert!(answer.contains("Accounting-Response"), "{answer}");
    assert!(eventually(Duration::from_secs(5), || server
        .metric("edge_accounting_unfolded_records")
        == 1.0));
    server.kill();
    drop(locker);
    assert!(sessions(&db, &["--username", "carol"]).is_empty());
    assert_eq!(
        sql(&db.url, "SELECT COUNT(*) FROM acct_journal").trim(),
        "1"
    );

    let server = Server::start(&db.url);
    assert_eq!(session(&db, "carol")["acct_session_id"], "s-journal");
    assert_eq!(
        sql(&db.url, "SELECT COUNT(*) FROM acct_journal").trim(),
        "0"
    );
    assert_eq!(server.metric("edge_accounting_recovered_total"), 1.0);
    assert_eq!(server.metric("edge_accounting_active_sessions"), 1.0);
}

/// The fold stalled (another client holds the sessions table): the journal takes records up
/// to `accounting.max_unfolded`, plus the batches already in flight, and then no more, so
/// the backlog stays bounded while requests wait; once the fold runs again the load goes
/// on, and every answered record is stored once.
#[test]
fn a_stalled_fold_bounds_the_backlog_postgres() {
    const MAX_UNFOLDED: f64 = 200.0;
    const BATCH_MAX: f64 = 32.0;
    const IN_FLIGHT: f64 = 3.0; // accounting.commit_concurrency's default
    let db = provisioned(Backend::Postgres);
    let server = Server::start_with(
        &db.url,
        &[
            ("EDGE_ACCOUNTING_MAX_UNFOLDED", "200"),
            ("EDGE_ACCOUNTING_BATCH_MAX", "32"),
        ],
    );
    let locker = SessionsLock::take(&db.url);
    let acked = tempfile::NamedTempFile::new().unwrap();
    let mut load = start_load(&server, 6, acked.path());
    let journaled = || server.metric("edge_accounting_records_total");
    assert!(
        eventually(Duration::from_secs(5), || journaled() >= MAX_UNFOLDED),
        "the journal filled to the bound: {}",
        journaled()
    );
    std::thread::sleep(Duration::from_millis(700));
    let held = journaled();
    assert!(
        held <= MAX_UNFOLDED + IN_FLIGHT * BATCH_MAX,
        "{held} records journaled with the fold stalled"
    );
    assert_eq!(
        server.metric("edge_accounting_unfolded_records"),
        held,
        "nothing folded"
    );
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(journaled(), held, "no more taken while the fold is stalled");
    assert!(server.metric("edge_accounting_backlog_full_total") >= 1.0);
    drop(locker);
    assert!(load.wait().unwrap().success());
    server.settled();
    assert!(
        journaled() > held,
        "the load went on once the fold ran: {}",
        journaled()
    );
    assert_acked_stored_once(&db.url, &read_acked(acked.path()));
}

/// Two instances on one database folding reports of the same sessions at the same time (one
/// NAS's accounting sent to both, as a load balancer without affinity would): every fold
/// finishes, and each session is one row with its Stop. The two halves of a fold commit each
/// on its own and never wait for each other while holding row locks; if they did, the halves
/// of two instances' folds could wait in a cycle PostgreSQL cannot see, and the folds would
/// hang (`settled` would time out).
#[test]
fn two_instances_fold_the_same_sessions_postgres() {
    let db = provisioned(Backend::Postgres);
    let servers = [Server::start(&db.url), Server::start(&db.url)];
    let loads: Vec<_> = servers
        .iter()
        .map(|s| {
            load_command(s, "acct-cycle", 4)
                .args(["--run", "7", "--threads", "1"])
                .spawn()
                .expect("radius-load")
        })
        .collect();
    for mut l in loads {
        assert!(l.wait().unwrap().success());
    }
    for s in &servers {
        s.settled();
    }
    let counts = sql(
        &db.url,
        "SELECT COUNT(*), COUNT(DISTINCT acct_unique_id), COUNT(acct_stop_time) FROM sessions",
    );
    let counts: Vec<u64> = counts
        .trim()
        .split('|')
        .map(|n| n.parse().unwrap())
        .collect();
    let (rows, distinct, stopped) = (counts[0], counts[1], counts[2]);
    assert!(rows > 1_000, "{rows} sessions");
    assert_eq!(rows, distinct, "one row per session");
    // The loads reported the same sessions (ids `<run>-<thread>-<n>`), and both instances
    // stored and folded some of them.
    assert_eq!(
        sql(
            &db.url,
            "SELECT COUNT(*) FROM sessions WHERE acct_session_id NOT LIKE '7-0-%'"
        )
        .trim(),
        "0"
    );
    for s in &servers {
        assert!(s.metric("edge_accounting_records_total") > 0.0);
    }
    // Both servers had every report of a session; the load stops mid-block, so the
    // sessions of the last block of 4,096 may lack their Stop.
    assert!(
        rows - stopped <= 4_096,
        "{stopped} of {rows} sessions closed"
    );
}

/// A fold runs in two halves on two connections, each committed on its own. When PostgreSQL
/// commits one half and refuses the other (here a trigger run at commit refuses one user's
/// row), the journal rows stay, the whole fold is retried (the committed half again), and
/// once the database takes it every session is there exactly once.
#[test]
fn a_fold_whose_half_is_refused_is_retried_whole_postgres() {
    let db = provisioned(Backend::Postgres);
    let server = Server::start(&db.url);
    sql(
        &db.url,
        "CREATE FUNCTION refuse_one() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF NEW.username = 'refused' THEN RAISE EXCEPTION 'refused for the test'; END IF;
             RETURN NEW;
         END $$;
         CREATE CONSTRAINT TRIGGER refuse_one AFTER INSERT OR UPDATE ON sessions
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_one();",
    );
    // Hold the fold back so that the next reports wait together and make one fold.
    let locker = SessionsLock::take(&db.url);
    let users = ["first", "u1", "u2", "u3", "u4", "refused"];
    for (i, user) in users.iter().enumerate() {
        let answer = radclient(
            server.acct,
            "acct",
            SECRET,
            &packet("Start", user, &format!("s-half-{i}"), ""),
        );
        assert!(answer.contains("Accounting-Response"), "{user}: {answer}");
    }
    drop(locker);

    assert!(
        eventually(Duration::from_secs(10), || server
            .metric("edge_accounting_fold_failed_total")
            >= 2.0),
        "the refused fold is retried"
    );
    let stored = || {
        sql(&db.url, "SELECT COUNT(*) FROM sessions")
            .trim()
            .parse::<usize>()
            .unwrap()
    };
    // The half without the refused row committed; the other did not, and the journal
    // still holds the fold's records. (`first` went in a fold of its own, before.)
    let partial = stored();
    assert!(
        (2..users.len()).contains(&partial),
        "one half stored: {partial}"
    );
    assert_ne!(
        sql(&db.url, "SELECT COUNT(*) FROM acct_journal").trim(),
        "0"
    );
    assert!(server.metric("edge_accounting_unfolded_records") > 0.0);

    sql(&db.url, "DROP TRIGGER refuse_one ON sessions");
    server.settled();
    assert_eq!(stored(), users.len());
    for (i, user) in users.iter().enumerate() {
        // One row each (`session` checks), with what its Start said.
        assert_eq!(session(&db, user)["acct_session_id"], format!("s-half-{i}"));
    }
    assert_eq!(
        sql(
            &db.url,
            "SELECT COUNT(DISTINCT acct_unique_id) FROM sessions"
        )
        .trim(),
        users.len().to_string()
    );
    assert_eq!(
        sql(&db.url, "SELECT COUNT(*) FROM acct_journal").trim(),
        "0"
    );
    assert_eq!(
        server.metric("edge_accounting_active_sessions"),
        users.len() as f64
    );
}

fn md5_hex(s: &str) -> String {
    use md5::{Digest, Md5};
    hex_lower(&Md5::digest(s.as_bytes()))
}

fn hex_lower(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// An Accounting-Request (Start) signed with `secret`, built by hand.
fn raw_accounting(id: u8, user: &str, session: &str, secret: &str) -> Vec<u8> {
    use md5::{Digest, Md5};
    let mut attrs = Vec::new();
    let mut put = |t: u8, v: &[u8]| {
        attrs.push(t);
        attrs.push((v.len() + 2) as u8);
        attrs.extend_from_slice(v);
    };
    put(40, &1u32.to_be_bytes());
    put(1, user.as_bytes());
    put(44, session.as_bytes());
    put(4, &[127, 0, 0, 1]);
    let len = (20 + attrs.len()) as u16;
    let mut pkt = vec![4, id];
    pkt.extend_from_slice(&len.to_be_bytes());
    pkt.extend_from_slice(&[0; 16]);
    pkt.extend_from_slice(&attrs);
    let auth = Md5::new()
        .chain_update(&pkt)
        .chain_update(secret.as_bytes())
        .finalize();
    pkt[4..20].copy_from_slice(&auth);
    pkt
}
