//! One packet in, at most one packet out: framing, client lookup, rate limit, duplicate
//! detection, authenticator checks, then the policy.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use edge_shared::accounting::{unix_now, AcctEvent, Done};
use edge_shared::index::Index;
use edge_shared::leases::Grant;
use edge_shared::types::{Nas, Subscriber};

use super::acct::{self, NotStored};
use super::compiled::{Compiled, Generation};
use super::rate_limit::RateLimiter;
use super::reply_cache::{Cached, Lookup, ReplyCache, RequestKey};
use super::socket::Outbox;
use super::stats::{DropReason, Stats};
use super::{policy, Accounting, ServerConfig};
use crate::codec::{
    accounting_request_authenticator, attr, constant_time_eq, response_authenticator, Code, MacKey,
    PacketBuilder, RawPacket,
};
use crate::dict::Dictionary;

/// Which socket a packet came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Auth,
    Acct,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Auth => "auth",
            Role::Acct => "acct",
        }
    }
}

pub enum Outcome {
    Reply(Arc<[u8]>),
    Drop,
    /// A costly password hash to run off the receive path.
    Slow(SlowJob),
    /// An accounting record to store before its (ready) answer may go out.
    Durable(AcctJob),
    /// An Access-Accept whose leases must be stored before it may go out.
    Leased(LeaseJob),
}

/// An Access-Accept waiting for its leases to be stored.
pub struct LeaseJob {
    key: RequestKey,
    reply: Vec<u8>,
    grants: Vec<Grant>,
    src: SocketAddr,
}

/// An Accounting-Request waiting for the writer's commit.
pub struct AcctJob {
    key: RequestKey,
    event: AcctEvent,
    reply: Vec<u8>,
    src: SocketAddr,
}

/// A PAP request whose stored password is a deliberately slow hash.
pub struct SlowJob {
    key: RequestKey,
    packet: Vec<u8>,
    nas: Arc<Nas>,
    subscriber: Arc<Subscriber>,
    password: Vec<u8>,
}

/// The client a request came from, with what is derived from it once per generation.
pub(super) struct Client {
    pub nas: Arc<Nas>,
    pub mac: MacKey,
    pub derived: arc_swap::Guard<Arc<Generation>>,
}

impl Client {
    pub fn secret(&self) -> &[u8] {
        self.nas.secret.as_bytes()
    }
}

pub struct Handler {
    pub(super) dict: Arc<Dictionary>,
    pub(super) index: Arc<Index>,
    compiled: Compiled,
    cache: ReplyCache,
    limiter: RateLimiter,
    pub(super) accounting: Option<Accounting>,
    /// Where answers released by the writer go out, by role (each socket's sender thread).
    outboxes: [Option<Outbox>; 2],
    pub(super) stats: Stats,
}

impl Handler {
    pub fn new(
        dict: Arc<Dictionary>,
        index: Arc<Index>,
        accounting: Option<Accounting>,
        outboxes: [Option<Outbox>; 2],
        cfg: &ServerConfig,
    ) -> Handler {
        Handler {
            dict,
            index,
            compiled: Compiled::default(),
            cache: ReplyCache::new(cfg.reply_cache_ttl, cfg.reply_cache_entries),
            limiter: RateLimiter::default(),
            accounting,
            outboxes,
            stats: Stats::new(),
        }
    }

    fn dropped(&self, reason: DropReason) -> Outcome {
        self.stats.drop(reason);
        tracing::debug!(reason = ?reason, "packet dropped");
        Outcome::Drop
    }

