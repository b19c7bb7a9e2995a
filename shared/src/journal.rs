//! The accounting journal's entry format: a batch of accounting events as bytes.
//!
//! The writer makes a batch durable by storing it as one journal row before it answers the
//! NAS, and folds it into the `sessions` table afterwards (see `docs/accounting.md`). A row
//! written by one build may be folded by another after a crash or an upgrade, and its bytes
//! come back from the database, so [`decode`] trusts nothing: every length is checked and
//! anything malformed is an error, never a panic.
//!
//! Layout (integers little-endian):
//!
//! ```text
//! entry   = version:u8 (1)  count:u32  event*count
//! event   = 1 column*35                          session report, columns in COLUMNS order
//!         | 2 text(nas_ip_address) i64(at)        NAS restart
//!         | 3 text(unique_id) i64(last_seen)      reap
//!         | 4 i64(pool) i64(slot) text(address) text(username) u8(state)
//!             text(unique_id, empty: none) i64(expires_at) i64(at_us) text(instance)
//!                                                 lease change
//! column  = 0 | 1 text | 2 i64                   null, text, integer
//! text    = len:u32 utf8-bytes
//! ```

use crate::accounting::{AcctEvent, Kind, SessionRecord, Value, COLUMNS};
use crate::leases::{LeaseChange, LeaseState};
use crate::types::PoolId;

const VERSION: u8 = 1;
const SESSION: u8 = 1;
const NAS_RESTART: u8 = 2;
const REAP: u8 = 3;
const LEASE: u8 = 4;
const NULL: u8 = 0;
const TEXT: u8 = 1;
const INT: u8 = 2;

#[derive(Debug, PartialEq, Eq)]
pub struct JournalError(pub &'static str);

impl std::fmt::Display for JournalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed journal entry: {}", self.0)
    }
}

impl std::error::Error for JournalError {}

/// The bytes of one journal entry holding `events` in order.
pub fn encode(events: &[AcctEvent]) -> Vec<u8> {
    // Sized once: a batch is hundreds of kilobytes, and growing it by doubling copied it
    // over and over (a visible share of the accounting path's CPU).
    let mut out = Vec::with_capacity(5 + events.iter().map(encoded_len).sum::<usize>());
    out.push(VERSION);
    out.extend_from_slice(&(events.len() as u32).to_le_bytes());
    for ev in events {
        match ev {
            AcctEvent::Session(r) => {
                out.push(SESSION);
                for v in &r.values {
                    match v {
                        Value::Null => out.push(NULL),
                        Value::Text(s) => {
                            out.push(TEXT);
                            text(&mut out, s);
                        }
                        Value::Int(i) => {
                            out.push(INT);
                            out.extend_from_slice(&i.to_le_bytes());
                        }
                    }
                }
            }
            AcctEvent::NasRestart { nas_ip_address, at } => {
                out.push(NAS_RESTART);
                text(&mut out, nas_ip_address);
                out.extend_from_slice(&at.to_le_bytes());
            }
            AcctEvent::Reap {
                unique_id,
                last_seen,
            } => {
                out.push(REAP);
                text(&mut out, unique_id);
                out.extend_from_slice(&last_seen.to_le_bytes());
            }
            AcctEvent::Lease(l) => {
                out.push(LEASE);
                out.extend_from_slice(&l.pool.0.to_le_bytes());
                out.extend_from_slice(&l.slot.to_le_bytes());
                text(&mut out, &l.address);
                text(&mut out, &l.username);
                out.push(l.state.code());
                text(&mut out, l.unique_id.as_deref().unwrap_or(""));
                out.extend_from_slice(&l.expires_at.to_le_bytes());
                out.extend_from_slice(&l.at_us.to_le_bytes());
                text(&mut out, &l.instance);
            }
        }
    }
    out
}

/// The bytes `encode` writes for one event.
fn encoded_len(ev: &AcctEvent) -> usize {
    const TEXT_LEN: usize = 4;
    const INT: usize = 8;
    1 + match ev {
        AcctEvent::Session(r) => r
            .values
            .iter()
            .map(|v| match v {
                Value::Null => 1,
                Value::Text(s) => 1 + TEXT_LEN + s.len(),
                Value::Int(_) => 1 + INT,
            })
            .sum::<usize>(),
        AcctEvent::NasRestart { nas_ip_address, .. } => TEXT_LEN + nas_ip_address.len() + INT,
        AcctEvent::Reap { unique_id, .. } => TEXT_LEN + unique_id.len() + INT,
        AcctEvent::Lease(l) => {
            let texts = [
                l.address.len(),
                l.username.len(),
                l.unique_id.as_deref().map_or(0, str::len),
                l.instance.len(),
            ];
            4 * INT + 1 + texts.iter().map(|n| TEXT_LEN + n).sum::<usize>()
        }
    }
}

