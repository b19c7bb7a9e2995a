//! `Attribute = value` pairs: compiled once (when a plan is saved or loaded) into the octets
//! a reply carries, and decoded from packets for display and tests.

use std::fmt;

use thiserror::Error;

use super::value::{decode_value, encode_value, parse_value};
use super::{AttrKey, DataType, Dictionary, Value, ValueError};
use crate::codec::{
    attr, decode_extended, decode_vsa, encode_extended, encode_vsa, hide_password,
    hide_tunnel_password, is_extended, is_long_extended, PacketBuilder, RawPacket, VendorFormat,
};

#[derive(Debug, Error, PartialEq, Eq)]
pub enum PairError {
    #[error("expected `Attribute = value`")]
    Syntax,
    #[error("unknown attribute `{0}`")]
    UnknownAttr(String),
    #[error("attribute `{0}` cannot carry a tag")]
    Tag(String),
    #[error("{attr}: {source}")]
    Value { attr: String, source: ValueError },
    #[error("value of `{0}` does not fit in an attribute")]
    TooLong(String),
}

/// A reply pair checked against the dictionary, its value already in wire form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledPair {
    pub name: String,
    pub key: AttrKey,
    tag: Option<u8>,
    has_tag: bool,
    data: Vec<u8>,
    encrypt: u8,
    format: VendorFormat,
    concat: bool,
}

impl Dictionary {
    /// Compiles `Name = value`, `Name := value` or `Name += value`; `Name:3 = value` tags.
    pub fn compile_pair(&self, text: &str) -> Result<CompiledPair, PairError> {
        let (lhs, rhs) = split_operator(text).ok_or(PairError::Syntax)?;
        let (name, tag) = match lhs.split_once(':') {
            Some((n, t)) => {
                let t: u8 = t.parse().map_err(|_| PairError::Syntax)?;
                if t > 0x1f {
                    return Err(PairError::Syntax);
                }
                (n, Some(t))
            }
            None => (lhs, None),
        };
        let def = self
            .attr(name)
            .ok_or_else(|| PairError::UnknownAttr(name.to_string()))?;
        if tag.is_some() && !def.has_tag {
            return Err(PairError::Tag(def.name.clone()));
        }
        let value =
            parse_value(def.typ, rhs, &|s| def.value_of(s)).map_err(|source| PairError::Value {
                attr: def.name.clone(),
                source,
            })?;
        let data = encode_value(&value);
        let format = match def.key {
            AttrKey::Vendor(v, _) => self.vendor_format(v),
            _ => VendorFormat::default(),
        };
        let pair = CompiledPair {
            name: def.name.clone(),
            key: def.key,
            tag,
            has_tag: def.has_tag,
            data,
            encrypt: def.encrypt,
            format,
            concat: def.concat,
        };
        // Fail now, not per packet, when the value cannot be encoded.
        let mut probe = PacketBuilder::new(crate::codec::Code::ACCESS_ACCEPT, 0, &[0; 16]);
        if !pair.write(&mut probe, b"probe", &[0; 16]) {
            return Err(PairError::TooLong(def.name.clone()));
        }
        Ok(pair)
    }

    /// Every attribute of a packet by name. Encrypted values are shown as they are on the wire.
    pub fn decode_packet(&self, packet: &RawPacket<'_>) -> Vec<DecodedPair> {
        let mut out = Vec::new();
        let mut attrs = packet.attrs().peekable();
        while let Some(a) = attrs.next() {
            if a.typ == attr::VENDOR_SPECIFIC {
                match decode_vsa(a.value, &|v| self.vendor_format(v)) {
                    Ok((vendor, entries)) => {
                        for e in entries {
                            out.push(self.decoded(AttrKey::Vendor(vendor, e.typ), e.value));
                        }
                    }
                    Err(_) => out.push(self.decoded(AttrKey::Std(a.typ), a.value)),
                }
            } else if is_extended(a.typ) {
                let Ok(first) = decode_extended(a.typ, a.value) else {
                    out.push(self.decoded(AttrKey::Std(a.typ), a.value));
                    continue;
                };
                let mut data = first.data.to_vec();
                let mut more = first.more;
                while more && is_long_extended(a.typ) {
                    match attrs
                        .peek()
                        .map(|n| (n.typ, decode_extended(n.typ, n.value)))
                    {
                        Some((t, Ok(n))) if t == a.typ && n.ext_type == first.ext_type => {
                            data.extend_from_slice(n.data);
                            more = n.more;
                            attrs.next();
                        }
                        _ => more = false,
                    }
                }
                if first.ext_type == 26 && data.len() >= 5 {
                    let vendor = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
                    let key = AttrKey::ExtVendor(a.typ, vendor, data[4]);
                    out.push(self.decoded(key, &data[5..]));
                } else {
                    out.push(self.decoded(AttrKey::Ext(a.typ, first.ext_type), &data));
                }
            } else {
                out.push(self.decoded(AttrKey::Std(a.typ), a.value));
            }
        }
        out
    }