    pub fn handle(&self, role: Role, buf: &[u8], src: SocketAddr) -> Outcome {
        let now = Instant::now();
        let Ok(pkt) = RawPacket::parse(buf) else {
            return self.dropped(DropReason::Malformed);
        };
        match pkt.code() {
            Code::ACCESS_REQUEST => self.stats.requests_access.increment(1),
            Code::STATUS_SERVER => self.stats.requests_status.increment(1),
            Code::ACCOUNTING_REQUEST => self.stats.requests_accounting.increment(1),
            _ => self.stats.requests_other.increment(1),
        }
        let Some(nas) = self.index.nas().lookup(src.ip()).cloned() else {
            return self.dropped(DropReason::UnknownClient);
        };
        let client = self.client(nas);
        match (role, pkt.code()) {
            (Role::Auth, Code::ACCESS_REQUEST) => {}
            (Role::Acct, Code::ACCOUNTING_REQUEST) => {
                return self.accounting_request(&pkt, &client, src, now)
            }
            (_, Code::STATUS_SERVER) => {
                // RFC 5997 section 3: Status-Server MUST carry a Message-Authenticator; the
                // answer is an Access-Accept on the auth port, an Accounting-Response on the
                // accounting port.
                let code = match role {
                    Role::Auth => Code::ACCESS_ACCEPT,
                    Role::Acct => Code::ACCOUNTING_RESPONSE,
                };
                return match client.mac.verify(&pkt, pkt.authenticator()) {
                    Some(true) => {
                        self.stats.status_replies.increment(1);
                        let reply = build_reply(&pkt, &client, code, |b| {
                            b.attr(attr::REPLY_MESSAGE, b"dotmac-edge alive");
                        });
                        Outcome::Reply(reply.into())
                    }
                    Some(false) => self.dropped(DropReason::BadAuthenticator),
                    None => self.dropped(DropReason::MissingMessageAuthenticator),
                };
            }
            _ => return self.dropped(DropReason::UnsupportedCode),
        }
        if !self
            .limiter
            .allow(client.nas.id, client.nas.rate_limit_per_second, now)
        {
            return self.dropped(DropReason::RateLimited);
        }
        let key = RequestKey::of(&pkt, src);
        if let Some(seen) = self.retransmit(&key, now) {
            return seen;
        }
        // RFC 3579 section 3.2: a wrong Message-Authenticator means silent discard. Its
        // absence is refused by default (BlastRADIUS, CVE-2024-3596) and always with EAP.
        match client.mac.verify(&pkt, pkt.authenticator()) {
            Some(true) => {}
            Some(false) => return self.dropped(DropReason::BadAuthenticator),
            None => {
                if client.nas.require_message_authenticator || pkt.find(attr::EAP_MESSAGE).is_some()
                {
                    return self.dropped(DropReason::MissingMessageAuthenticator);
                }
            }
        }
        match policy::authorize(self, &pkt, &client) {
            policy::Decision::Reply(bytes) => Outcome::Reply(self.remember(key, bytes, now)),
            policy::Decision::Unanswered => self.dropped(DropReason::AddressPending),
            policy::Decision::Leased { reply, grants } => {
                if !self.cache.put(key, Cached::InProgress, now) {
                    self.stats.reply_cache_full.increment(1);
                }
                Outcome::Leased(LeaseJob {
                    key,
                    reply,
                    grants,
                    src,
                })
            }
            policy::Decision::Slow {
                subscriber,
                password,
            } => {
                if !self.cache.put(key, Cached::InProgress, now) {
                    self.stats.reply_cache_full.increment(1);
                }
                Outcome::Slow(SlowJob {
                    key,
                    packet: pkt.bytes().to_vec(),
                    nas: client.nas,
                    subscriber,
                    password,
                })
            }
        }
    }

