//! The CWMP endpoint: one POST at a time through a CPE's session, GET for files.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Instant;

use bytes::Bytes;
use edge_shared::leases::unix_micros;
use edge_shared::metric_names as m;
use edge_shared::store::{DeviceSeen, ParameterRow};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body as _, Incoming as Body};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use super::digest::{self, Check, Verifier};
use super::live::{Busy, Live};
use super::registry::Write;
use super::Acs;
use crate::codec::{parse, CpeMessage, Inform};
use crate::preset::{desired, DeviceFacts, Fnv};
use crate::session::{device_id, Effect, Job, Origin, Reply, Session};
use crate::task::{command_key, TaskSpec};

pub type HttpResponse = Response<Full<Bytes>>;

const COOKIE: &str = "edge-session";
const SOFTWARE_VERSION: &str = ".DeviceInfo.SoftwareVersion";

/// What the service keeps per TCP connection.
pub struct Conn {
    pub peer: SocketAddr,
    pub token: StdMutex<Option<u64>>,
    /// The last request was read whole and answered: when nothing more is waiting to be
    /// read, the connection can be parked (see `park.rs`).
    pub answered: AtomicBool,
}

pub async fn handle(
    acs: Arc<Acs>,
    conn: Arc<Conn>,
    req: Request<Body>,
) -> Result<HttpResponse, Infallible> {
    let path = req.uri().path();
    let mut read_whole = false;
    let r = match *req.method() {
        Method::POST => cwmp(&acs, &conn, req, &mut read_whole).await,
        Method::GET | Method::HEAD if path.starts_with("/files/") => {
            read_whole = req.body().is_end_stream();
            super::files::serve(&acs, req).await
        }
        _ => {
            metrics::counter!(m::ACS_BAD_REQUESTS_TOTAL, "reason" => "method").increment(1);
            plain(StatusCode::METHOD_NOT_ALLOWED, "CWMP takes POST")
        }
    };
    conn.answered.store(read_whole, Ordering::Release);
    Ok(r)
}

pub fn plain(status: StatusCode, text: &'static str) -> HttpResponse {
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn xml(body: Vec<u8>) -> HttpResponse {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=\"utf-8\""),
    );
    r
}

fn no_content() -> HttpResponse {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::NO_CONTENT;
    r
}

/// The session token from the connection, or else from the cookie (CPEs that open a new
/// connection per request, or send several cookies comma-separated).
fn token_of(conn: &Conn, req: &Request<Body>) -> Option<u64> {
    if let Some(t) = *conn.token.lock().unwrap_or_else(|e| e.into_inner()) {
        return Some(t);
    }
    for v in req.headers().get_all(header::COOKIE) {
        let Ok(v) = v.to_str() else { continue };
        for part in v.split([';', ',']) {
            if let Some(t) = part
                .trim()
                .strip_prefix(COOKIE)
                .and_then(|r| r.strip_prefix('='))
            {
                if let Ok(t) = u64::from_str_radix(t.trim(), 16) {
                    return Some(t);
                }
            }
        }
    }
    None
}

fn set_token(conn: &Conn, t: Option<u64>) {
    *conn.token.lock().unwrap_or_else(|e| e.into_inner()) = t;
}

async fn cwmp(
    acs: &Arc<Acs>,
    conn: &Arc<Conn>,
    req: Request<Body>,
    read_whole: &mut bool,
) -> HttpResponse {
    let token = token_of(conn, &req);
    let live = token.and_then(|t| acs.sessions.get(t));
    let (parts, body) = req.into_parts();
    // The body is read before any 401, so the connection stays usable for the retry.
    let limited = Limited::new(body, acs.cfg.max_body_bytes);
    let body = match tokio::time::timeout(acs.cfg.session_timeout, limited.collect()).await {
        Ok(Ok(b)) => {
            *read_whole = true;
            b.to_bytes()
        }
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            metrics::counter!(m::ACS_BAD_REQUESTS_TOTAL, "reason" => "size").increment(1);
            let mut r = plain(StatusCode::PAYLOAD_TOO_LARGE, "body too large");
            r.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return r;
        }
        _ => {
            metrics::counter!(m::ACS_BAD_REQUESTS_TOTAL, "reason" => "body").increment(1);
            return plain(StatusCode::BAD_REQUEST, "body not received");
        }
    };
    let mut bound = None;
    if live.is_none() {
        match authenticate(acs, &parts.headers) {
            Auth::Pass(device) => bound = device,
            Auth::Refuse(refusal) => return refusal,
        }
    }
    let msg = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        match parse(&body, &acs.cfg.limits) {
            Ok(m) => Some(m),
            Err(e) => {
                metrics::counter!(m::ACS_BAD_REQUESTS_TOTAL, "reason" => "xml").increment(1);
                tracing::debug!(error = %e, peer = %conn.peer, "unreadable CWMP message");
                return plain(StatusCode::BAD_REQUEST, "not a CWMP message");
            }
        }
    };
    // The CPE's address, as the device row records it.
    let client = crate::forwarded::client_ip(
        conn.peer.ip(),
        parts
            .headers
            .get_all("forwarded")
            .iter()
            .map(|v| v.as_bytes()),
        parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .map(|v| v.as_bytes()),
        &acs.cfg.trusted_proxies,
    );
    match (live, token) {
        (Some(live), Some(token)) => continue_session(acs, conn, client, token, live, msg).await,
        _ => open_session(acs, conn, client, msg, bound).await,
    }
}