    fn decoded(&self, key: AttrKey, raw: &[u8]) -> DecodedPair {
        let Some(def) = self.attr_by_key(key) else {
            return DecodedPair {
                name: unknown_name(key),
                tag: None,
                value: Value::Octets(raw.to_vec()),
                label: None,
            };
        };
        let mut bytes = raw.to_vec();
        let mut tag = None;
        if def.has_tag && !bytes.is_empty() && bytes[0] <= 0x1f {
            if def.typ == DataType::Integer {
                tag = Some(bytes[0]);
                bytes[0] = 0;
            } else if def.encrypt == 0 || def.encrypt == 2 {
                tag = Some(bytes.remove(0));
            }
        }
        let value = if def.encrypt != 0 {
            Value::Octets(bytes)
        } else {
            decode_value(def.typ, &bytes).unwrap_or(Value::Octets(bytes))
        };
        let label = match value {
            Value::Int(n) => def.name_of(u64::from(n)).map(str::to_string),
            _ => None,
        };
        DecodedPair {
            name: def.name.clone(),
            tag,
            value,
            label,
        }
    }
}

fn unknown_name(key: AttrKey) -> String {
    match key {
        AttrKey::Std(t) => format!("Attr-{t}"),
        AttrKey::Vendor(v, t) => format!("Vendor-{v}-Attr-{t}"),
        AttrKey::Ext(b, e) => format!("Attr-{b}.{e}"),
        AttrKey::ExtVendor(b, v, t) => format!("Attr-{b}.26.{v}.{t}"),
    }
}

fn split_operator(text: &str) -> Option<(&str, &str)> {
    for op in [":=", "+=", "="] {
        if let Some((l, r)) = text.split_once(op) {
            let l = l.trim();
            if l.is_empty() || l.contains(char::is_whitespace) {
                return None;
            }
            return Some((l, r.trim()));
        }
    }
    None
}

impl CompiledPair {
    /// Appends the pair. Encrypted attributes are hidden with this packet's secret and the
    /// request's authenticator. Returns false when the packet had no room.
    pub fn write(&self, b: &mut PacketBuilder, secret: &[u8], request_auth: &[u8; 16]) -> bool {
        let value = self.wire_value(secret, request_auth);
        let before = b.len();
        match self.key {
            AttrKey::Std(t) => {
                if value.len() > 253 && !self.concat {
                    return false;
                }
                b.attr(t, &value);
            }
            AttrKey::Vendor(v, t) => match encode_vsa(v, self.format, t, &value) {
                Some(vsa) => {
                    b.attr(attr::VENDOR_SPECIFIC, &vsa);
                }
                None => return false,
            },
            AttrKey::Ext(base, e) => match encode_extended(base, e, &value) {
                Some(enc) => {
                    b.raw(&enc);
                }
                None => return false,
            },
            AttrKey::ExtVendor(base, v, t) => {
                let mut data = v.to_be_bytes().to_vec();
                data.push(t);
                data.extend_from_slice(&value);
                match encode_extended(base, 26, &data) {
                    Some(enc) => {
                        b.raw(&enc);
                    }
                    None => return false,
                }
            }
        }
        !b.overflowed() && b.len() > before
    }

    fn wire_value(&self, secret: &[u8], request_auth: &[u8; 16]) -> Vec<u8> {
        match self.encrypt {
            1 => hide_password(&self.data, secret, request_auth),
            2 => {
                let salt: [u8; 2] = rand::random();
                let hidden = hide_tunnel_password(&self.data, secret, request_auth, salt);
                if self.has_tag {
                    let mut v = vec![self.tag.unwrap_or(0)];
                    v.extend(hidden);
                    v
                } else {
                    hidden
                }
            }
            _ if self.has_tag && self.data.len() == 4 && self.tag.is_some() => {
                // RFC 2868: tagged integers give their first octet to the tag.
                let mut v = self.data.clone();
                v[0] = self.tag.unwrap_or(0);
                v
            }
            _ if self.has_tag && self.tag.is_some() => {
                let mut v = vec![self.tag.unwrap_or(0)];
                v.extend_from_slice(&self.data);
                v
            }
            _ => self.data.clone(),
        }
    }
}

/// One attribute read from a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedPair {
    pub name: String,
    pub tag: Option<u8>,
    pub value: Value,
    /// The `VALUE` name of an enumerated integer.
    pub label: Option<String>,
}

