//! The RADIUS wire codec: bytes in, values out; values in, bytes out. No I/O, no clocks.
//!
//! RFC 2865 (packets, attributes, User-Password), RFC 2866 (accounting authenticators),
//! RFC 2868 (tagged and Tunnel-Password), RFC 2869/3579 (Message-Authenticator), RFC 6929
//! (extended attributes), RFC 5176 (CoA/Disconnect codes).

mod code;
mod crypto;
mod error;
mod extended;
mod packet;
mod vsa;

pub use code::{attr, Code};
pub use crypto::{
    accounting_request_authenticator, constant_time_eq, hide_password, hide_tunnel_password,
    message_authenticator, response_authenticator, unhide_password, unhide_tunnel_password,
    verify_message_authenticator, MacKey, MESSAGE_AUTHENTICATOR_LEN,
};
pub use error::DecodeError;
pub use extended::{decode_extended, encode_extended, is_extended, is_long_extended, ExtendedAttr};
pub use packet::{AttrIter, PacketBuilder, RawAttr, RawPacket, HEADER_LEN, MAX_PACKET_LEN};
pub use vsa::{decode_vsa, encode_vsa, VendorFormat, VsaEntry};
