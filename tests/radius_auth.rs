//! RADIUS authentication as a NAS sees it: the real binary, a real database (both backends),
//! radclient from freeradius-utils, and the `radius` crate as an independent client.

mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::{cli, cli_line, cli_output, eventually, radclient, Backend, Server, TestDb};

const SECRET: &str = "s3cret-nas";
const MA: &str = "Message-Authenticator = 0x00\n";

/// A database with one NAS (127.0.0.1), a plan and a few subscribers.
fn provisioned(backend: Backend) -> TestDb {
    let db = TestDb::new(backend);
    cli(
        &db.url,
        &[
            "nas",
            "add",
            "--name",
            "bng1",
            "--address",
            "127.0.0.1",
            "--secret",
            SECRET,
            "--vendor",
            "mikrotik",
        ],
    );
    cli(
        &db.url,
        &[
            "plans",
            "add",
            "--name",
            "gold",
            "--reply",
            "Mikrotik-Rate-Limit = \"20M/20M\"",
            "--reply",
            "Framed-Pool = \"main\"",
            "--session-timeout",
            "3600",
            "--interim-interval",
            "300",
        ],
    );
    for line in [
        "subscribers add --username alice --password wonderland --plan gold",
        "subscribers add --username User --password clientPass --plan gold",
        "subscribers add --username frozen --password pw --status suspended",
        "subscribers add --username bound --password pw --calling-station-id 00:11:22:33:44:55 \
         --static-ipv4 100.64.0.10",
    ] {
        cli_line(&db.url, line);
    }
    db
}

fn pap(user: &str, pw: &str) -> String {
    format!("User-Name = \"{user}\"\nUser-Password = \"{pw}\"\n{MA}")
}

fn pap_chap_and_plan_replies(backend: Backend) {
    let db = provisioned(backend);
    let s = Server::start(&db.url);
    let out = radclient(s.auth, "auth", SECRET, &pap("alice", "wonderland"));
    assert!(out.contains("Received Access-Accept"), "{out}");
    assert!(out.contains("Mikrotik-Rate-Limit = \"20M/20M\""), "{out}");
    assert!(out.contains("Framed-Pool = \"main\""), "{out}");
    assert!(out.contains("Session-Timeout = 3600"), "{out}");
    assert!(out.contains("Acct-Interim-Interval = 300"), "{out}");

    let out = radclient(s.auth, "auth", SECRET, &pap("alice", "wrong"));
    assert!(out.contains("Received Access-Reject"), "{out}");
    let out = radclient(s.auth, "auth", SECRET, &pap("nobody", "x"));
    assert!(out.contains("Received Access-Reject"), "{out}");

    // CHAP: radclient computes CHAP-Password from the cleartext it is given.
    let chap = format!("User-Name = \"alice\"\nCHAP-Password = \"wonderland\"\n{MA}");
    let out = radclient(s.auth, "auth", SECRET, &chap);
    assert!(out.contains("Received Access-Accept"), "{out}");
    let chap = format!("User-Name = \"alice\"\nCHAP-Password = \"nope\"\n{MA}");
    assert!(radclient(s.auth, "auth", SECRET, &chap).contains("Received Access-Reject"));

    // The wrong shared secret garbles Message-Authenticator: silently dropped, and counted.
    let out = radclient(
        s.auth,
        "auth",
        "not-the-secret",
        &pap("alice", "wonderland"),
    );
    assert!(out.contains("No reply from server"), "{out}");
    assert!(s.metric("edge_radius_dropped_total{reason=\"bad_authenticator\"}") >= 1.0);
}
both_backends!(pap_chap_and_plan_replies, super::pap_chap_and_plan_replies);

