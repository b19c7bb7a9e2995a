//! CWMP load generator: simulated CPEs doing full sessions (Inform, InformResponse, empty
//! POST, 204), each on a fresh TCP connection as CPEs do, over a set of distinct devices.
//!
//!   cwmp-load sessions --server ADDR [--devices 10000] [--connections 64] [--seconds 10]
//!   cwmp-load hold --server ADDR --sessions 10000 --pid PID [--seconds 5]
//!
//! `sessions` prints completed sessions per second, the p50/p99 of a whole session, and
//! failures. `hold` opens that many sessions at once (Inform answered, the empty POST held
//! back), prints the server's resident memory (VmRSS of PID) while they are open, then ends
//! them all. Both stop by themselves.

#[path = "cli_args.rs"]
mod cli_args;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cli_args::{arg, quantile_ms};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

fn inform(serial: u64) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
<soap-env:Envelope xmlns:soap-env=\"http://schemas.xmlsoap.org/soap/envelope/\" \
xmlns:soap-enc=\"http://schemas.xmlsoap.org/soap/encoding/\" \
xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
xmlns:cwmp=\"urn:dslforum-org:cwmp-1-0\"><soap-env:Header><cwmp:ID soap-env:mustUnderstand=\"1\">{serial}</cwmp:ID>\
</soap-env:Header><soap-env:Body><cwmp:Inform><DeviceId><Manufacturer>Bench</Manufacturer>\
<OUI>00BEEF</OUI><ProductClass>LoadBox</ProductClass><SerialNumber>LB{serial:08}</SerialNumber>\
</DeviceId><Event soap-enc:arrayType=\"cwmp:EventStruct[1]\"><EventStruct><EventCode>2 PERIODIC</EventCode>\
<CommandKey></CommandKey></EventStruct></Event><MaxEnvelopes>1</MaxEnvelopes>\
<CurrentTime>2026-11-21T10:00:00Z</CurrentTime><RetryCount>0</RetryCount>\
<ParameterList soap-enc:arrayType=\"cwmp:ParameterValueStruct[6]\">\
<ParameterValueStruct><Name>InternetGatewayDevice.DeviceSummary</Name><Value xsi:type=\"xsd:string\">InternetGatewayDevice:1.4[](Baseline:1)</Value></ParameterValueStruct>\
<ParameterValueStruct><Name>InternetGatewayDevice.DeviceInfo.HardwareVersion</Name><Value xsi:type=\"xsd:string\">HW-1</Value></ParameterValueStruct>\
<ParameterValueStruct><Name>InternetGatewayDevice.DeviceInfo.SoftwareVersion</Name><Value xsi:type=\"xsd:string\">SW-2.0.{}</Value></ParameterValueStruct>\
<ParameterValueStruct><Name>InternetGatewayDevice.DeviceInfo.ProvisioningCode</Name><Value xsi:type=\"xsd:string\"></Value></ParameterValueStruct>\
<ParameterValueStruct><Name>InternetGatewayDevice.ManagementServer.ConnectionRequestURL</Name><Value xsi:type=\"xsd:string\">http://10.{}.{}.{}:7547/</Value></ParameterValueStruct>\
<ParameterValueStruct><Name>InternetGatewayDevice.ManagementServer.ParameterKey</Name><Value xsi:type=\"xsd:string\"></Value></ParameterValueStruct>\
</ParameterList></cwmp:Inform></soap-env:Body></soap-env:Envelope>",
        serial % 3,
        serial >> 16 & 255,
        serial >> 8 & 255,
        serial & 255
    )
    .into_bytes()
}

struct Http {
    r: BufReader<TcpStream>,
    cookie: Option<String>,
}

impl Http {
    async fn connect(addr: SocketAddr) -> std::io::Result<Http> {
        let s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        Ok(Http {
            r: BufReader::new(s),
            cookie: None,
        })
    }

    /// POSTs `body`; returns the status.
    async fn post(&mut self, body: &[u8]) -> std::io::Result<u16> {
        let mut head = format!(
            "POST / HTTP/1.1\r\nHost: acs\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n",
            body.len()
        );
        if let Some(c) = &self.cookie {
            head.push_str(&format!("Cookie: {c}\r\n"));
        }
        head.push_str("\r\n");
        // One write for head and body, as an HTTP client with a buffered stream sends them:
        // two writes on a no-delay socket would wake the server twice per request.
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        self.r.get_mut().write_all(&request).await?;
        let mut line = String::new();
        self.r.read_line(&mut line).await?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
        let mut len = 0usize;
        loop {
            line.clear();
            self.r.read_line(&mut line).await?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                } else if k.eq_ignore_ascii_case("set-cookie") {
                    self.cookie = v.trim().split(';').next().map(str::to_string);
                }
            }
        }
        let mut buf = vec![0; len];
        self.r.read_exact(&mut buf).await?;
        Ok(status)
    }
}

