//! Reading a userspace interface's peers over its UAPI socket (the cross-platform
//! configuration protocol: `get=1`, then `key=value` lines until `errno=`).
//!
//! wireguard-control reads it too, but prints every key it does not know to stdout, and
//! boringtun sends one (`own_public_key`) in every answer: that would break the JSON log
//! stream every few seconds. Writes still go through wireguard-control.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use wireguard_control::{AllowedIp, Key, PeerInfo};

/// Longest answer read: about 4,000 bytes per peer for 10,000 peers.
const MAX_ANSWER_BYTES: u64 = 64 << 20;

pub(crate) fn peers(socket: &Path) -> io::Result<Vec<PeerInfo>> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"get=1\n\n")?;
    parse(BufReader::new(io::Read::take(stream, MAX_ANSWER_BYTES)))
}

fn bad(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("UAPI answer: bad {what}"),
    )
}

fn key(hex_text: &str) -> io::Result<Key> {
    Key::from_hex(hex_text).map_err(|_| bad("key"))
}

/// Parses a `get=1` answer into peers (public for the fuzz target).
pub fn parse(reader: impl BufRead) -> io::Result<Vec<PeerInfo>> {
    let mut peers: Vec<PeerInfo> = Vec::new();
    for line in reader.lines() {
        let line = line?;
        if line.is_empty() {
            break;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(bad("line"));
        };
        if k == "errno" {
            return match v {
                "0" => Ok(peers),
                _ => Err(io::Error::other(format!("UAPI errno {v}"))),
            };
        }
        if k == "public_key" {
            peers.push(PeerInfo::from_public_key(key(v)?));
            continue;
        }
        // Keys before the first peer describe the interface; none is needed here.
        let Some(p) = peers.last_mut() else { continue };
        let number = || v.parse::<u64>().map_err(|_| bad(k));
        match k {
            "endpoint" => p.config.endpoint = v.parse().ok(),
            "persistent_keepalive_interval" => {
                p.config.persistent_keepalive_interval =
                    Some(u16::try_from(number()?).map_err(|_| bad(k))?).filter(|&s| s > 0)
            }
            "allowed_ip" => {
                let (a, c) = v.split_once('/').ok_or_else(|| bad(k))?;
                p.config.allowed_ips.push(AllowedIp {
                    address: a.parse().map_err(|_| bad(k))?,
                    cidr: c.parse().map_err(|_| bad(k))?,
                });
            }
            "rx_bytes" => p.stats.rx_bytes = number()?,
            "tx_bytes" => p.stats.tx_bytes = number()?,
            // Zero in both fields is "never". (boringtun sends an age here, not a time: a
            // handshake under a second ago has sec 0 and only nsec; see status.rs.)
            "last_handshake_time_sec" => {
                let s = number()?;
                p.stats.last_handshake_time = match s {
                    0 => None,
                    s => Some(
                        UNIX_EPOCH
                            .checked_add(Duration::from_secs(s))
                            .ok_or_else(|| bad(k))?,
                    ),
                };
            }
            "last_handshake_time_nsec" => {
                let ns = u32::try_from(number()?).map_err(|_| bad(k))?;
                if ns > 0 && ns < 1_000_000_000 {
                    let secs = p
                        .stats
                        .last_handshake_time
                        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                        .map_or(0, |d| d.as_secs());
                    p.stats.last_handshake_time = Some(
                        UNIX_EPOCH
                            .checked_add(Duration::new(secs, ns))
                            .ok_or_else(|| bad(k))?,
                    );
                }
            }
            _ => {}
        }
    }
    Err(io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "UAPI answer ended without errno",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_peers_and_skips_unknown_keys() {
        let k1 = "11".repeat(32);
        let k2 = "22".repeat(32);
        let text = format!(
            "own_public_key={k1}\nlisten_port=51820\npublic_key={k1}\nendpoint=198.18.0.2:4000\n\
             allowed_ip=10.0.0.2/32\npersistent_keepalive_interval=25\nrx_bytes=30\ntx_bytes=40\n\
             last_handshake_time_sec=7\nlast_handshake_time_nsec=1\nprotocol_version=1\n\
             public_key={k2}\npersistent_keepalive_interval=0\nlast_handshake_time_sec=0\n\
             last_handshake_time_nsec=5000\nerrno=0\n\n"
        );
        let peers = parse(text.as_bytes()).unwrap();
        assert_eq!(peers.len(), 2);
        let p = &peers[0];
        assert_eq!(p.config.endpoint, Some("198.18.0.2:4000".parse().unwrap()));
        assert_eq!(p.config.allowed_ips.len(), 1);
        assert_eq!(p.config.persistent_keepalive_interval, Some(25));
        assert_eq!((p.stats.rx_bytes, p.stats.tx_bytes), (30, 40));
        assert_eq!(
            p.stats.last_handshake_time,
            Some(UNIX_EPOCH + Duration::new(7, 1))
        );
        assert_eq!(peers[1].config.persistent_keepalive_interval, None);
        assert_eq!(
            peers[1].stats.last_handshake_time,
            Some(UNIX_EPOCH + Duration::new(0, 5000))
        );
    }

    #[test]
    fn errors_and_truncation_are_errors() {
        assert!(parse("errno=22\n\n".as_bytes()).is_err());
        assert!(parse("public_key=zz\nerrno=0\n".as_bytes()).is_err());
        assert!(parse(format!("public_key={}\n", "11".repeat(32)).as_bytes()).is_err());
        assert!(parse("".as_bytes()).is_err());
        // Found by the fuzzer: a time past what SystemTime holds.
        let huge = format!(
            "public_key={}\nlast_handshake_time_sec={}\nerrno=0\n",
            "11".repeat(32),
            u64::MAX
        );
        assert!(parse(huge.as_bytes()).is_err());
    }
}
