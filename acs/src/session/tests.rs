use super::*;
use crate::codec::{parse, Limits};
use crate::preset::{desired, DeviceFacts, Preset, PresetFilter};

const INFORM: &str = r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:cwmp="urn:dslforum-org:cwmp-1-2"><soap:Header><cwmp:ID>42</cwmp:ID></soap:Header><soap:Body><cwmp:Inform><DeviceId><Manufacturer>X</Manufacturer><OUI>00AABB</OUI><ProductClass>Box 1</ProductClass><SerialNumber>S-1</SerialNumber></DeviceId><Event><EventStruct><EventCode>2 PERIODIC</EventCode><CommandKey/></EventStruct></Event><MaxEnvelopes>1</MaxEnvelopes><CurrentTime>2026-11-21T10:00:00Z</CurrentTime><RetryCount>0</RetryCount><ParameterList><ParameterValueStruct><Name>Device.DeviceInfo.SoftwareVersion</Name><Value>1.0</Value></ParameterValueStruct></ParameterList></cwmp:Inform></soap:Body></soap:Envelope>"#;

fn msg(method_body: &str, id: &str) -> Incoming {
    let xml = format!(
        "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\" \
         xmlns:cwmp=\"urn:dslforum-org:cwmp-1-2\"><soap:Header><cwmp:ID>{id}</cwmp:ID>\
         </soap:Header><soap:Body>{method_body}</soap:Body></soap:Envelope>"
    );
    parse(xml.as_bytes(), &Limits::default()).unwrap()
}

fn start() -> Session {
    let inc = parse(INFORM.as_bytes(), &Limits::default()).unwrap();
    let (s, reply) = Session::start(inc, 8).unwrap();
    let text = String::from_utf8(reply).unwrap();
    assert!(text.contains("<cwmp:InformResponse>") && text.contains(">42</cwmp:ID>"));
    assert!(text.contains("cwmp-1-2"));
    s
}

fn body(r: Reply) -> String {
    match r {
        Reply::Body(b) => String::from_utf8(b).unwrap(),
        Reply::End => panic!("expected a body"),
    }
}

#[test]
fn device_id_is_genieacs_shaped() {
    let s = start();
    assert_eq!(device_id(&s.inform), "00AABB-Box%201-S%2D1");
    let mut i = (*s.inform).clone();
    i.device.product_class.clear();
    assert_eq!(device_id(&i), "00AABB-S%2D1");
    assert_eq!(s.root(), "Device.");
}

#[test]
fn empty_post_without_work_ends_the_session() {
    let mut s = start();
    assert_eq!(s.handle(None), Reply::End);
    assert!(s.is_over());
}

#[test]
fn tasks_run_in_order_and_report() {
    let mut s = start();
    s.push(Job {
        origin: Origin::Task(7),
        rpc: Rpc::GetParameterValues(vec!["Device.DeviceInfo.".into()]),
    });
    s.push(Job {
        origin: Origin::Task(8),
        rpc: Rpc::Reboot {
            command_key: "task-8".into(),
        },
    });
    let req = body(s.handle(None));
    assert!(req.contains("<cwmp:GetParameterValues>") && req.contains(">edge-1<"));
    let r = s.handle(Some(msg(
        "<cwmp:GetParameterValuesResponse><ParameterList><ParameterValueStruct>\
         <Name>Device.DeviceInfo.UpTime</Name><Value xsi:type=\"xsd:unsignedInt\">9</Value>\
         </ParameterValueStruct></ParameterList></cwmp:GetParameterValuesResponse>",
        "edge-1",
    )));
    assert!(body(r).contains("<cwmp:Reboot><CommandKey>task-8<"));
    // The CPE faults the reboot.
    let r = s.handle(Some(msg(
        "<soap:Fault><faultcode>Client</faultcode><faultstring>CWMP fault</faultstring>\
         <detail><cwmp:Fault><FaultCode>9001</FaultCode><FaultString>Request denied</FaultString>\
         </cwmp:Fault></detail></soap:Fault>",
        "edge-2",
    )));
    assert_eq!(r, Reply::End);
    let fx = s.take_effects();
    assert!(matches!(&fx[0], Effect::Parameters(v) if v[0].value == "9"));
    assert!(
        matches!(&fx[1], Effect::Task { id: 7, outcome: TaskOutcome::Done(v) }
        if v["values"][0]["type"] == "unsignedInt")
    );
    assert!(
        matches!(&fx[2], Effect::Task { id: 8, outcome: TaskOutcome::Fault(f) } if f.code == 9001)
    );
}

