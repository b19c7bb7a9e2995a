//! The CWMP messages as values.

use super::CwmpVersion;

/// One message from a CPE, with its SOAP header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// The namespace the CPE used; the answer goes back in the same one.
    pub version: CwmpVersion,
    pub header: Header,
    pub body: CpeMessage,
}

/// SOAP header elements (TR-069 §3.4.7).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Header {
    /// `cwmp:ID`, echoed in the answer.
    pub id: Option<String>,
    /// `cwmp:HoldRequests`: the ACS must not send requests until this is false.
    pub hold_requests: bool,
    /// `cwmp:SessionTimeout` (seconds, CWMP 1.4).
    pub session_timeout: Option<u32>,
    /// `cwmp:SupportedCWMPVersions` (CWMP 1.4), e.g. `1.0,1.1,1.2,1.3,1.4`.
    pub supported_versions: Vec<CwmpVersion>,
}

/// `OUI-ProductClass-SerialNumber` and the manufacturer, from the Inform's DeviceIdStruct.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceIdStruct {
    pub manufacturer: String,
    pub oui: String,
    pub product_class: String,
    pub serial_number: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventStruct {
    /// `0 BOOTSTRAP`, `1 BOOT`, `2 PERIODIC`, `M Download`...
    pub code: String,
    pub command_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterValue {
    pub name: String,
    pub value: String,
    /// The `xsi:type` (`xsd:string`, `xsd:unsignedInt`...) without its prefix, when given.
    /// Some CPEs leave it out.
    pub kind: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Inform {
    pub device: DeviceIdStruct,
    pub events: Vec<EventStruct>,
    pub max_envelopes: u32,
    pub current_time: String,
    pub retry_count: u32,
    pub parameters: Vec<ParameterValue>,
}

impl Inform {
    pub fn has_event(&self, code: &str) -> bool {
        self.events
            .iter()
            .any(|e| e.code.eq_ignore_ascii_case(code))
    }

    pub fn parameter(&self, suffix: &str) -> Option<&str> {
        self.parameters
            .iter()
            .find(|p| p.name.ends_with(suffix))
            .map(|p| p.value.as_str())
    }
}

/// A fault: a CPE's answer to an RPC it could not do, or inside a TransferComplete.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FaultStruct {
    pub code: u32,
    pub string: String,
    /// SetParameterValuesFault entries: which parameter, and why.
    pub parameter_faults: Vec<ParameterFault>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParameterFault {
    pub name: String,
    pub code: u32,
    pub string: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TransferComplete {
    pub command_key: String,
    /// Code 0 means success.
    pub fault: FaultStruct,
    pub start_time: String,
    pub complete_time: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AutonomousTransferComplete {
    pub announce_url: String,
    pub transfer_url: String,
    pub is_download: bool,
    pub file_type: String,
    pub file_size: u64,
    pub target_file_name: String,
    pub fault: FaultStruct,
    pub start_time: String,
    pub complete_time: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterInfo {
    pub name: String,
    pub writable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParameterAttribute {
    pub name: String,
    pub notification: u8,
    pub access_list: Vec<String>,
}

/// What a CPE sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpeMessage {
    Inform(Box<Inform>),
    TransferComplete(TransferComplete),
    AutonomousTransferComplete(Box<AutonomousTransferComplete>),
    /// The CPE asks which methods the ACS supports.
    GetRpcMethods,
    RequestDownload {
        file_type: String,
        args: Vec<(String, String)>,
    },
    Kicked {
        command: String,
        referer: String,
        arg: String,
        next: String,
    },
    /// The CPE's answer to an RPC the ACS sent.
    Response(Response),
    /// A SOAP fault from the CPE (its answer to an RPC it could not do).
    Fault(FaultStruct),
    /// A method this ACS does not know; answered with fault 8000.
    Unknown(String),
}

/// A CPE's answer to an ACS request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    GetRpcMethods(Vec<String>),
    GetParameterNames(Vec<ParameterInfo>),
    GetParameterValues(Vec<ParameterValue>),
    /// 0: applied; 1: applied, takes effect after a reboot or commit.
    SetParameterValues {
        status: u8,
    },
    GetParameterAttributes(Vec<ParameterAttribute>),
    SetParameterAttributes,
    AddObject {
        instance: u32,
        status: u8,
    },
    DeleteObject {
        status: u8,
    },
    Reboot,
    FactoryReset,
    /// Status 0: done (times given); 1: will complete later with a TransferComplete.
    Download {
        status: u8,
        start_time: String,
        complete_time: String,
    },
    Upload {
        status: u8,
        start_time: String,
        complete_time: String,
    },
    ScheduleInform,
}

impl Response {
    /// The method this answers (`GetParameterValues` for a GetParameterValuesResponse).
    pub fn method(&self) -> &'static str {
        match self {
            Response::GetRpcMethods(_) => "GetRPCMethods",
            Response::GetParameterNames(_) => "GetParameterNames",
            Response::GetParameterValues(_) => "GetParameterValues",
            Response::SetParameterValues { .. } => "SetParameterValues",
            Response::GetParameterAttributes(_) => "GetParameterAttributes",
            Response::SetParameterAttributes => "SetParameterAttributes",
            Response::AddObject { .. } => "AddObject",
            Response::DeleteObject { .. } => "DeleteObject",
            Response::Reboot => "Reboot",
            Response::FactoryReset => "FactoryReset",
            Response::Download { .. } => "Download",
            Response::Upload { .. } => "Upload",
            Response::ScheduleInform => "ScheduleInform",
        }
    }
}

/// A SetParameterAttributes entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAttribute {
    pub name: String,
    /// 0 off, 1 passive, 2 active.
    pub notification: Option<u8>,
    pub access_list: Option<Vec<String>>,
}

/// A request the ACS sends to the CPE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rpc {
    GetRpcMethods,
    GetParameterNames {
        path: String,
        next_level: bool,
    },
    GetParameterValues(Vec<String>),
    SetParameterValues {
        values: Vec<ParameterValue>,
        parameter_key: String,
    },
    GetParameterAttributes(Vec<String>),
    SetParameterAttributes(Vec<SetAttribute>),
    AddObject {
        path: String,
        parameter_key: String,
    },
    DeleteObject {
        path: String,
        parameter_key: String,
    },
    Reboot {
        command_key: String,
    },
    FactoryReset,
    Download {
        command_key: String,
        file_type: String,
        url: String,
        username: String,
        password: String,
        file_size: u64,
        target_file_name: String,
        delay_seconds: u32,
    },
    Upload {
        command_key: String,
        file_type: String,
        url: String,
        username: String,
        password: String,
        delay_seconds: u32,
    },
    ScheduleInform {
        delay_seconds: u32,
        command_key: String,
    },
}

impl Rpc {
    pub fn method(&self) -> &'static str {
        match self {
            Rpc::GetRpcMethods => "GetRPCMethods",
            Rpc::GetParameterNames { .. } => "GetParameterNames",
            Rpc::GetParameterValues(_) => "GetParameterValues",
            Rpc::SetParameterValues { .. } => "SetParameterValues",
            Rpc::GetParameterAttributes(_) => "GetParameterAttributes",
            Rpc::SetParameterAttributes(_) => "SetParameterAttributes",
            Rpc::AddObject { .. } => "AddObject",
            Rpc::DeleteObject { .. } => "DeleteObject",
            Rpc::Reboot { .. } => "Reboot",
            Rpc::FactoryReset => "FactoryReset",
            Rpc::Download { .. } => "Download",
            Rpc::Upload { .. } => "Upload",
            Rpc::ScheduleInform { .. } => "ScheduleInform",
        }
    }
}

/// The methods this ACS answers when a CPE calls GetRPCMethods.
pub const ACS_METHODS: [&str; 6] = [
    "Inform",
    "GetRPCMethods",
    "TransferComplete",
    "AutonomousTransferComplete",
    "RequestDownload",
    "Kicked",
];
