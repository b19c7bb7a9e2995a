//! Address pools, block claims, instance names and leases in the database.
//!
//! Leases reach `ip_leases` only through the accounting journal's fold (see
//! `sessions_fold`), so that a lease is durable in the same group commit as its neighbours;
//! everything here is the slower path: operators' commands, claims, start-up loading.

use std::net::Ipv4Addr;

use serde::Serialize;

use super::{
    changed, keyset_after, lines, notify, on_pool, rows, unique_violation, Store, StoreError,
};
use crate::leases::{LeaseChange, LeaseState};
use crate::types::{Pool, PoolId};

/// A pool to create; `blocks` is how many blocks its slots make (the caller parsed it).
#[derive(Debug, Clone)]
pub struct NewPool {
    pub name: String,
    pub family: u8,
    pub ranges: Vec<String>,
    pub excludes: Vec<String>,
    pub prefix_len: u8,
    pub block_size: u32,
    pub reply_attributes: Vec<String>,
    pub next_pool: Option<String>,
    pub blocks: u32,
    /// `subscribers` or `nas-tunnels`.
    pub purpose: String,
}

/// A lease as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct LeaseRow {
    pub pool_id: i64,
    pub slot: i64,
    pub address: String,
    pub username: String,
    pub state: String,
    pub acct_unique_id: Option<String>,
    pub expires_at: i64,
    pub updated_us: i64,
    pub instance: String,
}

/// A change as the fold would store it.
impl From<LeaseChange> for LeaseRow {
    fn from(c: LeaseChange) -> LeaseRow {
        LeaseRow {
            pool_id: c.pool.0,
            slot: c.slot,
            address: c.address,
            username: c.username,
            state: c.state.as_str().to_string(),
            acct_unique_id: c.unique_id,
            expires_at: c.expires_at,
            updated_us: c.at_us,
            instance: c.instance,
        }
    }
}

/// Which leases a listing shows by state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseStateFilter {
    /// In this stored state and not expired.
    Live(LeaseState),
    /// Past its expiry, whatever its stored state: the address is free.
    Expired,
}

impl LeaseStateFilter {
    /// A lease state's name, or `expired`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "expired" => Some(Self::Expired),
            _ => LeaseState::parse(s).map(Self::Live),
        }
    }
}

/// Filters of a lease listing (any that is given); rows come in pool and slot order.
#[derive(Debug, Clone, Default)]
pub struct LeaseQuery<'a> {
    pub pool: Option<PoolId>,
    pub address: Option<&'a str>,
    pub username: Option<&'a str>,
    /// The accounting session's unique id.
    pub unique_id: Option<&'a str>,
    pub state: Option<LeaseStateFilter>,
    /// The time the state filter compares expiries with.
    pub now: i64,
    /// Keyset cursor: leases strictly after this (pool id, slot).
    pub after: Option<(i64, i64)>,
    pub limit: i64,
}

/// One block of a pool: who owns it and how many of its slots are in use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlockUse {
    pub block: i64,
    pub owner: Option<String>,
    pub used: i64,
}

/// Leases of a pool in use at a moment (offered or bound and not expired), by block, and
/// released ones still kept for their subscriber.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PoolUse {
    pub offered: i64,
    pub bound: i64,
    pub sticky: i64,
    pub blocks: Vec<BlockUse>,
}

#[derive(sqlx::FromRow)]
struct PoolRow {
    id: i64,
    name: String,
    family: i16,
    ranges: String,
    excludes: String,
    prefix_len: i16,
    block_size: i32,
    reply_attributes: String,
    next_pool: Option<String>,
    purpose: String,
}

impl From<PoolRow> for Pool {
    fn from(r: PoolRow) -> Pool {
        Pool {
            id: PoolId(r.id),
            name: r.name,
            family: r.family as u8,
            ranges: lines(&r.ranges),
            excludes: lines(&r.excludes),
            prefix_len: r.prefix_len as u8,
            block_size: r.block_size.max(1) as u32,
            reply_attributes: lines(&r.reply_attributes),
            next_pool: r.next_pool,
            purpose: r.purpose,
        }
    }
}

