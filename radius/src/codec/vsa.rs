//! Vendor-Specific (type 26) contents: Vendor-Id, then sub-attributes in the vendor's format.
//!
//! RFC 2865 section 5.26 suggests type(1) length(1); vendors deviate, which FreeRADIUS
//! dictionaries declare as `format=t,l[,c]` (type octets 1, 2 or 4; length octets 0, 1 or 2;
//! `c` a WiMAX continuation octet).

use super::error::DecodeError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VendorFormat {
    pub type_len: u8,
    pub len_len: u8,
    pub continuation: bool,
}

impl Default for VendorFormat {
    fn default() -> Self {
        VendorFormat {
            type_len: 1,
            len_len: 1,
            continuation: false,
        }
    }
}

impl VendorFormat {
    /// Parses `t,l` or `t,l,c` as written after `format=`.
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.split(',');
        let type_len: u8 = parts.next()?.trim().parse().ok()?;
        let len_len: u8 = parts.next()?.trim().parse().ok()?;
        let continuation = match parts.next() {
            None => false,
            Some(c) if c.trim() == "c" => true,
            Some(_) => return None,
        };
        if parts.next().is_some()
            || !matches!(type_len, 1 | 2 | 4)
            || !matches!(len_len, 0..=2)
            || (continuation && (type_len, len_len) != (1, 1))
        {
            return None;
        }
        Some(VendorFormat {
            type_len,
            len_len,
            continuation,
        })
    }

    fn header_len(self) -> usize {
        usize::from(self.type_len) + usize::from(self.len_len) + usize::from(self.continuation)
    }
}

/// One vendor sub-attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VsaEntry<'a> {
    pub typ: u32,
    pub value: &'a [u8],
    /// The WiMAX continuation flag, when the format has one.
    pub more: bool,
}

/// The Vendor-Id of a VSA value and its sub-attributes.
pub fn decode_vsa<'a>(
    value: &'a [u8],
    format_of: &dyn Fn(u32) -> VendorFormat,
) -> Result<(u32, Vec<VsaEntry<'a>>), DecodeError> {
    if value.len() < 5 {
        return Err(DecodeError::BadVsa);
    }
    let vendor = u32::from_be_bytes([value[0], value[1], value[2], value[3]]);
    let fmt = format_of(vendor);
    let mut out = Vec::new();
    let mut rest = &value[4..];
    while !rest.is_empty() {
        let hl = fmt.header_len();
        if rest.len() < hl {
            return Err(DecodeError::BadVsa);
        }
        let typ = match fmt.type_len {
            1 => u32::from(rest[0]),
            2 => u32::from(u16::from_be_bytes([rest[0], rest[1]])),
            _ => u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]),
        };
        let tl = usize::from(fmt.type_len);
        let total = match fmt.len_len {
            0 => rest.len(),
            1 => usize::from(rest[tl]),
            _ => usize::from(u16::from_be_bytes([rest[tl], rest[tl + 1]])),
        };
        if total < hl || total > rest.len() {
            return Err(DecodeError::BadVsa);
        }
        let more = fmt.continuation && rest[tl + 1] & 0x80 != 0;
        out.push(VsaEntry {
            typ,
            value: &rest[hl..total],
            more,
        });
        rest = &rest[total..];
    }
    Ok((vendor, out))
}

/// Encodes one sub-attribute with its Vendor-Id: the value of a type-26 attribute.
/// `None` when the value does not fit in one attribute.
pub fn encode_vsa(vendor: u32, fmt: VendorFormat, typ: u32, data: &[u8]) -> Option<Vec<u8>> {
    let hl = fmt.header_len();
    let total = hl + data.len();
    if 4 + total > 253 {
        return None;
    }
    let mut out = Vec::with_capacity(4 + total);
    out.extend_from_slice(&vendor.to_be_bytes());
    match fmt.type_len {
        1 => out.push(u8::try_from(typ).ok()?),
        2 => out.extend_from_slice(&u16::try_from(typ).ok()?.to_be_bytes()),
        _ => out.extend_from_slice(&typ.to_be_bytes()),
    }
    match fmt.len_len {
        0 => {}
        1 => out.push(total as u8),
        _ => out.extend_from_slice(&(total as u16).to_be_bytes()),
    }
    if fmt.continuation {
        out.push(0);
    }
    out.extend_from_slice(data);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_formats() {
        assert_eq!(VendorFormat::parse("1,1"), Some(VendorFormat::default()));
        let f = VendorFormat::parse("2,1").unwrap();
        assert_eq!((f.type_len, f.len_len), (2, 1));
        assert!(VendorFormat::parse("1,1,c").unwrap().continuation);
        assert_eq!(VendorFormat::parse("3,1"), None);
        assert_eq!(VendorFormat::parse("2,1,c"), None);
        assert_eq!(VendorFormat::parse("1"), None);
    }

    #[test]
    fn round_trips_every_format() {
        for f in ["1,1", "2,1", "4,0", "2,2", "4,1", "1,0", "1,1,c"] {
            let fmt = VendorFormat::parse(f).unwrap();
            let typ = if fmt.type_len == 1 { 8 } else { 300 };
            let v = encode_vsa(14988, fmt, typ, b"20M/20M").unwrap();
            let (vendor, entries) = decode_vsa(&v, &|_| fmt).unwrap();
            assert_eq!(vendor, 14988, "{f}");
            assert_eq!(entries.len(), 1, "{f}");
            assert_eq!(entries[0].typ, typ, "{f}");
            assert_eq!(entries[0].value, b"20M/20M", "{f}");
        }
    }

    #[test]
    fn decodes_several_and_rejects_overruns() {
        let mut v = 9u32.to_be_bytes().to_vec();
        v.extend_from_slice(&[1, 5, b'a', b'b', b'c', 2, 3, b'z']);
        let (_, e) = decode_vsa(&v, &|_| VendorFormat::default()).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[1].value, b"z");
        v.extend_from_slice(&[3, 9, 1]);
        assert_eq!(
            decode_vsa(&v, &|_| VendorFormat::default()),
            Err(DecodeError::BadVsa)
        );
        assert!(decode_vsa(&[0, 0, 0], &|_| VendorFormat::default()).is_err());
        let bad_len = [0, 0, 0, 9, 1, 1];
        assert!(decode_vsa(&bad_len, &|_| VendorFormat::default()).is_err());
    }
}
