use super::*;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn inform(name: &str) -> (Incoming, Inform) {
    let m = parse(&fixture(name), &Limits::default()).unwrap();
    match &m.body {
        CpeMessage::Inform(i) => {
            let i = (**i).clone();
            (m, i)
        }
        other => panic!("{name}: not an Inform: {other:?}"),
    }
}

#[test]
fn huawei_igd_inform_with_bootstrap() {
    let (m, i) = inform("huawei_hg8245_inform.xml");
    assert_eq!(m.version, CwmpVersion::V1_0);
    assert_eq!(m.header.id.as_deref(), Some("1"));
    assert_eq!(i.device.oui, "00E0FC");
    assert_eq!(i.device.product_class, "HG8245H");
    assert_eq!(i.device.serial_number, "48575443A1B2C3D4");
    assert_eq!(i.device.manufacturer, "Huawei Technologies Co., Ltd");
    assert!(i.has_event("0 BOOTSTRAP") && i.has_event("1 BOOT"));
    assert_eq!(i.parameters.len(), 8);
    assert_eq!(i.parameter(".SoftwareVersion"), Some("V3R017C10S115"));
    assert_eq!(
        i.parameter(".ConnectionRequestURL"),
        Some("http://100.64.12.34:7547/")
    );
    assert_eq!(i.parameters[0].kind.as_deref(), Some("string"));
    assert_eq!(i.parameter(".ProvisioningCode"), Some(""));
}

#[test]
fn zte_latin1_inform_is_transcoded() {
    let (m, i) = inform("zte_f660_inform_latin1.xml");
    assert_eq!(m.version, CwmpVersion::V1_1);
    assert_eq!(m.header.id.as_deref(), Some("ZTE0000a1"));
    assert_eq!(
        i.parameter(".Description"),
        Some("Terminal d\u{e9}tude GPON")
    );
    assert!(i.has_event("2 PERIODIC"));
    assert_eq!(i.events[0].command_key, "");
    assert_eq!(i.parameter(".ParameterKey"), Some("preset-1"));
}

#[test]
fn tplink_device2_without_types_and_local_namespaces() {
    let (m, i) = inform("tplink_archer_inform.xml");
    assert_eq!(m.version, CwmpVersion::V1_2);
    assert_eq!(m.header.id.as_deref(), Some("tp-1234"));
    assert_eq!(i.device.product_class, "Archer C6");
    assert!(i.has_event("6 CONNECTION REQUEST") && i.has_event("4 VALUE CHANGE"));
    assert_eq!(i.retry_count, 2);
    assert!(i.parameters.iter().all(|p| p.kind.is_none()));
    assert_eq!(i.parameter(".ParameterKey"), Some(""));
    assert_eq!(
        i.parameter("Device.DeviceInfo.SoftwareVersion"),
        Some("1.0.14 Build 20211118")
    );
}

#[test]
fn mikrotik_m_reboot_with_command_key() {
    let (m, i) = inform("mikrotik_hap_inform.xml");
    assert_eq!(m.version, CwmpVersion::V1_2);
    let reboot = i.events.iter().find(|e| e.code == "M Reboot").unwrap();
    assert_eq!(reboot.command_key, "task-17");
    assert_eq!(
        i.parameter(".ConnectionRequestURL"),
        Some("http://[2001:db8::7]:7547/")
    );
    assert_eq!(i.parameters[5].kind.as_deref(), Some("unsignedInt"));
}

#[test]
fn nokia_cwmp14_header_and_cdata() {
    let (m, i) = inform("nokia_g240_inform_cwmp14.xml");
    assert_eq!(m.version, CwmpVersion::V1_4);
    assert_eq!(m.header.session_timeout, Some(60));
    assert_eq!(m.header.supported_versions.len(), 5);
    assert!(i.has_event("7 TRANSFER COMPLETE") && i.has_event("M Download"));
    assert_eq!(i.parameter(".SoftwareVersion"), Some("3FE49362IJHK46"));
    assert_eq!(
        i.parameter(".ConnectionRequestURL"),
        Some("http://10.9.8.7:7547/CR&x=1")
    );
}

