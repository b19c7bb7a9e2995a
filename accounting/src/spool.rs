//! The local accounting spool: where acknowledged batches wait while the database is away.
//!
//! A batch the journal cannot take (the database is down, or slower than
//! `spool_after`) is appended to a segment file in the spool directory and fsynced before
//! its Accounting-Responses leave; from then on, every new batch joins it there, behind
//! the ones before it, until a replay has moved them all into the journal. The replayer
//! takes the segments oldest first, inserts each one's batches into the journal under their
//! original keys in one transaction (a key already there is skipped), deletes the segment,
//! and hands the batches to the fold. Should the process die between that commit and the
//! delete, the next replay inserts the batches again and the fold applies them again, which
//! the merge rules make harmless: the database ends up holding each record once.
//!
//! A segment is a sequence of frames: `len: u32 LE`, `crc32c(payload): u32 LE`, then the
//! payload (`writer: i64 LE`, `batch: i64 LE`, the encoded journal entry). A frame cut
//! short or failing its checksum ends the segment: it was being written when the process
//! died and was never acknowledged. The directory is locked (`lock`), so two processes never
//! share a spool.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use edge_shared::store::JournalKey;

const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);
const HEADER: usize = 8;
const KEY: usize = 16;
/// A frame larger than this is not ours (a batch of 2,048 records is well under 2 MiB).
const MAX_FRAME: usize = 256 << 20;
/// A segment past this size is closed and a new one begun.
const SEGMENT_BYTES: u64 = 64 << 20;

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool").field("dir", &self.dir).finish()
    }
}

pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    _lock: File,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// The segment being appended to.
    current: Option<Current>,
    /// Segments no longer appended to, oldest first, with their batches and bytes.
    closed: VecDeque<Segment>,
    next_seq: u64,
    batches: u64,
    bytes: u64,
}

struct Current {
    seq: u64,
    file: File,
    len: u64,
    batches: u64,
}

#[derive(Debug, Clone, Copy)]
pub struct Segment {
    pub seq: u64,
    pub batches: u64,
    pub bytes: u64,
}

/// One spooled batch: its journal key and encoded entry.
pub type Batch = (JournalKey, Vec<u8>);

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("the spool is full ({0} bytes)")]
    Full(u64),
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl Spool {
    /// Opens (creating) the spool directory, takes its lock, and counts what an earlier run
    /// left in it, cutting off a frame that was being written when that run died.
    pub fn open(dir: &Path, max_bytes: u64) -> io::Result<Spool> {
        std::fs::create_dir_all(dir)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))?;
        lock.try_lock().map_err(|_| {
            io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("{} is in use by another process", dir.display()),
            )
        })?;
        let mut seqs: Vec<u64> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_suffix(".seg")?.parse().ok()
            })
            .collect();
        seqs.sort_unstable();
        let mut inner = Inner::default();
        for seq in seqs {
            let path = segment_path(dir, seq);
            let (frames, good) = scan(&std::fs::read(&path)?);
            if frames == 0 {
                std::fs::remove_file(&path)?;
                continue;
            }
            // Drop a torn tail so that later appends (there are none: old segments are
            // only read) and reads agree on where the segment ends.
            OpenOptions::new().write(true).open(&path)?.set_len(good)?;
            inner.closed.push_back(Segment {
                seq,
                batches: frames,
                bytes: good,
            });
            inner.batches += frames;
            inner.bytes += good;
            inner.next_seq = seq + 1;
        }
        sync_dir(dir)?;
        Ok(Spool {
            dir: dir.to_path_buf(),
            max_bytes,
            _lock: lock,
            inner: Mutex::new(inner),
        })
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Batches and bytes waiting.
    pub fn pending(&self) -> (u64, u64) {
        let i = self.inner();
        (i.batches, i.bytes)
    }

    /// Whether anything waits: new batches must then join the spool, behind it.
    pub fn holding(&self) -> bool {
        self.inner().batches > 0
    }

    /// Appends a batch and fsyncs it. Blocking: call from a blocking thread.
    pub fn append(&self, key: JournalKey, entry: &[u8]) -> Result<(), SpoolError> {
        let frame = encode_frame(key, entry);
        let mut i = self.inner();
        if i.bytes + frame.len() as u64 > self.max_bytes {
            metrics::counter!(edge_shared::metric_names::ACCT_SPOOL_FULL_TOTAL).increment(1);
            return Err(SpoolError::Full(self.max_bytes));
        }
        if i.current.is_none() {
            let seq = i.next_seq;
            i.next_seq += 1;
            let file = OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(segment_path(&self.dir, seq))?;
            sync_dir(&self.dir)?;
            i.current = Some(Current {
                seq,
                file,
                len: 0,
                batches: 0,
            });
        }
        let cur = i.current.as_mut().expect("just opened");
        if let Err(e) = cur
            .file
            .write_all(&frame)
            .and_then(|_| cur.file.sync_data())
        {
            // Whatever part of the frame reached the file fails its checksum at the next
            // read; begin a fresh segment rather than write behind it.
            close_current(&mut i);
            return Err(e.into());
        }
        cur.len += frame.len() as u64;
        cur.batches += 1;
        let full = cur.len >= SEGMENT_BYTES;
        i.batches += 1;
        i.bytes += frame.len() as u64;
        if full {
            close_current(&mut i);
        }
        Ok(())
    }

    /// The closed segments, oldest first: what a replay should move into the journal. The
    /// segment being appended to is closed only once the others are gone, so that retries
    /// during a long outage do not cut the spool into ever more files.
    pub fn segments(&self) -> Vec<Segment> {
        let mut i = self.inner();
        if i.closed.is_empty() {
            close_current(&mut i);
        }
        i.closed.iter().copied().collect()
    }

    /// The batches of a closed segment, in the order they were spooled.
    pub fn read(&self, seg: &Segment) -> io::Result<Vec<Batch>> {
        let mut bytes = Vec::new();
        File::open(segment_path(&self.dir, seg.seq))?.read_to_end(&mut bytes)?;
        Ok(decode_segment(&bytes))
    }

    /// Deletes a segment whose batches are in the journal.
    pub fn remove(&self, seg: &Segment) -> io::Result<()> {
        std::fs::remove_file(segment_path(&self.dir, seg.seq))?;
        sync_dir(&self.dir)?;
        let mut i = self.inner();
        i.closed.retain(|s| s.seq != seg.seq);
        i.batches -= seg.batches;
        i.bytes -= seg.bytes;
        Ok(())
    }
}

