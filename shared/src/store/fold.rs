//! The accounting journal and the fold: batches stored as journal rows before their
//! answers, then folded into `sessions` (and leases into `ip_leases`), NAS restarts and the
//! reaper's closes. On PostgreSQL a fold of reports and leases runs in two halves on two
//! connections; anything else runs in one transaction with its journal rows.
//!
//! The upsert's `DO UPDATE` is generated from the same column rules the writer folds a batch
//! with (`accounting::COLUMNS`), so memory and database agree on what a merge means.

use std::sync::OnceLock;

use super::leases::UpsertLeases;
use super::sessions::{active_from_row, col_list, RETURNING};
use super::{on_pool, Store, StoreError};
use crate::accounting::{
    unix_now, ActiveSession, Kind, Rule, SessionRecord, Value, COLUMNS, NAS_REBOOT_CAUSE,
    STALE_CAUSE,
};
use crate::leases::LeaseChange;

/// One step of a fold, applied in order (`Store::sessions_fold` says in which transactions).
#[derive(Debug, Clone)]
pub enum BatchOp {
    /// Session reports, at most one per unique id (the writer folds duplicates first).
    Upsert(Vec<Box<SessionRecord>>),
    NasRestart {
        nas_ip_address: String,
        at: i64,
    },
    Reap {
        unique_id: String,
        last_seen: i64,
    },
    /// Lease changes, at most one per slot (the newest).
    Leases(Vec<crate::leases::LeaseChange>),
}

/// A journal row's key: the process that wrote it (a random number per start) and the
/// batch's number in that process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct JournalKey {
    pub writer: i64,
    pub batch: i64,
}

/// What a committed batch did to the set of open sessions.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    /// Sessions open after the batch, as stored.
    pub open: Vec<ActiveSession>,
    /// Unique ids of sessions the batch closed.
    pub closed: Vec<String>,
    /// How many of those the reaper's closes closed (a session heard of meanwhile is not).
    pub reaped: usize,
}

/// `SET` clauses of the upsert, one per column that can change.
fn conflict_sets(pg: bool) -> String {
    let (least, greatest) = if pg {
        ("LEAST", "GREATEST")
    } else {
        ("MIN", "MAX")
    };
    let stop_replaced = format!(
        "(excluded.acct_stop_time IS NOT NULL AND (sessions.acct_stop_time IS NULL \
         OR sessions.acct_terminate_cause = '{STALE_CAUSE}'))"
    );
    COLUMNS
        .iter()
        .filter_map(|col| {
            let n = col.name;
            let expr = match col.rule {
                Rule::Key => return None,
                Rule::Latest => format!("COALESCE(excluded.{n}, sessions.{n})"),
                Rule::First => format!("COALESCE(sessions.{n}, excluded.{n})"),
                Rule::Min | Rule::Max => {
                    let f = if col.rule == Rule::Min { least } else { greatest };
                    format!(
                        "{f}(COALESCE(sessions.{n}, excluded.{n}), COALESCE(excluded.{n}, sessions.{n}))"
                    )
                }
                Rule::Start => format!(
                    "CASE WHEN sessions.start_reported = 1 THEN sessions.{n} \
                     WHEN excluded.start_reported = 1 THEN excluded.{n} \
                     ELSE {least}(COALESCE(sessions.{n}, excluded.{n}), COALESCE(excluded.{n}, sessions.{n})) END"
                ),
                Rule::Stop | Rule::Cause => format!(
                    "CASE WHEN {stop_replaced} THEN excluded.{n} ELSE sessions.{n} END"
                ),
            };
            Some(format!("{n} = {expr}"))
        })
        .collect::<Vec<_>>()
        .join(",\n    ")
}

fn pg_upsert_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let unnest = COLUMNS
            .iter()
            .enumerate()
            .map(|(i, col)| {
                let t = match col.kind {
                    Kind::Text => "text",
                    Kind::Int => "bigint",
                };
                format!("${}::{t}[]", i + 1)
            })
            .collect::<Vec<_>>()
            .join(", ");
        upsert_sql(&format!("SELECT * FROM UNNEST({unnest})"), true)
    })
}

fn sqlite_upsert_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        // Plain `?`: SQLite looks numbered parameters up by name, one by one.
        let params = vec!["?"; COLUMNS.len()].join(", ");
        upsert_sql(&format!("VALUES ({params})"), false)
    })
}

