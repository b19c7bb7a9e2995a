//! Attribute data types: text form <-> wire form.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    String,
    Octets,
    IpAddr,
    Ipv4Prefix,
    Integer,
    Integer64,
    Date,
    Ipv6Addr,
    Ipv6Prefix,
    IfId,
    Ether,
    Byte,
    Short,
    Signed,
    ComboIp,
    Tlv,
    Vsa,
    Extended,
    LongExtended,
    Evs,
    Abinary,
}

impl DataType {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "string" | "text" => DataType::String,
            "octets" => DataType::Octets,
            "ipaddr" | "ipv4addr" => DataType::IpAddr,
            "ipv4prefix" => DataType::Ipv4Prefix,
            "integer" | "uint32" | "time_delta" => DataType::Integer,
            "integer64" | "uint64" => DataType::Integer64,
            "date" => DataType::Date,
            "ipv6addr" => DataType::Ipv6Addr,
            "ipv6prefix" => DataType::Ipv6Prefix,
            "ifid" => DataType::IfId,
            "ether" => DataType::Ether,
            "byte" | "uint8" => DataType::Byte,
            "short" | "uint16" => DataType::Short,
            "signed" | "int32" => DataType::Signed,
            "combo-ip" | "comboip" => DataType::ComboIp,
            "tlv" | "struct" => DataType::Tlv,
            "vsa" => DataType::Vsa,
            "extended" => DataType::Extended,
            "long-extended" => DataType::LongExtended,
            "evs" => DataType::Evs,
            "abinary" => DataType::Abinary,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Str(String),
    Octets(Vec<u8>),
    Ipv4(Ipv4Addr),
    Ipv4Prefix(Ipv4Addr, u8),
    Ipv6(Ipv6Addr),
    Ipv6Prefix(Ipv6Addr, u8),
    Int(u32),
    Int64(u64),
    Date(u32),
    IfId([u8; 8]),
    Ether([u8; 6]),
    Byte(u8),
    Short(u16),
    Signed(i32),
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ValueError {
    #[error("`{text}` is not a valid {typ:?}")]
    Parse { typ: DataType, text: String },
    #[error("{0} octets do not fit the type")]
    WireLength(usize),
    #[error("value too long for one attribute")]
    TooLong,
    #[error("the type cannot be written as a value")]
    Structural,
}

fn perr(typ: DataType, text: &str) -> ValueError {
    ValueError::Parse {
        typ,
        text: text.to_string(),
    }
}

/// Parses the text form. `enum_value` resolves `VALUE` names of integer attributes.
pub fn parse_value(
    typ: DataType,
    text: &str,
    enum_value: &dyn Fn(&str) -> Option<u64>,
) -> Result<Value, ValueError> {
    let t = text.trim();
    let unq = unquote(t);
    let num = |s: &str| -> Option<u64> {
        if let Some(h) = s.strip_prefix("0x") {
            u64::from_str_radix(h, 16).ok()
        } else {
            s.parse().ok().or_else(|| enum_value(s))
        }
    };
    Ok(match typ {
        DataType::String => Value::Str(unq.to_string()),
        DataType::Octets | DataType::Abinary | DataType::Tlv => match unq.strip_prefix("0x") {
            Some(h) => Value::Octets(hex::decode(h).map_err(|_| perr(typ, t))?),
            None => Value::Octets(unq.as_bytes().to_vec()),
        },
        DataType::IpAddr => Value::Ipv4(unq.parse().map_err(|_| perr(typ, t))?),
        DataType::Ipv6Addr => Value::Ipv6(unq.parse().map_err(|_| perr(typ, t))?),
        DataType::ComboIp => match unq.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(a)) => Value::Ipv4(a),
            Ok(std::net::IpAddr::V6(a)) => Value::Ipv6(a),
            Err(_) => return Err(perr(typ, t)),
        },
        DataType::Ipv4Prefix => {
            let (a, l) = split_prefix(unq, 32).ok_or_else(|| perr(typ, t))?;
            Value::Ipv4Prefix(a.parse().map_err(|_| perr(typ, t))?, l)
        }
        DataType::Ipv6Prefix => {
            let (a, l) = split_prefix(unq, 128).ok_or_else(|| perr(typ, t))?;
            Value::Ipv6Prefix(a.parse().map_err(|_| perr(typ, t))?, l)
        }
        DataType::Integer => {
            let n = num(unq).ok_or_else(|| perr(typ, t))?;
            Value::Int(u32::try_from(n).map_err(|_| perr(typ, t))?)
        }
        DataType::Date => Value::Date(unq.parse().map_err(|_| perr(typ, t))?),
        DataType::Integer64 => Value::Int64(num(unq).ok_or_else(|| perr(typ, t))?),
        DataType::Byte => {
            let n = num(unq).ok_or_else(|| perr(typ, t))?;
            Value::Byte(u8::try_from(n).map_err(|_| perr(typ, t))?)
        }
        DataType::Short => {
            let n = num(unq).ok_or_else(|| perr(typ, t))?;
            Value::Short(u16::try_from(n).map_err(|_| perr(typ, t))?)
        }
        DataType::Signed => Value::Signed(unq.parse().map_err(|_| perr(typ, t))?),
        DataType::IfId => Value::IfId(parse_hex_groups::<8>(unq, ':').ok_or_else(|| perr(typ, t))?),
        DataType::Ether => Value::Ether(
            parse_hex_groups::<6>(&unq.replace('-', ":"), ':').ok_or_else(|| perr(typ, t))?,
        ),
        DataType::Vsa | DataType::Extended | DataType::LongExtended | DataType::Evs => {
            return Err(ValueError::Structural)
        }
    })
}

