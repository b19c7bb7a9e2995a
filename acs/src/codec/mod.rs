//! The CWMP (TR-069) codec: SOAP envelopes in, typed messages out, and back. No I/O.
//!
//! Reading is streaming (quick-xml events, a bounded stack of element names); a
//! 10,000-parameter GetParameterValuesResponse becomes a `Vec` of values without a document
//! tree. Element names are matched by local name, case-insensitively, whatever prefix the CPE
//! chose: real CPEs bind odd prefixes, put the cwmp namespace on the body element, or use the
//! wrong case.

mod read;
mod types;
mod write;

pub use read::{parse, Limits, ParseError};
pub use types::*;
pub use write::{fault_envelope, AcsMessage, Envelope};

/// The CWMP namespace versions (TR-069 Amendment 1 to 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum CwmpVersion {
    #[default]
    V1_0,
    V1_1,
    V1_2,
    V1_3,
    V1_4,
}

impl CwmpVersion {
    pub const ALL: [CwmpVersion; 5] = [
        CwmpVersion::V1_0,
        CwmpVersion::V1_1,
        CwmpVersion::V1_2,
        CwmpVersion::V1_3,
        CwmpVersion::V1_4,
    ];

    pub fn namespace(self) -> &'static str {
        match self {
            CwmpVersion::V1_0 => "urn:dslforum-org:cwmp-1-0",
            CwmpVersion::V1_1 => "urn:dslforum-org:cwmp-1-1",
            CwmpVersion::V1_2 => "urn:dslforum-org:cwmp-1-2",
            CwmpVersion::V1_3 => "urn:dslforum-org:cwmp-1-3",
            CwmpVersion::V1_4 => "urn:dslforum-org:cwmp-1-4",
        }
    }

    /// `1.2` as written in SupportedCWMPVersions / UseCWMPVersion.
    pub fn label(self) -> &'static str {
        match self {
            CwmpVersion::V1_0 => "1.0",
            CwmpVersion::V1_1 => "1.1",
            CwmpVersion::V1_2 => "1.2",
            CwmpVersion::V1_3 => "1.3",
            CwmpVersion::V1_4 => "1.4",
        }
    }

    pub fn from_namespace(ns: &[u8]) -> Option<CwmpVersion> {
        let tail = ns.strip_prefix(b"urn:dslforum-org:cwmp-1-")?;
        CwmpVersion::from_minor(tail)
    }

    /// `1.3` → V1_3 (SupportedCWMPVersions items).
    pub fn from_label(s: &str) -> Option<CwmpVersion> {
        CwmpVersion::from_minor(s.trim().strip_prefix("1.")?.as_bytes())
    }

    fn from_minor(minor: &[u8]) -> Option<CwmpVersion> {
        match minor {
            b"0" => Some(CwmpVersion::V1_0),
            b"1" => Some(CwmpVersion::V1_1),
            b"2" => Some(CwmpVersion::V1_2),
            b"3" => Some(CwmpVersion::V1_3),
            b"4" => Some(CwmpVersion::V1_4),
            _ => None,
        }
    }
}

/// TR-069 fault codes (Table 5: 8000 series from the ACS; 9000 series from the CPE).
pub mod fault_code {
    pub const METHOD_NOT_SUPPORTED: u32 = 8000;
    pub const REQUEST_DENIED: u32 = 8001;
    pub const INTERNAL_ERROR: u32 = 8002;
    pub const INVALID_ARGUMENTS: u32 = 8003;
    pub const RESOURCES_EXCEEDED: u32 = 8004;
    pub const RETRY_REQUEST: u32 = 8005;

    /// The fault string TR-069 gives each ACS fault code.
    pub fn acs_fault_string(code: u32) -> &'static str {
        match code {
            METHOD_NOT_SUPPORTED => "Method not supported",
            REQUEST_DENIED => "Request denied",
            INTERNAL_ERROR => "Internal error",
            INVALID_ARGUMENTS => "Invalid arguments",
            RESOURCES_EXCEEDED => "Resources exceeded",
            RETRY_REQUEST => "Retry request",
            _ => "Fault",
        }
    }
}

#[cfg(test)]
mod tests;
