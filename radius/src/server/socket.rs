use std::io::{IoSlice, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;

use nix::sys::socket::{
    recvmmsg, sendmmsg, ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage,
};
use socket2::{Domain, Protocol, Socket, Type};

use crate::codec::MAX_PACKET_LEN;

/// A blocking UDP socket, read by every receiver thread. SO_REUSEPORT lets a replacement
/// process bind the port before this one has let go of it (a rolling restart).
pub fn bind_udp(addr: SocketAddr, buffer: usize) -> std::io::Result<UdpSocket> {
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

/// Datagrams taken per system call when that many are waiting.
pub const BATCH: usize = 32;

/// Reads datagrams in batches and answers them in batches until `stop()` says so (checked at
/// least every read timeout of the socket).
///
/// `recvmmsg` with MSG_WAITFORONE waits for one datagram and takes whatever else is queued, so
/// a lone request is answered at once and a busy socket costs two system calls per batch
/// rather than two per packet. `handle` gets each datagram and its source and returns the
/// reply to send, if any.
pub fn serve_batches(
    sock: &UdpSocket,
    stop: impl Fn() -> bool,
    mut handle: impl FnMut(&[u8], SocketAddr) -> Option<Arc<[u8]>>,
) {
    let fd = sock.as_raw_fd();
    let mut bufs = vec![[0u8; MAX_PACKET_LEN + 1]; BATCH];
    let mut rx = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let mut tx = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let mut got: Vec<(usize, Option<SocketAddr>)> = Vec::with_capacity(BATCH);
    let mut replies: Vec<(Arc<[u8]>, SockaddrStorage)> = Vec::with_capacity(BATCH);
    while !stop() {
        got.clear();
        {
            let mut iovs: Vec<[IoSliceMut<'_>; 1]> =
                bufs.iter_mut().map(|b| [IoSliceMut::new(b)]).collect();
            match recvmmsg(fd, &mut rx, iovs.iter_mut(), MsgFlags::MSG_WAITFORONE, None) {
                Ok(res) => got.extend(res.map(|m| (m.bytes, m.address.and_then(to_std)))),
                // Timeouts (to look at `stop`), interrupts and transient errors.
                Err(_) => continue,
            }
        }
        replies.clear();
        for (i, &(n, src)) in got.iter().enumerate() {
            // A datagram longer than the largest RADIUS packet fills the buffer; the codec
            // refuses it by its length field.
            let Some(src) = src else { continue };
            if let Some(reply) = handle(&bufs[i][..n.min(MAX_PACKET_LEN + 1)], src) {
                replies.push((reply, SockaddrStorage::from(src)));
            }
        }
        send_all(sock, fd, &mut tx, &replies);
    }
}

fn send_all(
    sock: &UdpSocket,
    fd: std::os::fd::RawFd,
    tx: &mut MultiHeaders<SockaddrStorage>,
    replies: &[(Arc<[u8]>, SockaddrStorage)],
) {
    match replies {
        [] => {}
        [(one, to)] => {
            if let Some(to) = to_std(*to) {
                let _ = sock.send_to(one, to);
            }
        }
        _ => {
            let slices: Vec<[IoSlice<'_>; 1]> =
                replies.iter().map(|(r, _)| [IoSlice::new(r)]).collect();
            let addrs: Vec<Option<SockaddrStorage>> =
                replies.iter().map(|(_, a)| Some(*a)).collect();
            let cmsgs: [ControlMessage<'_>; 0] = [];
            let sent = sendmmsg(fd, tx, slices.iter(), &addrs, cmsgs, MsgFlags::empty())
                .map_or(0, |r| r.count());
            // What the batch call did not take (an error part-way) goes one at a time.
            for (reply, to) in &replies[sent..] {
                if let Some(to) = to_std(*to) {
                    let _ = sock.send_to(reply, to);
                }
            }
        }
    }
}

fn to_std(a: SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
}

/// Answers that become ready elsewhere (accounting, once committed) and go out in batches
/// from one sender thread, rather than one system call each from the committing task.
pub(super) type Outbox = std::sync::mpsc::Sender<(Arc<[u8]>, SocketAddr)>;

/// Starts the sender thread for `sock`. It ends when every [`Outbox`] handle is dropped.
pub(super) fn spawn_sender(sock: Arc<UdpSocket>) -> std::io::Result<Outbox> {
    let (tx, rx) = std::sync::mpsc::channel::<(Arc<[u8]>, SocketAddr)>();
    std::thread::Builder::new()
        .name("radius-sender".into())
        .spawn(move || {
            let fd = sock.as_raw_fd();
            let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
            let mut replies = Vec::with_capacity(BATCH);
            while let Ok((first, to)) = rx.recv() {
                replies.push((first, SockaddrStorage::from(to)));
                while replies.len() < BATCH {
                    match rx.try_recv() {
                        Ok((r, to)) => replies.push((r, SockaddrStorage::from(to))),
                        Err(_) => break,
                    }
                }
                send_all(&sock, fd, &mut headers, &replies);
                replies.clear();
            }
        })?;
    Ok(tx)
}
