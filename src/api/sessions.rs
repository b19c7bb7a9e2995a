//! Sessions (active and history), a subscriber's usage, and Disconnect/CoA.

use axum::extract::State;
use axum::http::Uri;
use axum::response::Response;
use edge_radius::coa::DynAuthKind;
use edge_shared::accounting::{Fields, SessionRecord, COLUMNS};
use edge_shared::store::SessionQuery;
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{IntoParams, ToSchema};

use super::envelope::{
    decode_pair_cursor, encode_cursor, limit_of, one, page_of_json, Answer, ApiError, ApiJson,
    ApiPath, ApiQuery, Envelope,
};
use super::ApiState;
use crate::ops::dynauth::{self, DynAuthResult};

/// A session: FreeRADIUS's radacct columns under our names; times in Unix seconds. With
/// `fields=`, only the fields asked for.
pub struct SessionView(pub SessionRecord, pub Fields);

impl Serialize for SessionView {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize_fields(s, self.1)
    }
}

/// `fields=a,b,…`: the session fields to return (default all).
fn fields_of(fields: Option<&str>) -> Result<Fields, ApiError> {
    fields.map_or(Ok(Fields::SHOWN), |list| {
        Fields::parse(list).map_err(|m| ApiError::invalid("fields", m))
    })
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SessionFields {
    /// Comma-separated session fields to return, as in the list (default all of them).
    fields: Option<String>,
}

/// Described from the column table the store and the writer use, so it cannot drift.
/// (`ComposeSchema` is what `#[derive(ToSchema)]` implements; `PartialSchema` follows.)
impl utoipa::__dev::ComposeSchema for SessionView {
    fn compose(_generics: Vec<RefOr<Schema>>) -> RefOr<Schema> {
        let mut o = ObjectBuilder::new();
        for col in COLUMNS.iter().filter(|c| c.name != "start_reported") {
            let t = match col.kind {
                edge_shared::accounting::Kind::Text => Type::String,
                edge_shared::accounting::Kind::Int => Type::Integer,
            };
            o = o.property(
                col.name,
                ObjectBuilder::new().schema_type(utoipa::openapi::schema::SchemaType::from_iter([
                    t,
                    Type::Null,
                ])),
            );
        }
        RefOr::T(Schema::Object(o.build()))
    }
}

impl ToSchema for SessionView {}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SessionFilter {
    /// `active` (open sessions), `closed` (history) or `all` (default).
    status: Option<String>,
    username: Option<String>,
    framed_ip_address: Option<String>,
    /// The caller's station id as the NAS reported it (MAC).
    calling_station_id: Option<String>,
    nas_ip_address: Option<String>,
    /// Sessions that started at or after this Unix time.
    since: Option<i64>,
    /// Sessions that started before this Unix time.
    until: Option<i64>,
    /// Page size, 1 to 1000 (default 50).
    limit: Option<usize>,
    cursor: Option<String>,
    /// Comma-separated session fields to return, for example
    /// `username,framed_ip_address,acct_start_time,acct_stop_time` (default all of them).
    /// A page of a few fields costs the database and the server less than whole sessions.
    fields: Option<String>,
}

/// Sessions, newest first.
#[utoipa::path(get, path = "/api/v1/sessions", tag = "sessions", params(SessionFilter),
    responses((status = 200, body = Envelope<Vec<SessionView>>)),
    security(("bearer" = [])))]
pub async fn list_sessions(
    State(s): State<ApiState>,
    uri: Uri,
    ApiQuery(f): ApiQuery<SessionFilter>,
) -> Result<Response, ApiError> {
    let limit = limit_of(f.limit)?;
    let fields = fields_of(f.fields.as_deref())?;
    let (open_only, closed_only) = match f.status.as_deref() {
        None | Some("all") => (false, false),
        Some("active") => (true, false),
        Some("closed") => (false, true),
        Some(_) => return Err(ApiError::invalid("status", "active, closed or all")),
    };
    let after = f
        .cursor
        .as_deref()
        .map(decode_pair_cursor::<i64, String>)
        .transpose()?;
    let rows = s
        .store
        .sessions_page_json(&SessionQuery {
            username: f.username,
            framed_ip_address: f.framed_ip_address,
            calling_station_id: f.calling_station_id,
            nas_ip_address: f.nas_ip_address,
            open_only,
            closed_only,
            since: f.since,
            until: f.until,
            after,
            limit: limit as i64,
            fields,
        })
        .await?;
    let next = rows
        .more_after
        .map(|(start, id)| encode_cursor(&format!("{start}:{id}")));
    Ok(page_of_json(&uri, &rows.json, rows.count, limit, next))
}

/// One session by its unique id (Acct-Unique-Session-Id).
#[utoipa::path(get, path = "/api/v1/sessions/{id}", tag = "sessions",
    params(("id" = String, Path, description = "the session's unique id"), SessionFields),
    responses((status = 200, body = Envelope<SessionView>),
        (status = 404, body = super::envelope::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_session(
    State(s): State<ApiState>,
    uri: Uri,
    ApiPath(id): ApiPath<String>,
    ApiQuery(f): ApiQuery<SessionFields>,
) -> Answer<SessionView> {
    let fields = fields_of(f.fields.as_deref())?;
    one(&uri, SessionView(s.store.session_get(&id).await?, fields))
}

/// Sends a Disconnect-Request for the session to its NAS and reports the answer.
#[utoipa::path(post, path = "/api/v1/sessions/{id}/disconnect", tag = "sessions",
    params(("id" = String, Path, description = "the session's unique id")),
    responses((status = 200, body = Envelope<DynAuthResult>),
        (status = 404, body = super::envelope::ErrorBody),
        (status = 409, body = super::envelope::ErrorBody)),
    security(("bearer" = [])))]
