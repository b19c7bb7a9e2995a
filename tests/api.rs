//! The REST API as the control plane and operations staff see it: real HTTP on loopback,
//! tokens from the CLI, JWTs signed here, sessions made by radclient, and a NAS simulator
//! that checks each Disconnect/CoA request's authenticator and attributes itself (its own
//! MD5 code, not ours) and answers ACK or NAK. Both backends.

mod common;

use std::collections::HashSet;
use std::net::UdpSocket;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{accounting, cli, cli_line, http, Backend, HttpAnswer, Server, TestDb};
use md5::{Digest, Md5};
use serde_json::{json, Value};

const SECRET: &str = "api-nas-s3cret";
const JWT_KEY: &str = "0123456789abcdef0123456789abcdef-control-plane";

/// A request to the API with a bearer credential (or none).
fn call(
    s: &Server,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> HttpAnswer {
    let auth = token.map(|t| format!("Authorization: Bearer {t}"));
    let mut headers: Vec<&str> = Vec::new();
    if let Some(a) = &auth {
        headers.push(a);
    }
    let text = body.map(|b| b.to_string());
    if text.is_some() {
        headers.push("Content-Type: application/json");
    }
    http(
        s.http,
        method,
        path,
        &headers,
        text.as_deref().map(str::as_bytes),
    )
}

fn ok(a: HttpAnswer, status: u16) -> Value {
    assert_eq!(a.status, status, "{}", a.body);
    if a.body.is_empty() {
        Value::Null
    } else {
        a.json()
    }
}

fn error_code(a: &HttpAnswer) -> String {
    a.json()["error"]["code"].as_str().unwrap_or("").to_string()
}

/// `tokens create` prints the token alone on its last line.
fn token(db: &TestDb, name: &str, scope: &str) -> String {
    let out = cli(
        &db.url,
        &["tokens", "create", "--name", name, "--scope", scope],
    );
    out.lines().last().expect("a token line").trim().to_string()
}

fn jwt(claims: Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_KEY.as_bytes()),
    )
    .expect("a JWT")
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

const ENV: [(&str, &str); 5] = [
    ("EDGE_API_JWT_HS256_SECRET", JWT_KEY),
    ("EDGE_API_JWT_ISSUER", "control-plane"),
    ("EDGE_API_JWT_AUDIENCE", "edge"),
    ("EDGE_API_MAX_BODY_BYTES", "4096"),
    ("EDGE_API_COA_TIMEOUT_MS", "300"),
];

fn server(db: &TestDb) -> Server {
    Server::start_with(&db.url, &ENV)
}

