//! The ACS service: HTTP/1.1 on TCP 7547 (hyper), one CWMP session per device, the registry
//! writer, presets and tasks from memory caches, files, connection requests.

mod conn_request;
pub mod digest;
mod files;
mod live;
mod park;
mod registry;
mod service;
pub mod tls;

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use edge_shared::metric_names as m;
use edge_shared::store::Store;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

pub use conn_request::{send as send_connection_request, ConnectionRequestError};
pub use registry::{Registry, WriterConfig};

use crate::codec::Limits;
use live::Sessions;

#[derive(Debug, Clone)]
pub struct AcsConfig {
    pub listen: SocketAddr,
    /// How CPEs reach this ACS (file URLs in Download requests are made from it).
    pub public_url: String,
    pub max_body_bytes: usize,
    /// Idle limit of a session (and of a connection waiting for its next request).
    pub session_timeout: Duration,
    pub max_rpcs_per_session: u32,
    pub max_connections: usize,
    /// Global CPE credentials; with neither these nor per-device ones, CPEs are not asked.
    pub cpe_username: Option<String>,
    pub cpe_password: String,
    pub limits: Limits,
    pub writer: WriterConfig,
    /// HTTPS instead of HTTP; CPEs may then also authenticate with Basic.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Proxies whose `Forwarded` / `X-Forwarded-For` name the CPE's address (see
    /// `forwarded`); empty: the connection's peer is the CPE.
    pub trusted_proxies: Vec<ipnetwork::IpNetwork>,
}

impl AcsConfig {
    fn require_auth(&self) -> bool {
        self.cpe_username.is_some()
    }
}

pub struct Acs {
    cfg: AcsConfig,
    registry: Arc<Registry>,
    sessions: Sessions,
    verifier: digest::Verifier,
}

