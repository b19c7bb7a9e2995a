//! API tokens and the audit log.

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use edge_shared::store::{ApiToken, AuditEntry};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::envelope::{
    created, decode_id_cursor, limit_of, page, page_by_key, split_page, Answer, ApiError, ApiJson,
    ApiPath, ApiQuery, Created, Envelope, ErrorBody, PageQuery,
};
use super::ApiState;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenView {
    name: String,
    /// `read` or `write`.
    scope: String,
    /// Unix seconds.
    created_at: i64,
    /// Only in the answer to its creation; never stored or shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

impl From<ApiToken> for TokenView {
    fn from(t: ApiToken) -> Self {
        TokenView {
            name: t.name,
            scope: t.scope,
            created_at: t.created_at,
            token: None,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenCreate {
    name: String,
    /// `read` or `write`.
    scope: String,
}

/// Tokens in name order (never the tokens themselves).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "admin", params(PageQuery),
    responses((status = 200, body = Envelope<Vec<TokenView>>)), security(("bearer" = [])))]
pub async fn list_tokens(
    State(s): State<ApiState>,
    uri: Uri,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Answer<Vec<TokenView>> {
    let all: Vec<TokenView> = s
        .store
        .token_list()
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    page_by_key(&uri, all, |t| &t.name, &q)
}

/// Creates a token; the answer holds it once.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "admin", request_body = TokenCreate,
    responses((status = 201, body = Envelope<TokenView>), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_token(
    State(s): State<ApiState>,
    uri: Uri,
    ApiJson(b): ApiJson<TokenCreate>,
) -> Created<TokenView> {
    let (t, token) = crate::ops::tokens::create(&s.store, &b.name, &b.scope).await?;
    let name = t.name.clone();
    let mut v = TokenView::from(t);
    v.token = Some(token);
    created(&uri, &name, v)
}

/// Revokes a token at once.
#[utoipa::path(delete, path = "/api/v1/tokens/{name}", tag = "admin",
    params(("name" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn delete_token(
    State(s): State<ApiState>,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    s.store.token_remove(&name).await?;
    s.verifier().forget(&name);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditView {
    /// Unix microseconds.
    at_us: i64,
    /// `token:NAME` or `jwt:SUBJECT`.
    actor: String,
    method: String,
    path: String,
    status: i32,
    request_id: String,
}

impl From<AuditEntry> for AuditView {
    fn from(e: AuditEntry) -> Self {
        AuditView {
            at_us: e.at_us,
            actor: e.actor,
            method: e.method,
            path: e.path,
            status: e.status,
            request_id: e.request_id,
        }
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditFilter {
    actor: Option<String>,
    /// Page size, 1 to 1000 (default 50).
    limit: Option<usize>,
    cursor: Option<String>,
}

/// Every write made through the API, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "admin", params(AuditFilter),
    responses((status = 200, body = Envelope<Vec<AuditView>>)), security(("bearer" = [])))]
pub async fn list_audit(
    State(s): State<ApiState>,
    uri: Uri,
    ApiQuery(f): ApiQuery<AuditFilter>,
) -> Answer<Vec<AuditView>> {
    let limit = limit_of(f.limit)?;
    let before = decode_id_cursor(f.cursor.as_deref())?;
    let rows = s
        .store
        .audit_list(f.actor.as_deref(), before, limit as i64 + 1)
        .await?;
    let (rows, next) = split_page(rows, limit, |e| e.id.to_string());
    page(
        &uri,
        rows.into_iter().map(Into::into).collect(),
        limit,
        next,
    )
}
