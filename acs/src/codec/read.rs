//! Streaming SOAP/CWMP reader: quick-xml events and a bounded stack of element names.

use std::borrow::Cow;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use thiserror::Error;

use super::types::*;
use super::CwmpVersion;

/// Bounds on what one message may hold; past them the message is refused, not grown into.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Nesting depth of elements.
    pub max_depth: usize,
    /// Entries in any one list (parameters, events, faults...).
    pub max_items: usize,
    /// Bytes of text in one element.
    pub max_text: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 32,
            max_items: 200_000,
            max_text: 64 * 1024,
        }
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("not XML: {0}")]
    Xml(String),
    #[error("no SOAP Envelope")]
    NoEnvelope,
    #[error("no method in the SOAP Body")]
    NoMethod,
    #[error("elements nested deeper than {0}")]
    TooDeep(usize),
    #[error("more than {0} entries in a list")]
    TooMany(usize),
    #[error("an element's text is longer than {0} bytes")]
    TextTooLong(usize),
    #[error("`{field}` is not a valid {what}")]
    Invalid {
        field: &'static str,
        what: &'static str,
    },
}

/// Parses one CPE message. `body` may be UTF-8 or ISO-8859-1 (declared, or not valid UTF-8);
/// Latin-1 is transcoded first.
pub fn parse(body: &[u8], limits: &Limits) -> Result<Incoming, ParseError> {
    let text = decode(body);
    let mut reader = Reader::from_reader(text.as_bytes());
    reader.config_mut().trim_text(true);
    let mut walk = Walk::new(*limits);
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => walk.open(&e)?,
            Ok(Event::Empty(e)) => {
                walk.open(&e)?;
                walk.close()?;
            }
            Ok(Event::End(_)) => walk.close()?,
            Ok(Event::Text(t)) => {
                let s = t.unescape().map_err(|e| ParseError::Xml(e.to_string()))?;
                walk.text(&s)?;
            }
            Ok(Event::CData(c)) => {
                let raw = c.into_inner();
                walk.text(&String::from_utf8_lossy(&raw))?;
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => return Err(ParseError::Xml(e.to_string())),
        }
    }
    walk.finish()
}

/// UTF-8 as is; ISO-8859-1 (declared in the XML declaration, or bytes that are not UTF-8)
/// mapped byte for byte to the same code points.
fn decode(body: &[u8]) -> Cow<'_, str> {
    let head = &body[..body.len().min(100)];
    let declared_latin1 = head
        .windows(10)
        .any(|w| w.eq_ignore_ascii_case(b"iso-8859-1"));
    match std::str::from_utf8(body) {
        Ok(s) if !declared_latin1 => Cow::Borrowed(s),
        _ => Cow::Owned(body.iter().map(|&b| b as char).collect()),
    }
}

fn local(name: &[u8]) -> &[u8] {
    match name.iter().rposition(|&b| b == b':') {
        Some(i) => &name[i + 1..],
        None => name,
    }
}

fn prefix(name: &[u8]) -> &[u8] {
    match name.iter().position(|&b| b == b':') {
        Some(i) => &name[..i],
        None => b"",
    }
}

fn is(name: &[u8], expected: &str) -> bool {
    name.eq_ignore_ascii_case(expected.as_bytes())
}

/// The element-name stack and what has been gathered so far.
struct Walk {
    limits: Limits,
    /// Local names of the open elements: `names[..depth]`. Closed elements' buffers stay and
    /// are reused, so a message allocates once per nesting level, not once per element.
    names: Vec<Vec<u8>>,
    depth: usize,
    text: String,
    /// `xsi:type` of the innermost open element, when given.
    kind: Option<String>,
    /// Prefixes bound to a cwmp namespace (`xmlns:cwmp="urn:dslforum-org:cwmp-1-2"`); a
    /// default namespace is bound to the empty prefix.
    bindings: Vec<(Vec<u8>, CwmpVersion)>,
    /// The version bound to the prefix of the first element that used a cwmp one.
    version: Option<CwmpVersion>,
    seen_envelope: bool,
    header: Header,
    method: Option<Vec<u8>>,
    msg: Gathered,
}

/// Fields gathered from the body before the message is assembled.
#[derive(Default)]
struct Gathered {
    scalars: Vec<(Vec<u8>, String)>,
    device: DeviceIdStruct,
    events: Vec<EventStruct>,
    event: (String, String),
    values: Vec<ParameterValue>,
    value: (String, String, Option<String>),
    infos: Vec<ParameterInfo>,
    info: (String, bool),
    attributes: Vec<ParameterAttribute>,
    attribute: ParameterAttribute,
    strings: Vec<String>,
    args: Vec<(String, String)>,
    arg: (String, String),
    fault: FaultStruct,
    parameter_fault: ParameterFault,
}

