//! RFC 6929 extended attributes: types 241-244 carry an Extended-Type octet; 245-246
//! ("Long Extended") add a flags octet whose M bit says the value continues in the next one.

use super::error::DecodeError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtendedAttr<'a> {
    pub base: u8,
    pub ext_type: u8,
    /// The M (More) flag of a Long Extended attribute.
    pub more: bool,
    pub data: &'a [u8],
}

pub fn is_extended(typ: u8) -> bool {
    (241..=246).contains(&typ)
}

pub fn is_long_extended(typ: u8) -> bool {
    matches!(typ, 245 | 246)
}

/// Splits one extended attribute's value.
pub fn decode_extended(typ: u8, value: &[u8]) -> Result<ExtendedAttr<'_>, DecodeError> {
    if !is_extended(typ) || value.is_empty() {
        return Err(DecodeError::BadExtended);
    }
    if is_long_extended(typ) {
        if value.len() < 2 {
            return Err(DecodeError::BadExtended);
        }
        Ok(ExtendedAttr {
            base: typ,
            ext_type: value[0],
            more: value[1] & 0x80 != 0,
            data: &value[2..],
        })
    } else {
        Ok(ExtendedAttr {
            base: typ,
            ext_type: value[0],
            more: false,
            data: &value[1..],
        })
    }
}

/// Encodes an extended attribute's data as one or more whole attributes (type, length,
/// value), fragmenting Long Extended values with the M flag.
pub fn encode_extended(base: u8, ext_type: u8, data: &[u8]) -> Option<Vec<u8>> {
    if !is_extended(base) {
        return None;
    }
    let mut out = Vec::new();
    if is_long_extended(base) {
        let mut chunks = data.chunks(251).peekable();
        if data.is_empty() {
            out.extend_from_slice(&[base, 4, ext_type, 0]);
        }
        while let Some(c) = chunks.next() {
            let more = if chunks.peek().is_some() { 0x80 } else { 0 };
            out.extend_from_slice(&[base, (c.len() + 4) as u8, ext_type, more]);
            out.extend_from_slice(c);
        }
    } else {
        if data.len() > 252 {
            return None;
        }
        out.extend_from_slice(&[base, (data.len() + 3) as u8, ext_type]);
        out.extend_from_slice(data);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Code, PacketBuilder, RawPacket};

    #[test]
    fn long_extended_fragments_and_reassembles() {
        let data = vec![0xabu8; 600];
        let enc = encode_extended(245, 1, &data).unwrap();
        let mut b = PacketBuilder::new(Code::ACCESS_ACCEPT, 1, &[0; 16]);
        b.raw(&enc);
        let bytes = b.finish();
        let p = RawPacket::parse(&bytes).unwrap();
        let frags: Vec<_> = p
            .attrs()
            .map(|a| decode_extended(a.typ, a.value).unwrap())
            .collect();
        assert_eq!(frags.len(), 3);
        assert!(frags[0].more && frags[1].more && !frags[2].more);
        let joined: Vec<u8> = frags.iter().flat_map(|f| f.data.to_vec()).collect();
        assert_eq!(joined, data);
    }

    #[test]
    fn short_extended() {
        let enc = encode_extended(241, 5, b"abc").unwrap();
        assert_eq!(enc, vec![241, 6, 5, b'a', b'b', b'c']);
        let e = decode_extended(241, &enc[2..]).unwrap();
        assert_eq!((e.ext_type, e.data), (5, &b"abc"[..]));
        assert!(decode_extended(241, &[]).is_err());
        assert!(decode_extended(245, &[1]).is_err());
        assert!(decode_extended(1, &[1]).is_err());
    }
}