fn text(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// The number of events an entry says it holds (0 for bytes that are no entry); what a
/// replay counts without decoding.
pub fn count(bytes: &[u8]) -> usize {
    match bytes {
        [VERSION, a, b, c, d, ..] => u32::from_le_bytes([*a, *b, *c, *d]) as usize,
        _ => 0,
    }
}

/// The events of a journal entry, in the order they were written.
pub fn decode(bytes: &[u8]) -> Result<Vec<AcctEvent>, JournalError> {
    let mut r = Reader(bytes);
    if r.u8()? != VERSION {
        return Err(JournalError("unknown version"));
    }
    let count = r.u32()? as usize;
    // Every event takes at least 13 bytes: a count beyond what the bytes can hold is a lie.
    if count > r.0.len() / 13 {
        return Err(JournalError("event count exceeds the entry"));
    }
    let mut events = Vec::with_capacity(count);
    for _ in 0..count {
        events.push(match r.u8()? {
            SESSION => {
                let mut rec = SessionRecord::default();
                for (slot, col) in rec.values.iter_mut().zip(COLUMNS.iter()) {
                    *slot = match (r.u8()?, col.kind) {
                        (NULL, _) => Value::Null,
                        (TEXT, Kind::Text) => Value::Text(r.text()?),
                        (INT, Kind::Int) => Value::Int(r.i64()?),
                        _ => return Err(JournalError("column of the wrong kind")),
                    };
                }
                if rec.values[crate::accounting::c::ACCT_UNIQUE_ID]
                    .text()
                    .is_none()
                {
                    return Err(JournalError("session without a unique id"));
                }
                AcctEvent::Session(Box::new(rec))
            }
            NAS_RESTART => AcctEvent::NasRestart {
                nas_ip_address: r.text()?,
                at: r.i64()?,
            },
            REAP => AcctEvent::Reap {
                unique_id: r.text()?,
                last_seen: r.i64()?,
            },
            LEASE => AcctEvent::Lease(Box::new(LeaseChange {
                pool: PoolId(r.i64()?),
                slot: r.i64()?,
                address: r.text()?,
                username: r.text()?,
                state: LeaseState::from_code(r.u8()?).ok_or(JournalError("unknown lease state"))?,
                unique_id: Some(r.text()?).filter(|u| !u.is_empty()),
                expires_at: r.i64()?,
                at_us: r.i64()?,
                instance: r.text()?,
            })),
            _ => return Err(JournalError("unknown event")),
        });
    }
    if !r.0.is_empty() {
        return Err(JournalError("bytes after the last event"));
    }
    Ok(events)
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], JournalError> {
        if self.0.len() < n {
            return Err(JournalError("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, JournalError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, JournalError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i64(&mut self) -> Result<i64, JournalError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(i64::from_le_bytes(a))
    }

    fn text(&mut self) -> Result<String, JournalError> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| JournalError("text not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounting::c;

    fn events() -> Vec<AcctEvent> {
        let mut r = SessionRecord::default();
        r.set_text(c::ACCT_UNIQUE_ID, "0123abcd");
        r.set_text(c::USERNAME, "alïce");
        r.set_int(c::INPUT_OCTETS, (1 << 40) + 7);
        r.set_int(c::STOP, -1);
        vec![
            AcctEvent::Session(Box::new(r)),
            AcctEvent::NasRestart {
                nas_ip_address: "10.0.0.1".into(),
                at: 1_700_000_000,
            },
            AcctEvent::Reap {
                unique_id: "ffee".into(),
                last_seen: 42,
            },
            AcctEvent::Lease(Box::new(LeaseChange {
                pool: PoolId(3),
                slot: 1 << 33,
                address: "2001:db8:0:7::/64".into(),
                username: "bob".into(),
                state: LeaseState::Bound,
                unique_id: Some("u1".into()),
                expires_at: 1_700_000_600,
                at_us: 1_700_000_000_000_001,
                instance: "edge-a".into(),
            })),
        ]
    }

    #[test]
    fn entries_round_trip() {
        let ev = events();
        let bytes = encode(&ev);
        let back = decode(&bytes).unwrap();
        assert_eq!(format!("{back:?}"), format!("{ev:?}"));
        // The buffer is sized from `encoded_len`: exactly, never grown.
        assert_eq!(bytes.len(), 5 + ev.iter().map(encoded_len).sum::<usize>());
        assert_eq!(bytes.capacity(), bytes.len());
        assert!(decode(&encode(&[])).unwrap().is_empty());
    }

    #[test]
    fn every_truncation_and_corruption_is_an_error_not_a_panic() {
        let bytes = encode(&events());
        for n in 0..bytes.len() {
            assert!(decode(&bytes[..n]).is_err(), "prefix of {n} bytes");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            decode(&longer).unwrap_err(),
            JournalError("bytes after the last event")
        );
        let mut huge = bytes.clone();
        huge[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&huge).is_err());
        let mut wrong_kind = bytes;
        // The first column (acct_session_id, text) claims to be an integer.
        wrong_kind[6] = INT;
        assert!(decode(&wrong_kind).is_err());
    }
}
