//! Subscriber writes (single, and the all-or-nothing bulk import) and the incremental reads
//! that keep a running server's index fresh.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use thiserror::Error;

use super::{notify, on_pool, rows::BUMP_REVISION, Store, StoreError};
use crate::types::{PlanId, Subscriber, SubscriberRecord, SubscriberStatus};

/// Rows per INSERT statement in a bulk upsert: 7 parameters each, far below both backends'
/// parameter limits.
const UPSERT_CHUNK: usize = 1000;

#[derive(Debug, Error)]
pub enum ImportError {
    #[error("line {line}: unknown plan `{plan}`")]
    UnknownPlan { line: usize, plan: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A subscriber row as read for the index.
#[derive(Debug, sqlx::FromRow)]
pub struct SubscriberRow {
    pub username: String,
    pub password: String,
    pub plan_id: Option<i64>,
    pub status: String,
    pub static_ipv4: Option<String>,
    pub calling_station_id: Option<String>,
}

impl SubscriberRow {
    pub fn into_index(self) -> (String, Subscriber) {
        let s = Subscriber {
            password: self.password.into_boxed_str(),
            plan_id: self.plan_id.map(PlanId),
            status: SubscriberStatus::parse(&self.status).unwrap_or(SubscriberStatus::Suspended),
            static_ipv4: self.static_ipv4.and_then(|a| a.parse::<Ipv4Addr>().ok()),
            calling_station_id: self
                .calling_station_id
                .map(|c| crate::types::normalize_station_id(&c).into_boxed_str()),
        };
        (self.username, s)
    }
}

/// What changed after a revision.
#[derive(Debug, Default)]
pub struct SubscriberChanges {
    pub upserts: Vec<SubscriberRow>,
    pub deletions: Vec<String>,
}

const SELECT_RECORD: &str =
    "SELECT s.username, s.password, p.name AS plan, s.status, s.static_ipv4, s.calling_station_id
     FROM subscribers s LEFT JOIN plans p ON p.id = s.plan_id";

#[derive(sqlx::FromRow)]
struct RecordRow {
    username: String,
    password: String,
    plan: Option<String>,
    status: String,
    static_ipv4: Option<String>,
    calling_station_id: Option<String>,
}

impl RecordRow {
    fn into_record(self) -> SubscriberRecord {
        SubscriberRecord {
            username: self.username,
            password: self.password,
            plan: self.plan,
            status: SubscriberStatus::parse(&self.status).unwrap_or(SubscriberStatus::Suspended),
            static_ipv4: self.static_ipv4.and_then(|a| a.parse().ok()),
            calling_station_id: self.calling_station_id,
        }
    }
}

impl Store {
    /// Inserts or updates subscribers in one transaction: all of them or none. `records` come
    /// with the line number to blame when a row cannot be written.
    pub async fn subscribers_upsert(
        &self,
        records: &[(usize, SubscriberRecord)],
    ) -> Result<usize, ImportError> {
        self.subscribers_write(records, false).await
    }

    /// Creates one subscriber; `Exists` when the username is taken, even by a create that
    /// committed a moment earlier (no check-then-write gap).
    pub async fn subscriber_create(&self, record: &SubscriberRecord) -> Result<(), ImportError> {
        self.subscribers_write(&[(0, record.clone())], true)
            .await
            .map(|_| ())
    }

    async fn subscribers_write(
        &self,
        records: &[(usize, SubscriberRecord)],
        create_only: bool,
    ) -> Result<usize, ImportError> {
        let plans: HashMap<String, i64> = self
            .plan_list()
            .await?
            .into_iter()
            .map(|p| (p.name, p.id.0))
            .collect();
        let mut resolved = Vec::with_capacity(records.len());
        for (line, r) in records {
            let plan_id = match &r.plan {
                Some(name) => Some(*plans.get(name).ok_or_else(|| ImportError::UnknownPlan {
                    line: *line,
                    plan: name.clone(),
                })?),
                None => None,
            };
            resolved.push((r, plan_id));
        }
        let result: Result<bool, sqlx::Error> = on_pool!(self, p => async {
            let mut tx = p.begin().await?;
            let rev: i64 = sqlx::query_scalar(BUMP_REVISION).fetch_one(&mut *tx).await?;
            for chunk in resolved.chunks(UPSERT_CHUNK) {
                let sql = upsert_sql(chunk.len(), matches!(self, Store::Postgres(..)), create_only);
                let mut q = sqlx::query(&sql);
                for (r, plan_id) in chunk {
                    q = q
                        .bind(&r.username)
                        .bind(&r.password)
                        .bind(*plan_id)
                        .bind(r.status.as_str())
                        .bind(r.static_ipv4.map(|a| a.to_string()))
                        .bind(r.calling_station_id.as_deref())
                        .bind(rev);
                }
                let affected = q.execute(&mut *tx).await?.rows_affected() as usize;
                if create_only && affected < chunk.len() {
                    // The username was taken: nothing is written.
                    return Ok(false);
                }
            }
            notify!(self, tx, "subscribers");
            tx.commit().await?;
            Ok::<bool, sqlx::Error>(true)
        }.await);
        let written = result.map_err(|e| match &e {
            // Usernames conflict through ON CONFLICT; the other unique key is the static address.
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                StoreError::Conflict(match records {
                    [(_, r)] => format!(
                        "static address {} belongs to another subscriber",
                        r.static_ipv4.map(|a| a.to_string()).unwrap_or_default()
                    ),
                    _ => "a static address here belongs to another subscriber, or is given twice"
                        .to_string(),
                })
            }
            _ => e.into(),
        })?;
        if !written {
            let name = records
                .first()
                .map(|(_, r)| r.username.clone())
                .unwrap_or_default();
            return Err(StoreError::Exists("subscriber", name).into());
        }
        Ok(records.len())
    }

    pub async fn subscriber_remove(&self, username: &str) -> Result<(), StoreError> {
        let n: Result<u64, sqlx::Error> = on_pool!(self, p => async {
            let mut tx = p.begin().await?;
            let rev: i64 = sqlx::query_scalar(BUMP_REVISION).fetch_one(&mut *tx).await?;
            let r = sqlx::query("DELETE FROM subscribers WHERE username = $1")
                .bind(username)
                .execute(&mut *tx)
                .await?;
            if r.rows_affected() > 0 {
                sqlx::query("INSERT INTO deletions (rev, kind, key) VALUES ($1, 'subscribers', $2)")
                    .bind(rev)
                    .bind(username)
                    .execute(&mut *tx)
                    .await?;
                notify!(self, tx, "subscribers");
                tx.commit().await?;
            }
            Ok::<u64, sqlx::Error>(r.rows_affected())
        }.await);
        match n? {
            0 => Err(StoreError::NotFound("subscriber", username.to_string())),
            _ => Ok(()),
        }
    }

    /// Subscribers in username order, after `after`, at most `limit`; passwords left empty.
    pub async fn subscriber_list(
        &self,
        after: &str,
        limit: i64,
    ) -> Result<Vec<SubscriberRecord>, StoreError> {
        let sql = format!("{SELECT_RECORD} WHERE s.username > $1 ORDER BY s.username LIMIT $2");
        let rows: Vec<RecordRow> = on_pool!(self, p => sqlx::query_as(&sql)
            .bind(after)
            .bind(limit)
            .fetch_all(p)
            .await?);
        Ok(rows
            .into_iter()
            .map(|r| {
                let mut rec = r.into_record();
                rec.password.clear();
                rec
            })
            .collect())
    }

    /// One subscriber, password included (as stored: cleartext or a hash).
    pub async fn subscriber_get(&self, username: &str) -> Result<SubscriberRecord, StoreError> {
        let sql = format!("{SELECT_RECORD} WHERE s.username = $1");
        let row: Option<RecordRow> = on_pool!(self, p => sqlx::query_as(&sql)
            .bind(username)
            .fetch_optional(p)
            .await?);
        row.map(RecordRow::into_record)
            .ok_or_else(|| StoreError::NotFound("subscriber", username.to_string()))
    }

    /// Subscribers written after `rev`, and usernames deleted after it.
    pub async fn subscriber_changes(&self, rev: i64) -> Result<SubscriberChanges, StoreError> {
        let upserts: Vec<SubscriberRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT username, password, plan_id, status, static_ipv4, calling_station_id
             FROM subscribers WHERE rev > $1",
        )
        .bind(rev)
        .fetch_all(p)
        .await?);
        let deletions: Vec<String> = if rev == 0 {
            Vec::new()
        } else {
            on_pool!(self, p => sqlx::query_scalar(
                "SELECT key FROM deletions WHERE kind = 'subscribers' AND rev > $1",
            )
            .bind(rev)
            .fetch_all(p)
            .await?)
        };
        Ok(SubscriberChanges { upserts, deletions })
    }

    pub async fn subscriber_count(&self) -> Result<i64, StoreError> {
        let n: i64 = on_pool!(self, p => sqlx::query_scalar("SELECT COUNT(*) FROM subscribers")
            .fetch_one(p)
            .await?);
        Ok(n)
    }
}

/// `numbered`: `$N` placeholders (PostgreSQL). SQLite gets plain `?`: it looks each numbered
/// parameter up by name, which makes a 7,000-parameter statement quadratic.
fn upsert_sql(rows: usize, numbered: bool, create_only: bool) -> String {
    let mut sql = String::from(
        "INSERT INTO subscribers (username, password, plan_id, status, static_ipv4,
            calling_station_id, rev) VALUES ",
    );
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        let b = r * 7;
        let params: Vec<String> = (1..=7)
            .map(|i| {
                if numbered {
                    format!("${}", b + i)
                } else {
                    "?".to_string()
                }
            })
            .collect();
        sql.push_str(&format!("({})", params.join(", ")));
    }
    if create_only {
        sql.push_str(" ON CONFLICT (username) DO NOTHING");
        return sql;
    }
    sql.push_str(
        " ON CONFLICT (username) DO UPDATE SET password = excluded.password,
            plan_id = excluded.plan_id, status = excluded.status,
            static_ipv4 = excluded.static_ipv4, calling_station_id = excluded.calling_station_id,
            rev = excluded.rev, updated_at = CURRENT_TIMESTAMP",
    );
    sql
}
