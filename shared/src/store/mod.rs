//! The tenant database: PostgreSQL in production, SQLite as the embedded default.
//!
//! One query text serves both backends: `$N` placeholders are positional on PostgreSQL and,
//! numbered in order of first use, bind the same way on SQLite. `on_pool!` expands a body once
//! per backend so each gets its own statically typed sqlx code.

mod acs;
mod acs_batch;
mod api;
pub mod connection_loss;
mod fold;
mod ipam;
mod leases;
mod parked;
mod rows;
mod sessions;
mod subscribers;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use thiserror::Error;

use crate::types::{Nas, NasTunnel, Plan, PoolId};
use parked::Parked;

pub use acs::{
    ConnectionRequestTarget, DeviceQuery, DeviceRow, DeviceState, FileRow, ParameterView, TaskRow,
};
pub use acs_batch::{AcsBatch, DeviceSeen, ParameterRow, TaskUpdate};
pub use api::{ApiToken, AuditEntry};
pub use fold::{BatchOp, BatchOutcome, JournalKey};
pub use ipam::{BlockUse, NewPool, PoolUse};
pub use leases::{LeaseQuery, LeaseRow, LeaseStateFilter};
pub use sessions::{DayUsage, SessionQuery, SessionsJson};
pub use subscribers::{ImportError, SubscriberChanges, SubscriberRow};

