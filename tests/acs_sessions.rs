//! The ACS's sessions as CPEs meet them, against the real binary over loopback: HTTP Digest
//! and connection requests, TLS with Digest and Basic (curl as an independent client),
//! hostile and vendor-quirky input, idle sessions and restarts, parked connections, and the
//! bound on the device cache. The registry, tasks and presets are in `acs.rs`.

mod common;

use std::time::Duration;

use common::acs_cli::{device_json, queue, registered, task, ENV};
use common::cpe_sim::{Conn, Cpe, CrListener};
use common::{cli, cli_output, eventually, Backend, Server, TestDb};

/// Digest authentication (global and per device) and connection requests with Digest.
#[test]
fn digest_and_connection_requests() {
    let db = TestDb::new(Backend::Sqlite);
    let mut env = ENV.to_vec();
    env.extend([
        ("EDGE_ACS_CPE_USERNAME", "acs-user"),
        ("EDGE_ACS_CPE_PASSWORD", "acs-pass"),
        ("EDGE_ACS_CONNECTION_REQUEST_USERNAME", "cr-global"),
        ("EDGE_ACS_CONNECTION_REQUEST_PASSWORD", "nope"),
    ]);
    let s = Server::start_with(&db.url, &env);
    let mut cpe = Cpe::new(s.acs, "auth1", "Device.");
    assert_eq!(cpe.session(&[]), 401, "no credentials");
    cpe.credentials = Some(("acs-user".into(), "wrong".into()));
    assert_eq!(cpe.session(&[]), 401, "a wrong password");
    assert!(s.metric("edge_acs_auth_failures_total{reason=\"invalid\"}") >= 1.0);
    // Basic over plain HTTP would show the password on the wire: refused, counted.
    cpe.credentials = Some(("acs-user".into(), "acs-pass".into()));
    cpe.basic = true;
    assert_eq!(cpe.session(&[]), 401, "Basic without TLS");
    assert!(s.metric("edge_acs_auth_failures_total{reason=\"basic_without_tls\"}") >= 1.0);
    cpe.basic = false;
    let cr = CrListener::start("cr-user", "cr-pass");
    cpe.set_connection_request_url(&cr.url);
    assert_eq!(cpe.session(&[]), 200);
    let id = cpe.device_id();
    assert!(registered(&db, &id));
    assert_eq!(
        device_json(&db, &id).0["connection_request_url"],
        cr.url.as_str()
    );

    // The global connection request credentials are wrong for this CPE: refused, reported.
    let out = cli_output(&db.url, &["devices", "kick", &id]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("HTTP 401"),
        "{out:?}"
    );
    cli(
        &db.url,
        &[
            "devices",
            "credentials",
            &id,
            "--connection-request-username",
            "cr-user",
            "--connection-request-password",
            "cr-pass",
        ],
    );
    let out = cli(&db.url, &["tasks", "add", &id, "--now", "reboot"]);
    assert!(out.contains("connection request sent"), "{out}");
    assert_eq!(cr.hits.load(std::sync::atomic::Ordering::SeqCst), 1);

    // Per-device CPE credentials work alongside the global ones.
    cli(
        &db.url,
        &[
            "devices",
            "credentials",
            &id,
            "--cpe-username",
            "box-1",
            "--cpe-password",
            "box-pass",
        ],
    );
    cpe.credentials = Some(("box-1".into(), "box-pass".into()));
    // Credentials set by another process reach the server within its refresh interval.
    assert!(eventually(Duration::from_secs(10), || cpe.session(&[]) == 200));
    cpe.sessions_until(|c| c.rebooted == 1);
    // A device's own credentials speak for that device only; the global ones for any.
    let mut other = Cpe::new(s.acs, "auth2", "Device.");
    other.credentials = Some(("box-1".into(), "box-pass".into()));
    assert_eq!(
        other.session(&[]),
        403,
        "box-1's credentials for another device"
    );
    assert!(s.metric("edge_acs_auth_failures_total{reason=\"other_device\"}") >= 1.0);
    assert!(!registered(&db, &other.device_id()));
    other.credentials = Some(("acs-user".into(), "acs-pass".into()));
    assert_eq!(other.session(&[]), 200);
}

