//! `serve`: startup phases (config, database and migrations, caches, listeners, ready), then
//! run until SIGTERM or SIGINT and drain.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use edge_accounting::spool::Spool;
use edge_accounting::{
    load_active, recover, spawn_reaper, spawn_sync, ReaperConfig, SyncConfig, Writer, WriterConfig,
};
use edge_ipam::{Ipam, IpamConfig, LeaseTracking};
use edge_radius::dict::Dictionary;
use edge_radius::server::{self, Accounting, ServerConfig};
use edge_shared::accounting::AccountingSink;
use edge_shared::health::{Health, Phase};
use edge_shared::index::{spawn_refresher, Index};
use edge_shared::sessions::ActiveSessions;
use edge_shared::store::{NewNas, NewPlan, Store};
use edge_shared::types::{SubscriberRecord, SubscriberStatus};
use tokio_util::sync::CancellationToken;

use crate::config::Config;

/// Which parts of the service this process runs (`serve --roles`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    /// RADIUS auth and accounting, the accounting writer and reaper, the IPAM.
    pub radius: bool,
    /// The TR-069 ACS on TCP 7547.
    pub acs: bool,
    /// The REST API under `/api/v1`.
    pub api: bool,
}

impl Roles {
    /// `radius,acs,api` in any order and combination.
    pub fn parse(s: &str) -> Result<Roles, String> {
        let mut r = Roles {
            radius: false,
            acs: false,
            api: false,
        };
        for part in s.split(',').map(str::trim) {
            match part {
                "radius" => r.radius = true,
                "acs" => r.acs = true,
                "api" => r.api = true,
                other => return Err(format!("unknown role `{other}` (radius, acs, api)")),
            }
        }
        Ok(r)
    }
}

