//! The ACS: CPE devices and their reported parameters, tasks (queue, list, status),
//! connection requests, presets, and the files CPEs download.
//!
//! Device ids are GenieACS-style (`OUI-ProductClass-Serial`, percent-encoded where those
//! hold other characters): percent-encode them again in a path (`%` is `%25`).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use edge_acs::preset::Preset;
use edge_acs::task::TaskSpec;
use edge_shared::store::{DeviceQuery, DeviceRow, FileRow, ParameterView, TaskRow};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::envelope::{
    created_at, decode_cursor, decode_id_cursor, limit_of, one, page, page_by_key, split_page,
    Answer, ApiError, ApiJson, ApiPath, ApiQuery, Created, Envelope, ErrorBody, PageQuery,
};
use super::ApiState;
use crate::ops::acs::{self as ops, Kick};

/// A registered CPE, as its last Inform described it. Times are Unix microseconds.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeviceView {
    id: String,
    oui: String,
    product_class: String,
    serial_number: String,
    manufacturer: String,
    model: String,
    software_version: String,
    hardware_version: String,
    /// The address its last session came from.
    ip: String,
    /// `Device.` (TR-181) or `InternetGatewayDevice.` (TR-098).
    data_model: String,
    /// The CWMP version its last session used (`cwmp-1-0` to `cwmp-1-4`).
    cwmp_version: String,
    first_inform_us: i64,
    last_inform_us: i64,
    /// The event codes of its last Inform (`0 BOOTSTRAP`, `2 PERIODIC`…).
    last_events: Vec<String>,
    connection_request_url: String,
    tags: Vec<String>,
    /// Whether its presets' values are known to be in place.
    presets_converged: bool,
}

impl From<DeviceRow> for DeviceView {
    fn from(d: DeviceRow) -> Self {
        DeviceView {
            tags: serde_json::from_str(&d.tags).unwrap_or_default(),
            last_events: d
                .last_events
                .split(',')
                .filter(|e| !e.is_empty())
                .map(str::to_string)
                .collect(),
            presets_converged: d.preset_fingerprint.is_some(),
            id: d.id,
            oui: d.oui,
            product_class: d.product_class,
            serial_number: d.serial_number,
            manufacturer: d.manufacturer,
            model: d.model,
            software_version: d.software_version,
            hardware_version: d.hardware_version,
            ip: d.ip,
            data_model: d.data_model,
            cwmp_version: d.cwmp_version,
            first_inform_us: d.first_inform_us,
            last_inform_us: d.last_inform_us,
            connection_request_url: d.connection_request_url,
        }
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeviceFilter {
    product_class: Option<String>,
    /// Devices carrying this tag.
    tag: Option<String>,
    /// Page size, 1 to 1000 (default 50).
    limit: Option<usize>,
    cursor: Option<String>,
}

/// Devices in id order.
#[utoipa::path(get, path = "/api/v1/devices", tag = "acs", params(DeviceFilter),
    responses((status = 200, body = Envelope<Vec<DeviceView>>)), security(("bearer" = [])))]
pub async fn list_devices(
    State(s): State<ApiState>,
    uri: Uri,
    ApiQuery(f): ApiQuery<DeviceFilter>,
) -> Answer<Vec<DeviceView>> {
    let limit = limit_of(f.limit)?;
    let after = f.cursor.as_deref().map(decode_cursor).transpose()?;
    let rows = s
        .store
        .device_list(&DeviceQuery {
            after,
            limit: limit as i64 + 1,
            product_class: f.product_class,
            tag: f.tag,
        })
        .await?;
    let (rows, next) = split_page(rows, limit, |d| d.id.clone());
    page(
        &uri,
        rows.into_iter().map(Into::into).collect(),
        limit,
        next,
    )
}