pub struct RunningAcs {
    pub local_addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl RunningAcs {
    /// Waits until connections are drained and the writer has written what was queued.
    pub async fn join(self) {
        let _ = self.task.await;
    }
}

pub async fn start(
    cfg: AcsConfig,
    store: Store,
    cancel: CancellationToken,
) -> std::io::Result<RunningAcs> {
    // A deep backlog: after an outage, thousands of CPEs reconnect at once.
    let socket = if cfg.listen.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(cfg.listen)?;
    let listener = socket.listen(4096)?;
    let local_addr = listener.local_addr()?;
    let (registry, writer) = Registry::spawn(store, cfg.writer.clone(), cancel.clone());
    registry.refresh().await;
    let acs = Arc::new(Acs {
        cfg,
        registry: Arc::clone(&registry),
        sessions: Sessions::default(),
        verifier: digest::Verifier::new(),
    });
    let sweeper = tokio::spawn(sweep(Arc::clone(&acs), cancel.clone()));
    let accept = tokio::spawn(accept_loop(listener, Arc::clone(&acs), cancel));
    let task = tokio::spawn(async move {
        let _ = accept.await;
        let _ = sweeper.await;
        // Sessions still open have their unanswered tasks recorded before the writer ends.
        for l in acs.sessions.sweep_all() {
            let mut l = l.lock().await;
            l.session.abandon();
            let fx = l.session.take_effects();
            service::write_effects(&acs, &l.device, fx).await;
        }
        drop(acs);
        let _ = writer.await;
    });
    Ok(RunningAcs { local_addr, task })
}

async fn accept_loop(listener: tokio::net::TcpListener, acs: Arc<Acs>, cancel: CancellationToken) {
    let permits = Arc::new(Semaphore::new(acs.cfg.max_connections));
    let mut conns = tokio::task::JoinSet::new();
    loop {
        // At the connection cap, stop accepting: the kernel's backlog holds the rest.
        let permit = tokio::select! {
            p = Arc::clone(&permits).acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = cancel.cancelled() => break,
        };
        let (stream, peer) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "acs accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = cancel.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let acs = Arc::clone(&acs);
        let cancel = cancel.clone();
        while conns.try_join_next().is_some() {}
        let conn = Arc::new(service::Conn {
            peer,
            token: StdMutex::new(None),
            answered: AtomicBool::new(false),
        });
        // Two task shapes, so a plain connection's task does not carry room for TLS state.
        match acs.cfg.tls.clone() {
            None => conns.spawn(async move {
                serve(stream, &acs, &conn, &cancel).await;
                detach(&acs, &conn).await;
                drop(permit);
            }),
            Some(tls) => conns.spawn(async move {
                // The handshake runs here, not in the accept loop, under the idle limit.
                let accept = tokio_rustls::TlsAcceptor::from(tls).accept(stream);
                match tokio::time::timeout(acs.cfg.session_timeout, accept).await {
                    Ok(Ok(s)) => serve(s, &acs, &conn, &cancel).await,
                    Ok(Err(e)) => {
                        metrics::counter!(m::ACS_TLS_HANDSHAKE_FAILURES_TOTAL).increment(1);
                        tracing::debug!(error = %e, %peer, "acs tls handshake failed");
                    }
                    Err(_) => {
                        metrics::counter!(m::ACS_TLS_HANDSHAKE_FAILURES_TOTAL).increment(1);
                    }
                }
                detach(&acs, &conn).await;
                drop(permit);
            }),
        };
    }
    while conns.join_next().await.is_some() {}
}

/// A closed connection's session (if any) waits for its CPE to come back on another one.
async fn detach(acs: &Acs, conn: &service::Conn) {
    let token = *conn.token.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(l) = token.and_then(|t| acs.sessions.get(t)) {
        l.lock().await.attached = false;
    }
}

/// HTTP/1.1 on one connection (plain or TLS) until it closes or the server stops. Between
/// requests the connection is parked without hyper's buffers (`park.rs`).
async fn serve<IO>(io: IO, acs: &Arc<Acs>, conn: &Arc<service::Conn>, cancel: &CancellationToken)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use tokio::io::AsyncReadExt;
    let svc = {
        let acs = Arc::clone(acs);
        let conn = Arc::clone(conn);
        service_fn(move |req| Box::pin(service::handle(Arc::clone(&acs), Arc::clone(&conn), req)))
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(acs.cfg.session_timeout)
        .max_buf_size(64 * 1024);
    let mut io = park::Parkable::new(io, Arc::clone(conn));
    loop {
        // Boxed: while parked, the task holds no room for hyper's connection state.
        let mut http = Box::new(builder.serve_connection(TokioIo::new(io), svc.clone()));
        let done = tokio::select! {
            r = std::future::poll_fn(|cx| http.poll_without_shutdown(cx)) => r,
            _ = cancel.cancelled() => {
                std::pin::Pin::new(&mut *http).graceful_shutdown();
                let _ = tokio::time::timeout(
                    Duration::from_secs(5),
                    std::future::poll_fn(|cx| http.poll_without_shutdown(cx)),
                )
                .await;
                return;
            }
        };
        if let Err(e) = done {
            tracing::debug!(error = %e, peer = %conn.peer, "acs connection ended");
            return;
        }
        let parts = http.into_parts();
        io = parts.io.into_inner();
        if !io.parked || !parts.read_buf.is_empty() {
            // The peer closed (or hyper stopped for its own reasons): done.
            return;
        }
        // Parked: wait for the next request's first byte, with nothing else held.
        metrics::counter!(m::ACS_PARKED_TOTAL).increment(1);
        let mut first = [0u8; 1];
        let next = tokio::select! {
            r = tokio::time::timeout(acs.cfg.session_timeout, io.io.read(&mut first)) => r,
            _ = cancel.cancelled() => return,
        };
        match next {
            Ok(Ok(1)) => io.resume(first[0]),
            _ => return,
        }
    }
}

async fn sweep(acs: Arc<Acs>, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = cancel.cancelled() => return,
        }
        for l in acs.sessions.sweep() {
            let mut l = l.lock().await;
            l.session.abandon();
            metrics::counter!(m::ACS_SESSIONS_TOTAL, "result" => "timeout").increment(1);
            let fx = l.session.take_effects();
            service::write_effects(&acs, &l.device, fx).await;
        }
    }
}
