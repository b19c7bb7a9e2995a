//! Accounting sessions in the database, as read: the open sessions at start, what other
//! instances changed, and the listings, single reads, usage and pruning of the CLI and API.
//! Writing them is the fold's (`fold.rs`).

use sqlx::Row;

use super::{keyset_after, on_pool, Store, StoreError};
use crate::accounting::{
    c, push_session_json, ActiveSession, Fields, Kind, SessionRecord, Value, ValueRef, COLUMNS,
};

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
    /// The columns a JSON page shows (`sessions_page_json`); records always have them all.
    pub fields: Fields,
}

/// The columns `active_from_row` reads.
pub(super) const RETURNING: &str = "acct_unique_id, acct_session_id, username, nas_ip_address, \
     framed_ip_address, framed_ipv6_prefix, delegated_ipv6_prefix, acct_interval, last_seen, \
     acct_stop_time";

/// The table's columns in `COLUMNS` order, as a select list (built once: every lookup
/// names them).
pub(super) fn col_list() -> &'static str {
    static LIST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    LIST.get_or_init(|| names_of(Fields::ALL))
}

/// Some of the table's columns, in `COLUMNS` order, as a select list. The two sets every
/// request without `fields=` selects (whole records, and a page of whole sessions) are built
/// once; a projection's list is built per request.
fn select_list(fields: Fields) -> std::borrow::Cow<'static, str> {
    static SHOWN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    if fields == Fields::ALL {
        col_list().into()
    } else if fields == Fields::SHOWN {
        SHOWN
            .get_or_init(|| names_of(Fields::SHOWN))
            .as_str()
            .into()
    } else {
        names_of(fields).into()
    }
}

fn names_of(fields: Fields) -> String {
    fields
        .positions()
        .map(|i| COLUMNS[i].name)
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn active_from_row<R: Row>(row: &R) -> Result<(ActiveSession, bool), sqlx::Error>
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
        values: row.session_values(Fields::ALL)?.map(Value::from),
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
    /// Rendered up to `page` rows, showing `fields`; the key of the page's last row becomes
    /// `more_after` when a row follows it.
    Json {
        out: &'a mut SessionsJson,
        page: usize,
        last: Option<(i64, String)>,
        fields: Fields,
    },
}

impl ListInto<'_> {
    /// The columns the select must name.
    fn selected(&self) -> Fields {
        match self {
            ListInto::Records(_) => Fields::ALL,
            // The page's key (start time, unique id) is read whether it is shown or not.
            ListInto::Json { fields, .. } => fields.with(c::START).with(c::ACCT_UNIQUE_ID),
        }
    }

    fn take<R: SessionColumns>(&mut self, row: &R) -> Result<(), sqlx::Error> {
        let selected = self.selected();
        match self {
            ListInto::Records(out) => out.push(record_from_row(row)?),
            ListInto::Json {
                out,
                page,
                last,
                fields,
            } => {
                if out.count == *page {
                    out.more_after = last.take();
                    return Ok(());
                }
                if out.count > 0 {
                    out.json.push(b',');
                }
                let values = row.session_values(selected)?;
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
                push_session_json(&mut out.json, values, *fields);
            }
        }
        Ok(())
    }
}

/// A row of `SELECT <some of COLUMNS, in order>`, whose values are read in place: no type
/// check per column (the select names the table's own columns) and no owned copy of any
/// text. The columns not selected read as NULL.
trait SessionColumns {
    fn session_values(&self, selected: Fields) -> Result<[ValueRef<'_>; c::COUNT], sqlx::Error>;
}

impl SessionColumns for sqlx::sqlite::SqliteRow {
    fn session_values(&self, selected: Fields) -> Result<[ValueRef<'_>; c::COUNT], sqlx::Error> {
        values_of(self, selected)
    }
}

impl SessionColumns for sqlx::postgres::PgRow {
    /// Reads each binary value by reference. Handing each column's `PgValueRef` (which
    /// carries a copy of the column's type) to `Decode` by value moved it twice per column,
    /// and those stack copies stalled on store forwarding: 16% of the server's CPU for a
    /// page of 50 sessions, as much as sending the page.
    fn session_values(&self, selected: Fields) -> Result<[ValueRef<'_>; c::COUNT], sqlx::Error> {
        use sqlx::postgres::PgValueFormat;
        let mut values = [ValueRef::Null; c::COUNT];
        for (j, i) in selected.positions().enumerate() {
            let col = &COLUMNS[i];
            // Bound where it lies rather than moved out of the `Result` with `?`.
            let got = self.try_get_raw(j);
            let raw = match got {
                Ok(ref raw) => raw,
                Err(e) => return Err(e),
            };
            if raw.format() != PgValueFormat::Binary {
                // Not sent by this select (sqlx asks for binary results); read it the
                // general way rather than misread it.
                return values_of(self, selected);
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

/// The values of a row of `SELECT <the selected COLUMNS>` through sqlx's `Decode`.
fn values_of<R: Row>(row: &R, selected: Fields) -> Result<[ValueRef<'_>; c::COUNT], sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
    for<'r> &'r str: sqlx::Decode<'r, R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database>,
{
    use sqlx::{Decode, ValueRef as _};
    let mut values = [ValueRef::Null; c::COUNT];
    for (j, i) in selected.positions().enumerate() {
        let col = &COLUMNS[i];
        let raw = row.try_get_raw(j)?;
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

impl Store {
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
        let mut sql = format!(
            "SELECT {} FROM sessions WHERE 1 = 1",
            select_list(into.selected())
        );
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
        // The statement with its values bound, for either backend.
        macro_rules! bound {
            () => {{
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
                query
            }};
        }
        match self {
            // The API's lookups: a parked connection, without sqlx's test round trip.
            Store::Postgres(pool, parked) => {
                let mut hot = parked.take(pool).await?;
                for row in bound!().fetch_all(hot.conn()).await? {
                    into.take(&row)?;
                }
                hot.park();
            }
            Store::Sqlite(pool) => {
                for row in bound!().fetch_all(pool).await? {
                    into.take(&row)?;
                }
            }
        }
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
            fields: q.fields,
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