impl Walk {
    fn new(limits: Limits) -> Walk {
        Walk {
            limits,
            names: Vec::with_capacity(8),
            depth: 0,
            text: String::new(),
            kind: None,
            bindings: Vec::new(),
            version: None,
            seen_envelope: false,
            header: Header::default(),
            method: None,
            msg: Gathered::default(),
        }
    }

    fn open(&mut self, e: &BytesStart<'_>) -> Result<(), ParseError> {
        if self.depth >= self.limits.max_depth {
            return Err(ParseError::TooDeep(self.limits.max_depth));
        }
        self.kind = None;
        for a in e.attributes().with_checks(false).flatten() {
            let key = a.key.as_ref();
            if key == b"xmlns" || key.starts_with(b"xmlns:") {
                if let Some(v) = CwmpVersion::from_namespace(a.value.as_ref()) {
                    let p = key.strip_prefix(b"xmlns:").unwrap_or(b"").to_vec();
                    if self.bindings.len() < 16 {
                        self.bindings.push((p, v));
                    }
                }
            } else if is(local(key), "type") {
                let v = a
                    .unescape_value()
                    .map_err(|e| ParseError::Xml(e.to_string()))?;
                self.kind = Some(String::from_utf8_lossy(local(v.as_bytes())).into_owned());
            }
        }
        let name = e.name();
        let raw = name.as_ref();
        if self.version.is_none() {
            let p = prefix(raw);
            if let Some((_, v)) = self.bindings.iter().rev().find(|(b, _)| b == p) {
                // The envelope's own prefix is soap's; only cwmp-bound prefixes count.
                self.version = Some(*v);
            }
        }
        let l = local(raw);
        match self.depth {
            0 if is(l, "Envelope") => self.seen_envelope = true,
            2 if is(&self.names[1], "Body") && self.method.is_none() => {
                self.method = Some(l.to_vec());
            }
            _ => {}
        }
        match self.names.get_mut(self.depth) {
            Some(n) => {
                n.clear();
                n.extend_from_slice(l);
            }
            None => self.names.push(l.to_vec()),
        }
        self.depth += 1;
        self.text.clear();
        Ok(())
    }

    fn text(&mut self, s: &str) -> Result<(), ParseError> {
        if self.text.len() + s.len() > self.limits.max_text {
            return Err(ParseError::TextTooLong(self.limits.max_text));
        }
        self.text.push_str(s);
        Ok(())
    }

    fn close(&mut self) -> Result<(), ParseError> {
        let text = std::mem::take(&mut self.text);
        let depth = self.depth;
        if depth >= 3 && is(&self.names[1], "Header") {
            self.header_field(&text)?;
        } else if depth >= 4 && is(&self.names[1], "Body") {
            self.body_field(text)?;
        }
        self.depth = self.depth.saturating_sub(1);
        self.kind = None;
        Ok(())
    }

    fn header_field(&mut self, text: &str) -> Result<(), ParseError> {
        if self.depth != 3 {
            return Ok(());
        }
        let l = &self.names[2];
        if is(l, "ID") {
            self.header.id = Some(text.to_string());
        } else if is(l, "HoldRequests") {
            self.header.hold_requests = text == "1" || text.eq_ignore_ascii_case("true");
        } else if is(l, "SessionTimeout") {
            self.header.session_timeout = text.parse().ok();
        } else if is(l, "SupportedCWMPVersions") {
            self.header.supported_versions = text
                .split(',')
                .filter_map(CwmpVersion::from_label)
                .take(8)
                .collect();
        }
        Ok(())
    }

    fn push<T>(limits: &Limits, list: &mut Vec<T>, item: T) -> Result<(), ParseError> {
        if list.len() >= limits.max_items {
            return Err(ParseError::TooMany(limits.max_items));
        }
        list.push(item);
        Ok(())
    }

