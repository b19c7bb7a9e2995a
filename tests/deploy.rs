//! What `deploy/` ships, checked: the Helm chart renders to manifests that the Kubernetes
//! schemas accept (`kubernetes-validate --strict`) and that wire the probes, ports, config
//! and secrets to what the binary expects; the alert rules pass `promtool`; the dashboard
//! and rules use only catalogued metrics; the systemd unit passes `systemd-analyze verify`.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use gtmpl_ng::{Context, Template, Value as Tv};
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn to_tv(v: &Value) -> Tv {
    match v {
        Value::Null => Tv::Nil,
        Value::Bool(b) => Tv::from(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Tv::from(i),
            None => Tv::from(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => Tv::from(s.as_str()),
        Value::Array(a) => Tv::from(a.iter().map(to_tv).collect::<Vec<_>>()),
        Value::Object(o) => Tv::from(
            o.iter()
                .map(|(k, v)| (k.clone(), to_tv(v)))
                .collect::<std::collections::HashMap<_, _>>(),
        ),
    }
}

fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// The chart rendered as `helm template RELEASE --namespace NS` would, with `overrides`
/// merged into values.yaml: every document of every template, parsed.
fn render(release: &str, namespace: &str, overrides: Value) -> Vec<Value> {
    let chart = root().join("deploy/helm/dotmac-edge");
    let yaml = |p: &Path| -> Value {
        serde_yaml::from_str(&std::fs::read_to_string(p).expect("chart file")).expect("YAML")
    };
    let meta = yaml(&chart.join("Chart.yaml"));
    let mut values = yaml(&chart.join("values.yaml"));
    merge(&mut values, &overrides);
    let ctx = serde_json::json!({
        "Values": values,
        "Release": {"Name": release, "Namespace": namespace, "Service": "Helm"},
        "Chart": {"Name": meta["name"], "Version": meta["version"], "AppVersion": meta["appVersion"]},
    });
    let helpers = std::fs::read_to_string(chart.join("templates/_helpers.tpl")).unwrap();
    let mut docs = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(chart.join("templates"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    for f in files {
        let mut t = Template::default();
        for (name, func) in gtmpl_ng::helm_functions::HELM_FUNCTIONS.iter() {
            t.add_func(name, *func);
        }
        let text = format!("{helpers}{}", std::fs::read_to_string(&f).unwrap());
        t.parse(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let out = t
            .render(&Context::from(to_tv(&ctx)))
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for doc in out.split("\n---") {
            if doc.trim().is_empty() {
                continue;
            }
            let v: Value =
                serde_yaml::from_str(doc).unwrap_or_else(|e| panic!("{}: {e}\n{doc}", f.display()));
            if !v.is_null() {
                docs.push(v);
            }
        }
    }
    docs
}

fn kind<'a>(docs: &'a [Value], kind: &str, suffix: &str) -> &'a Value {
    docs.iter()
        .find(|d| {
            d["kind"] == kind
                && d["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.ends_with(suffix))
        })
        .unwrap_or_else(|| panic!("no {kind} *{suffix}"))
}

/// kubernetes-validate (PyPI, with the Kubernetes schemas), strict: unknown fields fail.
fn validate(docs: &[Value]) {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (i, d) in docs.iter().enumerate() {
        let p = dir.path().join(format!("{i}.yaml"));
        std::fs::write(&p, serde_yaml::to_string(d).unwrap()).unwrap();
        files.push(p);
    }
    let out = Command::new("python3")
        .args([
            "-m",
            "kubernetes_validate",
            "--strict",
            "--kubernetes-version",
            "1.30.0",
        ])
        .args(&files)
        .output()
        .expect("kubernetes-validate is installed (scripts/test.sh installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(!text.contains("ERROR") && !text.contains("WARN"), "{text}");
}

#[test]
fn helm_chart_renders_valid_manifests_for_one_tenant() {
    let docs = render(
        "isp1",
        "tenant-isp1",
        serde_json::json!({
            "tenant": "isp1",
            "database": {"url": "postgres://edge:s3cret@db:5432/isp1"},
            "networkPolicy": {"nasCidrs": ["198.51.100.0/24", "203.0.113.0/28"]},
            "acs": {"trustedProxies": ["10.42.0.0/16", "fd00::/8"]},
        }),
    );
    let kinds: HashSet<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    for k in [
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "ConfigMap",
        "Secret",
    ] {
        assert!(kinds.contains(k), "{k} missing: {kinds:?}");
    }
    for d in &docs {
        assert_eq!(d["metadata"]["namespace"], "tenant-isp1", "{d}");
        assert_eq!(d["metadata"]["labels"]["dotmac.io/tenant"], "isp1");
    }
    validate(&docs);

    // Services: RADIUS over UDP, the ACS and HTTP over TCP, selecting the pods.
    let deploy = kind(&docs, "Deployment", "");
    let pod_labels = &deploy["spec"]["template"]["metadata"]["labels"];
    let ports = |suffix: &str| -> Vec<(i64, String)> {
        let svc = kind(&docs, "Service", suffix);
        for (k, v) in svc["spec"]["selector"].as_object().unwrap() {
            assert_eq!(&pod_labels[k], v, "selector {k}");
        }
        svc["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["port"].as_i64().unwrap(),
                    p["protocol"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    assert_eq!(
        ports("-radius"),
        vec![(1812, "UDP".into()), (1813, "UDP".into())]
    );
    assert_eq!(ports("-acs"), vec![(7547, "TCP".into())]);
    assert_eq!(ports("-http"), vec![(8080, "TCP".into())]);

    // Probes on the health endpoints; the grace period covers the drain.
    let pod = &deploy["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(c["startupProbe"]["httpGet"]["path"], "/health/startup");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/health/ready");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/health/live");
    assert!(pod["terminationGracePeriodSeconds"].as_i64() > Some(30));
    assert!(!c["resources"]["requests"]["cpu"].is_null());

    // Every EDGE_ variable names a real configuration key; the secret comes from the Secret.
    let env: BTreeMap<String, Value> = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_string(), e.clone()))
        .collect();
    assert_eq!(
        env["EDGE_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"],
        "database-url"
    );
    assert_eq!(
        env["EDGE_ACS_TRUSTED_PROXIES"]["value"],
        "10.42.0.0/16,fd00::/8"
    );
    // By default no proxy is trusted and the variable is not set.
    let plain = render("isp1", "tenant-isp1", serde_json::json!({"tenant": "isp1"}));
    let plain_env =
        &kind(&plain, "Deployment", "")["spec"]["template"]["spec"]["containers"][0]["env"];
    assert!(!plain_env
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["name"] == "EDGE_ACS_TRUSTED_PROXIES"));
    let secret = kind(&docs, "Secret", "");
    use base64::Engine;
    let url = base64::engine::general_purpose::STANDARD
        .decode(secret["data"]["database-url"].as_str().unwrap())
        .unwrap();
    assert_eq!(url, b"postgres://edge:s3cret@db:5432/isp1");
    let config = kind(&docs, "ConfigMap", "")["data"]["dotmac-edge.toml"]
        .as_str()
        .unwrap()
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dotmac-edge.toml");
    std::fs::write(&file, &config).unwrap();
    let mut check = Command::new(common::BIN);
    check.arg("check-config").arg(&file);
    // Each variable as the pod would see it (the database URL aside: checked above).
    for (k, v) in &env {
        let from_secret = |key: &Value| {
            let data = secret["data"][key.as_str().unwrap()].as_str().unwrap();
            String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(data)
                    .unwrap(),
            )
            .unwrap()
        };
        let value = match (&v["value"], &v["valueFrom"]) {
            (Value::String(s), _) => s.clone(),
            (_, from) if !from["secretKeyRef"].is_null() => {
                from_secret(&from["secretKeyRef"]["key"])
            }
            _ => "isp1-dotmac-edge-0".to_string(),
        };
        check.env(
            k,
            if k.ends_with("_URL") {
                "sqlite://x.db".into()
            } else {
                value
            },
        );
    }
    let out = check.output().unwrap();
    assert!(
        out.status.success(),
        "the chart's config and environment: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Only the tenant's NAS reach RADIUS.
    let np = kind(&docs, "NetworkPolicy", "");
    let radius_from: Vec<&str> = np["spec"]["ingress"][0]["from"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["ipBlock"]["cidr"].as_str().unwrap())
        .collect();
    assert_eq!(radius_from, ["198.51.100.0/24", "203.0.113.0/28"]);

    // An existing Secret replaces the chart's own.
    let docs = render(
        "isp2",
        "tenant-isp2",
        serde_json::json!({"database": {"existingSecret": "isp2-db"}, "networkPolicy": {"enabled": false}}),
    );
    assert!(docs
        .iter()
        .all(|d| d["kind"] != "Secret" && d["kind"] != "NetworkPolicy"));
    let c = &kind(&docs, "Deployment", "")["spec"]["template"]["spec"]["containers"][0];
    assert!(c["env"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["valueFrom"]["secretKeyRef"]["name"] == "isp2-db"));
    validate(&docs);
}

/// Every metric name the code defines is in docs/metrics.md, and the alert rules and the
/// dashboard use only names that are.
#[test]
fn metrics_catalogue_is_complete() {
    let names = std::fs::read_to_string(root().join("shared/src/metric_names.rs")).unwrap();
    let defined: HashSet<String> = names
        .split('"')
        .filter(|s| s.starts_with("edge_"))
        .map(str::to_string)
        .collect();
    assert!(defined.len() > 40);
    let doc = std::fs::read_to_string(root().join("docs/metrics.md")).unwrap();
    for n in &defined {
        assert!(
            doc.contains(&format!("`{n}`")),
            "{n} is not in docs/metrics.md"
        );
    }
    let used = |text: &str| -> HashSet<String> {
        text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("edge_"))
            .map(|w| {
                w.trim_end_matches("_bucket")
                    .trim_end_matches("_sum")
                    .trim_end_matches("_count")
                    .to_string()
            })
            .collect()
    };
    for f in [
        "deploy/prometheus/edge-rules.yml",
        "deploy/grafana/dotmac-edge.json",
    ] {
        let text = std::fs::read_to_string(root().join(f)).unwrap();
        for n in used(&text) {
            assert!(defined.contains(&n), "{f} uses {n}, which no code defines");
        }
    }
    let dash: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("deploy/grafana/dotmac-edge.json")).unwrap(),
    )
    .unwrap();
    assert!(dash["panels"].as_array().unwrap().len() > 10);
}

fn promtool() -> String {
    std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".into())
}

#[test]
fn alert_rules_pass_promtool() {
    let dir = root().join("deploy/prometheus");
    for args in [
        vec!["check", "rules", "edge-rules.yml"],
        vec!["test", "rules", "edge-rules.test.yml"],
    ] {
        let out = Command::new(promtool())
            .args(&args)
            .current_dir(&dir)
            .output()
            .expect("promtool is installed (scripts/test.sh installs it)");
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn systemd_unit_verifies() {
    let unit = std::fs::read_to_string(root().join("deploy/systemd/dotmac-edge.service")).unwrap();
    assert!(unit.contains("KillSignal=SIGTERM"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dotmac-edge.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/dotmac-edge", common::BIN),
    )
    .unwrap();
    let Ok(out) = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
    else {
        panic!("systemd-analyze is installed (scripts/test.sh installs systemd)");
    };
    let err = String::from_utf8_lossy(&out.stderr);
    let ours: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("dotmac-edge.service"))
        .collect();
    assert!(out.status.success() && ours.is_empty(), "{err}");
}
