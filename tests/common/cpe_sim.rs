//! A TR-069 CPE for the tests, written apart from the server's code: its own HTTP/1.1 client
//! (keep-alive, cookies, Digest with its own MD5), its own SOAP reading (string search) and
//! writing, a small data model, and a connection request listener with Digest.
//!
//! It answers every ACS RPC: Get/SetParameterValues, GetParameterNames, Get/Set attributes,
//! Add/DeleteObject, Reboot, FactoryReset, Download (fetching the file in two ranges),
//! Upload, ScheduleInform, GetRPCMethods. Reboots, factory resets and downloads show in its
//! next Inform's events (`M Reboot`, `0 BOOTSTRAP`, `7 TRANSFER COMPLETE`, `M Download`) and a
//! download is reported with a TransferComplete.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use md5::{Digest, Md5};

pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A byte stream: TCP, or TLS over TCP.
pub trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// One keep-alive HTTP/1.1 connection.
pub struct Conn {
    stream: BufReader<Box<dyn Stream>>,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> Conn {
        Conn::open_with(addr, None)
    }

    /// Over TLS when `tls` is given (the server name is `localhost`).
    pub fn open_with(addr: SocketAddr, tls: Option<&Arc<rustls::ClientConfig>>) -> Conn {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.set_nodelay(true).unwrap();
        let stream: Box<dyn Stream> = match tls {
            None => Box::new(s),
            Some(cfg) => {
                let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
                let client = rustls::ClientConnection::new(Arc::clone(cfg), name).unwrap();
                Box::new(rustls::StreamOwned::new(client, s))
            }
        };
        Conn {
            stream: BufReader::new(stream),
        }
    }

    /// Sends a request; `chunked` sends the body in two chunks.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[String],
        body: &[u8],
        chunked: bool,
    ) -> Option<Answer> {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: acs\r\n");
        for h in headers {
            head.push_str(h);
            head.push_str("\r\n");
        }
        if chunked {
            head.push_str("Transfer-Encoding: chunked\r\n\r\n");
        } else {
            head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        }
        let s = self.stream.get_mut();
        s.write_all(head.as_bytes()).ok()?;
        if chunked {
            let (a, b) = body.split_at(body.len() / 2);
            for part in [a, b] {
                if !part.is_empty() {
                    s.write_all(format!("{:x}\r\n", part.len()).as_bytes())
                        .ok()?;
                    s.write_all(part).ok()?;
                    s.write_all(b"\r\n").ok()?;
                }
            }
            s.write_all(b"0\r\n\r\n").ok()?;
        } else {
            s.write_all(body).ok()?;
        }
        self.read_answer(method == "HEAD")
    }

    fn read_answer(&mut self, head_only: bool) -> Option<Answer> {
        let mut line = String::new();
        if self.stream.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let status: u16 = line.split_whitespace().nth(1)?.parse().ok()?;
        let mut headers = Vec::new();
        loop {
            let mut l = String::new();
            self.stream.read_line(&mut l).ok()?;
            let l = l.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; if head_only { 0 } else { len }];
        self.stream.read_exact(&mut body).ok()?;
        Some(Answer {
            status,
            headers,
            body,
        })
    }
}

