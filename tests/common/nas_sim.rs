//! A NAS on loopback for Disconnect/CoA tests (RFC 5176): it checks every request's
//! Request Authenticator and Message-Authenticator with its own MD5 and HMAC code (not the
//! server's) and answers ACK, NAK, drops the first copy, or stays silent.

use std::collections::HashSet;
use std::net::UdpSocket;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use md5::{Digest, Md5};

/// A request's attributes: (type, value) in order.
pub type Attrs = Vec<(u8, Vec<u8>)>;

/// What the NAS simulator saw and how it answers.
#[derive(Default)]
pub struct NasLog {
    /// (code, attributes by type) of every request whose authenticator verified.
    pub requests: Vec<(u8, Attrs)>,
    /// Requests whose authenticator or Message-Authenticator did not verify.
    pub forged: usize,
}

#[derive(Clone, Copy)]
pub enum Mode {
    /// ACK what names a known Acct-Session-Id, NAK (Error-Cause 503) the rest.
    Answer,
    /// Ignore the first copy of each request (the client must resend it).
    DropFirst,
    Silent,
}

/// A NAS on loopback answering Disconnect and CoA requests (RFC 5176), checking each
/// request's authenticator with its own MD5.
pub struct NasSim {
    pub port: u16,
    pub log: Arc<Mutex<NasLog>>,
    mode: Arc<Mutex<Mode>>,
}

impl NasSim {
    /// A NAS sharing `secret` with the server, which knows `known_sessions`.
    pub fn start(secret: &'static str, known_sessions: &[&str]) -> NasSim {
        NasSim::start_on("127.0.0.1:0", secret, known_sessions)
    }

    /// [`NasSim::start`] on a given address (a tunnel address inside a test's namespace:
    /// the socket belongs to the namespace of the thread that binds it).
    pub fn start_on(bind: &str, secret: &'static str, known_sessions: &[&str]) -> NasSim {
        let sock = UdpSocket::bind(bind).expect("bind");
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let port = sock.local_addr().expect("addr").port();
        let log = Arc::new(Mutex::new(NasLog::default()));
        let mode = Arc::new(Mutex::new(Mode::Answer));
        let known: HashSet<Vec<u8>> = known_sessions
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect();
        let (l, m) = (Arc::clone(&log), Arc::clone(&mode));
        std::thread::spawn(move || {
            let mut seen_ids = HashSet::new();
            let mut buf = [0u8; 4096];
            // Bounded: the simulator lives for the test (at most a few minutes).
            let deadline = std::time::Instant::now() + Duration::from_secs(600);
            while std::time::Instant::now() < deadline {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                let p = &buf[..n];
                if n < 20 || usize::from(u16::from_be_bytes([p[2], p[3]])) != n {
                    continue;
                }
                let mut zeroed = p.to_vec();
                zeroed[4..20].fill(0);
                let expect: [u8; 16] = Md5::new()
                    .chain_update(&zeroed)
                    .chain_update(secret)
                    .finalize()
                    .into();
                let attrs = parse_attrs(&p[20..]);
                let ma_ok = attrs
                    .iter()
                    .find(|(t, _)| *t == 80)
                    .is_none_or(|(_, v)| message_authenticator_ok(secret, &zeroed, v));
                if expect != p[4..20] || !ma_ok {
                    l.lock().unwrap().forged += 1;
                    continue;
                }
                let mode = *m.lock().unwrap();
                // Duplicate detection as RFC 5080 section 2.2.2 has it: the same source
                // address and port, Identifier and Request Authenticator.
                let first = seen_ids.insert((from, p[1], p[4..20].to_vec()));
                match mode {
                    Mode::Silent => continue,
                    Mode::DropFirst if first => continue,
                    _ => {}
                }
                let session = attrs.iter().find(|(t, _)| *t == 44).map(|(_, v)| v.clone());
                let ack = session.is_some_and(|s| known.contains(&s));
                l.lock().unwrap().requests.push((p[0], attrs));
                let code = match (p[0], ack) {
                    (40, true) => 41,
                    (40, false) => 42,
                    (43, true) => 44,
                    _ => 45,
                };
                let mut resp = vec![code, p[1], 0, 0];
                resp.extend_from_slice(&[0u8; 16]);
                if !ack {
                    resp.extend_from_slice(&[101, 6, 0, 0, 0x01, 0xf7]); // Error-Cause 503
                }
                let len = resp.len() as u16;
                resp[2..4].copy_from_slice(&len.to_be_bytes());
                let auth: [u8; 16] = Md5::new()
                    .chain_update(&resp[..4])
                    .chain_update(&p[4..20])
                    .chain_update(&resp[20..])
                    .chain_update(secret)
                    .finalize()
                    .into();
                resp[4..20].copy_from_slice(&auth);
                let _ = sock.send_to(&resp, from);
            }
        });
        NasSim { port, log, mode }
    }

    pub fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    pub fn last(&self) -> (u8, Attrs) {
        self.log
            .lock()
            .unwrap()
            .requests
            .last()
            .cloned()
            .expect("a request reached the NAS")
    }
}

fn parse_attrs(mut b: &[u8]) -> Attrs {
    let mut out = Vec::new();
    while b.len() >= 2 && usize::from(b[1]) >= 2 && usize::from(b[1]) <= b.len() {
        out.push((b[0], b[2..usize::from(b[1])].to_vec()));
        b = &b[usize::from(b[1])..];
    }
    out
}

/// HMAC-MD5 over the packet with the authenticator and Message-Authenticator zeroed
/// (RFC 5176 section 3.3), written out from RFC 2104.
fn message_authenticator_ok(secret: &str, zeroed_auth: &[u8], got: &[u8]) -> bool {
    let mut p = zeroed_auth.to_vec();
    let mut off = 20;
    while off + 2 <= p.len() {
        let len = usize::from(p[off + 1]);
        if p[off] == 80 && len == 18 {
            p[off + 2..off + 18].fill(0);
        }
        off += len.max(2);
    }
    let mut key = [0u8; 64];
    key[..secret.len()].copy_from_slice(secret.as_bytes());
    let pad = |b: u8| key.iter().map(|k| k ^ b).collect::<Vec<u8>>();
    let inner = Md5::new()
        .chain_update(pad(0x36))
        .chain_update(&p)
        .finalize();
    let outer: [u8; 16] = Md5::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into();
    outer == got
}

pub fn attr(attrs: &[(u8, Vec<u8>)], t: u8) -> Option<&[u8]> {
    attrs
        .iter()
        .find(|(k, _)| *k == t)
        .map(|(_, v)| v.as_slice())
}
