//! One CWMP session as a state machine: messages in, the ACS's answers and effects out. No
//! I/O: the HTTP service feeds it, fetches its jobs and persists its effects.
//!
//! TR-069 §3.7: the CPE opens with an Inform (answered with an InformResponse), may send its
//! own requests (each answered), then an empty POST hands the turn to the ACS, which sends its
//! requests one at a time (each answered by the CPE) and ends with an empty 204.

use std::collections::VecDeque;

use serde_json::json;

use crate::codec::{
    fault_code, fault_envelope, AcsMessage, CpeMessage, CwmpVersion, Envelope, FaultStruct,
    Incoming, Inform, ParameterValue, Response, Rpc,
};
use crate::preset::{same_value, Desired};
use crate::task::SetValue;

/// Why the ACS sends an RPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A queued task (its id).
    Task(i64),
    /// Read the preset's parameters to find which differ.
    PresetRead(Desired),
    /// Set the ones that differ; the fingerprint is recorded once they are set.
    PresetSet(u64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub origin: Origin,
    pub rpc: Rpc,
}

/// How a task's RPC ended.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskOutcome {
    Done(serde_json::Value),
    Fault(FaultStruct),
    /// A download the CPE accepted and will report with a TransferComplete.
    Waiting,
    /// The session ended before the CPE answered.
    Unanswered,
}

/// What the service persists or acts on.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Task {
        id: i64,
        outcome: TaskOutcome,
    },
    /// Values learned from the device (GetParameterValues answers, values it accepted).
    Parameters(Vec<ParameterValue>),
    /// A TransferComplete (or an autonomous one); `command_key` names the task when it
    /// started as one.
    TransferComplete {
        command_key: String,
        fault: FaultStruct,
    },
    PresetsConverged(u64),
    PresetFault(FaultStruct),
}

/// The HTTP answer to one POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A SOAP envelope (200, text/xml).
    Body(Vec<u8>),
    /// 204 No Content: the session is over.
    End,
}

#[derive(Debug)]
pub struct Session {
    pub version: CwmpVersion,
    pub inform: Box<Inform>,
    root: &'static str,
    jobs: VecDeque<Job>,
    in_flight: Option<Job>,
    sent: u32,
    max_rpcs: u32,
    next_id: u32,
    ended: bool,
    effects: Vec<Effect>,
}

impl Session {
    /// Starts a session from the CPE's first message, which must be an Inform: the session
    /// and the InformResponse, or `None` when it is not an Inform.
    pub fn start(msg: Incoming, max_rpcs: u32) -> Option<(Session, Vec<u8>)> {
        let Incoming {
            version,
            header,
            body,
        } = msg;
        let CpeMessage::Inform(inform) = body else {
            return None;
        };
        // CWMP 1.4 §3.4.7.1.3: answer in the highest version both sides support.
        let use_version = header
            .supported_versions
            .iter()
            .copied()
            .filter(|v| CwmpVersion::ALL.contains(v))
            .max();
        let version = use_version.unwrap_or(version);
        let id = header.id.as_deref().unwrap_or("");
        let reply = Envelope {
            version,
            id,
            use_version,
        }
        .write(&AcsMessage::InformResponse);
        let s = Session {
            version,
            root: root_of(&inform),
            inform,
            jobs: VecDeque::new(),
            in_flight: None,
            sent: 0,
            max_rpcs,
            next_id: 1,
            ended: false,
            effects: Vec::new(),
        };
        Some((s, reply))
    }

    pub fn push(&mut self, job: Job) {
        self.jobs.push_back(job);
    }

    pub fn is_over(&self) -> bool {
        self.ended
    }

