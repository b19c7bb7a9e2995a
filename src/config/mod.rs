//! Configuration: strict TOML, every key overridable by `EDGE_<SECTION>_<KEY>`, validated
//! before any port is bound.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

mod acs;
pub use acs::Acs;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub tenant: Tenant,
    pub database: Database,
    pub radius: Radius,
    pub accounting: Accounting,
    pub ipam: Ipam,
    pub http: Http,
    pub api: Api,
    pub acs: Acs,
    pub log: Log,
    pub shutdown: Shutdown,
    pub wireguard: Wireguard,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Tenant {
    pub id: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Database {
    /// `postgres://…` or `sqlite://PATH`.
    pub url: String,
    /// How often the index checks the database revision (LISTEN/NOTIFY wakes it sooner).
    pub refresh_interval_seconds: u64,
    /// `serve` waits this long for the database at start (it may be starting too), then
    /// exits non-zero.
    pub startup_wait_seconds: u64,
}

impl Database {
    /// The URL with any password replaced by `***`, for messages and logs.
    pub fn redacted_url(&self) -> String {
        match (self.url.find("://"), self.url.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                let userinfo = &self.url[scheme + 3..at];
                match userinfo.split_once(':') {
                    Some((user, _)) => {
                        format!("{}{user}:***{}", &self.url[..scheme + 3], &self.url[at..])
                    }
                    None => self.url.clone(),
                }
            }
            _ => self.url.clone(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Radius {
    pub auth_listen: SocketAddr,
    pub acct_listen: SocketAddr,
    /// Receiver threads, all reading the one socket; 0 means one per core.
    pub receivers: usize,
    /// Costly password hashes (bcrypt, sha512-crypt, argon2) in flight at once; more are shed.
    pub slow_queue: usize,
    pub reply_cache_ttl_seconds: u64,
    pub reply_cache_entries: usize,
    pub socket_buffer_bytes: usize,
    /// Extra dictionary directories; each one's `dictionary` file is loaded after ours.
    pub dictionary_dirs: Vec<PathBuf>,
}

/// The accounting writer and the stale-session reaper.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Accounting {
    /// Most records stored in one journal row (one commit).
    pub batch_max: usize,
    /// Longest a record waits for others to share its commit, in milliseconds.
    pub batch_wait_ms: u64,
    /// Records waiting for the writer; past it requests are shed (the NAS retransmits).
    pub queue: usize,
    /// Batches committed at once, each on its own database connection.
    pub commit_concurrency: usize,
    /// Records answered but not yet folded into `sessions`; at this many the writer waits
    /// for the fold before it takes more (and past `queue`, requests are shed).
    pub max_unfolded: usize,
    /// Most records folded into `sessions` in one transaction.
    pub fold_max: usize,
    /// Journal rows this old that no live process has folded (a crash, a vanished
    /// instance) are folded by this one.
    pub orphan_seconds: u64,
    /// How often the reaper looks for silent sessions.
    pub reaper_interval_seconds: u64,
    /// Interim interval assumed for sessions that do not report theirs.
    pub default_interim_seconds: u64,
    /// A session is stale after this many interim intervals without a word...
    pub stale_multiplier: u32,
    /// ...plus this grace.
    pub stale_grace_seconds: u64,
    /// Directory of the local spool that holds acknowledged accounting while the database
    /// is away (fsynced before the answer, replayed when it returns). Empty: no spool, and
    /// accounting is not acknowledged while the database is away. One process per
    /// directory.
    pub spool_dir: String,
    /// Most bytes the spool holds; past it accounting is not acknowledged.
    pub spool_max_bytes: u64,
    /// A journal insert slower than this, in milliseconds, counts as the database being
    /// away: the batch goes to the spool.
    pub spool_after_ms: u64,
    /// With other instances on the database, how often to read the sessions they opened
    /// and closed into this one's memory.
    pub sync_seconds: u64,
}

impl Default for Accounting {
    fn default() -> Self {
        Accounting {
            batch_max: 2048,
            batch_wait_ms: 2,
            queue: 65_536,
            commit_concurrency: 3,
            max_unfolded: 524_288,
            fold_max: 131_072,
            orphan_seconds: 60,
            reaper_interval_seconds: 60,
            default_interim_seconds: 300,
            stale_multiplier: 3,
            stale_grace_seconds: 60,
            spool_dir: String::new(),
            spool_max_bytes: 1 << 30,
            spool_after_ms: 2000,
            sync_seconds: 2,
        }
    }
}

/// Address pools: leases and the blocks this instance claims.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ipam {
    /// This instance's name among those sharing the database (blocks are owned under it).
    /// Empty: the host name. Two live processes never share one: the second waits.
    pub instance: String,
    /// How long an address offered in an Access-Accept waits for its accounting Start.
    pub offer_seconds: u32,
    /// How long a released address is kept for the same subscriber.
    pub sticky_seconds: u32,
    /// An instance silent this long is gone and its blocks may be taken over.
    pub dead_after_seconds: u64,
    pub heartbeat_seconds: u64,
    /// Free addresses kept claimed ahead of need, per pool (at most a quarter of it).
    pub claim_ahead: u64,
}

impl Default for Ipam {
    fn default() -> Self {
        Ipam {
            instance: String::new(),
            offer_seconds: 60,
            sticky_seconds: 86_400,
            dead_after_seconds: 30,
            heartbeat_seconds: 5,
            claim_ahead: 4096,
        }
    }
}

impl Ipam {
    /// The configured name, else the host name, else `edge`.
    pub fn instance_name(&self) -> String {
        if !self.instance.is_empty() {
            return self.instance.clone();
        }
        std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "edge".into())
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Http {
    pub listen: SocketAddr,
}

/// A secret read from configuration; `Debug` never shows it.
#[derive(Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "<redacted>"
        })
    }
}

