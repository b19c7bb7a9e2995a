//! SOAP/CWMP writer: the ACS's answers and requests, in the namespace the CPE used.

use super::fault_code;
use super::types::*;
use super::CwmpVersion;

/// What the ACS sends in an HTTP response body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcsMessage {
    InformResponse,
    TransferCompleteResponse,
    AutonomousTransferCompleteResponse,
    GetRpcMethodsResponse,
    RequestDownloadResponse,
    KickedResponse { next_url: String },
    Request(Rpc),
}

/// The SOAP envelope around one message.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    pub version: CwmpVersion,
    /// `cwmp:ID`: echoed from the CPE's request, or the ACS's own for its requests.
    pub id: &'a str,
    /// `cwmp:UseCWMPVersion` in an InformResponse, when the CPE offered SupportedCWMPVersions.
    pub use_version: Option<CwmpVersion>,
}

impl Envelope<'_> {
    pub fn write(&self, msg: &AcsMessage) -> Vec<u8> {
        let mut w = Writer::open(self);
        match msg {
            AcsMessage::InformResponse => {
                w.method("InformResponse");
                w.field("MaxEnvelopes", "1");
                w.end_method("InformResponse");
            }
            AcsMessage::TransferCompleteResponse => w.empty_method("TransferCompleteResponse"),
            AcsMessage::AutonomousTransferCompleteResponse => {
                w.empty_method("AutonomousTransferCompleteResponse")
            }
            AcsMessage::RequestDownloadResponse => w.empty_method("RequestDownloadResponse"),
            AcsMessage::GetRpcMethodsResponse => {
                w.method("GetRPCMethodsResponse");
                w.strings("MethodList", ACS_METHODS.iter().copied());
                w.end_method("GetRPCMethodsResponse");
            }
            AcsMessage::KickedResponse { next_url } => {
                w.method("KickedResponse");
                w.field("NextURL", next_url);
                w.end_method("KickedResponse");
            }
            AcsMessage::Request(rpc) => w.rpc(rpc),
        }
        w.close()
    }
}

/// A SOAP fault answering a CPE's request (8000 for a method the ACS does not support).
pub fn fault_envelope(version: CwmpVersion, id: &str, code: u32) -> Vec<u8> {
    let env = Envelope {
        version,
        id,
        use_version: None,
    };
    let mut w = Writer::open(&env);
    let who = if code == fault_code::INTERNAL_ERROR {
        "Server"
    } else {
        "Client"
    };
    w.out.push_str("<soap-env:Fault><faultcode>");
    w.out.push_str(who);
    w.out
        .push_str("</faultcode><faultstring>CWMP fault</faultstring><detail><cwmp:Fault>");
    w.field("FaultCode", &code.to_string());
    w.field("FaultString", fault_code::acs_fault_string(code));
    w.out.push_str("</cwmp:Fault></detail></soap-env:Fault>");
    w.close()
}

struct Writer {
    out: String,
}

