use thiserror::Error;

/// Why bytes were not a RADIUS packet. Small and `Copy`: decode never allocates to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("packet shorter than the 20-octet header")]
    TooShort,
    #[error("length field {0} outside 20..=4096")]
    BadLength(u16),
    #[error("length field {declared} exceeds the {received} octets received")]
    Truncated { declared: u16, received: usize },
    #[error("attribute at offset {0} has a length below 2")]
    AttrTooShort(usize),
    #[error("attribute at offset {0} runs past the end of the packet")]
    AttrOverrun(usize),
    #[error("vendor-specific attribute is malformed")]
    BadVsa,
    #[error("extended attribute is malformed")]
    BadExtended,
    #[error("encrypted value has a bad length")]
    BadCipherLength,
}