async fn one_session(addr: SocketAddr, serial: u64) -> Result<(), String> {
    let mut h = Http::connect(addr).await.map_err(|e| e.to_string())?;
    let s = h.post(&inform(serial)).await.map_err(|e| e.to_string())?;
    if s != 200 {
        return Err(format!("Inform: {s}"));
    }
    let s = h.post(b"").await.map_err(|e| e.to_string())?;
    if s != 204 {
        return Err(format!("empty POST: {s}"));
    }
    Ok(())
}

fn rss_kib(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

async fn sessions(args: &[String]) {
    let addr: SocketAddr = arg(args, "--server", "127.0.0.1:7547")
        .parse()
        .expect("--server");
    let devices: u64 = arg(args, "--devices", "10000").parse().expect("--devices");
    let conns: usize = arg(args, "--connections", "64")
        .parse()
        .expect("--connections");
    let seconds: u64 = arg(args, "--seconds", "10").parse().expect("--seconds");
    let pid = arg(args, "--pid", "");
    let label = arg(args, "--label", "cwmp");
    let next = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let next = Arc::clone(&next);
        let failures = Arc::clone(&failures);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(100_000);
            while Instant::now() < deadline {
                let serial = next.fetch_add(1, Ordering::Relaxed) % devices;
                let t = Instant::now();
                match one_session(addr, serial).await {
                    Ok(()) => lat.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32),
                    Err(e) => {
                        if failures.fetch_add(1, Ordering::Relaxed) < 5 {
                            eprintln!("session failed: {e}");
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("worker"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let rss = if pid.is_empty() { 0 } else { rss_kib(&pid) };
    println!(
        "{label} sessions={} sessions_per_s={:.0} p50_ms={:.2} p99_ms={:.2} failures={} devices={devices} connections={conns} server_rss_mib={:.1}",
        all.len(),
        all.len() as f64 / elapsed,
        quantile_ms(&all, 0.50),
        quantile_ms(&all, 0.99),
        failures.load(Ordering::Relaxed),
        rss as f64 / 1024.0
    );
}

async fn hold(args: &[String]) {
    let addr: SocketAddr = arg(args, "--server", "127.0.0.1:7547")
        .parse()
        .expect("--server");
    let n: u64 = arg(args, "--sessions", "10000")
        .parse()
        .expect("--sessions");
    let pid = arg(args, "--pid", "");
    let seconds: u64 = arg(args, "--seconds", "5").parse().expect("--seconds");
    let before = rss_kib(&pid);
    let started = Instant::now();
    let mut open = Vec::with_capacity(n as usize);
    let mut failures = 0u64;
    // Opened in waves of 250 so the listen backlog is never the limit.
    for wave in (0..n).collect::<Vec<_>>().chunks(250) {
        let mut set = tokio::task::JoinSet::new();
        for &serial in wave {
            set.spawn(async move {
                let mut h = Http::connect(addr).await.map_err(|e| e.to_string())?;
                match h.post(&inform(1_000_000 + serial)).await {
                    Ok(200) => Ok(h),
                    Ok(s) => Err(format!("Inform: {s}")),
                    Err(e) => Err(e.to_string()),
                }
            });
        }
        while let Some(r) = set.join_next().await {
            match r.expect("task") {
                Ok(h) => open.push(h),
                Err(e) => {
                    failures += 1;
                    if failures < 5 {
                        eprintln!("open failed: {e}");
                    }
                }
            }
        }
    }
    let opened = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let during = rss_kib(&pid);
    let mut ended = 0u64;
    for mut h in open.drain(..) {
        if matches!(h.post(b"").await, Ok(204)) {
            ended += 1;
        }
    }
    println!(
        "hold sessions_open={} opened_in_s={opened:.1} server_rss_mib_before={:.1} server_rss_mib_open={:.1} ended_with_204={ended} failures={failures}",
        n - failures,
        before as f64 / 1024.0,
        during as f64 / 1024.0
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    match args.get(1).map(String::as_str) {
        Some("sessions") => rt.block_on(sessions(&args)),
        Some("hold") => rt.block_on(hold(&args)),
        _ => {
            eprintln!("usage: cwmp-load sessions|hold --server ADDR ...");
            std::process::exit(2);
        }
    }
}