/// Malformed, oversized and out-of-sequence input gets a 4xx (or a SOAP fault) and the ACS
/// keeps serving; vendors' Informs (odd namespaces, Latin-1, CWMP 1.4) are answered in their
/// own namespace; chunked bodies; the cookie carries a session across connections; one
/// session per device.
#[test]
fn hostile_and_quirky_input() {
    let db = TestDb::new(Backend::Sqlite);
    let mut env = ENV.to_vec();
    env.push(("EDGE_ACS_MAX_BODY_BYTES", "65536"));
    let s = Server::start_with(&db.url, &env);
    let post = |c: &mut Conn, headers: &[String], body: &[u8]| {
        c.request("POST", "/", headers, body, false).unwrap()
    };
    let mut c = Conn::open(s.acs);
    for bad in [
        &b"<not-xml"[..],
        b"<Envelope><Body></Body></Envelope>",
        b"\x00\x01\x02",
        b"<a>&#0;</a>",
        b"<Envelope><Body><Inform><DeviceId><OUI></OUI></DeviceId></Inform></Body></Envelope>",
    ] {
        let a = post(&mut c, &[], bad);
        assert_eq!(a.status, 400, "{bad:?}: {}", a.text());
    }
    assert_eq!(
        post(&mut c, &[], b"").status,
        400,
        "an empty POST with no session"
    );
    let tc = "<e:Envelope xmlns:e=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:cwmp=\"urn:dslforum-org:cwmp-1-0\"><e:Body><cwmp:TransferComplete><CommandKey>x</CommandKey></cwmp:TransferComplete></e:Body></e:Envelope>";
    assert_eq!(
        post(&mut c, &[], tc.as_bytes()).status,
        400,
        "a session begins with an Inform"
    );
    let huge = vec![b'x'; 70_000];
    let mut c2 = Conn::open(s.acs);
    assert_eq!(post(&mut c2, &[], &huge).status, 413);
    let mut c3 = Conn::open(s.acs);
    assert_eq!(c3.request("GET", "/", &[], b"", false).unwrap().status, 405);
    let deep = format!("<Envelope><Body>{}</Body></Envelope>", "<a>".repeat(5000));
    let mut c4 = Conn::open(s.acs);
    assert_eq!(post(&mut c4, &[], deep.as_bytes()).status, 400);

    // Vendors' Informs, each answered in its own namespace with its ID echoed.
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/acs/tests/fixtures");
    for (file, ns, id) in [
        ("huawei_hg8245_inform.xml", "cwmp-1-0", "1"),
        ("zte_f660_inform_latin1.xml", "cwmp-1-1", "ZTE0000a1"),
        ("tplink_archer_inform.xml", "cwmp-1-2", "tp-1234"),
        ("mikrotik_hap_inform.xml", "cwmp-1-2", "mt-55"),
        ("nokia_g240_inform_cwmp14.xml", "cwmp-1-4", "ALCL-0001"),
    ] {
        let body = std::fs::read(format!("{dir}/{file}")).unwrap();
        let mut c = Conn::open(s.acs);
        let a = post(&mut c, &[], &body);
        assert_eq!(a.status, 200, "{file}: {}", a.text());
        let t = a.text();
        assert!(
            t.contains(ns) && t.contains(&format!(">{id}</cwmp:ID>")),
            "{file}: {t}"
        );
        assert_eq!(post(&mut c, &[], b"").status, 204, "{file}");
    }
    // Device rows are written in batches, just after the answers.
    for id in [
        "00E0FC-HG8245H-48575443A1B2C3D4",
        "D0608C-F660-ZTEGC8A1B2C3",
        "50C7BF-Archer%20C6-2219A1B2C3D4E",
        "E48D8C-hAP%20ac2-HCQ08A1B2C3",
        "0C54B9-G%2D240W%2DF-ALCLB1C2D3E4",
    ] {
        assert!(registered(&db, id), "{id}");
    }
    let zte = device_json(&db, "D0608C-F660-ZTEGC8A1B2C3").1;
    assert!(zte.contains("Terminal d\u{e9}tude GPON"), "{zte}");

    // Chunked bodies.
    let mut cpe = Cpe::new(s.acs, "chunky", "Device.");
    cpe.chunked = true;
    assert_eq!(cpe.session(&[]), 200);

    // The cookie carries the session to a new connection, among other cookies.
    let sim = Cpe::new(s.acs, "cookie1", "Device.");
    let mut a = Conn::open(s.acs);
    let r = post(
        &mut a,
        &[],
        &sim.inform_body(&[("2 PERIODIC".into(), String::new())]),
    );
    let cookie = r
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    // The device is in a session: a second Inform from it on another connection waits.
    let mut other = Conn::open(s.acs);
    let busy = post(
        &mut other,
        &[],
        &sim.inform_body(&[("2 PERIODIC".into(), String::new())]),
    );
    assert_eq!(busy.status, 503);
    assert!(busy.header("retry-after").is_some());
    let mut b = Conn::open(s.acs);
    let end = post(&mut b, &[format!("Cookie: theme=dark, {cookie}")], b"");
    assert_eq!(end.status, 204);

    // Still serving.
    let mut again = Cpe::new(s.acs, "after1", "Device.");
    assert_eq!(again.session(&[]), 200);
    assert!(s.metric("edge_acs_bad_requests_total{reason=\"xml\"}") >= 5.0);
}

