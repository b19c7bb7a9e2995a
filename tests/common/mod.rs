//! Black-box test harness: the real binary, a real database (a throwaway PostgreSQL cluster
//! started from the system's binaries unless EDGE_TEST_POSTGRES_URL names one, or a SQLite
//! file), real sockets on loopback.

#![allow(dead_code)]

pub mod acs_cli;
pub mod api_client;
pub mod cpe_sim;
pub mod nas_sim;
pub mod netns;

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_dotmac-edge");

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, empty database for one test.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl TestDb {
    pub fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("tempdir");
                let url = format!("sqlite://{}", dir.path().join("edge.db").display());
                TestDb {
                    url,
                    _dir: Some(dir),
                }
            }
            Backend::Postgres => {
                let base = postgres_base_url();
                let name = format!(
                    "edge_test_{}_{}",
                    std::process::id(),
                    COUNTER.fetch_add(1, Ordering::SeqCst)
                );
                sql(&base, &format!("CREATE DATABASE {name}"));
                let url = match base.rsplit_once('/') {
                    Some((head, _)) => format!("{head}/{name}"),
                    None => panic!("bad postgres url {base}"),
                };
                TestDb { url, _dir: None }
            }
        }
    }
}

/// Runs SQL against a test database with the backend's own command-line client (psql or
/// sqlite3); returns the rows, one per line, columns separated by `|`. Panics on an error.
pub fn sql(url: &str, query: &str) -> String {
    let out = match url.strip_prefix("sqlite://") {
        Some(path) => Command::new("sqlite3").arg(path).arg(query).output(),
        None => Command::new("psql")
            .args(["-XAtq", "-v", "ON_ERROR_STOP=1", url, "-c", query])
            .output(),
    }
    .expect("sqlite3 / psql installed");
    assert!(
        out.status.success(),
        "{query}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The lines of a file `radius-load --acked` wrote: the session ids of acknowledged Starts.
pub fn read_acked(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .expect("the --acked file")
        .lines()
        .map(str::to_string)
        .collect()
}

/// Every acknowledged Start is in the database (the radacct view), and no session is there
/// twice.
pub fn assert_acked_stored_once(url: &str, acked: &[String]) {
    let stored = sql(url, "SELECT acctsessionid FROM radacct");
    let stored: std::collections::HashSet<&str> = stored.lines().map(str::trim).collect();
    let missing: Vec<&String> = acked
        .iter()
        .filter(|id| !stored.contains(id.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged records missing, e.g. {:?}",
        missing.len(),
        acked.len(),
        missing.first()
    );
    let dupes = sql(
        url,
        "SELECT COUNT(*) - COUNT(DISTINCT acctuniqueid) FROM radacct",
    );
    assert_eq!(dupes.trim(), "0", "a record stored twice");
}

/// The PostgreSQL server the tests use: EDGE_TEST_POSTGRES_URL, or one started here.
pub fn postgres_base_url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(u) = std::env::var("EDGE_TEST_POSTGRES_URL") {
            return u;
        }
        start_throwaway_postgres()
    })
    .clone()
}

fn pg_bin(name: &str) -> PathBuf {
    for dir in [
        "/usr/lib/postgresql/17/bin",
        "/usr/lib/postgresql/16/bin",
        "/usr/lib/postgresql/15/bin",
    ] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    PathBuf::from(name)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs a PostgreSQL binary, as the `postgres` user when we are root (it refuses root).
fn pg_command(name: &str) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(pg_bin(name));
        c
    } else {
        Command::new(pg_bin(name))
    }
}

fn start_throwaway_postgres() -> String {
    let c = PgCluster::start("shared");
    let url = c.url.clone();
    // The shared cluster lives as long as the process; its watcher stops it afterwards.
    std::mem::forget(c);
    url
}

/// A throwaway PostgreSQL cluster of one test's own, which it may stop and start again
/// (a database outage) without disturbing the tests that share the common one. Stopped and
/// removed when dropped, and by a watcher should the test process die first.
pub struct PgCluster {
    pub url: String,
    dir: PathBuf,
    port: u16,
}