#[test]
fn transfer_complete_with_fault() {
    let m = parse(
        &fixture("nokia_g240_transfer_complete.xml"),
        &Limits::default(),
    )
    .unwrap();
    let CpeMessage::TransferComplete(t) = m.body else {
        panic!("{:?}", m.body)
    };
    assert_eq!(t.command_key, "fw-9");
    assert_eq!(t.fault.code, 9010);
    assert_eq!(t.fault.string, "Download failure: image rejected");
    assert_eq!(t.complete_time, "2026-11-21T09:59:10Z");
}

#[test]
fn gpv_response_unescapes_and_keeps_types() {
    let m = parse(&fixture("huawei_gpv_response.xml"), &Limits::default()).unwrap();
    let CpeMessage::Response(Response::GetParameterValues(v)) = m.body else {
        panic!("{:?}", m.body)
    };
    assert_eq!(v.len(), 3);
    assert_eq!(v[0].value, "HUAWEI-<5G> & more");
    assert_eq!(v[1].kind.as_deref(), Some("boolean"));
    assert_eq!(v[2].value, "86400");
}

#[test]
fn set_parameter_values_fault_lists_the_parameter() {
    let m = parse(&fixture("zte_spv_fault.xml"), &Limits::default()).unwrap();
    let CpeMessage::Fault(f) = m.body else {
        panic!("{:?}", m.body)
    };
    assert_eq!(f.code, 9003);
    assert_eq!(f.parameter_faults.len(), 1);
    assert_eq!(f.parameter_faults[0].code, 9007);
    assert!(f.parameter_faults[0]
        .name
        .ends_with("PeriodicInformInterval"));
}

fn gpv_body(n: usize) -> Vec<u8> {
    let mut s = String::from(
        "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\" \
         xmlns:cwmp=\"urn:dslforum-org:cwmp-1-3\"><soap:Body><cwmp:GetParameterValuesResponse>\
         <ParameterList>",
    );
    for i in 0..n {
        s.push_str(&format!(
            "<ParameterValueStruct><Name>Device.Hosts.Host.{i}.HostName</Name>\
             <Value xsi:type=\"xsd:string\">host-{i}</Value></ParameterValueStruct>"
        ));
    }
    s.push_str("</ParameterList></cwmp:GetParameterValuesResponse></soap:Body></soap:Envelope>");
    s.into_bytes()
}

#[test]
fn ten_thousand_parameters_stream_through() {
    let m = parse(&gpv_body(10_000), &Limits::default()).unwrap();
    assert_eq!(m.version, CwmpVersion::V1_3);
    let CpeMessage::Response(Response::GetParameterValues(v)) = m.body else {
        panic!()
    };
    assert_eq!(v.len(), 10_000);
    assert_eq!(v[9_999].value, "host-9999");
}

#[test]
fn limits_refuse_rather_than_grow() {
    let small = Limits {
        max_items: 100,
        ..Limits::default()
    };
    assert_eq!(parse(&gpv_body(101), &small), Err(ParseError::TooMany(100)));
    let deep = format!(
        "<Envelope><Body>{}{}</Body></Envelope>",
        "<a>".repeat(40),
        "</a>".repeat(40)
    );
    assert_eq!(
        parse(deep.as_bytes(), &Limits::default()),
        Err(ParseError::TooDeep(32))
    );
    let long = format!(
        "<Envelope><Body><Inform><CurrentTime>{}</CurrentTime></Inform></Body></Envelope>",
        "x".repeat(70_000)
    );
    assert_eq!(
        parse(long.as_bytes(), &Limits::default()),
        Err(ParseError::TextTooLong(65536))
    );
}

#[test]
fn malformed_input_is_an_error_not_a_panic() {
    for bad in [
        &b""[..],
        b"not xml at all",
        b"<Envelope><Body></Body></Envelope>",
        b"<Envelope><Body><Inform>",
        b"<Envelope><Body><Inform></Body></Envelope>",
        b"<Body><Inform/></Body>",
        b"<Envelope><Body><Inform><MaxEnvelopes>many</MaxEnvelopes></Inform></Body></Envelope>",
        b"<Envelope><Body><x>&bogus;</x></Body></Envelope>",
        b"<Envelope><Body><Fault><detail><Fault><FaultCode>x</FaultCode></Fault></detail></Fault></Body></Envelope>",
        b"\xff\xfe<\x00",
    ] {
        assert!(parse(bad, &Limits::default()).is_err(), "{bad:?}");
    }
}

