//! "Kick this subscriber" and "change their speed": Disconnect-Request and CoA-Request
//! (RFC 5176) to the NAS that carries the session, with that vendor's identification.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use edge_radius::coa::{
    error_cause_name, identification, DynAuthKind, DynAuthRequest, SessionIdent,
};
use edge_radius::dict::{CompiledPair, Dictionary};
use edge_radius::server::coa_client::{self, Delivery, Retry};
use edge_shared::accounting::{c, SessionRecord};
use edge_shared::index::NasTable;
use edge_shared::metric_names as m;
use edge_shared::store::{SessionQuery, Store};
use edge_shared::types::Nas;
use serde::Serialize;

use super::{invalid, OpError};

/// What the NAS said about one session.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DynAuthResult {
    /// The session's unique id.
    pub session: String,
    pub username: String,
    pub nas: String,
    pub nas_address: String,
    /// `ack`, `nak` or `timeout`.
    pub result: &'static str,
    pub error_cause: Option<u32>,
    pub error_cause_name: Option<&'static str>,
    /// Datagrams sent (1 plus retransmissions).
    pub tries: u32,
}

/// The attributes a CoA-Request carries: a plan's reply attributes, or lines given.
pub async fn coa_pairs(
    store: &Store,
    dict: &Dictionary,
    plan: Option<&str>,
    attributes: &[String],
) -> Result<Vec<CompiledPair>, OpError> {
    let mut lines: Vec<String> = attributes.to_vec();
    if let Some(name) = plan {
        let plans = store.plan_list().await?;
        let p = plans
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| invalid("plan", format!("no plan named `{name}`")))?;
        lines.extend(p.reply_attributes.iter().cloned());
        if let Some(t) = p.session_timeout_seconds {
            lines.push(format!("Session-Timeout = {t}"));
        }
    }
    if lines.is_empty() {
        return Err(invalid("attributes", "give a plan or attributes to change"));
    }
    lines
        .iter()
        .map(|l| {
            dict.compile_pair(l)
                .map_err(|e| invalid("attributes", format!("`{l}`: {e}")))
        })
        .collect()
}

/// Sends the request for one session (looked up by unique id) and reports the answer.
pub async fn one(
    store: &Store,
    unique_id: &str,
    kind: DynAuthKind,
    pairs: &[CompiledPair],
    retry: Retry,
) -> Result<DynAuthResult, OpError> {
    let session = store.session_get(unique_id).await?;
    if !session.is_open() {
        return Err(OpError::Conflict(format!("session {unique_id} is closed")));
    }
    let nas = NasTable::build(store.nas_list().await?);
    send(&nas, &session, kind, pairs, retry).await
}

/// Disconnects every open session of a subscriber.
pub async fn all_of(
    store: &Store,
    username: &str,
    kind: DynAuthKind,
    retry: Retry,
) -> Result<Vec<DynAuthResult>, OpError> {
    let sessions = store
        .sessions_list(&SessionQuery {
            username: Some(username.to_string()),
            open_only: true,
            limit: 1000,
            ..SessionQuery::default()
        })
        .await?;
    let nas = NasTable::build(store.nas_list().await?);
    let mut out = Vec::with_capacity(sessions.len());
    for s in &sessions {
        out.push(send(&nas, s, kind, &[], retry).await?);
    }
    Ok(out)
}

/// The NAS a session belongs to: by the id recorded with it, else by its NAS-IP-Address.
fn nas_of<'a>(table: &'a NasTable, s: &SessionRecord) -> Option<&'a Nas> {
    if let Some(id) = s.int(c::NAS_ID) {
        if let Some(n) = table.all().iter().find(|n| n.id.0 == id) {
            return Some(n);
        }
    }
    let ip: IpAddr = s.text(c::NAS_IP_ADDRESS)?.parse().ok()?;
    table.lookup(ip).map(|n| &**n)
}

