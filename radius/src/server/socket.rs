use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

/// A blocking UDP socket, read by every receiver thread. SO_REUSEPORT lets a replacement
/// process bind the port before this one has let go of it (a rolling restart).
pub(super) fn bind_udp(addr: SocketAddr, buffer: usize) -> std::io::Result<std::net::UdpSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_port(true)?;
    s.set_reuse_address(true)?;
    if buffer > 0 {
        // The kernel caps these at net.core.{r,w}mem_max; a smaller buffer is not an error.
        let _ = s.set_recv_buffer_size(buffer);
        let _ = s.set_send_buffer_size(buffer);
    }
    s.bind(&addr.into())?;
    Ok(s.into())
}