/// Moves the segment being appended to among the closed ones (an empty one too: its file
/// exists, and the replay removes it).
fn close_current(i: &mut Inner) {
    if let Some(c) = i.current.take() {
        i.closed.push_back(Segment {
            seq: c.seq,
            batches: c.batches,
            bytes: c.len,
        });
    }
}

fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:016}.seg"))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The payload of the frame at `at` and where the next one starts; `None` at the end or
/// at a frame cut short or corrupt.
fn frame_at(bytes: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let header = bytes.get(at..at + HEADER)?;
    let len = u32::from_le_bytes(header[..4].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(header[4..].try_into().ok()?);
    if !(KEY..=MAX_FRAME).contains(&len) {
        return None;
    }
    let payload = bytes.get(at + HEADER..at + HEADER + len)?;
    (CRC.checksum(payload) == crc).then_some((payload, at + HEADER + len))
}

/// The batches of a segment file's bytes, up to the first frame cut short or corrupt. The
/// bytes come from disk, so nothing is trusted: every length is checked.
pub fn decode_segment(bytes: &[u8]) -> Vec<Batch> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some((payload, next)) = frame_at(bytes, at) {
        let writer = i64::from_le_bytes(payload[..8].try_into().expect("8 bytes"));
        let batch = i64::from_le_bytes(payload[8..16].try_into().expect("8 bytes"));
        out.push((JournalKey { writer, batch }, payload[KEY..].to_vec()));
        at = next;
    }
    out
}

/// The bytes of one frame holding a batch (what [`Spool::append`] writes).
pub fn encode_frame(key: JournalKey, entry: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(HEADER + KEY + entry.len());
    frame.extend_from_slice(&((KEY + entry.len()) as u32).to_le_bytes());
    frame.extend_from_slice(&[0; 4]);
    frame.extend_from_slice(&key.writer.to_le_bytes());
    frame.extend_from_slice(&key.batch.to_le_bytes());
    frame.extend_from_slice(entry);
    let crc = CRC.checksum(&frame[HEADER..]);
    frame[4..8].copy_from_slice(&crc.to_le_bytes());
    frame
}

/// Frames in a segment and the length of the part that holds them.
fn scan(bytes: &[u8]) -> (u64, u64) {
    let (mut frames, mut at) = (0, 0);
    while let Some((_, next)) = frame_at(bytes, at) {
        frames += 1;
        at = next;
    }
    (frames, at as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(batch: i64) -> JournalKey {
        JournalKey { writer: 7, batch }
    }

    #[test]
    fn batches_come_back_in_order_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Spool::open(dir.path(), 1 << 30).unwrap();
            assert!(!s.holding());
            s.append(key(1), b"one").unwrap();
            s.append(key(2), b"two").unwrap();
            assert_eq!(s.pending().0, 2);
            // A second process cannot share the directory.
            assert!(Spool::open(dir.path(), 1 << 30).is_err());
        }
        let s = Spool::open(dir.path(), 1 << 30).unwrap();
        assert!(s.holding());
        s.append(key(3), b"three").unwrap();
        // The one being appended to stays open while an older segment waits.
        assert_eq!(s.segments().len(), 1);
        let mut all: Vec<Batch> = Vec::new();
        let mut rounds = 0;
        while s.holding() {
            for g in s.segments() {
                all.extend(s.read(&g).unwrap());
                s.remove(&g).unwrap();
            }
            rounds += 1;
        }
        assert_eq!(rounds, 2);
        assert_eq!(
            all.iter()
                .map(|(k, e)| (k.batch, e.as_slice()))
                .collect::<Vec<_>>(),
            vec![(1, &b"one"[..]), (2, b"two"), (3, b"three")]
        );
        assert_eq!(s.pending(), (0, 0));
        assert!(!s.holding());
    }

    #[test]
    fn a_torn_tail_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Spool::open(dir.path(), 1 << 30).unwrap();
            s.append(key(1), b"kept").unwrap();
            s.append(key(2), b"torn").unwrap();
        }
        let path = segment_path(dir.path(), 0);
        let len = std::fs::metadata(&path).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 2)
            .unwrap();
        let s = Spool::open(dir.path(), 1 << 30).unwrap();
        assert_eq!(s.pending().0, 1);
        let segs = s.segments();
        let got = s.read(&segs[0]).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1, b"kept");
    }

    #[test]
    fn a_full_spool_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let s = Spool::open(dir.path(), 64).unwrap();
        s.append(key(1), &[0; 16]).unwrap();
        assert!(matches!(
            s.append(key(2), &[0; 32]),
            Err(SpoolError::Full(64))
        ));
    }

    #[test]
    fn garbage_is_not_a_frame() {
        assert_eq!(scan(&[0xff; 64]), (0, 0));
        assert_eq!(scan(&[]), (0, 0));
    }
}
