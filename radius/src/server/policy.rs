//! Access-Request policy: find the subscriber, verify PAP, CHAP or MS-CHAPv2, enforce status
//! and MAC binding, and build the Access-Accept from the plan.

use std::net::IpAddr;
use std::sync::Arc;

use edge_shared::accounting::unix_now;
use edge_shared::leases::{Grant, LeaseKind, Refusal};
use edge_shared::types::{normalize_station_id, Subscriber, SubscriberStatus};

use super::compiled::CompiledPlan;
use super::handler::{build_reply, Client, Handler};
use crate::auth::mschap::{self, VENDOR_MICROSOFT};
use crate::auth::{chap, StoredPassword};
use crate::codec::{
    attr, decode_vsa, encode_vsa, hide_tunnel_password, unhide_password, Code, PacketBuilder,
    RawPacket, VendorFormat,
};

pub(super) enum Decision {
    Reply(Vec<u8>),
    /// An Access-Accept carrying addresses: sent once their leases are stored.
    Leased {
        reply: Vec<u8>,
        grants: Vec<Grant>,
    },
    Slow {
        subscriber: Arc<Subscriber>,
        password: Vec<u8>,
    },
    /// No answer yet: the address pool is being claimed, and the NAS's retransmission will
    /// find it (an Access-Reject would end the subscriber's attempt).
    Unanswered,
}

const FAILED: &str = "Authentication failed";

pub(super) fn authorize(h: &Handler, pkt: &RawPacket<'_>, client: &Client) -> Decision {
    let secret = client.secret();
    let refuse = |msg: &str| Decision::Reply(reject(h, pkt, client, msg, None));
    let Some(user) = pkt
        .find(attr::USER_NAME)
        .and_then(|u| std::str::from_utf8(u).ok())
    else {
        return refuse(FAILED);
    };
    let Some(sub) = h.index.subscriber(user) else {
        return refuse(FAILED);
    };
    let stored = StoredPassword::parse(&sub.password);

    if let Some(cipher) = pkt.find(attr::USER_PASSWORD) {
        let Ok(password) = unhide_password(cipher, secret, pkt.authenticator()) else {
            return refuse(FAILED);
        };
        if stored.is_expensive() {
            return Decision::Slow {
                subscriber: sub,
                password,
            };
        }
        return finish_pap(h, pkt, client, &sub, &password);
    }
    if pkt.find(attr::CHAP_PASSWORD).is_some() {
        let ok = stored
            .cleartext()
            .is_some_and(|pw| chap::verify(pkt, pw.as_bytes()));
        return if ok {
            accept_or_reject(h, pkt, client, &sub, None)
        } else {
            Decision::Reply(reject(h, pkt, client, FAILED, None))
        };
    }
    if let Some((challenge, response)) = ms_chap_v2(pkt) {
        let Some(resp) = mschap::Response::parse(&response) else {
            return refuse(FAILED);
        };
        let ok = stored
            .nt_hash()
            .and_then(|hash| mschap::verify(&challenge, &resp, user.as_bytes(), &hash));
        return match ok {
            Some(success) => accept_or_reject(h, pkt, client, &sub, Some((resp.ident, success))),
            None => Decision::Reply(reject(h, pkt, client, FAILED, Some(resp.ident))),
        };
    }
    // EAP and anything else is not offered here.
    refuse(FAILED)
}

/// PAP once the password is in hand; runs on a blocking thread for costly hashes.
pub(super) fn finish_pap(
    h: &Handler,
    pkt: &RawPacket<'_>,
    client: &Client,
    sub: &Subscriber,
    password: &[u8],
) -> Decision {
    if StoredPassword::parse(&sub.password).verify(password) {
        accept_or_reject(h, pkt, client, sub, None)
    } else {
        Decision::Reply(reject(h, pkt, client, FAILED, None))
    }
}

