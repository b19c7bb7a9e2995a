//! The TR-069 ACS as CPEs and operators see it: a simulated CPE (tests/common/cpe_sim.rs,
//! its own HTTP, SOAP and Digest code) talking to the real binary over loopback; tasks,
//! presets and files through the CLI; the registry read back from the database. Both
//! backends for the lifecycle and presets.

mod common;

use std::io::Write;
use std::time::Duration;

use common::acs_cli::{device_json, queue, registered, task, ENV};
use common::cpe_sim::{Conn, Cpe};
use common::{cli, eventually, Backend, Server, TestDb};
use serde_json::Value;

/// Registration, every RPC as a task in order, results and faults, retries, a download
/// through TransferComplete, reboot and factory reset events.
fn lifecycle(backend: Backend) {
    let db = TestDb::new(backend);
    let s = Server::start_with(&db.url, ENV);
    let mut cpe = Cpe::new(s.acs, "life1", "Device.");
    assert_eq!(cpe.session(&[]), 200);
    let id = cpe.device_id();
    assert!(registered(&db, &id));
    let (d, params) = device_json(&db, &id);
    assert_eq!(d["software_version"], "1.0.0");
    assert_eq!(d["model"], "Sim 3000");
    assert_eq!(d["data_model"], "Device.");
    assert_eq!(d["cwmp_version"], "1.2");
    assert!(d["last_events"].as_str().unwrap().contains("0 BOOTSTRAP"));
    assert!(
        params.contains("Device.DeviceInfo.HardwareVersion = hw1 (string)"),
        "{params}"
    );

    // A file to download.
    let dir = tempfile::tempdir().unwrap();
    let fw = dir.path().join("fw-2.0.bin");
    let image: Vec<u8> = (0..100_001u32).map(|i| (i % 251) as u8).collect();
    std::fs::File::create(&fw)
        .unwrap()
        .write_all(&image)
        .unwrap();
    let out = cli(&db.url, &["files", "add", fw.to_str().unwrap()]);
    assert!(out.contains("100001 bytes"), "{out}");
    let mut c = Conn::open(s.acs);
    let whole = c
        .request("GET", "/files/fw-2.0.bin", &[], b"", false)
        .unwrap();
    assert_eq!((whole.status, whole.body.len()), (200, image.len()));
    assert_eq!(whole.body, image);
    let head = c
        .request("HEAD", "/files/fw-2.0.bin", &[], b"", false)
        .unwrap();
    assert_eq!(
        (head.status, head.header("content-length")),
        (200, Some("100001"))
    );
    let tail = c
        .request(
            "GET",
            "/files/fw-2.0.bin",
            &["Range: bytes=-10".into()],
            b"",
            false,
        )
        .unwrap();
    assert_eq!(tail.status, 206);
    assert_eq!(tail.body, image[image.len() - 10..]);
    assert_eq!(
        tail.header("content-range"),
        Some("bytes 99991-100000/100001")
    );
    let past = c
        .request(
            "GET",
            "/files/fw-2.0.bin",
            &["Range: bytes=100001-".into()],
            b"",
            false,
        )
        .unwrap();
    assert_eq!(
        (past.status, past.header("content-range")),
        (416, Some("bytes */100001"))
    );
    let missing = c
        .request("GET", "/files/nope.bin", &[], b"", false)
        .unwrap();
    assert_eq!(missing.status, 404);

    let set = queue(
        &db,
        &id,
        &[
            "set-parameters",
            "Device.WiFi.SSID.1.SSID=edge-net",
            "Device.ManagementServer.PeriodicInformInterval=600",
            "--type",
            "Device.ManagementServer.PeriodicInformInterval=unsignedInt",
        ],
    );
    let get = queue(&db, &id, &["get-parameters", "Device.DeviceInfo."]);
    let add = queue(&db, &id, &["add-object", "Device.NAT.PortMapping."]);
    let names = queue(
        &db,
        &id,
        &["get-parameter-names", "Device.WiFi.", "--next-level"],
    );
    let del = queue(&db, &id, &["delete-object", "Device.NAT.PortMapping.1."]);
    let attrs = queue(&db, &id, &["get-attributes", "Device.WiFi.SSID.1.SSID"]);
    let set_attr = queue(
        &db,
        &id,
        &["set-attributes", "Device.WiFi.SSID.1.SSID", "2"],
    );
    let sched = queue(&db, &id, &["schedule-inform", "30"]);
    let rpc = queue(&db, &id, &["get-rpc-methods"]);
    let up = queue(
        &db,
        &id,
        &[
            "upload",
            "--file-type",
            "1 Vendor Configuration File",
            "--url",
            "http://127.0.0.1:9/up",
        ],
    );
    let refresh = queue(&db, &id, &["refresh"]);
    let bad = queue(
        &db,
        &id,
        &["set-parameters", "Device.DeviceInfo.SoftwareVersion=9"],
    );
    let dl = queue(&db, &id, &["download", "fw-2.0.bin"]);
    let reboot = queue(&db, &id, &["reboot"]);

    cpe.sessions_until(|c| c.rebooted == 1);
    let want = [
        "SetParameterValues",
        "GetParameterValues",
        "AddObject",
        "GetParameterNames",
        "DeleteObject",
        "GetParameterAttributes",
        "SetParameterAttributes",
        "ScheduleInform",
        "GetRPCMethods",
        "Upload",
        "GetParameterValues",
        "SetParameterValues",
        "Download",
        "Reboot",
    ];
    assert_eq!(cpe.log, want, "tasks run in the order queued");
    assert_eq!(cpe.value("WiFi.SSID.1.SSID").as_deref(), Some("edge-net"));
    assert_eq!(
        cpe.downloaded, image,
        "the file arrived whole, in two ranges"
    );

    // The next session carries M Reboot and the TransferComplete.
    assert_eq!(cpe.session(&[]), 200);
    let done = |t: i64| eventually(Duration::from_secs(10), || task(&db, t)["status"] == "done");
    for t in [
        set, get, add, names, del, attrs, set_attr, sched, rpc, up, refresh, reboot, dl,
    ] {
        assert!(done(t), "task {t}: {}", task(&db, t));
    }
    let r = |t: i64| -> Value {
        serde_json::from_str(task(&db, t)["result"].as_str().unwrap()).unwrap()
    };
    assert_eq!(r(add)["instance"], 1);
    assert!(r(get)["values"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v["name"] == "Device.DeviceInfo.SoftwareVersion" && v["value"] == "1.0.0"));
    assert!(r(names)["names"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["name"] == "Device.WiFi.SSID.1.SSID" && n["writable"] == true));
    assert!(r(rpc)["methods"].as_array().unwrap().len() >= 3);
    assert_eq!(r(dl)["transfer"], "complete");
    let (d, params) = device_json(&db, &id);
    assert!(
        params.contains("Device.WiFi.SSID.1.SSID = edge-net"),
        "{params}"
    );
    assert!(
        params.contains("Device.ManagementServer.PeriodicInformInterval = 600 (unsignedInt)"),
        "{params}"
    );
    assert!(d["last_events"].as_str().unwrap().contains("M Reboot"));

    // The faulted set was tried twice, then left as a fault with the parameter named.
    cpe.sessions_until(|_| task(&db, bad)["status"] == "fault");
    let b = task(&db, bad);
    assert_eq!(b["attempts"], 2);
    assert_eq!(b["fault_code"], 9003);
    assert!(
        b["fault_string"]
            .as_str()
            .unwrap()
            .contains("SoftwareVersion: 9008"),
        "{b}"
    );

    // Factory reset: the CPE comes back with 0 BOOTSTRAP.
    let fr = queue(&db, &id, &["factory-reset"]);
    cpe.sessions_until(|c| c.factory_resets == 1);
    assert!(eventually(Duration::from_secs(10), || task(&db, fr)
        ["status"]
        == "done"));
    assert_eq!(
        cpe.value("WiFi.SSID.1.SSID").as_deref(),
        Some("factory-ssid")
    );
    assert!(s.metric("edge_acs_sessions_total{result=\"complete\"}") >= 4.0);
}