#[test]
fn unknown_method_is_kept_by_name() {
    let m = parse(
        b"<e:Envelope xmlns:e=\"x\"><e:Body><cwmp:Frobnicate/></e:Body></e:Envelope>",
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(m.body, CpeMessage::Unknown("Frobnicate".into()));
}

#[test]
fn every_rpc_round_trips_through_the_writer_and_reader() {
    // The writer's requests are what a CPE parses; check they are well-formed XML with the
    // method and the namespace the CPE used, and that our own reader sees the method.
    let rpcs = vec![
        Rpc::GetRpcMethods,
        Rpc::GetParameterNames {
            path: "Device.".into(),
            next_level: false,
        },
        Rpc::GetParameterValues(vec!["Device.DeviceInfo.".into()]),
        Rpc::SetParameterValues {
            values: vec![ParameterValue {
                name: "Device.WiFi.SSID.1.SSID".into(),
                value: "a<b>&c".into(),
                kind: None,
            }],
            parameter_key: "k1".into(),
        },
        Rpc::GetParameterAttributes(vec!["Device.".into()]),
        Rpc::SetParameterAttributes(vec![SetAttribute {
            name: "Device.DeviceInfo.SoftwareVersion".into(),
            notification: Some(2),
            access_list: None,
        }]),
        Rpc::AddObject {
            path: "Device.IP.Interface.".into(),
            parameter_key: "k".into(),
        },
        Rpc::DeleteObject {
            path: "Device.IP.Interface.3.".into(),
            parameter_key: "k".into(),
        },
        Rpc::Reboot {
            command_key: "r".into(),
        },
        Rpc::FactoryReset,
        Rpc::Download {
            command_key: "d".into(),
            file_type: "1 Firmware Upgrade Image".into(),
            url: "http://acs/files/fw.bin".into(),
            username: String::new(),
            password: String::new(),
            file_size: 1234,
            target_file_name: "fw.bin".into(),
            delay_seconds: 0,
        },
        Rpc::Upload {
            command_key: "u".into(),
            file_type: "1 Vendor Configuration File".into(),
            url: "http://acs/upload".into(),
            username: String::new(),
            password: String::new(),
            delay_seconds: 0,
        },
        Rpc::ScheduleInform {
            delay_seconds: 5,
            command_key: "s".into(),
        },
    ];
    for rpc in rpcs {
        let env = Envelope {
            version: CwmpVersion::V1_2,
            id: "edge-1",
            use_version: None,
        };
        let bytes = env.write(&AcsMessage::Request(rpc.clone()));
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains("urn:dslforum-org:cwmp-1-2"), "{text}");
        assert!(text.contains(&format!("<cwmp:{}", rpc.method())), "{text}");
        let back = parse(&bytes, &Limits::default()).unwrap();
        assert_eq!(back.header.id.as_deref(), Some("edge-1"));
        assert_eq!(back.version, CwmpVersion::V1_2);
        // The reader knows requests only by name (it reads CPE messages).
        match back.body {
            CpeMessage::GetRpcMethods => assert_eq!(rpc, Rpc::GetRpcMethods),
            CpeMessage::Unknown(m) => assert_eq!(m, rpc.method()),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn inform_response_echoes_id_and_chosen_version() {
    let env = Envelope {
        version: CwmpVersion::V1_4,
        id: "a&b",
        use_version: Some(CwmpVersion::V1_4),
    };
    let text = String::from_utf8(env.write(&AcsMessage::InformResponse)).unwrap();
    assert!(text.contains(">a&amp;b</cwmp:ID>"));
    assert!(text.contains("<cwmp:UseCWMPVersion soap-env:mustUnderstand=\"1\">1.4<"));
    assert!(text.contains("<MaxEnvelopes>1</MaxEnvelopes>"));
}

#[test]
fn fault_8000_is_a_well_formed_soap_fault() {
    let bytes = fault_envelope(CwmpVersion::V1_1, "7", fault_code::METHOD_NOT_SUPPORTED);
    let m = parse(&bytes, &Limits::default()).unwrap();
    let CpeMessage::Fault(f) = m.body else {
        panic!()
    };
    assert_eq!(f.code, 8000);
    assert_eq!(f.string, "Method not supported");
    assert_eq!(m.version, CwmpVersion::V1_1);
}