/// MS-CHAPv2 with the exchange of RFC 2759 section 9.2 (user "User", password "clientPass"):
/// the Access-Accept carries the authenticator response the RFC gives, and MPPE keys.
fn mschapv2_rfc2759_exchange(backend: Backend) {
    let db = provisioned(backend);
    let s = Server::start(&db.url);
    let req = format!(
        "User-Name = \"User\"\nMS-CHAP-Challenge = 0x5B5D7C7D7B3F2F3E3C2C602132262628\n\
         MS-CHAP2-Response = 0x010021402324255E262A28295F2B3A337C7E000000000000000082309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF\n{MA}"
    );
    let out = radclient(s.auth, "auth", SECRET, &req);
    assert!(out.contains("Received Access-Accept"), "{out}");
    let success = hex_of(b"S=407A5589115FD0D6209F510FE9C04566932CDA56");
    assert!(
        out.to_lowercase()
            .contains(&format!("ms-chap2-success = 0x01{success}")),
        "{out}"
    );
    assert!(out.contains("MS-MPPE-Send-Key"), "{out}");
    assert!(out.contains("MS-MPPE-Recv-Key"), "{out}");

    // Same exchange for a subscriber with another password: rejected with MS-CHAP-Error.
    let req = req.replace("\"User\"", "\"alice\"");
    let out = radclient(s.auth, "auth", SECRET, &req);
    assert!(out.contains("Received Access-Reject"), "{out}");
    assert!(out.contains("MS-CHAP-Error"), "{out}");
    assert!(
        out.contains("E=691 R=0 V=3 M=Authentication failed"),
        "{out}"
    );
}
both_backends!(mschapv2_rfc2759_exchange, super::mschapv2_rfc2759_exchange);

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn status_binding_and_static_address(backend: Backend) {
    let db = provisioned(backend);
    let s = Server::start(&db.url);
    let out = radclient(s.auth, "auth", SECRET, &pap("frozen", "pw"));
    assert!(out.contains("Received Access-Reject"), "{out}");
    assert!(
        out.contains("Reply-Message = \"Account suspended\""),
        "{out}"
    );

    let out = radclient(
        s.auth,
        "auth",
        SECRET,
        &format!(
            "{}Calling-Station-Id = \"00-11-22-33-44-66\"\n",
            pap("bound", "pw")
        ),
    );
    assert!(
        out.contains("Reply-Message = \"Calling-Station-Id not allowed\""),
        "{out}"
    );
    let out = radclient(
        s.auth,
        "auth",
        SECRET,
        &format!(
            "{}Calling-Station-Id = \"00-11-22-33-44-55\"\n",
            pap("bound", "pw")
        ),
    );
    assert!(out.contains("Received Access-Accept"), "{out}");
    assert!(out.contains("Framed-IP-Address = 100.64.0.10"), "{out}");

    let out = radclient(s.auth, "status", SECRET, MA);
    assert!(out.contains("Received Access-Accept"), "{out}");
}
both_backends!(
    status_binding_and_static_address,
    super::status_binding_and_static_address
);

/// PAP against the hashes FreeRADIUS users migrate with, verified off the packet path.
fn hashed_passwords(backend: Backend) {
    let db = provisioned(backend);
    let hashes = [
        // sha512-crypt and md5-crypt of "hashed-pw" from `openssl passwd -6/-1 -salt saltsalt`,
        // and {SSHA} (SHA-1 of password+salt, then salt, base64).
        ("sha512", "$6$saltsalt$1QIN/18lH75.tCd3SuIGDIJe11TA8gU59aQW7mgNay8UPhcJFHaAxtgOiCynBSgUHxDZg/dzH8U78rocdySjB."),
        ("md5crypt", "$1$saltsalt$DAjo9pBRwVdXQq8otYDbE0"),
        ("ssha", "{SSHA}PCHD0xN/YfhENboO7Cx302vEXJxzYWx0c2FsdA=="),
    ];
    for (user, hash) in hashes {
        cli(
            &db.url,
            &["subscribers", "add", "--username", user, "--password", hash],
        );
    }
    let s = Server::start(&db.url);
    for (user, _) in hashes {
        let out = radclient(s.auth, "auth", SECRET, &pap(user, "hashed-pw"));
        assert!(out.contains("Received Access-Accept"), "{user}: {out}");
        let out = radclient(s.auth, "auth", SECRET, &pap(user, "hashed-px"));
        assert!(out.contains("Received Access-Reject"), "{user}: {out}");
    }
}
both_backends!(hashed_passwords, super::hashed_passwords);

/// A change made by the CLI from another process reaches the running server.
fn changes_reach_the_running_server(backend: Backend) {
    let db = provisioned(backend);
    let s = Server::start(&db.url);
    assert!(radclient(s.auth, "auth", SECRET, &pap("late", "pw")).contains("Access-Reject"));
    let t0 = Instant::now();
    cli(
        &db.url,
        &[
            "subscribers",
            "add",
            "--username",
            "late",
            "--password",
            "pw",
            "--plan",
            "gold",
        ],
    );
    let ok = eventually(Duration::from_secs(10), || {
        radclient(s.auth, "auth", SECRET, &pap("late", "pw")).contains("Access-Accept")
    });
    assert!(ok, "new subscriber never accepted");
    eprintln!("{backend:?}: new subscriber live after {:?}", t0.elapsed());
    cli(&db.url, &["subscribers", "remove", "late"]);
    assert!(eventually(Duration::from_secs(10), || {
        radclient(s.auth, "auth", SECRET, &pap("late", "pw")).contains("Access-Reject")
    }));
    // Suspending takes effect too.
    cli(
        &db.url,
        &[
            "subscribers",
            "add",
            "--username",
            "alice",
            "--password",
            "wonderland",
            "--status",
            "suspended",
        ],
    );
    assert!(eventually(Duration::from_secs(10), || {
        radclient(s.auth, "auth", SECRET, &pap("alice", "wonderland")).contains("Account suspended")
    }));
}
both_backends!(
    changes_reach_the_running_server,
    super::changes_reach_the_running_server
);

