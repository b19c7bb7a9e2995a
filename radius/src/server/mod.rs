//! The RADIUS authentication server: one socket read by a receiver thread per core, a fast path
//! that answers from memory inline, and a bounded slow path for deliberately costly password
//! hashes. Malformed packets, unknown clients and bad authenticators are dropped and counted.

mod acct;
pub mod coa_client;
mod compiled;
mod handler;
mod policy;
mod rate_limit;
mod reply_cache;
mod socket;
mod stats;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use edge_shared::accounting::AccountingSink;
use edge_shared::index::Index;
use edge_shared::leases::AddressPlane;
use edge_shared::sessions::ActiveSessions;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::dict::Dictionary;
pub use acct::{decode as decode_accounting, NotStored};
pub use handler::{Handler, Outcome, Role};
pub use socket::{bind_udp, serve_batches, BATCH};
pub use stats::Stats;

/// What the server needs to know before it binds.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Access-Requests and Status-Server.
    pub listen: SocketAddr,
    /// Accounting-Requests; bound only when the server is given an accounting sink.
    pub acct_listen: Option<SocketAddr>,
    /// Receiver threads reading the socket; 0 means one per core.
    pub receivers: usize,
    /// Requests that may wait for or run a costly password hash at once; more are shed.
    pub slow_queue: usize,
    /// How long an answer is kept for retransmits (RFC 5080 section 2.2.2).
    pub reply_cache_ttl: Duration,
    /// Bound on remembered answers; past it new answers are not cached (and counted).
    pub reply_cache_entries: usize,
    pub socket_buffer_bytes: usize,
}

/// Where accounting events go, and the open sessions (for Simultaneous-Use).
#[derive(Clone)]
pub struct Accounting {
    pub sink: Arc<dyn AccountingSink>,
    pub sessions: Arc<ActiveSessions>,
    /// Where plans with pools get their addresses; leases are stored through `sink`.
    pub addresses: Option<Arc<dyn AddressPlane>>,
}

/// A running server: its addresses and the receivers to wait on.
pub struct RunningServer {
    pub local_addr: SocketAddr,
    pub acct_addr: Option<SocketAddr>,
    receivers: Vec<std::thread::JoinHandle<()>>,
    tasks: JoinSet<()>,
}

impl RunningServer {
    /// Waits until every receiver has stopped (after the cancellation token fires).
    pub async fn join(mut self) {
        let receivers = std::mem::take(&mut self.receivers);
        let _ = tokio::task::spawn_blocking(move || {
            for r in receivers {
                let _ = r.join();
            }
        })
        .await;
        while self.tasks.join_next().await.is_some() {}
    }
}

/// How often a blocked receiver wakes to notice cancellation.
const RECV_WAKE: Duration = Duration::from_millis(200);

/// Binds the sockets and starts the receivers.
///
/// The fast path never waits on anything, so each receiver is an OS thread blocked on the
/// one socket (two system calls per packet, no reactor); the kernel hands each datagram to
/// one waiting thread, so a single busy NAS (one source address and port) still spreads over
/// every core, which per-receiver SO_REUSEPORT sockets, hashed by source, would not do. Only
/// the slow path, costly password hashes, goes to the tokio runtime.
pub async fn start(
    cfg: &ServerConfig,
    dict: Arc<Dictionary>,
    index: Arc<Index>,
    accounting: Option<Accounting>,
    cancel: CancellationToken,
) -> std::io::Result<RunningServer> {
    let receivers = if cfg.receivers == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        cfg.receivers
    };
    let mut sockets = vec![(Role::Auth, cfg.listen)];
    if let (Some(addr), Some(_)) = (cfg.acct_listen, &accounting) {
        sockets.push((Role::Acct, addr));
    }
    let mut bound = Vec::new();
    for (role, addr) in sockets {
        let sock = Arc::new(socket::bind_udp(addr, cfg.socket_buffer_bytes)?);
        sock.set_read_timeout(Some(RECV_WAKE))?;
        // With port 0 the kernel picked one.
        bound.push((role, sock.local_addr()?, sock));
    }
    // Answers released by the writer: accounting responses, and Access-Accepts that carry
    // a lease.
    let mut outboxes = [None, None];
    for (role, _, sock) in &bound {
        outboxes[*role as usize] = Some(socket::spawn_sender(Arc::clone(sock))?);
    }
    let [auth_outbox, outbox] = outboxes;
    let handler = Arc::new(Handler::new(
        dict,
        index,
        accounting,
        [auth_outbox, outbox],
        cfg,
    ));
    let slow = Arc::new(Semaphore::new(cfg.slow_queue.max(1)));
    let rt = tokio::runtime::Handle::current();
    let mut threads = Vec::new();
    for (role, _, sock) in &bound {
        let role = *role;
        for i in 0..receivers {
            let (sock, handler, slow, cancel, rt) = (
                Arc::clone(sock),
                Arc::clone(&handler),
                Arc::clone(&slow),
                cancel.clone(),
                rt.clone(),
            );
            threads.push(
                std::thread::Builder::new()
                    .name(format!("radius-{}-{i}", role.as_str()))
                    .spawn(move || receive_loop(role, sock, handler, slow, cancel, rt))?,
            );
        }
    }
    let mut tasks = JoinSet::new();
    tasks.spawn(reply_cache::sweep_loop(
        Arc::clone(&handler),
        cancel.clone(),
    ));
    Ok(RunningServer {
        local_addr: bound[0].1,
        acct_addr: bound.get(1).map(|b| b.1),
        receivers: threads,
        tasks,
    })
}

fn receive_loop(
    role: Role,
    sock: Arc<std::net::UdpSocket>,
    handler: Arc<Handler>,
    slow: Arc<Semaphore>,
    cancel: CancellationToken,
    rt: tokio::runtime::Handle,
) {
    socket::serve_batches(
        &sock,
        || cancel.is_cancelled(),
        |packet, src| match handler.handle(role, packet, src) {
            Outcome::Reply(bytes) => Some(bytes),
            Outcome::Drop => None,
            Outcome::Slow(job) => {
                let Ok(permit) = Arc::clone(&slow).try_acquire_owned() else {
                    handler.shed(&job);
                    return None;
                };
                let sock = Arc::clone(&sock);
                let handler = Arc::clone(&handler);
                rt.spawn_blocking(move || {
                    let reply = handler.finish_slow(job, src);
                    drop(permit);
                    if let Some(bytes) = reply {
                        let _ = sock.send_to(&bytes, src);
                    }
                });
                None
            }
            Outcome::Durable(job) => {
                handler.submit(job);
                None
            }
            Outcome::Leased(job) => {
                handler.submit_leases(job);
                None
            }
        },
    );
}
