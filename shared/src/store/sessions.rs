//! Accounting sessions in the database: a batch of session reports folded into the table in
//! one transaction, NAS restarts, the reaper's closes, and queries for the CLI and API.
//!
//! The upsert's `DO UPDATE` is generated from the same column rules the writer folds a batch
//! with (`accounting::COLUMNS`), so memory and database agree on what a merge means.

use std::sync::OnceLock;

use sqlx::Row;

use super::ipam::UpsertLeases;
use super::{keyset_after, on_pool, Store, StoreError};
use crate::accounting::{
    c, push_session_json, unix_now, ActiveSession, Kind, Rule, SessionRecord, Value, ValueRef,
    COLUMNS, NAS_REBOOT_CAUSE, STALE_CAUSE,
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

/// One day of a subscriber's usage (`day` counts days since 1970-01-01, UTC).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DayUsage {
    pub day: i64,
    pub input_octets: i64,
    pub output_octets: i64,
    pub session_seconds: i64,
    pub sessions: i64,
}

/// Filters for listing sessions; newest first.
#[derive(Debug, Clone, Default)]
pub struct SessionQuery {
    pub username: Option<String>,
    pub framed_ip_address: Option<String>,
    pub calling_station_id: Option<String>,
    pub nas_ip_address: Option<String>,
    pub open_only: bool,
    /// Closed sessions only (history).
    pub closed_only: bool,
    /// Sessions that started at or after this Unix time.
    pub since: Option<i64>,
    /// Sessions that started before this Unix time.
    pub until: Option<i64>,
    /// Keyset cursor: sessions strictly after this (start time, unique id) in list order.
    pub after: Option<(i64, String)>,
    pub limit: i64,
}

const RETURNING: &str = "acct_unique_id, acct_session_id, username, nas_ip_address, \
     framed_ip_address, framed_ipv6_prefix, delegated_ipv6_prefix, acct_interval, last_seen, \
     acct_stop_time";

fn col_list() -> String {
    COLUMNS
        .iter()
        .map(|c| c.name)
        .collect::<Vec<_>>()
        .join(", ")
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
        format!(
            "INSERT INTO sessions ({}) SELECT * FROM UNNEST({unnest})
             ON CONFLICT (acct_unique_id) DO UPDATE SET\n    {}\n RETURNING {RETURNING}",
            col_list(),
            conflict_sets(true)
        )
    })
}

fn sqlite_upsert_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        // Plain `?`: SQLite looks numbered parameters up by name, one by one.
        let params = vec!["?"; COLUMNS.len()].join(", ");
        format!(
            "INSERT INTO sessions ({}) VALUES ({params})
             ON CONFLICT (acct_unique_id) DO UPDATE SET\n    {}\n RETURNING {RETURNING}",
            col_list(),
            conflict_sets(false)
        )
    })
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

fn active_from_row<R: Row>(row: &R) -> Result<(ActiveSession, bool), sqlx::Error>
where
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let stop: Option<i64> = row.try_get("acct_stop_time")?;
    let framed: Option<String> = row.try_get("framed_ip_address")?;
    Ok((
        ActiveSession {
            unique_id: row.try_get("acct_unique_id")?,
            session_id: row.try_get("acct_session_id")?,
            username: row.try_get("username")?,
            nas_ip_address: row.try_get("nas_ip_address")?,
            framed_ip: framed.and_then(|s| s.parse().ok()),
            framed_ipv6_prefix: row.try_get("framed_ipv6_prefix")?,
            delegated_ipv6_prefix: row.try_get("delegated_ipv6_prefix")?,
            interval: row.try_get("acct_interval")?,
            last_seen: row.try_get("last_seen")?,
        },
        stop.is_none(),
    ))
}

fn record_from_row<R: SessionColumns>(row: &R) -> Result<SessionRecord, sqlx::Error> {
    Ok(SessionRecord {
        values: row.session_values()?.map(Value::from),
    })
}

/// A page of sessions as a JSON array, the shape `SessionRecord` serializes to.
#[derive(Debug)]
pub struct SessionsJson {
    /// `[{…},…]`
    pub json: Vec<u8>,
    pub count: usize,
    /// The page's last session's (start time, unique id), when more sessions follow it.
    pub more_after: Option<(i64, String)>,
}

/// Where listed session rows go.
enum ListInto<'a> {
    Records(&'a mut Vec<SessionRecord>),
    /// Rendered up to `page` rows; the key of the page's last row becomes `more_after` when a
    /// row follows it.
    Json {
        out: &'a mut SessionsJson,
        page: usize,
        last: Option<(i64, String)>,
    },
}

