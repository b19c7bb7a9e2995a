//! Parking idle connections, so a CWMP session waiting on its CPE costs almost nothing.
//!
//! hyper keeps an 8 KiB read buffer and an 8 KiB write buffer for as long as a connection
//! lives, and a CWMP session spends most of its life idle between requests (a CPE working on
//! a Download, or just slow). With 10,000 sessions open those buffers were two thirds of the
//! ACS's memory.
//!
//! [`Parkable`] is the byte stream as hyper sees it. Once a request has been read whole and
//! answered (`Conn::answered`), and nothing more is waiting on the socket, it reports end of
//! stream. hyper then finishes that connection without shutting the socket down
//! (`poll_without_shutdown`), which frees its buffers. The socket then waits, with a one-byte
//! buffer, for the CPE's next request, and a new hyper connection serves it, starting with
//! that byte. The CPE sees one ordinary keep-alive connection throughout.

use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::service::Conn;

pub struct Parkable<IO> {
    pub io: IO,
    conn: Arc<Conn>,
    /// A byte read while parked, handed to hyper first.
    first: Option<u8>,
    /// Everything written has been flushed, and something was: the answer is out.
    flushed: bool,
    /// The end of stream hyper saw was ours, not the peer's.
    pub parked: bool,
}

impl<IO> Parkable<IO> {
    pub fn new(io: IO, conn: Arc<Conn>) -> Self {
        Parkable {
            io,
            conn,
            first: None,
            flushed: false,
            parked: false,
        }
    }

    /// Resumes after parking: `byte` is the first of the next request.
    pub fn resume(&mut self, byte: u8) {
        self.first = Some(byte);
        self.parked = false;
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Parkable<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(b) = self.first.take() {
            buf.put_slice(&[b]);
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut self.io).poll_read(cx, buf) {
            Poll::Pending => {
                // Only once the answer has gone out whole: hyper treats an end of stream in
                // the middle of writing a message as an error and drops the message.
                if self.flushed && self.conn.answered.swap(false, Ordering::AcqRel) {
                    self.flushed = false;
                    // Nothing waiting after a whole exchange: end of stream for hyper.
                    self.parked = true;
                    Poll::Ready(Ok(()))
                } else {
                    Poll::Pending
                }
            }
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    // The next request is already here: hyper reads it as usual.
                    self.conn.answered.store(false, Ordering::Release);
                }
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Parkable<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.flushed = false;
        Pin::new(&mut self.io).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.flushed = false;
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.io).poll_flush(cx);
        if matches!(r, Poll::Ready(Ok(()))) {
            self.flushed = true;
        }
        r
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
