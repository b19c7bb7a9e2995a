//! What operators queue for a device, and how each becomes an RPC.

use serde::{Deserialize, Serialize};

use crate::codec::{ParameterValue, Rpc, SetAttribute};

/// A parameter to set: name, value and its xsd type (`string` when not given).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SetValue {
    pub name: String,
    pub value: String,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// A queued operation on one device, stored as JSON in the task row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TaskSpec {
    GetParameters {
        names: Vec<String>,
    },
    SetParameters {
        values: Vec<SetValue>,
    },
    /// GetParameterNames (the tree's shape and writability).
    GetParameterNames {
        path: String,
        #[serde(default)]
        next_level: bool,
    },
    GetAttributes {
        names: Vec<String>,
    },
    SetAttributes {
        name: String,
        notification: u8,
    },
    AddObject {
        path: String,
    },
    DeleteObject {
        path: String,
    },
    // Variants without fields are empty structs, not unit variants: serde ignores unknown
    // fields beside the tag of a unit variant, and a task with a typo must be refused.
    Reboot {},
    FactoryReset {},
    /// A file stored by the ACS (`files add`), served to the CPE at `acs.public_url/files/NAME`.
    Download {
        file: String,
    },
    Upload {
        file_type: String,
        url: String,
    },
    ScheduleInform {
        delay_seconds: u32,
    },
    GetRpcMethods {},
    /// Read the whole tree (or the subtree under `path`) with one GetParameterValues.
    Refresh {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
    },
}

/// Bounds on what a task may ask for, checked when it is queued.
pub const MAX_TASK_NAMES: usize = 1_000;

