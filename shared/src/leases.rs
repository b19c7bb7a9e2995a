//! Address leases as the data plane passes them around: the change a lease undergoes (stored
//! through the accounting journal, so a lease is durable before the Access-Accept that
//! carries it leaves), and the interface the RADIUS server allocates through. The allocator
//! itself is the `edge-ipam` crate; the binary wires the two together.

use std::net::IpAddr;

use crate::types::PoolId;

/// Where a lease stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseState {
    /// Handed out in an Access-Accept; the session has not started yet.
    Offered,
    /// An accounting session holds it.
    Bound,
    /// Free again; kept for the same subscriber until `expires_at`.
    Released,
}

impl LeaseState {
    pub fn as_str(self) -> &'static str {
        match self {
            LeaseState::Offered => "offered",
            LeaseState::Bound => "bound",
            LeaseState::Released => "released",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "offered" => Some(LeaseState::Offered),
            "bound" => Some(LeaseState::Bound),
            "released" => Some(LeaseState::Released),
            _ => None,
        }
    }

    pub fn code(self) -> u8 {
        match self {
            LeaseState::Offered => 1,
            LeaseState::Bound => 2,
            LeaseState::Released => 3,
        }
    }

    pub fn from_code(c: u8) -> Option<Self> {
        match c {
            1 => Some(LeaseState::Offered),
            2 => Some(LeaseState::Bound),
            3 => Some(LeaseState::Released),
            _ => None,
        }
    }
}

/// The new state of one slot of a pool; the newest (`at_us`) wins when two meet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseChange {
    pub pool: PoolId,
    pub slot: i64,
    /// `10.0.0.7`, or an IPv6 prefix as `2001:db8:0:7::/64`.
    pub address: String,
    pub username: String,
    pub state: LeaseState,
    /// The accounting session holding it, once bound.
    pub unique_id: Option<String>,
    /// Unix seconds; see `LeaseState`.
    pub expires_at: i64,
    /// Microseconds since the epoch when the change was made.
    pub at_us: i64,
    /// The instance that made it.
    pub instance: String,
}

/// Which reply attribute an allocation is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseKind {
    /// Framed-IP-Address.
    Ipv4,
    /// Framed-IPv6-Prefix.
    Ipv6Prefix,
    /// Delegated-IPv6-Prefix.
    Delegated,
}

/// An allocation made for an Access-Accept.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The pool it came from (perhaps a fallback of the one asked for).
    pub pool: PoolId,
    pub kind: LeaseKind,
    pub address: IpAddr,
    pub prefix_len: u8,
    /// To store before the Access-Accept leaves.
    pub change: LeaseChange,
    /// What the slot held before, to put back should the Access-Accept not be sent.
    pub undo: u128,
}

/// Why no address could be given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Every pool in the chain is full.
    Exhausted(String),
    /// The pool is unknown here, or this instance cannot allocate now (it has not claimed
    /// its name or lost contact with the database).
    Unavailable(String),
    /// This instance's blocks of the pool are full and more of the pool can be claimed: the
    /// claim is under way. The request goes unanswered (the NAS retransmits) rather than
    /// rejected, which would end the subscriber's attempt over a moment's wait.
    Claiming(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Exhausted(p) => write!(f, "No free address in pool {p}"),
            Refusal::Unavailable(p) => write!(f, "Address pool {p} unavailable"),
            Refusal::Claiming(p) => write!(f, "Claiming more of address pool {p}"),
        }
    }
}

/// What the RADIUS server allocates through.
pub trait AddressPlane: Send + Sync {
    /// An address or prefix from `pool` (or its fallbacks) for `username`: the one the
    /// subscriber had last when it is still free, otherwise any free one.
    fn allocate(
        &self,
        username: &str,
        pool: PoolId,
        kind: LeaseKind,
        now: i64,
    ) -> Result<Grant, Refusal>;

    /// Puts back an allocation whose Access-Accept was not sent (refused later, or not
    /// stored).
    fn undo(&self, grant: &Grant);
}

/// Microseconds since the Unix epoch.
pub fn unix_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}
