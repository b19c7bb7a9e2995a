//! RADIUS load generator and null responder.
//!
//! `radius-load load --server 127.0.0.1:1812 --secret S --users 100000 --method pap
//!   --window 64 --seconds 10` keeps `window` Access-Requests in flight per thread, verifies
//! every Response Authenticator and Message-Authenticator, and prints throughput and latency.
//! Users are `user000000`… with password `pw<N>`, as `radius-load csv` writes them.
//! Accounting session ids are unique to a run unless `--run N` names one. `acct-cycle` sends
//! Start, `--interims N` Interim-Updates (default 1) and Stop for each session.
//!
//! `radius-load null --listen 127.0.0.1:18120 --secret S` answers every Access-Request with a
//! correctly signed Access-Accept and does nothing else: the ceiling any server can reach.
//! Both modes stop by themselves (a time bound), and only ever talk to loopback.

#[path = "cli_args.rs"]
mod cli_args;

use cli_args::arg;

use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use edge_radius::auth::{chap, mschap};
use edge_radius::codec::{
    accounting_request_authenticator, attr, encode_vsa, hide_password, message_authenticator,
    response_authenticator, Code, MacKey, PacketBuilder, RawPacket, VendorFormat,
};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("load") => load(&args),
        Some("null") => null(&args),
        Some("csv") => csv(&args),
        _ => {
            eprintln!("usage: radius-load load|null|csv [options] (see the source header)");
            std::process::exit(2);
        }
    }
}

fn loopback_only(addr: SocketAddr) {
    assert!(addr.ip().is_loopback(), "benchmarks only talk to loopback");
}

/// Writes the benchmark's subscribers as CSV (for `dotmac-edge subscribers import`).
fn csv(args: &[String]) {
    let users: usize = arg(args, "--users", "100000").parse().expect("--users");
    let plan = arg(args, "--plan", "");
    let mut out = std::io::BufWriter::new(std::io::stdout());
    writeln!(out, "username,password,plan").expect("write");
    for i in 0..users {
        writeln!(out, "user{i:06},pw{i},{plan}").expect("write");
    }
}

fn null(args: &[String]) {
    let listen: SocketAddr = arg(args, "--listen", "127.0.0.1:18120")
        .parse()
        .expect("--listen");
    loopback_only(listen);
    let secret = arg(args, "--secret", "testing123").into_bytes();
    let seconds: u64 = arg(args, "--seconds", "600").parse().expect("--seconds");
    let threads: usize = arg(args, "--threads", "2").parse().expect("--threads");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut handles = Vec::new();
    // One socket read by every thread, in batches, as dotmac-edge does: the same I/O, so
    // the difference between the two is the work dotmac-edge does per request.
    let shared =
        Arc::new(edge_radius::server::bind_udp(listen, 8 << 20).expect("bind the null responder"));
    shared
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    for _ in 0..threads {
        let sock = Arc::clone(&shared);
        let secret = secret.clone();
        let key = MacKey::new(&secret);
        handles.push(std::thread::spawn(move || {
            edge_radius::server::serve_batches(
                &sock,
                || Instant::now() >= deadline,
                |packet, _src| {
                    let p = RawPacket::parse(packet).ok()?;
                    let ra = p.authenticator();
                    if p.code() == Code::ACCOUNTING_REQUEST {
                        let mut bytes =
                            PacketBuilder::new(Code::ACCOUNTING_RESPONSE, p.identifier(), ra)
                                .finish();
                        let auth = response_authenticator(&bytes, ra, &secret);
                        bytes[4..20].copy_from_slice(&auth);
                        return Some(bytes.into());
                    }
                    let mut b = PacketBuilder::new(Code::ACCESS_ACCEPT, p.identifier(), ra);
                    let off = b.message_authenticator_placeholder();
                    let mut bytes = b.finish();
                    let ma = key.sign(&bytes, off, ra);
                    bytes[off..off + 16].copy_from_slice(&ma);
                    let auth = response_authenticator(&bytes, ra, &secret);
                    bytes[4..20].copy_from_slice(&auth);
                    Some(bytes.into())
                },
            );
        }));
    }
    println!("null responder on {listen} for {seconds} s");
    for h in handles {
        let _ = h.join();
    }
}

#[derive(Clone, Copy)]
enum Method {
    Pap,
    Chap,
    MsChapV2,
    /// Start, Interim-Updates (`--interims`), Stop for each session, in blocks of sessions as
    /// a NAS sends them.
    AcctCycle,
    /// Starts only, each a new session: every acknowledged one must be in the database.
    AcctStart,
}