    /// Called at the end of an element below the method (depth ≥ 4: Envelope, Body, Method).
    fn body_field(&mut self, text: String) -> Result<(), ParseError> {
        let s = &self.names[..self.depth];
        let d = s.len();
        let m = &mut self.msg;
        let lim = &self.limits;
        let leaf = &s[d - 1];
        let parent = &s[d - 2];
        if d == 4 {
            // Direct children of the method: scalar fields (Status, CommandKey...) and the
            // ends of lists.
            let new = !text.is_empty() || m.scalars.iter().all(|(k, _)| k != leaf);
            if new && m.scalars.len() < 64 {
                m.scalars.push((leaf.clone(), text));
            }
            return Ok(());
        }
        if is(parent, "DeviceId") {
            let f = &mut m.device;
            if is(leaf, "Manufacturer") {
                f.manufacturer = text;
            } else if is(leaf, "OUI") {
                f.oui = text;
            } else if is(leaf, "ProductClass") {
                f.product_class = text;
            } else if is(leaf, "SerialNumber") {
                f.serial_number = text;
            }
        } else if is(parent, "EventStruct") {
            if is(leaf, "EventCode") {
                m.event.0 = text;
            } else if is(leaf, "CommandKey") {
                m.event.1 = text;
            }
        } else if is(leaf, "EventStruct") {
            let (code, command_key) = std::mem::take(&mut m.event);
            Walk::push(lim, &mut m.events, EventStruct { code, command_key })?;
        } else if is(parent, "ParameterValueStruct") {
            if is(leaf, "Name") {
                m.value.0 = text;
            } else if is(leaf, "Value") {
                m.value.1 = text;
                m.value.2 = self.kind.take();
            }
        } else if is(leaf, "ParameterValueStruct") {
            let (name, value, kind) = std::mem::take(&mut m.value);
            Walk::push(lim, &mut m.values, ParameterValue { name, value, kind })?;
        } else if is(parent, "ParameterInfoStruct") {
            if is(leaf, "Name") {
                m.info.0 = text;
            } else if is(leaf, "Writable") {
                m.info.1 = text == "1" || text.eq_ignore_ascii_case("true");
            }
        } else if is(leaf, "ParameterInfoStruct") {
            let (name, writable) = std::mem::take(&mut m.info);
            Walk::push(lim, &mut m.infos, ParameterInfo { name, writable })?;
        } else if is(parent, "ParameterAttributeStruct") {
            if is(leaf, "Name") {
                m.attribute.name = text;
            } else if is(leaf, "Notification") {
                m.attribute.notification = text.parse().unwrap_or(0);
            }
        } else if d >= 7 && is(parent, "AccessList") && is(&s[d - 3], "ParameterAttributeStruct") {
            Walk::push(lim, &mut m.attribute.access_list, text)?;
        } else if is(leaf, "ParameterAttributeStruct") {
            let a = std::mem::take(&mut m.attribute);
            Walk::push(lim, &mut m.attributes, a)?;
        } else if is(parent, "MethodList") {
            Walk::push(lim, &mut m.strings, text)?;
        } else if is(parent, "ArgStruct") {
            if is(leaf, "Name") {
                m.arg.0 = text;
            } else if is(leaf, "Value") {
                m.arg.1 = text;
            }
        } else if is(leaf, "ArgStruct") {
            let a = std::mem::take(&mut m.arg);
            Walk::push(lim, &mut m.args, a)?;
        } else if is(parent, "SetParameterValuesFault") {
            let f = &mut m.parameter_fault;
            if is(leaf, "ParameterName") {
                f.name = text;
            } else if is(leaf, "FaultCode") {
                f.code = text.trim().parse().unwrap_or(0);
            } else if is(leaf, "FaultString") {
                f.string = text;
            }
        } else if is(leaf, "SetParameterValuesFault") {
            let f = std::mem::take(&mut m.parameter_fault);
            Walk::push(lim, &mut m.fault.parameter_faults, f)?;
        } else if is(parent, "FaultStruct") || is(parent, "Fault") {
            // TransferComplete's FaultStruct, or the cwmp:Fault inside a SOAP fault's detail.
            if is(leaf, "FaultCode") {
                m.fault.code = text.trim().parse().map_err(|_| ParseError::Invalid {
                    field: "FaultCode",
                    what: "number",
                })?;
            } else if is(leaf, "FaultString") {
                m.fault.string = text;
            }
        }
        Ok(())
    }

