//! Packet framing: a bounded walk over the header and attributes, and a builder.

use super::error::DecodeError;
use super::Code;

pub const HEADER_LEN: usize = 20;
/// RFC 2865 section 3: "The maximum length is 4096."
pub const MAX_PACKET_LEN: usize = 4096;

/// A packet whose header and attribute framing have been checked. Borrows the buffer.
#[derive(Debug, Clone, Copy)]
pub struct RawPacket<'a> {
    bytes: &'a [u8],
}

/// One attribute as it stands on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawAttr<'a> {
    pub typ: u8,
    pub value: &'a [u8],
    /// Offset of the attribute's type octet within the packet.
    pub offset: usize,
}

impl<'a> RawPacket<'a> {
    /// Checks the header and walks every attribute once.
    ///
    /// RFC 2865 section 3: octets past the Length field are padding and MUST be ignored; a
    /// packet shorter than its Length field MUST be silently discarded.
    pub fn parse(buf: &'a [u8]) -> Result<Self, DecodeError> {
        if buf.len() < HEADER_LEN {
            return Err(DecodeError::TooShort);
        }
        let declared = u16::from_be_bytes([buf[2], buf[3]]);
        let len = usize::from(declared);
        if !(HEADER_LEN..=MAX_PACKET_LEN).contains(&len) {
            return Err(DecodeError::BadLength(declared));
        }
        if len > buf.len() {
            return Err(DecodeError::Truncated {
                declared,
                received: buf.len(),
            });
        }
        let bytes = &buf[..len];
        let mut at = HEADER_LEN;
        while at < len {
            let rest = len - at;
            if rest < 2 {
                return Err(DecodeError::AttrOverrun(at));
            }
            let alen = usize::from(bytes[at + 1]);
            if alen < 2 {
                return Err(DecodeError::AttrTooShort(at));
            }
            if alen > rest {
                return Err(DecodeError::AttrOverrun(at));
            }
            at += alen;
        }
        Ok(RawPacket { bytes })
    }

    pub fn code(&self) -> Code {
        Code(self.bytes[0])
    }

    pub fn identifier(&self) -> u8 {
        self.bytes[1]
    }

    pub fn authenticator(&self) -> &'a [u8; 16] {
        // The slice is exactly 16 octets: parse() checked len >= 20.
        self.bytes[4..20].try_into().expect("header checked")
    }

    /// The whole packet up to its Length field.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    pub fn attrs(&self) -> AttrIter<'a> {
        AttrIter {
            bytes: self.bytes,
            at: HEADER_LEN,
        }
    }

    /// The first attribute of a type.
    pub fn find(&self, typ: u8) -> Option<&'a [u8]> {
        self.attrs().find(|a| a.typ == typ).map(|a| a.value)
    }

    pub fn count(&self, typ: u8) -> usize {
        self.attrs().filter(|a| a.typ == typ).count()
    }
}

/// Iterates attributes of a packet already checked by [`RawPacket::parse`].
#[derive(Debug, Clone)]
pub struct AttrIter<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Iterator for AttrIter<'a> {
    type Item = RawAttr<'a>;

    fn next(&mut self) -> Option<RawAttr<'a>> {
        if self.at + 2 > self.bytes.len() {
            return None;
        }
        let offset = self.at;
        let alen = usize::from(self.bytes[offset + 1]);
        let end = offset.checked_add(alen)?;
        if alen < 2 || end > self.bytes.len() {
            return None;
        }
        self.at = end;
        Some(RawAttr {
            typ: self.bytes[offset],
            value: &self.bytes[offset + 2..end],
            offset,
        })
    }
}

/// Writes a packet: header first, attributes appended, length fixed up by `finish`.
#[derive(Debug, Clone)]
pub struct PacketBuilder {
    buf: Vec<u8>,
    overflow: bool,
}

impl PacketBuilder {
    pub fn new(code: Code, identifier: u8, authenticator: &[u8; 16]) -> Self {
        let mut buf = Vec::with_capacity(256);
        buf.push(code.0);
        buf.push(identifier);
        buf.extend_from_slice(&[0, 0]);
        buf.extend_from_slice(authenticator);
        PacketBuilder {
            buf,
            overflow: false,
        }
    }

    /// Appends one attribute. Values longer than 253 octets are split into consecutive
    /// attributes of the same type (the "concat" convention of EAP-Message and friends).
    pub fn attr(&mut self, typ: u8, value: &[u8]) -> &mut Self {
        if value.is_empty() {
            self.push_one(typ, value);
        }
        for chunk in value.chunks(253) {
            self.push_one(typ, chunk);
        }
        self
    }