pub async fn run(cfg: Config, demo: bool, roles: Roles) -> anyhow::Result<()> {
    init_logging(&cfg)?;
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    let health = Arc::new(Health::default());
    let cancel = CancellationToken::new();
    // A start that fails half way stops what it has started (receiver threads would
    // otherwise keep the process alive).
    let _stop_on_error = cancel.clone().drop_guard();

    // The probes first, so that a slow start shows where it is.
    let api_slot = Arc::new(crate::http::ApiSlot::default());
    let peer_metrics = Arc::new(edge_wireguard::PeerMetrics::default());
    let http = crate::http::start(
        crate::http::HttpConfig {
            listen: cfg.http.listen,
            metrics_require_token: cfg.api.metrics_require_token,
            roles,
            instance: cfg.ipam.instance_name(),
            peer_metrics: Arc::clone(&peer_metrics),
        },
        Arc::clone(&health),
        prometheus,
        Arc::clone(&api_slot),
        cancel.clone(),
    )
    .await
    .with_context(|| format!("cannot bind HTTP on {}", cfg.http.listen))?;
    tracing::info!(http = %http.local_addr, "probes up; starting");

    let dict = Arc::new(
        Dictionary::load_with(&cfg.radius.dictionary_dirs).context("loading dictionaries")?,
    );
    health.set_phase(Phase::Database);
    let store = wait_for_database(&cfg, &health).await?;
    health.set_backend(store.backend());
    health.set_database_ok(true);
    if demo {
        seed_demo(&store).await?;
    }

    health.set_phase(Phase::Caches);
    let index = Index::new();
    let started = std::time::Instant::now();
    index.refresh(&store).await.context("loading the index")?;
    metrics::gauge!(edge_shared::metric_names::INDEX_LOAD_SECONDS)
        .set(started.elapsed().as_secs_f64());
    tracing::info!(
        subscribers = index.subscriber_count(),
        nas = index.nas().all().len(),
        seconds = started.elapsed().as_secs_f64(),
        "index loaded"
    );

    let refresher = spawn_refresher(
        Arc::clone(&index),
        store.clone(),
        Arc::clone(&health),
        Duration::from_secs(cfg.database.refresh_interval_seconds),
        cancel.clone(),
    );
    let wg_cfg = if cfg.wireguard.enabled {
        Some(crate::ops::wireguard::WgConfig::from_config(
            &cfg.wireguard,
        )?)
    } else {
        None
    };
    // The interface belongs with the RADIUS role: NAS traffic arrives through it.
    let wireguard = match (&wg_cfg, roles.radius) {
        (Some(w), true) => Some(
            edge_wireguard::start(
                w.link.clone(),
                w.private_key()?,
                Arc::clone(&index),
                peer_metrics,
                cancel.clone(),
            )
            .await
            .context("cannot bring up the WireGuard interface")?,
        ),
        _ => None,
    };
    if let Some(w) = &wireguard {
        metrics::gauge!(edge_shared::metric_names::WG_RECONCILE_SECONDS).set(w.reconcile_seconds);
    }
    let plane = if roles.radius {
        Some(start_radius(&cfg, &store, &dict, &index, &health, &cancel).await?)
    } else {
        None
    };
    health.set_phase(Phase::Listeners);
    let acs = if roles.acs {
        let running =
            edge_acs::server::start(cfg.acs.server_config()?, store.clone(), cancel.clone())
                .await
                .with_context(|| format!("cannot bind the ACS on {}", cfg.acs.listen))?;
        Some(running)
    } else {
        None
    };
    if roles.api {
        // The API's own connections: its queries never take the data plane's.
        // Made on the listener's thread, where the API's requests use them.
        let (url, n) = (cfg.database.url.clone(), cfg.api.database_connections);
        let api_store = http
            .run_on(async move { Store::connect_with(&url, n).await })
            .await?
            .context("cannot open the API's database connections")?;
        api_slot.install(
            crate::api::ApiState::new(
                api_store,
                Arc::clone(&dict),
                cfg.api.clone(),
                cfg.acs.clone(),
            )?
            .with_wireguard(wg_cfg.clone(), crate::cmd::wireguard::ports(&cfg))
            .with_index(Arc::clone(&index)),
        );
    }
    health.set_phase(Phase::Ready);
    tracing::info!(
        radius_auth = ?plane.as_ref().map(|p| p.auth.local_addr),
        radius_acct = ?plane.as_ref().and_then(|p| p.auth.acct_addr),
        acs = ?acs.as_ref().map(|a| a.local_addr),
        wireguard = ?wireguard.as_ref().map(|w| (&w.interface, w.backend, w.peers)),
        http = %http.local_addr,
        roles = ?roles,
        database = store.backend(),
        tenant = %cfg.tenant.id,
        "dotmac-edge ready"
    );
    if let (true, Some(p)) = (demo, &plane) {
        println!(
            "demo ready: radtest demo demo {} 0 testing123",
            match p.auth.local_addr.port() {
                1812 => "127.0.0.1".to_string(),
                p => format!("127.0.0.1:{p}"),
            }
        );
    }

    wait_for_signal().await;
    tracing::info!("shutting down");
    health.set_phase(Phase::Draining);
    cancel.cancel();
    let drain = async {
        // Receivers first (no new records), then the reaper; the server's handler holds the
        // last writer handle, so once both are gone the writer commits what is queued and
        // ends.
        if let Some(p) = plane {
            p.auth.join().await;
            let _ = p.reaper.await;
            let _ = p.sync.await;
            let _ = p.ipam_task.await;
            let _ = p.writer_task.await;
        }
        if let Some(a) = acs {
            a.join().await;
        }
        if let Some(w) = wireguard {
            let _ = w.task.await;
        }
        let _ = refresher.await;
        http.join().await;
    };
    let deadline = Duration::from_secs(cfg.shutdown.drain_seconds);
    if tokio::time::timeout(deadline, drain).await.is_err() {
        tracing::warn!("drain deadline passed; exiting");
    }
    store.close().await;
    Ok(())
}

/// The data plane: RADIUS listeners, the accounting writer and reaper, the IPAM.
struct Plane {
    auth: server::RunningServer,
    reaper: tokio::task::JoinHandle<()>,
    sync: tokio::task::JoinHandle<()>,
    ipam_task: tokio::task::JoinHandle<()>,
    writer_task: tokio::task::JoinHandle<()>,
}