/// The REST API under `/api/v1` on the HTTP listener.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Api {
    /// Largest request body accepted; larger ones get 413.
    pub max_body_bytes: usize,
    /// Requests served at once; more get 429 (the data plane never waits on the API).
    pub max_concurrent: usize,
    /// The API's own database connections, apart from the data plane's.
    pub database_connections: u32,
    /// Longest a request may take (a Disconnect waiting on a NAS included); then 503.
    pub request_timeout_seconds: u64,
    /// Require a bearer token (read scope) on `/metrics`.
    pub metrics_require_token: bool,
    /// HS256 key for the control plane's JWTs; empty: HS256 off.
    pub jwt_hs256_secret: Secret,
    /// PEM file with the RS256 public key for the control plane's JWTs; empty: RS256 off.
    pub jwt_rs256_public_key_file: String,
    /// Required `iss` and `aud` of JWTs (when JWTs are on).
    pub jwt_issuer: String,
    pub jwt_audience: String,
    /// Each Disconnect/CoA try waits this long for the NAS...
    pub coa_timeout_ms: u64,
    /// ...and is sent this many times in all.
    pub coa_tries: u32,
}

impl Default for Api {
    fn default() -> Self {
        Api {
            max_body_bytes: 64 * 1024,
            max_concurrent: 64,
            database_connections: 4,
            request_timeout_seconds: 15,
            metrics_require_token: false,
            jwt_hs256_secret: Secret::default(),
            jwt_rs256_public_key_file: String::new(),
            jwt_issuer: String::new(),
            jwt_audience: String::new(),
            coa_timeout_ms: 1000,
            coa_tries: 3,
        }
    }
}

/// SIGTERM and SIGINT: readiness goes false, listeners stop reading, in-flight work
/// drains, pending accounting commits, then the process exits 0.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Shutdown {
    /// Longest the drain may take; past it the process exits anyway (what is acknowledged
    /// is already in the journal or the spool).
    pub drain_seconds: u64,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown { drain_seconds: 30 }
    }
}