#[test]
fn cpe_requests_are_answered_and_unknown_ones_faulted() {
    let mut s = start();
    let r = body(s.handle(Some(msg(
        "<cwmp:TransferComplete><CommandKey>task-3</CommandKey><FaultStruct><FaultCode>0\
         </FaultCode><FaultString/></FaultStruct></cwmp:TransferComplete>",
        "t1",
    ))));
    assert!(r.contains("TransferCompleteResponse") && r.contains(">t1<"));
    let r = body(s.handle(Some(msg("<cwmp:GetRPCMethods/>", "t2"))));
    assert!(r.contains("<string>TransferComplete</string>"));
    let r = body(s.handle(Some(msg(
        "<cwmp:Kicked><Command>c</Command><Referer>r</Referer><Arg>a</Arg><Next>http://n/</Next></cwmp:Kicked>",
        "t3",
    ))));
    assert!(r.contains("<NextURL>http://n/</NextURL>"));
    let r = body(s.handle(Some(msg("<cwmp:Frob/>", "t4"))));
    assert!(r.contains("<FaultCode>8000</FaultCode>"));
    assert!(matches!(
        &s.take_effects()[..],
        [Effect::TransferComplete { command_key, fault }] if command_key == "task-3" && fault.code == 0
    ));
}

#[test]
fn rpc_cap_ends_the_session_and_leaves_the_rest_queued() {
    let inc = parse(INFORM.as_bytes(), &Limits::default()).unwrap();
    let (mut s, _) = Session::start(inc, 1).unwrap();
    for id in [1, 2] {
        s.push(Job {
            origin: Origin::Task(id),
            rpc: Rpc::FactoryReset,
        });
    }
    assert!(body(s.handle(None)).contains("FactoryReset"));
    let r = s.handle(Some(msg("<cwmp:FactoryResetResponse/>", "edge-1")));
    assert_eq!(r, Reply::End);
    assert_eq!(s.take_effects().len(), 1);
}

#[test]
fn abandoned_session_reports_the_unanswered_task() {
    let mut s = start();
    s.push(Job {
        origin: Origin::Task(5),
        rpc: Rpc::FactoryReset,
    });
    body(s.handle(None));
    s.abandon();
    assert_eq!(
        s.take_effects(),
        [Effect::Task {
            id: 5,
            outcome: TaskOutcome::Unanswered
        }]
    );
}

#[test]
fn presets_set_only_what_differs() {
    let mut s = start();
    let preset = Preset {
        name: "p".into(),
        filter: PresetFilter::default(),
        values: vec![
            SetValue {
                name: "Device.A".into(),
                value: "1".into(),
                kind: None,
            },
            SetValue {
                name: "Device.B".into(),
                value: "2".into(),
                kind: None,
            },
        ],
        inform_interval_seconds: None,
    };
    let d = desired(
        &[preset],
        &DeviceFacts {
            product_class: "",
            software_version: "",
            tags: &[],
        },
        "Device.",
    )
    .unwrap();
    let fp = d.fingerprint;
    s.push(Job {
        origin: Origin::PresetRead(d),
        rpc: Rpc::GetParameterValues(vec!["Device.A".into(), "Device.B".into()]),
    });
    assert!(body(s.handle(None)).contains("<string>Device.B</string>"));
    let r = body(s.handle(Some(msg(
        "<cwmp:GetParameterValuesResponse><ParameterList>\
         <ParameterValueStruct><Name>Device.A</Name><Value>1</Value></ParameterValueStruct>\
         <ParameterValueStruct><Name>Device.B</Name><Value>5</Value></ParameterValueStruct>\
         </ParameterList></cwmp:GetParameterValuesResponse>",
        "edge-1",
    ))));
    assert!(r.contains("<Name>Device.B</Name>") && !r.contains("<Name>Device.A</Name>"));
    let end = s.handle(Some(msg(
        "<cwmp:SetParameterValuesResponse><Status>0</Status></cwmp:SetParameterValuesResponse>",
        "edge-2",
    )));
    assert_eq!(end, Reply::End);
    let fx = s.take_effects();
    assert_eq!(fx.last(), Some(&Effect::PresetsConverged(fp)));
}

#[test]
fn negotiates_cwmp_14_when_offered() {
    let xml = INFORM.replace(
        "<cwmp:ID>42</cwmp:ID>",
        "<cwmp:ID>42</cwmp:ID><cwmp:SupportedCWMPVersions>1.0,1.4</cwmp:SupportedCWMPVersions>",
    );
    let inc = parse(xml.as_bytes(), &Limits::default()).unwrap();
    let (s, reply) = Session::start(inc, 8).unwrap();
    assert_eq!(s.version, CwmpVersion::V1_4);
    let text = String::from_utf8(reply).unwrap();
    assert!(text.contains("cwmp-1-4") && text.contains("UseCWMPVersion"));
}