/// Presets apply once, only what differs; a VALUE CHANGE or a BOOTSTRAP checks again.
fn presets(backend: Backend) {
    let db = TestDb::new(backend);
    let s = Server::start_with(&db.url, ENV);
    let mut cpe = Cpe::new(s.acs, "pre1", "InternetGatewayDevice.");
    assert_eq!(cpe.session(&[]), 200);
    let id = cpe.device_id();
    assert!(registered(&db, &id));
    cli(&db.url, &["devices", "tag", &id, "fiber", "north"]);
    cli(
        &db.url,
        &[
            "presets",
            "add",
            "wifi",
            "--tag",
            "fiber",
            "--product-class",
            "SimBox",
            "--set",
            "InternetGatewayDevice.WiFi.SSID.1.SSID=isp-wifi",
            "--set",
            "InternetGatewayDevice.WiFi.SSID.1.Enable=true",
            "--type",
            "InternetGatewayDevice.WiFi.SSID.1.Enable=boolean",
            "--inform-interval",
            "300",
        ],
    );
    // Not for this device: another tag.
    cli(
        &db.url,
        &[
            "presets",
            "add",
            "dsl",
            "--tag",
            "dsl",
            "--set",
            "InternetGatewayDevice.WiFi.SSID.1.SSID=dsl",
        ],
    );
    cpe.sessions_until(|c| c.value("WiFi.SSID.1.SSID").as_deref() == Some("isp-wifi"));
    assert_eq!(
        cpe.value("ManagementServer.PeriodicInformInterval")
            .as_deref(),
        Some("300")
    );
    // Enable was already 1 (true): only the SSID and the interval were set.
    let last_set = cpe
        .log
        .iter()
        .rposition(|m| m == "SetParameterValues")
        .unwrap();
    assert_eq!(cpe.log[last_set - 1], "GetParameterValues");
    // Converged: a periodic session sends nothing (the fingerprint is in the database too).
    assert!(eventually(Duration::from_secs(10), || !device_json(
        &db, &id
    )
    .0["preset_fingerprint"]
        .is_null()));
    cpe.log.clear();
    assert_eq!(cpe.session(&[]), 200);
    assert!(cpe.log.is_empty(), "{:?}", cpe.log);
    // Someone changes the SSID on the box; it reports a VALUE CHANGE and is put back.
    cpe.params
        .get_mut("InternetGatewayDevice.WiFi.SSID.1.SSID")
        .unwrap()
        .value = "hacked".into();
    assert_eq!(cpe.session(&["4 VALUE CHANGE"]), 200);
    assert_eq!(cpe.value("WiFi.SSID.1.SSID").as_deref(), Some("isp-wifi"));
    assert_eq!(cpe.log, ["GetParameterValues", "SetParameterValues"]);
    // A factory reset (0 BOOTSTRAP) gets the preset again.
    let fr = queue(&db, &id, &["factory-reset"]);
    cpe.sessions_until(|c| c.factory_resets == 1);
    assert!(eventually(Duration::from_secs(10), || task(&db, fr)
        ["status"]
        == "done"));
    cpe.sessions_until(|c| c.value("WiFi.SSID.1.SSID").as_deref() == Some("isp-wifi"));
    drop(s);
}

