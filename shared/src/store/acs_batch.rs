//! The ACS sessions' writes: one batch of many sessions' effects (device rows, parameters,
//! preset fingerprints, task outcomes) in one transaction. PostgreSQL takes each table's rows
//! of a batch in one `UNNEST` statement; SQLite a statement per row.

use std::sync::LazyLock;

use super::{Store, StoreError};

/// What one Inform tells about a device.
#[derive(Debug, Clone)]
pub struct DeviceSeen {
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
    pub at_us: i64,
    pub events: String,
    pub connection_request_url: String,
    /// `0 BOOTSTRAP`: the device forgot its configuration; presets are checked again.
    pub bootstrap: bool,
}

/// A parameter value learned from a device.
#[derive(Debug, Clone)]
pub struct ParameterRow {
    pub device_id: String,
    pub name: String,
    pub value: String,
    pub kind: Option<String>,
    pub at_us: i64,
}

/// How a task's attempt ended.
#[derive(Debug, Clone)]
pub enum TaskUpdate {
    Done {
        id: i64,
        result: String,
    },
    /// A download the CPE accepted; closed by its TransferComplete.
    Waiting {
        id: i64,
    },
    /// A fault or no answer: queued again after `base_backoff_us << attempts`, or `fault` once
    /// `max_attempts` are spent.
    Failed {
        id: i64,
        code: Option<i32>,
        string: String,
        base_backoff_us: i64,
        max_attempts: i32,
    },
}

impl TaskUpdate {
    pub fn id(&self) -> i64 {
        match self {
            TaskUpdate::Done { id, .. }
            | TaskUpdate::Waiting { id }
            | TaskUpdate::Failed { id, .. } => *id,
        }
    }
}

/// One batch of session effects, committed together.
#[derive(Debug, Default)]
pub struct AcsBatch {
    pub devices: Vec<DeviceSeen>,
    pub parameters: Vec<ParameterRow>,
    pub fingerprints: Vec<(String, i64)>,
    pub tasks: Vec<TaskUpdate>,
    pub now_us: i64,
}

impl AcsBatch {
    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
            && self.parameters.is_empty()
            && self.fingerprints.is_empty()
            && self.tasks.is_empty()
    }
}

/// The conflict arm of a device upsert; `GREATEST_` is the backend's two-argument maximum.
const UPSERT_DEVICE_SET: &str = "
    ON CONFLICT (id) DO UPDATE SET
        manufacturer = excluded.manufacturer,
        model = CASE WHEN excluded.model <> '' THEN excluded.model ELSE cwmp_devices.model END,
        software_version = CASE WHEN excluded.software_version <> ''
            THEN excluded.software_version ELSE cwmp_devices.software_version END,
        hardware_version = CASE WHEN excluded.hardware_version <> ''
            THEN excluded.hardware_version ELSE cwmp_devices.hardware_version END,
        ip = excluded.ip,
        data_model = excluded.data_model,
        cwmp_version = excluded.cwmp_version,
        last_inform_us = GREATEST_(cwmp_devices.last_inform_us, excluded.last_inform_us),
        last_events = excluded.last_events,
        connection_request_url = CASE WHEN excluded.connection_request_url <> ''
            THEN excluded.connection_request_url ELSE cwmp_devices.connection_request_url END";

const DEVICE_INSERT: &str = "INSERT INTO cwmp_devices (id, oui, product_class, serial_number,
    manufacturer, model, software_version, hardware_version, ip, data_model, cwmp_version,
    first_inform_us, last_inform_us, last_events, connection_request_url)";

static PG_DEVICES: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{DEVICE_INSERT}
         SELECT id, oui, pc, sn, mf, mo, sw, hw, ip, dm, cv, at, at, ev, cr
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
            $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::bigint[],
            $13::text[], $14::text[])
            AS t(id, oui, pc, sn, mf, mo, sw, hw, ip, dm, cv, at, ev, cr)
         {}",
        UPSERT_DEVICE_SET.replace("GREATEST_", "GREATEST")
    )
});

static SQLITE_DEVICE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{DEVICE_INSERT}
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13, $14)
         {}",
        UPSERT_DEVICE_SET.replace("GREATEST_", "MAX")
    )
});

const PARAMETER_CONFLICT: &str = "ON CONFLICT (device_id, name) DO UPDATE SET
    value = excluded.value, kind = excluded.kind, updated_us = excluded.updated_us";

/// Runs one task update in `$tx`; expanded in each backend's arm (same text on both).
macro_rules! task_update {
    ($t:expr, $now:expr, $tx:expr) => {
        match $t {
            TaskUpdate::Done { id, result } => {
                sqlx::query(
                    "UPDATE cwmp_tasks SET status = 'done', result = $2, updated_us = $3,
                        attempts = attempts + 1, fault_code = NULL, fault_string = NULL
                     WHERE id = $1",
                )
                .bind(*id)
                .bind(result.as_str())
                .bind($now)
                .execute(&mut *$tx)
                .await?
            }
            TaskUpdate::Waiting { id } => {
                sqlx::query("UPDATE cwmp_tasks SET status = 'waiting', updated_us = $2 WHERE id = $1")
                    .bind(*id)
                    .bind($now)
                    .execute(&mut *$tx)
                    .await?
            }
            TaskUpdate::Failed {
                id,
                code,
                string,
                base_backoff_us,
                max_attempts,
            } => {
                sqlx::query(
                    "UPDATE cwmp_tasks SET attempts = attempts + 1,
                        status = CASE WHEN attempts + 1 >= $4 THEN 'fault' ELSE 'queued' END,
                        not_before_us = $5 + ($6 * (1 << (CASE WHEN attempts < 16 THEN attempts ELSE 16 END))),
                        fault_code = $2, fault_string = $3, updated_us = $5
                     WHERE id = $1 AND status IN ('queued', 'waiting')",
                )
                .bind(*id)
                .bind(*code)
                .bind(string.as_str())
                .bind(*max_attempts)
                .bind($now)
                .bind(*base_backoff_us)
                .execute(&mut *$tx)
                .await?
            }
        }
    };
}