pub async fn disconnect_session(
    State(s): State<ApiState>,
    uri: Uri,
    ApiPath(id): ApiPath<String>,
) -> Answer<DynAuthResult> {
    let r = dynauth::one(&s.store, &id, DynAuthKind::Disconnect, &[], s.retry()).await?;
    one(&uri, r)
}

/// A CoA-Request's new authorization: a plan's reply attributes, attributes, or both.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CoaBody {
    /// Send this plan's reply attributes (its rate limits and the like).
    #[serde(default)]
    plan: Option<String>,
    /// `Attribute = value` lines, by dictionary name.
    #[serde(default)]
    attributes: Vec<String>,
}

/// Sends a CoA-Request (new rate attributes, say) for the session and reports the answer.
#[utoipa::path(post, path = "/api/v1/sessions/{id}/coa", tag = "sessions",
    params(("id" = String, Path, description = "the session's unique id")),
    request_body = CoaBody,
    responses((status = 200, body = Envelope<DynAuthResult>),
        (status = 404, body = super::envelope::ErrorBody),
        (status = 422, body = super::envelope::ErrorBody)),
    security(("bearer" = [])))]
pub async fn coa_session(
    State(s): State<ApiState>,
    uri: Uri,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<CoaBody>,
) -> Answer<DynAuthResult> {
    let pairs =
        dynauth::coa_pairs(&s.store, &s.dict, body.plan.as_deref(), &body.attributes).await?;
    let r = dynauth::one(&s.store, &id, DynAuthKind::Coa, &pairs, s.retry()).await?;
    one(&uri, r)
}

/// Disconnects every open session of the subscriber; one result per session.
#[utoipa::path(post, path = "/api/v1/subscribers/{username}/disconnect", tag = "subscribers",
    params(("username" = String, Path)),
    responses((status = 200, body = Envelope<Vec<DynAuthResult>>)),
    security(("bearer" = [])))]
pub async fn disconnect_subscriber(
    State(s): State<ApiState>,
    uri: Uri,
    ApiPath(username): ApiPath<String>,
) -> Answer<Vec<DynAuthResult>> {
    s.store.subscriber_get(&username).await?;
    let r = dynauth::all_of(&s.store, &username, DynAuthKind::Disconnect, s.retry()).await?;
    one(&uri, r)
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UsageFilter {
    /// `day` (default) or `month`, in UTC, by session start.
    period: Option<String>,
    /// Unix seconds; default 31 days (day) or 366 days (month) ago.
    since: Option<i64>,
    /// Unix seconds; default now.
    until: Option<i64>,
}

/// Usage in one period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct UsageView {
    /// `2026-11-21` or `2026-11`.
    period: String,
    input_octets: i64,
    output_octets: i64,
    session_seconds: i64,
    sessions: i64,
}

/// A subscriber's usage totals per day or month.
#[utoipa::path(get, path = "/api/v1/subscribers/{username}/usage", tag = "subscribers",
    params(("username" = String, Path), UsageFilter),
    responses((status = 200, body = Envelope<Vec<UsageView>>)),
    security(("bearer" = [])))]
pub async fn subscriber_usage(
    State(s): State<ApiState>,
    uri: Uri,
    ApiPath(username): ApiPath<String>,
    ApiQuery(f): ApiQuery<UsageFilter>,
) -> Answer<Vec<UsageView>> {
    let monthly = match f.period.as_deref() {
        None | Some("day") => false,
        Some("month") => true,
        Some(_) => return Err(ApiError::invalid("period", "day or month")),
    };
    // Default: through tomorrow, so a session that started this second counts.
    let until = f.until.unwrap_or_else(|| super::now() + 86_400);
    let since = f
        .since
        .unwrap_or(until - if monthly { 366 } else { 31 } * 86_400);
    s.store.subscriber_get(&username).await?;
    let days = s.store.usage_by_day(&username, since, until).await?;
    let mut out: Vec<UsageView> = Vec::new();
    for d in days {
        let (y, mo, day) = civil_from_days(d.day);
        let period = if monthly {
            format!("{y:04}-{mo:02}")
        } else {
            format!("{y:04}-{mo:02}-{day:02}")
        };
        match out.last_mut() {
            Some(last) if last.period == period => {
                last.input_octets += d.input_octets;
                last.output_octets += d.output_octets;
                last.session_seconds += d.session_seconds;
                last.sessions += d.sessions;
            }
            _ => out.push(UsageView {
                period,
                input_octets: d.input_octets,
                output_octets: d.output_octets,
                session_seconds: d.session_seconds,
                sessions: d.sessions,
            }),
        }
    }
    one(&uri, out)
}

/// Year, month, day of a count of days since 1970-01-01 (proleptic Gregorian; H. Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::civil_from_days;

    #[test]
    fn days_to_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_778), (2026, 11, 21));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }
}