/// The upsert of session rows from `source` (the rows, in `COLUMNS` order), returning what
/// the set of open sessions needs.
fn upsert_sql(source: &str, pg: bool) -> String {
    format!(
        "INSERT INTO sessions ({}) {source}
         ON CONFLICT (acct_unique_id) DO UPDATE SET\n    {}\n RETURNING {RETURNING}",
        col_list(),
        conflict_sets(pg)
    )
}

fn nas_restart_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "UPDATE sessions SET acct_stop_time = $2, acct_terminate_cause = '{NAS_REBOOT_CAUSE}',
            acct_session_time = CASE WHEN acct_start_time IS NOT NULL
                AND $2 - acct_start_time > acct_session_time
                THEN $2 - acct_start_time ELSE acct_session_time END
         WHERE nas_ip_address = $1 AND acct_stop_time IS NULL
           AND COALESCE(acct_start_time, 0) <= $2
         RETURNING acct_unique_id"
        )
    })
}

fn reap_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "UPDATE sessions SET acct_terminate_cause = '{STALE_CAUSE}',
            acct_stop_time = COALESCE(acct_update_time, acct_start_time, last_seen)
         WHERE acct_unique_id = $1 AND acct_stop_time IS NULL AND last_seen <= $2
         RETURNING acct_unique_id"
        )
    })
}

/// Folds session rows into the table; the one step of a batch that differs by backend.
/// `records` come in unique-id order (`Step::of` sorts them): one order of row locks for
/// every fold, so that folds committing at once (or other instances') cannot deadlock.
trait UpsertSessions {
    async fn upsert_sessions(
        &mut self,
        records: &[&SessionRecord],
        out: &mut BatchOutcome,
    ) -> Result<(), sqlx::Error>;
}

impl UpsertSessions for sqlx::PgConnection {
    /// One `INSERT … SELECT FROM UNNEST(…)` for the whole run, one array per column.
    async fn upsert_sessions(
        &mut self,
        sorted: &[&SessionRecord],
        out: &mut BatchOutcome,
    ) -> Result<(), sqlx::Error> {
        // The bound arrays are tens of megabytes for a large fold: sized once (4 bytes of
        // length per element, then the value) instead of grown by doubling.
        let bytes: usize = sorted
            .iter()
            .flat_map(|r| r.values.iter())
            .map(|v| 4 + v.text().map_or(8, str::len))
            .sum();
        let mut args = sqlx::postgres::PgArguments::default();
        sqlx::Arguments::reserve(&mut args, COLUMNS.len(), bytes + COLUMNS.len() * 32);
        for (i, col) in COLUMNS.iter().enumerate() {
            let column = sorted.iter().map(|r| &r.values[i]);
            let added = match col.kind {
                Kind::Text => sqlx::Arguments::add(
                    &mut args,
                    column.map(Value::text).collect::<Vec<Option<&str>>>(),
                ),
                Kind::Int => sqlx::Arguments::add(
                    &mut args,
                    column.map(Value::int).collect::<Vec<Option<i64>>>(),
                ),
            };
            added.map_err(sqlx::Error::Encode)?;
        }
        for row in sqlx::query_with(pg_upsert_sql(), args)
            .fetch_all(self)
            .await?
        {
            push_outcome(out, active_from_row(&row)?);
        }
        Ok(())
    }
}

impl UpsertSessions for sqlx::SqliteConnection {
    /// One upsert per session: SQLite is in-process, so a statement costs no round trip.
    async fn upsert_sessions(
        &mut self,
        records: &[&SessionRecord],
        out: &mut BatchOutcome,
    ) -> Result<(), sqlx::Error> {
        for r in records {
            let mut q = sqlx::query(sqlite_upsert_sql());
            for v in &r.values {
                q = match v {
                    Value::Null => q.bind(None::<i64>),
                    Value::Text(s) => q.bind(s.as_str()),
                    Value::Int(i) => q.bind(*i),
                };
            }
            let row = q.fetch_one(&mut *self).await?;
            push_outcome(out, active_from_row(&row)?);
        }
        Ok(())
    }
}

/// Deletes folded batches from the journal.
trait DeleteJournal {
    async fn delete_journal(&mut self, journal: &[JournalKey]) -> Result<(), sqlx::Error>;
}