impl PgCluster {
    pub fn start(name: &str) -> PgCluster {
        let dir = std::env::temp_dir().join(format!("edge-pg-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("pg dir");
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .expect("chown");
            assert!(ok.success());
        }
        let data = dir.join("data");
        let out = pg_command("initdb")
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "-D"])
            .arg(&data)
            .output()
            .expect("initdb runs");
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_tcp_port();
        let mut c = PgCluster {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            port,
            dir,
        };
        c.pg_ctl_start();
        // Stop the cluster when this test process ends, however it ends.
        let watcher = format!(
            "while [ -d /proc/{pid} ]; do sleep 1; done; {ctl} -D {data} -m immediate stop; rm -rf {dir}",
            pid = std::process::id(),
            ctl = pg_bin("pg_ctl").display(),
            data = data.display(),
            dir = c.dir.display()
        );
        let mut w = if is_root() {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--", "sh", "-c", &watcher]);
            cmd
        } else {
            let mut cmd = Command::new("sh");
            cmd.args(["-c", &watcher]);
            cmd
        };
        w.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // Deliberately not waited on: it outlives this process to stop the cluster after it.
        #[allow(clippy::zombie_processes)]
        let _watcher = w.spawn().expect("watcher");
        c.url.shrink_to_fit();
        c
    }

    fn pg_ctl_start(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.dir.display()
        );
        let out = pg_command("pg_ctl")
            .args(["-D"])
            .arg(self.dir.join("data"))
            .args(["-o", &opts, "-l"])
            .arg(self.dir.join("log"))
            .args(["-w", "start"])
            .output()
            .expect("pg_ctl runs");
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops the server at once (`-m immediate`: connections cut, as a crash would).
    pub fn stop(&self) {
        let out = pg_command("pg_ctl")
            .args(["-D"])
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output()
            .expect("pg_ctl runs");
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts it again on the same port.
    pub fn resume(&self) {
        self.pg_ctl_start();
    }

    /// A fresh database in this cluster.
    pub fn database(&self, name: &str) -> String {
        sql(&self.url, &format!("CREATE DATABASE {name}"));
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = pg_command("pg_ctl")
            .args(["-D"])
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Ports this test process has handed out: never handed out twice, so two servers of one
/// test binary cannot be given the same port (the kernel may offer a port again as soon
/// as the probing socket is closed).
fn unique_port(probe: impl Fn() -> u16) -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let p = probe();
        if !given.contains(&p) {
            given.push(p);
            return p;
        }
    }
}

pub fn free_tcp_port() -> u16 {
    unique_port(|| {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port")
    })
}

pub fn free_udp_port() -> u16 {
    unique_port(|| {
        UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .map(|a| a.port())
            .expect("free port")
    })
}

/// Runs a CLI command against a database and returns its output; panics if it failed.
pub fn cli(db: &str, args: &[&str]) -> String {
    let out = cli_output(db, args);
    assert!(
        out.status.success(),
        "dotmac-edge {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn cli_output(db: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("EDGE_DATABASE_URL", db)
        .env_remove("EDGE_CONFIG")
        .output()
        .expect("binary runs")
}

/// [`cli`] with the arguments written as one line, split on whitespace (so no argument may
/// contain a space): `cli_line(url, "subscribers add --username alice --password pw")`.
pub fn cli_line(db: &str, line: &str) -> String {
    cli(db, &line.split_whitespace().collect::<Vec<_>>())
}

/// A running `dotmac-edge serve`, killed on drop.
pub struct Server {
    child: Child,
    pub auth: SocketAddr,
    pub acct: SocketAddr,
    pub http: SocketAddr,
    /// The ACS (CWMP) listener.
    pub acs: SocketAddr,
}

impl Server {
    pub fn start(db: &str) -> Server {
        Server::start_with(db, &[])
    }

    pub fn start_with(db: &str, env: &[(&str, &str)]) -> Server {
        Server::start_args(db, &[], env)
    }

    /// `serve` with extra arguments (`--roles api`, say) and environment. The ports are
    /// picked free but another process may take one before the server binds it: a server
    /// that exits during startup is started again on other ports.
    pub fn start_args(db: &str, args: &[&str], env: &[(&str, &str)]) -> Server {
        for _ in 0..5 {
            if let Some(s) = Server::try_start(db, args, env) {
                return s;
            }
        }
        panic!("the server exited during startup five times");
    }

    fn try_start(db: &str, args: &[&str], env: &[(&str, &str)]) -> Option<Server> {
        let mut s = Server::spawn(db, args, env);
        s.wait_ready().then_some(s)
    }

    /// Starts `serve` and returns at once, before it is ready (see [`Server::wait_ready`]).
    pub fn spawn(db: &str, args: &[&str], env: &[(&str, &str)]) -> Server {
        Server::spawn_to(db, args, env, Stdio::inherit())
    }

    /// A ready server whose log (stderr) goes to `log`.
    pub fn start_logged(db: &str, env: &[(&str, &str)], log: &Path) -> Server {
        let file = std::fs::File::create(log).expect("log file");
        let mut s = Server::spawn_to(db, &[], env, Stdio::from(file));
        assert!(s.wait_ready(), "the server exited during startup");
        s
    }

    fn spawn_to(db: &str, args: &[&str], env: &[(&str, &str)], stderr: Stdio) -> Server {
        let udp = || -> SocketAddr { ([127, 0, 0, 1], free_udp_port()).into() };
        let tcp = || -> SocketAddr { ([127, 0, 0, 1], free_tcp_port()).into() };
        let (auth, acct, http, acs) = (udp(), udp(), tcp(), tcp());
        let mut cmd = Command::new(BIN);
        cmd.arg("serve")
            .args(args)
            .env("EDGE_DATABASE_URL", db)
            .env("EDGE_RADIUS_AUTH_LISTEN", auth.to_string())
            .env("EDGE_RADIUS_ACCT_LISTEN", acct.to_string())
            .env("EDGE_HTTP_LISTEN", http.to_string())
            .env("EDGE_ACS_LISTEN", acs.to_string())
            .env("EDGE_LOG_LEVEL", "warn")
            .env_remove("EDGE_CONFIG")
            .stdout(Stdio::null())
            .stderr(stderr);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("server starts");
        Server {
            child,
            auth,
            acct,
            http,
            acs,
        }
    }

    /// Waits until this server (its pid, not whoever else answers on the port) is ready;
    /// false if it exited first.
    pub fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(60);
        let pid = format!("\"pid\":{}", self.child.id());
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if http_get(self.http, "/health/ready")
                .is_some_and(|(code, body)| code == 200 && body.contains(&pid))
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server did not become ready");
    }

    pub fn metrics(&self) -> String {
        http_get(self.http, "/metrics")
            .map(|(_, b)| b)
            .unwrap_or_default()
    }

    /// The value of one metric line, e.g. `edge_radius_dropped_total{reason="malformed"}`.
    pub fn metric(&self, series: &str) -> f64 {
        self.metrics()
            .lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
            .unwrap_or(0.0)
    }

    /// Waits until every acknowledged accounting record is folded into `sessions` (the
    /// answer waits for the journal; the table follows within milliseconds).
    pub fn settled(&self) {
        assert!(
            eventually(Duration::from_secs(20), || self
                .metrics()
                .lines()
                .any(|l| l == "edge_accounting_unfolded_records 0")),
            "the fold did not catch up"
        );
    }

    /// The exit status, if the server has exited.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the server at once (SIGKILL), as a power cut would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 GET over a real socket: (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let code = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((code, body))
}

