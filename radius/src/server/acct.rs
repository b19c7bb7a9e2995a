//! Accounting-Request to accounting event: the session columns a Start, Interim-Update or
//! Stop reports (RFC 2866, 2869, 3162, 4818, 6911), or a NAS restart.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use edge_shared::accounting::{c, AcctEvent, AcctStatus, SessionRecord};
use edge_shared::types::Nas;
use md5::{Digest, Md5};

use crate::codec::{attr, RawPacket};
use crate::dict::{AttrKey, Dictionary};

/// Attribute numbers used here and not needed elsewhere.
mod a {
    pub const ACCT_DELAY_TIME: u8 = 41;
    pub const ACCT_INPUT_OCTETS: u8 = 42;
    pub const ACCT_OUTPUT_OCTETS: u8 = 43;
    pub const ACCT_AUTHENTIC: u8 = 45;
    pub const ACCT_SESSION_TIME: u8 = 46;
    pub const ACCT_INPUT_PACKETS: u8 = 47;
    pub const ACCT_OUTPUT_PACKETS: u8 = 48;
    pub const ACCT_TERMINATE_CAUSE: u8 = 49;
    pub const ACCT_INPUT_GIGAWORDS: u8 = 52;
    pub const ACCT_OUTPUT_GIGAWORDS: u8 = 53;
    pub const EVENT_TIMESTAMP: u8 = 55;
    pub const CONNECT_INFO: u8 = 77;
    pub const NAS_IPV6_ADDRESS: u8 = 95;
    pub const FRAMED_INTERFACE_ID: u8 = 96;
    pub const FRAMED_IPV6_PREFIX: u8 = 97;
    pub const DELEGATED_IPV6_PREFIX: u8 = 123;
    pub const FRAMED_IPV6_ADDRESS: u8 = 168;
}

/// Why an Accounting-Request carries nothing to store.
#[derive(Debug, PartialEq, Eq)]
pub enum NotStored {
    /// A status type we do not record (Failed, tunnel events): acknowledged, not written.
    Ignored,
    /// No Acct-Status-Type, or a Start/Interim/Stop without Acct-Session-Id (RFC 2866
    /// requires both): dropped as malformed.
    Malformed,
}

fn u32_of(pkt: &RawPacket<'_>, typ: u8) -> Option<u32> {
    pkt.find(typ)
        .and_then(|v| <[u8; 4]>::try_from(v).ok())
        .map(u32::from_be_bytes)
}

