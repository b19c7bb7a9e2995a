//! Sends a Disconnect-Request or CoA-Request to a NAS and waits for its answer, resending
//! the same datagram on loss (RFC 5176 section 2.3).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;

use crate::coa::{Answer, DynAuthRequest};

/// How long to wait for each try, and how many tries.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub timeout: Duration,
    pub tries: u32,
}

/// What came of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Answered {
        answer: Answer,
        tries: u32,
    },
    /// No valid answer after every try.
    NoAnswer {
        tries: u32,
    },
}

/// Sends `req` to `nas` from an ephemeral port of its own (so Identifiers never collide
/// with another request in flight) and returns the first valid answer. Datagrams that are
/// not a valid answer (forged, another id, another code) are dropped and counted.
pub async fn send(
    nas: SocketAddr,
    req: &DynAuthRequest,
    secret: &[u8],
    retry: Retry,
) -> std::io::Result<Delivery> {
    let bind: SocketAddr = if nas.is_ipv4() {
        "0.0.0.0:0".parse().expect("constant address")
    } else {
        "[::]:0".parse().expect("constant address")
    };
    let sock = UdpSocket::bind(bind).await?;
    sock.connect(nas).await?;
    let mut buf = vec![0u8; 4096];
    for attempt in 1..=retry.tries.max(1) {
        sock.send(&req.bytes).await?;
        let deadline = tokio::time::Instant::now() + retry.timeout;
        loop {
            let n = match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
                Err(_) => break,
                // ICMP port unreachable shows up as an error on a connected socket; the
                // NAS may come back, so it counts as a lost try.
                Ok(Err(_)) => {
                    tokio::time::sleep_until(deadline).await;
                    break;
                }
                Ok(Ok(n)) => n,
            };
            match req.read_response(&buf[..n], secret) {
                Ok(answer) => {
                    return Ok(Delivery::Answered {
                        answer,
                        tries: attempt,
                    })
                }
                Err(e) => {
                    metrics::counter!(edge_shared::metric_names::COA_INVALID_ANSWERS_TOTAL)
                        .increment(1);
                    tracing::debug!(nas = %nas, error = %e, "dropped an invalid CoA answer");
                }
            }
        }
    }
    Ok(Delivery::NoAnswer {
        tries: retry.tries.max(1),
    })
}