/// Identifiers in turn (from a random start), not at random. Each request goes out from its
/// own ephemeral port, which keeps it apart for a NAS that detects duplicates as RFC 5080
/// does (source, Identifier, Request Authenticator). A NAS that ignores the source port would
/// take two Disconnects of one session in one second (Event-Timestamp) with a repeated random
/// Identifier (1 in 256) for one request; in turn, 256 requests pass before one comes back.
fn next_identifier() -> u8 {
    static NEXT: std::sync::OnceLock<std::sync::atomic::AtomicU8> = std::sync::OnceLock::new();
    NEXT.get_or_init(|| std::sync::atomic::AtomicU8::new(rand::random()))
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

async fn send(
    table: &NasTable,
    s: &SessionRecord,
    kind: DynAuthKind,
    pairs: &[CompiledPair],
    retry: Retry,
) -> Result<DynAuthResult, OpError> {
    let unique_id = s.unique_id().to_string();
    let nas = nas_of(table, s).ok_or_else(|| {
        OpError::Conflict(format!("no NAS is registered for session {unique_id}"))
    })?;
    let nas_ip: Option<Ipv4Addr> = s.text(c::NAS_IP_ADDRESS).and_then(|a| a.parse().ok());
    // A NAS registered by one address is reached there (where its packets come from);
    // one registered by a CIDR at the NAS-IP-Address it reported.
    let target_ip: IpAddr = match nas.address.parse::<IpAddr>() {
        Ok(ip) => ip,
        Err(_) => s
            .text(c::NAS_IP_ADDRESS)
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| {
                OpError::Conflict(format!("session {unique_id} has no NAS-IP-Address"))
            })?,
    };
    let ident = SessionIdent {
        username: s.text(c::USERNAME).unwrap_or_default().to_string(),
        acct_session_id: s.text(c::ACCT_SESSION_ID).unwrap_or_default().to_string(),
        nas_ip_address: nas_ip,
        framed_ip_address: s.text(c::FRAMED_IP_ADDRESS).and_then(|a| a.parse().ok()),
    };
    let attrs = identification(&nas.vendor, &ident);
    let now = edge_shared::accounting::unix_now() as u32;
    let req = DynAuthRequest::build(
        kind,
        next_identifier(),
        &attrs,
        pairs,
        now,
        nas.secret.as_bytes(),
    )
    .ok_or_else(|| invalid("attributes", "too many attributes for one packet"))?;
    let target = SocketAddr::new(target_ip, nas.coa_port);
    let kind_label = match kind {
        DynAuthKind::Disconnect => "disconnect",
        DynAuthKind::Coa => "coa",
    };
    let delivery = coa_client::send(target, &req, nas.secret.as_bytes(), retry).await;
    let (result, cause, tries) = match delivery {
        Ok(Delivery::Answered { answer, tries }) => (
            if answer.ack { "ack" } else { "nak" },
            answer.error_cause,
            tries,
        ),
        Ok(Delivery::NoAnswer { tries }) => ("timeout", None, tries),
        Err(e) => {
            metrics::counter!(m::COA_REQUESTS_TOTAL, "kind" => kind_label, "result" => "error")
                .increment(1);
            return Err(OpError::Conflict(format!(
                "cannot send to NAS {} at {target}: {e}",
                nas.name
            )));
        }
    };
    metrics::counter!(m::COA_REQUESTS_TOTAL, "kind" => kind_label, "result" => result).increment(1);
    tracing::info!(
        session = %unique_id,
        nas = %nas.name,
        kind = kind_label,
        result,
        error_cause = ?cause,
        "dynamic authorization request answered"
    );
    Ok(DynAuthResult {
        session: unique_id,
        username: ident.username,
        nas: nas.name.clone(),
        nas_address: target.to_string(),
        result,
        error_cause: cause,
        error_cause_name: cause.map(error_cause_name),
        tries,
    })
}

/// The retry policy from configuration.
pub fn retry(timeout_ms: u64, tries: u32) -> Retry {
    Retry {
        timeout: Duration::from_millis(timeout_ms),
        tries,
    }
}

#[cfg(test)]
mod tests {
    use super::next_identifier;

    #[test]
    fn identifiers_do_not_repeat_within_256_requests() {
        let ids: std::collections::HashSet<u8> = (0..256).map(|_| next_identifier()).collect();
        assert_eq!(ids.len(), 256);
    }
}