async fn start_radius(
    cfg: &Config,
    store: &Store,
    dict: &Arc<Dictionary>,
    index: &Arc<Index>,
    health: &Arc<Health>,
    cancel: &CancellationToken,
) -> anyhow::Result<Plane> {
    let sessions = Arc::new(ActiveSessions::default());
    // What a crash left in the journal goes into sessions before anything is answered.
    // (0: no writer of this process has written yet.)
    let recovered = recover(store, &sessions, i64::MAX, 0)
        .await
        .context("folding the accounting journal")?;
    if recovered > 0 {
        tracing::info!(records = recovered, "accounting journal folded");
    }
    let open = load_active(store, &sessions)
        .await
        .context("loading open sessions")?;
    tracing::info!(open_sessions = open, "accounting sessions loaded");
    let a = &cfg.accounting;
    let spool = if a.spool_dir.is_empty() {
        if store.pg_pool().is_some() {
            tracing::warn!("accounting.spool_dir is not set: while the database is away, accounting is not acknowledged");
        }
        None
    } else {
        let spool = Spool::open(std::path::Path::new(&a.spool_dir), a.spool_max_bytes)
            .with_context(|| format!("cannot open the accounting spool {}", a.spool_dir))?;
        // The writer's replayer publishes what it holds from its first round on.
        let (batches, bytes) = spool.pending();
        health.set_spool_enabled(true);
        if batches > 0 {
            tracing::info!(
                batches,
                bytes,
                "accounting spool holds batches; replaying when the database answers"
            );
        }
        Some(Arc::new(spool))
    };
    let (writer, writer_task) = Writer::spawn(
        store.clone(),
        Arc::clone(&sessions),
        Arc::clone(health),
        WriterConfig {
            max_batch: a.batch_max,
            max_wait: Duration::from_millis(a.batch_wait_ms),
            queue: a.queue,
            // SQLite has one writer at a time; more would only wait on its lock.
            concurrency: if store.pg_pool().is_some() {
                a.commit_concurrency
            } else {
                1
            },
            max_unfolded: a.max_unfolded,
            fold_max: a.fold_max,
            orphan_age: Duration::from_secs(a.orphan_seconds),
            spool,
            spool_after: Duration::from_millis(a.spool_after_ms.max(1)),
        },
    );
    let sync = spawn_sync(
        store.clone(),
        Arc::clone(&sessions),
        SyncConfig {
            every: Duration::from_secs(a.sync_seconds.max(1)),
            margin: Duration::from_secs(120),
            incarnation: writer.id(),
            dead_after: Duration::from_secs(cfg.ipam.dead_after_seconds),
        },
        cancel.clone(),
    );
    let ipam = Ipam::new(
        IpamConfig {
            instance: cfg.ipam.instance_name(),
            offer_seconds: cfg.ipam.offer_seconds,
            sticky_seconds: cfg.ipam.sticky_seconds,
            dead_after: Duration::from_secs(cfg.ipam.dead_after_seconds),
            heartbeat: Duration::from_secs(cfg.ipam.heartbeat_seconds),
            claim_ahead: cfg.ipam.claim_ahead,
            default_interim: a.default_interim_seconds as u32,
            stale_multiplier: a.stale_multiplier,
            stale_grace: a.stale_grace_seconds as u32,
        },
        writer.id(),
    );
    let upkeep = ipam.prepare(store, index).await;
    let ipam_task = tokio::spawn(Arc::clone(&ipam).run(
        upkeep,
        store.clone(),
        Arc::clone(index),
        cancel.clone(),
    ));
    // Accounting events (and the reaper's closes) pass the IPAM on their way to the
    // writer, so that leases follow sessions in the same journal row.
    let sink: Arc<dyn AccountingSink> = Arc::new(LeaseTracking {
        inner: Arc::new(writer),
        ipam: Arc::clone(&ipam),
        active: Arc::clone(&sessions),
    });
    let reaper = spawn_reaper(
        Arc::clone(&sessions),
        Arc::clone(&sink),
        ReaperConfig {
            every: Duration::from_secs(a.reaper_interval_seconds),
            default_interval: Duration::from_secs(a.default_interim_seconds),
            multiplier: a.stale_multiplier,
            grace: Duration::from_secs(a.stale_grace_seconds),
        },
        cancel.clone(),
    );
    let auth_cfg = ServerConfig {
        listen: cfg.radius.auth_listen,
        acct_listen: Some(cfg.radius.acct_listen),
        receivers: cfg.radius.receivers,
        slow_queue: cfg.radius.slow_queue,
        reply_cache_ttl: Duration::from_secs(cfg.radius.reply_cache_ttl_seconds),
        reply_cache_entries: cfg.radius.reply_cache_entries,
        socket_buffer_bytes: cfg.radius.socket_buffer_bytes,
    };
    health.set_phase(Phase::Listeners);
    let auth = server::start(
        &auth_cfg,
        Arc::clone(dict),
        Arc::clone(index),
        Some(Accounting {
            sink,
            sessions: Arc::clone(&sessions),
            addresses: Some(ipam),
        }),
        cancel.clone(),
    )
    .await
    .with_context(|| {
        format!(
            "cannot bind RADIUS on {} and {}",
            cfg.radius.auth_listen, cfg.radius.acct_listen
        )
    })?;
    Ok(Plane {
        auth,
        reaper,
        sync,
        ipam_task,
        writer_task,
    })
}