/// NAS links over WireGuard: the interface NAS routers reach the edge through, and the
/// management prefix their tunnel addresses come from.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Wireguard {
    /// Off: NAS reach the edge directly and registering one with a tunnel is refused.
    pub enabled: bool,
    pub interface: String,
    pub listen_port: u16,
    /// The interface's private key (base64, as `wg genkey` writes it). Created, readable by
    /// the owner only, when missing. Never logged.
    pub private_key_file: String,
    /// Tunnel addresses come from this prefix; the edge takes its first host address.
    pub management_prefix: String,
    /// The IPAM pool (purpose `nas-tunnels`) made from the prefix on first use.
    pub pool: String,
    /// `auto` (the kernel module if loaded, else userspace), `kernel` or `userspace`.
    pub backend: String,
    /// Started with the interface name appended when no userspace interface is running,
    /// e.g. `boringtun-cli --foreground --disable-drop-privileges`. Empty: a sidecar runs it.
    pub userspace_command: String,
    /// `host:port` NAS routers dial, written into their configuration.
    pub endpoint: String,
    pub keepalive_seconds: u16,
    /// Peers are compared with the NAS table this often even without a change notice.
    pub resync_seconds: u64,
    /// Peer handshakes and counters are read into the metrics this often.
    pub status_seconds: u64,
}

impl Default for Wireguard {
    fn default() -> Self {
        Wireguard {
            enabled: false,
            interface: "wg-edge".into(),
            listen_port: 51820,
            private_key_file: "/var/lib/dotmac-edge/wireguard.key".into(),
            management_prefix: "10.255.0.0/16".into(),
            pool: "nas-tunnels".into(),
            backend: "auto".into(),
            userspace_command: String::new(),
            endpoint: String::new(),
            keepalive_seconds: 25,
            resync_seconds: 30,
            status_seconds: 5,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    /// A tracing filter: `info`, `debug`, `edge_radius=debug,info`…
    pub level: String,
    /// `text` or `json`.
    pub format: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            tenant: Tenant {
                id: "default".into(),
            },
            database: Database::default(),
            radius: Radius::default(),
            accounting: Accounting::default(),
            ipam: Ipam::default(),
            http: Http::default(),
            api: Api::default(),
            acs: Acs::default(),
            log: Log::default(),
            shutdown: Shutdown::default(),
            wireguard: Wireguard::default(),
        }
    }
}

impl Default for Tenant {
    fn default() -> Self {
        Tenant {
            id: "default".into(),
        }
    }
}

impl Default for Database {
    fn default() -> Self {
        Database {
            url: "sqlite://dotmac-edge.db".into(),
            refresh_interval_seconds: 1,
            startup_wait_seconds: 60,
        }
    }
}

impl Default for Radius {
    fn default() -> Self {
        Radius {
            auth_listen: "0.0.0.0:1812".parse().expect("constant address"),
            acct_listen: "0.0.0.0:1813".parse().expect("constant address"),
            receivers: 0,
            slow_queue: 256,
            reply_cache_ttl_seconds: 5,
            reply_cache_entries: 250_000,
            socket_buffer_bytes: 4 << 20,
            dictionary_dirs: Vec::new(),
        }
    }
}

impl Default for Http {
    fn default() -> Self {
        Http {
            listen: "0.0.0.0:8080".parse().expect("constant address"),
        }
    }
}

impl Default for Log {
    fn default() -> Self {
        Log {
            level: "info".into(),
            format: "text".into(),
        }
    }
}

const SECTIONS: [&str; 11] = [
    "tenant",
    "database",
    "radius",
    "accounting",
    "ipam",
    "http",
    "api",
    "acs",
    "log",
    "shutdown",
    "wireguard",
];