/// After a correct password: status and MAC binding, then the Access-Accept.
fn accept_or_reject(
    h: &Handler,
    pkt: &RawPacket<'_>,
    client: &Client,
    sub: &Subscriber,
    mschap: Option<(u8, mschap::Success)>,
) -> Decision {
    let secret = client.secret();
    let ms_ident = mschap.as_ref().map(|(i, _)| *i);
    let refuse = |msg: &str| Decision::Reply(reject(h, pkt, client, msg, ms_ident));
    if sub.status == SubscriberStatus::Suspended {
        return refuse("Account suspended");
    }
    if let Some(bound) = &sub.calling_station_id {
        let offered = pkt
            .find(attr::CALLING_STATION_ID)
            .map(|c| normalize_station_id(&String::from_utf8_lossy(c)));
        if offered.as_deref() != Some(&**bound) {
            return refuse("Calling-Station-Id not allowed");
        }
    }
    let plan = sub.plan_id.and_then(|id| client.derived.plan(id));
    let user = pkt
        .find(attr::USER_NAME)
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    if let (Some(limit), Some(acct)) = (plan.and_then(|p| p.simultaneous_use), &h.accounting) {
        if acct.sessions.count_for_user(&user) >= limit as usize {
            return refuse("Simultaneous-Use limit reached");
        }
    }
    let grants = match allocate(h, plan.map(|p| &**p), sub, &user) {
        Ok(g) => g,
        Err(Refusal::Claiming(_)) => return Decision::Unanswered,
        Err(refusal) => return refuse(&refusal.to_string()),
    };
    let ra = *pkt.authenticator();
    h.stats.accepts.increment(1);
    let reply = build_reply(pkt, client, Code::ACCESS_ACCEPT, |b| {
        if let Some(plan) = &plan {
            for pair in &plan.pairs {
                pair.write(b, secret, &ra);
            }
            if let Some(t) = plan.session_timeout {
                b.attr(attr::SESSION_TIMEOUT, &t.to_be_bytes());
            }
            if let Some(t) = plan.interim_interval {
                b.attr(attr::ACCT_INTERIM_INTERVAL, &t.to_be_bytes());
            }
        }
        if let Some(ip) = sub.static_ipv4 {
            b.attr(attr::FRAMED_IP_ADDRESS, &ip.octets());
        }
        for g in &grants {
            write_grant(b, g);
            for pair in client.derived.pool_pairs(g.pool) {
                pair.write(b, secret, &ra);
            }
        }
        if let Some((ident, s)) = &mschap {
            let mut success = vec![*ident];
            success.extend_from_slice(s.authenticator_response.as_bytes());
            ms_attr(b, mschap::MS_CHAP2_SUCCESS, &success);
            let salt = rand::random::<[u8; 2]>();
            let send = hide_tunnel_password(&s.send_key, secret, &ra, salt);
            let recv = hide_tunnel_password(&s.recv_key, secret, &ra, [salt[0] ^ 0x01, salt[1]]);
            ms_attr(b, mschap::MS_MPPE_SEND_KEY, &send);
            ms_attr(b, mschap::MS_MPPE_RECV_KEY, &recv);
            // Encryption allowed; RC4 40 or 128 bit (RFC 2548 sections 2.4.4 and 2.4.5).
            ms_attr(b, mschap::MS_MPPE_ENCRYPTION_POLICY, &1u32.to_be_bytes());
            ms_attr(b, mschap::MS_MPPE_ENCRYPTION_TYPES, &6u32.to_be_bytes());
        }
    });
    if grants.is_empty() {
        Decision::Reply(reply)
    } else {
        Decision::Leased { reply, grants }
    }
}