    /// An Accounting-Request from a known client: verified (RFC 2866 section 3, and the
    /// Message-Authenticator when present), answered from the reply cache when it is a
    /// retransmit, else decoded and handed on to be stored before it is answered.
    fn accounting_request(
        &self,
        pkt: &RawPacket<'_>,
        client: &Client,
        src: SocketAddr,
        now: Instant,
    ) -> Outcome {
        let expected = accounting_request_authenticator(pkt.bytes(), client.secret());
        if !constant_time_eq(&expected, pkt.authenticator()) {
            return self.dropped(DropReason::BadAuthenticator);
        }
        if client.mac.verify(pkt, &[0u8; 16]) == Some(false) {
            return self.dropped(DropReason::BadAuthenticator);
        }
        let key = RequestKey::of(pkt, src);
        if let Some(seen) = self.retransmit(&key, now) {
            return seen;
        }
        let reply = accounting_response(pkt, client);
        match acct::decode(pkt, &self.dict, &client.nas, src.ip(), unix_now()) {
            Ok(event) => {
                if !self.cache.put(key, Cached::InProgress, now) {
                    self.stats.reply_cache_full.increment(1);
                }
                Outcome::Durable(AcctJob {
                    key,
                    event,
                    reply,
                    src,
                })
            }
            Err(NotStored::Ignored) => {
                self.stats.acct_responses.increment(1);
                Outcome::Reply(self.remember(key, reply, now))
            }
            Err(NotStored::Malformed) => self.dropped(DropReason::Malformed),
        }
    }

    /// Hands an accounting record to the writer; its answer goes out from the writer once
    /// the record is committed, and never when it is not.
    pub fn submit(self: &Arc<Self>, job: AcctJob) {
        let AcctJob {
            key,
            event,
            reply,
            src,
        } = job;
        self.store_then_answer(
            Role::Acct,
            key,
            reply,
            src,
            event,
            Vec::new(),
            |h, stored| {
                if stored {
                    h.stats.acct_responses.increment(1);
                }
            },
        );
    }

    /// Stores an Access-Accept's leases (one journal row with its neighbours' records) and
    /// sends it once they are stored. When they are not, it is not sent and the addresses
    /// go back.
    pub fn submit_leases(self: &Arc<Self>, job: LeaseJob) {
        let LeaseJob {
            key,
            reply,
            grants,
            src,
        } = job;
        let mut events = grants
            .iter()
            .map(|g| AcctEvent::Lease(Box::new(g.change.clone())));
        let Some(first) = events.next() else { return };
        let more: Vec<AcctEvent> = events.collect();
        self.store_then_answer(
            Role::Auth,
            key,
            reply,
            src,
            first,
            more,
            move |h, stored| {
                if !stored {
                    if let Some(addrs) = h.accounting.as_ref().and_then(|a| a.addresses.as_ref()) {
                        grants.iter().for_each(|g| addrs.undo(g));
                    }
                }
            },
        );
    }

    /// The one way an answer waits for the writer: `event` and `more` are stored, then the
    /// reply is remembered and sent from `role`'s socket. When they are not stored, nothing
    /// is sent and the request is forgotten, so that the NAS's retransmit is tried afresh.
    /// `settled` runs either way (before the answer is sent).
    #[allow(clippy::too_many_arguments)]
    fn store_then_answer(
        self: &Arc<Self>,
        role: Role,
        key: RequestKey,
        reply: Vec<u8>,
        src: SocketAddr,
        event: AcctEvent,
        more: Vec<AcctEvent>,
        settled: impl FnOnce(&Handler, bool) + Send + 'static,
    ) {
        let (Some(accounting), Some(outbox)) = (&self.accounting, &self.outboxes[role as usize])
        else {
            return;
        };
        let outbox = outbox.clone();
        let handler = Arc::clone(self);
        let done: Done = Box::new(move |stored| {
            if stored {
                let reply = handler.remember(key, reply, Instant::now());
                // Counted before the answer leaves, so that whoever has it sees the count.
                settled(&handler, true);
                let _ = outbox.send((reply, src));
            } else {
                handler.cache.remove(&key);
                handler.stats.acct_unanswered.increment(1);
                settled(&handler, false);
            }
        });
        if let Err(done) = accounting.sink.submit_with(event, more, done) {
            done(false);
        }
    }

    /// RFC 5080 section 2.2.2: a retransmit of an answered request gets the same answer; one
    /// whose original is still being worked on is dropped.
    fn retransmit(&self, key: &RequestKey, now: Instant) -> Option<Outcome> {
        match self.cache.lookup(key, now) {
            Lookup::Hit(reply) => {
                self.stats.duplicates.increment(1);
                Some(Outcome::Reply(reply))
            }
            Lookup::InProgress => {
                self.stats.duplicates.increment(1);
                Some(self.dropped(DropReason::InProgress))
            }
            Lookup::Miss => None,
        }
    }

