//! Dynamic authorization (RFC 5176): Disconnect-Request and CoA-Request to a NAS, and the
//! check of its ACK or NAK. No I/O: the UDP client in `server::coa_client` sends the bytes.

use std::net::Ipv4Addr;

use crate::codec::{
    accounting_request_authenticator, attr, constant_time_eq, message_authenticator,
    response_authenticator, verify_message_authenticator, Code, PacketBuilder, RawPacket,
};
use crate::dict::CompiledPair;

const EVENT_TIMESTAMP: u8 = 55;

/// Which request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DynAuthKind {
    Disconnect,
    Coa,
}

impl DynAuthKind {
    fn codes(self) -> (Code, Code, Code) {
        match self {
            DynAuthKind::Disconnect => (
                Code::DISCONNECT_REQUEST,
                Code::DISCONNECT_ACK,
                Code::DISCONNECT_NAK,
            ),
            DynAuthKind::Coa => (Code::COA_REQUEST, Code::COA_ACK, Code::COA_NAK),
        }
    }
}

/// What identifies the session at the NAS. Which of these go into the request depends on
/// the NAS vendor (see [`identification`]).
#[derive(Debug, Clone, Default)]
pub struct SessionIdent {
    pub username: String,
    pub acct_session_id: String,
    pub nas_ip_address: Option<Ipv4Addr>,
    pub framed_ip_address: Option<Ipv4Addr>,
}

/// The identification attributes a NAS of this vendor matches sessions on:
/// - every vendor: Acct-Session-Id and User-Name;
/// - `generic`, `cisco`, `huawei`: also NAS-IP-Address (RFC 5176 section 3 names it as the
///   NAS identification attribute; these check it);
/// - `generic`, `mikrotik`, `accel-ppp`: also Framed-IP-Address (RouterOS and accel-ppp
///   find PPP sessions by it when the session id is not theirs).
pub fn identification(vendor: &str, s: &SessionIdent) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::with_capacity(4);
    if !s.username.is_empty() {
        out.push((attr::USER_NAME, s.username.as_bytes().to_vec()));
    }
    if !s.acct_session_id.is_empty() {
        out.push((attr::ACCT_SESSION_ID, s.acct_session_id.as_bytes().to_vec()));
    }
    let v = vendor.to_ascii_lowercase();
    if let (true, Some(ip)) = (
        matches!(v.as_str(), "generic" | "cisco" | "huawei"),
        s.nas_ip_address,
    ) {
        out.push((attr::NAS_IP_ADDRESS, ip.octets().to_vec()));
    }
    if let (true, Some(ip)) = (
        matches!(v.as_str(), "generic" | "mikrotik" | "accel-ppp"),
        s.framed_ip_address,
    ) {
        out.push((attr::FRAMED_IP_ADDRESS, ip.octets().to_vec()));
    }
    out
}

/// A signed request ready to send (and to resend unchanged: RFC 5176 section 2.3 keeps
/// the Identifier and authenticator of a retransmission).
#[derive(Debug, Clone)]
pub struct DynAuthRequest {
    pub kind: DynAuthKind,
    pub bytes: Vec<u8>,
}

impl DynAuthRequest {
    /// Builds the request: the identification attributes, then `pairs` (a CoA's new
    /// authorization), Event-Timestamp `now`, and a Message-Authenticator; the Request
    /// Authenticator is MD5 over the packet with a zeroed authenticator and the secret
    /// (RFC 5176 section 2.3). Returns `None` when the attributes do not fit a packet.
    pub fn build(
        kind: DynAuthKind,
        identifier: u8,
        ident: &[(u8, Vec<u8>)],
        pairs: &[CompiledPair],
        now: u32,
        secret: &[u8],
    ) -> Option<DynAuthRequest> {
        let zero = [0u8; 16];
        let mut b = PacketBuilder::new(kind.codes().0, identifier, &zero);
        for (t, v) in ident {
            b.attr(*t, v);
        }
        for p in pairs {
            // Hidden attributes use the zeroed authenticator, as the packet is signed after.
            if !p.write(&mut b, secret, &zero) {
                return None;
            }
        }
        b.attr(EVENT_TIMESTAMP, &now.to_be_bytes());
        // RFC 5176 section 3.3: Message-Authenticator is computed with the authenticator
        // field zeroed, then the Request Authenticator over the whole packet.
        let ma = b.message_authenticator_placeholder();
        if b.overflowed() {
            return None;
        }
        let mut bytes = b.finish();
        let mac = message_authenticator(&bytes, ma, &zero, secret);
        bytes[ma..ma + 16].copy_from_slice(&mac);
        let auth = accounting_request_authenticator(&bytes, secret);
        bytes[4..20].copy_from_slice(&auth);
        Some(DynAuthRequest { kind, bytes })
    }

    pub fn identifier(&self) -> u8 {
        self.bytes[1]
    }

    fn authenticator(&self) -> [u8; 16] {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.bytes[4..20]);
        a
    }

    /// Reads the NAS's answer. `Err` means the datagram is not a valid answer to this
    /// request (wrong id or code, bad authenticator): ignore it and keep waiting.
    pub fn read_response(&self, datagram: &[u8], secret: &[u8]) -> Result<Answer, AnswerError> {
        let p = RawPacket::parse(datagram).map_err(|_| AnswerError::Malformed)?;
        if p.identifier() != self.identifier() {
            return Err(AnswerError::OtherRequest);
        }
        let (_, ack, nak) = self.kind.codes();
        if p.code() != ack && p.code() != nak {
            return Err(AnswerError::UnexpectedCode(p.code().0));
        }
        let req_auth = self.authenticator();
        let expected = response_authenticator(p.bytes(), &req_auth, secret);
        if !constant_time_eq(&expected, p.authenticator()) {
            return Err(AnswerError::BadAuthenticator);
        }
        if verify_message_authenticator(&p, &req_auth, secret) == Some(false) {
            return Err(AnswerError::BadAuthenticator);
        }
        let error_cause = p
            .find(attr::ERROR_CAUSE)
            .and_then(|v| <[u8; 4]>::try_from(v).ok())
            .map(u32::from_be_bytes);
        Ok(Answer {
            ack: p.code() == ack,
            error_cause,
        })
    }
}