/// HTTP Digest when credentials are configured (globally or for any device); over TLS, Basic
/// too. Basic over plain HTTP is refused: it would show the password to anyone on the path.
fn authenticate(acs: &Acs, headers: &hyper::HeaderMap) -> Auth {
    if !acs.cfg.require_auth() && !acs.registry.has_credentials() {
        return Auth::Pass(None);
    }
    let now = (unix_micros() / 1_000_000) as u64;
    let header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let credential_of = |user: &str| {
        acs.registry
            .credential_of(user)
            .map(|(p, device)| (p, Some(device)))
            .or_else(|| {
                (acs.cfg.cpe_username.as_deref() == Some(user))
                    .then(|| (acs.cfg.cpe_password.clone(), None))
            })
    };
    let mut reason = "invalid";
    let mut device = None;
    let check = header.map_or(Check::Missing, |h| {
        let basic = digest::basic(h);
        if basic.is_some() && acs.cfg.tls.is_none() {
            reason = "basic_without_tls";
            return Check::Invalid;
        }
        let user = match &basic {
            Some((user, _)) => user.clone(),
            None => Verifier::username(h).unwrap_or_default(),
        };
        let Some((password, owner)) = credential_of(&user) else {
            return Check::Invalid;
        };
        device = owner;
        match &basic {
            Some((_, given)) => digest::check_basic(given, &password),
            None => acs.verifier.check(h, "POST", &password, now),
        }
    });
    if check == Check::Ok {
        return Auth::Pass(device);
    }
    if check == Check::Missing {
        reason = "missing";
    }
    if header.is_some() {
        metrics::counter!(m::ACS_AUTH_FAILURES_TOTAL, "reason" => reason).increment(1);
    }
    let mut r = plain(StatusCode::UNAUTHORIZED, "authentication required");
    if let Ok(v) = HeaderValue::from_str(&acs.verifier.challenge(now, check == Check::Stale)) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    if acs.cfg.tls.is_some() {
        if let Ok(v) = HeaderValue::from_str(&digest::basic_challenge()) {
            r.headers_mut().append(header::WWW_AUTHENTICATE, v);
        }
    }
    Auth::Refuse(r)
}

/// What `authenticate` decided.
enum Auth {
    /// With the device whose own credentials were used (`None` for the global ones, or when
    /// none are asked for): the session may only be that device's.
    Pass(Option<String>),
    /// The answer to send instead (401 with a challenge).
    Refuse(HttpResponse),
}