impl ListInto<'_> {
    fn take<R: SessionColumns>(&mut self, row: &R) -> Result<(), sqlx::Error> {
        match self {
            ListInto::Records(out) => out.push(record_from_row(row)?),
            ListInto::Json { out, page, last } => {
                if out.count == *page {
                    out.more_after = last.take();
                    return Ok(());
                }
                if out.count > 0 {
                    out.json.push(b',');
                }
                let values = row.session_values()?;
                out.count += 1;
                if out.count == *page {
                    // A start time may be unknown (NULL): such sessions sort as 0.
                    let start = match values[c::START] {
                        ValueRef::Int(i) => i,
                        _ => 0,
                    };
                    let id = match values[c::ACCT_UNIQUE_ID] {
                        ValueRef::Text(t) => t,
                        _ => "",
                    };
                    *last = Some((start, id.to_string()));
                }
                push_session_json(&mut out.json, values);
            }
        }
        Ok(())
    }
}

/// A row of `SELECT <COLUMNS>`, whose values are read in place: no type check per column (the
/// select names the table's own columns) and no owned copy of any text.
trait SessionColumns {
    fn session_values(&self) -> Result<[ValueRef<'_>; c::COUNT], sqlx::Error>;
}

impl SessionColumns for sqlx::sqlite::SqliteRow {
    fn session_values(&self) -> Result<[ValueRef<'_>; c::COUNT], sqlx::Error> {
        values_of(self)
    }
}

impl SessionColumns for sqlx::postgres::PgRow {
    /// Reads each binary value by reference. Handing each column's `PgValueRef` (which
    /// carries a copy of the column's type) to `Decode` by value moved it twice per column,
    /// and those stack copies stalled on store forwarding: 16% of the server's CPU for a
    /// page of 50 sessions, as much as sending the page.
    fn session_values(&self) -> Result<[ValueRef<'_>; c::COUNT], sqlx::Error> {
        use sqlx::postgres::PgValueFormat;
        let mut values = [ValueRef::Null; c::COUNT];
        for (i, col) in COLUMNS.iter().enumerate() {
            // Bound where it lies rather than moved out of the `Result` with `?`.
            let got = self.try_get_raw(i);
            let raw = match got {
                Ok(ref raw) => raw,
                Err(e) => return Err(e),
            };
            if raw.format() != PgValueFormat::Binary {
                // Not sent by this select (sqlx asks for binary results); read it the
                // general way rather than misread it.
                return values_of(self);
            }
            let Ok(bytes) = raw.as_bytes() else {
                continue; // NULL
            };
            let bad =
                |source: Box<dyn std::error::Error + Send + Sync>| sqlx::Error::ColumnDecode {
                    index: col.name.to_string(),
                    source,
                };
            values[i] = match col.kind {
                Kind::Text => {
                    ValueRef::Text(std::str::from_utf8(bytes).map_err(|e| bad(e.into()))?)
                }
                Kind::Int => {
                    ValueRef::Int(i64::from_be_bytes(bytes.try_into().map_err(|_| {
                        bad(format!("{} bytes for an int8", bytes.len()).into())
                    })?))
                }
            };
        }
        Ok(values)
    }
}

/// The values of a row of `SELECT <COLUMNS>` through sqlx's `Decode`.
fn values_of<R: Row>(row: &R) -> Result<[ValueRef<'_>; c::COUNT], sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
    for<'r> &'r str: sqlx::Decode<'r, R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database>,
{
    use sqlx::{Decode, ValueRef as _};
    let mut values = [ValueRef::Null; c::COUNT];
    for (i, col) in COLUMNS.iter().enumerate() {
        let raw = row.try_get_raw(i)?;
        if raw.is_null() {
            continue;
        }
        let bad = |source| sqlx::Error::ColumnDecode {
            index: col.name.to_string(),
            source,
        };
        values[i] = match col.kind {
            Kind::Text => ValueRef::Text(<&str as Decode<R::Database>>::decode(raw).map_err(bad)?),
            Kind::Int => ValueRef::Int(<i64 as Decode<R::Database>>::decode(raw).map_err(bad)?),
        };
    }
    Ok(values)
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
        let splittable = !steps.iter().any(|s| matches!(s, Step::Close(..)));
        if let (Store::Postgres(p), true) = (self, splittable) {
            return fold_split(p, &steps, journal).await;
        }
        let mut out = BatchOutcome::default();
        on_pool!(self, p => {
            let mut tx = p.begin().await?;
            for step in &steps {
                let (sql, key, at, reap) = match step {
                    Step::Sessions(rows) => {
                        tx.upsert_sessions(rows, &mut out).await?;
                        continue;
                    }
                    Step::Leases(rows) => {
                        tx.upsert_leases(rows).await?;
                        continue;
                    }
                    Step::Close(sql, key, at, reap) => (sql, key, at, reap),
                };
                let ids: Vec<String> = sqlx::query_scalar(sql)
                    .bind(*key)
                    .bind(*at)
                    .fetch_all(&mut *tx)
                    .await?;
                if *reap {
                    out.reaped += ids.len();
                }
                out.closed.extend(ids);
            }
            tx.delete_journal(journal).await?;
            tx.commit().await?;
        });
        Ok(out)
    }

    /// Every open session, to rebuild the in-memory set at start.
    pub async fn sessions_open(&self) -> Result<Vec<ActiveSession>, StoreError> {
        let sql = format!("SELECT {RETURNING} FROM sessions WHERE acct_stop_time IS NULL");
        let mut out = Vec::new();
        on_pool!(self, p => {
            for row in sqlx::query(&sql).fetch_all(p).await? {
                out.push(active_from_row(&row)?.0);
            }
        });
        Ok(out)
    }

    /// What other instances changed: sessions still open that started at or after `since`,
    /// and the unique ids of sessions that stopped at or after it (event times, Unix seconds).
    pub async fn sessions_changed_since(
        &self,
        since: i64,
    ) -> Result<(Vec<ActiveSession>, Vec<String>), StoreError> {
        let opened = format!(
            "SELECT {RETURNING} FROM sessions WHERE acct_stop_time IS NULL AND acct_start_time >= $1"
        );
        let closed = "SELECT acct_unique_id FROM sessions WHERE acct_stop_time >= $1";
        let mut open = Vec::new();
        let ids: Vec<String>;
        on_pool!(self, p => {
            for row in sqlx::query(&opened).bind(since).fetch_all(p).await? {
                open.push(active_from_row(&row)?.0);
            }
            ids = sqlx::query_scalar(closed).bind(since).fetch_all(p).await?;
        });
        Ok((open, ids))
    }

    /// Sessions matching `q`, newest first (by start time, then unique id), each handed to
    /// `into`.
    async fn sessions_select(
        &self,
        q: &SessionQuery,
        into: &mut ListInto<'_>,
    ) -> Result<(), StoreError> {
        let mut sql = format!("SELECT {} FROM sessions WHERE 1 = 1", col_list());
        let mut n = 0;
        let mut next = |clause: &str| {
            n += 1;
            format!(" AND {clause} ${n}")
        };
        let texts = [
            (&q.username, "username ="),
            (&q.framed_ip_address, "framed_ip_address ="),
            (&q.calling_station_id, "calling_station_id ="),
            (&q.nas_ip_address, "nas_ip_address ="),
        ];
        for (v, clause) in texts {
            if v.is_some() {
                sql += &next(clause);
            }
        }
        if q.since.is_some() {
            sql += &next("acct_start_time >=");
        }
        if q.until.is_some() {
            sql += &next("acct_start_time <");
        }
        if q.after.is_some() {
            // Placeholders first appear in increasing order (SQLite binds by first use).
            sql += &keyset_after(&mut n, "acct_start_time", "acct_unique_id", "<");
        }
        if q.open_only {
            sql += " AND acct_stop_time IS NULL";
        }
        if q.closed_only {
            sql += " AND acct_stop_time IS NOT NULL";
        }
        sql += &format!(
            " ORDER BY acct_start_time DESC, acct_unique_id DESC LIMIT {}",
            q.limit.max(0)
        );
        on_pool!(self, p => {
            let mut query = sqlx::query(&sql);
            for s in texts.iter().filter_map(|(v, _)| v.as_deref()) {
                query = query.bind(s);
            }
            for t in [q.since, q.until].into_iter().flatten() {
                query = query.bind(t);
            }
            if let Some((start, id)) = &q.after {
                query = query.bind(*start).bind(id.as_str());
            }
            for row in query.fetch_all(p).await? {
                into.take(&row)?;
            }
        });
        Ok(())
    }

    /// Sessions matching `q`, newest first (by start time, then unique id).
    pub async fn sessions_list(&self, q: &SessionQuery) -> Result<Vec<SessionRecord>, StoreError> {
        let mut out = Vec::new();
        self.sessions_select(q, &mut ListInto::Records(&mut out))
            .await?;
        Ok(out)
    }

    /// A page of at most `q.limit` sessions matching `q`, rendered as a JSON array straight
    /// from the rows (the API's session lists: no record built, no value copied twice).
    pub async fn sessions_page_json(&self, q: &SessionQuery) -> Result<SessionsJson, StoreError> {
        let page = usize::try_from(q.limit.max(0)).unwrap_or(0);
        let mut out = SessionsJson {
            json: Vec::with_capacity(1024 * (page + 1)),
            count: 0,
            more_after: None,
        };
        out.json.push(b'[');
        let probe = SessionQuery {
            limit: q.limit.max(0) + 1,
            ..q.clone()
        };
        let mut into = ListInto::Json {
            out: &mut out,
            page,
            last: None,
        };
        self.sessions_select(&probe, &mut into).await?;
        out.json.push(b']');
        Ok(out)
    }

    /// One session by its unique id.
    pub async fn session_get(&self, unique_id: &str) -> Result<SessionRecord, StoreError> {
        let sql = format!(
            "SELECT {} FROM sessions WHERE acct_unique_id = $1",
            col_list()
        );
        let row = on_pool!(self, p => match sqlx::query(&sql).bind(unique_id).fetch_optional(p).await? {
            Some(row) => Some(record_from_row(&row)?),
            None => None,
        });
        row.ok_or_else(|| StoreError::NotFound("session", unique_id.to_string()))
    }

    /// A subscriber's usage per UTC day of session start, oldest first: octets in and out,
    /// session seconds and sessions, for sessions that started in `[since, until)`.
    pub async fn usage_by_day(
        &self,
        username: &str,
        since: i64,
        until: i64,
    ) -> Result<Vec<DayUsage>, StoreError> {
        let sql = "SELECT acct_start_time / 86400 AS day,
                CAST(COALESCE(SUM(acct_input_octets), 0) AS BIGINT) AS input_octets,
                CAST(COALESCE(SUM(acct_output_octets), 0) AS BIGINT) AS output_octets,
                CAST(COALESCE(SUM(acct_session_time), 0) AS BIGINT) AS session_seconds,
                COUNT(*) AS sessions
             FROM sessions
             WHERE username = $1 AND acct_start_time >= $2 AND acct_start_time < $3
             GROUP BY acct_start_time / 86400 ORDER BY 1";
        let rows: Vec<DayUsage> = on_pool!(self, p => sqlx::query_as(sql)
            .bind(username)
            .bind(since)
            .bind(until)
            .fetch_all(p)
            .await?);
        Ok(rows)
    }

    /// Deletes closed sessions that stopped before `before` (Unix seconds). Returns how many.
    pub async fn sessions_prune(&self, before: i64) -> Result<u64, StoreError> {
        let sql = "DELETE FROM sessions WHERE acct_stop_time IS NOT NULL AND acct_stop_time < $1";
        let n =
            on_pool!(self, p => sqlx::query(sql).bind(before).execute(p).await?.rows_affected());
        Ok(n)
    }
}

/// The two-connection fold of [`Store::sessions_fold`]. Each half runs its share of every
/// step and commits as soon as it is done, without waiting for the other: a transaction
/// that held its row locks while it waited for its sibling could close a cycle with two
/// halves of another instance's fold that PostgreSQL cannot see (it sees only its own lock
/// waits), and both folds would hang. Every lock wait is PostgreSQL's own, in key order.
async fn fold_split(
    p: &sqlx::PgPool,
    steps: &[Step<'_>],
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

/// One step of a fold: rows in key order (the order every statement locks them in), or a
/// close (a NAS restart or a reaper's close: its SQL, key, time, and whether it is a reap).
enum Step<'a> {
    Sessions(Vec<&'a SessionRecord>),
    Leases(Vec<&'a LeaseChange>),
    Close(&'static str, &'a str, i64, bool),
}

impl<'a> Step<'a> {
    fn of(op: &'a BatchOp) -> Step<'a> {
        match op {
            BatchOp::Upsert(records) => {
                let mut rows: Vec<&SessionRecord> = records.iter().map(|r| &**r).collect();
                rows.sort_unstable_by(|x, y| x.unique_id().cmp(y.unique_id()));
                Step::Sessions(rows)
            }
            BatchOp::Leases(leases) => {
                let mut rows: Vec<&LeaseChange> = leases.iter().collect();
                rows.sort_unstable_by_key(|l| (l.pool, l.slot));
                Step::Leases(rows)
            }
            BatchOp::NasRestart { nas_ip_address, at } => {
                Step::Close(nas_restart_sql(), nas_ip_address, *at, false)
            }
            BatchOp::Reap {
                unique_id,
                last_seen,
            } => Step::Close(reap_sql(), unique_id, *last_seen, true),
        }
    }
}

/// Half `which` (0: the lower keys, 1: the upper) of every step, in one transaction.
async fn fold_half(
    p: &sqlx::PgPool,
    steps: &[Step<'_>],
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
            Step::Sessions(rows) => tx.upsert_sessions(half(rows, which), &mut out).await?,
            Step::Leases(rows) => tx.upsert_leases(half(rows, which)).await?,
            Step::Close(..) => unreachable!("a fold with closes is applied in one transaction"),
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