fn unquote(s: &str) -> &str {
    if s.len() >= 2
        && ((s.starts_with('"') && s.ends_with('"')) || (s.starts_with('\'') && s.ends_with('\'')))
    {
        &s[1..s.len() - 1]
    } else {
        s
    }
}

fn split_prefix(s: &str, max: u8) -> Option<(&str, u8)> {
    let (a, l) = s.split_once('/')?;
    let l: u8 = l.parse().ok()?;
    (l <= max).then_some((a, l))
}

fn parse_hex_groups<const N: usize>(s: &str, sep: char) -> Option<[u8; N]> {
    let digits: String = s.chars().filter(|c| *c != sep && *c != '.').collect();
    let bytes = hex::decode(digits).ok()?;
    bytes.try_into().ok()
}

/// The wire form of a value.
pub fn encode_value(v: &Value) -> Vec<u8> {
    match v {
        Value::Str(s) => s.as_bytes().to_vec(),
        Value::Octets(o) => o.clone(),
        Value::Ipv4(a) => a.octets().to_vec(),
        Value::Ipv6(a) => a.octets().to_vec(),
        Value::Ipv4Prefix(a, l) => {
            let mut o = vec![0, *l];
            o.extend_from_slice(&a.octets());
            o
        }
        Value::Ipv6Prefix(a, l) => {
            // RFC 3162 section 2.3: the prefix field holds ceil(len/8) octets.
            let n = usize::from(*l).div_ceil(8);
            let mut o = vec![0, *l];
            o.extend_from_slice(&a.octets()[..n]);
            o
        }
        Value::Int(n) | Value::Date(n) => n.to_be_bytes().to_vec(),
        Value::Int64(n) => n.to_be_bytes().to_vec(),
        Value::IfId(b) => b.to_vec(),
        Value::Ether(b) => b.to_vec(),
        Value::Byte(b) => vec![*b],
        Value::Short(s) => s.to_be_bytes().to_vec(),
        Value::Signed(s) => s.to_be_bytes().to_vec(),
    }
}