const POOL_COLUMNS: &str =
    "id, name, family, ranges, excludes, prefix_len, block_size, reply_attributes, next_pool, \
     purpose";
const LEASE_COLUMNS: &str = "pool_id, slot, address, username, state, acct_unique_id, \
     expires_at, updated_us, instance";

/// Folds lease changes into `ip_leases`; the lease step of a journal fold. `leases` come in
/// (pool, slot) order, the order of row locks in every fold (`Step::of` in fold.rs sorts
/// them).
pub(super) trait UpsertLeases {
    async fn upsert_leases(&mut self, leases: &[&LeaseChange]) -> Result<(), sqlx::Error>;
}

const LEASE_CONFLICT: &str = "ON CONFLICT (pool_id, slot) DO UPDATE SET
    address = excluded.address, username = excluded.username, state = excluded.state,
    acct_unique_id = excluded.acct_unique_id, expires_at = excluded.expires_at,
    updated_us = excluded.updated_us, instance = excluded.instance
    WHERE ip_leases.updated_us <= excluded.updated_us";

impl UpsertLeases for sqlx::PgConnection {
    async fn upsert_leases(&mut self, sorted: &[&LeaseChange]) -> Result<(), sqlx::Error> {
        let sql = format!(
            "INSERT INTO ip_leases ({LEASE_COLUMNS})
             SELECT u.* FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[],
                $5::text[], $6::text[], $7::bigint[], $8::bigint[], $9::text[])
                AS u({LEASE_COLUMNS})
             WHERE EXISTS (SELECT 1 FROM ip_pools p WHERE p.id = u.pool_id)
             {LEASE_CONFLICT}"
        );
        // Used by both statements.
        let pools: Vec<i64> = sorted.iter().map(|l| l.pool.0).collect();
        let slots: Vec<i64> = sorted.iter().map(|l| l.slot).collect();
        let instances: Vec<&str> = sorted.iter().map(|l| l.instance.as_str()).collect();
        sqlx::query(&sql)
            .bind(&pools)
            .bind(&slots)
            .bind(
                sorted
                    .iter()
                    .map(|l| l.address.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                sorted
                    .iter()
                    .map(|l| l.username.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(sorted.iter().map(|l| l.state.as_str()).collect::<Vec<_>>())
            .bind(
                sorted
                    .iter()
                    .map(|l| l.unique_id.as_deref())
                    .collect::<Vec<_>>(),
            )
            .bind(sorted.iter().map(|l| l.expires_at).collect::<Vec<_>>())
            .bind(sorted.iter().map(|l| l.at_us).collect::<Vec<_>>())
            .bind(&instances)
            .execute(&mut *self)
            .await?;
        // Notices for the owners of the blocks these changes fell in, where the writer is
        // somebody else. `ip_blocks` is small and hot; the join costs far less than the
        // owners' scans it replaces. A notice already there is locked (not skipped): an
        // owner taking it waits for this commit, so its read sees this change.
        sqlx::query(
            "INSERT INTO ip_lease_notices (owner, pool_id, slot)
             SELECT DISTINCT b.owner, u.pool_id, u.slot
             FROM UNNEST($1::bigint[], $2::bigint[], $3::text[]) AS u(pool_id, slot, instance)
             JOIN ip_pools p ON p.id = u.pool_id
             -- One key lookup per change, whatever the statistics say: planned as a join,
             -- a table not yet analyzed (a new pool's blocks) made it a scan of the pool's
             -- blocks per change. `OFFSET 0` keeps the planner from flattening it.
             CROSS JOIN LATERAL (
                 SELECT b.owner FROM ip_blocks b
                  WHERE b.pool_id = u.pool_id AND b.block_no = u.slot / p.block_size OFFSET 0
             ) b
             WHERE b.owner <> u.instance
             ON CONFLICT (owner, pool_id, slot) DO UPDATE SET slot = excluded.slot",
        )
        .bind(&pools)
        .bind(&slots)
        .bind(&instances)
        .execute(&mut *self)
        .await?;
        Ok(())
    }
}

/// The notice for the owner of one changed slot's block, when somebody else changed it.
const NOTICE_ONE: &str = "INSERT INTO ip_lease_notices (owner, pool_id, slot)
     SELECT b.owner, $1, $2 FROM ip_pools p
     JOIN ip_blocks b ON b.pool_id = p.id AND b.block_no = $2 / p.block_size
     WHERE p.id = $1 AND b.owner <> $3
     ON CONFLICT DO NOTHING";

impl UpsertLeases for sqlx::SqliteConnection {
    async fn upsert_leases(&mut self, leases: &[&LeaseChange]) -> Result<(), sqlx::Error> {
        let sql = format!(
            "INSERT INTO ip_leases ({LEASE_COLUMNS})
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9
             WHERE EXISTS (SELECT 1 FROM ip_pools p WHERE p.id = $1)
             {LEASE_CONFLICT}"
        );
        for l in leases {
            sqlx::query(&sql)
                .bind(l.pool.0)
                .bind(l.slot)
                .bind(&l.address)
                .bind(&l.username)
                .bind(l.state.as_str())
                .bind(l.unique_id.as_deref())
                .bind(l.expires_at)
                .bind(l.at_us)
                .bind(&l.instance)
                .execute(&mut *self)
                .await?;
            sqlx::query(NOTICE_ONE)
                .bind(l.pool.0)
                .bind(l.slot)
                .bind(&l.instance)
                .execute(&mut *self)
                .await?;
        }
        Ok(())
    }
}

impl Store {
    /// Creates a pool and its (unowned) blocks.
    pub async fn pool_add(&self, n: &NewPool) -> Result<Pool, StoreError> {
        let blocks_sql = match self {
            Store::Postgres(..) => {
                "INSERT INTO ip_blocks (pool_id, block_no)
                 SELECT $2, g FROM generate_series(0, $1 - 1) AS g"
            }
            Store::Sqlite(_) => {
                "WITH RECURSIVE g(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM g WHERE n + 1 < $1)
                 INSERT INTO ip_blocks (pool_id, block_no) SELECT $2, n FROM g"
            }
        };
        let row: Result<Result<PoolRow, sqlx::Error>, sqlx::Error> = on_pool!(self, p => async {
            let mut tx = p.begin().await?;
            let rev: i64 = sqlx::query_scalar(rows::BUMP_REVISION).fetch_one(&mut *tx).await?;
            let row: Result<PoolRow, _> = sqlx::query_as(&format!(
                "INSERT INTO ip_pools (name, family, ranges, excludes, prefix_len, block_size,
                    reply_attributes, next_pool, rev, purpose)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 RETURNING {POOL_COLUMNS}"
            ))
            .bind(&n.name)
            .bind(i16::from(n.family))
            .bind(n.ranges.join("\n"))
            .bind(n.excludes.join("\n"))
            .bind(i16::from(n.prefix_len))
            .bind(n.block_size as i32)
            .bind(n.reply_attributes.join("\n"))
            .bind(n.next_pool.as_deref())
            .bind(rev)
            .bind(&n.purpose)
            .fetch_one(&mut *tx)
            .await;
            if let Ok(r) = &row {
                sqlx::query(blocks_sql)
                    .bind(i64::from(n.blocks.max(1)))
                    .bind(r.id)
                    .execute(&mut *tx)
                    .await?;
                notify!(self, tx, "pools");
                tx.commit().await?;
            }
            Ok::<_, sqlx::Error>(row)
        }.await);
        row?.map(Into::into)
            .map_err(|e| unique_violation(e, "pool", &n.name))
    }

    /// Writes one lease change outside the data plane (an operator's release); the newest
    /// change of a slot wins, as in the fold. The owning instance picks it up in its sync.
    pub async fn lease_write(&self, change: &LeaseChange) -> Result<(), StoreError> {
        on_pool!(self, p => {
            let mut conn = p.acquire().await?;
            conn.upsert_leases(&[change]).await?;
        });
        Ok(())
    }

    pub async fn pool_list(&self) -> Result<Vec<Pool>, StoreError> {
        let sql = format!("SELECT {POOL_COLUMNS} FROM ip_pools ORDER BY name");
        let rows: Vec<PoolRow> = on_pool!(self, p => sqlx::query_as(&sql).fetch_all(p).await?);
        Ok(rows.into_iter().map(Into::into).collect())
    }

    pub async fn pool_get(&self, name: &str) -> Result<Pool, StoreError> {
        let sql = format!("SELECT {POOL_COLUMNS} FROM ip_pools WHERE name = $1");
        let row: Option<PoolRow> =
            on_pool!(self, p => sqlx::query_as(&sql).bind(name).fetch_optional(p).await?);
        row.map(Into::into)
            .ok_or_else(|| StoreError::NotFound("pool", name.to_string()))
    }

    /// Removes a pool, its blocks and its leases; refused while a plan names it.
    pub async fn pool_remove(&self, name: &str) -> Result<(), StoreError> {
        let leases =
            "DELETE FROM ip_leases WHERE pool_id IN (SELECT id FROM ip_pools WHERE name = $1)";
        self.remove_named("ip_pools", "pool", name, &[leases]).await
    }

    /// Replaces a pool's excluded (reserved) addresses; running servers pick it up with the
    /// next revision.
    pub async fn pool_set_excludes(
        &self,
        name: &str,
        excludes: &[String],
    ) -> Result<(), StoreError> {
        let n: u64 = on_pool!(self, p => async {
            let mut tx = p.begin().await?;
            let rev: i64 = sqlx::query_scalar(rows::BUMP_REVISION).fetch_one(&mut *tx).await?;
            let r = sqlx::query("UPDATE ip_pools SET excludes = $1, rev = $2 WHERE name = $3")
                .bind(excludes.join("\n"))
                .bind(rev)
                .bind(name)
                .execute(&mut *tx)
                .await?;
            if r.rows_affected() > 0 {
                notify!(self, tx, "pools");
                tx.commit().await?;
            }
            Ok::<_, sqlx::Error>(r.rows_affected())
        }.await?);
        changed(n, "pool", &name)
    }

    /// Takes the instance name for this incarnation when nobody holds it: never taken, let
    /// go, silent since before `dead_before`, or already ours.
    pub async fn instance_acquire(
        &self,
        name: &str,
        incarnation: i64,
        now: i64,
        dead_before: i64,
    ) -> Result<bool, StoreError> {
        let sql = "INSERT INTO ip_instances (name, incarnation, heartbeat) VALUES ($1, $2, $3)
            ON CONFLICT (name) DO UPDATE SET incarnation = excluded.incarnation,
                heartbeat = excluded.heartbeat
            WHERE ip_instances.heartbeat < $4 OR ip_instances.incarnation = excluded.incarnation
            RETURNING name";
        let got: Option<String> = on_pool!(self, p => sqlx::query_scalar(sql)
            .bind(name)
            .bind(incarnation)
            .bind(now)
            .bind(dead_before)
            .fetch_optional(p)
            .await?);
        Ok(got.is_some())
    }

    /// Renews the name; false when another incarnation has taken it.
    pub async fn instance_heartbeat(
        &self,
        name: &str,
        incarnation: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let sql = "UPDATE ip_instances SET heartbeat = $1 WHERE name = $2 AND incarnation = $3";
        let n = on_pool!(self, p => sqlx::query(sql)
            .bind(now)
            .bind(name)
            .bind(incarnation)
            .execute(p)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    /// Other instances (not `incarnation`) that have beaten since `alive_since`.
    pub async fn instances_others(
        &self,
        incarnation: i64,
        alive_since: i64,
    ) -> Result<i64, StoreError> {
        let sql = "SELECT COUNT(*) FROM ip_instances WHERE incarnation <> $1 AND heartbeat >= $2";
        let n: i64 = on_pool!(self, p => sqlx::query_scalar(sql)
            .bind(incarnation)
            .bind(alive_since)
            .fetch_one(p)
            .await?);
        Ok(n)
    }

    /// Lets the name go at a clean shutdown, so a successor need not wait.
    pub async fn instance_release(&self, name: &str, incarnation: i64) -> Result<(), StoreError> {
        let sql = "UPDATE ip_instances SET heartbeat = 0 WHERE name = $1 AND incarnation = $2";
        on_pool!(self, p => sqlx::query(sql).bind(name).bind(incarnation).execute(p).await.map(|_| ())?);
        Ok(())
    }

    /// The blocks an instance owns.
    pub async fn blocks_owned(&self, owner: &str) -> Result<Vec<(PoolId, u32)>, StoreError> {
        let sql = "SELECT pool_id, block_no FROM ip_blocks WHERE owner = $1 ORDER BY 1, 2";
        let rows: Vec<(i64, i32)> =
            on_pool!(self, p => sqlx::query_as(sql).bind(owner).fetch_all(p).await?);
        Ok(rows
            .into_iter()
            .map(|(p, b)| (PoolId(p), b as u32))
            .collect())
    }

    /// Claims up to `n` blocks of a pool for `owner`: unowned ones first, then those of
    /// instances silent since before `dead_before` whose journal rows have all been folded
    /// (so every lease they stored is in `ip_leases` to be loaded).
    pub async fn blocks_claim(
        &self,
        pool: PoolId,
        owner: &str,
        n: u32,
        now: i64,
        dead_before: i64,
    ) -> Result<Vec<u32>, StoreError> {
        // Claimable: unowned, or owned by another instance that is unknown, or silent with
        // its journal folded. Written over the block's own columns only (no join): when
        // PostgreSQL re-checks a row another claimer changed meanwhile, it re-evaluates these
        // subqueries against the new owner. With a LEFT JOIN it would re-use the joined
        // instance row from before the change (none, for a block that was unowned), see the
        // new owner as unknown, and hand the same block to two live instances.
        let claimable = |b: &str| {
            format!(
                "({b}.owner IS NULL OR ({b}.owner <> $1 AND NOT EXISTS (
                    SELECT 1 FROM ip_instances i WHERE i.name = {b}.owner
                       AND (i.heartbeat >= $4 OR EXISTS (
                           SELECT 1 FROM acct_journal j WHERE j.writer = i.incarnation)))))"
            )
        };
        let pick = format!(
            "SELECT b.pool_id, b.block_no FROM ip_blocks b
             WHERE b.pool_id = $3 AND {}
             ORDER BY (b.owner IS NOT NULL), b.block_no
             LIMIT $5",
            claimable("b")
        );
        // The update checks again on the row it changes, for the same reason.
        let sql = match self {
            Store::Postgres(..) => format!(
                "UPDATE ip_blocks SET owner = $1, claimed_at = $2
                  WHERE (pool_id, block_no) IN ({pick} FOR UPDATE SKIP LOCKED)
                    AND {}
                 RETURNING block_no",
                claimable("ip_blocks")
            ),
            Store::Sqlite(_) => format!(
                "UPDATE ip_blocks SET owner = $1, claimed_at = $2
                  WHERE (pool_id, block_no) IN ({pick})
                 RETURNING block_no"
            ),
        };
        let got: Vec<i32> = on_pool!(self, p => sqlx::query_scalar(&sql)
            .bind(owner)
            .bind(now)
            .bind(pool.0)
            .bind(dead_before)
            .bind(i64::from(n))
            .fetch_all(p)
            .await?);
        let mut got: Vec<u32> = got.into_iter().map(|b| b as u32).collect();
        got.sort_unstable();
        Ok(got)
    }

    /// Gives blocks back (only those still owned by `owner`).
    pub async fn blocks_return(
        &self,
        pool: PoolId,
        owner: &str,
        blocks: &[u32],
    ) -> Result<(), StoreError> {
        let sql = "UPDATE ip_blocks SET owner = NULL, claimed_at = NULL
                    WHERE pool_id = $1 AND block_no = $2 AND owner = $3";
        on_pool!(self, p => {
            let mut tx = p.begin().await?;
            for b in blocks {
                sqlx::query(sql)
                    .bind(pool.0)
                    .bind(*b as i32)
                    .bind(owner)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Stored leases of a pool's slot ranges (each `from..to`), for blocks being loaded into
    /// memory. The notices for those slots go first, whoever they were for: loading the
    /// blocks whole answers them, and a change stored after the drop leaves a new one. Two
    /// statements however many ranges on PostgreSQL, where a claim under load would otherwise
    /// wait on two round trips a block.
    pub async fn blocks_leases(
        &self,
        pool: PoolId,
        ranges: &[(i64, i64)],
    ) -> Result<Vec<LeaseRow>, StoreError> {
        let (from, to): (Vec<i64>, Vec<i64>) = ranges.iter().copied().unzip();
        match self {
            Store::Postgres(p, _) => {
                sqlx::query(
                    "DELETE FROM ip_lease_notices n USING UNNEST($2::bigint[], $3::bigint[]) r(lo, hi)
                      WHERE n.pool_id = $1 AND n.slot >= r.lo AND n.slot < r.hi",
                )
                .bind(pool.0)
                .bind(&from)
                .bind(&to)
                .execute(p)
                .await?;
                // The ranges' columns (lo, hi) are not the lease's: no column needs its table.
                let sql = format!(
                    "SELECT {LEASE_COLUMNS} FROM UNNEST($2::bigint[], $3::bigint[]) r(lo, hi)
                       JOIN ip_leases l ON l.pool_id = $1 AND l.slot >= r.lo AND l.slot < r.hi"
                );
                Ok(sqlx::query_as(&sql)
                    .bind(pool.0)
                    .bind(&from)
                    .bind(&to)
                    .fetch_all(p)
                    .await?)
            }
            Store::Sqlite(p) => {
                let drop =
                    "DELETE FROM ip_lease_notices WHERE pool_id = $1 AND slot >= $2 AND slot < $3";
                let read = format!(
                    "SELECT {LEASE_COLUMNS} FROM ip_leases WHERE pool_id = $1 AND slot >= $2 AND slot < $3"
                );
                let mut rows = Vec::new();
                for (lo, hi) in ranges {
                    sqlx::query(drop)
                        .bind(pool.0)
                        .bind(lo)
                        .bind(hi)
                        .execute(p)
                        .await?;
                    rows.extend(
                        sqlx::query_as::<_, LeaseRow>(&read)
                            .bind(pool.0)
                            .bind(lo)
                            .bind(hi)
                            .fetch_all(p)
                            .await?,
                    );
                }
                Ok(rows)
            }
        }
    }

    /// Leases other instances changed in blocks `owner` owns, as they stand now: takes (and
    /// deletes) the notices the fold left for it, in one transaction with the reads, so a
    /// failed read leaves them for the next try. A change committed after the delete leaves a
    /// new notice; one committed before it is in the reads; one still committing when the
    /// delete comes holds its notice's lock (the fold locks a notice already there), so the
    /// delete waits and the reads, later statements, see it. On PostgreSQL the reads are one
    /// statement however many notices there are.
    pub async fn leases_noticed(&self, owner: &str) -> Result<Vec<LeaseRow>, StoreError> {
        let take = "DELETE FROM ip_lease_notices WHERE owner = $1 RETURNING pool_id, slot";
        let rows = match self {
            Store::Postgres(p, _) => {
                let mut tx = p.begin().await?;
                let taken: Vec<(i64, i64)> =
                    sqlx::query_as(take).bind(owner).fetch_all(&mut *tx).await?;
                if taken.is_empty() {
                    // The usual case, every second: nothing to read.
                    return Ok(Vec::new());
                }
                let (pools, slots): (Vec<i64>, Vec<i64>) = taken.into_iter().unzip();
                let sql = format!(
                    "SELECT {LEASE_COLUMNS} FROM ip_leases
                      JOIN UNNEST($1::bigint[], $2::bigint[]) AS t(pool_id, slot)
                     USING (pool_id, slot)
                     WHERE instance <> $3"
                );
                let rows = sqlx::query_as(&sql)
                    .bind(&pools)
                    .bind(&slots)
                    .bind(owner)
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                rows
            }
            // In-process: a statement per slot costs no round trip.
            Store::Sqlite(p) => {
                let sql = format!(
                    "SELECT {LEASE_COLUMNS} FROM ip_leases
                      WHERE pool_id = $1 AND slot = $2 AND instance <> $3"
                );
                let mut tx = p.begin().await?;
                let taken: Vec<(i64, i64)> =
                    sqlx::query_as(take).bind(owner).fetch_all(&mut *tx).await?;
                let mut rows = Vec::with_capacity(taken.len());
                for (pool, slot) in taken {
                    let row: Option<LeaseRow> = sqlx::query_as(&sql)
                        .bind(pool)
                        .bind(slot)
                        .bind(owner)
                        .fetch_optional(&mut *tx)
                        .await?;
                    rows.extend(row);
                }
                tx.commit().await?;
                rows
            }
        };
        Ok(rows)
    }

    /// Leases matching `q`, in pool and slot (address) order, after `q.after`.
    pub async fn leases_list(&self, q: &LeaseQuery<'_>) -> Result<Vec<LeaseRow>, StoreError> {
        let mut sql = format!("SELECT {LEASE_COLUMNS} FROM ip_leases WHERE 1 = 1");
        let mut n = 0;
        let mut next = |clause: &str| {
            n += 1;
            format!(" AND {clause} ${n}")
        };
        // Placeholders first appear in increasing order (SQLite binds by first use).
        if q.pool.is_some() {
            sql += &next("pool_id =");
        }
        let texts = [
            (q.address, "address ="),
            (q.username, "username ="),
            (q.unique_id, "acct_unique_id ="),
        ];
        for (v, clause) in texts {
            if v.is_some() {
                sql += &next(clause);
            }
        }
        match q.state {
            None => {}
            Some(LeaseStateFilter::Expired) => sql += &next("expires_at <="),
            Some(LeaseStateFilter::Live(_)) => {
                sql += &next("state =");
                sql += &next("expires_at >");
            }
        }
        if q.after.is_some() {
            sql += &keyset_after(&mut n, "pool_id", "slot", ">");
        }
        sql += &format!(" ORDER BY pool_id, slot LIMIT {}", q.limit.max(0));
        let rows = on_pool!(self, p => {
            let mut query = sqlx::query_as(&sql);
            if let Some(pool) = q.pool {
                query = query.bind(pool.0);
            }
            for s in texts.iter().filter_map(|(v, _)| *v) {
                query = query.bind(s);
            }
            match q.state {
                None => {}
                Some(LeaseStateFilter::Expired) => query = query.bind(q.now),
                Some(LeaseStateFilter::Live(state)) => {
                    query = query.bind(state.as_str()).bind(q.now);
                }
            }
            if let Some((pool, slot)) = q.after {
                query = query.bind(pool).bind(slot);
            }
            query.fetch_all(p).await?
        });
        Ok(rows)
    }

    /// The newest word on each slot holding `address`, whether it is in `ip_leases` or still
    /// in the accounting journal, waiting for its fold (an offer answered a moment ago, or
    /// one a process that stopped before its fold left behind). In pool order.
    ///
    /// The journal is read first: a change folded between the two reads is then in
    /// `ip_leases`, so every change journaled before this call is seen.
    pub async fn leases_of_address(&self, address: &str) -> Result<Vec<LeaseRow>, StoreError> {
        let mut newest: std::collections::BTreeMap<(i64, i64), LeaseRow> = Default::default();
        // The fold applies a change over an older or equally old one: a later change of
        // the same moment wins, and so does the journal over `ip_leases`.
        for change in self.journaled_leases(address).await? {
            let row = LeaseRow::from(change);
            match newest.get(&(row.pool_id, row.slot)) {
                Some(seen) if seen.updated_us > row.updated_us => {}
                _ => {
                    newest.insert((row.pool_id, row.slot), row);
                }
            }
        }
        let stored = self
            .leases_list(&LeaseQuery {
                address: Some(address),
                limit: 64,
                ..LeaseQuery::default()
            })
            .await?;
        for row in stored {
            match newest.get(&(row.pool_id, row.slot)) {
                Some(seen) if seen.updated_us >= row.updated_us => {}
                _ => {
                    newest.insert((row.pool_id, row.slot), row);
                }
            }
        }
        Ok(newest.into_values().collect())
    }

    /// Lease changes for `address` in journal rows not yet folded, oldest first. The
    /// database picks the rows holding the address's encoded text (its length and bytes);
    /// a session report with that Framed-IP-Address matches too, and decoding sorts it out.
    async fn journaled_leases(&self, address: &str) -> Result<Vec<LeaseChange>, StoreError> {
        let mut needle = (address.len() as u32).to_le_bytes().to_vec();
        needle.extend_from_slice(address.as_bytes());
        let entries: Vec<(Vec<u8>,)> = match self {
            Store::Postgres(p, _) => {
                sqlx::query_as(
                    "SELECT entry FROM acct_journal WHERE position($1 IN entry) > 0
                      ORDER BY created_at, writer, batch",
                )
                .bind(&needle)
                .fetch_all(p)
                .await?
            }
            Store::Sqlite(p) => {
                sqlx::query_as(
                    "SELECT entry FROM acct_journal WHERE instr(entry, $1) > 0
                      ORDER BY created_at, writer, batch",
                )
                .bind(&needle)
                .fetch_all(p)
                .await?
            }
        };
        let mut out = Vec::new();
        for (entry,) in entries {
            // A row that does not decode is the fold's to report; it holds nothing here.
            let Ok(events) = crate::journal::decode(&entry) else {
                continue;
            };
            out.extend(events.into_iter().filter_map(|ev| match ev {
                crate::accounting::AcctEvent::Lease(l) if l.address == address => Some(*l),
                _ => None,
            }));
        }
        Ok(out)
    }

    /// Slots of a pool in use at `now`: offered or bound and not expired, or released and
    /// still kept for their subscriber. For "next available".
    pub async fn leases_held(&self, pool: PoolId, now: i64) -> Result<Vec<i64>, StoreError> {
        let sql = "SELECT slot FROM ip_leases WHERE pool_id = $1 AND expires_at > $2 ORDER BY slot";
        let rows = on_pool!(self, p => sqlx::query_scalar(sql)
            .bind(pool.0)
            .bind(now)
            .fetch_all(p)
            .await?);
        Ok(rows)
    }

    /// How a pool is used at `now`, in total and by block.
    pub async fn pool_use(&self, pool: &Pool, now: i64) -> Result<PoolUse, StoreError> {
        let states = "SELECT state, count(*) FROM ip_leases
                       WHERE pool_id = $1 AND expires_at > $2 GROUP BY state";
        let by_block = "SELECT slot / $1, count(*) FROM ip_leases
                         WHERE pool_id = $2 AND expires_at > $3 AND state <> 'released'
                         GROUP BY 1";
        let blocks = "SELECT block_no, owner FROM ip_blocks WHERE pool_id = $1 ORDER BY block_no";
        let bs = i64::from(pool.block_size);
        type Counts = Vec<(String, i64)>;
        type Owners = Vec<(i32, Option<String>)>;
        let (counts, used, owners): (Counts, Vec<(i64, i64)>, Owners) = on_pool!(self, p => (
            sqlx::query_as(states).bind(pool.id.0).bind(now).fetch_all(p).await?,
            sqlx::query_as(by_block).bind(bs).bind(pool.id.0).bind(now).fetch_all(p).await?,
            sqlx::query_as(blocks).bind(pool.id.0).fetch_all(p).await?,
        ));
        let mut out = PoolUse::default();
        for (state, n) in counts {
            match state.as_str() {
                "offered" => out.offered = n,
                "bound" => out.bound = n,
                _ => out.sticky = n,
            }
        }
        let used: std::collections::HashMap<i64, i64> = used.into_iter().collect();
        out.blocks = owners
            .into_iter()
            .map(|(b, owner)| BlockUse {
                block: i64::from(b),
                owner,
                used: used.get(&i64::from(b)).copied().unwrap_or(0),
            })
            .collect();
        Ok(out)
    }

    /// Subscribers' static IPv4 addresses.
    pub async fn static_addresses(&self) -> Result<Vec<(String, Ipv4Addr)>, StoreError> {
        let sql = "SELECT username, static_ipv4 FROM subscribers WHERE static_ipv4 IS NOT NULL";
        let rows: Vec<(String, String)> =
            on_pool!(self, p => sqlx::query_as(sql).fetch_all(p).await?);
        Ok(rows
            .into_iter()
            .filter_map(|(u, a)| Some((u, a.parse().ok()?)))
            .collect())
    }
}
