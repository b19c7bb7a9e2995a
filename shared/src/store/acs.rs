//! The ACS's tables as operators and sessions read them: devices, their parameters, tasks,
//! presets and files. Sessions' writes go in batches through `acs_batch.rs`.

use serde::Serialize;

use super::{changed, on_pool, unique_violation, Store, StoreError};

/// A device as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct DeviceRow {
    pub id: String,
    pub oui: String,
    pub product_class: String,
    pub serial_number: String,
    pub manufacturer: String,
    pub model: String,
    pub software_version: String,
    pub hardware_version: String,
    pub ip: String,
    pub data_model: String,
    pub cwmp_version: String,
    pub first_inform_us: i64,
    pub last_inform_us: i64,
    pub last_events: String,
    pub connection_request_url: String,
    pub tags: String,
    pub preset_fingerprint: Option<i64>,
}

const DEVICE_COLUMNS: &str = "id, oui, product_class, serial_number, manufacturer, model, \
    software_version, hardware_version, ip, data_model, cwmp_version, first_inform_us, \
    last_inform_us, last_events, connection_request_url, tags, preset_fingerprint";

/// What a session needs of its device beyond the Inform.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct DeviceState {
    pub tags: String,
    pub preset_fingerprint: Option<i64>,
}

/// Where and how to send a connection request.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct ConnectionRequestTarget {
    pub connection_request_url: String,
    pub connection_request_username: String,
    pub connection_request_password: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ParameterView {
    pub name: String,
    pub value: String,
    #[sqlx(rename = "kind")]
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub updated_us: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct TaskRow {
    pub id: i64,
    pub device_id: String,
    pub kind: String,
    pub spec: String,
    pub status: String,
    pub attempts: i32,
    pub not_before_us: i64,
    pub created_us: i64,
    pub updated_us: i64,
    pub result: Option<String>,
    pub fault_code: Option<i32>,
    pub fault_string: Option<String>,
}

const TASK_COLUMNS: &str = "id, device_id, kind, spec, status, attempts, not_before_us, \
    created_us, updated_us, result, fault_code, fault_string";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct FileRow {
    pub name: String,
    pub file_type: String,
    pub size: i64,
    pub sha256: String,
    pub created_us: i64,
}

/// Filters for the device listing.
#[derive(Debug, Clone, Default)]
pub struct DeviceQuery {
    pub after: Option<String>,
    pub limit: i64,
    pub product_class: Option<String>,
    pub tag: Option<String>,
}

impl Store {
    pub async fn device_state(&self, id: &str) -> Result<Option<DeviceState>, StoreError> {
        let row = on_pool!(self, p => sqlx::query_as(
            "SELECT tags, preset_fingerprint FROM cwmp_devices WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(p)
        .await?);
        Ok(row)
    }

    pub async fn device_get(&self, id: &str) -> Result<DeviceRow, StoreError> {
        let sql = format!("SELECT {DEVICE_COLUMNS} FROM cwmp_devices WHERE id = $1");
        let row: Option<DeviceRow> = on_pool!(self, p => sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(p)
            .await?);
        row.ok_or_else(|| StoreError::NotFound("device", id.to_string()))
    }

    /// Devices in id order after `q.after`.
    pub async fn device_list(&self, q: &DeviceQuery) -> Result<Vec<DeviceRow>, StoreError> {
        let sql = format!(
            "SELECT {DEVICE_COLUMNS} FROM cwmp_devices
             WHERE ($1 IS NULL OR id > $1) AND ($2 IS NULL OR product_class = $2)
               AND ($3 IS NULL OR tags LIKE $3)
             ORDER BY id LIMIT $4"
        );
        // Tags are a JSON array of strings: `"tag"` with its quotes is one whole tag.
        let tag = q.tag.as_ref().map(|t| {
            let quoted = serde_json::to_string(t).unwrap_or_default();
            format!("%{}%", quoted.replace('%', "\\%").replace('_', "\\_"))
        });
        let rows = on_pool!(self, p => sqlx::query_as(&sql)
            .bind(q.after.as_deref())
            .bind(q.product_class.as_deref())
            .bind(tag.as_deref())
            .bind(q.limit)
            .fetch_all(p)
            .await?);
        Ok(rows)
    }

    pub async fn device_count(&self) -> Result<i64, StoreError> {
        let n: (i64,) = on_pool!(self, p => sqlx::query_as("SELECT COUNT(*) FROM cwmp_devices")
            .fetch_one(p)
            .await?);
        Ok(n.0)
    }

    /// Replaces a device's tags (a JSON array); its presets are checked again.
    pub async fn device_set_tags(&self, id: &str, tags: &[String]) -> Result<(), StoreError> {
        let json = serde_json::to_string(tags).unwrap_or_else(|_| "[]".into());
        let n = on_pool!(self, p => sqlx::query(
            "UPDATE cwmp_devices SET tags = $2, preset_fingerprint = NULL, changed_us = $3
             WHERE id = $1",
        )
        .bind(id)
        .bind(json)
        .bind(crate::leases::unix_micros())
        .execute(p)
        .await?
        .rows_affected());
        changed(n, "device", &id)
    }

    /// Sets the credentials for connection requests to this device, and those it must
    /// authenticate with (empty: the global ones).
    pub async fn device_set_credentials(
        &self,
        id: &str,
        connection_request: Option<(&str, &str)>,
        auth: Option<(&str, &str)>,
    ) -> Result<(), StoreError> {
        let n = on_pool!(self, p => sqlx::query(
            "UPDATE cwmp_devices SET
                connection_request_username = COALESCE($2, connection_request_username),
                connection_request_password = COALESCE($3, connection_request_password),
                auth_username = COALESCE($4, auth_username),
                auth_password = COALESCE($5, auth_password),
                changed_us = $6
             WHERE id = $1",
        )
        .bind(id)
        .bind(connection_request.map(|c| c.0))
        .bind(connection_request.map(|c| c.1))
        .bind(auth.map(|c| c.0))
        .bind(auth.map(|c| c.1))
        .bind(crate::leases::unix_micros())
        .execute(p)
        .await?
        .rows_affected());
        changed(n, "device", &id)
    }

    /// Devices whose tags or credentials changed after `since_us`, with the newest change.
    pub async fn devices_changed_since(
        &self,
        since_us: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = on_pool!(self, p => sqlx::query_as(
            "SELECT id, changed_us FROM cwmp_devices WHERE changed_us > $1 LIMIT 100000",
        )
        .bind(since_us)
        .fetch_all(p)
        .await?);
        Ok(rows)
    }

    /// Per-device CPE credentials (username, password, device id).
    pub async fn device_credentials(&self) -> Result<Vec<(String, String, String)>, StoreError> {
        let rows = on_pool!(self, p => sqlx::query_as(
            "SELECT auth_username, auth_password, id FROM cwmp_devices WHERE auth_username <> ''",
        )
        .fetch_all(p)
        .await?);
        Ok(rows)
    }

    pub async fn device_connection_request(
        &self,
        id: &str,
    ) -> Result<ConnectionRequestTarget, StoreError> {
        let row: Option<ConnectionRequestTarget> = on_pool!(self, p => sqlx::query_as(
            "SELECT connection_request_url, connection_request_username,
                    connection_request_password
             FROM cwmp_devices WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(p)
        .await?);
        row.ok_or_else(|| StoreError::NotFound("device", id.to_string()))
    }

    pub async fn device_remove(&self, id: &str) -> Result<(), StoreError> {
        self.delete_one(
            "DELETE FROM cwmp_devices WHERE id = $1",
            "device",
            Key::Text(id),
        )
        .await
    }

    /// A device's parameters under `prefix` (all when empty), in name order after `after`.
    pub async fn device_parameters(
        &self,
        id: &str,
        prefix: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ParameterView>, StoreError> {
        let like = format!("{}%", prefix.replace('%', "\\%").replace('_', "\\_"));
        let rows = on_pool!(self, p => sqlx::query_as(
            "SELECT name, value, kind, updated_us FROM cwmp_parameters
             WHERE device_id = $1 AND name LIKE $2 ESCAPE '\\' AND ($3 IS NULL OR name > $3)
             ORDER BY name LIMIT $4",
        )
        .bind(id)
        .bind(like)
        .bind(after)
        .bind(limit)
        .fetch_all(p)
        .await?);
        Ok(rows)
    }

    pub async fn task_add(
        &self,
        device_id: &str,
        kind: &str,
        spec: &str,
        now_us: i64,
    ) -> Result<TaskRow, StoreError> {
        let sql = format!(
            "INSERT INTO cwmp_tasks (device_id, kind, spec, status, not_before_us, created_us,
                updated_us)
             SELECT id, $2, $3, 'queued', $4, $4, $4 FROM cwmp_devices WHERE id = $1
             RETURNING {TASK_COLUMNS}"
        );
        let row: Option<TaskRow> = on_pool!(self, p => sqlx::query_as(&sql)
            .bind(device_id)
            .bind(kind)
            .bind(spec)
            .bind(now_us)
            .fetch_optional(p)
            .await?);
        row.ok_or_else(|| StoreError::NotFound("device", device_id.to_string()))
    }

    /// The device's queued tasks that are due, oldest first.
    pub async fn tasks_due(
        &self,
        device_id: &str,
        now_us: i64,
        limit: i64,
    ) -> Result<Vec<TaskRow>, StoreError> {
        let sql = format!(
            "SELECT {TASK_COLUMNS} FROM cwmp_tasks
             WHERE status = 'queued' AND device_id = $1 AND not_before_us <= $2
             ORDER BY id LIMIT $3"
        );
        let rows = on_pool!(self, p => sqlx::query_as(&sql)
            .bind(device_id)
            .bind(now_us)
            .bind(limit)
            .fetch_all(p)
            .await?);
        Ok(rows)
    }

    /// Devices with queued tasks.
    pub async fn tasks_pending_devices(&self) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = on_pool!(self, p => sqlx::query_as(
            "SELECT DISTINCT device_id FROM cwmp_tasks WHERE status = 'queued'",
        )
        .fetch_all(p)
        .await?);
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    pub async fn task_get(&self, id: i64) -> Result<TaskRow, StoreError> {
        let sql = format!("SELECT {TASK_COLUMNS} FROM cwmp_tasks WHERE id = $1");
        let row: Option<TaskRow> = on_pool!(self, p => sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(p)
            .await?);
        row.ok_or_else(|| StoreError::NotFound("task", id.to_string()))
    }

    /// Tasks in id order after `after`, optionally of one device and status.
    pub async fn task_list(
        &self,
        device_id: Option<&str>,
        status: Option<&str>,
        after: Option<i64>,
        limit: i64,
    ) -> Result<Vec<TaskRow>, StoreError> {
        let sql = format!(
            "SELECT {TASK_COLUMNS} FROM cwmp_tasks
             WHERE ($1 IS NULL OR device_id = $1) AND ($2 IS NULL OR status = $2)
               AND ($3 IS NULL OR id > $3)
             ORDER BY id LIMIT $4"
        );
        let rows = on_pool!(self, p => sqlx::query_as(&sql)
            .bind(device_id)
            .bind(status)
            .bind(after)
            .bind(limit)
            .fetch_all(p)
            .await?);
        Ok(rows)
    }

    pub async fn task_remove(&self, id: i64) -> Result<(), StoreError> {
        self.delete_one("DELETE FROM cwmp_tasks WHERE id = $1", "task", Key::Id(id))
            .await
    }

    pub async fn preset_put(&self, name: &str, spec: &str, now_us: i64) -> Result<(), StoreError> {
        on_pool!(self, p => sqlx::query(
            "INSERT INTO cwmp_presets (name, spec, updated_us) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, updated_us = excluded.updated_us",
        )
        .bind(name)
        .bind(spec)
        .bind(now_us)
        .execute(p)
        .await
        .map(|_| ())?);
        Ok(())
    }

    /// Every preset (name, JSON spec) in name order.
    pub async fn preset_list(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = on_pool!(self, p => sqlx::query_as(
            "SELECT name, spec FROM cwmp_presets ORDER BY name",
        )
        .fetch_all(p)
        .await?);
        Ok(rows)
    }

    pub async fn preset_remove(&self, name: &str) -> Result<(), StoreError> {
        self.delete_one(
            "DELETE FROM cwmp_presets WHERE name = $1",
            "preset",
            Key::Text(name),
        )
        .await
    }

    pub async fn file_add(
        &self,
        name: &str,
        file_type: &str,
        content: &[u8],
        sha256: &str,
        now_us: i64,
    ) -> Result<FileRow, StoreError> {
        let row: Result<FileRow, sqlx::Error> = on_pool!(self, p => sqlx::query_as(
            "INSERT INTO cwmp_files (name, file_type, size, sha256, content, created_us)
             VALUES ($1, $2, $3, $4, $5, $6)
             RETURNING name, file_type, size, sha256, created_us",
        )
        .bind(name)
        .bind(file_type)
        .bind(content.len() as i64)
        .bind(sha256)
        .bind(content)
        .bind(now_us)
        .fetch_one(p)
        .await);
        row.map_err(|e| unique_violation(e, "file", name))
    }

    pub async fn file_list(&self) -> Result<Vec<FileRow>, StoreError> {
        let rows = on_pool!(self, p => sqlx::query_as(
            "SELECT name, file_type, size, sha256, created_us FROM cwmp_files ORDER BY name",
        )
        .fetch_all(p)
        .await?);
        Ok(rows)
    }

    pub async fn file_meta(&self, name: &str) -> Result<FileRow, StoreError> {
        let row: Option<FileRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT name, file_type, size, sha256, created_us FROM cwmp_files WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(p)
        .await?);
        row.ok_or_else(|| StoreError::NotFound("file", name.to_string()))
    }

    /// `len` bytes of a file from byte `start` (the database reads only those).
    pub async fn file_range(
        &self,
        name: &str,
        start: u64,
        len: u64,
    ) -> Result<Vec<u8>, StoreError> {
        // substr is 1-based on both backends; files are at most 256 MiB, so INTEGER holds it.
        let row: Option<(Vec<u8>,)> = on_pool!(self, p => sqlx::query_as(
            "SELECT substr(content, CAST($2 AS INTEGER), CAST($3 AS INTEGER))
             FROM cwmp_files WHERE name = $1",
        )
        .bind(name)
        .bind(start as i64 + 1)
        .bind(len as i64)
        .fetch_optional(p)
        .await?);
        row.map(|r| r.0)
            .ok_or_else(|| StoreError::NotFound("file", name.to_string()))
    }

    pub async fn file_remove(&self, name: &str) -> Result<(), StoreError> {
        self.delete_one(
            "DELETE FROM cwmp_files WHERE name = $1",
            "file",
            Key::Text(name),
        )
        .await
    }
}

/// A row's key for `delete_one`.
#[derive(Clone, Copy)]
enum Key<'a> {
    Text(&'a str),
    Id(i64),
}

impl Store {
    /// Deletes the row `sql` names by `key`; NotFound when there was none.
    async fn delete_one(
        &self,
        sql: &str,
        what: &'static str,
        key: Key<'_>,
    ) -> Result<(), StoreError> {
        let n = match key {
            Key::Text(k) => {
                on_pool!(self, p => sqlx::query(sql).bind(k).execute(p).await?.rows_affected())
            }
            Key::Id(k) => {
                on_pool!(self, p => sqlx::query(sql).bind(k).execute(p).await?.rows_affected())
            }
        };
        match key {
            Key::Text(k) => changed(n, what, &k),
            Key::Id(k) => changed(n, what, &k),
        }
    }
}
