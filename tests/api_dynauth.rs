//! Sessions and dynamic authorization through the REST API: sessions made by radclient,
//! queried and filtered; Disconnect and CoA to a NAS simulator that verifies each request
//! itself (ACK, NAK, a lost datagram, a silent NAS); an operator's lease release. Both
//! backends.

mod common;

use std::time::Duration;

use common::api_client::{call, error_code, now, ok, server, token, ENV};
use common::nas_sim::{attr, Mode, NasSim};
use common::{accounting, cli, cli_line, Backend, Server, TestDb};
use serde_json::{json, Value};

const SECRET: &str = "api-nas-s3cret";

/// Sessions from radclient, queried and filtered through the API; Disconnect and CoA to
/// the NAS simulator with ACK, NAK, a lost datagram and a silent NAS.
fn sessions_and_dynamic_authorization(backend: Backend) {
    let db = TestDb::new(backend);
    let nas = NasSim::start(SECRET, &["s-alice-1", "s-bob-1"]);
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
    // One request at a time, so a second one while a Disconnect waits is shed (429).
    let mut env = ENV.to_vec();
    env.push(("EDGE_API_MAX_CONCURRENT", "1"));
    let s = Server::start_with(&db.url, &env);
    let c = |m: &str, p: &str, b: Option<Value>| call(&s, Some(&t), m, p, b);
    let disconnect = |id: &str| {
        ok(
            c("POST", &format!("/api/v1/sessions/{id}/disconnect"), None),
            200,
        )
    };

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
    assert_eq!(rest["meta"]["count"], 2);
    assert!(rest["links"]["next"].is_null(), "the last page: {rest}");
    assert!(
        rest["meta"]["next_cursor"].is_null(),
        "the last page: {rest}"
    );
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
    // Lists render rows straight from the database; each item is what a read of that one
    // session gives.
    let all = ok(c("GET", "/api/v1/sessions?limit=1000", None), 200);
    let items = all["data"].as_array().unwrap();
    assert_eq!(items.len(), 4, "{all}");
    assert_eq!(all["meta"]["count"], 4);
    assert_eq!(all["meta"]["limit"], 1000);
    for item in items {
        let id = item["acct_unique_id"].as_str().unwrap();
        let single = ok(c("GET", &format!("/api/v1/sessions/{id}"), None), 200);
        assert_eq!(item, &single["data"]);
    }
    // `fields=`: each item holds the fields asked for and nothing else, with the values the
    // whole session has; pages and their next links keep the projection.
    let asked = [
        "username",
        "acct_stop_time",
        "framed_ip_address",
        "acct_output_octets",
    ];
    let few = ok(
        c(
            "GET",
            &format!("/api/v1/sessions?limit=1000&fields={}", asked.join(",")),
            None,
        ),
        200,
    );
    let few_items = few["data"].as_array().unwrap();
    assert_eq!(few_items.len(), items.len(), "{few}");
    for (part, whole) in few_items.iter().zip(items) {
        let part = part.as_object().unwrap();
        assert_eq!(part.len(), asked.len(), "{part:?}");
        for f in asked {
            assert_eq!(part[f], whole[f], "{f} of {whole}");
        }
    }
    let first = ok(
        c("GET", "/api/v1/sessions?limit=3&fields=username", None),
        200,
    );
    let next = first["links"]["next"].as_str().unwrap();
    assert!(next.contains("fields=username"), "{next}");
    let second = ok(c("GET", next, None), 200);
    let paged: Vec<&Value> = first["data"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["data"].as_array().unwrap())
        .collect();
    assert_eq!(paged.len(), items.len(), "{first} {second}");
    for (p, whole) in paged.iter().zip(items) {
        assert_eq!(**p, json!({"username": whole["username"]}));
    }
    let one_few = ok(
        c(
            "GET",
            &format!("/api/v1/sessions/{alice_id}?fields=framed_ip_address,acct_unique_id"),
            None,
        ),
        200,
    );
    assert_eq!(
        one_few["data"],
        json!({"acct_unique_id": alice_id, "framed_ip_address": "100.64.0.7"})
    );
    let usage = ok(c("GET", "/api/v1/subscribers/alice/usage", None), 200);
    assert_eq!(usage["data"][0]["output_octets"], 5000, "{usage}");
    assert_eq!(usage["data"][0]["sessions"], 2);
    let monthly = ok(
        c("GET", "/api/v1/subscribers/alice/usage?period=month", None),
        200,
    );
    assert_eq!(monthly["data"][0]["period"].as_str().unwrap().len(), 7);

    // Disconnect: ACK, and the NAS saw MikroTik's identification, signed with its secret.
    let r = disconnect(&alice_id);
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
    let r = disconnect(&gone);
    assert_eq!(r["data"]["result"], "nak");
    assert_eq!(r["data"]["error_cause"], 503);
    assert_eq!(r["data"]["error_cause_name"], "Session-Context-Not-Found");

    // A lost datagram is sent again (same request); a silent NAS is a timeout after 3 tries.
    nas.set(Mode::DropFirst);
    let r = disconnect(&alice_id);
    assert_eq!(
        (r["data"]["result"].as_str(), r["data"]["tries"].as_u64()),
        (Some("ack"), Some(2))
    );
    nas.set(Mode::Silent);
    let r = std::thread::scope(|scope| {
        let waiting = scope.spawn(|| disconnect(&alice_id));
        // While it waits on the silent NAS (3 x 300 ms), the API's one slot is taken.
        std::thread::sleep(Duration::from_millis(300));
        let shed = c("GET", "/api/v1/plans", None);
        assert_eq!(
            (shed.status, error_code(&shed)),
            (429, "busy".into()),
            "{}",
            shed.body
        );
        assert_eq!(shed.header("retry-after"), Some("1"));
        waiting.join().expect("the waiting request")
    });
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
    // The pool's leases a page at a time, in address order, and by state.
    let mut both = [a.clone(), b.clone()];
    both.sort_by_key(|x| x.parse::<std::net::Ipv4Addr>().expect("an IPv4 address"));
    let first = ok(c("GET", "/api/v1/leases?pool=v4&limit=1", None), 200);
    assert_eq!(first["data"][0]["address"], both[0].as_str());
    let next = first["links"]["next"].as_str().expect("a next page");
    let second = ok(c("GET", next, None), 200);
    assert_eq!(second["data"][0]["address"], both[1].as_str());
    assert_eq!(second["data"].as_array().map(Vec::len), Some(1));
    assert!(second["links"]["next"].is_null(), "{second}");
    let bound = ok(c("GET", "/api/v1/leases?pool=v4&state=bound", None), 200);
    assert_eq!(bound["data"][0]["address"], b.as_str());
    assert_eq!(bound["data"].as_array().map(Vec::len), Some(1));
    let offered = ok(
        c("GET", "/api/v1/leases?state=offered&username=ann", None),
        200,
    );
    assert_eq!(offered["data"][0]["address"], a.as_str());
    let none = ok(c("GET", "/api/v1/leases?state=expired", None), 200);
    assert_eq!(none["data"].as_array().map(Vec::len), Some(0));
    for (path, status, code) in [
        ("/api/v1/leases?state=gone", 422, "validation_failed"),
        (
            "/api/v1/leases?cursor=bm90LWEtY3Vyc29y",
            422,
            "validation_failed",
        ),
        ("/api/v1/leases?pool=nope", 404, "not_found"),
    ] {
        let refused = c("GET", path, None);
        assert_eq!(
            (refused.status, error_code(&refused)),
            (status, code.into()),
            "{path}"
        );
    }
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

/// Session lookups on PostgreSQL park their connection for the next lookup (instead of
/// handing it back to sqlx's pool, which tests it with a round trip): at most half of the
/// pool stays parked however many run at once, a lookup cancelled mid-statement gives its
/// connection back to the pool, and the pool still closes.
#[test]
fn session_lookups_park_their_connection() {
    use edge_shared::store::{SessionQuery, Store};
    let db = TestDb::new(Backend::Postgres);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let store = Store::connect_with(&db.url, 4).await.expect("connect");
        store.migrate().await.expect("migrate");
        let pool = store.pg_pool().expect("postgres").clone();
        let taken = || pool.size() - pool.num_idle() as u32;
        let q = SessionQuery {
            username: Some("ann".into()),
            limit: 50,
            ..SessionQuery::default()
        };
        assert!(
            settled(|| taken() == 0),
            "the migration's connection is back"
        );
        store.sessions_list(&q).await.expect("lookup");
        assert_eq!(taken(), 1, "the lookup's connection is parked");
        store.sessions_list(&q).await.expect("lookup");
        assert_eq!(taken(), 1, "the next lookup used it again");

        let lookups: Vec<_> = (0..8)
            .map(|_| {
                let (store, q) = (store.clone(), q.clone());
                tokio::spawn(async move { store.sessions_list(&q).await.map(|r| r.len()) })
            })
            .collect();
        for l in lookups {
            assert_eq!(l.await.expect("task").expect("lookup"), 0);
        }
        // Connections given back to the pool are tested there first, in a task of their own.
        assert!(settled(|| taken() <= 2), "{} taken", taken());
        tokio::time::sleep(Duration::from_millis(200)).await;
        let parked = taken();
        assert!(
            (1..=2).contains(&parked),
            "at most half of the pool parked, the rest back in it: {parked} taken"
        );

        // Cancelled while waiting for its rows (the table locked meanwhile): the connection
        // goes back through the pool, which waits for the statement's end to test it.
        use sqlx::Connection as _;
        let mut locker = sqlx::PgConnection::connect(&db.url).await.expect("connect");
        for step in ["BEGIN", "LOCK TABLE sessions"] {
            sqlx::query(step).execute(&mut locker).await.expect(step);
        }
        let cancelled =
            tokio::time::timeout(Duration::from_millis(300), store.sessions_list(&q)).await;
        assert!(cancelled.is_err(), "the lookup was cancelled");
        sqlx::query("ROLLBACK")
            .execute(&mut locker)
            .await
            .expect("unlock");
        assert!(
            settled(|| taken() < parked),
            "the cancelled lookup's connection went back to the pool: {} taken",
            taken()
        );
        store
            .sessions_list(&q)
            .await
            .expect("lookup after a cancelled one");
        assert!(taken() >= 1, "the lookup parked its connection");
        // Left idle, parked connections go back to the pool (and its idle timeout).
        assert!(
            settled(|| taken() == 0),
            "idle parked connections went back: {} taken",
            taken()
        );

        tokio::time::timeout(Duration::from_secs(10), store.close())
            .await
            .expect("the pool closes with connections parked");
    });
}

/// `eventually` (five seconds) from inside the runtime: its other worker goes on running the
/// pool's tasks meanwhile.
fn settled(done: impl FnMut() -> bool) -> bool {
    tokio::task::block_in_place(|| common::eventually(Duration::from_secs(5), done))
}