/// The `radius` crate as an independent client (it sends no Message-Authenticator, so its
/// NAS is registered with the per-NAS override).
fn independent_client(backend: Backend) {
    let db = TestDb::new(backend);
    cli(
        &db.url,
        &[
            "nas",
            "add",
            "--name",
            "legacy",
            "--address",
            "127.0.0.1",
            "--secret",
            "legacy-secret",
            "--allow-missing-message-authenticator",
        ],
    );
    cli(
        &db.url,
        &[
            "subscribers",
            "add",
            "--username",
            "carol",
            "--password",
            "pw1",
        ],
    );
    let s = Server::start(&db.url);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use radius::client::Client;
        use radius::core::code::Code;
        use radius::core::packet::Packet;
        use radius::core::rfc2865;
        let client = Client::new(Some(Duration::from_secs(2)), Some(Duration::from_secs(2)));
        for (pw, want) in [("pw1", Code::AccessAccept), ("pw2", Code::AccessReject)] {
            let mut req = Packet::new(Code::AccessRequest, b"legacy-secret");
            rfc2865::add_user_name(&mut req, "carol");
            rfc2865::add_user_password(&mut req, pw.as_bytes()).unwrap();
            let resp = client.send_packet(&s.auth, &req).await.expect("answer");
            assert_eq!(resp.get_code(), want);
        }
    });
    // A NAS that requires Message-Authenticator drops the same request.
    cli(&db.url, &["nas", "remove", "legacy"]);
    cli(
        &db.url,
        &[
            "nas",
            "add",
            "--name",
            "strict",
            "--address",
            "127.0.0.1",
            "--secret",
            "legacy-secret",
        ],
    );
    std::thread::sleep(Duration::from_secs(3));
    let out = radclient(
        s.auth,
        "auth",
        "legacy-secret",
        "User-Name = \"carol\"\nUser-Password = \"pw1\"\n",
    );
    assert!(!out.contains("Received Access"), "{out}");
    assert!(s.metric("edge_radius_dropped_total{reason=\"missing_message_authenticator\"}") >= 1.0);
}
both_backends!(independent_client, super::independent_client);

