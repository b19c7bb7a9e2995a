//! The `[acs]` section: the TR-069 ACS's settings, and the server configuration made of them.

use std::net::SocketAddr;

use anyhow::bail;
use serde::{Deserialize, Serialize};

use super::{at_least, Secret};

/// The TR-069 ACS on TCP 7547.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Acs {
    pub listen: SocketAddr,
    /// The URL CPEs reach this ACS at; Download requests point at `<public_url>/files/NAME`.
    /// Empty: `http://<listen>`.
    pub public_url: String,
    /// Largest CWMP message accepted; larger ones get 413.
    pub max_body_bytes: usize,
    /// A session idle this long is closed (a CPE's SessionTimeout, 5-300 s, wins).
    pub session_timeout_seconds: u64,
    /// RPCs sent in one session; the rest wait for the next session.
    pub max_rpcs_per_session: u32,
    /// Open connections; at the cap the listener stops accepting.
    pub max_connections: usize,
    /// Entries in any list of one message (parameters, events...).
    pub max_parameters: usize,
    /// Global credentials CPEs authenticate with (HTTP Digest); empty username: none asked
    /// (per-device credentials, set with `devices credentials`, are asked regardless).
    pub cpe_username: String,
    pub cpe_password: Secret,
    /// Credentials for connection requests to devices that have none of their own.
    pub connection_request_username: String,
    pub connection_request_password: Secret,
    pub connection_request_timeout_ms: u64,
    /// Device state is written in batches of at most this many sessions' effects...
    pub batch_max: usize,
    /// ...gathered for at most this long.
    pub batch_wait_ms: u64,
    /// Writes waiting for the writer; at the limit sessions wait (nothing is dropped).
    pub queue: usize,
    /// A failed task is tried again after this, doubled per attempt...
    pub task_retry_seconds: u64,
    /// ...up to this many attempts, then it stays `fault`.
    pub task_max_attempts: u32,
    /// Presets, devices with queued tasks and credentials are reloaded this often.
    pub refresh_seconds: u64,
    /// PEM certificate chain and private key: the ACS speaks HTTPS, and CPEs may use Basic
    /// as well as Digest. Empty: plain HTTP.
    pub tls_cert_file: String,
    pub tls_key_file: String,
    /// Devices whose state (tags, preset fingerprint, last Inform's hash) is cached, about
    /// 150 bytes each; past it, arbitrary ones are dropped and read again when they inform.
    pub cache_max_devices: usize,
    /// Proxies (addresses or CIDRs) in front of the ACS, an HTTP load balancer or ingress,
    /// whose `Forwarded` or `X-Forwarded-For` header names the CPE's address. Empty: the
    /// connection's own peer is the CPE's address. A list, or one comma-separated string.
    #[serde(deserialize_with = "list_or_commas")]
    pub trusted_proxies: Vec<String>,
}

/// A list of strings given as a TOML array or as one comma-separated string (the form an
/// `EDGE_*` variable takes most easily).
fn list_or_commas<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Given {
        List(Vec<String>),
        Commas(String),
    }
    Ok(match Given::deserialize(d)? {
        Given::List(l) => l,
        Given::Commas(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
    })
}

impl Default for Acs {
    fn default() -> Self {
        Acs {
            listen: "0.0.0.0:7547".parse().expect("constant address"),
            public_url: String::new(),
            max_body_bytes: 8 << 20,
            session_timeout_seconds: 30,
            max_rpcs_per_session: 64,
            max_connections: 20_000,
            max_parameters: 200_000,
            cpe_username: String::new(),
            cpe_password: Secret::default(),
            connection_request_username: String::new(),
            connection_request_password: Secret::default(),
            connection_request_timeout_ms: 5_000,
            batch_max: 1_000,
            batch_wait_ms: 20,
            queue: 20_000,
            task_retry_seconds: 60,
            task_max_attempts: 3,
            refresh_seconds: 2,
            tls_cert_file: String::new(),
            tls_key_file: String::new(),
            cache_max_devices: 2_000_000,
            trusted_proxies: Vec::new(),
        }
    }
}

impl Acs {
    /// The URL CPEs fetch files from, without a trailing slash.
    pub fn public_url(&self) -> String {
        if self.public_url.is_empty() {
            let host = match self.listen.ip() {
                ip if ip.is_unspecified() => "127.0.0.1".to_string(),
                std::net::IpAddr::V6(ip) => format!("[{ip}]"),
                ip => ip.to_string(),
            };
            let scheme = if self.tls_cert_file.is_empty() {
                "http"
            } else {
                "https"
            };
            format!("{scheme}://{host}:{}", self.listen.port())
        } else {
            self.public_url.trim_end_matches('/').to_string()
        }
    }