/// The addresses the plan's pools give this subscriber (a static IPv4 address takes the
/// IPv4 pool's place); all or none.
fn allocate(
    h: &Handler,
    plan: Option<&CompiledPlan>,
    sub: &Subscriber,
    user: &str,
) -> Result<Vec<Grant>, Refusal> {
    let (Some(plan), Some(addrs)) = (
        plan,
        h.accounting.as_ref().and_then(|a| a.addresses.as_ref()),
    ) else {
        return Ok(Vec::new());
    };
    let wants = [
        (
            plan.pool.filter(|_| sub.static_ipv4.is_none()),
            LeaseKind::Ipv4,
        ),
        (plan.ipv6_pool, LeaseKind::Ipv6Prefix),
        (plan.delegated_pool, LeaseKind::Delegated),
    ];
    let now = unix_now();
    let mut grants = Vec::new();
    for (pool, kind) in wants {
        let Some(pool) = pool else { continue };
        match addrs.allocate(user, pool, kind, now) {
            Ok(g) => grants.push(g),
            Err(refusal) => {
                grants.iter().for_each(|g| addrs.undo(g));
                return Err(refusal);
            }
        }
    }
    Ok(grants)
}

/// Framed-IP-Address, or an IPv6 prefix as RFC 3162 section 2.3 writes it (reserved octet,
/// prefix length, the prefix's significant octets): Framed-IPv6-Prefix (97) or
/// Delegated-IPv6-Prefix (123, RFC 4818).
fn write_grant(b: &mut PacketBuilder, g: &Grant) {
    match (g.kind, g.address) {
        (LeaseKind::Ipv4, IpAddr::V4(a)) => {
            b.attr(attr::FRAMED_IP_ADDRESS, &a.octets());
        }
        (kind, IpAddr::V6(a)) => {
            let typ = if kind == LeaseKind::Delegated {
                attr::DELEGATED_IPV6_PREFIX
            } else {
                attr::FRAMED_IPV6_PREFIX
            };
            let n = usize::from(g.prefix_len).div_ceil(8);
            let mut v = vec![0, g.prefix_len];
            v.extend_from_slice(&a.octets()[..n]);
            b.attr(typ, &v);
        }
        _ => {}
    }
}

fn ms_attr(b: &mut PacketBuilder, typ: u32, value: &[u8]) {
    if let Some(v) = encode_vsa(VENDOR_MICROSOFT, VendorFormat::default(), typ, value) {
        b.attr(attr::VENDOR_SPECIFIC, &v);
    }
}

/// An Access-Reject with a Reply-Message; for MS-CHAP, also MS-CHAP-Error (RFC 2759 section
/// 6: E=691 is "authentication failure", R=0 says a retry will not help).
fn reject(
    h: &Handler,
    pkt: &RawPacket<'_>,
    client: &Client,
    msg: &str,
    ms_ident: Option<u8>,
) -> Vec<u8> {
    h.stats.rejects.increment(1);
    build_reply(pkt, client, Code::ACCESS_REJECT, |b| {
        b.attr(attr::REPLY_MESSAGE, msg.as_bytes());
        if let Some(ident) = ms_ident {
            let mut v = vec![ident];
            v.extend_from_slice(format!("E=691 R=0 V=3 M={msg}").as_bytes());
            ms_attr(b, mschap::MS_CHAP_ERROR, &v);
        }
    })
}

/// MS-CHAP-Challenge and MS-CHAP2-Response, when the request carries both.
fn ms_chap_v2(pkt: &RawPacket<'_>) -> Option<([u8; 16], Vec<u8>)> {
    let mut challenge = None;
    let mut response = None;
    for a in pkt.attrs().filter(|a| a.typ == attr::VENDOR_SPECIFIC) {
        let Ok((vendor, entries)) = decode_vsa(a.value, &|_| VendorFormat::default()) else {
            continue;
        };
        if vendor != VENDOR_MICROSOFT {
            continue;
        }
        for e in entries {
            match e.typ {
                mschap::MS_CHAP_CHALLENGE => challenge = <[u8; 16]>::try_from(e.value).ok(),
                mschap::MS_CHAP2_RESPONSE => response = Some(e.value.to_vec()),
                _ => {}
            }
        }
    }
    Some((challenge?, response?))
}