async fn open_session(
    acs: &Arc<Acs>,
    conn: &Arc<Conn>,
    client: IpAddr,
    msg: Option<crate::codec::Incoming>,
    bound: Option<String>,
) -> HttpResponse {
    let Some(msg) = msg else {
        metrics::counter!(m::ACS_BAD_REQUESTS_TOTAL, "reason" => "no_session").increment(1);
        return plain(
            StatusCode::BAD_REQUEST,
            "no session: a session begins with an Inform",
        );
    };
    let timeout = msg.header.session_timeout;
    let (mut session, reply) = match Session::start(msg, acs.cfg.max_rpcs_per_session) {
        Some(s) => s,
        None => {
            metrics::counter!(m::ACS_BAD_REQUESTS_TOTAL, "reason" => "no_session").increment(1);
            return plain(
                StatusCode::BAD_REQUEST,
                "no session: a session begins with an Inform",
            );
        }
    };
    let inform = &session.inform;
    if inform.device.oui.is_empty() || inform.device.serial_number.is_empty() {
        metrics::counter!(m::ACS_BAD_REQUESTS_TOTAL, "reason" => "xml").increment(1);
        return plain(StatusCode::BAD_REQUEST, "the Inform has no DeviceId");
    }
    let device = device_id(inform);
    if bound.as_ref().is_some_and(|b| *b != device) {
        // One device's own credentials cannot speak for another.
        metrics::counter!(m::ACS_AUTH_FAILURES_TOTAL, "reason" => "other_device").increment(1);
        tracing::info!(device = %device, peer = %conn.peer, %client, "cwmp: a device's credentials used for another device");
        return plain(
            StatusCode::FORBIDDEN,
            "these credentials belong to another device",
        );
    }
    let now_us = unix_micros();
    let (seen, parameters) = seen(&session, &device, client, now_us, acs);
    // What presets match on; the rest is on its way to the database.
    session.keep_parameters(&[SOFTWARE_VERSION]);
    let idle = timeout
        .map(|s| std::time::Duration::from_secs(u64::from(s.clamp(5, 300))))
        .unwrap_or(acs.cfg.session_timeout);
    let live = Live {
        session,
        device: device.clone(),
        last_activity: Instant::now(),
        idle,
        jobs_loaded: false,
        attached: true,
        bound,
    };
    let (token, replaced) = match acs.sessions.open(live) {
        Ok(t) => t,
        Err(Busy::DeviceInSession) => {
            metrics::counter!(m::ACS_SESSIONS_TOTAL, "result" => "refused").increment(1);
            let mut r = plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "this device is already in a session",
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
            return r;
        }
    };
    if let Some(old) = replaced {
        let mut old = old.lock().await;
        old.session.abandon();
        let effects = old.session.take_effects();
        write_effects(acs, &old.device, effects).await;
        metrics::counter!(m::ACS_SESSIONS_TOTAL, "result" => "replaced").increment(1);
    }
    set_token(conn, Some(token));
    acs.registry
        .write(Write::Seen {
            device: Box::new(seen),
            parameters,
        })
        .await;
    let mut r = xml(reply);
    if let Ok(v) = HeaderValue::from_str(&format!("{COOKIE}={token:x}; Path=/; HttpOnly")) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

async fn continue_session(
    acs: &Arc<Acs>,
    conn: &Arc<Conn>,
    client: IpAddr,
    token: u64,
    live: super::live::LiveRef,
    msg: Option<crate::codec::Incoming>,
) -> HttpResponse {
    let mut l = live.lock().await;
    l.last_activity = Instant::now();
    l.attached = true;
    if msg.is_none() && !l.jobs_loaded {
        load_jobs(acs, &mut l).await;
    }
    // An Inform on a session's connection starts over (the CPE gave up on the old one).
    if matches!(&msg, Some(m) if matches!(m.body, CpeMessage::Inform(_)))
        && !l.session.awaiting_answer()
    {
        l.session.abandon();
        let effects = l.session.take_effects();
        let (device, bound) = (l.device.clone(), l.bound.clone());
        drop(l);
        write_effects(acs, &device, effects).await;
        acs.sessions.close(token, &device);
        set_token(conn, None);
        return open_session(acs, conn, client, msg, bound).await;
    }
    let reply = l.session.handle(msg);
    let effects = l.session.take_effects();
    let device = l.device.clone();
    drop(l);
    if !effects.is_empty() {
        for e in &effects {
            if let Effect::PresetsConverged(fp) = e {
                acs.registry
                    .remember(&device, |c| c.fingerprint = Some(*fp));
            }
        }
        write_effects(acs, &device, effects).await;
    }
    match reply {
        Reply::Body(b) => xml(b),
        Reply::End => {
            acs.sessions.close(token, &device);
            set_token(conn, None);
            metrics::counter!(m::ACS_SESSIONS_TOTAL, "result" => "complete").increment(1);
            no_content()
        }
    }
}

pub async fn write_effects(acs: &Acs, device: &str, effects: Vec<Effect>) {
    if effects.is_empty() {
        return;
    }
    acs.registry
        .write(Write::Effects {
            device: device.to_string(),
            effects,
            at_us: unix_micros(),
        })
        .await;
}

/// The device row an Inform updates, and its parameters when they changed since the last
/// Inform this process saw.
fn seen(
    session: &Session,
    id: &str,
    client: IpAddr,
    now_us: i64,
    acs: &Acs,
) -> (DeviceSeen, Vec<ParameterRow>) {
    let i: &Inform = &session.inform;
    let p = |suffix: &str| i.parameter(suffix).unwrap_or("").to_string();
    let events: Vec<&str> = i.events.iter().map(|e| e.code.as_str()).collect();
    let device = DeviceSeen {
        id: id.to_string(),
        oui: i.device.oui.clone(),
        product_class: i.device.product_class.clone(),
        serial_number: i.device.serial_number.clone(),
        manufacturer: i.device.manufacturer.clone(),
        model: p(".DeviceInfo.ModelName"),
        software_version: p(SOFTWARE_VERSION),
        hardware_version: p(".DeviceInfo.HardwareVersion"),
        ip: client.to_string(),
        data_model: session.root().to_string(),
        cwmp_version: session.version.label().to_string(),
        at_us: now_us,
        events: events.join(","),
        connection_request_url: p(".ManagementServer.ConnectionRequestURL"),
        bootstrap: i.has_event("0 BOOTSTRAP"),
    };
    let mut h = Fnv::default();
    for v in &i.parameters {
        h.write(v.name.as_bytes());
        h.write(&[0]);
        h.write(v.value.as_bytes());
        h.write(&[1]);
    }
    let (new, changed) = acs
        .registry
        .note_inform(id, h.finish(), i.has_event("0 BOOTSTRAP"));
    let kind = if new { "new" } else { "known" };
    metrics::counter!(m::ACS_INFORMS_TOTAL, "device" => kind).increment(1);
    let rows = if changed {
        i.parameters
            .iter()
            .map(|v| ParameterRow {
                device_id: id.to_string(),
                name: v.name.clone(),
                value: v.value.clone(),
                kind: v.kind.clone(),
                at_us: now_us,
            })
            .collect()
    } else {
        Vec::new()
    };
    (device, rows)
}

/// At the CPE's first empty POST: presets that need checking, then due tasks in order.
async fn load_jobs(acs: &Acs, l: &mut Live) {
    l.jobs_loaded = true;
    let device = l.device.clone();
    let state = acs.registry.state(&device).await;
    let inform = &l.session.inform;
    let recheck = inform.has_event("0 BOOTSTRAP") || inform.has_event("4 VALUE CHANGE");
    let presets = acs.registry.presets();
    if !presets.is_empty() {
        let facts = DeviceFacts {
            product_class: &inform.device.product_class,
            software_version: inform
                .parameter(".DeviceInfo.SoftwareVersion")
                .unwrap_or(""),
            tags: &state.tags,
        };
        if let Some(d) = desired(&presets, &facts, l.session.root()) {
            if recheck || state.fingerprint != Some(d.fingerprint) {
                let names = d.values.iter().map(|v| v.name.clone()).collect();
                l.session.push(Job {
                    origin: Origin::PresetRead(d),
                    rpc: crate::codec::Rpc::GetParameterValues(names),
                });
            }
        }
    }
    if !acs.registry.has_pending(&device) {
        return;
    }
    let tasks = match acs
        .registry
        .store
        .tasks_due(
            &device,
            unix_micros(),
            i64::from(acs.cfg.max_rpcs_per_session),
        )
        .await
    {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read tasks");
            return;
        }
    };
    let mut faults = Vec::new();
    for t in tasks {
        if !acs.registry.claim(t.id) {
            continue;
        }
        let spec: TaskSpec = match serde_json::from_str(&t.spec) {
            Ok(s) => s,
            Err(e) => {
                faults.push(task_fault(t.id, format!("unreadable task: {e}")));
                continue;
            }
        };
        let file = match &spec {
            TaskSpec::Download { file } => match acs.registry.store.file_meta(file).await {
                Ok(f) => Some((
                    format!("{}/files/{}", acs.cfg.public_url, percent(&f.name)),
                    f.size as u64,
                    f.file_type,
                )),
                Err(e) => {
                    faults.push(task_fault(t.id, e.to_string()));
                    continue;
                }
            },
            _ => None,
        };
        let key = command_key(t.id);
        let rpc = spec.rpc(
            &key,
            l.session.root(),
            file.as_ref()
                .map(|(u, s, ty)| (u.as_str(), *s, ty.as_str())),
        );
        if let Some(rpc) = rpc {
            l.session.push(Job {
                origin: Origin::Task(t.id),
                rpc,
            });
        }
    }
    write_effects(acs, &device, faults).await;
}

fn task_fault(id: i64, string: String) -> Effect {
    Effect::Task {
        id,
        outcome: crate::session::TaskOutcome::Fault(crate::codec::FaultStruct {
            code: crate::codec::fault_code::INTERNAL_ERROR,
            string,
            parameter_faults: Vec::new(),
        }),
    }
}

/// A file name in a URL path.
pub fn percent(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