    /// Whether an RPC is waiting for the CPE's answer.
    pub fn awaiting_answer(&self) -> bool {
        self.in_flight.is_some()
    }

    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    /// The data model root the device reported (`Device.` or `InternetGatewayDevice.`).
    pub fn root(&self) -> &'static str {
        self.root
    }

    /// Drops the Inform's parameters but those named (once they are persisted, an open
    /// session needs little of them: ten thousand open sessions are held in memory).
    pub fn keep_parameters(&mut self, suffixes: &[&str]) {
        let p = &mut self.inform.parameters;
        p.retain(|v| suffixes.iter().any(|s| v.name.ends_with(s)));
        p.shrink_to_fit();
    }

    /// The CPE's next POST: `None` for an empty body.
    ///
    /// `HoldRequests` (§3.4.7.1.4) needs no state here: the ACS sends its requests only in
    /// answer to an empty POST or to the CPE's answer to a request, never in answer to a CPE
    /// request, so a CPE holding requests never receives one.
    pub fn handle(&mut self, msg: Option<Incoming>) -> Reply {
        if self.ended {
            return Reply::End;
        }
        let Some(msg) = msg else {
            return self.next_request();
        };
        let id = msg.header.id.clone().unwrap_or_default();
        let env = Envelope {
            version: self.version,
            id: &id,
            use_version: None,
        };
        let answer = match msg.body {
            CpeMessage::Response(r) => {
                self.answered(Ok(r));
                return self.next_request();
            }
            CpeMessage::Fault(f) => {
                self.answered(Err(f));
                return self.next_request();
            }
            CpeMessage::TransferComplete(t) => {
                self.effects.push(Effect::TransferComplete {
                    command_key: t.command_key,
                    fault: t.fault,
                });
                AcsMessage::TransferCompleteResponse
            }
            CpeMessage::AutonomousTransferComplete(t) => {
                self.effects.push(Effect::TransferComplete {
                    command_key: String::new(),
                    fault: t.fault,
                });
                AcsMessage::AutonomousTransferCompleteResponse
            }
            CpeMessage::GetRpcMethods => AcsMessage::GetRpcMethodsResponse,
            CpeMessage::RequestDownload { .. } => AcsMessage::RequestDownloadResponse,
            CpeMessage::Kicked { next, .. } => AcsMessage::KickedResponse { next_url: next },
            // A second Inform inside a session breaks the sequence (§3.7.1.2).
            CpeMessage::Inform(_) => {
                return Reply::Body(fault_envelope(
                    self.version,
                    &id,
                    fault_code::REQUEST_DENIED,
                ))
            }
            CpeMessage::Unknown(_) => {
                return Reply::Body(fault_envelope(
                    self.version,
                    &id,
                    fault_code::METHOD_NOT_SUPPORTED,
                ))
            }
        };
        Reply::Body(env.write(&answer))
    }

    /// The session ends without the CPE answering (timeout, connection lost).
    pub fn abandon(&mut self) {
        if let Some(job) = self.in_flight.take() {
            if let Origin::Task(id) = job.origin {
                self.effects.push(Effect::Task {
                    id,
                    outcome: TaskOutcome::Unanswered,
                });
            }
        }
        self.ended = true;
    }

    fn next_request(&mut self) -> Reply {
        if self.in_flight.is_some() {
            // An empty POST while an RPC is unanswered: the CPE dropped it.
            self.answered(Err(FaultStruct {
                code: fault_code::INTERNAL_ERROR,
                string: "the CPE sent an empty POST instead of an answer".into(),
                parameter_faults: Vec::new(),
            }));
        }
        if self.sent >= self.max_rpcs {
            self.ended = true;
            return Reply::End;
        }
        let Some(job) = self.jobs.pop_front() else {
            self.ended = true;
            return Reply::End;
        };
        let id = format!("edge-{}", self.next_id);
        self.next_id += 1;
        self.sent += 1;
        let body = Envelope {
            version: self.version,
            id: &id,
            use_version: None,
        }
        .write(&AcsMessage::Request(job.rpc.clone()));
        self.in_flight = Some(job);
        Reply::Body(body)
    }

    fn answered(&mut self, answer: Result<Response, FaultStruct>) {
        let Some(job) = self.in_flight.take() else {
            return; // An answer to nothing; ignored.
        };
        let answer = match answer {
            Ok(r) if r.method() != job.rpc.method() => Err(FaultStruct {
                code: 0,
                string: format!("{}Response to a {} request", r.method(), job.rpc.method()),
                parameter_faults: Vec::new(),
            }),
            other => other,
        };
        match job.origin {
            Origin::Task(id) => {
                let outcome = match answer {
                    Ok(r) => self.task_result(&job.rpc, r),
                    Err(f) => TaskOutcome::Fault(f),
                };
                self.effects.push(Effect::Task { id, outcome });
            }
            Origin::PresetRead(desired) => {
                let reported = match answer {
                    Ok(Response::GetParameterValues(v)) => v,
                    // Some of the parameters are unknown to the device, or it cannot read
                    // them: set them all and let the device judge.
                    _ => Vec::new(),
                };
                let differ: Vec<SetValue> = desired
                    .values
                    .iter()
                    .filter(|d| {
                        !reported
                            .iter()
                            .any(|r| r.name == d.name && same_value(d, &r.value))
                    })
                    .cloned()
                    .collect();
                if !reported.is_empty() {
                    self.effects.push(Effect::Parameters(reported));
                }
                if differ.is_empty() {
                    self.effects
                        .push(Effect::PresetsConverged(desired.fingerprint));
                } else {
                    let key = format!("preset-{:08x}", desired.fingerprint as u32);
                    self.jobs.push_front(Job {
                        origin: Origin::PresetSet(desired.fingerprint),
                        rpc: Rpc::SetParameterValues {
                            values: differ
                                .into_iter()
                                .map(|v| ParameterValue {
                                    name: v.name,
                                    value: v.value,
                                    kind: v.kind,
                                })
                                .collect(),
                            parameter_key: key,
                        },
                    });
                }
            }
            Origin::PresetSet(fingerprint) => match answer {
                Ok(_) => {
                    if let Rpc::SetParameterValues { values, .. } = &job.rpc {
                        self.effects.push(Effect::Parameters(values.clone()));
                    }
                    self.effects.push(Effect::PresetsConverged(fingerprint));
                }
                Err(f) => self.effects.push(Effect::PresetFault(f)),
            },
        }
    }

    fn task_result(&mut self, rpc: &Rpc, r: Response) -> TaskOutcome {
        let result = match r {
            Response::GetParameterValues(values) => {
                let out = json!({ "values": values.iter().map(|v| json!({
                    "name": v.name, "value": v.value, "type": v.kind,
                })).collect::<Vec<_>>() });
                self.effects.push(Effect::Parameters(values));
                out
            }
            Response::SetParameterValues { status } => {
                if let Rpc::SetParameterValues { values, .. } = rpc {
                    self.effects.push(Effect::Parameters(values.clone()));
                }
                json!({ "status": status })
            }
            Response::GetParameterNames(names) => json!({ "names": names.iter().map(|n| json!({
                "name": n.name, "writable": n.writable,
            })).collect::<Vec<_>>() }),
            Response::GetParameterAttributes(attrs) => {
                json!({ "attributes": attrs.iter().map(|a| json!({
                    "name": a.name, "notification": a.notification, "access_list": a.access_list,
                })).collect::<Vec<_>>() })
            }
            Response::GetRpcMethods(methods) => json!({ "methods": methods }),
            Response::AddObject { instance, status } => {
                json!({ "instance": instance, "status": status })
            }
            Response::DeleteObject { status } => json!({ "status": status }),
            Response::Download { status: 1, .. } => return TaskOutcome::Waiting,
            Response::Download {
                status,
                start_time,
                complete_time,
            }
            | Response::Upload {
                status,
                start_time,
                complete_time,
            } => {
                json!({ "status": status, "start_time": start_time, "complete_time": complete_time })
            }
            Response::SetParameterAttributes
            | Response::Reboot
            | Response::FactoryReset
            | Response::ScheduleInform => json!({}),
        };
        TaskOutcome::Done(result)
    }
}

/// `Device.` for TR-181 devices, `InternetGatewayDevice.` for TR-098 ones.
pub fn root_of(inform: &Inform) -> &'static str {
    if inform
        .parameters
        .iter()
        .any(|p| p.name.starts_with("InternetGatewayDevice."))
    {
        "InternetGatewayDevice."
    } else {
        "Device."
    }
}

/// The device id as GenieACS writes it: `OUI-ProductClass-SerialNumber`, each part with
/// anything but letters, digits, `_` and `.` percent-encoded (so `-` separates, always).
pub fn device_id(inform: &Inform) -> String {
    let d = &inform.device;
    let mut out = String::with_capacity(d.oui.len() + d.product_class.len() + 24);
    // Without a product class the id is `OUI-SerialNumber`.
    let parts = [&d.oui, &d.product_class, &d.serial_number];
    for (i, part) in parts
        .into_iter()
        .enumerate()
        .filter(|(i, p)| *i != 1 || !p.is_empty())
        .map(|(_, p)| p)
        .enumerate()
    {
        if i > 0 {
            out.push('-');
        }
        for b in part.bytes() {
            if b.is_ascii_alphanumeric() || b == b'_' || b == b'.' {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
