//! REST API load at a fixed rate, for the API benchmarks.
//!
//! `api-load --server 127.0.0.1:8080 --token T --rate 500 --seconds 10 --users 100000
//!   --path '/api/v1/sessions?username=user{n}&limit=50' --connections 8`
//! sends GETs on keep-alive connections, paced to `rate` in all (open loop: a slow answer
//! does not slow the schedule down; a request due while its connection is busy goes out as
//! soon as the connection is free), `{n}` in the path replaced by a random subscriber number
//! (six digits, as `radius-load csv` names them). Prints one line:
//! `RESULT rps=… p50_ms=… p99_ms=… ok=… client_errors=… server_errors=… failed=…`.
//! Bounded by `seconds`; loopback only.
//!
//! `--dry` keeps the schedule and sends nothing: each thread only wakes when a request would
//! be due. `api_bench.sh` runs it as a control, the cost to the data plane of a process that
//! does nothing but wake that often on the same cores (`rps` counts the wakeups then).

#[path = "cli_args.rs"]
mod cli_args;

use cli_args::arg;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    ok: u64,
    client_errors: u64,
    server_errors: u64,
    failed: u64,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let server: SocketAddr = arg(&args, "--server", "127.0.0.1:8080")
        .parse()
        .expect("--server");
    assert!(server.ip().is_loopback(), "benchmarks stay on loopback");
    let token = arg(&args, "--token", "");
    let rate: f64 = arg(&args, "--rate", "500").parse().expect("--rate");
    let seconds: f64 = arg(&args, "--seconds", "10").parse().expect("--seconds");
    let users: u32 = arg(&args, "--users", "100000").parse().expect("--users");
    let path = arg(
        &args,
        "--path",
        "/api/v1/sessions?username=user{n}&limit=50",
    );
    let connections: usize = arg(&args, "--connections", "8")
        .parse()
        .expect("--connections");
    let dry = args.iter().any(|a| a == "--dry");
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let per_conn = rate / connections as f64;
    let handles: Vec<_> = (0..connections)
        .map(|c| {
            let (token, path) = (token.clone(), path.clone());
            std::thread::spawn(move || {
                let pace = Pace {
                    rate: per_conn,
                    deadline,
                    dry,
                };
                run(server, &token, &path, users, pace, c as u32)
            })
        })
        .collect();
    let mut all = Tally::default();
    for h in handles {
        let t = h.join().expect("load thread");
        all.latencies_us.extend(t.latencies_us);
        all.ok += t.ok;
        all.client_errors += t.client_errors;
        all.server_errors += t.server_errors;
        all.failed += t.failed;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.latencies_us.sort_unstable();
    let pct = |p: f64| cli_args::quantile_ms(&all.latencies_us, p);
    println!(
        "RESULT rps={:.0} p50_ms={:.3} p99_ms={:.3} ok={} client_errors={} server_errors={} failed={}",
        all.latencies_us.len() as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        all.ok,
        all.client_errors,
        all.server_errors,
        all.failed
    );
}

/// One thread's schedule: `rate` requests a second until `deadline`; `dry`: wake on it only.
struct Pace {
    rate: f64,
    deadline: Instant,
    dry: bool,
}

fn run(server: SocketAddr, token: &str, path: &str, users: u32, pace: Pace, seed: u32) -> Tally {
    let mut t = Tally::default();
    let mut rng = 0x9e37_79b9u32 ^ seed.wrapping_mul(0x85eb_ca6b) | 1;
    let gap = Duration::from_secs_f64(1.0 / pace.rate.max(0.001));
    let mut next = Instant::now();
    let mut conn: Option<BufReader<TcpStream>> = None;
    while next < pace.deadline {
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
        next += gap;
        if pace.dry {
            t.latencies_us.push(0);
            continue;
        }
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        let p = path.replace("{n}", &format!("{:06}", rng % users.max(1)));
        let sent = Instant::now();
        if conn.is_none() {
            conn = TcpStream::connect_timeout(&server, Duration::from_secs(2))
                .ok()
                .map(|s| {
                    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                    let _ = s.set_nodelay(true);
                    // Room for a whole page of sessions, read in one or two calls.
                    BufReader::with_capacity(1 << 16, s)
                });
        }
        let status = conn.as_mut().and_then(|c| get(c, &p, token));
        match status {
            Some(code) => {
                t.latencies_us
                    .push(sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                match code {
                    200..=299 => t.ok += 1,
                    400..=499 => t.client_errors += 1,
                    _ => t.server_errors += 1,
                }
            }
            None => {
                t.failed += 1;
                conn = None;
            }
        }
    }
    t
}

/// One keep-alive GET; the status, with the body read and dropped. The request goes out in
/// one write, as HTTP clients send it: `write!` on the socket itself would send each piece of
/// the format as its own segment (the socket has no buffer, and Nagle is off), and the server
/// would wake for each.
fn get(c: &mut BufReader<TcpStream>, path: &str, token: &str) -> Option<u16> {
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: edge\r\nAuthorization: Bearer {token}\r\n\r\n");
    c.get_mut().write_all(request.as_bytes()).ok()?;
    let mut line = String::new();
    c.read_line(&mut line).ok()?;
    let status: u16 = line.split_whitespace().nth(1)?.parse().ok()?;
    let mut len = 0usize;
    loop {
        line.clear();
        c.read_line(&mut line).ok()?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().ok()?;
            }
        }
    }
    // Dropped from the reader's buffer as it arrives: no copy, no allocation per answer.
    while len > 0 {
        let n = match c.fill_buf() {
            Ok([]) | Err(_) => return None,
            Ok(buf) => buf.len().min(len),
        };
        c.consume(n);
        len -= n;
    }
    Some(status)
}
