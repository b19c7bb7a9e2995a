//! Address pools, block claims and instance names in the database (leases are in
//! `leases.rs`): the slower path of operators' commands, claims and start-up loading.

use std::net::Ipv4Addr;

use serde::Serialize;

use super::{changed, lines, notify, on_pool, rows, unique_violation, Store, StoreError};
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