/// Credentials: none, forged, expired, wrong audience, read scope on a write; what passes is
/// audited under its name.
fn authentication(backend: Backend) {
    let db = TestDb::new(backend);
    let write = token(&db, "ops", "write");
    let read = token(&db, "viewer", "read");
    let mut env = ENV.to_vec();
    env.push(("EDGE_API_METRICS_REQUIRE_TOKEN", "true"));
    let s = Server::start_with(&db.url, &env);
    let list = "/api/v1/subscribers";
    for bad in [None, Some("edge_forged"), Some("not-a-token"), Some("")] {
        let a = call(&s, bad, "GET", list, None);
        assert_eq!(a.status, 401, "{bad:?}: {}", a.body);
        assert_eq!(error_code(&a), "unauthorized");
        assert!(!a.json()["error"]["request_id"].as_str().unwrap().is_empty());
    }
    let basic = http(
        s.http,
        "GET",
        list,
        &["Authorization: Basic b3BzOnB3"],
        None,
    );
    assert_eq!(basic.status, 401);
    ok(call(&s, Some(&read), "GET", list, None), 200);
    let denied = call(
        &s,
        Some(&read),
        "POST",
        list,
        Some(json!({"username": "x", "password": "y"})),
    );
    assert_eq!(denied.status, 403);
    assert_eq!(error_code(&denied), "forbidden");

    let claims = |exp: i64, aud: &str, scope: &str| json!({"sub": "control-plane-svc", "iss": "control-plane", "aud": aud, "exp": exp, "scope": scope});
    let expired = call(
        &s,
        Some(&jwt(claims(now() - 3600, "edge", "write"))),
        "GET",
        list,
        None,
    );
    assert_eq!(expired.status, 401);
    assert!(expired.body.contains("expired"), "{}", expired.body);
    let other_aud = call(
        &s,
        Some(&jwt(claims(now() + 600, "other", "write"))),
        "GET",
        list,
        None,
    );
    assert_eq!(other_aud.status, 401);
    let read_jwt = jwt(claims(now() + 600, "edge", "read"));
    ok(call(&s, Some(&read_jwt), "GET", list, None), 200);
    assert_eq!(
        call(&s, Some(&read_jwt), "DELETE", "/api/v1/subscribers/x", None).status,
        403
    );
    let write_jwt = jwt(claims(now() + 600, "edge", "read write"));
    let created = call(
        &s,
        Some(&write_jwt),
        "POST",
        list,
        Some(json!({"username": "carol", "password": "pw"})),
    );
    let request_id = created.header("x-request-id").unwrap_or("").to_string();
    ok(created, 201);

    // The audit log: the JWT's subject, the path, the request id; a refused write too.
    let audit = ok(call(&s, Some(&read), "GET", "/api/v1/audit", None), 200);
    let entries = audit["data"].as_array().unwrap();
    assert!(entries.iter().any(|e| e["actor"] == "jwt:control-plane-svc"
        && e["path"] == "/api/v1/subscribers"
        && e["status"] == 201
        && e["request_id"] == request_id.as_str()));
    // Refused before authentication: never audited (no one to name).
    assert!(!entries.iter().any(|e| e["status"] == 401));

    // Health stays open; metrics need a token when configured so.
    assert_eq!(http(s.http, "GET", "/health/live", &[], None).status, 200);
    assert_eq!(http(s.http, "GET", "/metrics", &[], None).status, 401);
    let m = call(&s, Some(&read), "GET", "/metrics", None);
    assert_eq!(m.status, 200);
    assert!(
        m.body.contains("edge_api_auth_failures_total"),
        "{}",
        m.body
    );

    // Tokens made through the API work at once and stop working when revoked.
    let made = ok(
        call(
            &s,
            Some(&write),
            "POST",
            "/api/v1/tokens",
            Some(json!({"name": "ci", "scope": "read"})),
        ),
        201,
    );
    let ci = made["data"]["token"].as_str().unwrap().to_string();
    ok(call(&s, Some(&ci), "GET", list, None), 200);
    let listed = ok(call(&s, Some(&write), "GET", "/api/v1/tokens", None), 200);
    assert!(
        !listed.to_string().contains(&ci),
        "a listing shows no token"
    );
    assert_eq!(listed["data"].as_array().unwrap().len(), 3);
    assert_eq!(
        call(&s, Some(&write), "DELETE", "/api/v1/tokens/ci", None).status,
        204
    );
    assert_eq!(call(&s, Some(&ci), "GET", list, None).status, 401);
}

