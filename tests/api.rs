//! The REST API as the control plane and operations staff see it: real HTTP on loopback,
//! tokens from the CLI, JWTs signed here; credentials, validation (no input gets a 5xx),
//! resources with pagination, roles and the OpenAPI document. Both backends. Sessions and
//! Disconnect/CoA are in `api_dynauth.rs`.

mod common;

use std::collections::HashSet;

use common::api_client::{call, error_code, jwt, now, ok, server, token, ENV};
use common::{http, sql, Backend, Server, TestDb};
use edge_shared::accounting::AcctEvent;
use edge_shared::journal;
use edge_shared::leases::{LeaseChange, LeaseState};
use edge_shared::types::PoolId;
use serde_json::{json, Value};

const SECRET: &str = "api-nas-s3cret";

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
    // `fields=` names shown session fields only: not the bookkeeping column, not SQL.
    for bad in [
        "password",
        "start_reported",
        "username,",
        "",
        "username%3B%20DROP%20TABLE%20sessions",
    ] {
        for path in ["/api/v1/sessions", "/api/v1/sessions/some-id"] {
            let a = get(&format!("{path}?fields={bad}"));
            assert_eq!(a.status, 422, "{path} fields={bad}: {}", a.body);
            assert_eq!(a.json()["error"]["details"][0]["field"], "fields");
        }
    }
    let a = get("/api/v1/sessions/some-id?frobnicate=1");
    assert_eq!(a.status, 400, "unknown query parameters are refused");
    // A request id the caller gives is echoed in the header and the error body.
    let a = http(
        s.http,
        "GET",
        "/api/v1/sessions?limit=0",
        &[
            &format!("Authorization: Bearer {t}"),
            "X-Request-Id: ticket-4711",
        ],
        None,
    );
    assert_eq!(a.header("x-request-id"), Some("ticket-4711"));
    assert_eq!(a.json()["error"]["request_id"], "ticket-4711");
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
        "/api/v1/devices/%00/parameters?prefix=%25",
        "/api/v1/devices?tag=%22%25&cursor=%ff",
        "/api/v1/devices/x/tasks?connection_request=maybe",
        "/api/v1/tasks/99999999999999999999",
        "/api/v1/tasks?cursor=LTE",
        "/api/v1/presets/..%2f..",
        "/api/v1/files/.hidden?file_type=%00",
        "/api/v1/files/%2e%2e%2fetc%2fpasswd",
    ];
    for p in paths {
        for m in ["GET", "POST", "PATCH", "PUT", "DELETE"] {
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
    // Creates of one new name at once: one is created, the others are refused, none
    // overwrites it.
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let body = json!({"username": "zed", "password": format!("pw{i}")});
                let (s, t) = (&s, &t);
                scope.spawn(move || {
                    call(s, Some(t), "POST", "/api/v1/subscribers", Some(body)).status
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a request"))
            .collect()
    });
    let mut counts = statuses.clone();
    counts.sort_unstable();
    assert_eq!(
        counts,
        [201, 409, 409, 409, 409, 409, 409, 409],
        "{statuses:?}"
    );
    ok(c("DELETE", "/api/v1/subscribers/zed", None), 204);
    // A static address belongs to one subscriber.
    let with_static = |n: &str| {
        c(
            "POST",
            "/api/v1/subscribers",
            Some(json!({"username": n, "password": "pw", "static_ipv4": "192.0.2.7"})),
        )
    };
    ok(with_static("st1"), 201);
    let refused = with_static("st2");
    assert_eq!(
        (refused.status, error_code(&refused)),
        (409, "conflict".into())
    );
    assert!(refused.body.contains("192.0.2.7"), "{}", refused.body);
    ok(c("DELETE", "/api/v1/subscribers/st1", None), 204);
    ok(with_static("st2"), 201);
    ok(c("DELETE", "/api/v1/subscribers/st2", None), 204);
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

/// A lease as the accounting journal holds it before its fold: one row of one event, as a
/// data-plane process writes it (the API-only process here folds nothing).
fn journal_lease(db: &TestDb, batch: i64, change: LeaseChange) {
    let entry = journal::encode(&[AcctEvent::Lease(Box::new(change))]);
    let hex = hex::encode(entry);
    let bytes = if db.url.starts_with("sqlite:") {
        format!("X'{hex}'")
    } else {
        format!("'\\x{hex}'::bytea")
    };
    sql(
        &db.url,
        &format!(
            "INSERT INTO acct_journal (writer, batch, created_at, entry) \
             VALUES (77, {batch}, {}, {bytes})",
            now()
        ),
    );
}

/// A static address is refused while a pool's lease holds it for someone else, whether the
/// lease is in `ip_leases` or only in the journal (answered, not yet folded); a newer
/// release in the journal frees it. An operator's release finds an unfolded offer too.
fn static_addresses(backend: Backend) {
    let db = TestDb::new(backend);
    let t = token(&db, "ops", "write");
    let s = Server::start_args(&db.url, &["--roles", "api"], &ENV);
    let c = |m: &str, p: &str, b: Option<Value>| call(&s, Some(&t), m, p, b);
    ok(
        c(
            "POST",
            "/api/v1/pools",
            Some(json!({"name": "v4", "ranges": ["10.8.0.0/29"]})),
        ),
        201,
    );
    for n in ["ann", "ben", "cat", "dan"] {
        ok(
            c(
                "POST",
                "/api/v1/subscribers",
                Some(json!({"username": n, "password": "pw"})),
            ),
            201,
        );
    }
    let pool: i64 = sql(&db.url, "SELECT id FROM ip_pools WHERE name = 'v4'")
        .trim()
        .parse()
        .expect("the pool's id");
    let until = now() + 3600;
    let at_us = now() * 1_000_000;
    let lease = |slot: i64, user: &str, state: LeaseState, at_us: i64| LeaseChange {
        pool: PoolId(pool),
        slot,
        address: format!("10.8.0.{slot}"),
        username: user.into(),
        state,
        unique_id: None,
        expires_at: until,
        at_us,
        instance: "edge-a".into(),
    };
    // Folded: 10.8.0.4 bound to ann. Journaled only: 10.8.0.5 offered to cat, 10.8.0.3 to dan.
    sql(
        &db.url,
        &format!(
            "INSERT INTO ip_leases (pool_id, slot, address, username, state, acct_unique_id, \
             expires_at, updated_us, instance) \
             VALUES ({pool}, 4, '10.8.0.4', 'ann', 'bound', 'u-ann', {until}, {at_us}, 'edge-a')"
        ),
    );
    journal_lease(&db, 1, lease(5, "cat", LeaseState::Offered, at_us));
    journal_lease(&db, 2, lease(3, "dan", LeaseState::Offered, at_us));
    let set_static = |user: &str, ip: &str| {
        c(
            "PATCH",
            &format!("/api/v1/subscribers/{user}"),
            Some(json!({"static_ipv4": ip})),
        )
    };
    for (ip, holder) in [("10.8.0.4", "ann"), ("10.8.0.5", "cat")] {
        let refused = set_static("ben", ip);
        assert_eq!(
            (refused.status, error_code(&refused)),
            (409, "conflict".into()),
            "{ip}: {}",
            refused.body
        );
        assert!(refused.body.contains(holder), "{ip}: {}", refused.body);
    }
    // The holder may make its own address static.
    ok(set_static("cat", "10.8.0.5"), 200);
    // A release journaled after the bound lease: the address is free for ben.
    journal_lease(&db, 3, lease(4, "ann", LeaseState::Released, at_us + 1));
    ok(set_static("ben", "10.8.0.4"), 200);
    // The operator frees dan's unfolded offer; it is stored as released, and stays so when
    // the older offer is folded.
    let released = ok(
        c(
            "POST",
            "/api/v1/leases/release",
            Some(json!({"address": "10.8.0.3"})),
        ),
        200,
    );
    assert_eq!(released["data"]["username"], "dan", "{released}");
    assert_eq!(
        sql(
            &db.url,
            "SELECT username, state FROM ip_leases WHERE address = '10.8.0.3'"
        )
        .trim(),
        "dan|released"
    );
    ok(set_static("ann", "10.8.0.3"), 200);
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
    for p in ["/api/v1/sessions", "/api/v1/sessions/{id}"] {
        let params = doc["paths"][p]["get"]["parameters"].as_array().unwrap();
        assert!(
            params
                .iter()
                .any(|q| q["name"] == "fields" && q["in"] == "query"),
            "{p} documents fields=: {params:?}"
        );
    }
}

/// A database restart (or a failover) closes every pooled connection at once. The reads that
/// follow, once the database answers again, are answered: none gets a 503 for a connection
/// the restart closed.
fn reads_survive_lost_connections(backend: Backend) {
    let db = TestDb::new(backend);
    let t = token(&db, "ops", "read");
    let s = server(&db);
    let reads = [
        "/api/v1/sessions?username=nobody",
        "/api/v1/sessions",
        "/api/v1/subscribers",
        "/api/v1/plans",
        "/api/v1/nas",
        "/api/v1/pools",
        "/api/v1/leases",
    ];
    // Each read once, so the API's pool holds connections that have served them.
    for path in reads {
        ok(call(&s, Some(&t), "GET", path, None), 200);
    }
    for round in 0..3 {
        // What a restart does to the server's connections, without the wait for one: each
        // backend ends (PostgreSQL sends FATAL 57P01 and closes the socket).
        let ended = sql(
            &db.url,
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        );
        assert!(ended.trim().parse::<u32>().unwrap_or(0) > 0, "{ended}");
        for path in reads {
            let a = call(&s, Some(&t), "GET", path, None);
            assert_eq!(
                a.status, 200,
                "round {round}, {path} after the connections were lost: {}",
                a.body
            );
        }
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
fn static_addresses_sqlite() {
    static_addresses(Backend::Sqlite);
}

#[test]
fn static_addresses_postgres() {
    static_addresses(Backend::Postgres);
}

#[test]
fn reads_survive_lost_connections_postgres() {
    reads_survive_lost_connections(Backend::Postgres);
}

#[test]
fn roles_sqlite() {
    roles(Backend::Sqlite);
}
