//! The API's response shapes: `{"data", "meta", "links"}` for answers and
//! `{"error": {"code", "message", "details", "request_id"}}` for refusals, with stable codes;
//! and extractors whose rejections use the same error shape.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use edge_shared::store::StoreError;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::ops::OpError;

tokio::task_local! {
    /// The id of the request being served (from `X-Request-Id` or made up).
    pub static REQUEST_ID: String;
}

pub fn request_id() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

/// An answer: `data`, plus `meta` (request id, and for lists the count and the cursor of
/// the next page) and `links` (this page, the next).
#[derive(Debug, Serialize, ToSchema)]
pub struct Envelope<T> {
    pub data: T,
    pub meta: Meta,
    pub links: Links,
}

#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Meta {
    pub request_id: String,
    /// Lists: items in this page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<usize>,
    /// Lists: the page size asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Lists: pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Links {
    #[serde(rename = "self")]
    pub this: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

pub type Answer<T> = Result<Json<Envelope<T>>, ApiError>;

/// One object.
pub fn one<T>(uri: &axum::http::Uri, data: T) -> Answer<T> {
    Ok(Json(Envelope {
        data,
        meta: Meta {
            request_id: request_id(),
            ..Meta::default()
        },
        links: Links {
            this: uri.to_string(),
            next: None,
        },
    }))
}

/// A page of a list; `next` is the cursor after its last item when more may follow.
pub fn page<T>(
    uri: &axum::http::Uri,
    items: Vec<T>,
    limit: usize,
    next: Option<String>,
) -> Answer<Vec<T>> {
    let (meta, links) = page_meta(uri, items.len(), limit, next);
    Ok(Json(Envelope {
        data: items,
        meta,
        links,
    }))
}

/// A page whose items are already a JSON array (`data`), in the same envelope as `page`.
pub fn page_of_json(
    uri: &axum::http::Uri,
    items_json: &[u8],
    count: usize,
    limit: usize,
    next: Option<String>,
) -> Response {
    let (meta, links) = page_meta(uri, count, limit, next);
    let mut body = Vec::with_capacity(items_json.len() + 512);
    body.extend_from_slice(b"{\"data\":");
    body.extend_from_slice(items_json);
    body.extend_from_slice(b",\"meta\":");
    // Writing plain structs to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut body, &meta);
    body.extend_from_slice(b",\"links\":");
    let _ = serde_json::to_writer(&mut body, &links);
    body.push(b'}');
    (
        [(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

fn page_meta(
    uri: &axum::http::Uri,
    count: usize,
    limit: usize,
    next: Option<String>,
) -> (Meta, Links) {
    let next_link = next.as_ref().map(|c| {
        let kept: Vec<&str> = uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|kv| !kv.is_empty() && !kv.starts_with("cursor="))
            .collect();
        let mut q = kept.join("&");
        if !q.is_empty() {
            q.push('&');
        }
        format!("{}?{q}cursor={c}", uri.path())
    });
    (
        Meta {
            request_id: request_id(),
            count: Some(count),
            limit: Some(limit),
            next_cursor: next,
        },
        Links {
            this: uri.to_string(),
            next: next_link,
        },
    )
}

/// Page size: `limit` if given (1 to 1000), else 50.
pub fn limit_of(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit {
        None => Ok(50),
        Some(n @ 1..=1000) => Ok(n),
        Some(_) => Err(ApiError::invalid("limit", "must be between 1 and 1000")),
    }
}

/// Opaque cursors: base64url of the position text.
pub fn encode_cursor(position: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(position)
}

pub fn decode_cursor(cursor: &str) -> Result<String, ApiError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| ApiError::invalid("cursor", "not a cursor this API gave out"))
}

/// A cursor that holds a position of two keys, `first:second` (sessions, leases).
pub fn decode_pair_cursor<A: std::str::FromStr, B: std::str::FromStr>(
    cursor: &str,
) -> Result<(A, B), ApiError> {
    decode_cursor(cursor)?
        .split_once(':')
        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
        .ok_or_else(|| ApiError::invalid("cursor", "not a cursor this API gave out"))
}

/// A cursor that holds a row id (audit records, tasks).
pub fn decode_id_cursor(cursor: Option<&str>) -> Result<Option<i64>, ApiError> {
    cursor
        .map(|c| {
            decode_cursor(c)?
                .parse::<i64>()
                .map_err(|_| ApiError::invalid("cursor", "not a cursor this API gave out"))
        })
        .transpose()
}

/// Rows read with `limit + 1`: the extra row only tells that more follow. Returns the page
/// and, when more follow, the cursor made of `key` of its last row.
pub fn split_page<R>(
    mut rows: Vec<R>,
    limit: usize,
    key: impl Fn(&R) -> String,
) -> (Vec<R>, Option<String>) {
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = if more {
        rows.last().map(|r| encode_cursor(&key(r)))
    } else {
        None
    };
    (rows, next)
}

/// `limit` and `cursor` of a list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1 to 1000 (default 50).
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

/// A page of a small table read whole (plans, NAS, pools, tokens), in `key` order; the
/// cursor is the last key of the page before.
pub fn page_by_key<T>(
    uri: &axum::http::Uri,
    mut items: Vec<T>,
    key: impl Fn(&T) -> &str,
    q: &PageQuery,
) -> Answer<Vec<T>> {
    let limit = limit_of(q.limit)?;
    let after = q.cursor.as_deref().map(decode_cursor).transpose()?;
    items.sort_by(|a, b| key(a).cmp(key(b)));
    let rest: Vec<T> = items
        .into_iter()
        .filter(|i| after.as_deref().is_none_or(|a| key(i) > a))
        .collect();
    let (rest, next) = split_page(rest, limit, |i| key(i).to_string());
    page(uri, rest, limit, next)
}

/// A refusal. `code` is stable; `message` is for people.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Vec<Detail>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Detail {
    pub field: String,
    pub message: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorFields,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorFields {
    /// Stable: `unauthorized`, `forbidden`, `not_found`, `method_not_allowed`,
    /// `invalid_json`, `validation_failed`, `invalid_query`, `invalid_path`,
    /// `unsupported_media_type`, `payload_too_large`, `conflict`, `already_exists`,
    /// `busy`, `unavailable`, `timeout`.
    pub code: String,
    pub message: String,
    pub details: Vec<Detail>,
    pub request_id: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            details: Vec::new(),
        }
    }

    pub fn invalid(field: &str, message: impl Into<String>) -> ApiError {
        let message = message.into();
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "validation_failed",
            message: format!("{field}: {message}"),
            details: vec![Detail {
                field: field.to_string(),
                message,
            }],
        }
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorFields {
                code: self.code.to_string(),
                message: self.message,
                details: self.details,
                request_id: request_id(),
            },
        };
        let mut r = (self.status, Json(body)).into_response();
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            r.headers_mut()
                .insert("retry-after", HeaderValue::from_static("1"));
        }
        r
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound(..) => ApiError::not_found(e.to_string()),
            StoreError::Exists(..) => {
                ApiError::new(StatusCode::CONFLICT, "already_exists", e.to_string())
            }
            StoreError::InUse(..) | StoreError::Conflict(_) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            StoreError::UnsupportedUrl | StoreError::Sql(_) | StoreError::Migrate(_) => {
                tracing::warn!(error = %e, "api: database error");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the database is not answering; try again",
                )
            }
        }
    }
}