fn text_of(pkt: &RawPacket<'_>, typ: u8) -> Option<String> {
    pkt.find(typ)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// An enumerated attribute by its dictionary name (as FreeRADIUS writes it), else the number.
fn named(pkt: &RawPacket<'_>, dict: &Dictionary, typ: u8) -> Option<String> {
    let n = u32_of(pkt, typ)?;
    Some(
        dict.attr_by_key(AttrKey::Std(typ))
            .and_then(|d| d.name_of(u64::from(n)))
            .map_or_else(|| n.to_string(), str::to_string),
    )
}

fn ipv4_of(pkt: &RawPacket<'_>, typ: u8) -> Option<Ipv4Addr> {
    pkt.find(typ)
        .and_then(|v| <[u8; 4]>::try_from(v).ok())
        .map(Ipv4Addr::from)
}

fn ipv6_of(pkt: &RawPacket<'_>, typ: u8) -> Option<Ipv6Addr> {
    pkt.find(typ)
        .and_then(|v| <[u8; 16]>::try_from(v).ok())
        .map(Ipv6Addr::from)
}

/// RFC 3162 section 2.3: Reserved, Prefix-Length, then as many prefix octets as needed.
fn ipv6_prefix_of(pkt: &RawPacket<'_>, typ: u8) -> Option<String> {
    let v = pkt.find(typ)?;
    if v.len() < 2 || v.len() > 18 || v[1] > 128 {
        return None;
    }
    let mut o = [0u8; 16];
    o[..v.len() - 2].copy_from_slice(&v[2..]);
    Some(format!("{}/{}", Ipv6Addr::from(o), v[1]))
}

fn counter(pkt: &RawPacket<'_>, octets: u8, gigawords: u8) -> i64 {
    let lo = u64::from(u32_of(pkt, octets).unwrap_or(0));
    let hi = u64::from(u32_of(pkt, gigawords).unwrap_or(0));
    i64::try_from((hi << 32) | lo).unwrap_or(i64::MAX)
}

/// The unique session id as FreeRADIUS's default `acct_unique` policy derives it: MD5, in
/// lower-case hex, of `User-Name,Acct-Session-Id,NAS-IPv6-Address (else NAS-IP-Address),
/// NAS-Identifier,NAS-Port-Id,NAS-Port`, an absent attribute giving the empty string.
fn unique_id(pkt: &RawPacket<'_>) -> String {
    let s = |typ| text_of(pkt, typ).unwrap_or_default();
    let nas_ip = ipv6_of(pkt, a::NAS_IPV6_ADDRESS)
        .map(|v| v.to_string())
        .or_else(|| ipv4_of(pkt, attr::NAS_IP_ADDRESS).map(|v| v.to_string()))
        .unwrap_or_default();
    let port = u32_of(pkt, attr::NAS_PORT)
        .map(|p| p.to_string())
        .unwrap_or_default();
    let input = format!(
        "{},{},{},{},{},{}",
        s(attr::USER_NAME),
        s(attr::ACCT_SESSION_ID),
        nas_ip,
        s(attr::NAS_IDENTIFIER),
        s(attr::NAS_PORT_ID),
        port
    );
    hex::encode(Md5::digest(input.as_bytes()))
}

/// Decodes a verified Accounting-Request. `src` is where it came from (the NAS address when
/// the packet names none); `now` is this server's clock, in Unix seconds.
pub fn decode(
    pkt: &RawPacket<'_>,
    dict: &Dictionary,
    nas: &Nas,
    src: IpAddr,
    now: i64,
) -> Result<AcctEvent, NotStored> {
    let status = u32_of(pkt, attr::ACCT_STATUS_TYPE).ok_or(NotStored::Malformed)?;
    let status = AcctStatus::from_code(status).ok_or(NotStored::Ignored)?;
    // RFC 2869 section 5.3: Event-Timestamp is when the event happened; without it, the
    // packet's age (Acct-Delay-Time, RFC 2866 section 5.2) says how long ago.
    let event_time = match u32_of(pkt, a::EVENT_TIMESTAMP) {
        Some(t) => i64::from(t),
        None => now - i64::from(u32_of(pkt, a::ACCT_DELAY_TIME).unwrap_or(0)),
    };
    let nas_ip = ipv4_of(pkt, attr::NAS_IP_ADDRESS)
        .map(IpAddr::V4)
        .or_else(|| ipv6_of(pkt, a::NAS_IPV6_ADDRESS).map(IpAddr::V6))
        .unwrap_or(src)
        .to_string();
    match status {
        AcctStatus::NasOn | AcctStatus::NasOff => {
            return Ok(AcctEvent::NasRestart {
                nas_ip_address: nas_ip,
                at: event_time,
            })
        }
        AcctStatus::Start | AcctStatus::Interim | AcctStatus::Stop => {}
    }
    let session_id = text_of(pkt, attr::ACCT_SESSION_ID)
        .filter(|s| !s.is_empty())
        .ok_or(NotStored::Malformed)?;
    let mut r = SessionRecord::default();
    let username = text_of(pkt, attr::USER_NAME).unwrap_or_default();
    if let Some((_, realm)) = username.rsplit_once('@') {
        r.set_text(c::REALM, realm);
    }
    r.set_text(c::ACCT_UNIQUE_ID, unique_id(pkt));
    r.set_text(c::ACCT_SESSION_ID, session_id);
    r.set_text(c::USERNAME, username);
    r.set_int(c::NAS_ID, nas.id.0);
    r.set_text(c::NAS_IP_ADDRESS, nas_ip);
    let texts = [
        (c::NAS_IDENTIFIER, text_of(pkt, attr::NAS_IDENTIFIER)),
        (c::NAS_PORT_ID, text_of(pkt, attr::NAS_PORT_ID)),
        (c::NAS_PORT_TYPE, named(pkt, dict, attr::NAS_PORT_TYPE)),
        (c::AUTHENTIC, named(pkt, dict, a::ACCT_AUTHENTIC)),
        (c::CALLED_STATION_ID, text_of(pkt, attr::CALLED_STATION_ID)),
        (
            c::CALLING_STATION_ID,
            text_of(pkt, attr::CALLING_STATION_ID),
        ),
        (c::SERVICE_TYPE, named(pkt, dict, attr::SERVICE_TYPE)),
        (c::FRAMED_PROTOCOL, named(pkt, dict, attr::FRAMED_PROTOCOL)),
        (
            c::FRAMED_IP_ADDRESS,
            ipv4_of(pkt, attr::FRAMED_IP_ADDRESS).map(|v| v.to_string()),
        ),
        (
            c::FRAMED_IPV6_ADDRESS,
            ipv6_of(pkt, a::FRAMED_IPV6_ADDRESS).map(|v| v.to_string()),
        ),
        (
            c::FRAMED_IPV6_PREFIX,
            ipv6_prefix_of(pkt, a::FRAMED_IPV6_PREFIX),
        ),
        (
            c::DELEGATED_IPV6_PREFIX,
            ipv6_prefix_of(pkt, a::DELEGATED_IPV6_PREFIX),
        ),
        (
            c::FRAMED_INTERFACE_ID,
            pkt.find(a::FRAMED_INTERFACE_ID)
                .filter(|v| v.len() == 8)
                .map(|v| v.chunks(2).map(hex::encode).collect::<Vec<_>>().join(":")),
        ),
        (
            c::CLASS,
            pkt.find(attr::CLASS)
                .map(|v| format!("0x{}", hex::encode(v))),
        ),
    ];
    for (i, v) in texts {
        if let Some(v) = v {
            r.set_text(i, v);
        }
    }
    if let Some(p) = u32_of(pkt, attr::NAS_PORT) {
        r.set_int(c::NAS_PORT, i64::from(p));
    }
    if let Some(i) = u32_of(pkt, attr::ACCT_INTERIM_INTERVAL) {
        r.set_int(c::INTERVAL, i64::from(i));
    }
    let session_time = i64::from(u32_of(pkt, a::ACCT_SESSION_TIME).unwrap_or(0));
    r.set_int(c::SESSION_TIME, session_time);
    r.set_int(
        c::INPUT_OCTETS,
        counter(pkt, a::ACCT_INPUT_OCTETS, a::ACCT_INPUT_GIGAWORDS),
    );
    r.set_int(
        c::OUTPUT_OCTETS,
        counter(pkt, a::ACCT_OUTPUT_OCTETS, a::ACCT_OUTPUT_GIGAWORDS),
    );
    r.set_int(
        c::INPUT_PACKETS,
        i64::from(u32_of(pkt, a::ACCT_INPUT_PACKETS).unwrap_or(0)),
    );
    r.set_int(
        c::OUTPUT_PACKETS,
        i64::from(u32_of(pkt, a::ACCT_OUTPUT_PACKETS).unwrap_or(0)),
    );
    r.set_int(c::START, event_time - session_time);
    r.set_int(c::UPDATE, event_time);
    r.set_int(c::LAST_SEEN, now);
    r.set_int(c::START_REPORTED, 0);
    let connect_info = text_of(pkt, a::CONNECT_INFO);
    match status {
        AcctStatus::Start => {
            r.set_int(c::START_REPORTED, 1);
            if let Some(ci) = connect_info {
                r.set_text(c::CONNECT_INFO_START, ci);
            }
        }
        AcctStatus::Stop => {
            r.set_int(c::STOP, event_time);
            r.set_text(
                c::TERMINATE_CAUSE,
                named(pkt, dict, a::ACCT_TERMINATE_CAUSE).unwrap_or_default(),
            );
            if let Some(ci) = connect_info {
                r.set_text(c::CONNECT_INFO_STOP, ci);
            }
        }
        _ => {}
    }
    Ok(AcctEvent::Session(Box::new(r)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Code, PacketBuilder};
    use edge_shared::types::NasId;

    fn nas() -> Nas {
        Nas {
            id: NasId(7),
            name: "bng".into(),
            address: "10.0.0.1".into(),
            secret: "s".into(),
            vendor: "generic".into(),
            coa_port: 3799,
            require_message_authenticator: false,
            rate_limit_per_second: 0,
            tunnel: None,
        }
    }

    #[test]
    fn stop_with_gigawords_delay_and_names() {
        let mut b = PacketBuilder::new(Code::ACCOUNTING_REQUEST, 1, &[0; 16]);
        b.attr(attr::ACCT_STATUS_TYPE, &2u32.to_be_bytes());
        b.attr(attr::USER_NAME, b"alice@isp.example");
        b.attr(attr::ACCT_SESSION_ID, b"81000001");
        b.attr(attr::NAS_IP_ADDRESS, &[10, 0, 0, 1]);
        b.attr(attr::NAS_PORT, &7u32.to_be_bytes());
        b.attr(a::ACCT_SESSION_TIME, &600u32.to_be_bytes());
        b.attr(a::ACCT_DELAY_TIME, &5u32.to_be_bytes());
        b.attr(a::ACCT_INPUT_OCTETS, &10u32.to_be_bytes());
        b.attr(a::ACCT_INPUT_GIGAWORDS, &1u32.to_be_bytes());
        b.attr(a::ACCT_TERMINATE_CAUSE, &1u32.to_be_bytes());
        b.attr(attr::FRAMED_PROTOCOL, &1u32.to_be_bytes());
        b.attr(
            a::DELEGATED_IPV6_PREFIX,
            &[0, 56, 0x20, 0x01, 0x0d, 0xb8, 0, 1, 2],
        );
        let bytes = b.finish();
        let pkt = RawPacket::parse(&bytes).unwrap();
        let dict = Dictionary::builtin().unwrap();
        let src = "10.9.9.9".parse().unwrap();
        let AcctEvent::Session(r) = decode(&pkt, &dict, &nas(), src, 10_000).unwrap() else {
            panic!("a session event")
        };
        assert_eq!(r.int(c::UPDATE), Some(9_995));
        assert_eq!(r.int(c::STOP), Some(9_995));
        assert_eq!(r.int(c::START), Some(9_395));
        assert_eq!(r.int(c::INPUT_OCTETS), Some((1 << 32) + 10));
        assert_eq!(r.text(c::TERMINATE_CAUSE), Some("User-Request"));
        assert_eq!(r.text(c::FRAMED_PROTOCOL), Some("PPP"));
        assert_eq!(r.text(c::REALM), Some("isp.example"));
        assert_eq!(r.text(c::NAS_IP_ADDRESS), Some("10.0.0.1"));
        assert_eq!(
            r.text(c::DELEGATED_IPV6_PREFIX),
            Some("2001:db8:1:200::/56")
        );
        // md5("alice@isp.example,81000001,10.0.0.1,,,7")
        let want = hex::encode(Md5::digest(b"alice@isp.example,81000001,10.0.0.1,,,7"));
        assert_eq!(r.unique_id(), want);
    }

    #[test]
    fn event_timestamp_wins_over_delay_and_a_start_is_reported() {
        let mut b = PacketBuilder::new(Code::ACCOUNTING_REQUEST, 1, &[0; 16]);
        b.attr(attr::ACCT_STATUS_TYPE, &1u32.to_be_bytes());
        b.attr(attr::ACCT_SESSION_ID, b"s");
        b.attr(a::EVENT_TIMESTAMP, &1_700_000_000u32.to_be_bytes());
        b.attr(a::ACCT_DELAY_TIME, &5u32.to_be_bytes());
        b.attr(
            a::NAS_IPV6_ADDRESS,
            &"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets(),
        );
        let bytes = b.finish();
        let pkt = RawPacket::parse(&bytes).unwrap();
        let dict = Dictionary::builtin().unwrap();
        let src = "10.9.9.9".parse().unwrap();
        let AcctEvent::Session(r) = decode(&pkt, &dict, &nas(), src, 1_800_000_000).unwrap() else {
            panic!("a session event")
        };
        assert_eq!(r.int(c::START), Some(1_700_000_000));
        assert_eq!(r.int(c::UPDATE), Some(1_700_000_000));
        assert_eq!(r.int(c::LAST_SEEN), Some(1_800_000_000));
        assert_eq!(r.int(c::START_REPORTED), Some(1));
        assert_eq!(r.text(c::NAS_IP_ADDRESS), Some("2001:db8::1"));
        // NAS-IPv6-Address stands in the unique id's input where NAS-IP-Address would.
        let want = hex::encode(Md5::digest(b",s,2001:db8::1,,,"));
        assert_eq!(r.unique_id(), want);
    }

    #[test]
    fn accounting_on_and_missing_fields() {
        let mut b = PacketBuilder::new(Code::ACCOUNTING_REQUEST, 1, &[0; 16]);
        b.attr(attr::ACCT_STATUS_TYPE, &7u32.to_be_bytes());
        let bytes = b.finish();
        let pkt = RawPacket::parse(&bytes).unwrap();
        let dict = Dictionary::builtin().unwrap();
        let src: IpAddr = "10.9.9.9".parse().unwrap();
        match decode(&pkt, &dict, &nas(), src, 50).unwrap() {
            AcctEvent::NasRestart { nas_ip_address, at } => {
                assert_eq!(nas_ip_address, "10.9.9.9");
                assert_eq!(at, 50);
            }
            other => panic!("{other:?}"),
        }
        let mut b = PacketBuilder::new(Code::ACCOUNTING_REQUEST, 1, &[0; 16]);
        b.attr(attr::ACCT_STATUS_TYPE, &1u32.to_be_bytes());
        let bytes = b.finish();
        let pkt = RawPacket::parse(&bytes).unwrap();
        assert_eq!(
            decode(&pkt, &dict, &nas(), src, 50).unwrap_err(),
            NotStored::Malformed
        );
    }
}