    /// The section's own checks, run before any port is bound.
    pub(super) fn validate(&self) -> anyhow::Result<()> {
        at_least(
            "acs",
            4096,
            &[("max_body_bytes", self.max_body_bytes as u64)],
        )?;
        at_least(
            "acs",
            1,
            &[
                ("session_timeout_seconds", self.session_timeout_seconds),
                ("max_rpcs_per_session", u64::from(self.max_rpcs_per_session)),
                ("max_connections", self.max_connections as u64),
                ("max_parameters", self.max_parameters as u64),
                ("batch_max", self.batch_max as u64),
                ("queue", self.queue as u64),
                ("task_max_attempts", u64::from(self.task_max_attempts)),
                ("refresh_seconds", self.refresh_seconds),
                (
                    "connection_request_timeout_ms",
                    self.connection_request_timeout_ms,
                ),
                ("cache_max_devices", self.cache_max_devices as u64),
            ],
        )?;
        let url_ok = self.public_url.is_empty()
            || self.public_url.starts_with("http://")
            || self.public_url.starts_with("https://");
        if !url_ok {
            bail!("acs.public_url must start with http:// or https://");
        }
        self.proxies()?;
        if self.tls_cert_file.is_empty() != self.tls_key_file.is_empty() {
            bail!("acs.tls_cert_file and acs.tls_key_file are set together (or neither)");
        }
        Ok(())
    }

    fn proxies(&self) -> anyhow::Result<Vec<ipnetwork::IpNetwork>> {
        self.trusted_proxies
            .iter()
            .map(|p| {
                p.parse().map_err(|_| {
                    anyhow::anyhow!("acs.trusted_proxies: `{p}` is not an address or CIDR")
                })
            })
            .collect()
    }

    /// The server's configuration, with the TLS certificate loaded when one is configured.
    pub fn server_config(&self) -> anyhow::Result<edge_acs::server::AcsConfig> {
        use std::time::Duration;
        let tls = if self.tls_cert_file.is_empty() {
            None
        } else {
            Some(
                edge_acs::server::tls::server_config(
                    std::path::Path::new(&self.tls_cert_file),
                    std::path::Path::new(&self.tls_key_file),
                )
                .map_err(|e| anyhow::anyhow!("acs TLS: {e}"))?,
            )
        };
        Ok(edge_acs::server::AcsConfig {
            tls,
            trusted_proxies: self.proxies()?,
            listen: self.listen,
            public_url: self.public_url(),
            max_body_bytes: self.max_body_bytes,
            session_timeout: Duration::from_secs(self.session_timeout_seconds),
            max_rpcs_per_session: self.max_rpcs_per_session,
            max_connections: self.max_connections,
            cpe_username: (!self.cpe_username.is_empty()).then(|| self.cpe_username.clone()),
            cpe_password: self.cpe_password.0.clone(),
            limits: edge_acs::codec::Limits {
                max_items: self.max_parameters,
                ..edge_acs::codec::Limits::default()
            },
            writer: edge_acs::server::WriterConfig {
                batch_max: self.batch_max,
                batch_wait: Duration::from_millis(self.batch_wait_ms),
                queue: self.queue,
                task_retry: Duration::from_secs(self.task_retry_seconds),
                task_max_attempts: self.task_max_attempts as i32,
                refresh_every: Duration::from_secs(self.refresh_seconds),
                cache_max_devices: self.cache_max_devices,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::env;
    use super::super::Config;

    #[test]
    fn trusted_proxies_as_a_list_or_commas() {
        let c = Config::load(
            None,
            env(&[("EDGE_ACS_TRUSTED_PROXIES", "10.0.0.0/8, fd00::/8,192.0.2.1")]),
        )
        .unwrap();
        assert_eq!(
            c.acs.trusted_proxies,
            ["10.0.0.0/8", "fd00::/8", "192.0.2.1"]
        );
        assert_eq!(c.acs.server_config().unwrap().trusted_proxies.len(), 3);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "[acs]\ntrusted_proxies = [\"127.0.0.1\"]\n").unwrap();
        let c = Config::load(Some(&p), env(&[])).unwrap();
        assert_eq!(c.acs.trusted_proxies, ["127.0.0.1"]);
        assert!(Config::load(None, env(&[]))
            .unwrap()
            .acs
            .trusted_proxies
            .is_empty());
        let bad = Config::load(None, env(&[("EDGE_ACS_TRUSTED_PROXIES", "10.0.0.0/33")]));
        assert!(bad.unwrap_err().to_string().contains("10.0.0.0/33"));
    }
}
