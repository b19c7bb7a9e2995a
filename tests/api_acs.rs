//! The ACS through the REST API, as the control plane sees it: a simulated CPE
//! (tests/common/cpe_sim.rs) registers with the real binary; devices, their parameters, tags
//! and credentials, tasks queued and read back with their results and faults, connection
//! requests, presets and file uploads go through `/api/v1`. Both backends.

mod common;

use std::time::Duration;

use common::acs_cli::ENV as ACS_ENV;
use common::api_client::{call, error_code, ok, token, ENV as API_ENV};
use common::cpe_sim::{Cpe, CrListener};
use common::{eventually, http, Backend, HttpAnswer, Server, TestDb};
use serde_json::{json, Value};

fn server(db: &TestDb) -> Server {
    let mut env = API_ENV.to_vec();
    env.extend_from_slice(ACS_ENV);
    Server::start_with(&db.url, &env)
}

fn upload(s: &Server, token: &str, path: &str, body: &[u8]) -> HttpAnswer {
    let auth = format!("Authorization: Bearer {token}");
    http(
        s.http,
        "PUT",
        path,
        &[&auth, "Content-Type: application/octet-stream"],
        Some(body),
    )
}

fn acs_api(backend: Backend) {
    let db = TestDb::new(backend);
    let t = token(&db, "ops", "write");
    let reader = token(&db, "viewer", "read");
    let s = server(&db);
    let c = |m: &str, p: &str, b: Option<Value>| call(&s, Some(&t), m, p, b);

    let mut cpe = Cpe::new(s.acs, "api1", "Device.");
    let cr = CrListener::start("cr-user", "cr-pass");
    cpe.set_connection_request_url(&cr.url);
    assert_eq!(cpe.session(&[]), 200);
    let mut other = Cpe::new(s.acs, "api2", "Device.");
    assert_eq!(other.session(&[]), 200);
    let id = cpe.device_id();
    let dev = format!("/api/v1/devices/{id}");

    // Devices: listed in id order, a page at a time; one by id; 404 for an unknown one.
    assert!(eventually(Duration::from_secs(10), || {
        c("GET", "/api/v1/devices", None).json()["meta"]["count"] == 2
    }));
    let first = ok(c("GET", "/api/v1/devices?limit=1", None), 200);
    assert_eq!(first["data"][0]["id"], id.as_str());
    let cursor = first["meta"]["next_cursor"].as_str().unwrap().to_string();
    let second = ok(
        c(
            "GET",
            &format!("/api/v1/devices?limit=1&cursor={cursor}"),
            None,
        ),
        200,
    );
    assert_eq!(second["data"][0]["id"], other.device_id().as_str());
    assert!(second["meta"]["next_cursor"].is_null());
    let d = ok(c("GET", &dev, None), 200)["data"].clone();
    assert_eq!(d["software_version"], "1.0.0");
    assert_eq!(d["data_model"], "Device.");
    assert_eq!(d["connection_request_url"], cr.url.as_str());
    assert!(d["last_events"]
        .as_array()
        .unwrap()
        .contains(&json!("0 BOOTSTRAP")));
    assert_eq!(
        error_code(&c("GET", "/api/v1/devices/no-such-box", None)),
        "not_found"
    );

    // Parameters: under a prefix, in name order, paged.
    let p = ok(
        c(
            "GET",
            &format!("{dev}/parameters?prefix=Device.DeviceInfo.&limit=2"),
            None,
        ),
        200,
    );
    assert_eq!(p["meta"]["count"], 2);
    let names: Vec<&str> = p["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert!(names.iter().all(|n| n.starts_with("Device.DeviceInfo.")));
    assert!(names[0] < names[1]);
    let rest = ok(
        c(
            "GET",
            &format!(
                "{dev}/parameters?prefix=Device.DeviceInfo.&limit=1000&cursor={}",
                p["meta"]["next_cursor"].as_str().unwrap()
            ),
            None,
        ),
        200,
    );
    let both: Vec<&Value> = p["data"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["data"].as_array().unwrap())
        .collect();
    assert!(
        both.iter()
            .any(|v| v["name"] == "Device.DeviceInfo.HardwareVersion"
                && v["value"] == "hw1"
                && v["type"] == "string"),
        "{both:?}"
    );
    assert!(!rest["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| names.contains(&v["name"].as_str().unwrap())));
    assert_eq!(
        c("GET", "/api/v1/devices/no-such-box/parameters", None).status,
        404
    );

    // Tags: set, filtered on; bad ones refused.
    let tagged = ok(
        c("PATCH", &dev, Some(json!({"tags": ["fiber", "vip"]}))),
        200,
    );
    assert_eq!(tagged["data"]["tags"], json!(["fiber", "vip"]));
    let by_tag = ok(c("GET", "/api/v1/devices?tag=vip", None), 200);
    assert_eq!(by_tag["meta"]["count"], 1);
    assert_eq!(by_tag["data"][0]["id"], id.as_str());
    let bad = c("PATCH", &dev, Some(json!({"tags": ["no spaces"]})));
    assert_eq!(
        (bad.status, error_code(&bad)),
        (422, "validation_failed".into())
    );
    assert_eq!(
        c("PATCH", &dev, Some(json!({"colour": "red"}))).status,
        422,
        "unknown fields are refused"
    );
    let bad = c(
        "PATCH",
        &dev,
        Some(
            json!({"connection_request": {"username": "ok", "password": "ok"},
            "cpe": {"username": "box\u{1}", "password": "x"}}),
        ),
    );
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert_eq!(bad.json()["error"]["details"][0]["field"], "cpe");

    // Files: uploaded as raw bytes (larger than the API's JSON limit), described, served to
    // CPEs; a name is never reused; a read token cannot upload.
    let image: Vec<u8> = (0..70_001u32).map(|i| (i % 253) as u8).collect();
    let up = upload(&s, &t, "/api/v1/files/fw-3.0.bin", &image);
    assert_eq!(up.status, 201, "{}", up.body);
    assert_eq!(up.header("location"), Some("/api/v1/files/fw-3.0.bin"));
    let f = up.json()["data"].clone();
    assert_eq!(f["size"], 70_001);
    assert_eq!(f["file_type"], "1 Firmware Upgrade Image");
    assert!(f["url"].as_str().unwrap().ends_with("/files/fw-3.0.bin"));
    assert_eq!(f["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(
        upload(&s, &t, "/api/v1/files/fw-3.0.bin", b"again").status,
        409
    );
    assert_eq!(
        upload(&s, &reader, "/api/v1/files/other.bin", b"x").status,
        403
    );
    let odd = upload(
        &s,
        &t,
        "/api/v1/files/cfg.xml?file_type=7%20Nonsense",
        b"<x/>",
    );
    assert_eq!(
        (odd.status, error_code(&odd)),
        (422, "validation_failed".into())
    );
    assert_eq!(upload(&s, &t, "/api/v1/files/empty.bin", b"").status, 422);
    let cfg = upload(
        &s,
        &t,
        "/api/v1/files/cfg.xml?file_type=3%20Vendor%20Configuration%20File",
        b"<config/>",
    );
    assert_eq!(cfg.status, 201, "{}", cfg.body);
    let files = ok(c("GET", "/api/v1/files?limit=1", None), 200);
    assert_eq!(files["data"][0]["name"], "cfg.xml");
    assert!(files["meta"]["next_cursor"].is_string());
    assert_eq!(
        ok(c("GET", "/api/v1/files/fw-3.0.bin", None), 200)["data"]["sha256"],
        f["sha256"]
    );
    // Tasks: queued through the API, run in order at the next session, read back. The first
    // downloads a file removed before the session: it ends in a fault.
    let add = |b: Value| ok(c("POST", &format!("{dev}/tasks"), Some(b)), 201)["data"].clone();
    let orphan = add(json!({"kind": "download", "file": "cfg.xml"}));
    assert_eq!(c("DELETE", "/api/v1/files/cfg.xml", None).status, 204);
    assert_eq!(c("GET", "/api/v1/files/cfg.xml", None).status, 404);
    let set = add(json!({"kind": "set_parameters", "values": [
        {"name": "Device.WiFi.SSID.1.SSID", "value": "api-net"},
        {"name": "Device.ManagementServer.PeriodicInformInterval", "value": "900",
         "type": "unsignedInt"}]}));
    assert_eq!(set["status"], "queued");
    assert_eq!(set["task"]["kind"], "set_parameters");
    let get = add(json!({"kind": "get_parameters", "names": ["Device.DeviceInfo."]}));
    let fault = add(json!({"kind": "set_parameters", "values": [
        {"name": "Device.DeviceInfo.SoftwareVersion", "value": "9"}]}));
    let dl = add(json!({"kind": "download", "file": "fw-3.0.bin"}));
    let gone = add(json!({"kind": "reboot"}));
    assert_eq!(
        c("DELETE", &format!("/api/v1/tasks/{}", gone["id"]), None).status,
        204
    );
    for (body, field) in [
        (json!({"kind": "launch_rockets"}), "kind"),
        (json!({"kind": "get_parameters", "names": []}), "task"),
        (json!({"kind": "get_parameters", "names": ["a b"]}), "task"),
        (json!({"kind": "download", "file": "nope.bin"}), ""),
        (json!({"kind": "reboot", "extra": 1}), "extra"),
    ] {
        let a = c("POST", &format!("{dev}/tasks"), Some(body.clone()));
        assert!(
            matches!(a.status, 404 | 422),
            "{body}: {} {}",
            a.status,
            a.body
        );
        if !field.is_empty() {
            assert!(a.body.contains(field), "{body}: {}", a.body);
        }
    }
    assert_eq!(
        c(
            "POST",
            "/api/v1/devices/no-such-box/tasks",
            Some(json!({"kind": "reboot"}))
        )
        .status,
        404
    );
    let queued = ok(
        c(
            "GET",
            &format!("/api/v1/tasks?device={id}&status=queued"),
            None,
        ),
        200,
    );
    assert_eq!(queued["meta"]["count"], 5);
    assert_eq!(c("GET", "/api/v1/tasks?status=lost", None).status, 422);

    cpe.sessions_until(|c| c.log.iter().any(|m| m == "Download"));
    assert_eq!(
        cpe.downloaded, image,
        "the uploaded file reached the CPE whole"
    );
    assert_eq!(cpe.value("WiFi.SSID.1.SSID").as_deref(), Some("api-net"));
    let task =
        |t: &Value| ok(c("GET", &format!("/api/v1/tasks/{}", t["id"]), None), 200)["data"].clone();
    cpe.sessions_until(|_| {
        [&set, &get, &dl]
            .iter()
            .all(|t| task(t)["status"] == "done")
            && [&fault, &orphan]
                .iter()
                .all(|t| task(t)["status"] == "fault")
    });
    assert!(task(&orphan)["fault"]["message"]
        .as_str()
        .unwrap()
        .contains("cfg.xml"));
    assert!(task(&get)["result"]["values"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v["name"] == "Device.DeviceInfo.HardwareVersion" && v["value"] == "hw1"));
    assert_eq!(task(&dl)["result"]["transfer"], "complete");
    let f = task(&fault);
    assert_eq!(f["attempts"], 2);
    assert_eq!(f["fault"]["code"], 9003);
    assert!(f["fault"]["message"]
        .as_str()
        .unwrap()
        .contains("SoftwareVersion: 9008"));
    // Oldest first, a page at a time, every task once.
    let mut seen = Vec::new();
    let mut path = format!("/api/v1/tasks?device={id}&limit=2");
    loop {
        let page = ok(c("GET", &path, None), 200);
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["id"].as_i64().unwrap()),
        );
        match page["links"]["next"].as_str() {
            Some(next) => path = next.to_string(),
            None => break,
        }
    }
    let want: Vec<i64> = [&orphan, &set, &get, &fault, &dl]
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    assert_eq!(seen, want);
    assert_eq!(c("GET", "/api/v1/tasks?cursor=bm9wZQ", None).status, 422);

    // Connection requests: the global credentials are wrong for this CPE (reported, not a
    // 5xx); the device's own, set through the API, work; a task can ask for one.
    let kick = ok(c("POST", &format!("{dev}/connection-request"), None), 200);
    assert_eq!(kick["data"]["result"], "failed");
    assert!(kick["data"]["error"].as_str().unwrap().contains("401"));
    let patched = ok(
        c(
            "PATCH",
            &dev,
            Some(json!({"connection_request": {"username": "cr-user", "password": "cr-pass"}})),
        ),
        200,
    );
    assert!(
        !patched.to_string().contains("cr-pass"),
        "passwords are never shown"
    );
    let kick = ok(c("POST", &format!("{dev}/connection-request"), None), 200);
    assert_eq!(kick["data"]["result"], "sent", "{kick}");
    let now = ok(
        c(
            "POST",
            &format!("{dev}/tasks?connection_request=true"),
            Some(json!({"kind": "reboot"})),
        ),
        201,
    );
    assert_eq!(now["data"]["connection_request"]["result"], "sent");
    assert_eq!(cr.hits.load(std::sync::atomic::Ordering::SeqCst), 2);
    cpe.sessions_until(|c| c.rebooted == 1);

    // Presets: the name comes from the path; values reach every matching device.
    let body = json!({"filter": {"tags": ["vip"]},
        "values": [{"name": "Device.WiFi.SSID.1.SSID", "value": "vip-net"}]});
    let put = ok(
        c("PUT", "/api/v1/presets/vip-wifi", Some(body.clone())),
        200,
    );
    assert_eq!(put["data"]["name"], "vip-wifi");
    let mismatch = c(
        "PUT",
        "/api/v1/presets/vip-wifi",
        Some(json!({"name": "other", "values": body["values"]})),
    );
    assert_eq!(mismatch.status, 422);
    assert_eq!(
        c("PUT", "/api/v1/presets/empty", Some(json!({}))).status,
        422,
        "a preset sets something"
    );
    assert_eq!(
        ok(c("GET", "/api/v1/presets", None), 200)["data"][0]["filter"]["tags"],
        json!(["vip"])
    );
    cpe.sessions_until(|c| c.value("WiFi.SSID.1.SSID").as_deref() == Some("vip-net"));
    assert!(eventually(Duration::from_secs(10), || {
        c("GET", &dev, None).json()["data"]["presets_converged"] == true
    }));
    assert_eq!(other.session(&[]), 200);
    assert_ne!(
        other.value("WiFi.SSID.1.SSID").as_deref(),
        Some("vip-net"),
        "the untagged device is left alone"
    );
    assert_eq!(c("DELETE", "/api/v1/presets/vip-wifi", None).status, 204);
    assert_eq!(c("GET", "/api/v1/presets/vip-wifi", None).status, 404);

    // A read token reads and cannot write; every write was audited.
    assert_eq!(call(&s, Some(&reader), "GET", &dev, None).status, 200);
    assert_eq!(
        call(
            &s,
            Some(&reader),
            "POST",
            &format!("{dev}/tasks"),
            Some(json!({"kind": "reboot"}))
        )
        .status,
        403
    );
    assert_eq!(call(&s, None, "GET", "/api/v1/devices", None).status, 401);
    let audit = ok(c("GET", "/api/v1/audit?limit=1000", None), 200);
    assert!(audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["path"] == "/api/v1/files/fw-3.0.bin" && e["status"] == 201));

    // Removing the device removes its tasks; it registers again at its next Inform.
    assert_eq!(c("DELETE", &dev, None).status, 204);
    assert_eq!(c("GET", &dev, None).status, 404);
    assert_eq!(
        c("GET", &format!("/api/v1/tasks/{}", set["id"]), None).status,
        404
    );
    let doc = ok(call(&s, None, "GET", "/api/v1/openapi.json", None), 200);
    for path in [
        "/api/v1/devices/{id}/tasks",
        "/api/v1/tasks/{id}",
        "/api/v1/presets/{name}",
        "/api/v1/files/{name}",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is documented");
    }
}

both_backends!(acs_through_the_api, crate::acs_api);