/// Decodes wire octets as a type. Octets that do not fit the type are an error; callers
/// fall back to showing them as octets.
pub fn decode_value(typ: DataType, b: &[u8]) -> Result<Value, ValueError> {
    let wl = || ValueError::WireLength(b.len());
    Ok(match typ {
        DataType::String => Value::Str(String::from_utf8_lossy(b).into_owned()),
        DataType::IpAddr => Value::Ipv4(<[u8; 4]>::try_from(b).map_err(|_| wl())?.into()),
        DataType::Ipv6Addr => Value::Ipv6(<[u8; 16]>::try_from(b).map_err(|_| wl())?.into()),
        DataType::ComboIp => match b.len() {
            4 => decode_value(DataType::IpAddr, b)?,
            16 => decode_value(DataType::Ipv6Addr, b)?,
            _ => return Err(wl()),
        },
        DataType::Ipv4Prefix => {
            if b.len() != 6 || b[1] > 32 {
                return Err(wl());
            }
            Value::Ipv4Prefix(Ipv4Addr::new(b[2], b[3], b[4], b[5]), b[1])
        }
        DataType::Ipv6Prefix => {
            if b.len() < 2 || b.len() > 18 || b[1] > 128 {
                return Err(wl());
            }
            let mut o = [0u8; 16];
            o[..b.len() - 2].copy_from_slice(&b[2..]);
            Value::Ipv6Prefix(o.into(), b[1])
        }
        DataType::Integer => Value::Int(u32::from_be_bytes(b.try_into().map_err(|_| wl())?)),
        DataType::Date => Value::Date(u32::from_be_bytes(b.try_into().map_err(|_| wl())?)),
        DataType::Integer64 => Value::Int64(u64::from_be_bytes(b.try_into().map_err(|_| wl())?)),
        DataType::Signed => Value::Signed(i32::from_be_bytes(b.try_into().map_err(|_| wl())?)),
        DataType::Short => Value::Short(u16::from_be_bytes(b.try_into().map_err(|_| wl())?)),
        DataType::Byte => match b {
            [x] => Value::Byte(*x),
            _ => return Err(wl()),
        },
        DataType::IfId => Value::IfId(b.try_into().map_err(|_| wl())?),
        DataType::Ether => Value::Ether(b.try_into().map_err(|_| wl())?),
        _ => Value::Octets(b.to_vec()),
    })
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => write!(f, "\"{}\"", s.escape_debug()),
            Value::Octets(o) => write!(f, "0x{}", hex::encode(o)),
            Value::Ipv4(a) => write!(f, "{a}"),
            Value::Ipv6(a) => write!(f, "{a}"),
            Value::Ipv4Prefix(a, l) => write!(f, "{a}/{l}"),
            Value::Ipv6Prefix(a, l) => write!(f, "{a}/{l}"),
            Value::Int(n) | Value::Date(n) => write!(f, "{n}"),
            Value::Int64(n) => write!(f, "{n}"),
            Value::Signed(n) => write!(f, "{n}"),
            Value::Short(n) => write!(f, "{n}"),
            Value::Byte(n) => write!(f, "{n}"),
            Value::IfId(b) => write!(f, "{}", join_hex(b, ":", 2)),
            Value::Ether(b) => write!(f, "{}", join_hex(b, ":", 1)),
        }
    }
}

fn join_hex(b: &[u8], sep: &str, group: usize) -> String {
    b.chunks(group)
        .map(hex::encode)
        .collect::<Vec<_>>()
        .join(sep)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &str) -> Option<u64> {
        None
    }

    #[test]
    fn round_trips_types() {
        let cases = [
            (DataType::String, "\"20M/20M\""),
            (DataType::IpAddr, "10.0.0.1"),
            (DataType::Ipv6Addr, "2001:db8::1"),
            (DataType::Ipv6Prefix, "2001:db8:1::/48"),
            (DataType::Ipv4Prefix, "10.0.0.0/8"),
            (DataType::Integer, "3600"),
            (DataType::Integer64, "99999999999"),
            (DataType::Ether, "00:11:22:33:44:55"),
            (DataType::IfId, "0011:2233:4455:6677"),
            (DataType::Short, "65535"),
            (DataType::Byte, "7"),
            (DataType::Signed, "-5"),
        ];
        for (t, text) in cases {
            let v = parse_value(t, text, &none).unwrap();
            let back = decode_value(t, &encode_value(&v)).unwrap();
            assert_eq!(back, v, "{t:?} {text}");
            assert_eq!(v.to_string(), text.trim_matches('\u{0}'), "{t:?}");
        }
    }

    #[test]
    fn rejects_bad_text_and_wire() {
        assert!(parse_value(DataType::IpAddr, "10.0.0.300", &none).is_err());
        assert!(parse_value(DataType::Integer, "4294967296", &none).is_err());
        assert!(parse_value(DataType::Ipv6Prefix, "::/129", &none).is_err());
        assert!(decode_value(DataType::Integer, &[1, 2]).is_err());
        assert!(decode_value(DataType::Ipv6Prefix, &[0, 200]).is_err());
        assert!(decode_value(DataType::Ipv6Prefix, &[0; 19]).is_err());
    }

    #[test]
    fn integer_accepts_enum_names() {
        let f = |s: &str| (s == "Framed-User").then_some(2);
        assert_eq!(
            parse_value(DataType::Integer, "Framed-User", &f).unwrap(),
            Value::Int(2)
        );
    }
}
