//! The REST API's own tables: bearer tokens (only their SHA-256 is stored) and the audit log.

use serde::Serialize;

use super::{on_pool, unique_violation, Store, StoreError};

/// A token as listed: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    /// `read` or `write`.
    pub scope: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// One write made through the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct AuditEntry {
    pub id: i64,
    /// Unix microseconds.
    pub at_us: i64,
    pub actor: String,
    pub method: String,
    pub path: String,
    pub status: i32,
    pub request_id: String,
}

impl Store {
    /// Stores a token under `name` by its hash.
    pub async fn token_create(
        &self,
        name: &str,
        scope: &str,
        token_hash: &str,
        now: i64,
    ) -> Result<ApiToken, StoreError> {
        let row: Result<ApiToken, sqlx::Error> = on_pool!(self, p => sqlx::query_as(
            "INSERT INTO api_tokens (name, scope, token_hash, created_at) VALUES ($1, $2, $3, $4)
             RETURNING id, name, scope, created_at",
        )
        .bind(name)
        .bind(scope)
        .bind(token_hash)
        .bind(now)
        .fetch_one(p)
        .await);
        row.map_err(|e| unique_violation(e, "token", name))
    }

    pub async fn token_list(&self) -> Result<Vec<ApiToken>, StoreError> {
        let rows = on_pool!(self, p => sqlx::query_as(
            "SELECT id, name, scope, created_at FROM api_tokens ORDER BY name",
        )
        .fetch_all(p)
        .await?);
        Ok(rows)
    }

    /// The token whose hash this is, if any.
    pub async fn token_by_hash(&self, token_hash: &str) -> Result<Option<ApiToken>, StoreError> {
        let row = on_pool!(self, p => sqlx::query_as(
            "SELECT id, name, scope, created_at FROM api_tokens WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(p)
        .await?);
        Ok(row)
    }

    pub async fn token_remove(&self, name: &str) -> Result<(), StoreError> {
        let n = on_pool!(self, p => sqlx::query("DELETE FROM api_tokens WHERE name = $1")
            .bind(name)
            .execute(p)
            .await?
            .rows_affected());
        match n {
            0 => Err(StoreError::NotFound("token", name.to_string())),
            _ => Ok(()),
        }
    }

    pub async fn audit_append(&self, e: &AuditEntry) -> Result<(), StoreError> {
        on_pool!(self, p => sqlx::query(
            "INSERT INTO audit_log (at_us, actor, method, path, status, request_id)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(e.at_us)
        .bind(&e.actor)
        .bind(&e.method)
        .bind(&e.path)
        .bind(e.status)
        .bind(&e.request_id)
        .execute(p)
        .await
        .map(|_| ())?);
        Ok(())
    }

    /// Audit entries newest first, with ids below `before` (a cursor), at most `limit`.
    pub async fn audit_list(
        &self,
        actor: Option<&str>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = on_pool!(self, p => sqlx::query_as(
            "SELECT id, at_us, actor, method, path, status, request_id FROM audit_log
             WHERE id < $1 AND ($2 IS NULL OR actor = $2) ORDER BY id DESC LIMIT $3",
        )
        .bind(before.unwrap_or(i64::MAX))
        .bind(actor)
        .bind(limit)
        .fetch_all(p)
        .await?);
        Ok(rows)
    }
}
