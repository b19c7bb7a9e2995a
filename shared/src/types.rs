//! Domain types as the data plane sees them.

use std::net::Ipv4Addr;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct NasId(pub i64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct PlanId(pub i64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct PoolId(pub i64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SubscriberStatus {
    Active,
    Suspended,
}

impl SubscriberStatus {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "active" | "" => Some(SubscriberStatus::Active),
            "suspended" => Some(SubscriberStatus::Suspended),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SubscriberStatus::Active => "active",
            SubscriberStatus::Suspended => "suspended",
        }
    }
}

/// A RADIUS client. Its `Debug` leaves the secret out, so no log line can carry it.
#[derive(Clone, Serialize)]
pub struct Nas {
    pub id: NasId,
    pub name: String,
    /// An address or a CIDR.
    pub address: String,
    #[serde(skip)]
    pub secret: String,
    pub vendor: String,
    pub coa_port: u16,
    pub require_message_authenticator: bool,
    /// Access-Requests per second this NAS may send; 0 means unlimited.
    pub rate_limit_per_second: u32,
    /// The NAS's WireGuard peer, when it reaches the edge through a tunnel.
    pub tunnel: Option<NasTunnel>,
}

/// A NAS's WireGuard peer on the edge's interface: its key and the one address it may use
/// inside the tunnel (which is also its RADIUS client address).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NasTunnel {
    /// Base64, as `wg` prints it.
    pub public_key: String,
    pub address: std::net::IpAddr,
    pub pool: PoolId,
    pub keepalive_seconds: u16,
}

impl std::fmt::Debug for Nas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nas")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("address", &self.address)
            .field("secret", &"<redacted>")
            .field("vendor", &self.vendor)
            .field("coa_port", &self.coa_port)
            .field(
                "require_message_authenticator",
                &self.require_message_authenticator,
            )
            .field("rate_limit_per_second", &self.rate_limit_per_second)
            .field("tunnel", &self.tunnel)
            .finish()
    }
}

/// A service plan: what an Access-Accept carries.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub id: PlanId,
    pub name: String,
    /// `Attribute = value` lines, checked against the dictionaries when saved.
    pub reply_attributes: Vec<String>,
    pub session_timeout_seconds: Option<u32>,
    pub interim_interval_seconds: Option<u32>,
    /// Most sessions a subscriber on this plan may have open at once (Simultaneous-Use).
    pub simultaneous_use: Option<u32>,
    /// Framed-IP-Address comes from this pool.
    pub pool: Option<PoolId>,
    /// Framed-IPv6-Prefix comes from this pool.
    pub ipv6_pool: Option<PoolId>,
    /// Delegated-IPv6-Prefix comes from this pool.
    pub delegated_pool: Option<PoolId>,
}

/// An address pool as defined by the operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pool {
    pub id: PoolId,
    pub name: String,
    /// 4 or 6.
    pub family: u8,
    /// CIDRs or `first-last` ranges.
    pub ranges: Vec<String>,
    /// Addresses (IPv6: prefixes) never handed out.
    pub excludes: Vec<String>,
    /// The length handed out: 32 for IPv4, e.g. 64 or 56 for IPv6.
    pub prefix_len: u8,
    /// Slots per block an instance claims.
    pub block_size: u32,
    pub reply_attributes: Vec<String>,
    /// Tried when this pool has nothing free.
    pub next_pool: Option<String>,
    /// `subscribers`, or `nas-tunnels` for a WireGuard management pool (never in a plan).
    pub purpose: String,
}

/// A subscriber as held in memory. The username is the index key. `Debug` leaves the
/// password out.
#[derive(Clone)]
pub struct Subscriber {
    /// As stored: cleartext or a `{header}`/crypt(3) hash.
    pub password: Box<str>,
    pub plan_id: Option<PlanId>,
    pub status: SubscriberStatus,
    pub static_ipv4: Option<Ipv4Addr>,
    pub calling_station_id: Option<Box<str>>,
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("password", &"<redacted>")
            .field("plan_id", &self.plan_id)
            .field("status", &self.status)
            .field("static_ipv4", &self.static_ipv4)
            .field("calling_station_id", &self.calling_station_id)
            .finish()
    }
}

/// A subscriber row as written by the CLI, the import and (later) the API. Its `Debug` leaves
/// the password out.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct SubscriberRecord {
    pub username: String,
    #[serde(skip)]
    pub password: String,
    pub plan: Option<String>,
    pub status: SubscriberStatus,
    pub static_ipv4: Option<Ipv4Addr>,
    pub calling_station_id: Option<String>,
}

impl std::fmt::Debug for SubscriberRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscriberRecord")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("plan", &self.plan)
            .field("status", &self.status)
            .field("static_ipv4", &self.static_ipv4)
            .field("calling_station_id", &self.calling_station_id)
            .finish()
    }
}

/// Normalises a MAC-style Calling-Station-Id for comparison: hex digits only, lower case.
/// `00:11:22:AA:BB:CC`, `00-11-22-aa-bb-cc` and `0011.22aa.bbcc` compare equal.
pub fn normalize_station_id(s: &str) -> String {
    let hex: String = s
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if hex.len() == 12 {
        hex
    } else {
        s.trim().to_ascii_lowercase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_leaves_secrets_out() {
        let nas = Nas {
            id: NasId(1),
            name: "n".into(),
            address: "10.0.0.1".into(),
            secret: "s3cr3t-value".into(),
            vendor: "mikrotik".into(),
            coa_port: 3799,
            require_message_authenticator: true,
            rate_limit_per_second: 0,
            tunnel: None,
        };
        assert!(!format!("{nas:?}").contains("s3cr3t-value"));
        let sub = Subscriber {
            password: "pa55-value".into(),
            plan_id: None,
            status: SubscriberStatus::Active,
            static_ipv4: None,
            calling_station_id: None,
        };
        assert!(!format!("{sub:?}").contains("pa55-value"));
        let row = SubscriberRecord {
            username: "alice".into(),
            password: "pa55-value".into(),
            plan: None,
            status: SubscriberStatus::Active,
            static_ipv4: None,
            calling_station_id: None,
        };
        let shown = format!("{row:?}");
        assert!(
            shown.contains("alice") && !shown.contains("pa55-value"),
            "{shown}"
        );
    }

    #[test]
    fn station_ids_normalise() {
        let a = normalize_station_id("00:11:22:AA:BB:CC");
        assert_eq!(a, normalize_station_id("00-11-22-aa-bb-cc"));
        assert_eq!(a, normalize_station_id("0011.22aa.bbcc"));
        assert_eq!(normalize_station_id("Port 7"), "port 7");
    }
}