/// Malformed packets, unknown clients, bad authenticators, retransmits and floods: dropped
/// or answered from the cache, counted, and the server keeps serving.
#[test]
fn bad_input_is_dropped_and_counted() {
    use edge_radius::codec::{attr, hide_password, message_authenticator, Code, PacketBuilder};
    let db = provisioned(Backend::Sqlite);
    cli(
        &db.url,
        &[
            "nas",
            "add",
            "--name",
            "limited",
            "--address",
            "127.0.0.9",
            "--secret",
            SECRET,
            "--rate-limit",
            "5",
        ],
    );
    let s = Server::start(&db.url);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();

    let good = |id: u8, with_ma: bool, ra: [u8; 16]| {
        let mut b = PacketBuilder::new(Code::ACCESS_REQUEST, id, &ra);
        b.attr(attr::USER_NAME, b"alice");
        b.attr(
            attr::USER_PASSWORD,
            &hide_password(b"wonderland", SECRET.as_bytes(), &ra),
        );
        let off = with_ma.then(|| b.message_authenticator_placeholder());
        let mut bytes = b.finish();
        if let Some(off) = off {
            let ma = message_authenticator(&bytes, off, &ra, SECRET.as_bytes());
            bytes[off..off + 16].copy_from_slice(&ma);
        }
        bytes
    };
    let ask = |pkt: &[u8]| -> Option<Vec<u8>> {
        sock.send_to(pkt, s.auth).unwrap();
        let mut buf = [0u8; 4096];
        sock.recv_from(&mut buf)
            .ok()
            .map(|(n, _)| buf[..n].to_vec())
    };

    let valid = good(1, true, [7; 16]);
    let first = ask(&valid).expect("valid request answered");
    assert_eq!(first[0], 2, "Access-Accept");
    // A retransmit is answered from the reply cache, byte for byte.
    assert_eq!(ask(&valid).expect("retransmit answered"), first);
    assert!(s.metric("edge_radius_duplicates_total") >= 1.0);

    let mut truncated = valid.clone();
    truncated.truncate(30);
    let mut wrong_len = valid.clone();
    wrong_len[3] = wrong_len[3].wrapping_add(40);
    let mut overrun = good(3, true, [9; 16]);
    overrun[21] = 250;
    let mut bad_ma = good(4, true, [10; 16]);
    let n = bad_ma.len();
    bad_ma[n - 1] ^= 0xff;
    let no_ma = good(5, false, [11; 16]);
    for (what, pkt) in [
        ("short", vec![1u8, 2, 3]),
        ("truncated", truncated),
        ("wrong length", wrong_len),
        ("overrun", overrun),
        ("bad message-authenticator", bad_ma),
        ("missing message-authenticator", no_ma),
        ("accounting on the auth port", {
            let mut p = good(6, true, [12; 16]);
            p[0] = 4;
            p
        }),
    ] {
        assert!(ask(&pkt).is_none(), "{what} got an answer");
    }
    let m = |r: &str| s.metric(&format!("edge_radius_dropped_total{{reason=\"{r}\"}}"));
    assert!(m("malformed") >= 4.0, "{}", s.metrics());
    assert!(m("bad_authenticator") >= 1.0);
    assert!(m("missing_message_authenticator") >= 1.0);
    assert!(m("unsupported_code") >= 1.0);

    // An unknown client (127.0.0.2 is no NAS) is dropped.
    let stranger = UdpSocket::bind("127.0.0.2:0").unwrap();
    stranger
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    stranger.send_to(&good(7, true, [13; 16]), s.auth).unwrap();
    assert!(stranger.recv_from(&mut [0u8; 4096]).is_err());
    assert!(m("unknown_client") >= 1.0);

    // The per-NAS rate limit: a NAS allowed 5/s sending 40 at once gets at most a burst.
    let limited = UdpSocket::bind("127.0.0.9:0").unwrap();
    limited
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    for i in 0..40u8 {
        limited.send_to(&good(i, true, [i; 16]), s.auth).unwrap();
    }
    let mut answered = 0;
    while limited.recv_from(&mut [0u8; 4096]).is_ok() {
        answered += 1;
    }
    assert!((1..40).contains(&answered), "answered {answered}");
    assert!(m("rate_limited") >= 1.0);

    // Garbage of every length: still serving afterwards.
    let mut seed = 0x1234_5678u32;
    for len in 0..600usize {
        let pkt: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                seed as u8
            })
            .collect();
        let _ = sock.send_to(&pkt, s.auth);
    }
    let again = ask(&good(200, true, [99; 16])).expect("still serving");
    assert_eq!(again[0], 2);
}

#[test]
fn cli_refuses_bad_input() {
    let db = TestDb::new(Backend::Sqlite);
    let out = cli_output(
        &db.url,
        &[
            "plans",
            "add",
            "--name",
            "x",
            "--reply",
            "No-Such-Attribute = 1",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown attribute"));
    let out = cli_output(
        &db.url,
        &[
            "nas",
            "add",
            "--name",
            "n",
            "--address",
            "not-an-ip",
            "--secret",
            "x",
        ],
    );
    assert!(!out.status.success());
    cli(
        &db.url,
        &[
            "nas",
            "add",
            "--name",
            "n",
            "--address",
            "10.0.0.1",
            "--secret",
            "x",
        ],
    );
    let out = cli_output(
        &db.url,
        &[
            "nas",
            "add",
            "--name",
            "n",
            "--address",
            "10.0.0.2",
            "--secret",
            "x",
        ],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    assert!(cli(&db.url, &["nas", "list"]).contains("10.0.0.1"));
    assert!(
        !cli(&db.url, &["nas", "list"]).contains(" x "),
        "secrets are not listed"
    );
}

/// An idle server sleeps: over three seconds it uses well under a second of CPU. (The index
/// refresher once spun on SQLite, burning most of a core while nothing happened.)
#[test]
fn idle_server_stays_idle() {
    let db = provisioned(Backend::Sqlite);
    let server = Server::start(&db.url);
    let cpu_seconds = || {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", server.pid())).unwrap();
        // Fields after the `(comm)`: utime and stime are the 12th and 13th.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<u64> = rest
            .split_whitespace()
            .skip(11)
            .take(2)
            .map(|v| v.parse().unwrap())
            .collect();
        let tck: f64 = String::from_utf8(
            std::process::Command::new("getconf")
                .arg("CLK_TCK")
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap()
        .trim()
        .parse()
        .unwrap();
        (f[0] + f[1]) as f64 / tck
    };
    let before = cpu_seconds();
    std::thread::sleep(Duration::from_secs(3));
    let used = cpu_seconds() - before;
    assert!(used < 0.5, "idle server used {used:.2} s of CPU in 3 s");
}