impl Writer {
    fn open(env: &Envelope<'_>) -> Writer {
        let mut out = String::with_capacity(1024);
        out.push_str(concat!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
            "<soap-env:Envelope xmlns:soap-env=\"http://schemas.xmlsoap.org/soap/envelope/\"",
            " xmlns:soap-enc=\"http://schemas.xmlsoap.org/soap/encoding/\"",
            " xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\"",
            " xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:cwmp=\""
        ));
        out.push_str(env.version.namespace());
        out.push_str("\"><soap-env:Header><cwmp:ID soap-env:mustUnderstand=\"1\">");
        push_escaped(&mut out, env.id);
        out.push_str("</cwmp:ID>");
        if let Some(v) = env.use_version {
            out.push_str("<cwmp:UseCWMPVersion soap-env:mustUnderstand=\"1\">");
            out.push_str(v.label());
            out.push_str("</cwmp:UseCWMPVersion>");
        }
        out.push_str("</soap-env:Header><soap-env:Body>");
        Writer { out }
    }

    fn close(mut self) -> Vec<u8> {
        self.out.push_str("</soap-env:Body></soap-env:Envelope>");
        self.out.into_bytes()
    }

    fn method(&mut self, name: &str) {
        self.out.push_str("<cwmp:");
        self.out.push_str(name);
        self.out.push('>');
    }

    fn end_method(&mut self, name: &str) {
        self.out.push_str("</cwmp:");
        self.out.push_str(name);
        self.out.push('>');
    }

    fn empty_method(&mut self, name: &str) {
        self.out.push_str("<cwmp:");
        self.out.push_str(name);
        self.out.push_str("/>");
    }

    fn field(&mut self, name: &str, value: &str) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        push_escaped(&mut self.out, value);
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }

    fn number(&mut self, name: &str, value: u64) {
        self.field(name, &value.to_string());
    }

    fn flag(&mut self, name: &str, value: bool) {
        self.field(name, if value { "true" } else { "false" });
    }

    fn array_open(&mut self, name: &str, item_type: &str, count: usize) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push_str(" soap-enc:arrayType=\"");
        self.out.push_str(item_type);
        self.out.push('[');
        self.out.push_str(&count.to_string());
        self.out.push_str("]\">");
    }

    fn strings<'s>(&mut self, name: &str, items: impl ExactSizeIterator<Item = &'s str>) {
        self.array_open(name, "xsd:string", items.len());
        for s in items {
            self.field("string", s);
        }
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }

    fn rpc(&mut self, rpc: &Rpc) {
        let name = rpc.method();
        self.method(name);
        match rpc {
            Rpc::GetRpcMethods | Rpc::FactoryReset => {}
            Rpc::GetParameterNames { path, next_level } => {
                self.field("ParameterPath", path);
                self.flag("NextLevel", *next_level);
            }
            Rpc::GetParameterValues(names) | Rpc::GetParameterAttributes(names) => {
                self.strings("ParameterNames", names.iter().map(String::as_str));
            }
            Rpc::SetParameterValues {
                values,
                parameter_key,
            } => {
                self.array_open("ParameterList", "cwmp:ParameterValueStruct", values.len());
                for v in values {
                    self.out.push_str("<ParameterValueStruct>");
                    self.field("Name", &v.name);
                    self.out.push_str("<Value xsi:type=\"xsd:");
                    push_escaped(&mut self.out, v.kind.as_deref().unwrap_or("string"));
                    self.out.push_str("\">");
                    push_escaped(&mut self.out, &v.value);
                    self.out.push_str("</Value></ParameterValueStruct>");
                }
                self.out.push_str("</ParameterList>");
                self.field("ParameterKey", parameter_key);
            }
            Rpc::SetParameterAttributes(list) => {
                self.array_open(
                    "ParameterList",
                    "cwmp:SetParameterAttributesStruct",
                    list.len(),
                );
                for a in list {
                    self.out.push_str("<SetParameterAttributesStruct>");
                    self.field("Name", &a.name);
                    self.flag("NotificationChange", a.notification.is_some());
                    self.number("Notification", u64::from(a.notification.unwrap_or(0)));
                    self.flag("AccessListChange", a.access_list.is_some());
                    let empty = Vec::new();
                    let list = a.access_list.as_ref().unwrap_or(&empty);
                    self.strings("AccessList", list.iter().map(String::as_str));
                    self.out.push_str("</SetParameterAttributesStruct>");
                }
                self.out.push_str("</ParameterList>");
            }
            Rpc::AddObject {
                path,
                parameter_key,
            }
            | Rpc::DeleteObject {
                path,
                parameter_key,
            } => {
                self.field("ObjectName", path);
                self.field("ParameterKey", parameter_key);
            }
            Rpc::Reboot { command_key } => self.field("CommandKey", command_key),
            Rpc::Download {
                command_key,
                file_type,
                url,
                username,
                password,
                file_size,
                target_file_name,
                delay_seconds,
            } => {
                self.field("CommandKey", command_key);
                self.field("FileType", file_type);
                self.field("URL", url);
                self.field("Username", username);
                self.field("Password", password);
                self.number("FileSize", *file_size);
                self.field("TargetFileName", target_file_name);
                self.number("DelaySeconds", u64::from(*delay_seconds));
                self.field("SuccessURL", "");
                self.field("FailureURL", "");
            }
            Rpc::Upload {
                command_key,
                file_type,
                url,
                username,
                password,
                delay_seconds,
            } => {
                self.field("CommandKey", command_key);
                self.field("FileType", file_type);
                self.field("URL", url);
                self.field("Username", username);
                self.field("Password", password);
                self.number("DelaySeconds", u64::from(*delay_seconds));
            }
            Rpc::ScheduleInform {
                delay_seconds,
                command_key,
            } => {
                self.number("DelaySeconds", u64::from(*delay_seconds));
                self.field("CommandKey", command_key);
            }
        }
        self.end_method(name);
    }
}

fn push_escaped(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 cannot carry most control characters even escaped; drop them.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
}
