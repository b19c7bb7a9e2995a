//! NAS clients, plans and subscribers: the checks every writer applies.

use std::net::{IpAddr, Ipv4Addr};

use edge_radius::dict::Dictionary;
use edge_shared::accounting::unix_now;
use edge_shared::store::{NewNas, NewPlan, Store};
use edge_shared::types::{Nas, Plan, SubscriberRecord};

use super::{invalid, OpError};

pub async fn nas_add(store: &Store, n: NewNas) -> Result<Nas, OpError> {
    check_nas(&n)?;
    if n.address.parse::<IpAddr>().is_err() && n.address.parse::<ipnetwork::IpNetwork>().is_err() {
        return Err(invalid("address", "must be an IP address or a CIDR"));
    }
    Ok(store.nas_add(&n).await?)
}

/// What every NAS needs, with or without a tunnel.
pub fn check_nas(n: &NewNas) -> Result<(), OpError> {
    if n.name.is_empty() {
        return Err(invalid("name", "must not be empty"));
    }
    if n.secret.is_empty() {
        return Err(invalid("secret", "must not be empty"));
    }
    Ok(())
}

/// A plan to create, its pools by name.
#[derive(Debug, Clone, Default)]
pub struct PlanSpec {
    pub name: String,
    pub reply_attributes: Vec<String>,
    pub session_timeout_seconds: Option<u32>,
    pub interim_interval_seconds: Option<u32>,
    pub simultaneous_use: Option<u32>,
    pub pool: Option<String>,
    pub ipv6_pool: Option<String>,
    pub delegated_pool: Option<String>,
}

pub async fn plan_add(store: &Store, dict: &Dictionary, s: PlanSpec) -> Result<Plan, OpError> {
    if s.name.is_empty() {
        return Err(invalid("name", "must not be empty"));
    }
    let mut ids = [None, None, None];
    let wanted = [
        ("pool", s.pool, 4),
        ("ipv6_pool", s.ipv6_pool, 6),
        ("delegated_pool", s.delegated_pool, 6),
    ];
    for (i, (field, name, family)) in wanted.into_iter().enumerate() {
        let Some(name) = name else { continue };
        let p = store
            .pool_get(&name)
            .await
            .map_err(|_| invalid(field, format!("no pool named `{name}`")))?;
        if p.purpose != "subscribers" {
            return Err(invalid(
                field,
                format!("pool {name} holds NAS tunnel addresses, not subscribers'"),
            ));
        }
        if p.family != family {
            return Err(invalid(
                field,
                format!("pool {name} is IPv{}, not IPv{family}", p.family),
            ));
        }
        ids[i] = Some(p.id);
    }
    check_attributes(dict, "reply_attributes", &s.reply_attributes)?;
    Ok(store
        .plan_add(&NewPlan {
            name: s.name,
            reply_attributes: s.reply_attributes,
            session_timeout_seconds: s.session_timeout_seconds,
            interim_interval_seconds: s.interim_interval_seconds,
            simultaneous_use: s.simultaneous_use,
            pool: ids[0],
            ipv6_pool: ids[1],
            delegated_pool: ids[2],
        })
        .await?)
}

/// Every `Attribute = value` line must compile against the dictionaries.
pub fn check_attributes(
    dict: &Dictionary,
    field: &'static str,
    lines: &[String],
) -> Result<(), OpError> {
    for line in lines {
        dict.compile_pair(line)
            .map_err(|e| invalid(field, format!("`{line}`: {e}")))?;
    }
    Ok(())
}

/// Saves (creates or replaces) a subscriber after checking it.
pub async fn subscriber_save(store: &Store, rec: SubscriberRecord) -> Result<(), OpError> {
    subscriber_write(store, rec, false).await
}

/// Creates a subscriber; a username already taken is a conflict.
pub async fn subscriber_create(store: &Store, rec: SubscriberRecord) -> Result<(), OpError> {
    subscriber_write(store, rec, true).await
}

async fn subscriber_write(
    store: &Store,
    rec: SubscriberRecord,
    create_only: bool,
) -> Result<(), OpError> {
    if rec.username.is_empty() {
        return Err(invalid("username", "must not be empty"));
    }
    if rec.password.is_empty() {
        return Err(invalid("password", "must not be empty"));
    }
    if let Some(plan) = &rec.plan {
        if !store.plan_list().await?.iter().any(|p| &p.name == plan) {
            return Err(invalid("plan", format!("no plan named `{plan}`")));
        }
    }
    if let Some(ip) = rec.static_ipv4 {
        check_static(store, &rec.username, ip).await?;
    }
    let written = if create_only {
        store.subscriber_create(&rec).await
    } else {
        store.subscribers_upsert(&[(0, rec)]).await.map(|_| ())
    };
    written.map_err(|e| match e {
        edge_shared::store::ImportError::Store(s) => OpError::Store(s),
        other => invalid("plan", other.to_string()),
    })?;
    Ok(())
}

/// A static address must not be leased to someone else from a pool: neither in `ip_leases`
/// nor by an offer still in the accounting journal.
pub async fn check_static(store: &Store, username: &str, ip: Ipv4Addr) -> Result<(), OpError> {
    let now = unix_now();
    for row in store.leases_of_address(&ip.to_string()).await? {
        if row.username != username && row.expires_at > now && row.state != "released" {
            return Err(OpError::Conflict(format!(
                "{ip} is leased to {} from a pool until it is released; a static address must not be in use",
                row.username
            )));
        }
    }
    Ok(())
}