/// Malformed requests get 4xx with the error envelope; nothing a client sends gets a 5xx.
fn validation(backend: Backend) {
    let db = TestDb::new(backend);
    let t = token(&db, "ops", "write");
    let s = server(&db);
    let post = |path: &str, body: &[u8], ctype: &str| {
        http(
            s.http,
            "POST",
            path,
            &[&format!("Authorization: Bearer {t}"), ctype],
            Some(body),
        )
    };
    let json_ct = "Content-Type: application/json";
    let a = post(
        "/api/v1/subscribers",
        br#"{"username": "a", "password": "b", "colour": 1}"#,
        json_ct,
    );
    assert_eq!(
        (a.status, error_code(&a)),
        (422, "validation_failed".into()),
        "{}",
        a.body
    );
    assert_eq!(a.json()["error"]["details"][0]["field"], "colour");
    let a = post("/api/v1/subscribers", br#"{"username": "a""#, json_ct);
    assert_eq!((a.status, error_code(&a)), (400, "invalid_json".into()));
    let a = post("/api/v1/subscribers", br#"{"username": "a"}"#, json_ct);
    assert_eq!(a.status, 422, "missing password: {}", a.body);
    let a = post(
        "/api/v1/subscribers",
        b"username=a",
        "Content-Type: text/plain",
    );
    assert_eq!(
        (a.status, error_code(&a)),
        (415, "unsupported_media_type".into())
    );
    let big = format!(r#"{{"username": "a", "password": "{}"}}"#, "x".repeat(8000));
    let a = post("/api/v1/subscribers", big.as_bytes(), json_ct);
    assert_eq!(
        (a.status, error_code(&a)),
        (413, "payload_too_large".into())
    );
    let a = post(
        "/api/v1/subscribers",
        br#"{"username": "a\u0000", "password": "b"}"#,
        json_ct,
    );
    assert_eq!(a.status, 400, "NUL in text: {}", a.body);
    let a = post(
        "/api/v1/subscribers",
        br#"{"username": "a", "password": "b", "plan": "nope"}"#,
        json_ct,
    );
    assert_eq!(a.status, 422);
    assert_eq!(a.json()["error"]["details"][0]["field"], "plan");
    let a = post(
        "/api/v1/plans",
        br#"{"name": "p", "reply_attributes": ["No-Such-Attribute = 1"]}"#,
        json_ct,
    );
    assert_eq!(a.status, 422, "{}", a.body);
    let a = post(
        "/api/v1/nas",
        br#"{"name": "n", "address": "nowhere", "secret": "s"}"#,
        json_ct,
    );
    assert_eq!(a.json()["error"]["details"][0]["field"], "address");
    let a = post(
        "/api/v1/pools",
        br#"{"name": "p", "ranges": ["10.0.0.0/33"]}"#,
        json_ct,
    );
    assert_eq!(a.status, 422, "{}", a.body);

    let get = |path: &str| call(&s, Some(&t), "GET", path, None);
    let a = get("/api/v1/sessions?limit=0");
    assert_eq!(a.status, 422);
    let a = get("/api/v1/sessions?status=sideways");
    assert_eq!(a.status, 422);
    let a = get("/api/v1/sessions?since=yesterday");
    assert_eq!((a.status, error_code(&a)), (400, "invalid_query".into()));
    let a = get("/api/v1/sessions?frobnicate=1");
    assert_eq!(a.status, 400, "unknown query parameters are refused");
    let a = get("/api/v1/sessions?cursor=%%%");
    assert!(a.status == 400 || a.status == 422, "{}", a.body);
    let a = get("/api/v1/sessions?cursor=bm9wZQ");
    assert_eq!(a.status, 422, "{}", a.body);
    let a = get("/api/v1/nothing-here");
    assert_eq!((a.status, error_code(&a)), (404, "not_found".into()));
    let a = call(&s, Some(&t), "PUT", "/api/v1/sessions", None);
    assert_eq!(
        (a.status, error_code(&a)),
        (405, "method_not_allowed".into())
    );
    assert_eq!(get("/api/v1/subscribers/nobody").status, 404);

    // A spray of odd requests: never a 5xx, always the envelope.
    let paths = [
        "/api/v1/sessions/%00",
        "/api/v1/subscribers/%ff%fe",
        "/api/v1/pools/x/usage",
        "/api/v1/pools/x/available?count=99999",
        "/api/v1/leases?limit=-1",
        "/api/v1/audit?cursor=AAAA",
        "/api/v1/subscribers/a/usage?period=year",
        "/api/v1/sessions?until=99999999999999999999999",
        "/api/v1/../../etc/passwd",
        "/api/v1/sessions?username=%27%3B%20DROP%20TABLE%20sessions%3B--",
        "/api/v1/sessions?username=a%00b",
        "/api/v1/leases?address=%00",
    ];
    for p in paths {
        for m in ["GET", "POST", "PATCH", "DELETE"] {
            let a = http(
                s.http,
                m,
                p,
                &[&format!("Authorization: Bearer {t}"), json_ct],
                Some(b"{\"x\":[1,2,{\"y\":null}]}"),
            );
            assert!(a.status < 500, "{m} {p}: {} {}", a.status, a.body);
            if a.status >= 400 {
                assert!(!error_code(&a).is_empty(), "{m} {p}: {}", a.body);
            }
        }
    }
    assert_eq!(
        call(&s, Some(&t), "GET", "/api/v1/sessions", None).status,
        200,
        "the sessions table survived"
    );
}

/// NAS, plans, subscribers, pools and leases: create, read, change, list by pages, delete.
fn resources(backend: Backend) {
    let db = TestDb::new(backend);
    let t = token(&db, "ops", "write");
    let s = server(&db);
    let c = |m: &str, p: &str, b: Option<Value>| call(&s, Some(&t), m, p, b);

    let nas = ok(
        c(
            "POST",
            "/api/v1/nas",
            Some(
                json!({"name": "bng1", "address": "127.0.0.1", "secret": SECRET, "vendor": "mikrotik"}),
            ),
        ),
        201,
    );
    assert_eq!(nas["data"]["coa_port"], 3799);
    assert!(
        !nas.to_string().contains(SECRET),
        "the secret is never shown"
    );
    assert_eq!(
        c(
            "POST",
            "/api/v1/nas",
            Some(json!({"name": "bng1", "address": "127.0.0.2", "secret": "x"}))
        )
        .status,
        409
    );
    ok(c("GET", "/api/v1/nas/bng1", None), 200);

    ok(
        c(
            "POST",
            "/api/v1/pools",
            Some(json!({"name": "v4", "ranges": ["10.8.0.0/29"], "excludes": ["10.8.0.1"]})),
        ),
        201,
    );
    let plan = ok(
        c(
            "POST",
            "/api/v1/plans",
            Some(
                json!({"name": "gold", "reply_attributes": ["Mikrotik-Rate-Limit = \"50M/50M\""],
                "pool": "v4", "interim_interval_seconds": 60}),
            ),
        ),
        201,
    );
    assert_eq!(plan["data"]["pool"], "v4");
    let a = c(
        "POST",
        "/api/v1/plans",
        Some(json!({"name": "bad", "pool": "v6-nope"})),
    );
    assert_eq!(a.status, 422);

    for n in ["ann", "ben", "cat", "dan", "eve"] {
        ok(
            c(
                "POST",
                "/api/v1/subscribers",
                Some(json!({"username": n, "password": "pw", "plan": "gold"})),
            ),
            201,
        );
    }
    assert_eq!(
        c(
            "POST",
            "/api/v1/subscribers",
            Some(json!({"username": "ann", "password": "pw"}))
        )
        .status,
        409
    );
    // Pages of two: every subscriber once, in order, and the last page says so.
    let mut seen = Vec::new();
    let mut path = "/api/v1/subscribers?limit=2".to_string();
    loop {
        let page = ok(c("GET", &path, None), 200);
        for item in page["data"].as_array().unwrap() {
            seen.push(item["username"].as_str().unwrap().to_string());
        }
        match page["links"]["next"].as_str() {
            Some(next) => path = next.to_string(),
            None => {
                assert!(page["meta"]["next_cursor"].is_null());
                break;
            }
        }
    }
    assert_eq!(seen, ["ann", "ben", "cat", "dan", "eve"]);

    let patched = ok(
        c(
            "PATCH",
            "/api/v1/subscribers/ben",
            Some(json!({"status": "suspended", "static_ipv4": "10.8.0.6", "plan": null})),
        ),
        200,
    );
    assert_eq!(patched["data"]["status"], "suspended");
    assert_eq!(patched["data"]["plan"], Value::Null);
    assert_eq!(patched["data"]["static_ipv4"], "10.8.0.6");
    let got = ok(c("GET", "/api/v1/subscribers/ben", None), 200);
    assert_eq!(got["data"], patched["data"]);
    assert!(!got.to_string().contains("\"password\""));
    assert_eq!(c("DELETE", "/api/v1/subscribers/eve", None).status, 204);
    assert_eq!(c("GET", "/api/v1/subscribers/eve", None).status, 404);
    // The plan is in use: refused.
    assert_eq!(c("DELETE", "/api/v1/plans/gold", None).status, 409);

    // IPAM: usage, next free (the static 10.8.0.6 and the exclude are not free), reserve.
    let usage = ok(c("GET", "/api/v1/pools/v4/usage", None), 200);
    assert_eq!(usage["data"]["total"], 4, "{usage}");
    let free = ok(c("GET", "/api/v1/pools/v4/available?count=10", None), 200);
    assert_eq!(
        free["data"],
        json!(["10.8.0.2", "10.8.0.3", "10.8.0.4", "10.8.0.5"])
    );
    let reserved = c(
        "POST",
        "/api/v1/pools/v4/reservations",
        Some(json!({"address": "10.8.0.2"})),
    );
    assert_eq!(reserved.header("location"), Some("/api/v1/pools/v4"));
    ok(reserved, 201);
    let free = ok(c("GET", "/api/v1/pools/v4/available?count=1", None), 200);
    assert_eq!(free["data"], json!(["10.8.0.3"]));
    assert_eq!(
        c(
            "DELETE",
            "/api/v1/pools/v4/reservations?address=10.8.0.2",
            None
        )
        .status,
        204
    );
    assert_eq!(
        c(
            "DELETE",
            "/api/v1/pools/v4/reservations?address=10.8.0.2",
            None
        )
        .status,
        404
    );
    let pool = ok(c("GET", "/api/v1/pools/v4", None), 200);
    assert_eq!(pool["data"]["excludes"], json!(["10.8.0.1"]));
    assert_eq!(pool["data"]["size"], 6);

    // The audit log pages too, newest first.
    let first = ok(c("GET", "/api/v1/audit?limit=3", None), 200);
    assert_eq!(first["data"].as_array().unwrap().len(), 3);
    let next = first["links"]["next"].as_str().unwrap().to_string();
    let second = ok(c("GET", &next, None), 200);
    let ids: HashSet<String> = first["data"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["data"].as_array().unwrap())
        .map(|e| e["request_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        ids.len(),
        first["data"].as_array().unwrap().len() + second["data"].as_array().unwrap().len()
    );
    assert_eq!(c("DELETE", "/api/v1/nas/bng1", None).status, 204);
}

/// A request's attributes: (type, value) in order.
type Attrs = Vec<(u8, Vec<u8>)>;

/// What the NAS simulator saw and how it answers.
#[derive(Default)]
struct NasLog {
    /// (code, attributes by type) of every request whose authenticator verified.
    requests: Vec<(u8, Attrs)>,
    /// Requests whose authenticator or Message-Authenticator did not verify.
    forged: usize,
}

#[derive(Clone, Copy)]
enum Mode {
    /// ACK what names a known Acct-Session-Id, NAK (Error-Cause 503) the rest.
    Answer,
    /// Ignore the first copy of each request (the client must resend it).
    DropFirst,
    Silent,
}

/// A NAS on loopback answering Disconnect and CoA requests (RFC 5176), checking each
/// request's authenticator with its own MD5.
struct NasSim {
    port: u16,
    log: Arc<Mutex<NasLog>>,
    mode: Arc<Mutex<Mode>>,
}

impl NasSim {
    fn start(known_sessions: &[&str]) -> NasSim {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let port = sock.local_addr().expect("addr").port();
        let log = Arc::new(Mutex::new(NasLog::default()));
        let mode = Arc::new(Mutex::new(Mode::Answer));
        let known: HashSet<Vec<u8>> = known_sessions
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect();
        let (l, m) = (Arc::clone(&log), Arc::clone(&mode));
        std::thread::spawn(move || {
            let mut seen_ids = HashSet::new();
            let mut buf = [0u8; 4096];
            // Bounded: the simulator lives for the test (at most a few minutes).
            let deadline = std::time::Instant::now() + Duration::from_secs(600);
            while std::time::Instant::now() < deadline {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                let p = &buf[..n];
                if n < 20 || usize::from(u16::from_be_bytes([p[2], p[3]])) != n {
                    continue;
                }
                let mut zeroed = p.to_vec();
                zeroed[4..20].fill(0);
                let expect: [u8; 16] = Md5::new()
                    .chain_update(&zeroed)
                    .chain_update(SECRET)
                    .finalize()
                    .into();
                let attrs = parse_attrs(&p[20..]);
                let ma_ok = attrs
                    .iter()
                    .find(|(t, _)| *t == 80)
                    .is_none_or(|(_, v)| message_authenticator_ok(&zeroed, v));
                if expect != p[4..20] || !ma_ok {
                    l.lock().unwrap().forged += 1;
                    continue;
                }
                let mode = *m.lock().unwrap();
                let first = seen_ids.insert((p[1], p[4..20].to_vec()));
                match mode {
                    Mode::Silent => continue,
                    Mode::DropFirst if first => continue,
                    _ => {}
                }
                let session = attrs.iter().find(|(t, _)| *t == 44).map(|(_, v)| v.clone());
                let ack = session.is_some_and(|s| known.contains(&s));
                l.lock().unwrap().requests.push((p[0], attrs));
                let code = match (p[0], ack) {
                    (40, true) => 41,
                    (40, false) => 42,
                    (43, true) => 44,
                    _ => 45,
                };
                let mut resp = vec![code, p[1], 0, 0];
                resp.extend_from_slice(&[0u8; 16]);
                if !ack {
                    resp.extend_from_slice(&[101, 6, 0, 0, 0x01, 0xf7]); // Error-Cause 503
                }
                let len = resp.len() as u16;
                resp[2..4].copy_from_slice(&len.to_be_bytes());
                let auth: [u8; 16] = Md5::new()
                    .chain_update(&resp[..4])
                    .chain_update(&p[4..20])
                    .chain_update(&resp[20..])
                    .chain_update(SECRET)
                    .finalize()
                    .into();
                resp[4..20].copy_from_slice(&auth);
                let _ = sock.send_to(&resp, from);
            }
        });
        NasSim { port, log, mode }
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn last(&self) -> (u8, Attrs) {
        self.log
            .lock()
            .unwrap()
            .requests
            .last()
            .cloned()
            .expect("a request reached the NAS")
    }
}

fn parse_attrs(mut b: &[u8]) -> Attrs {
    let mut out = Vec::new();
    while b.len() >= 2 && usize::from(b[1]) >= 2 && usize::from(b[1]) <= b.len() {
        out.push((b[0], b[2..usize::from(b[1])].to_vec()));
        b = &b[usize::from(b[1])..];
    }
    out
}

/// HMAC-MD5 over the packet with the authenticator and Message-Authenticator zeroed
/// (RFC 5176 section 3.3), written out from RFC 2104.
fn message_authenticator_ok(zeroed_auth: &[u8], got: &[u8]) -> bool {
    let mut p = zeroed_auth.to_vec();
    let mut off = 20;
    while off + 2 <= p.len() {
        let len = usize::from(p[off + 1]);
        if p[off] == 80 && len == 18 {
            p[off + 2..off + 18].fill(0);
        }
        off += len.max(2);
    }
    let mut key = [0u8; 64];
    key[..SECRET.len()].copy_from_slice(SECRET.as_bytes());
    let pad = |b: u8| key.iter().map(|k| k ^ b).collect::<Vec<u8>>();
    let inner = Md5::new()
        .chain_update(pad(0x36))
        .chain_update(&p)
        .finalize();
    let outer: [u8; 16] = Md5::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into();
    outer == got
}

fn attr(attrs: &[(u8, Vec<u8>)], t: u8) -> Option<&[u8]> {
    attrs
        .iter()
        .find(|(k, _)| *k == t)
        .map(|(_, v)| v.as_slice())
}

/// Sessions from radclient, queried and filtered through the API; Disconnect and CoA to
/// the NAS simulator with ACK, NAK, a lost datagram and a silent NAS.
fn sessions_and_dynamic_authorization(backend: Backend) {
    let db = TestDb::new(backend);
    let nas = NasSim::start(&["s-alice-1", "s-bob-1"]);
    cli_line(
        &db.url,
        &format!(
            "nas add --name bng1 --address 127.0.0.1 --secret {SECRET} --vendor mikrotik --coa-port {}",
            nas.port
        ),
    );
    cli(
        &db.url,
        &[
            "plans",
            "add",
            "--name",
            "gold",
            "--reply",
            "Mikrotik-Rate-Limit = \"100M/100M\"",
        ],
    );
    for u in ["alice", "bob"] {
        cli_line(
            &db.url,
            &format!("subscribers add --username {u} --password pw --plan gold"),
        );
    }
    let t = token(&db, "ops", "write");
    let s = server(&db);
    let c = |m: &str, p: &str, b: Option<Value>| call(&s, Some(&t), m, p, b);

    accounting(
        &s,
        SECRET,
        "Start",
        "alice",
        "s-alice-1",
        "Framed-IP-Address = 100.64.0.7\nCalling-Station-Id = \"aa-bb-cc-00-00-01\"\n",
    );
    accounting(
        &s,
        SECRET,
        "Start",
        "bob",
        "s-bob-1",
        "Framed-IP-Address = 100.64.0.8\n",
    );
    accounting(
        &s,
        SECRET,
        "Start",
        "bob",
        "s-bob-gone",
        "Framed-IP-Address = 100.64.0.9\n",
    );
    accounting(&s, SECRET, "Start", "alice", "s-alice-0", "");
    accounting(
        &s,
        SECRET,
        "Stop",
        "alice",
        "s-alice-0",
        "Acct-Session-Time = 60\nAcct-Input-Octets = 1000\nAcct-Output-Octets = 5000\n",
    );

    let active = ok(c("GET", "/api/v1/sessions?status=active", None), 200);
    assert_eq!(active["data"].as_array().unwrap().len(), 3, "{active}");
    let closed = ok(
        c("GET", "/api/v1/sessions?status=closed&username=alice", None),
        200,
    );
    assert_eq!(closed["data"][0]["acct_session_id"], "s-alice-0");
    assert_eq!(closed["data"][0]["acct_output_octets"], 5000);
    let by_ip = ok(
        c("GET", "/api/v1/sessions?framed_ip_address=100.64.0.8", None),
        200,
    );
    assert_eq!(by_ip["data"][0]["username"], "bob");
    let by_mac = ok(
        c(
            "GET",
            "/api/v1/sessions?calling_station_id=aa-bb-cc-00-00-01",
            None,
        ),
        200,
    );
    assert_eq!(by_mac["data"].as_array().unwrap().len(), 1);
    let by_nas = ok(
        c(
            "GET",
            "/api/v1/sessions?nas_ip_address=127.0.0.1&limit=2",
            None,
        ),
        200,
    );
    assert_eq!(by_nas["data"].as_array().unwrap().len(), 2);
    let rest = ok(
        c("GET", by_nas["links"]["next"].as_str().unwrap(), None),
        200,
    );
    assert_eq!(rest["data"].as_array().unwrap().len(), 2);
    let none = ok(
        c(
            "GET",
            &format!("/api/v1/sessions?since={}", now() + 3600),
            None,
        ),
        200,
    );
    assert!(none["data"].as_array().unwrap().is_empty());
    let alice_id = ok(
        c("GET", "/api/v1/sessions?status=active&username=alice", None),
        200,
    )["data"][0]["acct_unique_id"]
        .as_str()
        .unwrap()
        .to_string();
    let one = ok(c("GET", &format!("/api/v1/sessions/{alice_id}"), None), 200);
    assert_eq!(one["data"]["framed_ip_address"], "100.64.0.7");
    let usage = ok(c("GET", "/api/v1/subscribers/alice/usage", None), 200);
    assert_eq!(usage["data"][0]["output_octets"], 5000, "{usage}");
    assert_eq!(usage["data"][0]["sessions"], 2);
    let monthly = ok(
        c("GET", "/api/v1/subscribers/alice/usage?period=month", None),
        200,
    );
    assert_eq!(monthly["data"][0]["period"].as_str().unwrap().len(), 7);

    // Disconnect: ACK, and the NAS saw MikroTik's identification, signed with its secret.
    let r = ok(
        c(
            "POST",
            &format!("/api/v1/sessions/{alice_id}/disconnect"),
            None,
        ),
        200,
    );
    assert_eq!(r["data"]["result"], "ack", "{r}");
    assert_eq!(r["data"]["tries"], 1);
    let (code, attrs) = nas.last();
    assert_eq!(code, 40);
    assert_eq!(attr(&attrs, 1), Some(&b"alice"[..]));
    assert_eq!(attr(&attrs, 44), Some(&b"s-alice-1"[..]));
    assert_eq!(attr(&attrs, 8), Some(&[100, 64, 0, 7][..]));
    assert!(attr(&attrs, 80).is_some(), "Message-Authenticator");
    assert_eq!(nas.log.lock().unwrap().forged, 0);

    // CoA with a plan's rate limit: the vendor attribute reaches the NAS.
    let r = ok(
        c(
            "POST",
            &format!("/api/v1/sessions/{alice_id}/coa"),
            Some(json!({"plan": "gold"})),
        ),
        200,
    );
    assert_eq!(r["data"]["result"], "ack");
    let (code, attrs) = nas.last();
    assert_eq!(code, 43);
    let vsa = attr(&attrs, 26).expect("a vendor-specific attribute");
    assert_eq!(&vsa[..4], &14988u32.to_be_bytes(), "MikroTik's vendor id");
    assert!(vsa.ends_with(b"100M/100M"));
    let bad = c(
        "POST",
        &format!("/api/v1/sessions/{alice_id}/coa"),
        Some(json!({})),
    );
    assert_eq!(bad.status, 422);

    // A session the NAS does not know: NAK with the Error-Cause.
    let gone = ok(
        c("GET", "/api/v1/sessions?framed_ip_address=100.64.0.9", None),
        200,
    )["data"][0]["acct_unique_id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = ok(
        c("POST", &format!("/api/v1/sessions/{gone}/disconnect"), None),
        200,
    );
    assert_eq!(r["data"]["result"], "nak");
    assert_eq!(r["data"]["error_cause"], 503);
    assert_eq!(r["data"]["error_cause_name"], "Session-Context-Not-Found");

    // A lost datagram is sent again (same request); a silent NAS is a timeout after 3 tries.
    nas.set(Mode::DropFirst);
    let r = ok(
        c(
            "POST",
            &format!("/api/v1/sessions/{alice_id}/disconnect"),
            None,
        ),
        200,
    );
    assert_eq!(
        (r["data"]["result"].as_str(), r["data"]["tries"].as_u64()),
        (Some("ack"), Some(2))
    );
    nas.set(Mode::Silent);
    let r = ok(
        c(
            "POST",
            &format!("/api/v1/sessions/{alice_id}/disconnect"),
            None,
        ),
        200,
    );
    assert_eq!(
        (r["data"]["result"].as_str(), r["data"]["tries"].as_u64()),
        (Some("timeout"), Some(3))
    );
    nas.set(Mode::Answer);

    // Every session of a subscriber, from the API and from the CLI.
    let r = ok(c("POST", "/api/v1/subscribers/bob/disconnect", None), 200);
    let results: Vec<&str> = r["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["result"].as_str().unwrap())
        .collect();
    assert_eq!(results.len(), 2);
    assert!(results.contains(&"ack") && results.contains(&"nak"), "{r}");
    let out = common::cli_output(&db.url, &["sessions", "disconnect", "--session", &alice_id]);
    let line: Value = serde_json::from_slice(&out.stdout).expect("a JSON line");
    assert_eq!(line["result"], "ack");
    assert_eq!(
        c("POST", "/api/v1/sessions/no-such-session/disconnect", None).status,
        404
    );
    assert!(s.metric("edge_coa_requests_total{kind=\"disconnect\",result=\"ack\"}") >= 3.0);
}

/// An operator frees a lease through the API; one held by an open session is refused.
fn lease_release(backend: Backend) {
    let db = TestDb::new(backend);
    cli_line(
        &db.url,
        &format!("nas add --name bng1 --address 127.0.0.1 --secret {SECRET}"),
    );
    cli_line(&db.url, "pools add --name v4 --cidr 10.9.0.0/30");
    cli_line(&db.url, "plans add --name dyn --pool v4");
    for u in ["ann", "ben", "cy"] {
        cli_line(
            &db.url,
            &format!("subscribers add --username {u} --password pw --plan dyn"),
        );
    }
    let t = token(&db, "ops", "write");
    let s = server(&db);
    let c = |m: &str, p: &str, b: Option<Value>| call(&s, Some(&t), m, p, b);
    let auth = |u: &str| {
        let out = common::radclient(
            s.auth,
            "auth",
            SECRET,
            &format!("User-Name = \"{u}\"\nUser-Password = \"pw\"\nMessage-Authenticator = 0x00\n"),
        );
        out.lines().find_map(|l| {
            l.trim()
                .strip_prefix("Framed-IP-Address = ")
                .map(str::to_string)
        })
    };
    let a = auth("ann").expect("an address for ann");
    let b = auth("ben").expect("an address for ben");
    assert_eq!(auth("cy"), None, "a /30 holds two");
    accounting(
        &s,
        SECRET,
        "Start",
        "ben",
        "s-ben",
        &format!("Framed-IP-Address = {b}\n"),
    );
    let leases = ok(c("GET", &format!("/api/v1/leases?address={b}"), None), 200);
    assert_eq!(leases["data"][0]["state"], "bound");
    assert_eq!(leases["data"][0]["pool"], "v4");
    let refused = c(
        "POST",
        "/api/v1/leases/release",
        Some(json!({"address": b})),
    );
    assert_eq!(
        (refused.status, error_code(&refused)),
        (409, "conflict".into())
    );
    let released = ok(
        c(
            "POST",
            "/api/v1/leases/release",
            Some(json!({"address": a})),
        ),
        200,
    );
    assert_eq!(released["data"]["state"], "released");
    // The owning instance takes the release in its next sync: cy gets ann's address.
    assert!(
        common::eventually(Duration::from_secs(10), || auth("cy").as_deref()
            == Some(a.as_str())),
        "the released address is handed out again"
    );
    assert_eq!(
        c(
            "POST",
            "/api/v1/leases/release",
            Some(json!({"address": "10.200.0.1"}))
        )
        .status,
        404
    );
}

/// `--roles api` serves the API and no RADIUS; `--roles radius` no API.
fn roles(backend: Backend) {
    let db = TestDb::new(backend);
    let t = token(&db, "ops", "read");
    let api_only = Server::start_args(&db.url, &["--roles", "api"], &[]);
    ok(call(&api_only, Some(&t), "GET", "/api/v1/plans", None), 200);
    let out = common::radclient(
        api_only.auth,
        "status",
        "x",
        "Message-Authenticator = 0x00\n",
    );
    assert!(
        !out.contains("Received"),
        "no RADIUS in an API-only process: {out}"
    );
    let radius_only = Server::start_args(&db.url, &["--roles", "radius"], &[]);
    assert_eq!(
        call(&radius_only, Some(&t), "GET", "/api/v1/plans", None).status,
        404
    );
    let doc = http(api_only.http, "GET", "/api/v1/openapi.json", &[], None).json();
    assert_eq!(doc["openapi"], "3.1.0");
    for p in [
        "/api/v1/sessions",
        "/api/v1/sessions/{id}/disconnect",
        "/api/v1/sessions/{id}/coa",
        "/api/v1/subscribers/{username}/usage",
        "/api/v1/pools/{name}/available",
        "/api/v1/leases/release",
        "/api/v1/audit",
    ] {
        assert!(doc["paths"][p].is_object(), "{p} in the OpenAPI document");
    }
}

#[test]
fn authentication_sqlite() {
    authentication(Backend::Sqlite);
}

#[test]
fn authentication_postgres() {
    authentication(Backend::Postgres);
}

#[test]
fn validation_sqlite() {
    validation(Backend::Sqlite);
}

#[test]
fn validation_postgres() {
    validation(Backend::Postgres);
}

#[test]
fn resources_sqlite() {
    resources(Backend::Sqlite);
}

#[test]
fn resources_postgres() {
    resources(Backend::Postgres);
}

#[test]
fn sessions_and_dynamic_authorization_sqlite() {
    sessions_and_dynamic_authorization(Backend::Sqlite);
}

#[test]
fn sessions_and_dynamic_authorization_postgres() {
    sessions_and_dynamic_authorization(Backend::Postgres);
}

#[test]
fn lease_release_sqlite() {
    lease_release(Backend::Sqlite);
}

#[test]
fn lease_release_postgres() {
    lease_release(Backend::Postgres);
}

#[test]
fn roles_sqlite() {
    roles(Backend::Sqlite);
}
