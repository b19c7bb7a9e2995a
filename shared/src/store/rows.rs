//! Row shapes shared by both backends.

use crate::types::{Nas, NasId, NasTunnel, Plan, PlanId, PoolId};

pub(crate) const BUMP_REVISION: &str =
    "UPDATE edge_revision SET rev = rev + 1 WHERE id = 1 RETURNING rev";

#[derive(sqlx::FromRow)]
pub(crate) struct NasRow {
    id: i64,
    name: String,
    address: String,
    secret: String,
    vendor: String,
    coa_port: i32,
    require_message_authenticator: bool,
    rate_limit_per_second: i32,
    wg_public_key: Option<String>,
    wg_address: Option<String>,
    wg_pool_id: Option<i64>,
    wg_keepalive_seconds: Option<i32>,
}

/// The columns a `NasRow` reads.
pub(crate) const NAS_COLUMNS: &str = "id, name, address, secret, vendor, coa_port, \
     require_message_authenticator, rate_limit_per_second, wg_public_key, wg_address, \
     wg_pool_id, wg_keepalive_seconds";

impl From<NasRow> for Nas {
    fn from(r: NasRow) -> Nas {
        Nas {
            id: NasId(r.id),
            name: r.name,
            address: r.address,
            secret: r.secret,
            vendor: r.vendor,
            coa_port: u16::try_from(r.coa_port).unwrap_or(3799),
            require_message_authenticator: r.require_message_authenticator,
            rate_limit_per_second: u32::try_from(r.rate_limit_per_second).unwrap_or(0),
            // A row with only part of a tunnel (edited by hand) has none.
            tunnel: match (
                r.wg_public_key,
                r.wg_address.and_then(|a| a.parse().ok()),
                r.wg_pool_id,
            ) {
                (Some(public_key), Some(address), Some(pool)) => Some(NasTunnel {
                    public_key,
                    address,
                    pool: PoolId(pool),
                    keepalive_seconds: r
                        .wg_keepalive_seconds
                        .and_then(|k| u16::try_from(k).ok())
                        .unwrap_or(0),
                }),
                _ => None,
            },
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct PlanRow {
    id: i64,
    name: String,
    reply_attributes: String,
    session_timeout_seconds: Option<i32>,
    interim_interval_seconds: Option<i32>,
    simultaneous_use: Option<i32>,
    pool_id: Option<i64>,
    ipv6_pool_id: Option<i64>,
    delegated_pool_id: Option<i64>,
}

impl From<PlanRow> for Plan {
    fn from(r: PlanRow) -> Plan {
        let count = |v: Option<i32>| v.and_then(|v| u32::try_from(v).ok());
        Plan {
            id: PlanId(r.id),
            name: r.name,
            reply_attributes: super::lines(&r.reply_attributes),
            session_timeout_seconds: count(r.session_timeout_seconds),
            interim_interval_seconds: count(r.interim_interval_seconds),
            simultaneous_use: count(r.simultaneous_use),
            pool: r.pool_id.map(PoolId),
            ipv6_pool: r.ipv6_pool_id.map(PoolId),
            delegated_pool: r.delegated_pool_id.map(PoolId),
        }
    }
}