impl Method {
    fn is_accounting(self) -> bool {
        matches!(self, Method::AcctCycle | Method::AcctStart)
    }
}

struct Slot {
    sent: Instant,
    ra: [u8; 16],
    /// The authenticator of the request this slot carried before: a second answer to it
    /// (the server answering a retransmit from its reply cache) is a duplicate, not a forgery.
    prev_ra: [u8; 16],
    live: bool,
    /// Which request of this thread's sequence the slot carries; a lost one is sent again.
    seq: u64,
    packet: Vec<u8>,
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    accepts: u64,
    rejects: u64,
    bad: u64,
    duplicates: u64,
    lost: u64,
    /// Acct-Session-Ids of acknowledged Starts (acct-start).
    acked: Vec<String>,
}

fn load(args: &[String]) {
    let server: SocketAddr = arg(args, "--server", "127.0.0.1:1812")
        .parse()
        .expect("--server");
    loopback_only(server);
    let secret = arg(args, "--secret", "testing123").into_bytes();
    let users: u32 = arg(args, "--users", "100000").parse().expect("--users");
    let window: usize = arg(args, "--window", "64").parse().expect("--window");
    let seconds: f64 = arg(args, "--seconds", "10").parse().expect("--seconds");
    let threads: usize = arg(args, "--threads", "2").parse().expect("--threads");
    let label = arg(args, "--label", "server");
    let method = match arg(args, "--method", "pap").as_str() {
        "pap" => Method::Pap,
        "chap" => Method::Chap,
        "mschapv2" => Method::MsChapV2,
        "acct-cycle" => Method::AcctCycle,
        "acct-start" => Method::AcctStart,
        m => panic!("unknown --method {m}"),
    };
    let acked_file = arg(args, "--acked", "");
    let interims: u32 = arg(args, "--interims", "1").parse().expect("--interims");
    // Session ids unique to this run, so that runs against one database never collide;
    // `--run N` gives two generators the same ids (one NAS's reports sent to two servers).
    let run = match arg(args, "--run", "").as_str() {
        "" => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
        n => n.parse().expect("--run"),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let secret = secret.clone();
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let gen = Gen {
                    thread: t as u32,
                    threads: threads as u32,
                    run,
                    secret,
                    users,
                    method,
                    interims,
                };
                run_thread(&gen, server, window.min(256), &stop)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    let mut all = Tally::default();
    for h in handles {
        let t = h.join().expect("thread");
        all.latencies_us.extend(t.latencies_us);
        all.accepts += t.accepts;
        all.rejects += t.rejects;
        all.bad += t.bad;
        all.duplicates += t.duplicates;
        all.lost += t.lost;
        all.acked.extend(t.acked);
    }
    if !acked_file.is_empty() {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&acked_file).expect("--acked"));
        for id in &all.acked {
            writeln!(f, "{id}").expect("write --acked");
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.latencies_us.sort_unstable();
    let pct = |p: f64| cli_args::quantile_ms(&all.latencies_us, p);
    let done = all.accepts + all.rejects;
    let label = if method.is_accounting() {
        format!("{label} mode=accounting")
    } else {
        label
    };
    println!(
        "RESULT label={label} rps={:.0} p50_ms={:.3} p99_ms={:.3} accepts={} rejects={} bad_authenticator={} duplicates={} lost={} cpu_s={:.2}",
        done as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        all.accepts,
        all.rejects,
        all.bad,
        all.duplicates,
        all.lost,
        own_cpu_seconds()
    );
}

/// The CPU time this process has used, user and system, from `/proc/self/stat` (utime and
/// stime, fields 14 and 15, in the kernel's USER_HZ of 100 a second); 0 where it cannot be
/// read. The comparison scripts divide it by the answers to show the load generator's share
/// of the machine beside the servers'.
fn own_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name (field 2) may hold spaces; the fields after it follow its ')'.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let field = |n: usize| {
        after
            .split_whitespace()
            .nth(n)
            .and_then(|v| v.parse::<f64>().ok())
    };
    match (field(11), field(12)) {
        (Some(user), Some(system)) => (user + system) / 100.0,
        _ => 0.0,
    }
}

/// What a load thread sends: its requests are numbered 0, 1, 2… and each number always makes
/// the same request (so a lost one can be retransmitted as it was).
struct Gen {
    thread: u32,
    threads: u32,
    run: u64,
    secret: Vec<u8>,
    users: u32,
    method: Method,
    /// Interim-Updates between a session's Start and Stop (acct-cycle).
    interims: u32,
}