impl Config {
    /// Reads the file (if any), applies `EDGE_*` overrides from `env`, and validates.
    pub fn load(
        path: Option<&Path>,
        env: impl Iterator<Item = (String, String)>,
    ) -> anyhow::Result<Config> {
        let mut table: toml::Table = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read config {}", p.display()))?;
                toml::from_str(&text).with_context(|| format!("config {}", p.display()))?
            }
            None => toml::Table::new(),
        };
        for (k, v) in env {
            let Some(rest) = k.strip_prefix("EDGE_") else {
                continue;
            };
            let rest = rest.to_ascii_lowercase();
            let Some((section, key)) = rest.split_once('_') else {
                continue;
            };
            if !SECTIONS.contains(&section) {
                continue;
            }
            let value = env_value(&v);
            let sec = table
                .entry(section.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match sec {
                toml::Value::Table(t) => {
                    t.insert(key.to_string(), value);
                }
                _ => bail!("config: `{section}` must be a table"),
            }
        }
        let cfg: Config = toml::Value::Table(table)
            .try_into()
            .context("invalid configuration")?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> anyhow::Result<()> {
        let url = &self.database.url;
        if !(url.starts_with("postgres://")
            || url.starts_with("postgresql://")
            || url.starts_with("sqlite:"))
        {
            bail!("database.url must start with postgres:// or sqlite://");
        }
        if self.tenant.id.is_empty() {
            bail!("tenant.id must not be empty");
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            bail!("log.format must be `text` or `json`");
        }
        at_least(
            "database",
            1,
            &[(
                "refresh_interval_seconds",
                self.database.refresh_interval_seconds,
            )],
        )?;
        let a = &self.accounting;
        at_least(
            "accounting",
            1,
            &[
                ("batch_max", a.batch_max as u64),
                ("queue", a.queue as u64),
                ("commit_concurrency", a.commit_concurrency as u64),
                ("max_unfolded", a.max_unfolded as u64),
                ("fold_max", a.fold_max as u64),
                ("orphan_seconds", a.orphan_seconds),
                ("reaper_interval_seconds", a.reaper_interval_seconds),
                ("default_interim_seconds", a.default_interim_seconds),
                ("stale_multiplier", u64::from(a.stale_multiplier)),
            ],
        )?;
        let i = &self.ipam;
        at_least(
            "ipam",
            1,
            &[
                ("offer_seconds", u64::from(i.offer_seconds)),
                ("heartbeat_seconds", i.heartbeat_seconds),
            ],
        )?;
        if i.dead_after_seconds < 2 * i.heartbeat_seconds {
            bail!("ipam.dead_after_seconds must be at least twice ipam.heartbeat_seconds");
        }
        self.acs.validate()?;
        if self.wireguard.enabled {
            crate::ops::wireguard::WgConfig::from_config(&self.wireguard)?;
        }
        let api = &self.api;
        at_least(
            "api",
            1024,
            &[("max_body_bytes", api.max_body_bytes as u64)],
        )?;
        at_least(
            "api",
            1,
            &[
                ("max_concurrent", api.max_concurrent as u64),
                ("database_connections", u64::from(api.database_connections)),
                ("request_timeout_seconds", api.request_timeout_seconds),
                ("coa_timeout_ms", api.coa_timeout_ms),
                ("coa_tries", u64::from(api.coa_tries)),
            ],
        )?;
        let jwt = !api.jwt_hs256_secret.0.is_empty() || !api.jwt_rs256_public_key_file.is_empty();
        if jwt && (api.jwt_issuer.is_empty() || api.jwt_audience.is_empty()) {
            bail!("api: JWTs need jwt_issuer and jwt_audience");
        }
        if !api.jwt_hs256_secret.0.is_empty() && api.jwt_hs256_secret.0.len() < 32 {
            bail!("api.jwt_hs256_secret must be at least 32 characters");
        }
        at_least(
            "radius",
            1,
            &[
                (
                    "reply_cache_ttl_seconds",
                    self.radius.reply_cache_ttl_seconds,
                ),
                ("slow_queue", self.radius.slow_queue as u64),
            ],
        )?;
        Ok(())
    }
}