/// One device.
#[utoipa::path(get, path = "/api/v1/devices/{id}", tag = "acs", params(("id" = String, Path)),
    responses((status = 200, body = Envelope<DeviceView>), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_device(
    State(s): State<ApiState>,
    uri: Uri,
    ApiPath(id): ApiPath<String>,
) -> Answer<DeviceView> {
    one(&uri, s.store.device_get(&id).await?.into())
}

/// A username and password; an empty username means the configured global ones.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    username: String,
    #[serde(default)]
    password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DevicePatch {
    /// Replaces the tags (presets filter on them; the device's presets are checked again).
    tags: Option<Vec<String>>,
    /// What the ACS sends in connection requests to this device.
    connection_request: Option<Credentials>,
    /// What this device must authenticate to the ACS with.
    cpe: Option<Credentials>,
}

/// Changes a device's tags or credentials (passwords are never shown back).
#[utoipa::path(patch, path = "/api/v1/devices/{id}", tag = "acs",
    params(("id" = String, Path)), request_body = DevicePatch,
    responses((status = 200, body = Envelope<DeviceView>), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn patch_device(
    State(s): State<ApiState>,
    uri: Uri,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<DevicePatch>,
) -> Answer<DeviceView> {
    // Both sets are checked before anything is written.
    for (field, c) in [
        ("connection_request", &b.connection_request),
        ("cpe", &b.cpe),
    ] {
        if let Some(c) = c {
            credentials_ok(field, c)?;
        }
    }
    if let Some(tags) = &b.tags {
        ops::set_tags(&s.store, &id, tags).await?;
    }
    if b.connection_request.is_some() || b.cpe.is_some() {
        s.store
            .device_set_credentials(&id, pair(&b.connection_request), pair(&b.cpe))
            .await?;
    }
    one(&uri, s.store.device_get(&id).await?.into())
}

fn pair(c: &Option<Credentials>) -> Option<(&str, &str)> {
    c.as_ref()
        .map(|c| (c.username.as_str(), c.password.as_str()))
}

fn credentials_ok(field: &str, c: &Credentials) -> Result<(), ApiError> {
    let printable = |t: &str| t.len() <= 256 && !t.chars().any(char::is_control);
    if !printable(&c.username) || !printable(&c.password) {
        return Err(ApiError::invalid(
            field,
            "at most 256 characters, none of them control characters",
        ));
    }
    Ok(())
}

/// Forgets a device with its parameters and tasks (it registers again at its next Inform).
#[utoipa::path(delete, path = "/api/v1/devices/{id}", tag = "acs",
    params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn delete_device(
    State(s): State<ApiState>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    s.store.device_remove(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A reported parameter. `updated_us` is when the ACS last learned its value.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ParameterItem {
    name: String,
    value: String,
    /// The xsd type the device reported, when it did.
    #[serde(rename = "type")]
    kind: Option<String>,
    updated_us: i64,
}

impl From<ParameterView> for ParameterItem {
    fn from(p: ParameterView) -> Self {
        ParameterItem {
            name: p.name,
            value: p.value,
            kind: p.kind,
            updated_us: p.updated_us,
        }
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ParameterFilter {
    /// Only parameters whose names start with this (`Device.WiFi.`).
    prefix: Option<String>,
    /// Page size, 1 to 1000 (default 50).
    limit: Option<usize>,
    cursor: Option<String>,
}

/// The device's parameter tree as it last reported it, in name order.
#[utoipa::path(get, path = "/api/v1/devices/{id}/parameters", tag = "acs",
    params(("id" = String, Path), ParameterFilter),
    responses((status = 200, body = Envelope<Vec<ParameterItem>>),
        (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn device_parameters(
    State(s): State<ApiState>,
    uri: Uri,
    ApiPath(id): ApiPath<String>,
    ApiQuery(f): ApiQuery<ParameterFilter>,
) -> Answer<Vec<ParameterItem>> {
    let limit = limit_of(f.limit)?;
    let after = f.cursor.as_deref().map(decode_cursor).transpose()?;
    let rows = s
        .store
        .device_parameters(
            &id,
            f.prefix.as_deref().unwrap_or(""),
            after.as_deref(),
            limit as i64 + 1,
        )
        .await?;
    if rows.is_empty() && after.is_none() {
        // An empty tree, or no such device: only the second is a 404.
        s.store.device_get(&id).await?;
    }
    let (rows, next) = split_page(rows, limit, |p| p.name.clone());
    page(
        &uri,
        rows.into_iter().map(Into::into).collect(),
        limit,
        next,
    )
}

/// A task and what became of it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TaskView {
    id: i64,
    device_id: String,
    /// `queued` (waiting for a session), `waiting` (sent; the device's answer is pending, as
    /// for a download until its TransferComplete), `done` or `fault`.
    status: String,
    task: TaskSpec,
    /// Sessions that tried it.
    attempts: i32,
    /// A failed task is retried (with back-off) no earlier than this.
    not_before_us: i64,
    created_us: i64,
    updated_us: i64,
    /// What the device answered (values read, the status of a set, a new object's number).
    #[schema(value_type = Option<Object>)]
    result: Option<serde_json::Value>,
    fault: Option<TaskFault>,
    /// Only in the answer to a creation that asked for a connection request.
    #[serde(skip_serializing_if = "Option::is_none")]
    connection_request: Option<Kick>,
}

/// A CWMP fault (9000-series from the CPE, 8000-series from the ACS).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TaskFault {
    code: i32,
    message: String,
}

impl TryFrom<TaskRow> for TaskView {
    type Error = ApiError;

    fn try_from(t: TaskRow) -> Result<Self, ApiError> {
        let task = serde_json::from_str(&t.spec).map_err(|_| {
            ApiError::new(
                StatusCode::CONFLICT,
                "unreadable",
                format!(
                    "task {} was stored in a form this version cannot read",
                    t.id
                ),
            )
        })?;
        Ok(TaskView {
            id: t.id,
            device_id: t.device_id,
            status: t.status,
            task,
            attempts: t.attempts,
            not_before_us: t.not_before_us,
            created_us: t.created_us,
            updated_us: t.updated_us,
            result: t
                .result
                .map(|r| serde_json::from_str(&r).unwrap_or(serde_json::Value::String(r))),
            fault: t.fault_code.map(|code| TaskFault {
                code,
                message: t.fault_string.unwrap_or_default(),
            }),
            connection_request: None,
        })
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TaskCreateQuery {
    /// Send a connection request so the device opens a session at once (its answer is in
    /// the response; the task waits for the next session either way).
    connection_request: Option<bool>,
}

/// Queues a task for the device's next session (in order after those already queued).
#[utoipa::path(post, path = "/api/v1/devices/{id}/tasks", tag = "acs",
    params(("id" = String, Path), TaskCreateQuery), request_body = TaskSpec,
    responses((status = 201, body = Envelope<TaskView>), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_task(
    State(s): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<TaskCreateQuery>,
    ApiJson(spec): ApiJson<TaskSpec>,
) -> Created<TaskView> {
    let row = ops::task_add(&s.store, &id, &spec).await?;
    let mut view = TaskView::try_from(row)?;
    if q.connection_request == Some(true) {
        view.connection_request = Some(ops::kick(&s.store, &s.acs, &id).await?);
    }
    created_at(format!("/api/v1/tasks/{}", view.id), view)
}

/// Sends a connection request: the device opens a session now and runs its queued tasks.
#[utoipa::path(post, path = "/api/v1/devices/{id}/connection-request", tag = "acs",
    params(("id" = String, Path)),
    responses((status = 200, body = Envelope<Kick>), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn connection_request(
    State(s): State<ApiState>,
    uri: Uri,
    ApiPath(id): ApiPath<String>,
) -> Answer<Kick> {
    one(&uri, ops::kick(&s.store, &s.acs, &id).await?)
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TaskFilter {
    /// One device's tasks.
    device: Option<String>,
    /// `queued`, `waiting`, `done` or `fault`.
    status: Option<String>,
    /// Page size, 1 to 1000 (default 50).
    limit: Option<usize>,
    cursor: Option<String>,
}

/// Tasks, oldest first.
#[utoipa::path(get, path = "/api/v1/tasks", tag = "acs", params(TaskFilter),
    responses((status = 200, body = Envelope<Vec<TaskView>>)), security(("bearer" = [])))]
pub async fn list_tasks(
    State(s): State<ApiState>,
    uri: Uri,
    ApiQuery(f): ApiQuery<TaskFilter>,
) -> Answer<Vec<TaskView>> {
    let limit = limit_of(f.limit)?;
    if let Some(st) = f.status.as_deref() {
        if !["queued", "waiting", "done", "fault"].contains(&st) {
            return Err(ApiError::invalid(
                "status",
                "one of queued, waiting, done, fault",
            ));
        }
    }
    let after = decode_id_cursor(f.cursor.as_deref())?;
    let rows = s
        .store
        .task_list(
            f.device.as_deref(),
            f.status.as_deref(),
            after,
            limit as i64 + 1,
        )
        .await?;
    let (rows, next) = split_page(rows, limit, |t| t.id.to_string());
    let items = rows
        .into_iter()
        .map(TaskView::try_from)
        .collect::<Result<_, _>>()?;
    page(&uri, items, limit, next)
}

/// One task: its status, result or fault.
#[utoipa::path(get, path = "/api/v1/tasks/{id}", tag = "acs", params(("id" = i64, Path)),
    responses((status = 200, body = Envelope<TaskView>), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_task(
    State(s): State<ApiState>,
    uri: Uri,
    ApiPath(id): ApiPath<i64>,
) -> Answer<TaskView> {
    one(&uri, s.store.task_get(id).await?.try_into()?)
}

/// Removes a task (a queued one is never sent).
#[utoipa::path(delete, path = "/api/v1/tasks/{id}", tag = "acs", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn delete_task(
    State(s): State<ApiState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    s.store.task_remove(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Presets in name order.
#[utoipa::path(get, path = "/api/v1/presets", tag = "acs", params(PageQuery),
    responses((status = 200, body = Envelope<Vec<Preset>>)), security(("bearer" = [])))]
pub async fn list_presets(
    State(s): State<ApiState>,
    uri: Uri,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Answer<Vec<Preset>> {
    page_by_key(&uri, ops::presets(&s.store).await?, |p| &p.name, &q)
}

/// One preset.
#[utoipa::path(get, path = "/api/v1/presets/{name}", tag = "acs",
    params(("name" = String, Path)),
    responses((status = 200, body = Envelope<Preset>), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_preset(
    State(s): State<ApiState>,
    uri: Uri,
    ApiPath(name): ApiPath<String>,
) -> Answer<Preset> {
    let p = ops::presets(&s.store)
        .await?
        .into_iter()
        .find(|p| p.name == name)
        .ok_or_else(|| ApiError::not_found(format!("no preset `{name}`")))?;
    one(&uri, p)
}

/// Creates or replaces a preset: desired values (and the periodic inform interval) for every
/// device matching its filter. The body's `name` may be left out; it is the path's.
#[utoipa::path(put, path = "/api/v1/presets/{name}", tag = "acs",
    params(("name" = String, Path)), request_body = Preset,
    responses((status = 200, body = Envelope<Preset>), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn put_preset(
    State(s): State<ApiState>,
    uri: Uri,
    ApiPath(name): ApiPath<String>,
    ApiJson(mut p): ApiJson<Preset>,
) -> Answer<Preset> {
    if !p.name.is_empty() && p.name != name {
        return Err(ApiError::invalid(
            "name",
            "differs from the name in the path",
        ));
    }
    p.name = name;
    ops::preset_put(&s.store, &p).await?;
    one(&uri, p)
}

/// Removes a preset (values it set stay on the devices).
#[utoipa::path(delete, path = "/api/v1/presets/{name}", tag = "acs",
    params(("name" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn delete_preset(
    State(s): State<ApiState>,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    s.store.preset_remove(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A stored file.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FileView {
    name: String,
    /// The TR-069 file type sent in Download (`1 Firmware Upgrade Image`…).
    file_type: String,
    size: i64,
    sha256: String,
    created_us: i64,
    /// Where CPEs fetch it (byte ranges supported).
    url: String,
}

impl ApiState {
    fn file_view(&self, f: FileRow) -> FileView {
        FileView {
            url: format!("{}/files/{}", self.acs.public_url(), f.name),
            name: f.name,
            file_type: f.file_type,
            size: f.size,
            sha256: f.sha256,
            created_us: f.created_us,
        }
    }
}

/// Files in name order.
#[utoipa::path(get, path = "/api/v1/files", tag = "acs", params(PageQuery),
    responses((status = 200, body = Envelope<Vec<FileView>>)), security(("bearer" = [])))]
pub async fn list_files(
    State(s): State<ApiState>,
    uri: Uri,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Answer<Vec<FileView>> {
    let files = s
        .store
        .file_list()
        .await?
        .into_iter()
        .map(|f| s.file_view(f))
        .collect();
    page_by_key(&uri, files, |f| &f.name, &q)
}

/// One file's description (the content is served to CPEs at its `url`).
#[utoipa::path(get, path = "/api/v1/files/{name}", tag = "acs",
    params(("name" = String, Path)),
    responses((status = 200, body = Envelope<FileView>), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_file(
    State(s): State<ApiState>,
    uri: Uri,
    ApiPath(name): ApiPath<String>,
) -> Answer<FileView> {
    let f = s.store.file_meta(&name).await?;
    one(&uri, s.file_view(f))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FileUploadQuery {
    /// The TR-069 file type (default `1 Firmware Upgrade Image`).
    file_type: Option<String>,
}

/// Uploads a file for Download tasks: the body is its bytes, any content type, up to
/// 256 MiB; one upload at a time (429 while another runs). Names are never reused: remove the
/// old file first (409).
#[utoipa::path(put, path = "/api/v1/files/{name}", tag = "acs",
    params(("name" = String, Path), FileUploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = Envelope<FileView>), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn put_file(
    State(s): State<ApiState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<FileUploadQuery>,
    body: Result<Bytes, BytesRejection>,
) -> Created<FileView> {
    let Ok(_permit) = s.uploads.try_acquire() else {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "busy",
            "another upload is running; retry when it is done",
        ));
    };
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("files are at most {} bytes", ops::MAX_FILE_BYTES),
            )
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", e.body_text())
        }
    })?;
    let file_type = q
        .file_type
        .unwrap_or_else(|| "1 Firmware Upgrade Image".to_string());
    let f = ops::file_add(&s.store, &name, &file_type, &body).await?;
    let view = s.file_view(f);
    created_at(format!("/api/v1/files/{}", view.name), view)
}

/// Removes a file (Download tasks still queued for it end in a fault).
#[utoipa::path(delete, path = "/api/v1/files/{name}", tag = "acs",
    params(("name" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn delete_file(
    State(s): State<ApiState>,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    s.store.file_remove(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