impl TaskSpec {
    /// A short name for listings and metrics labels (a closed set).
    pub fn label(&self) -> &'static str {
        match self {
            TaskSpec::GetParameters { .. } => "get_parameters",
            TaskSpec::SetParameters { .. } => "set_parameters",
            TaskSpec::GetParameterNames { .. } => "get_parameter_names",
            TaskSpec::GetAttributes { .. } => "get_attributes",
            TaskSpec::SetAttributes { .. } => "set_attributes",
            TaskSpec::AddObject { .. } => "add_object",
            TaskSpec::DeleteObject { .. } => "delete_object",
            TaskSpec::Reboot {} => "reboot",
            TaskSpec::FactoryReset {} => "factory_reset",
            TaskSpec::Download { .. } => "download",
            TaskSpec::Upload { .. } => "upload",
            TaskSpec::ScheduleInform { .. } => "schedule_inform",
            TaskSpec::GetRpcMethods {} => "get_rpc_methods",
            TaskSpec::Refresh { .. } => "refresh",
        }
    }

    /// Refuses what no CPE could act on (empty lists, names that are not parameter paths).
    pub fn check(&self) -> Result<(), String> {
        let path_ok = |p: &str| {
            !p.is_empty()
                && p.len() <= 256
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        };
        let names_ok = |names: &[String]| {
            if names.is_empty() || names.len() > MAX_TASK_NAMES {
                return Err(format!("between 1 and {MAX_TASK_NAMES} names"));
            }
            match names.iter().find(|n| !path_ok(n)) {
                Some(n) => Err(format!("`{n}` is not a parameter path")),
                None => Ok(()),
            }
        };
        match self {
            TaskSpec::GetParameters { names } | TaskSpec::GetAttributes { names } => {
                names_ok(names)
            }
            TaskSpec::SetParameters { values } => {
                let names: Vec<String> = values.iter().map(|v| v.name.clone()).collect();
                names_ok(&names)?;
                match values.iter().find(|v| {
                    v.kind
                        .as_deref()
                        .is_some_and(|k| !crate::preset::XSD_TYPES.contains(&k))
                }) {
                    Some(v) => Err(format!("`{}`: unknown type", v.name)),
                    None => Ok(()),
                }
            }
            TaskSpec::GetParameterNames { path, .. }
            | TaskSpec::AddObject { path }
            | TaskSpec::DeleteObject { path } => names_ok(std::slice::from_ref(path)),
            TaskSpec::SetAttributes { name, notification } => {
                names_ok(std::slice::from_ref(name))?;
                if *notification > 2 {
                    return Err("notification is 0, 1 or 2".into());
                }
                Ok(())
            }
            TaskSpec::Refresh { path: Some(p) } => names_ok(std::slice::from_ref(p)),
            TaskSpec::Download { file } if file.is_empty() => Err("a file name".into()),
            TaskSpec::Upload { url, .. }
                if !(url.starts_with("http://") || url.starts_with("https://")) =>
            {
                Err("an http(s) URL".into())
            }
            _ => Ok(()),
        }
    }

    /// The RPC for this task. `key` is its CommandKey/ParameterKey (`task-ID`); `root` the
    /// data model root the device reported (`Device.` or `InternetGatewayDevice.`). A download
    /// needs the file's URL and size, found by the caller.
    pub fn rpc(&self, key: &str, root: &str, file: Option<(&str, u64, &str)>) -> Option<Rpc> {
        Some(match self {
            TaskSpec::GetParameters { names } => Rpc::GetParameterValues(names.clone()),
            TaskSpec::SetParameters { values } => Rpc::SetParameterValues {
                values: values
                    .iter()
                    .map(|v| ParameterValue {
                        name: v.name.clone(),
                        value: v.value.clone(),
                        kind: v.kind.clone(),
                    })
                    .collect(),
                parameter_key: key.to_string(),
            },
            TaskSpec::GetParameterNames { path, next_level } => Rpc::GetParameterNames {
                path: path.clone(),
                next_level: *next_level,
            },
            TaskSpec::GetAttributes { names } => Rpc::GetParameterAttributes(names.clone()),
            TaskSpec::SetAttributes { name, notification } => {
                Rpc::SetParameterAttributes(vec![SetAttribute {
                    name: name.clone(),
                    notification: Some(*notification),
                    access_list: None,
                }])
            }
            TaskSpec::AddObject { path } => Rpc::AddObject {
                path: path.clone(),
                parameter_key: key.to_string(),
            },
            TaskSpec::DeleteObject { path } => Rpc::DeleteObject {
                path: path.clone(),
                parameter_key: key.to_string(),
            },
            TaskSpec::Reboot {} => Rpc::Reboot {
                command_key: key.to_string(),
            },
            TaskSpec::FactoryReset {} => Rpc::FactoryReset,
            TaskSpec::Download { .. } => {
                let (url, size, file_type) = file?;
                Rpc::Download {
                    command_key: key.to_string(),
                    file_type: file_type.to_string(),
                    url: url.to_string(),
                    username: String::new(),
                    password: String::new(),
                    file_size: size,
                    target_file_name: String::new(),
                    delay_seconds: 0,
                }
            }
            TaskSpec::Upload { file_type, url } => Rpc::Upload {
                command_key: key.to_string(),
                file_type: file_type.clone(),
                url: url.clone(),
                username: String::new(),
                password: String::new(),
                delay_seconds: 0,
            },
            TaskSpec::ScheduleInform { delay_seconds } => Rpc::ScheduleInform {
                delay_seconds: *delay_seconds,
                command_key: key.to_string(),
            },
            TaskSpec::GetRpcMethods {} => Rpc::GetRpcMethods,
            TaskSpec::Refresh { path } => {
                Rpc::GetParameterValues(vec![path.clone().unwrap_or_else(|| root.to_string())])
            }
        })
    }
}

/// The CommandKey a task's RPC carries, and back.
pub fn command_key(task_id: i64) -> String {
    format!("task-{task_id}")
}

pub fn task_of_command_key(key: &str) -> Option<i64> {
    key.strip_prefix("task-")?.parse().ok()
}