    /// The client's derived state; a key built on the spot when the NAS is newer (or its
    /// secret other) than the generation this thread sees.
    fn client(&self, nas: Arc<Nas>) -> Client {
        let derived = self.compiled.current(&self.index, &self.dict);
        let mac = match derived.mac_key(nas.id) {
            Some((secret, key)) if **secret == *nas.secret.as_bytes() => key.clone(),
            _ => MacKey::new(nas.secret.as_bytes()),
        };
        Client { nas, mac, derived }
    }

    fn remember(&self, key: RequestKey, bytes: Vec<u8>, now: Instant) -> Arc<[u8]> {
        let reply: Arc<[u8]> = bytes.into();
        if !self.cache.put(key, Cached::Done(Arc::clone(&reply)), now) {
            self.stats.reply_cache_full.increment(1);
        }
        reply
    }

    /// Runs a slow job's password check (on a blocking thread) and builds the answer: to
    /// send now, or (carrying leases) once they are stored.
    pub fn finish_slow(self: &Arc<Self>, job: SlowJob, src: SocketAddr) -> Option<Arc<[u8]>> {
        let pkt = RawPacket::parse(&job.packet).ok()?;
        let client = self.client(job.nas);
        match policy::finish_pap(self, &pkt, &client, &job.subscriber, &job.password) {
            policy::Decision::Reply(bytes) => Some(self.remember(job.key, bytes, Instant::now())),
            policy::Decision::Leased { reply, grants } => {
                self.submit_leases(LeaseJob {
                    key: job.key,
                    reply,
                    grants,
                    src,
                });
                None
            }
            policy::Decision::Slow { .. } => None,
            policy::Decision::Unanswered => {
                self.dropped(DropReason::AddressPending);
                // A retransmission is handled afresh.
                self.cache.remove(&job.key);
                None
            }
        }
    }

    /// Counts a slow job that found the queue full and forgets it, so a retransmit can retry.
    pub fn shed(&self, job: &SlowJob) {
        self.stats.shed.increment(1);
        self.cache.remove(&job.key);
    }

    pub(super) fn sweep(&self, now: Instant) {
        self.cache.sweep(now);
    }
}

/// An Accounting-Response (RFC 2866 section 4.2): no attributes but the request's
/// Proxy-State, signed with the Response Authenticator.
fn accounting_response(req: &RawPacket<'_>, client: &Client) -> Vec<u8> {
    let ra = req.authenticator();
    let mut b = PacketBuilder::new(Code::ACCOUNTING_RESPONSE, req.identifier(), ra);
    for a in req.attrs().filter(|a| a.typ == attr::PROXY_STATE) {
        b.attr(attr::PROXY_STATE, a.value);
    }
    let mut bytes = b.finish();
    let auth = response_authenticator(&bytes, ra, client.secret());
    bytes[4..20].copy_from_slice(&auth);
    bytes
}

/// Builds a signed response: Message-Authenticator first (as the BlastRADIUS guidance asks),
/// then the attributes `fill` adds, then the request's Proxy-State attributes in order
/// (RFC 2865 section 5.33).
pub(super) fn build_reply(
    req: &RawPacket<'_>,
    client: &Client,
    code: Code,
    fill: impl FnOnce(&mut PacketBuilder),
) -> Vec<u8> {
    let ra = req.authenticator();
    let mut b = PacketBuilder::new(code, req.identifier(), ra);
    let off = b.message_authenticator_placeholder();
    fill(&mut b);
    for a in req.attrs().filter(|a| a.typ == attr::PROXY_STATE) {
        b.attr(attr::PROXY_STATE, a.value);
    }
    let mut bytes = b.finish();
    let ma = client.mac.sign(&bytes, off, ra);
    bytes[off..off + 16].copy_from_slice(&ma);
    let auth = response_authenticator(&bytes, ra, client.secret());
    bytes[4..20].copy_from_slice(&auth);
    bytes
}