/// Behind a trusted proxy the device row records the address the proxy names; from anyone
/// else the same headers are ignored.
#[test]
fn address_behind_a_trusted_proxy() {
    let db = TestDb::new(Backend::Sqlite);
    let forwarded = [
        "X-Forwarded-For: 6.6.6.6, 198.51.100.7".to_string(),
        "Forwarded: for=\"[2001:db8::7]:4711\";proto=http".to_string(),
    ];
    let ip_of = |s: &Server, serial: &str, headers: &[String]| {
        let mut cpe = Cpe::new(s.acs, serial, "Device.");
        cpe.extra_headers = headers.to_vec();
        assert_eq!(cpe.session(&[]), 200);
        let id = cpe.device_id();
        assert!(eventually(Duration::from_secs(10), || registered(&db, &id)));
        device_json(&db, &id).0["ip"].as_str().unwrap().to_string()
    };
    {
        let mut env = ENV.to_vec();
        env.push(("EDGE_ACS_TRUSTED_PROXIES", "127.0.0.0/8"));
        let s = Server::start_with(&db.url, &env);
        assert_eq!(ip_of(&s, "fwd1", &forwarded[..1]), "198.51.100.7");
        // `Forwarded` (RFC 7239) wins over `X-Forwarded-For`.
        assert_eq!(ip_of(&s, "fwd2", &forwarded), "2001:db8::7");
        assert_eq!(ip_of(&s, "fwd3", &[]), "127.0.0.1");
    }
    let s = Server::start_with(&db.url, ENV);
    assert_eq!(ip_of(&s, "fwd4", &forwarded), "127.0.0.1");
}

#[test]
fn lifecycle_sqlite() {
    lifecycle(Backend::Sqlite);
}

#[test]
fn lifecycle_postgres() {
    lifecycle(Backend::Postgres);
}

#[test]
fn presets_sqlite() {
    presets(Backend::Sqlite);
}

#[test]
fn presets_postgres() {
    presets(Backend::Postgres);
}