/// The last entry for each key: PostgreSQL refuses to upsert one row twice in a statement.
fn last_by_key<'a, T, K: Eq + std::hash::Hash>(
    items: &'a [T],
    key: impl Fn(&'a T) -> K,
) -> Vec<&'a T> {
    let mut seen = std::collections::HashSet::with_capacity(items.len());
    let mut out: Vec<&T> = items.iter().rev().filter(|t| seen.insert(key(t))).collect();
    out.reverse();
    out
}

/// What both backends do last in a batch's transaction, the same statements on each:
/// fingerprints, task outcomes, commit.
macro_rules! finish_batch {
    ($b:expr, $tx:expr) => {{
        for (id, fp) in &$b.fingerprints {
            sqlx::query("UPDATE cwmp_devices SET preset_fingerprint = $2 WHERE id = $1")
                .bind(id)
                .bind(fp)
                .execute(&mut *$tx)
                .await?;
        }
        for t in &$b.tasks {
            task_update!(t, $b.now_us, $tx);
        }
        $tx.commit().await?;
    }};
}

impl Store {
    /// Writes one batch of session effects in one transaction.
    pub async fn acs_apply(&self, b: &AcsBatch) -> Result<(), StoreError> {
        match self {
            Store::Postgres(p, _) => {
                let mut tx = p.begin().await?;
                if !b.devices.is_empty() {
                    let ds = last_by_key(&b.devices, |d| d.id.as_str());
                    let col = |f: fn(&DeviceSeen) -> &str| -> Vec<&str> {
                        ds.iter().map(|d| f(d)).collect()
                    };
                    let at: Vec<i64> = ds.iter().map(|d| d.at_us).collect();
                    sqlx::query(&PG_DEVICES)
                        .bind(col(|d| &d.id))
                        .bind(col(|d| &d.oui))
                        .bind(col(|d| &d.product_class))
                        .bind(col(|d| &d.serial_number))
                        .bind(col(|d| &d.manufacturer))
                        .bind(col(|d| &d.model))
                        .bind(col(|d| &d.software_version))
                        .bind(col(|d| &d.hardware_version))
                        .bind(col(|d| &d.ip))
                        .bind(col(|d| &d.data_model))
                        .bind(col(|d| &d.cwmp_version))
                        .bind(at)
                        .bind(col(|d| &d.events))
                        .bind(col(|d| &d.connection_request_url))
                        .execute(&mut *tx)
                        .await?;
                    let boot: Vec<&str> = ds
                        .iter()
                        .filter(|d| d.bootstrap)
                        .map(|d| d.id.as_str())
                        .collect();
                    if !boot.is_empty() {
                        sqlx::query(
                            "UPDATE cwmp_devices SET preset_fingerprint = NULL
                             WHERE id = ANY($1::text[])",
                        )
                        .bind(boot)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                if !b.parameters.is_empty() {
                    let ps =
                        last_by_key(&b.parameters, |p| (p.device_id.as_str(), p.name.as_str()));
                    let sql = format!(
                        "INSERT INTO cwmp_parameters (device_id, name, value, kind, updated_us)
                         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[],
                            $5::bigint[])
                         {PARAMETER_CONFLICT}"
                    );
                    sqlx::query(&sql)
                        .bind(ps.iter().map(|p| p.device_id.as_str()).collect::<Vec<_>>())
                        .bind(ps.iter().map(|p| p.name.as_str()).collect::<Vec<_>>())
                        .bind(ps.iter().map(|p| p.value.as_str()).collect::<Vec<_>>())
                        .bind(ps.iter().map(|p| p.kind.as_deref()).collect::<Vec<_>>())
                        .bind(ps.iter().map(|p| p.at_us).collect::<Vec<_>>())
                        .execute(&mut *tx)
                        .await?;
                }
                finish_batch!(b, tx);
            }
            Store::Sqlite(p) => {
                let mut tx = p.begin().await?;
                for d in &b.devices {
                    sqlx::query(&SQLITE_DEVICE)
                        .bind(&d.id)
                        .bind(&d.oui)
                        .bind(&d.product_class)
                        .bind(&d.serial_number)
                        .bind(&d.manufacturer)
                        .bind(&d.model)
                        .bind(&d.software_version)
                        .bind(&d.hardware_version)
                        .bind(&d.ip)
                        .bind(&d.data_model)
                        .bind(&d.cwmp_version)
                        .bind(d.at_us)
                        .bind(&d.events)
                        .bind(&d.connection_request_url)
                        .execute(&mut *tx)
                        .await?;
                    if d.bootstrap {
                        sqlx::query(
                            "UPDATE cwmp_devices SET preset_fingerprint = NULL WHERE id = $1",
                        )
                        .bind(&d.id)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                let sql = format!(
                    "INSERT INTO cwmp_parameters (device_id, name, value, kind, updated_us)
                     VALUES ($1, $2, $3, $4, $5) {PARAMETER_CONFLICT}"
                );
                for r in &b.parameters {
                    sqlx::query(&sql)
                        .bind(&r.device_id)
                        .bind(&r.name)
                        .bind(&r.value)
                        .bind(&r.kind)
                        .bind(r.at_us)
                        .execute(&mut *tx)
                        .await?;
                }
                finish_batch!(b, tx);
            }
        }
        Ok(())
    }
}