/// A session left idle is closed by the sweep and its unanswered task queued again; an Inform
/// on a session's own connection starts the session over.
#[test]
fn idle_sessions_and_restarts() {
    let db = TestDb::new(Backend::Sqlite);
    let mut env = ENV.to_vec();
    env.push(("EDGE_ACS_SESSION_TIMEOUT_SECONDS", "1"));
    let s = Server::start_with(&db.url, &env);
    let mut cpe = Cpe::new(s.acs, "idle1", "Device.");
    assert_eq!(cpe.session(&[]), 200);
    let id = cpe.device_id();
    assert!(registered(&db, &id));
    let t = queue(
        &db,
        &id,
        &["get-parameter-names", "Device.", "--next-level"],
    );
    let inform = cpe.inform_body(&[("2 PERIODIC".into(), String::new())]);
    // Sessions until the task is handed out; then the CPE falls silent.
    let mut handed_out = false;
    for _ in 0..40 {
        let mut c = Conn::open(s.acs);
        assert_eq!(
            c.request("POST", "/", &[], &inform, false).unwrap().status,
            200
        );
        let a = c.request("POST", "/", &[], b"", false).unwrap();
        if a.status == 200 {
            assert!(a.text().contains("GetParameterNames"), "{}", a.text());
            handed_out = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(handed_out);
    assert!(eventually(Duration::from_secs(10), || {
        s.metric("edge_acs_sessions_total{result=\"timeout\"}") >= 1.0
    }));
    assert!(eventually(Duration::from_secs(10), || task(&db, t)
        ["attempts"]
        == 1));
    let after = task(&db, t);
    assert_eq!(after["status"], "queued", "{after}");
    assert!(after["fault_string"]
        .as_str()
        .unwrap()
        .contains("without an answer"));

    // An Inform inside a session, on its connection, starts it over.
    let mut c = Conn::open(s.acs);
    assert_eq!(
        c.request("POST", "/", &[], &inform, false).unwrap().status,
        200
    );
    let again = c.request("POST", "/", &[], &inform, false).unwrap();
    assert_eq!(again.status, 200);
    assert!(again.text().contains("InformResponse"), "{}", again.text());
}

/// HTTPS on the ACS port: the simulator (rustls) and curl (OpenSSL or GnuTLS, an independent
/// TLS stack) register, authenticate with Digest or Basic, and download over TLS; plain HTTP
/// on a TLS port gets no answer.
#[test]
fn tls_and_basic() {
    let dir = tempfile::tempdir().unwrap();
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key) = (dir.path().join("acs.pem"), dir.path().join("acs.key"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.key_pair.serialize_pem()).unwrap();
    let db = TestDb::new(Backend::Sqlite);
    let mut env = ENV.to_vec();
    let (cert_s, key_s) = (cert.to_str().unwrap(), key.to_str().unwrap());
    env.extend([
        ("EDGE_ACS_TLS_CERT_FILE", cert_s),
        ("EDGE_ACS_TLS_KEY_FILE", key_s),
        ("EDGE_ACS_CPE_USERNAME", "acs-user"),
        ("EDGE_ACS_CPE_PASSWORD", "acs-pass"),
    ]);
    let s = Server::start_with(&db.url, &env);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(made.cert.der().clone()).unwrap();
    let client = std::sync::Arc::new(
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    );

    // Plain HTTP on the TLS port: the handshake fails, nothing is served.
    let plain = Conn::open(s.acs).request("POST", "/", &[], b"<x/>", false);
    assert!(plain.is_none_or(|a| a.status == 0), "no HTTP answer");
    assert!(eventually(Duration::from_secs(5), || {
        s.metric("edge_acs_tls_handshake_failures_total") >= 1.0
    }));

    // Digest over TLS; then Basic, which is offered beside Digest over TLS only.
    let mut cpe = Cpe::new(s.acs, "tls1", "Device.");
    cpe.tls = Some(client.clone());
    cpe.credentials = Some(("acs-user".into(), "acs-pass".into()));
    assert_eq!(cpe.session(&[]), 200);
    let id = cpe.device_id();
    assert!(registered(&db, &id));
    let mut c = Conn::open_with(s.acs, Some(&client));
    let refused = c.request("POST", "/", &[], b"", false).unwrap();
    assert_eq!(refused.status, 401);
    let offered: Vec<&str> = refused
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("www-authenticate"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert!(offered[0].starts_with("Digest "), "{offered:?}");
    assert!(
        offered.iter().any(|v| v.starts_with("Basic ")),
        "{offered:?}"
    );
    let mut basic = Cpe::new(s.acs, "tls2", "Device.");
    basic.tls = Some(client.clone());
    basic.basic = true;
    basic.credentials = Some(("acs-user".into(), "wrong".into()));
    assert_eq!(basic.session(&[]), 401);
    basic.credentials = Some(("acs-user".into(), "acs-pass".into()));
    assert_eq!(basic.session(&[]), 200);

    // A download over HTTPS: the file URL follows the scheme.
    let image: Vec<u8> = (0..50_000u32).map(|i| (i % 241) as u8).collect();
    let fw = dir.path().join("fw-tls.bin");
    std::fs::write(&fw, &image).unwrap();
    cli(&db.url, &["files", "add", fw.to_str().unwrap()]);
    queue(&db, &id, &["download", "fw-tls.bin"]);
    cpe.sessions_until(|c| c.log.iter().any(|m| m == "Download"));
    assert_eq!(cpe.downloaded, image);

    // curl: another TLS implementation, verifying the certificate, Basic on an Inform.
    let port = s.acs.port();
    let resolve = format!("localhost:{port}:127.0.0.1");
    // curl over TLS to the ACS; its stdout once it succeeded.
    let curl = |extra: &[&str], path: &str| -> Vec<u8> {
        let got = std::process::Command::new("curl")
            .args(["-sS", "--fail", "--cacert", cert_s, "--resolve", &resolve])
            .args(extra)
            .arg(format!("https://localhost:{port}{path}"))
            .output()
            .expect("curl runs");
        assert!(
            got.status.success(),
            "{}",
            String::from_utf8_lossy(&got.stderr)
        );
        got.stdout
    };
    assert_eq!(curl(&[], "/files/fw-tls.bin"), image);
    let inform =
        Cpe::new(s.acs, "curl1", "Device.").inform_body(&[("0 BOOTSTRAP".into(), String::new())]);
    let body = dir.path().join("inform.xml");
    std::fs::write(&body, inform).unwrap();
    let data = format!("@{}", body.display());
    let got = curl(
        &[
            "--basic",
            "-u",
            "acs-user:acs-pass",
            "-H",
            "Content-Type: text/xml",
            "--data-binary",
            &data,
        ],
        "/",
    );
    assert!(String::from_utf8_lossy(&got).contains("InformResponse"));
}

/// A connection idle between requests is parked without hyper's buffers and resumes on the
/// CPE's next request, whole or chunked, as the same keep-alive connection.
#[test]
fn parked_connections_resume() {
    let db = TestDb::new(Backend::Sqlite);
    let s = Server::start_with(&db.url, ENV);
    let cpe = Cpe::new(s.acs, "park1", "Device.");
    let inform = cpe.inform_body(&[("2 PERIODIC".into(), String::new())]);
    let parked_before = s.metric("edge_acs_parked_total");
    let mut c = Conn::open(s.acs);
    let a = c.request("POST", "/", &[], &inform, false).unwrap();
    assert_eq!(a.status, 200);
    assert!(a.text().contains("InformResponse"));
    // The CPE thinks for a while; the server parks the connection meanwhile.
    std::thread::sleep(Duration::from_millis(700));
    assert!(s.metric("edge_acs_parked_total") > parked_before);
    let end = c.request("POST", "/", &[], b"", true).unwrap();
    assert_eq!(end.status, 204, "{}", end.text());
    // The same connection carries the next session too, after another pause.
    std::thread::sleep(Duration::from_millis(300));
    let again = c.request("POST", "/", &[], &inform, true).unwrap();
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(c.request("POST", "/", &[], b"", false).unwrap().status, 204);
    // A file range after a pause, on the same connection.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        c.request("GET", "/files/none.bin", &[], b"", false)
            .unwrap()
            .status,
        404
    );
}

/// Made-up device ids cannot grow the device cache past its cap; an evicted device is read
/// from the database again and still gets its tasks and presets.
#[test]
fn device_cache_is_bounded() {
    let db = TestDb::new(Backend::Sqlite);
    let mut env = ENV.to_vec();
    env.push(("EDGE_ACS_CACHE_MAX_DEVICES", "8"));
    let s = Server::start_with(&db.url, &env);
    let mut cpes: Vec<Cpe> = (0..40)
        .map(|i| Cpe::new(s.acs, &format!("flood{i}"), "Device."))
        .collect();
    for c in cpes.iter_mut() {
        assert_eq!(c.session(&[]), 200);
    }
    assert!(s.metric("edge_acs_cached_devices") <= 8.0);
    assert!(s.metric("edge_acs_cache_evictions_total") >= 32.0);
    let first = &mut cpes[0];
    let id = first.device_id();
    assert!(registered(&db, &id));
    cli(&db.url, &["devices", "tag", &id, "flooded"]);
    cli(
        &db.url,
        &[
            "presets",
            "add",
            "flood-wifi",
            "--tag",
            "flooded",
            "--set",
            "Device.WiFi.SSID.1.SSID=after-eviction",
        ],
    );
    let t = queue(&db, &id, &["reboot"]);
    first.sessions_until(|c| {
        c.rebooted == 1 && c.value("WiFi.SSID.1.SSID").as_deref() == Some("after-eviction")
    });
    assert!(eventually(Duration::from_secs(10), || task(&db, t)
        ["status"]
        == "done"));
}