impl fmt::Display for DecodedPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(t) = self.tag {
            write!(f, ":{t}")?;
        }
        match &self.label {
            Some(l) => write!(f, " = {l}"),
            None => write!(f, " = {}", self.value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{unhide_tunnel_password, Code};

    const DICT: &str = "
ATTRIBUTE Reply-Message 18 string
ATTRIBUTE Service-Type 6 integer
VALUE Service-Type Framed-User 2
ATTRIBUTE Tunnel-Type 64 integer has_tag
VALUE Tunnel-Type VLAN 13
ATTRIBUTE Tunnel-Private-Group-Id 81 string has_tag
ATTRIBUTE Tunnel-Password 69 string has_tag,encrypt=2
ATTRIBUTE Delegated-IPv6-Prefix 123 ipv6prefix
ATTRIBUTE Frag-Status 241.1 integer
ATTRIBUTE Long-Thing 245.4 octets
VENDOR Mikrotik 14988
BEGIN-VENDOR Mikrotik
ATTRIBUTE Mikrotik-Rate-Limit 8 string
END-VENDOR Mikrotik
VENDOR Wide 5000 format=2,1
BEGIN-VENDOR Wide
ATTRIBUTE Wide-Thing 300 integer
END-VENDOR Wide
VENDOR Evs 6000
BEGIN-VENDOR Evs format=Extended-Vendor-Specific-1
ATTRIBUTE Evs-Thing 3 string
END-VENDOR Evs
";

    fn round_trip(d: &Dictionary, pairs: &[&str]) -> Vec<String> {
        let mut b = PacketBuilder::new(Code::ACCESS_ACCEPT, 1, &[0; 16]);
        for p in pairs {
            assert!(
                d.compile_pair(p).unwrap().write(&mut b, b"s", &[0; 16]),
                "{p}"
            );
        }
        let bytes = b.finish();
        let raw = RawPacket::parse(&bytes).unwrap();
        d.decode_packet(&raw)
            .iter()
            .map(|p| p.to_string())
            .collect()
    }

    #[test]
    fn compiles_and_decodes_every_kind() {
        let d = Dictionary::parse_str(DICT).unwrap();
        let got = round_trip(
            &d,
            &[
                "Mikrotik-Rate-Limit = \"20M/20M\"",
                "Service-Type := Framed-User",
                "Tunnel-Type:1 = VLAN",
                "Tunnel-Private-Group-Id:1 = \"100\"",
                "Delegated-IPv6-Prefix += 2001:db8:100::/56",
                "Wide-Thing = 7",
                "Frag-Status = 2",
                "Evs-Thing = \"hello\"",
                "Reply-Message = \"Welcome\"",
            ],
        );
        assert_eq!(
            got,
            [
                "Mikrotik-Rate-Limit = \"20M/20M\"",
                "Service-Type = Framed-User",
                "Tunnel-Type:1 = VLAN",
                "Tunnel-Private-Group-Id:1 = \"100\"",
                "Delegated-IPv6-Prefix = 2001:db8:100::/56",
                "Wide-Thing = 7",
                "Frag-Status = 2",
                "Evs-Thing = \"hello\"",
                "Reply-Message = \"Welcome\"",
            ]
        );
    }

    #[test]
    fn long_extended_values_fragment() {
        let d = Dictionary::parse_str(DICT).unwrap();
        let long = format!("Long-Thing = 0x{}", "ab".repeat(400));
        let got = round_trip(&d, &[&long]);
        assert_eq!(got, [format!("Long-Thing = 0x{}", "ab".repeat(400))]);
    }

    #[test]
    fn tunnel_password_is_hidden_with_the_request_authenticator() {
        let d = Dictionary::parse_str(DICT).unwrap();
        let p = d.compile_pair("Tunnel-Password:2 = \"pw\"").unwrap();
        let ra = [5u8; 16];
        let mut b = PacketBuilder::new(Code::ACCESS_ACCEPT, 1, &ra);
        p.write(&mut b, b"secret", &ra);
        let bytes = b.finish();
        let raw = RawPacket::parse(&bytes).unwrap();
        let v = raw.find(69).unwrap();
        assert_eq!(v[0], 2);
        assert_eq!(
            unhide_tunnel_password(&v[1..], b"secret", &ra).unwrap(),
            b"pw"
        );
    }

    #[test]
    fn refuses_bad_pairs() {
        let d = Dictionary::parse_str(DICT).unwrap();
        assert_eq!(
            d.compile_pair("Nope = 1"),
            Err(PairError::UnknownAttr("Nope".into()))
        );
        assert!(matches!(
            d.compile_pair("Service-Type = Bogus"),
            Err(PairError::Value { .. })
        ));
        assert_eq!(d.compile_pair("Reply-Message"), Err(PairError::Syntax));
        assert!(matches!(
            d.compile_pair("Reply-Message:1 = \"x\""),
            Err(PairError::Tag(_))
        ));
        let long = format!("Mikrotik-Rate-Limit = \"{}\"", "x".repeat(260));
        assert!(matches!(d.compile_pair(&long), Err(PairError::TooLong(_))));
    }

    #[test]
    fn unknown_attributes_keep_numeric_names() {
        let d = Dictionary::parse_str(DICT).unwrap();
        let mut b = PacketBuilder::new(Code::ACCESS_REQUEST, 1, &[0; 16]);
        b.attr(200, b"x");
        b.attr(26, &[0, 0, 0, 9, 1, 3, b'y']);
        let bytes = b.finish();
        let names: Vec<_> = d
            .decode_packet(&RawPacket::parse(&bytes).unwrap())
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["Attr-200", "Vendor-9-Attr-1"]);
    }
}
