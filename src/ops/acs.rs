//! ACS operations: queue tasks (and kick the device), presets, files, device tags and
//! credentials.

use std::time::Duration;

use edge_acs::preset::Preset;
use edge_acs::server::send_connection_request;
use edge_acs::task::TaskSpec;
use edge_shared::leases::unix_micros;
use edge_shared::store::{FileRow, Store, TaskRow};
use sha2::{Digest, Sha256};

use super::{invalid, OpError};
use crate::config::Acs as AcsConfig;

/// The largest file the ACS stores (it is held in the database).
pub const MAX_FILE_BYTES: usize = 256 << 20;

/// The result of a connection request, as shown to the user.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Kick {
    /// `sent` (the CPE answered 2xx) or `failed`.
    pub result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Queues a task after checking it (and that its file exists).
pub async fn task_add(store: &Store, device: &str, spec: &TaskSpec) -> Result<TaskRow, OpError> {
    spec.check().map_err(|m| invalid("task", m))?;
    if let TaskSpec::Download { file } = spec {
        store.file_meta(file).await?;
    }
    let json = serde_json::to_string(spec).map_err(|e| invalid("task", e.to_string()))?;
    Ok(store
        .task_add(device, spec.label(), &json, unix_micros())
        .await?)
}

/// Asks the device to open a session now, with its own connection request credentials or the
/// configured ones.
pub async fn kick(store: &Store, cfg: &AcsConfig, device: &str) -> Result<Kick, OpError> {
    let t = store.device_connection_request(device).await?;
    let (user, pass) = if t.connection_request_username.is_empty() {
        (
            cfg.connection_request_username.as_str(),
            cfg.connection_request_password.0.as_str(),
        )
    } else {
        (
            t.connection_request_username.as_str(),
            t.connection_request_password.as_str(),
        )
    };
    let r = send_connection_request(
        &t.connection_request_url,
        user,
        pass,
        Duration::from_millis(cfg.connection_request_timeout_ms),
    )
    .await;
    Ok(match r {
        Ok(()) => Kick {
            result: "sent",
            error: None,
        },
        Err(e) => Kick {
            result: "failed",
            error: Some(e.to_string()),
        },
    })
}

/// Creates or replaces a preset.
pub async fn preset_put(store: &Store, p: &Preset) -> Result<(), OpError> {
    let name_ok = !p.name.is_empty()
        && p.name.len() <= 64
        && p.name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if !name_ok {
        return Err(invalid("name", "1-64 letters, digits, `-`, `_` or `.`"));
    }
    if p.values.is_empty() && p.inform_interval_seconds.is_none() {
        return Err(invalid(
            "values",
            "a preset sets at least one value or the inform interval",
        ));
    }
    let spec = TaskSpec::SetParameters {
        values: p.values.clone(),
    };
    if !p.values.is_empty() {
        spec.check().map_err(|m| invalid("values", m))?;
    }
    if let Some(v) = p
        .values
        .iter()
        .find(|v| !(v.name.starts_with("Device.") || v.name.starts_with("InternetGatewayDevice.")))
    {
        return Err(invalid(
            "values",
            format!(
                "`{}` must start with Device. or InternetGatewayDevice.",
                v.name
            ),
        ));
    }
    if p.inform_interval_seconds == Some(0) {
        return Err(invalid("inform_interval_seconds", "at least 1"));
    }
    let json = serde_json::to_string(p).map_err(|e| invalid("preset", e.to_string()))?;
    store.preset_put(&p.name, &json, unix_micros()).await?;
    Ok(())
}

pub async fn presets(store: &Store) -> Result<Vec<Preset>, OpError> {
    let mut out = Vec::new();
    for (_, spec) in store.preset_list().await? {
        if let Ok(p) = serde_json::from_str(&spec) {
            out.push(p);
        }
    }
    Ok(out)
}

/// Stores a file for downloads.
pub async fn file_add(
    store: &Store,
    name: &str,
    file_type: &str,
    content: &[u8],
) -> Result<FileRow, OpError> {
    let name_ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.+".contains(&b))
        && !name.starts_with('.');
    if !name_ok {
        return Err(invalid(
            "name",
            "1-128 letters, digits, `-`, `_`, `.` or `+`, not starting with `.`",
        ));
    }
    // TR-069 A.3.2.8: "1 Firmware Upgrade Image", "2 Web Content", "3 Vendor Configuration
    // File", "4 Tone File", "5 Ringer File", or a vendor's "X <OUI> ...".
    let known = file_type.len() > 2
        && (matches!(&file_type[..2], "1 " | "2 " | "3 " | "4 " | "5 ")
            || file_type.starts_with("X "));
    if !known {
        return Err(invalid(
            "file_type",
            "a TR-069 file type such as `1 Firmware Upgrade Image` or `3 Vendor Configuration File`",
        ));
    }
    if content.is_empty() || content.len() > MAX_FILE_BYTES {
        return Err(invalid(
            "content",
            format!("between 1 byte and {MAX_FILE_BYTES} bytes"),
        ));
    }
    let sha = hex::encode(Sha256::digest(content));
    Ok(store
        .file_add(name, file_type, content, &sha, unix_micros())
        .await?)
}

/// Replaces a device's tags (its presets are checked again at its next session).
pub async fn set_tags(store: &Store, device: &str, tags: &[String]) -> Result<(), OpError> {
    if tags.len() > 32
        || tags.iter().any(|t| {
            t.is_empty()
                || t.len() > 64
                || !t
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
    {
        return Err(invalid(
            "tags",
            "at most 32 tags of 1-64 letters, digits, `-`, `_`, `.` or `:`",
        ));
    }
    Ok(store.device_set_tags(device, tags).await?)
}