impl Gen {
    fn session_id(&self, session: u64) -> String {
        format!("{:x}-{}-{session}", self.run, self.thread)
    }

    /// The request for `seq`, and its authenticator.
    fn request(&self, id: u8, seq: u64, rng: &mut u32) -> (Vec<u8>, [u8; 16]) {
        let secret = &self.secret;
        match self.method {
            Method::AcctCycle => {
                // Sessions go in blocks, as a NAS reports them: Starts for a block of
                // sessions, then their Interim-Updates, then their Stops; one session's
                // packets are a block apart, not back to back.
                const BLOCK: u64 = 4096;
                let phases = u64::from(self.interims) + 2;
                let (block, at) = (seq / (phases * BLOCK), seq % (phases * BLOCK));
                let (session, phase) = (block * BLOCK + at % BLOCK, (at / BLOCK) as u32);
                accounting(
                    id,
                    secret,
                    &self.session_id(session),
                    session,
                    self.users,
                    (phase, self.interims + 1),
                )
            }
            Method::AcctStart => {
                accounting(id, secret, &self.session_id(seq), seq, self.users, (0, 1))
            }
            m => {
                let mut ra = [0u8; 16];
                for b in ra.iter_mut() {
                    *rng ^= *rng << 13;
                    *rng ^= *rng >> 17;
                    *rng ^= *rng << 5;
                    *b = *rng as u8;
                }
                // The threads take turns through the subscribers: each request is for the
                // subscriber after the one before it, as a fleet of NASes sends them. (Each
                // thread walking from the first subscriber would send the same subscriber's
                // request from every thread at once, which no subscriber does, and which
                // lets a server answer them with one lease write.)
                let turn = seq * u64::from(self.threads) + u64::from(self.thread);
                let user = (turn % u64::from(self.users)) as u32;
                (request(id, &ra, user, secret, m), ra)
            }
        }
    }
}

fn run_thread(gen: &Gen, server: SocketAddr, window: usize, stop: &AtomicBool) -> Tally {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let mut slots: Vec<Slot> = (0..256)
        .map(|_| Slot {
            sent: Instant::now(),
            ra: [0; 16],
            prev_ra: [0; 16],
            live: false,
            seq: 0,
            packet: Vec::new(),
        })
        .collect();
    let mut tally = Tally::default();
    let mut next_seq = 0u64;
    let mut rng = gen.thread.wrapping_mul(0x9e37_79b9) | 1;
    let mut send = |id: u8, seq: u64, slots: &mut Vec<Slot>| {
        let (packet, ra) = gen.request(id, seq, &mut rng);
        let _ = sock.send_to(&packet, server);
        let prev_ra = slots[usize::from(id)].ra;
        slots[usize::from(id)] = Slot {
            sent: Instant::now(),
            ra,
            prev_ra,
            live: true,
            seq,
            packet,
        };
    };
    for id in 0..window {
        send(id as u8, next_seq, &mut slots);
        next_seq += 1;
    }
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        match sock.recv_from(&mut buf) {
            Ok((n, _)) => {
                let Ok(p) = RawPacket::parse(&buf[..n]) else {
                    tally.bad += 1;
                    continue;
                };
                let id = p.identifier();
                let slot = &slots[usize::from(id)];
                if !slot.live {
                    continue;
                }
                let mut copy = p.bytes().to_vec();
                copy[4..20].copy_from_slice(&slot.ra);
                let expect = response_authenticator(&copy, &slot.ra, &gen.secret);
                if &expect != p.authenticator() {
                    copy[4..20].copy_from_slice(&slot.prev_ra);
                    if &response_authenticator(&copy, &slot.prev_ra, &gen.secret)
                        == p.authenticator()
                    {
                        tally.duplicates += 1;
                    } else {
                        tally.bad += 1;
                    }
                    // Not this slot's answer: keep waiting for it.
                    continue;
                }
                tally
                    .latencies_us
                    .push(slot.sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                match p.code() {
                    Code::ACCESS_ACCEPT | Code::ACCOUNTING_RESPONSE => tally.accepts += 1,
                    _ => tally.rejects += 1,
                }
                if matches!(gen.method, Method::AcctStart) {
                    tally.acked.push(gen.session_id(slot.seq));
                }
                send(id, next_seq, &mut slots);
                next_seq += 1;
            }
            Err(_) => {
                // Nothing for 100 ms: what is overdue is lost; send it again, as a NAS would.
                for slot in slots.iter_mut().take(window) {
                    if slot.live && slot.sent.elapsed() > Duration::from_secs(1) {
                        tally.lost += 1;
                        let _ = sock.send_to(&slot.packet, server);
                        slot.sent = Instant::now();
                    }
                }
            }
        }
    }
    tally
}