    fn scalar(&self, name: &str) -> &str {
        self.msg
            .scalars
            .iter()
            .find(|(k, _)| is(k, name))
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    fn number<T: std::str::FromStr + Default>(&self, name: &'static str) -> Result<T, ParseError> {
        let s = self.scalar(name).trim();
        if s.is_empty() {
            return Ok(T::default());
        }
        s.parse().map_err(|_| ParseError::Invalid {
            field: name,
            what: "number",
        })
    }

    fn flag(&self, name: &str) -> bool {
        let s = self.scalar(name).trim();
        s == "1" || s.eq_ignore_ascii_case("true")
    }

    fn finish(mut self) -> Result<Incoming, ParseError> {
        if !self.seen_envelope {
            return Err(ParseError::NoEnvelope);
        }
        if self.depth != 0 {
            return Err(ParseError::Xml(
                "the document ends inside an element".into(),
            ));
        }
        let method = self.method.take().ok_or(ParseError::NoMethod)?;
        let version = self
            .version
            .or_else(|| self.bindings.iter().map(|(_, v)| *v).max())
            .unwrap_or_default();
        let body = self.message(&method)?;
        Ok(Incoming {
            version,
            header: std::mem::take(&mut self.header),
            body,
        })
    }

    fn message(&mut self, method: &[u8]) -> Result<CpeMessage, ParseError> {
        let m = String::from_utf8_lossy(method).into_owned();
        let times = |w: &Walk| {
            (
                w.scalar("StartTime").to_string(),
                w.scalar("CompleteTime").to_string(),
            )
        };
        let msg = match m.to_ascii_lowercase().as_str() {
            "inform" => CpeMessage::Inform(Box::new(Inform {
                device: std::mem::take(&mut self.msg.device),
                events: std::mem::take(&mut self.msg.events),
                max_envelopes: self.number("MaxEnvelopes")?,
                current_time: self.scalar("CurrentTime").to_string(),
                retry_count: self.number("RetryCount")?,
                parameters: std::mem::take(&mut self.msg.values),
            })),
            "transfercomplete" => CpeMessage::TransferComplete(TransferComplete {
                command_key: self.scalar("CommandKey").to_string(),
                fault: std::mem::take(&mut self.msg.fault),
                start_time: times(self).0,
                complete_time: times(self).1,
            }),
            "autonomoustransfercomplete" => {
                CpeMessage::AutonomousTransferComplete(Box::new(AutonomousTransferComplete {
                    announce_url: self.scalar("AnnounceURL").to_string(),
                    transfer_url: self.scalar("TransferURL").to_string(),
                    is_download: self.flag("IsDownload"),
                    file_type: self.scalar("FileType").to_string(),
                    file_size: self.number("FileSize")?,
                    target_file_name: self.scalar("TargetFileName").to_string(),
                    fault: std::mem::take(&mut self.msg.fault),
                    start_time: times(self).0,
                    complete_time: times(self).1,
                }))
            }
            "getrpcmethods" => CpeMessage::GetRpcMethods,
            "requestdownload" => CpeMessage::RequestDownload {
                file_type: self.scalar("FileType").to_string(),
                args: std::mem::take(&mut self.msg.args),
            },
            "kicked" => CpeMessage::Kicked {
                command: self.scalar("Command").to_string(),
                referer: self.scalar("Referer").to_string(),
                arg: self.scalar("Arg").to_string(),
                next: self.scalar("Next").to_string(),
            },
            "fault" => CpeMessage::Fault(std::mem::take(&mut self.msg.fault)),
            "getrpcmethodsresponse" => CpeMessage::Response(Response::GetRpcMethods(
                std::mem::take(&mut self.msg.strings),
            )),
            "getparameternamesresponse" => CpeMessage::Response(Response::GetParameterNames(
                std::mem::take(&mut self.msg.infos),
            )),
            "getparametervaluesresponse" => CpeMessage::Response(Response::GetParameterValues(
                std::mem::take(&mut self.msg.values),
            )),
            "setparametervaluesresponse" => CpeMessage::Response(Response::SetParameterValues {
                status: self.number("Status")?,
            }),
            "getparameterattributesresponse" => CpeMessage::Response(
                Response::GetParameterAttributes(std::mem::take(&mut self.msg.attributes)),
            ),
            "setparameterattributesresponse" => {
                CpeMessage::Response(Response::SetParameterAttributes)
            }
            "addobjectresponse" => CpeMessage::Response(Response::AddObject {
                instance: self.number("InstanceNumber")?,
                status: self.number("Status")?,
            }),
            "deleteobjectresponse" => CpeMessage::Response(Response::DeleteObject {
                status: self.number("Status")?,
            }),
            "rebootresponse" => CpeMessage::Response(Response::Reboot),
            "factoryresetresponse" => CpeMessage::Response(Response::FactoryReset),
            "downloadresponse" => CpeMessage::Response(Response::Download {
                status: self.number("Status")?,
                start_time: times(self).0,
                complete_time: times(self).1,
            }),
            "uploadresponse" => CpeMessage::Response(Response::Upload {
                status: self.number("Status")?,
                start_time: times(self).0,
                complete_time: times(self).1,
            }),
            "scheduleinformresponse" => CpeMessage::Response(Response::ScheduleInform),
            _ => CpeMessage::Unknown(m),
        };
        Ok(msg)
    }
}
