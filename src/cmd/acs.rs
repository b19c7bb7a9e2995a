//! `dotmac-edge devices|tasks|presets|files`: the ACS from the command line.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use edge_acs::preset::{Preset, PresetFilter};
use edge_acs::task::{SetValue, TaskSpec};
use edge_shared::store::{DeviceQuery, TaskRow};

use super::admin::open_store;
use crate::config::Config;
use crate::ops::acs as ops;

#[derive(Subcommand)]
pub enum DeviceCmd {
    /// Registered CPEs, in id order.
    List {
        #[arg(long)]
        product_class: Option<String>,
        #[arg(long)]
        tag: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// One device and its reported parameters.
    Show {
        id: String,
        /// Only parameters under this path.
        #[arg(long, default_value = "")]
        prefix: String,
    },
    /// Replace a device's tags (presets filter on them).
    Tag {
        id: String,
        tags: Vec<String>,
    },
    /// Credentials: for connection requests to the device, and for it to authenticate with.
    Credentials {
        id: String,
        #[arg(long)]
        connection_request_username: Option<String>,
        #[arg(long)]
        connection_request_password: Option<String>,
        #[arg(long)]
        cpe_username: Option<String>,
        #[arg(long)]
        cpe_password: Option<String>,
    },
    /// Ask the device to open a session now (connection request).
    Kick {
        id: String,
    },
    Remove {
        id: String,
    },
}

#[derive(Subcommand)]
pub enum TaskCmd {
    /// Queue a task; it runs in the device's next session.
    Add(TaskAdd),
    List {
        #[arg(long)]
        device: Option<String>,
        /// queued, waiting, done or fault.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    Show {
        id: i64,
    },
    Remove {
        id: i64,
    },
}

#[derive(Args)]
pub struct TaskAdd {
    device: String,
    /// Send a connection request so the device opens a session at once.
    #[arg(long, global = true)]
    now: bool,
    #[command(subcommand)]
    what: TaskWhat,
}

#[derive(Subcommand)]
enum TaskWhat {
    /// GetParameterValues for these names (a name ending in `.` reads a subtree).
    GetParameters {
        names: Vec<String>,
    },
    /// SetParameterValues: NAME=VALUE..., with --type NAME=TYPE where not a string.
    SetParameters {
        values: Vec<String>,
        #[arg(long = "type")]
        types: Vec<String>,
    },
    GetParameterNames {
        path: String,
        #[arg(long)]
        next_level: bool,
    },
    GetAttributes {
        names: Vec<String>,
    },
    SetAttributes {
        name: String,
        /// 0 off, 1 passive, 2 active.
        notification: u8,
    },
    AddObject {
        path: String,
    },
    DeleteObject {
        path: String,
    },
    Reboot,
    FactoryReset,
    /// Download a stored file (`files add`).
    Download {
        file: String,
    },
    Upload {
        #[arg(long)]
        file_type: String,
        #[arg(long)]
        url: String,
    },
    ScheduleInform {
        delay_seconds: u32,
    },
    GetRpcMethods,
    /// Read the whole parameter tree (or a subtree).
    Refresh {
        path: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum PresetCmd {
    /// Create or replace a preset.
    Add {
        name: String,
        /// NAME=VALUE to set on every matching device.
        #[arg(long = "set")]
        values: Vec<String>,
        /// NAME=TYPE for values that are not strings (unsignedInt, boolean...).
        #[arg(long = "type")]
        types: Vec<String>,
        /// Match devices carrying every one of these tags.
        #[arg(long = "tag")]
        tags: Vec<String>,
        #[arg(long)]
        product_class: Option<String>,
        #[arg(long)]
        software_version: Option<String>,
        /// Periodic inform interval to set.
        #[arg(long)]
        inform_interval: Option<u32>,
    },
    List,
    Remove {
        name: String,
    },
}

#[derive(Subcommand)]
pub enum FileCmd {
    /// Store a file for CPEs to download.
    Add {
        path: PathBuf,
        /// Name it is served under (default: the file's name).
        #[arg(long)]
        name: Option<String>,
        /// TR-069 file type.
        #[arg(long = "type", default_value = "1 Firmware Upgrade Image")]
        file_type: String,
    },
    List,
    Remove {
        name: String,
    },
}

fn set_values(values: &[String], types: &[String]) -> anyhow::Result<Vec<SetValue>> {
    let mut out = Vec::new();
    for v in values {
        let (name, value) = v
            .split_once('=')
            .with_context(|| format!("`{v}`: expected NAME=VALUE"))?;
        out.push(SetValue {
            name: name.to_string(),
            value: value.to_string(),
            kind: None,
        });
    }
    for t in types {
        let (name, kind) = t
            .split_once('=')
            .with_context(|| format!("`{t}`: expected NAME=TYPE"))?;
        let v = out
            .iter_mut()
            .find(|v| v.name == name)
            .with_context(|| format!("--type {name}: no such value"))?;
        v.kind = Some(kind.to_string());
    }
    Ok(out)
}

fn spec_of(what: TaskWhat) -> anyhow::Result<TaskSpec> {
    Ok(match what {
        TaskWhat::GetParameters { names } => TaskSpec::GetParameters { names },
        TaskWhat::SetParameters { values, types } => TaskSpec::SetParameters {
            values: set_values(&values, &types)?,
        },
        TaskWhat::GetParameterNames { path, next_level } => {
            TaskSpec::GetParameterNames { path, next_level }
        }
        TaskWhat::GetAttributes { names } => TaskSpec::GetAttributes { names },
        TaskWhat::SetAttributes { name, notification } => {
            TaskSpec::SetAttributes { name, notification }
        }
        TaskWhat::AddObject { path } => TaskSpec::AddObject { path },
        TaskWhat::DeleteObject { path } => TaskSpec::DeleteObject { path },
        TaskWhat::Reboot => TaskSpec::Reboot {},
        TaskWhat::FactoryReset => TaskSpec::FactoryReset {},
        TaskWhat::Download { file } => TaskSpec::Download { file },
        TaskWhat::Upload { file_type, url } => TaskSpec::Upload { file_type, url },
        TaskWhat::ScheduleInform { delay_seconds } => TaskSpec::ScheduleInform { delay_seconds },
        TaskWhat::GetRpcMethods => TaskSpec::GetRpcMethods {},
        TaskWhat::Refresh { path } => TaskSpec::Refresh { path },
    })
}

fn print_task(t: &TaskRow) {
    println!(
        "{:<8} {:<40} {:<20} {:<8} attempts={} {}{}",
        t.id,
        t.device_id,
        t.kind,
        t.status,
        t.attempts,
        t.result.as_deref().unwrap_or(""),
        t.fault_code
            .map(|c| format!(" fault {c}: {}", t.fault_string.as_deref().unwrap_or("")))
            .unwrap_or_default()
    );
}

pub async fn devices(cfg: &Config, c: DeviceCmd) -> anyhow::Result<()> {
    let store = open_store(cfg).await?;
    match c {
        DeviceCmd::List {
            product_class,
            tag,
            limit,
        } => {
            let rows = store
                .device_list(&DeviceQuery {
                    after: None,
                    limit,
                    product_class,
                    tag,
                })
                .await?;
            println!(
                "{:<44} {:<16} {:<20} {:<16} LAST INFORM (unix µs)",
                "ID", "PRODUCT CLASS", "SOFTWARE", "IP"
            );
            for d in rows {
                println!(
                    "{:<44} {:<16} {:<20} {:<16} {}",
                    d.id, d.product_class, d.software_version, d.ip, d.last_inform_us
                );
            }
        }
        DeviceCmd::Show { id, prefix } => {
            let d = store.device_get(&id).await?;
            println!("{}", serde_json::to_string_pretty(&d)?);
            for p in store.device_parameters(&id, &prefix, None, 10_000).await? {
                println!(
                    "{} = {} ({})",
                    p.name,
                    p.value,
                    p.kind.as_deref().unwrap_or("?")
                );
            }
        }
        DeviceCmd::Tag { id, tags } => {
            ops::set_tags(&store, &id, &tags).await?;
            println!("{id}: tags {tags:?}");
        }
        DeviceCmd::Credentials {
            id,
            connection_request_username,
            connection_request_password,
            cpe_username,
            cpe_password,
        } => {
            let cr = connection_request_username
                .as_deref()
                .map(|u| (u, connection_request_password.as_deref().unwrap_or("")));
            let auth = cpe_username
                .as_deref()
                .map(|u| (u, cpe_password.as_deref().unwrap_or("")));
            store.device_set_credentials(&id, cr, auth).await?;
            println!("{id}: credentials set");
        }
        DeviceCmd::Kick { id } => {
            let k = ops::kick(&store, &cfg.acs, &id).await?;
            match k.error {
                None => println!("{id}: connection request sent"),
                Some(e) => anyhow::bail!("{id}: connection request failed: {e}"),
            }
        }
        DeviceCmd::Remove { id } => {
            store.device_remove(&id).await?;
            println!("removed device {id}");
        }
    }
    Ok(())
}

pub async fn tasks(cfg: &Config, c: TaskCmd) -> anyhow::Result<()> {
    let store = open_store(cfg).await?;
    match c {
        TaskCmd::Add(a) => {
            let spec = spec_of(a.what)?;
            let t = ops::task_add(&store, &a.device, &spec).await?;
            println!("queued task {} ({}) for {}", t.id, t.kind, t.device_id);
            if a.now {
                let k = ops::kick(&store, &cfg.acs, &a.device).await?;
                match k.error {
                    None => println!("connection request sent"),
                    Some(e) => println!(
                        "connection request failed: {e}; the task waits for the next session"
                    ),
                }
            }
        }
        TaskCmd::List {
            device,
            status,
            limit,
        } => {
            for t in store
                .task_list(device.as_deref(), status.as_deref(), None, limit)
                .await?
            {
                print_task(&t);
            }
        }
        TaskCmd::Show { id } => {
            println!(
                "{}",
                serde_json::to_string_pretty(&store.task_get(id).await?)?
            );
        }
        TaskCmd::Remove { id } => {
            store.task_remove(id).await?;
            println!("removed task {id}");
        }
    }
    Ok(())
}

pub async fn presets(cfg: &Config, c: PresetCmd) -> anyhow::Result<()> {
    let store = open_store(cfg).await?;
    match c {
        PresetCmd::Add {
            name,
            values,
            types,
            tags,
            product_class,
            software_version,
            inform_interval,
        } => {
            let p = Preset {
                name: name.clone(),
                filter: PresetFilter {
                    tags,
                    product_class,
                    software_version,
                },
                values: set_values(&values, &types)?,
                inform_interval_seconds: inform_interval,
            };
            ops::preset_put(&store, &p).await?;
            println!("preset {name} saved");
        }
        PresetCmd::List => {
            for p in ops::presets(&store).await? {
                println!("{}", serde_json::to_string(&p)?);
            }
        }
        PresetCmd::Remove { name } => {
            store.preset_remove(&name).await?;
            println!("removed preset {name}");
        }
    }
    Ok(())
}

pub async fn files(cfg: &Config, c: FileCmd) -> anyhow::Result<()> {
    let store = open_store(cfg).await?;
    match c {
        FileCmd::Add {
            path,
            name,
            file_type,
        } => {
            let content =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            let name = match name {
                Some(n) => n,
                None => path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .context("the file has no usable name; give --name")?
                    .to_string(),
            };
            let f = ops::file_add(&store, &name, &file_type, &content).await?;
            println!(
                "stored {} ({} bytes, sha256 {}) at {}/files/{}",
                f.name,
                f.size,
                f.sha256,
                cfg.acs.public_url(),
                f.name
            );
        }
        FileCmd::List => {
            for f in store.file_list().await? {
                println!(
                    "{:<32} {:>12} {:<32} {}",
                    f.name, f.size, f.file_type, f.sha256
                );
            }
        }
        FileCmd::Remove { name } => {
            store.file_remove(&name).await?;
            println!("removed file {name}");
        }
    }
    Ok(())
}