impl From<OpError> for ApiError {
    fn from(e: OpError) -> ApiError {
        match e {
            OpError::Invalid { field, message } => ApiError::invalid(field, message),
            OpError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            OpError::Store(s) => s.into(),
        }
    }
}

/// `Json<T>` whose rejections are API errors: 400 for broken JSON, 422 for JSON of the
/// wrong shape (unknown fields included), 413, 415.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    /// Reads the bytes itself (rather than through `Json`) to refuse NUL before parsing, so
    /// it checks the content type as `Json` would.
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|m| {
                let m = m.trim().to_ascii_lowercase();
                m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
            })
            .unwrap_or(false);
        if !json {
            return Err(json_rejection(JsonRejection::MissingJsonContentType(
                Default::default(),
            )));
        }
        let bytes = match axum::body::Bytes::from_request(req, state).await {
            Ok(b) => b,
            Err(e) => return Err(json_rejection(JsonRejection::BytesRejection(e))),
        };
        if has_nul_escape(&bytes) {
            return Err(nul_refused("invalid_json", "body"));
        }
        match Json::<T>::from_bytes(&bytes) {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(r) => Err(json_rejection(r)),
        }
    }
}

/// Text with NUL can be neither a name nor an address, and PostgreSQL refuses it in text
/// columns: it is refused here, as bad input, before it can become a database error.
fn has_nul_escape(b: &[u8]) -> bool {
    b.windows(6)
        .any(|w| w[0] == b'\\' && w[1] == b'u' && &w[2..] == b"0000")
}

fn has_nul_percent(s: &str) -> bool {
    s.as_bytes()
        .windows(3)
        .any(|w| w[0] == b'%' && w[1] == b'0' && w[2] == b'0')
}

fn nul_refused(code: &'static str, place: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        code,
        format!("the {place} holds a NUL character"),
    )
}

fn json_rejection(r: JsonRejection) -> ApiError {
    match r {
        JsonRejection::JsonDataError(e) => {
            // serde's text after the axum prefix names the field and the problem.
            let text = std::error::Error::source(&e)
                .map(|s| s.to_string())
                .unwrap_or_else(|| e.body_text());
            let (field, message) = match text.split_once(": ") {
                Some((path, m)) if !path.contains(' ') => (path.to_string(), m.to_string()),
                _ => ("body".to_string(), text.clone()),
            };
            ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: "validation_failed",
                message: text,
                details: vec![Detail { field, message }],
            }
        }
        JsonRejection::JsonSyntaxError(e) => {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", e.body_text())
        }
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as Content-Type: application/json",
        ),
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the body is larger than this API accepts",
            )
        }
        other => ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", other.body_text()),
    }
}

/// `Query<T>` with API errors (400 `invalid_query`, unknown parameters included).
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if parts.uri.query().is_some_and(has_nul_percent) {
            return Err(nul_refused("invalid_query", "query"));
        }
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.body_text()))
    }
}

/// `Path<T>` with API errors (400 `invalid_path`).
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if has_nul_percent(parts.uri.path()) {
            return Err(nul_refused("invalid_path", "path"));
        }
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", e.body_text()))
    }
}

pub type Created<T> = Result<
    (
        StatusCode,
        [(axum::http::HeaderName, String); 1],
        Json<Envelope<T>>,
    ),
    ApiError,
>;

/// 201 with a `Location` of the new item (`uri` is the collection).
pub fn created<T>(uri: &axum::http::Uri, key: &str, data: T) -> Created<T> {
    created_at(
        format!("{}/{}", uri.path().trim_end_matches('/'), key),
        data,
    )
}

/// 201 with `location` as the `Location` (and `links.self`).
pub fn created_at<T>(location: String, data: T) -> Created<T> {
    Ok((
        StatusCode::CREATED,
        [(axum::http::header::LOCATION, location.clone())],
        Json(Envelope {
            data,
            meta: Meta {
                request_id: request_id(),
                ..Meta::default()
            },
            links: Links {
                this: location,
                next: None,
            },
        }),
    ))
}