impl DeleteJournal for sqlx::PgConnection {
    /// One statement for all of them.
    async fn delete_journal(&mut self, journal: &[JournalKey]) -> Result<(), sqlx::Error> {
        sqlx::query(
            "DELETE FROM acct_journal WHERE (writer, batch) IN
                 (SELECT * FROM UNNEST($1::bigint[], $2::bigint[]))",
        )
        .bind(journal.iter().map(|k| k.writer).collect::<Vec<_>>())
        .bind(journal.iter().map(|k| k.batch).collect::<Vec<_>>())
        .execute(self)
        .await?;
        Ok(())
    }
}

impl DeleteJournal for sqlx::SqliteConnection {
    /// One statement each: SQLite is in-process, so a statement costs no round trip.
    async fn delete_journal(&mut self, journal: &[JournalKey]) -> Result<(), sqlx::Error> {
        for key in journal {
            sqlx::query("DELETE FROM acct_journal WHERE writer = $1 AND batch = $2")
                .bind(key.writer)
                .bind(key.batch)
                .execute(&mut *self)
                .await?;
        }
        Ok(())
    }
}

impl Store {
    /// Stores one batch of encoded accounting events as a journal row: the durable step
    /// before the batch's Accounting-Responses go out. One row, one statement, one commit.
    pub async fn journal_append(&self, key: JournalKey, entry: &[u8]) -> Result<(), StoreError> {
        let sql =
            "INSERT INTO acct_journal (writer, batch, created_at, entry) VALUES ($1, $2, $3, $4)";
        on_pool!(self, p => {
            sqlx::query(sql)
                .bind(key.writer)
                .bind(key.batch)
                .bind(unix_now())
                .bind(entry)
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// Moves spooled batches into the journal under their original keys, in one
    /// transaction; a key already there (a replay cut short after its commit, or a batch
    /// whose first insert committed after it timed out) is skipped.
    pub async fn journal_replay(
        &self,
        batches: &[(JournalKey, Vec<u8>)],
    ) -> Result<(), StoreError> {
        let sql =
            "INSERT INTO acct_journal (writer, batch, created_at, entry) VALUES ($1, $2, $3, $4)
                   ON CONFLICT (writer, batch) DO NOTHING";
        let now = unix_now();
        on_pool!(self, p => {
            let mut tx = p.begin().await?;
            for (key, entry) in batches {
                sqlx::query(sql)
                    .bind(key.writer)
                    .bind(key.batch)
                    .bind(now)
                    .bind(entry)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Journal rows written at or before `created_before` (Unix seconds) by any writer but
    /// `except_writer`, oldest first, at most `limit`: what a crashed or vanished process
    /// left unfolded.
    pub async fn journal_rows(
        &self,
        created_before: i64,
        except_writer: i64,
        limit: i64,
    ) -> Result<Vec<(JournalKey, Vec<u8>)>, StoreError> {
        let sql = "SELECT writer, batch, entry FROM acct_journal
                   WHERE created_at <= $1 AND writer <> $2
                   ORDER BY created_at, writer, batch LIMIT $3";
        let rows: Vec<(i64, i64, Vec<u8>)> = on_pool!(self, p => {
            sqlx::query_as(sql)
                .bind(created_before)
                .bind(except_writer)
                .bind(limit)
                .fetch_all(p)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|(writer, batch, entry)| (JournalKey { writer, batch }, entry))
            .collect())
    }

    /// Folds batches into the sessions table and deletes their journal rows, then reports
    /// what the batches opened and closed. Nothing is reported when it fails. Folding a row
    /// twice (a retry, or two processes recovering the same crash) is harmless: the merge
    /// rules are idempotent.
    ///
    /// On PostgreSQL a fold of reports and leases only (no NAS restart, no reaper close) is
    /// split in two halves by key, applied on two connections at once, each committed on
    /// its own, and the journal rows are deleted once both have committed: one fold is one
    /// backend's CPU, so this is what lets it use a second core. A failure of either half
    /// leaves the journal rows in place, and the retry applies both halves again. Anything
    /// else is applied in one transaction with its journal rows.
    pub async fn sessions_fold(
        &self,
        ops: &[BatchOp],
        journal: &[JournalKey],
    ) -> Result<BatchOutcome, StoreError> {
        let steps: Vec<Step> = ops.iter().map(Step::of).collect();
        // Splittable when every step is rows.
        let rows: Option<Vec<&Rows>> = steps
            .iter()
            .map(|s| match s {
                Step::Rows(r) => Some(r),
                Step::Close { .. } => None,
            })
            .collect();
        if let (Store::Postgres(p, _), Some(rows)) = (self, &rows) {
            return fold_split(p, rows, journal).await;
        }
        let mut out = BatchOutcome::default();
        on_pool!(self, p => {
            let mut tx = p.begin().await?;
            for step in &steps {
                match step {
                    Step::Rows(Rows::Sessions(rows)) => tx.upsert_sessions(rows, &mut out).await?,
                    Step::Rows(Rows::Leases(rows)) => tx.upsert_leases(rows).await?,
                    Step::Close { sql, key, at, reaped } => {
                        let ids: Vec<String> = sqlx::query_scalar(sql)
                            .bind(*key)
                            .bind(*at)
                            .fetch_all(&mut *tx)
                            .await?;
                        if *reaped {
                            out.reaped += ids.len();
                        }
                        out.closed.extend(ids);
                    }
                }
            }
            tx.delete_journal(journal).await?;
            tx.commit().await?;
        });
        Ok(out)
    }
}

/// The two-connection fold of [`Store::sessions_fold`]. Each half runs its share of every
/// step and commits as soon as it is done, without waiting for the other: a transaction
/// that held its row locks while it waited for its sibling could close a cycle with two
/// halves of another instance's fold that PostgreSQL cannot see (it sees only its own lock
/// waits), and both folds would hang. Every lock wait is PostgreSQL's own, in key order.
async fn fold_split(
    p: &sqlx::PgPool,
    steps: &[&Rows<'_>],
    journal: &[JournalKey],
) -> Result<BatchOutcome, StoreError> {
    // Both run to their end: a half that failed does not cut the other short.
    let (first, second) = tokio::join!(fold_half(p, steps, 0), fold_half(p, steps, 1));
    let (mut out, mut second) = (first?, second?);
    p.acquire().await?.delete_journal(journal).await?;
    out.open.append(&mut second.open);
    out.closed.append(&mut second.closed);
    Ok(out)
}

/// One step of a fold: rows, or a close (a NAS restart or a reaper's close).
enum Step<'a> {
    Rows(Rows<'a>),
    Close {
        sql: &'static str,
        /// The NAS's address, or the reaped session's unique id.
        key: &'a str,
        at: i64,
        /// A reaper's close (counted in `BatchOutcome::reaped`).
        reaped: bool,
    },
}

/// Rows in key order (the order every statement locks them in): what a split fold's halves
/// share between them.
enum Rows<'a> {
    Sessions(Vec<&'a SessionRecord>),
    Leases(Vec<&'a LeaseChange>),
}

impl<'a> Step<'a> {
    fn of(op: &'a BatchOp) -> Step<'a> {
        match op {
            BatchOp::Upsert(records) => {
                let mut rows: Vec<&SessionRecord> = records.iter().map(|r| &**r).collect();
                rows.sort_unstable_by(|x, y| x.unique_id().cmp(y.unique_id()));
                Step::Rows(Rows::Sessions(rows))
            }
            BatchOp::Leases(leases) => {
                let mut rows: Vec<&LeaseChange> = leases.iter().collect();
                rows.sort_unstable_by_key(|l| (l.pool, l.slot));
                Step::Rows(Rows::Leases(rows))
            }
            BatchOp::NasRestart { nas_ip_address, at } => Step::Close {
                sql: nas_restart_sql(),
                key: nas_ip_address,
                at: *at,
                reaped: false,
            },
            BatchOp::Reap {
                unique_id,
                last_seen,
            } => Step::Close {
                sql: reap_sql(),
                key: unique_id,
                at: *last_seen,
                reaped: true,
            },
        }
    }
}

/// Half `which` (0: the lower keys, 1: the upper) of every step, in one transaction.
async fn fold_half(
    p: &sqlx::PgPool,
    steps: &[&Rows<'_>],
    which: usize,
) -> Result<BatchOutcome, sqlx::Error> {
    fn half<T>(rows: &[T], which: usize) -> &[T] {
        let (lower, upper) = rows.split_at(rows.len() / 2);
        [lower, upper][which]
    }
    let mut out = BatchOutcome::default();
    let mut tx = p.begin().await?;
    for step in steps {
        match step {
            Rows::Sessions(rows) => tx.upsert_sessions(half(rows, which), &mut out).await?,
            Rows::Leases(rows) => tx.upsert_leases(half(rows, which)).await?,
        }
    }
    tx.commit().await?;
    Ok(out)
}

fn push_outcome(out: &mut BatchOutcome, (session, open): (ActiveSession, bool)) {
    if open {
        out.open.push(session);
    } else {
        out.closed.push(session.unique_id);
    }
}
