//! Row shapes shared by both backends.

use crate::types::{Nas, NasId, Plan};

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
}

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
}

impl From<PlanRow> for Plan {
    fn from(r: PlanRow) -> Plan {
        super::plan_from_parts(
            r.id,
            r.name,
            &r.reply_attributes,
            r.session_timeout_seconds,
            r.interim_interval_seconds,
            r.simultaneous_use,
        )
    }
}