/// Opens the database, retrying while it does not answer (it may be starting beside us),
/// for `database.startup_wait_seconds`; then gives up with the last error.
async fn wait_for_database(cfg: &Config, health: &Health) -> anyhow::Result<Store> {
    let deadline =
        std::time::Instant::now() + Duration::from_secs(cfg.database.startup_wait_seconds);
    loop {
        match Store::connect(&cfg.database.url).await {
            Ok(store) => {
                store.migrate().await.context("database migrations")?;
                return Ok(store);
            }
            // A SQLite file that cannot be opened will not become openable by waiting.
            Err(e)
                if cfg.database.url.starts_with("postgres")
                    && std::time::Instant::now() < deadline =>
            {
                health.set_database_ok(false);
                tracing::warn!(database = %cfg.database.redacted_url(), error = %e, "database not reachable yet; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "database {} not reachable within {} s",
                        cfg.database.redacted_url(),
                        cfg.database.startup_wait_seconds
                    )
                })
            }
        }
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn init_logging(cfg: &Config) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&cfg.log.level)
        .with_context(|| format!("log.level `{}`", cfg.log.level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if cfg.log.format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
    Ok(())
}

/// Seeds the demo NAS, plan and subscriber into an empty database (nothing if any exist).
async fn seed_demo(store: &Store) -> anyhow::Result<()> {
    if !store.nas_list().await?.is_empty() || store.subscriber_count().await? > 0 {
        tracing::info!("database not empty; demo data not seeded");
        return Ok(());
    }
    store
        .nas_add(&NewNas {
            name: "localhost".into(),
            address: "127.0.0.1".into(),
            secret: "testing123".into(),
            vendor: "generic".into(),
            coa_port: 3799,
            // radtest (freeradius-utils 3.2) sends Message-Authenticator.
            require_message_authenticator: true,
            rate_limit_per_second: 0,
            tunnel: None,
        })
        .await?;
    store
        .plan_add(&NewPlan {
            name: "demo".into(),
            reply_attributes: vec![
                "Mikrotik-Rate-Limit = \"20M/20M\"".into(),
                "Framed-Pool = \"demo\"".into(),
            ],
            session_timeout_seconds: Some(86400),
            interim_interval_seconds: Some(300),
            simultaneous_use: None,
            pool: None,
            ipv6_pool: None,
            delegated_pool: None,
        })
        .await?;
    store
        .subscribers_upsert(&[(
            0,
            SubscriberRecord {
                username: "demo".into(),
                password: "demo".into(),
                plan: Some("demo".into()),
                status: SubscriberStatus::Active,
                static_ipv4: None,
                calling_station_id: None,
            },
        )])
        .await?;
    tracing::info!("demo data seeded: NAS 127.0.0.1 (testing123), plan demo, subscriber demo/demo");
    Ok(())
}