pub fn md5_hex(s: &str) -> String {
    Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `key="value"` out of a WWW-Authenticate or Authorization header.
pub fn param(header: &str, key: &str) -> Option<String> {
    let at = header.find(&format!("{key}="))? + key.len() + 1;
    let rest = &header[at..];
    if let Some(r) = rest.strip_prefix('"') {
        r.find('"').map(|e| r[..e].to_string())
    } else {
        Some(rest.split([',', ' ']).next()?.to_string())
    }
}

fn digest_header(challenge: &str, method: &str, uri: &str, user: &str, pass: &str) -> String {
    let realm = param(challenge, "realm").unwrap_or_default();
    let nonce = param(challenge, "nonce").unwrap_or_default();
    let ha1 = md5_hex(&format!("{user}:{realm}:{pass}"));
    let ha2 = md5_hex(&format!("{method}:{uri}"));
    let (nc, cnonce) = ("00000001", "0a4f113b");
    let response = md5_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"));
    format!(
        "Authorization: Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", \
         uri=\"{uri}\", qop=auth, nc={nc}, cnonce=\"{cnonce}\", response=\"{response}\""
    )
}

/// The text of the first `<tag>` (any prefix) after `from`.
pub fn field(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let at = xml.find(&open)? + open.len();
    let end = xml[at..].find(&format!("</{tag}>"))?;
    Some(unescape(&xml[at..at + end]))
}

/// Every `<tag>` text in order.
pub fn fields(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(at) = rest.find(&open) {
        let r = &rest[at + open.len()..];
        let Some(end) = r.find(&close) else { break };
        out.push(unescape(&r[..end]));
        rest = &r[end..];
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The method of an ACS request (`GetParameterValues`...).
pub fn method_of(xml: &str) -> Option<String> {
    let body = &xml[xml.find("Body>")? + 5..];
    let at = body.find("<cwmp:")? + 6;
    let name: String = body[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    Some(name)
}

#[derive(Debug, Clone)]
pub struct Param {
    pub value: String,
    pub kind: String,
    pub writable: bool,
}

/// The simulated CPE.
pub struct Cpe {
    pub acs: SocketAddr,
    pub oui: String,
    pub product_class: String,
    pub serial: String,
    pub root: String,
    /// `cwmp-1-0`...
    pub ns: String,
    pub params: BTreeMap<String, Param>,
    pub credentials: Option<(String, String)>,
    /// Events for the next Inform, with command keys.
    pub pending_events: Vec<(String, String)>,
    /// A download to report: (command key, fault code).
    pub transfer: Option<(String, u32)>,
    /// Every ACS method received, in order.
    pub log: Vec<String>,
    pub downloaded: Vec<u8>,
    pub rebooted: usize,
    pub factory_resets: usize,
    /// Send bodies chunked.
    pub chunked: bool,
    /// Talk to the ACS (and fetch files) over TLS with this client configuration.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Answer a 401 with Basic (as CPEs without Digest do) instead of Digest.
    pub basic: bool,
    /// Sent with every POST (`Name: value`), as a proxy in front of the ACS would add them.
    pub extra_headers: Vec<String>,
    cookie: Option<String>,
}

impl Cpe {
    pub fn new(acs: SocketAddr, serial: &str, root: &str) -> Cpe {
        let mut c = Cpe {
            acs,
            oui: "00D09E".into(),
            product_class: "SimBox".into(),
            serial: serial.into(),
            root: root.into(),
            ns: "urn:dslforum-org:cwmp-1-2".into(),
            params: BTreeMap::new(),
            credentials: None,
            pending_events: vec![
                ("0 BOOTSTRAP".into(), String::new()),
                ("1 BOOT".into(), String::new()),
            ],
            transfer: None,
            log: Vec::new(),
            downloaded: Vec::new(),
            rebooted: 0,
            factory_resets: 0,
            chunked: false,
            tls: None,
            basic: false,
            extra_headers: Vec::new(),
            cookie: None,
        };
        c.defaults();
        c
    }

    fn defaults(&mut self) {
        let r = self.root.clone();
        self.params.clear();
        for (name, value, kind, writable) in [
            ("DeviceInfo.Manufacturer", "SimCo", "string", false),
            ("DeviceInfo.SoftwareVersion", "1.0.0", "string", false),
            ("DeviceInfo.HardwareVersion", "hw1", "string", false),
            ("DeviceInfo.ModelName", "Sim 3000", "string", false),
            ("DeviceInfo.UpTime", "1", "unsignedInt", false),
            (
                "ManagementServer.PeriodicInformEnable",
                "1",
                "boolean",
                true,
            ),
            (
                "ManagementServer.PeriodicInformInterval",
                "3600",
                "unsignedInt",
                true,
            ),
            ("ManagementServer.ConnectionRequestURL", "", "string", false),
            ("ManagementServer.ParameterKey", "", "string", false),
            ("WiFi.SSID.1.SSID", "factory-ssid", "string", true),
            ("WiFi.SSID.1.Enable", "1", "boolean", true),
        ] {
            self.params.insert(
                format!("{r}{name}"),
                Param {
                    value: value.into(),
                    kind: kind.into(),
                    writable,
                },
            );
        }
    }

    pub fn set_connection_request_url(&mut self, url: &str) {
        let k = format!("{}ManagementServer.ConnectionRequestURL", self.root);
        self.params.get_mut(&k).unwrap().value = url.into();
    }

    pub fn value(&self, suffix: &str) -> Option<String> {
        self.params
            .get(&format!("{}{suffix}", self.root))
            .map(|p| p.value.clone())
    }

    pub fn device_id(&self) -> String {
        format!("{}-{}-{}", self.oui, self.product_class, self.serial)
    }

    fn envelope(&self, id: &str, body: &str) -> Vec<u8> {
        format!(
            "<?xml version=\"1.0\"?><soapenv:Envelope \
             xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" \
             xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
             xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" xmlns:cwmp=\"{}\">\
             <soapenv:Header><cwmp:ID soapenv:mustUnderstand=\"1\">{}</cwmp:ID></soapenv:Header>\
             <soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>",
            self.ns,
            esc(id)
        )
        .into_bytes()
    }

    pub fn inform_body(&self, events: &[(String, String)]) -> Vec<u8> {
        let mut ev = String::new();
        for (code, key) in events {
            ev.push_str(&format!(
                "<EventStruct><EventCode>{code}</EventCode><CommandKey>{}</CommandKey></EventStruct>",
                esc(key)
            ));
        }
        let mut pl = String::new();
        for suffix in [
            "DeviceInfo.HardwareVersion",
            "DeviceInfo.SoftwareVersion",
            "DeviceInfo.ModelName",
            "ManagementServer.ConnectionRequestURL",
            "ManagementServer.ParameterKey",
        ] {
            let name = format!("{}{suffix}", self.root);
            if let Some(p) = self.params.get(&name) {
                pl.push_str(&format!(
                    "<ParameterValueStruct><Name>{name}</Name><Value xsi:type=\"xsd:{}\">{}</Value></ParameterValueStruct>",
                    p.kind,
                    esc(&p.value)
                ));
            }
        }
        self.envelope(
            "inform-1",
            &format!(
                "<cwmp:Inform><DeviceId><Manufacturer>SimCo</Manufacturer><OUI>{}</OUI>\
                 <ProductClass>{}</ProductClass><SerialNumber>{}</SerialNumber></DeviceId>\
                 <Event>{ev}</Event><MaxEnvelopes>1</MaxEnvelopes>\
                 <CurrentTime>2026-11-21T10:00:00Z</CurrentTime><RetryCount>0</RetryCount>\
                 <ParameterList>{pl}</ParameterList></cwmp:Inform>",
                self.oui, self.product_class, self.serial
            ),
        )
    }

    fn post(&mut self, conn: &mut Conn, body: &[u8], auth: Option<String>) -> Answer {
        let mut headers = vec![
            "Content-Type: text/xml; charset=utf-8".to_string(),
            "SOAPAction: \"\"".to_string(),
        ];
        if let Some(c) = &self.cookie {
            headers.push(format!("Cookie: {c}"));
        }
        if let Some(a) = auth {
            headers.push(a);
        }
        headers.extend(self.extra_headers.iter().cloned());
        let a = conn
            .request(
                "POST",
                "/",
                &headers,
                body,
                self.chunked && !body.is_empty(),
            )
            .expect("the ACS answers");
        if let Some(c) = a.header("set-cookie") {
            self.cookie = c.split(';').next().map(str::to_string);
        }
        a
    }

    /// One whole session: Inform (with Digest when challenged), pending CPE requests, an empty
    /// POST, then every ACS request answered until 204. Returns the InformResponse's status.
    /// Runs sessions until `done` holds (a server picks up tasks queued by another process
    /// within its refresh interval).
    pub fn sessions_until(&mut self, mut done: impl FnMut(&Cpe) -> bool) {
        for _ in 0..40 {
            assert_eq!(self.session(&[]), 200);
            if done(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        panic!("not done after 40 sessions; methods seen: {:?}", self.log);
    }

    pub fn session(&mut self, extra_events: &[&str]) -> u16 {
        let mut conn = Conn::open_with(self.acs, self.tls.as_ref());
        let mut events: Vec<(String, String)> = std::mem::take(&mut self.pending_events);
        for e in extra_events {
            events.push(((*e).to_string(), String::new()));
        }
        if events.is_empty() {
            events.push(("2 PERIODIC".into(), String::new()));
        }
        let inform = self.inform_body(&events);
        self.cookie = None;
        let mut a = self.post(&mut conn, &inform, None);
        if a.status == 401 {
            let (u, p) = self.credentials.clone().unwrap_or_default();
            let auth = if self.basic {
                use base64::Engine;
                let pair = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
                format!("Authorization: Basic {pair}")
            } else {
                let challenge = a.header("www-authenticate").unwrap_or("").to_string();
                digest_header(&challenge, "POST", "/", &u, &p)
            };
            a = self.post(&mut conn, &inform, Some(auth));
        }
        if a.status != 200 {
            return a.status;
        }
        assert!(a.text().contains("InformResponse"), "{}", a.text());
        if let Some((key, code)) = self.transfer.take() {
            let body = self.envelope(
                "tc-1",
                &format!(
                    "<cwmp:TransferComplete><CommandKey>{key}</CommandKey><FaultStruct>\
                     <FaultCode>{code}</FaultCode><FaultString>{}</FaultString></FaultStruct>\
                     <StartTime>2026-11-21T10:00:00Z</StartTime>\
                     <CompleteTime>2026-11-21T10:00:05Z</CompleteTime></cwmp:TransferComplete>",
                    if code == 0 { "" } else { "Download failed" }
                ),
            );
            let r = self.post(&mut conn, &body, None);
            assert!(
                r.text().contains("TransferCompleteResponse"),
                "{}",
                r.text()
            );
        }
        let mut answer = self.post(&mut conn, b"", None);
        let mut guard = 0;
        while answer.status == 200 {
            guard += 1;
            assert!(guard < 200, "too many RPCs");
            let req = answer.text();
            let reply = self.answer_rpc(&req);
            answer = self.post(&mut conn, &reply, None);
        }
        assert_eq!(answer.status, 204, "{}", answer.text());
        200
    }

    fn fault(&self, id: &str, code: u32, text: &str) -> Vec<u8> {
        self.envelope(
            id,
            &format!(
                "<soapenv:Fault><faultcode>Client</faultcode><faultstring>CWMP fault</faultstring>\
                 <detail><cwmp:Fault><FaultCode>{code}</FaultCode><FaultString>{text}</FaultString>\
                 </cwmp:Fault></detail></soapenv:Fault>"
            ),
        )
    }

    fn under(&self, path: &str) -> Vec<(String, Param)> {
        self.params
            .iter()
            .filter(|(k, _)| {
                if path.ends_with('.') {
                    k.starts_with(path)
                } else {
                    *k == path
                }
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn answer_rpc(&mut self, req: &str) -> Vec<u8> {
        let id = field(req, "cwmp:ID").unwrap_or_default();
        let method = method_of(req).unwrap_or_default();
        self.log.push(method.clone());
        let body = match method.as_str() {
            "GetParameterValues" => {
                let mut out = String::new();
                for name in fields(req, "string") {
                    let found = self.under(&name);
                    if found.is_empty() {
                        return self.fault(&id, 9005, "Invalid parameter name");
                    }
                    for (k, p) in found {
                        out.push_str(&format!(
                            "<ParameterValueStruct><Name>{k}</Name><Value xsi:type=\"xsd:{}\">{}</Value></ParameterValueStruct>",
                            p.kind,
                            esc(&p.value)
                        ));
                    }
                }
                format!("<cwmp:GetParameterValuesResponse><ParameterList>{out}</ParameterList></cwmp:GetParameterValuesResponse>")
            }
            "SetParameterValues" => {
                let names = fields(req, "Name");
                let values = fields_values(req);
                for n in &names {
                    if !self.params.get(n).is_some_and(|p| p.writable) {
                        return self.envelope(
                            &id,
                            &format!(
                                "<soapenv:Fault><faultcode>Client</faultcode><faultstring>CWMP fault</faultstring><detail><cwmp:Fault><FaultCode>9003</FaultCode><FaultString>Invalid arguments</FaultString><SetParameterValuesFault><ParameterName>{n}</ParameterName><FaultCode>9008</FaultCode><FaultString>Attempt to set a non-writable parameter</FaultString></SetParameterValuesFault></cwmp:Fault></detail></soapenv:Fault>"
                            ),
                        );
                    }
                }
                for (n, v) in names.iter().zip(values) {
                    self.params.get_mut(n).unwrap().value = v;
                }
                let key = field(req, "ParameterKey").unwrap_or_default();
                let k = format!("{}ManagementServer.ParameterKey", self.root);
                self.params.get_mut(&k).unwrap().value = key;
                "<cwmp:SetParameterValuesResponse><Status>0</Status></cwmp:SetParameterValuesResponse>".into()
            }
            "GetParameterNames" => {
                let path = field(req, "ParameterPath").unwrap_or_default();
                let mut out = String::new();
                for (k, p) in self.under(&path) {
                    out.push_str(&format!(
                        "<ParameterInfoStruct><Name>{k}</Name><Writable>{}</Writable></ParameterInfoStruct>",
                        u8::from(p.writable)
                    ));
                }
                format!("<cwmp:GetParameterNamesResponse><ParameterList>{out}</ParameterList></cwmp:GetParameterNamesResponse>")
            }
            "GetParameterAttributes" => {
                let mut out = String::new();
                for name in fields(req, "string") {
                    for (k, _) in self.under(&name) {
                        out.push_str(&format!("<ParameterAttributeStruct><Name>{k}</Name><Notification>0</Notification><AccessList></AccessList></ParameterAttributeStruct>"));
                    }
                }
                format!("<cwmp:GetParameterAttributesResponse><ParameterList>{out}</ParameterList></cwmp:GetParameterAttributesResponse>")
            }
            "SetParameterAttributes" => "<cwmp:SetParameterAttributesResponse/>".into(),
            "AddObject" => {
                let path = field(req, "ObjectName").unwrap_or_default();
                let n = (1..)
                    .find(|i| !self.params.keys().any(|k| k.starts_with(&format!("{path}{i}."))))
                    .unwrap();
                self.params.insert(
                    format!("{path}{n}.Enable"),
                    Param {
                        value: "0".into(),
                        kind: "boolean".into(),
                        writable: true,
                    },
                );
                format!("<cwmp:AddObjectResponse><InstanceNumber>{n}</InstanceNumber><Status>0</Status></cwmp:AddObjectResponse>")
            }
            "DeleteObject" => {
                let path = field(req, "ObjectName").unwrap_or_default();
                let before = self.params.len();
                self.params.retain(|k, _| !k.starts_with(&path));
                if before == self.params.len() {
                    return self.fault(&id, 9005, "Invalid parameter name");
                }
                "<cwmp:DeleteObjectResponse><Status>0</Status></cwmp:DeleteObjectResponse>".into()
            }
            "Reboot" => {
                self.rebooted += 1;
                let key = field(req, "CommandKey").unwrap_or_default();
                self.pending_events = vec![("1 BOOT".into(), String::new()), ("M Reboot".into(), key)];
                "<cwmp:RebootResponse/>".into()
            }
            "FactoryReset" => {
                self.factory_resets += 1;
                self.defaults();
                self.pending_events = vec![("0 BOOTSTRAP".into(), String::new()), ("1 BOOT".into(), String::new())];
                "<cwmp:FactoryResetResponse/>".into()
            }
            "Download" => {
                let url = field(req, "URL").unwrap_or_default();
                let size: usize = field(req, "FileSize").and_then(|s| s.parse().ok()).unwrap_or(0);
                let key = field(req, "CommandKey").unwrap_or_default();
                self.downloaded = fetch_in_two_ranges(&url, size, self.tls.as_ref());
                let ok = self.downloaded.len() == size;
                self.transfer = Some((key.clone(), if ok { 0 } else { 9010 }));
                self.pending_events = vec![("7 TRANSFER COMPLETE".into(), String::new()), ("M Download".into(), key)];
                "<cwmp:DownloadResponse><Status>1</Status><StartTime>0001-01-01T00:00:00Z</StartTime><CompleteTime>0001-01-01T00:00:00Z</CompleteTime></cwmp:DownloadResponse>".into()
            }
            "Upload" => "<cwmp:UploadResponse><Status>0</Status><StartTime>2026-11-21T10:00:00Z</StartTime><CompleteTime>2026-11-21T10:00:01Z</CompleteTime></cwmp:UploadResponse>".into(),
            "ScheduleInform" => "<cwmp:ScheduleInformResponse/>".into(),
            "GetRPCMethods" => "<cwmp:GetRPCMethodsResponse><MethodList><string>GetRPCMethods</string><string>GetParameterValues</string><string>SetParameterValues</string><string>Reboot</string><string>Download</string></MethodList></cwmp:GetRPCMethodsResponse>".into(),
            _ => return self.fault(&id, 9000, "Method not supported"),
        };
        self.envelope(&id, &body)
    }
}

/// `<Value ...>` texts in order (they carry an xsi:type attribute).
fn fields_values(xml: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(at) = rest.find("<Value") {
        let r = &rest[at..];
        let Some(gt) = r.find('>') else { break };
        let r = &r[gt + 1..];
        let Some(end) = r.find("</Value>") else { break };
        out.push(unescape(&r[..end]));
        rest = &r[end..];
    }
    out
}

/// GETs `url` as two byte ranges on one connection, checking each is a 206.
fn fetch_in_two_ranges(url: &str, size: usize, tls: Option<&Arc<rustls::ClientConfig>>) -> Vec<u8> {
    let rest = match tls {
        None => url.strip_prefix("http://").expect("an http URL"),
        Some(_) => url.strip_prefix("https://").expect("an https URL"),
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let addr: SocketAddr = authority.parse().expect("a loopback address");
    let mut c = Conn::open_with(addr, tls);
    let half = size / 2;
    let mut out = Vec::new();
    for range in [
        format!("bytes=0-{}", half.saturating_sub(1)),
        format!("bytes={half}-"),
    ] {
        let a = c
            .request("GET", path, &[format!("Range: {range}")], b"", false)
            .expect("file answer");
        assert_eq!(a.status, 206, "{range}: {}", a.text());
        out.extend_from_slice(&a.body);
    }
    out
}

/// A connection request listener with Digest authentication; counts good requests.
pub struct CrListener {
    pub url: String,
    pub hits: Arc<AtomicUsize>,
}

impl CrListener {
    pub fn start(user: &'static str, pass: &'static str) -> CrListener {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/cr", l.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let h = Arc::clone(&hits);
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut r = BufReader::new(s);
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                let auth = head
                    .lines()
                    .find(|l| l.to_ascii_lowercase().starts_with("authorization:"))
                    .map(|l| l.to_string());
                let nonce = "cr-nonce-1";
                let ok = auth.is_some_and(|a| {
                    let uri = param(&a, "uri").unwrap_or_default();
                    let ha1 = md5_hex(&format!("{user}:cpe:{pass}"));
                    let ha2 = md5_hex(&format!("GET:{uri}"));
                    let want = md5_hex(&format!(
                        "{ha1}:{nonce}:{}:{}:auth:{ha2}",
                        param(&a, "nc").unwrap_or_default(),
                        param(&a, "cnonce").unwrap_or_default()
                    ));
                    param(&a, "response").as_deref() == Some(want.as_str())
                        && param(&a, "username").as_deref() == Some(user)
                });
                let s = r.get_mut();
                if ok {
                    h.fetch_add(1, Ordering::SeqCst);
                    let _ = s.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                } else {
                    let _ = s.write_all(format!("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"cpe\", qop=\"auth\", nonce=\"{nonce}\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes());
                }
            }
        });
        CrListener { url, hits }
    }
}