/// An Accounting-Request for `session`: phase 0 Start, phase `stop` Stop, an Interim-Update
/// between.
fn accounting(
    id: u8,
    secret: &[u8],
    session_id: &str,
    session: u64,
    users: u32,
    (phase, stop): (u32, u32),
) -> (Vec<u8>, [u8; 16]) {
    let user = format!("user{:06}", session % u64::from(users));
    let mut b = PacketBuilder::new(Code::ACCOUNTING_REQUEST, id, &[0; 16]);
    // Acct-Status-Type: Start (1) at phase 0, Stop (2) at `stop`, Interim-Update (3) between.
    let status: u32 = match phase {
        0 => 1,
        p if p == stop => 2,
        _ => 3,
    };
    b.attr(attr::ACCT_STATUS_TYPE, &status.to_be_bytes());
    b.attr(attr::USER_NAME, user.as_bytes());
    b.attr(attr::ACCT_SESSION_ID, session_id.as_bytes());
    b.attr(attr::NAS_IP_ADDRESS, &[127, 0, 0, 1]);
    b.attr(attr::NAS_PORT, &(session as u32).to_be_bytes());
    b.attr(attr::NAS_PORT_TYPE, &15u32.to_be_bytes());
    b.attr(
        attr::FRAMED_IP_ADDRESS,
        &(0x6440_0000u32 | (session as u32 & 0x3f_ffff)).to_be_bytes(),
    );
    b.attr(
        attr::CALLING_STATION_ID,
        format!("02:00:00:{:06x}", session & 0xff_ffff).as_bytes(),
    );
    if phase > 0 {
        let t = 300 * phase;
        b.attr(46, &t.to_be_bytes()); // Acct-Session-Time
        b.attr(42, &(1_000_000 * phase).to_be_bytes()); // Acct-Input-Octets
        b.attr(43, &(9_000_000 * phase).to_be_bytes()); // Acct-Output-Octets
    }
    if phase == stop {
        b.attr(49, &1u32.to_be_bytes()); // Acct-Terminate-Cause = User-Request
    }
    let mut bytes = b.finish();
    let ra = accounting_request_authenticator(&bytes, secret);
    bytes[4..20].copy_from_slice(&ra);
    (bytes, ra)
}

fn request(id: u8, ra: &[u8; 16], user: u32, secret: &[u8], method: Method) -> Vec<u8> {
    let name = format!("user{user:06}");
    let pw = format!("pw{user}");
    let mut b = PacketBuilder::new(Code::ACCESS_REQUEST, id, ra);
    b.attr(attr::USER_NAME, name.as_bytes());
    match method {
        // Built by `accounting`.
        Method::AcctCycle | Method::AcctStart => {}
        Method::Pap => {
            b.attr(
                attr::USER_PASSWORD,
                &hide_password(pw.as_bytes(), secret, ra),
            );
        }
        Method::Chap => {
            let mut v = vec![id];
            v.extend_from_slice(&chap::response(id, pw.as_bytes(), ra));
            b.attr(attr::CHAP_PASSWORD, &v);
        }
        Method::MsChapV2 => {
            let auth_challenge = *ra;
            let peer = [id; 16];
            let hash = mschap::nt_password_hash(&pw);
            let nt = mschap::nt_response(&auth_challenge, &peer, name.as_bytes(), &hash);
            let mut resp = vec![id, 0];
            resp.extend_from_slice(&peer);
            resp.extend_from_slice(&[0; 8]);
            resp.extend_from_slice(&nt);
            let f = VendorFormat::default();
            let c = encode_vsa(
                mschap::VENDOR_MICROSOFT,
                f,
                mschap::MS_CHAP_CHALLENGE,
                &auth_challenge,
            )
            .expect("fits");
            let r = encode_vsa(
                mschap::VENDOR_MICROSOFT,
                f,
                mschap::MS_CHAP2_RESPONSE,
                &resp,
            )
            .expect("fits");
            b.attr(attr::VENDOR_SPECIFIC, &c);
            b.attr(attr::VENDOR_SPECIFIC, &r);
        }
    }
    b.attr(attr::NAS_IP_ADDRESS, &[127, 0, 0, 1]);
    let off = b.message_authenticator_placeholder();
    let mut bytes = b.finish();
    let ma = message_authenticator(&bytes, off, ra, secret);
    bytes[off..off + 16].copy_from_slice(&ma);
    bytes
}
