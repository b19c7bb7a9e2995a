//! Leases in the database: the fold's upsert into `ip_leases`, and the reads of leases
//! (listings, an address's newest word, the notices block owners take).
//!
//! Leases reach `ip_leases` only through the accounting journal's fold (see
//! `sessions_fold`), so that a lease is durable in the same group commit as its neighbours;
//! everything else here is the slower path: operators' commands and the owners' syncs.

use serde::Serialize;

use super::{keyset_after, on_pool, Store, StoreError};
use crate::leases::{LeaseChange, LeaseState};
use crate::types::PoolId;

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

pub(super) const LEASE_COLUMNS: &str = "pool_id, slot, address, username, state, acct_unique_id, \
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
    /// Writes one lease change outside the data plane (an operator's release); the newest
    /// change of a slot wins, as in the fold. The owning instance picks it up in its sync.
    pub async fn lease_write(&self, change: &LeaseChange) -> Result<(), StoreError> {
        on_pool!(self, p => {
            let mut conn = p.acquire().await?;
            conn.upsert_leases(&[change]).await?;
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
        let journaled = self.journaled_leases(address).await?;
        let stored = self
            .leases_list(&LeaseQuery {
                address: Some(address),
                limit: 64,
                ..LeaseQuery::default()
            })
            .await?;
        // The fold applies a change over an older or equally old one. Taken in the order
        // the fold would apply them (stored, then journaled oldest first), a change replaces
        // what it is not older than.
        let mut newest: std::collections::BTreeMap<(i64, i64), LeaseRow> = Default::default();
        for row in stored
            .into_iter()
            .chain(journaled.into_iter().map(LeaseRow::from))
        {
            let key = (row.pool_id, row.slot);
            if newest
                .get(&key)
                .is_none_or(|seen| seen.updated_us <= row.updated_us)
            {
                newest.insert(key, row);
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
        let holds = match self {
            Store::Postgres(..) => "position($1 IN entry) > 0",
            Store::Sqlite(_) => "instr(entry, $1) > 0",
        };
        let sql = format!(
            "SELECT entry FROM acct_journal WHERE {holds} ORDER BY created_at, writer, batch"
        );
        let entries: Vec<Vec<u8>> =
            on_pool!(self, p => sqlx::query_scalar(&sql).bind(&needle).fetch_all(p).await?);
        let mut out = Vec::new();
        for entry in entries {
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
}
