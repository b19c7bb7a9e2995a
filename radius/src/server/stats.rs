//! Counter handles, registered once at start (never looked up per packet).

use edge_shared::metric_names as m;
use metrics::Counter;

/// Why a packet got no answer. A closed set: these are the `reason` label's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    Malformed,
    UnknownClient,
    BadAuthenticator,
    MissingMessageAuthenticator,
    RateLimited,
    UnsupportedCode,
    InProgress,
    /// An Access-Request whose address pool is being claimed (see `Refusal::Claiming`).
    AddressPending,
}

const REASONS: [(DropReason, &str); 8] = [
    (DropReason::Malformed, "malformed"),
    (DropReason::UnknownClient, "unknown_client"),
    (DropReason::BadAuthenticator, "bad_authenticator"),
    (
        DropReason::MissingMessageAuthenticator,
        "missing_message_authenticator",
    ),
    (DropReason::RateLimited, "rate_limited"),
    (DropReason::UnsupportedCode, "unsupported_code"),
    (DropReason::InProgress, "in_progress"),
    (DropReason::AddressPending, "address_pending"),
];

#[derive(Debug)]
pub struct Stats {
    pub requests_access: Counter,
    pub requests_status: Counter,
    pub requests_accounting: Counter,
    pub requests_other: Counter,
    pub accepts: Counter,
    pub rejects: Counter,
    pub status_replies: Counter,
    pub acct_responses: Counter,
    /// Accounting requests the writer could not store or take; not answered.
    pub acct_unanswered: Counter,
    pub duplicates: Counter,
    pub shed: Counter,
    pub reply_cache_full: Counter,
    drops: Vec<Counter>,
}

impl Stats {
    pub fn new() -> Stats {
        let req = |code: &'static str| metrics::counter!(m::RADIUS_REQUESTS_TOTAL, "code" => code);
        let resp =
            |code: &'static str| metrics::counter!(m::RADIUS_RESPONSES_TOTAL, "code" => code);
        Stats {
            requests_access: req("access_request"),
            requests_status: req("status_server"),
            requests_accounting: req("accounting_request"),
            requests_other: req("other"),
            accepts: resp("access_accept"),
            rejects: resp("access_reject"),
            status_replies: resp("status_reply"),
            acct_responses: resp("accounting_response"),
            acct_unanswered: metrics::counter!(m::RADIUS_DROPPED_TOTAL, "reason" => "not_stored"),
            duplicates: metrics::counter!(m::RADIUS_DUPLICATES_TOTAL),
            shed: metrics::counter!(m::RADIUS_SHED_TOTAL),
            reply_cache_full: metrics::counter!(m::RADIUS_DROPPED_TOTAL, "reason" => "reply_cache_full"),
            drops: REASONS
                .iter()
                .map(|(_, r)| metrics::counter!(m::RADIUS_DROPPED_TOTAL, "reason" => *r))
                .collect(),
        }
    }

    pub fn drop(&self, reason: DropReason) {
        // REASONS lists the variants in declaration order (checked by the test below).
        self.drops[reason as usize].increment(1);
    }
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_in_declaration_order() {
        for (i, (r, _)) in REASONS.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
    }
}