/// Refuses the first of a section's `(key, value)` pairs below `min`, naming it.
pub(crate) fn at_least(section: &str, min: u64, fields: &[(&str, u64)]) -> anyhow::Result<()> {
    match fields.iter().find(|(_, v)| *v < min) {
        Some((key, v)) => bail!("{section}.{key} must be at least {min} (it is {v})"),
        None => Ok(()),
    }
}

/// An environment value read as TOML when it is valid TOML (numbers, booleans, arrays),
/// otherwise as a string.
fn env_value(v: &str) -> toml::Value {
    match toml::from_str::<toml::Table>(&format!("v = {v}")) {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(v.into())),
        Err(_) => toml::Value::String(v.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn env(pairs: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn a_value_below_its_bound_is_refused_by_name() {
        for (key, value, says) in [
            (
                "EDGE_ACCOUNTING_FOLD_MAX",
                "0",
                "accounting.fold_max must be at least 1",
            ),
            (
                "EDGE_API_MAX_BODY_BYTES",
                "100",
                "api.max_body_bytes must be at least 1024 (it is 100)",
            ),
            (
                "EDGE_ACS_CACHE_MAX_DEVICES",
                "0",
                "acs.cache_max_devices must be at least 1",
            ),
            (
                "EDGE_RADIUS_SLOW_QUEUE",
                "0",
                "radius.slow_queue must be at least 1",
            ),
            (
                "EDGE_DATABASE_REFRESH_INTERVAL_SECONDS",
                "0",
                "database.refresh_interval_seconds must be at least 1",
            ),
            (
                "EDGE_IPAM_DEAD_AFTER_SECONDS",
                "1",
                "ipam.dead_after_seconds",
            ),
        ] {
            let e = format!(
                "{:#}",
                Config::load(None, env(&[(key, value)])).unwrap_err()
            );
            assert!(e.contains(says), "{key}={value}: {e}");
        }
        assert!(Config::load(None, env(&[])).is_ok());
    }

    #[test]
    fn passwords_are_not_shown() {
        let mut d = Database {
            url: "postgres://edge:s3cret@db:5432/edge".into(),
            ..Database::default()
        };
        assert_eq!(d.redacted_url(), "postgres://edge:***@db:5432/edge");
        d.url = "sqlite://edge.db".into();
        assert_eq!(d.redacted_url(), "sqlite://edge.db");
    }

    #[test]
    fn defaults_and_env_overrides() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c.database.url, "sqlite://dotmac-edge.db");
        assert_eq!(c.radius.auth_listen.port(), 1812);
        let c = Config::load(
            None,
            env(&[
                ("EDGE_RADIUS_AUTH_LISTEN", "127.0.0.1:11812"),
                ("EDGE_RADIUS_RECEIVERS", "3"),
                ("EDGE_DATABASE_URL", "postgres://x@localhost/db"),
                ("EDGE_TENANT_ID", "isp-1"),
                ("HOME", "/root"),
            ]),
        )
        .unwrap();
        assert_eq!(c.radius.auth_listen.port(), 11812);
        assert_eq!(c.radius.receivers, 3);
        assert_eq!(c.tenant.id, "isp-1");
        assert!(c.database.url.starts_with("postgres://"));
    }

    #[test]
    fn strict() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "[radius]\nauth_lisen = \"0.0.0.0:1\"\n").unwrap();
        assert!(Config::load(Some(&p), env(&[])).is_err());
        assert!(Config::load(None, env(&[("EDGE_RADIUS_NOPE", "1")])).is_err());
        assert!(Config::load(None, env(&[("EDGE_DATABASE_URL", "mysql://x")])).is_err());
        std::fs::write(&p, "[log]\nformat = \"xml\"\n").unwrap();
        assert!(Config::load(Some(&p), env(&[])).is_err());
    }
}