/// Channel on which PostgreSQL announces committed changes.
pub const CHANGE_CHANNEL: &str = "edge_changes";

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database URL must start with postgres:// or sqlite://")]
    UnsupportedUrl,
    #[error("{0} `{1}` already exists")]
    Exists(&'static str, String),
    #[error("{0} `{1}` not found")]
    NotFound(&'static str, String),
    #[error("{0} `{1}` is still in use")]
    InUse(&'static str, String),
    /// A write refused because it would clash with what is stored (the message says how).
    #[error("{0}")]
    Conflict(String),
    #[error("database: {0}")]
    Sql(#[source] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for StoreError {
    /// Every database error comes through here on its way up; a lost connection is noted
    /// (`connection_loss.rs`).
    fn from(e: sqlx::Error) -> StoreError {
        connection_loss::note(&e);
        StoreError::Sql(e)
    }
}

#[derive(Debug, Clone)]
pub enum Store {
    /// The pool, and its connections parked between hot reads (`parked.rs`).
    Postgres(PgPool, Parked),
    Sqlite(SqlitePool),
}

/// A pooled connection idle longer than this may have missed a database restart, and is
/// tested before use; so is one last used before a lost connection was seen.
const IDLE_CHECK: Duration = Duration::from_secs(1);

macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            $crate::store::Store::Postgres($pool, _) => $body,
            $crate::store::Store::Sqlite($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Announces a change to listening servers inside a transaction; PostgreSQL delivers it at
/// commit. Expanded inside `on_pool!` bodies, so it compiles for both backends.
macro_rules! notify {
    ($store:expr, $tx:expr, $what:expr) => {
        if matches!($store, $crate::store::Store::Postgres(..)) {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind($crate::store::CHANGE_CHANNEL)
                .bind($what)
                .execute(&mut *$tx)
                .await?;
        }
    };
}
pub(crate) use notify;

/// A NAS to register.
#[derive(Debug, Clone)]
pub struct NewNas {
    pub name: String,
    pub address: String,
    pub secret: String,
    pub vendor: String,
    pub coa_port: u16,
    pub require_message_authenticator: bool,
    pub rate_limit_per_second: u32,
    /// Its WireGuard peer; `address` is then the tunnel address.
    pub tunnel: Option<NasTunnel>,
}

/// What [`StoreError::Exists`] names when another registration took a tunnel address first.
pub const TUNNEL_ADDRESS: &str = "tunnel address";

/// A unique violation on a NAS insert names what collided: the name, the tunnel address
/// (another registration took it first: the caller picks again) or the public key.
fn nas_conflict(e: sqlx::Error, n: &NewNas) -> StoreError {
    let constraint = e
        .as_database_error()
        .and_then(|d| d.constraint().map(str::to_owned))
        .unwrap_or_default();
    let message = e
        .as_database_error()
        .map(|d| d.message().to_owned())
        .unwrap_or_default();
    let on = |column: &str| constraint == column || message.contains(&format!("nas.{column}"));
    match &n.tunnel {
        Some(t) if on("wg_address") || constraint == "nas_wg_address" => {
            StoreError::Exists(TUNNEL_ADDRESS, t.address.to_string())
        }
        Some(t) if on("wg_public_key") || constraint == "nas_wg_public_key" => {
            StoreError::Exists("WireGuard public key", t.public_key.clone())
        }
        _ => unique_violation(e, "NAS", &n.name),
    }
}

/// A plan to create.
#[derive(Debug, Clone)]
pub struct NewPlan {
    pub name: String,
    pub reply_attributes: Vec<String>,
    pub session_timeout_seconds: Option<u32>,
    pub interim_interval_seconds: Option<u32>,
    pub simultaneous_use: Option<u32>,
    pub pool: Option<PoolId>,
    pub ipv6_pool: Option<PoolId>,
    pub delegated_pool: Option<PoolId>,
}

impl Store {
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        let sqlite = url.starts_with("sqlite:");
        Store::connect_with(url, if sqlite { 4 } else { 16 }).await
    }

    /// A store with its own pool of at most `connections` (the REST API's, apart from the
    /// data plane's).
    pub async fn connect_with(url: &str, connections: u32) -> Result<Store, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(connections)
                .acquire_timeout(Duration::from_secs(10))
                // sqlx checks a connection with a round trip when it goes back to the pool;
                // checking again when it is taken is a second round trip for every statement
                // (every API request, every journal append). Only a connection idle long
                // enough to have missed a database restart is checked before use, and so is
                // one last used before this process saw a connection lost (a restart closes
                // them all); one that fails the check is closed and the next one tried.
                .test_before_acquire(false)
                .before_acquire(|conn, meta| {
                    Box::pin(async move {
                        if meta.idle_for > IDLE_CHECK
                            || connection_loss::predates_loss(meta.idle_for)
                        {
                            return Ok(sqlx::Connection::ping(conn).await.is_ok());
                        }
                        Ok(true)
                    })
                })
                .connect(url)
                .await?;
            let parked = Parked::new(connections);
            parked.reap_idle();
            Ok(Store::Postgres(pool, parked))
        } else if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // FULL: a commit is on disk before the answer that depends on it goes out.
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            let pool = SqlitePoolOptions::new()
                .max_connections(connections)
                .connect_with(opts)
                .await?;
            Ok(Store::Sqlite(pool))
        } else {
            Err(StoreError::UnsupportedUrl)
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Store::Postgres(..) => "postgres",
            Store::Sqlite(_) => "sqlite",
        }
    }

    pub fn pg_pool(&self) -> Option<&PgPool> {
        match self {
            Store::Postgres(p, _) => Some(p),
            Store::Sqlite(_) => None,
        }
    }

    /// Applies the embedded migrations of this backend.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self {
            Store::Postgres(p, _) => sqlx::migrate!("./migrations/postgres").run(p).await?,
            Store::Sqlite(p) => sqlx::migrate!("./migrations/sqlite").run(p).await?,
        }
        Ok(())
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self, p => sqlx::query("SELECT 1").execute(p).await.map(|_| ())?);
        Ok(())
    }

    pub async fn close(&self) {
        if let Store::Postgres(_, parked) = self {
            parked.release_all();
        }
        on_pool!(self, p => p.close().await)
    }

    /// The latest committed revision.
    pub async fn revision(&self) -> Result<i64, StoreError> {
        let rev: i64 = on_pool!(self, p => sqlx::query_scalar("SELECT rev FROM edge_revision WHERE id = 1")
            .fetch_one(p)
            .await?);
        Ok(rev)
    }

    pub async fn nas_add(&self, n: &NewNas) -> Result<Nas, StoreError> {
        let row: Result<Result<rows::NasRow, sqlx::Error>, sqlx::Error> = on_pool!(self, p => async {
            let mut tx = p.begin().await?;
            let rev: i64 = sqlx::query_scalar(rows::BUMP_REVISION).fetch_one(&mut *tx).await?;
            let t = n.tunnel.as_ref();
            let row = sqlx::query_as(&format!(
                "INSERT INTO nas (name, address, secret, vendor, coa_port,
                    require_message_authenticator, rate_limit_per_second, rev, wg_public_key,
                    wg_address, wg_pool_id, wg_keepalive_seconds)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                 RETURNING {}", rows::NAS_COLUMNS
            ))
            .bind(&n.name)
            .bind(&n.address)
            .bind(&n.secret)
            .bind(&n.vendor)
            .bind(i32::from(n.coa_port))
            .bind(n.require_message_authenticator)
            .bind(n.rate_limit_per_second as i32)
            .bind(rev)
            .bind(t.map(|t| t.public_key.clone()))
            .bind(t.map(|t| t.address.to_string()))
            .bind(t.map(|t| t.pool.0))
            .bind(t.map(|t| i32::from(t.keepalive_seconds)))
            .fetch_one(&mut *tx)
            .await;
            if row.is_ok() {
                notify!(self, tx, "nas");
                tx.commit().await?;
            }
            Ok::<_, sqlx::Error>(row)
        }.await);
        row?.map(Into::into).map_err(|e| nas_conflict(e, n))
    }

    pub async fn nas_list(&self) -> Result<Vec<Nas>, StoreError> {
        let sql = format!("SELECT {} FROM nas ORDER BY name", rows::NAS_COLUMNS);
        let rows: Vec<rows::NasRow> = on_pool!(self, p => sqlx::query_as(&sql)
        .fetch_all(p)
        .await?);
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Tunnel addresses of NAS in a pool (the management pool's used addresses).
    pub async fn nas_tunnel_addresses(&self, pool: PoolId) -> Result<Vec<String>, StoreError> {
        let rows: Vec<String> = on_pool!(self, p => sqlx::query_scalar(
            "SELECT wg_address FROM nas WHERE wg_pool_id = $1 AND wg_address IS NOT NULL",
        )
        .bind(pool.0)
        .fetch_all(p)
        .await?);
        Ok(rows)
    }

    pub async fn nas_remove(&self, name: &str) -> Result<(), StoreError> {
        self.remove_named("nas", "NAS", name, &[]).await
    }

    pub async fn plan_add(&self, n: &NewPlan) -> Result<Plan, StoreError> {
        let lines = n.reply_attributes.join("\n");
        let row: Result<Result<rows::PlanRow, sqlx::Error>, sqlx::Error> = on_pool!(self, p => async {
            let mut tx = p.begin().await?;
            let rev: i64 = sqlx::query_scalar(rows::BUMP_REVISION).fetch_one(&mut *tx).await?;
            let row = sqlx::query_as(
                "INSERT INTO plans (name, reply_attributes, session_timeout_seconds,
                    interim_interval_seconds, simultaneous_use, pool_id, ipv6_pool_id,
                    delegated_pool_id, rev)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 RETURNING id, name, reply_attributes, session_timeout_seconds,
                    interim_interval_seconds, simultaneous_use, pool_id, ipv6_pool_id,
                    delegated_pool_id",
            )
            .bind(&n.name)
            .bind(&lines)
            .bind(n.session_timeout_seconds.map(|v| v as i32))
            .bind(n.interim_interval_seconds.map(|v| v as i32))
            .bind(n.simultaneous_use.map(|v| v as i32))
            .bind(n.pool.map(|p| p.0))
            .bind(n.ipv6_pool.map(|p| p.0))
            .bind(n.delegated_pool.map(|p| p.0))
            .bind(rev)
            .fetch_one(&mut *tx)
            .await;
            if row.is_ok() {
                notify!(self, tx, "plans");
                tx.commit().await?;
            }
            Ok::<_, sqlx::Error>(row)
        }.await);
        row?.map(Into::into)
            .map_err(|e| unique_violation(e, "plan", &n.name))
    }

    pub async fn plan_list(&self) -> Result<Vec<Plan>, StoreError> {
        let rows: Vec<rows::PlanRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT id, name, reply_attributes, session_timeout_seconds, interim_interval_seconds,
                simultaneous_use, pool_id, ipv6_pool_id, delegated_pool_id
             FROM plans ORDER BY name",
        )
        .fetch_all(p)
        .await?);
        Ok(rows.into_iter().map(Into::into).collect())
    }

    pub async fn plan_remove(&self, name: &str) -> Result<(), StoreError> {
        self.remove_named("plans", "plan", name, &[]).await
    }

    /// Deletes the row named `name` (after the statements of `first`, each binding the name
    /// as `$1`, in the same transaction), records the deletion for running servers, and
    /// refuses while another row refers to it.
    pub(super) async fn remove_named(
        &self,
        table: &'static str,
        what: &'static str,
        name: &str,
        first: &[&str],
    ) -> Result<(), StoreError> {
        let sql = format!("DELETE FROM {table} WHERE name = $1");
        let done: Result<u64, sqlx::Error> = on_pool!(self, p => async {
            let mut tx = p.begin().await?;
            let rev: i64 = sqlx::query_scalar(rows::BUMP_REVISION).fetch_one(&mut *tx).await?;
            for q in first {
                sqlx::query(q).bind(name).execute(&mut *tx).await?;
            }
            let r = sqlx::query(&sql).bind(name).execute(&mut *tx).await;
            match r {
                Ok(r) if r.rows_affected() > 0 => {
                    sqlx::query("INSERT INTO deletions (rev, kind, key) VALUES ($1, $2, $3)")
                        .bind(rev)
                        .bind(table)
                        .bind(name)
                        .execute(&mut *tx)
                        .await?;
                    notify!(self, tx, table);
                    tx.commit().await?;
                    Ok(r.rows_affected())
                }
                Ok(_) => Ok(0),
                Err(e) => Err(e),
            }
        }.await);
        match done {
            Ok(0) => Err(StoreError::NotFound(what, name.to_string())),
            Ok(_) => Ok(()),
            // SQLite reports a deferred check at commit as code 1811, not as its
            // foreign-key code, so the message is the common ground.
            Err(sqlx::Error::Database(e))
                if e.is_foreign_key_violation()
                    || e.message().contains("FOREIGN KEY constraint failed") =>
            {
                Err(StoreError::InUse(what, name.to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// Ok when a statement changed a row; NotFound (`what` `key`) when it changed none.
fn changed(rows: u64, what: &'static str, key: &dyn std::fmt::Display) -> Result<(), StoreError> {
    if rows == 0 {
        return Err(StoreError::NotFound(what, key.to_string()));
    }
    Ok(())
}

/// A keyset cursor's clause: rows strictly after (`$n+1`, `$n+2`) in (`first`, `second`)
/// order, `op` being `>` for ascending and `<` for descending; takes the next two placeholders.
pub(crate) fn keyset_after(n: &mut usize, first: &str, second: &str, op: &str) -> String {
    *n += 2;
    format!(
        " AND ({first} {op} ${a} OR ({first} = ${a} AND {second} {op} ${b}))",
        a = *n - 1,
        b = *n
    )
}

fn unique_violation(e: sqlx::Error, what: &'static str, name: &str) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            StoreError::Exists(what, name.to_string())
        }
        _ => e.into(),
    }
}

/// Non-empty trimmed lines.
pub(crate) fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}