/// The NAS's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub ack: bool,
    /// RFC 5176 section 3.5.
    pub error_cause: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    #[error("malformed packet")]
    Malformed,
    #[error("answer to another request")]
    OtherRequest,
    #[error("unexpected code {0}")]
    UnexpectedCode(u8),
    #[error("bad response authenticator")]
    BadAuthenticator,
}

/// The name RFC 5176 section 3.5 gives an Error-Cause value.
pub fn error_cause_name(v: u32) -> &'static str {
    match v {
        201 => "Residual-Session-Context-Removed",
        202 => "Invalid-EAP-Packet",
        401 => "Unsupported-Attribute",
        402 => "Missing-Attribute",
        403 => "NAS-Identification-Mismatch",
        404 => "Invalid-Request",
        405 => "Unsupported-Service",
        406 => "Unsupported-Extension",
        407 => "Invalid-Attribute-Value",
        501 => "Administratively-Prohibited",
        502 => "Request-Not-Routable",
        503 => "Session-Context-Not-Found",
        504 => "Session-Context-Not-Removable",
        505 => "Other-Proxy-Processing-Error",
        506 => "Resources-Unavailable",
        507 => "Request-Initiated",
        508 => "Multiple-Session-Selection-Unsupported",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::HEADER_LEN;

    fn ident() -> SessionIdent {
        SessionIdent {
            username: "alice".into(),
            acct_session_id: "81000001".into(),
            nas_ip_address: Some(Ipv4Addr::new(10, 0, 0, 1)),
            framed_ip_address: Some(Ipv4Addr::new(100, 64, 0, 9)),
        }
    }

    /// What a NAS would answer: code, same id, response authenticator per RFC 5176.
    fn answer(req: &DynAuthRequest, code: Code, cause: Option<u32>, secret: &[u8]) -> Vec<u8> {
        let mut b = PacketBuilder::new(code, req.identifier(), &req.authenticator());
        if let Some(c) = cause {
            b.attr(attr::ERROR_CAUSE, &c.to_be_bytes());
        }
        let mut bytes = b.finish();
        let auth = response_authenticator(&bytes, &req.authenticator(), secret);
        bytes[4..HEADER_LEN].copy_from_slice(&auth);
        bytes
    }

    #[test]
    fn a_request_is_signed_as_rfc_5176_says() {
        let id = identification("generic", &ident());
        assert_eq!(id.len(), 4);
        let req = DynAuthRequest::build(DynAuthKind::Disconnect, 7, &id, &[], 1, b"s3cret")
            .expect("fits");
        assert_eq!(req.bytes[0], 40);
        // The authenticator verifies as the NAS checks it: MD5 over the packet with the
        // field zeroed, then the secret.
        let mut zeroed = req.bytes.clone();
        zeroed[4..20].fill(0);
        assert_eq!(
            accounting_request_authenticator(&zeroed, b"s3cret"),
            req.authenticator()
        );
        // And the Message-Authenticator as computed over the zeroed field.
        let p = RawPacket::parse(&zeroed).unwrap();
        assert_eq!(
            verify_message_authenticator(&p, &[0u8; 16], b"s3cret"),
            Some(true)
        );
    }

    #[test]
    fn vendors_get_their_identification() {
        let names = |v: &str| -> Vec<u8> {
            identification(v, &ident())
                .into_iter()
                .map(|(t, _)| t)
                .collect()
        };
        assert_eq!(names("mikrotik"), vec![1, 44, 8]);
        assert_eq!(names("cisco"), vec![1, 44, 4]);
        assert_eq!(names("juniper"), vec![1, 44]);
    }

    #[test]
    fn ack_nak_and_forgeries() {
        let req = DynAuthRequest::build(
            DynAuthKind::Coa,
            9,
            &identification("juniper", &ident()),
            &[],
            1,
            b"k",
        )
        .unwrap();
        let ack = answer(&req, Code::COA_ACK, None, b"k");
        assert_eq!(
            req.read_response(&ack, b"k"),
            Ok(Answer {
                ack: true,
                error_cause: None
            })
        );
        let nak = answer(&req, Code::COA_NAK, Some(503), b"k");
        assert_eq!(
            req.read_response(&nak, b"k").unwrap().error_cause,
            Some(503)
        );
        assert_eq!(error_cause_name(503), "Session-Context-Not-Found");
        let forged = answer(&req, Code::COA_ACK, None, b"wrong");
        assert_eq!(
            req.read_response(&forged, b"k"),
            Err(AnswerError::BadAuthenticator)
        );
        let disc = answer(&req, Code::DISCONNECT_ACK, None, b"k");
        assert_eq!(
            req.read_response(&disc, b"k"),
            Err(AnswerError::UnexpectedCode(41))
        );
        assert_eq!(
            req.read_response(&[1, 2, 3], b"k"),
            Err(AnswerError::Malformed)
        );
    }
}