/// Runs radclient with attribute lines on stdin; returns its output (stdout + stderr).
pub fn radclient(server: SocketAddr, kind: &str, secret: &str, attrs: &str) -> String {
    let mut c = Command::new("radclient");
    c.args(["-x", "-r", "2", "-t", "2"])
        .arg(server.to_string())
        .args([kind, secret]);
    let out = with_input(c, attrs.as_bytes());
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `cmd` with `input` on its stdin and waits for it.
pub fn with_input(mut cmd: Command, input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?} runs: {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write");
    child.wait_with_output().expect("the command ends")
}

/// Polls `f` until it is true or `limit` passes.
pub fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Declares a test once per backend.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:path) => {
        mod $name {
            #[test]
            fn sqlite() {
                $body($crate::common::Backend::Sqlite)
            }
            #[test]
            fn postgres() {
                $body($crate::common::Backend::Postgres)
            }
        }
    };
}

/// An HTTP answer: status, headers (names lower-cased), body.
#[derive(Debug)]
pub struct HttpAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpAnswer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("JSON body ({e}): {} {}", self.status, self.body))
    }
}

/// One HTTP/1.1 request over a real socket (`Connection: close`); chunked answers decoded.
/// `headers` are full lines without CRLF (`Authorization: Bearer x`).
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[&str],
    body: Option<&[u8]>,
) -> HttpAnswer {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .expect("connect to the HTTP listener");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    if let Some(b) = body {
        req.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    if let Some(b) = body {
        bytes.extend_from_slice(b);
    }
    // A server may answer (413) before it has read a large body; a failed write is fine then.
    let _ = s.write_all(&bytes);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("an HTTP status line: {text:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        let mut out = String::new();
        let mut rest = rest;
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 || tail.len() < n {
                break;
            }
            out.push_str(&tail[..n]);
            rest = tail[n..].trim_start_matches("\r\n");
        }
        out
    } else {
        rest.to_string()
    };
    HttpAnswer {
        status,
        headers,
        body,
    }
}

/// Sends one Accounting-Request with radclient and waits until the server has folded it.
/// `user` may be empty (no User-Name); `extra` holds more attribute lines.
pub fn accounting(server: &Server, secret: &str, status: &str, user: &str, id: &str, extra: &str) {
    let user_line = if user.is_empty() {
        String::new()
    } else {
        format!("User-Name = \"{user}\"\n")
    };
    let out = radclient(
        server.acct,
        "acct",
        secret,
        &format!(
            "Acct-Status-Type = {status}\n{user_line}Acct-Session-Id = \"{id}\"\n\
             NAS-IP-Address = 127.0.0.1\nNAS-Port = 1\n{extra}"
        ),
    );
    assert!(out.contains("Received Accounting-Response"), "{out}");
    server.settled();
}