    /// Appends already-encoded attribute octets (type, length, value ...).
    pub fn raw(&mut self, encoded: &[u8]) -> &mut Self {
        if self.buf.len() + encoded.len() > MAX_PACKET_LEN {
            self.overflow = true;
        } else {
            self.buf.extend_from_slice(encoded);
        }
        self
    }

    fn push_one(&mut self, typ: u8, value: &[u8]) {
        if self.buf.len() + 2 + value.len() > MAX_PACKET_LEN {
            self.overflow = true;
            return;
        }
        self.buf.push(typ);
        // value.len() <= 253 from the chunking above.
        self.buf.push((value.len() + 2) as u8);
        self.buf.extend_from_slice(value);
    }

    /// Reserves a zeroed Message-Authenticator and returns its value offset.
    pub fn message_authenticator_placeholder(&mut self) -> usize {
        self.push_one(super::attr::MESSAGE_AUTHENTICATOR, &[0u8; 16]);
        self.buf.len() - 16
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.len() == HEADER_LEN
    }

    /// True when an attribute was dropped because the packet would pass 4096 octets.
    pub fn overflowed(&self) -> bool {
        self.overflow
    }

    /// Sets the Length field and returns the bytes, authenticator as given to `new`.
    pub fn finish(mut self) -> Vec<u8> {
        let len = self.buf.len() as u16;
        self.buf[2..4].copy_from_slice(&len.to_be_bytes());
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(attrs: &[u8]) -> Vec<u8> {
        let mut b = vec![1, 7, 0, 0];
        b.extend_from_slice(&[0u8; 16]);
        b.extend_from_slice(attrs);
        let len = b.len() as u16;
        b[2..4].copy_from_slice(&len.to_be_bytes());
        b
    }

    #[test]
    fn walks_attributes() {
        let p = packet(&[1, 6, b'b', b'o', b'b', b'!', 5, 6, 0, 0, 0, 9]);
        let raw = RawPacket::parse(&p).unwrap();
        assert_eq!(raw.code(), Code::ACCESS_REQUEST);
        assert_eq!(raw.identifier(), 7);
        assert_eq!(raw.find(1), Some(&b"bob!"[..]));
        assert_eq!(raw.find(5), Some(&[0, 0, 0, 9][..]));
        assert_eq!(raw.attrs().count(), 2);
    }

    #[test]
    fn ignores_padding_past_length() {
        let mut p = packet(&[1, 3, b'x']);
        p.extend_from_slice(&[0xff; 10]);
        let raw = RawPacket::parse(&p).unwrap();
        assert_eq!(raw.bytes().len(), 23);
        assert_eq!(raw.attrs().count(), 1);
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(
            RawPacket::parse(&[1, 2, 3]).unwrap_err(),
            DecodeError::TooShort
        );
        let mut p = packet(&[]);
        p[3] = 19;
        assert_eq!(
            RawPacket::parse(&p).unwrap_err(),
            DecodeError::BadLength(19)
        );
        let mut p = packet(&[1, 3, b'x']);
        p[3] = 40;
        assert!(matches!(
            RawPacket::parse(&p).unwrap_err(),
            DecodeError::Truncated { .. }
        ));
        let p = packet(&[1, 1, b'x']);
        assert_eq!(
            RawPacket::parse(&p).unwrap_err(),
            DecodeError::AttrTooShort(20)
        );
        let p = packet(&[1, 9, b'x']);
        assert_eq!(
            RawPacket::parse(&p).unwrap_err(),
            DecodeError::AttrOverrun(20)
        );
        let p = packet(&[1]);
        assert_eq!(
            RawPacket::parse(&p).unwrap_err(),
            DecodeError::AttrOverrun(20)
        );
    }

    #[test]
    fn builder_round_trips_and_splits_long_values() {
        let mut b = PacketBuilder::new(Code::ACCESS_ACCEPT, 3, &[9u8; 16]);
        b.attr(18, &[b'a'; 300]);
        let bytes = b.finish();
        let raw = RawPacket::parse(&bytes).unwrap();
        assert_eq!(raw.count(18), 2);
        let total: usize = raw.attrs().map(|a| a.value.len()).sum();
        assert_eq!(total, 300);
    }

    #[test]
    fn builder_refuses_to_pass_max_length() {
        let mut b = PacketBuilder::new(Code::ACCESS_ACCEPT, 3, &[0u8; 16]);
        b.attr(18, &vec![b'a'; 5000]);
        assert!(b.overflowed());
        assert!(b.finish().len() <= MAX_PACKET_LEN);
    }
}
