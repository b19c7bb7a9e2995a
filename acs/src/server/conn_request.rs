//! Connection requests (TR-069 §3.2.2): an HTTP GET to the CPE's ConnectionRequestURL,
//! answering its Digest (or Basic) challenge, asks it to open a session at once.

use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use edge_shared::metric_names as m;
use http_body_util::Empty;
use hyper::header::{self, HeaderValue};
use hyper::{Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use thiserror::Error;

use super::digest;

#[derive(Debug, Error)]
pub enum ConnectionRequestError {
    #[error("the device has no connection request URL")]
    NoUrl,
    #[error("`{0}` is not an http:// URL")]
    BadUrl(String),
    #[error("cannot reach the device: {0}")]
    Unreachable(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the device refused: HTTP {0}")]
    Refused(u16),
}

/// Sends one connection request; `Ok` when the CPE answered 200 or 204.
pub async fn send(
    url: &str,
    username: &str,
    password: &str,
    timeout: Duration,
) -> Result<(), ConnectionRequestError> {
    let r = tokio::time::timeout(timeout, attempt(url, username, password))
        .await
        .unwrap_or(Err(ConnectionRequestError::Timeout(timeout)));
    let label = match &r {
        Ok(()) => "ok",
        Err(ConnectionRequestError::Refused(_)) => "refused",
        Err(_) => "error",
    };
    metrics::counter!(m::ACS_CONNECTION_REQUESTS_TOTAL, "result" => label).increment(1);
    r
}

async fn attempt(url: &str, username: &str, password: &str) -> Result<(), ConnectionRequestError> {
    if url.is_empty() {
        return Err(ConnectionRequestError::NoUrl);
    }
    let uri: Uri = url
        .parse()
        .map_err(|_| ConnectionRequestError::BadUrl(url.to_string()))?;
    if uri.scheme_str() != Some("http") {
        return Err(ConnectionRequestError::BadUrl(url.to_string()));
    }
    let host = uri
        .host()
        .ok_or_else(|| ConnectionRequestError::BadUrl(url.to_string()))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(80);
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let authority = uri.authority().map_or(host.clone(), |a| a.to_string());

    let first = get(&host, port, &authority, &path, None).await?;
    let status = first.0;
    if status == StatusCode::OK || status == StatusCode::NO_CONTENT {
        return Ok(());
    }
    if status != StatusCode::UNAUTHORIZED {
        return Err(ConnectionRequestError::Refused(status.as_u16()));
    }
    let challenge = first.1.unwrap_or_default();
    let auth = if challenge.trim_start().starts_with("Digest") {
        let cnonce = format!("{:016x}", rand::random::<u64>());
        digest::answer(&challenge, "GET", &path, username, password, &cnonce)
    } else {
        let pair = format!("{username}:{password}");
        Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        ))
    };
    let second = get(&host, port, &authority, &path, auth).await?;
    match second.0 {
        StatusCode::OK | StatusCode::NO_CONTENT => Ok(()),
        s => Err(ConnectionRequestError::Refused(s.as_u16())),
    }
}

/// One GET on a fresh connection: the status and the WWW-Authenticate header.
async fn get(
    host: &str,
    port: u16,
    authority: &str,
    path: &str,
    auth: Option<String>,
) -> Result<(StatusCode, Option<String>), ConnectionRequestError> {
    let unreachable =
        |e: &dyn std::fmt::Display| ConnectionRequestError::Unreachable(e.to_string());
    let stream = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| unreachable(&e))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| unreachable(&e))?;
    let driver = tokio::spawn(conn);
    let mut req = Request::get(path)
        .header(header::HOST, authority)
        .body(Empty::<Bytes>::new())
        .map_err(|e| unreachable(&e))?;
    if let Some(a) = auth.and_then(|a| HeaderValue::from_str(&a).ok()) {
        req.headers_mut().insert(header::AUTHORIZATION, a);
    }
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| unreachable(&e))?;
    let challenge = resp
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let status = resp.status();
    drop(resp);
    drop(sender);
    driver.abort();
    Ok((status, challenge))
}
