//! One pool's allocator: the blocks this instance owns, a 16-byte slot each, and who had
//! which slot last. Owned by the manager behind a mutex; no I/O.

use std::collections::{HashMap, HashSet};

use foldhash::fast::RandomState;

pub const FREE: u8 = 0;
pub const OFFERED: u8 = 1;
pub const BOUND: u8 = 2;
pub const RELEASED: u8 = 3;

/// One address (or prefix). `user` is a hash of the username; `expires` is Unix seconds
/// (offered: until the session must start; bound: until it is stale; released: until the
/// slot stops being kept for `user`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Slot {
    pub user: u64,
    pub expires: u32,
    pub state: u8,
}

impl Slot {
    /// Held at `now`: offered or bound and not expired.
    pub fn held(&self, now: u32) -> bool {
        matches!(self.state, OFFERED | BOUND) && self.expires > now
    }

    /// Kept for its last subscriber at `now`.
    pub fn kept(&self, now: u32) -> bool {
        self.state == RELEASED && self.expires > now
    }

    /// Packs the slot, to put back with [`PoolAlloc::restore`].
    pub fn pack(&self) -> u128 {
        u128::from(self.user) << 64 | u128::from(self.expires) << 8 | u128::from(self.state)
    }

    pub fn unpack(v: u128) -> Slot {
        Slot {
            user: (v >> 64) as u64,
            expires: (v >> 8) as u32,
            state: v as u8,
        }
    }
}

struct Block {
    no: u32,
    slots: Box<[Slot]>,
}

/// What became of an accounting report on a slot this instance owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// The subscriber's own lease: bound, extended or released.
    Applied,
    /// Nobody held it: now bound to the reporting subscriber.
    Adopted,
    /// Another subscriber holds it: left alone.
    Conflict,
    /// A Stop for a slot nobody holds: nothing to do.
    Ignored,
}

pub struct PoolAlloc {
    len: u64,
    block_size: u32,
    blocks: Vec<Block>,
    by_no: HashMap<u32, usize, RandomState>,
    /// Excluded (reserved) slots and static addresses: never handed out.
    pub reserved: HashSet<u64, RandomState>,
    /// The slot each subscriber had last, keyed by its full 64-bit hash, as two `u32`s so an
    /// entry is 12 bytes, not 16. (A 32-bit key saved more, but two subscribers whose keys
    /// collided took turns evicting each other's entry, and each then got a new address on
    /// every request, leaking an offer each time.)
    sticky: HashMap<[u32; 2], u32, RandomState>,
    /// Next-fit position: block index, offset.
    cursor: (usize, usize),
    /// Free owned slots as last counted, less those allocated since: below `low_water`,
    /// the manager claims more blocks at once.
    pub free_hint: u64,
    pub low_water: u64,
    /// New holds (not re-offers) asked for since the pool was loaded, met or not (the
    /// manager counts a request its blocks could not meet): its measure of how fast the
    /// pool is being drawn on.
    pub new_holds: u64,
    owned_slots: usize,
}

fn key(user: u64) -> [u32; 2] {
    [user as u32, (user >> 32) as u32]
}

impl PoolAlloc {
    pub fn new(len: u64, block_size: u32) -> PoolAlloc {
        PoolAlloc {
            len,
            block_size: block_size.max(1),
            blocks: Vec::new(),
            by_no: HashMap::default(),
            reserved: HashSet::default(),
            sticky: HashMap::default(),
            cursor: (0, 0),
            free_hint: 0,
            low_water: 0,
            new_holds: 0,
            owned_slots: 0,
        }
    }

    pub fn block_size(&self) -> u32 {
        self.block_size
    }

    /// How many blocks the pool's slots make.
    pub fn block_count(&self) -> u32 {
        self.len.div_ceil(u64::from(self.block_size)) as u32
    }

    /// Slots `from..to` of a block.
    pub fn block_range(&self, no: u32) -> (u64, u64) {
        let from = u64::from(no) * u64::from(self.block_size);
        (from, (from + u64::from(self.block_size)).min(self.len))
    }

    pub fn owns(&self, no: u32) -> bool {
        self.by_no.contains_key(&no)
    }

    pub fn owned_blocks(&self) -> Vec<u32> {
        self.blocks.iter().map(|b| b.no).collect()
    }

    /// Takes a block into this instance, empty; fill it with [`PoolAlloc::load`].
    pub fn add_block(&mut self, no: u32) {
        if self.owns(no) || no >= self.block_count() {
            return;
        }
        let (from, to) = self.block_range(no);
        // Room for a subscriber per owned slot, made as blocks arrive rather than by
        // doubling as leases do: the map's size follows what this instance owns.
        self.owned_slots += (to - from) as usize;
        let owned = self.owned_slots;
        if self.sticky.capacity() < owned {
            self.sticky.reserve(owned - self.sticky.len());
        }
        self.by_no.insert(no, self.blocks.len());
        self.blocks.push(Block {
            no,
            slots: vec![Slot::default(); (to - from) as usize].into_boxed_slice(),
        });
    }

    /// Gives a block up.
    pub fn remove_block(&mut self, no: u32) {
        let Some(i) = self.by_no.remove(&no) else {
            return;
        };
        let b = self.blocks.swap_remove(i);
        self.owned_slots -= b.slots.len();
        if let Some(moved) = self.blocks.get(i) {
            self.by_no.insert(moved.no, i);
        }
        let (from, to) = self.block_range(b.no);
        self.sticky
            .retain(|_, s| u64::from(*s) < from || u64::from(*s) >= to);
        self.cursor = (0, 0);
    }

    fn at(&self, slot: u64) -> Option<&Slot> {
        let no = (slot / u64::from(self.block_size)) as u32;
        let b = &self.blocks[*self.by_no.get(&no)?];
        b.slots.get((slot % u64::from(self.block_size)) as usize)
    }

    fn at_mut(&mut self, slot: u64) -> Option<&mut Slot> {
        let no = (slot / u64::from(self.block_size)) as u32;
        let i = *self.by_no.get(&no)?;
        self.blocks[i]
            .slots
            .get_mut((slot % u64::from(self.block_size)) as usize)
    }

    pub fn get(&self, slot: u64) -> Option<Slot> {
        self.at(slot).copied()
    }

    /// Sets a slot of an owned block as stored or as reported (loading, syncing).
    pub fn load(&mut self, slot: u64, s: Slot) -> bool {
        let Some(cur) = self.at_mut(slot) else {
            return false;
        };
        *cur = s;
        if s.state != FREE {
            self.sticky.insert(key(s.user), slot as u32);
        }
        true
    }

    /// An address for `user`: the one it had last when that is free (or already offered
    /// to it), else the next free one, else one kept for somebody else; `None` when every
    /// owned slot is held or reserved. Returns the slot and what it held before.
    pub fn allocate(&mut self, user: u64, now: u32, offer_until: u32) -> Option<(u64, Slot)> {
        let chosen = self
            .sticky_slot(user, now)
            .or_else(|| self.scan(user, now))?;
        let prev = self.get(chosen)?;
        if prev.user != user
            && prev.state != FREE
            && self.sticky.get(&key(prev.user)) == Some(&(chosen as u32))
        {
            self.sticky.remove(&key(prev.user));
        }
        let s = Slot {
            user,
            expires: offer_until,
            state: OFFERED,
        };
        self.load(chosen, s);
        // A second offer of a slot this subscriber already holds takes nothing from the free
        // count (counting it made every sticky re-offer look like a run on the pool).
        if !prev.held(now) {
            self.free_hint = self.free_hint.saturating_sub(1);
            self.new_holds += 1;
        }
        Some((chosen, prev))
    }

    fn sticky_slot(&self, user: u64, now: u32) -> Option<u64> {
        let slot = u64::from(*self.sticky.get(&key(user))?);
        if self.reserved.contains(&slot) {
            return None;
        }
        let s = self.at(slot)?;
        let mine = s.user == user;
        if !mine && s.state != FREE {
            // Another subscriber's slot now.
            return None;
        }
        let usable = match s.state {
            FREE => true,
            // Offered to this subscriber already (a second Access-Request before the
            // session started): the same address again.
            OFFERED => mine || s.expires <= now,
            // A live session holds it: the new one needs another address.
            BOUND => s.expires <= now,
            _ => mine || s.expires <= now,
        };
        usable.then_some(slot)
    }

    /// Next fit from the cursor: a free slot, else (second pass) one kept for someone else.
    fn scan(&mut self, user: u64, now: u32) -> Option<u64> {
        if self.blocks.is_empty() {
            return None;
        }
        for steal in [false, true] {
            let (mut bi, mut off) = self.cursor;
            if bi >= self.blocks.len() {
                (bi, off) = (0, 0);
            }
            let total: usize = self.blocks.iter().map(|b| b.slots.len()).sum();
            let mut checked = 0;
            while checked < total {
                let b = &self.blocks[bi];
                if off >= b.slots.len() {
                    bi = (bi + 1) % self.blocks.len();
                    off = 0;
                    continue;
                }
                checked += 1;
                let s = &b.slots[off];
                let slot = u64::from(b.no) * u64::from(self.block_size) + off as u64;
                let free = !s.held(now) && (steal || !s.kept(now) || s.user == user);
                off += 1;
                if free && !self.reserved.contains(&slot) {
                    self.cursor = (bi, off);
                    return Some(slot);
                }
            }
        }
        None
    }

    /// Puts a slot back as it was (an Access-Accept that did not go out).
    pub fn restore(&mut self, slot: u64, user: u64, prev: Slot) {
        if self
            .get(slot)
            .is_some_and(|s| s.user == user && s.state == OFFERED)
        {
            self.load(slot, prev);
            if prev.state == FREE || prev.user != user {
                if self.sticky.get(&key(user)) == Some(&(slot as u32)) {
                    self.sticky.remove(&key(user));
                }
                if prev.state != FREE {
                    self.sticky.insert(key(prev.user), slot as u32);
                }
            }
        }
    }

    /// An accounting Start or Interim-Update for `slot` by `user`: bound until `until`.
    pub fn bind(&mut self, slot: u64, user: u64, now: u32, until: u32) -> Report {
        let Some(s) = self.get(slot) else {
            return Report::Ignored;
        };
        let report = if s.user == user && s.state != FREE {
            Report::Applied
        } else if s.held(now) {
            return Report::Conflict;
        } else {
            Report::Adopted
        };
        self.load(
            slot,
            Slot {
                user,
                expires: until,
                state: BOUND,
            },
        );
        report
    }

    /// An accounting Stop (or a session closed by the reaper or a NAS restart): free, kept
    /// for `user` until `keep_until`.
    pub fn release(&mut self, slot: u64, user: u64, now: u32, keep_until: u32) -> Report {
        let Some(s) = self.get(slot) else {
            return Report::Ignored;
        };
        if s.user != user {
            return if s.held(now) {
                Report::Conflict
            } else {
                Report::Ignored
            };
        }
        if s.state == FREE || s.state == RELEASED {
            return Report::Ignored;
        }
        self.load(
            slot,
            Slot {
                user,
                expires: keep_until,
                state: RELEASED,
            },
        );
        Report::Applied
    }

    /// Owned slots, and how many of them could be handed out at `now`.
    pub fn usage(&self, now: u32) -> (u64, u64) {
        let mut owned = 0;
        let mut free = 0;
        for b in &self.blocks {
            owned += b.slots.len() as u64;
            let base = u64::from(b.no) * u64::from(self.block_size);
            free += b
                .slots
                .iter()
                .enumerate()
                .filter(|(i, s)| !s.held(now) && !self.reserved.contains(&(base + *i as u64)))
                .count() as u64;
        }
        (owned, free)
    }

    /// Owned blocks where nothing is held or kept at `now`: candidates to give back.
    pub fn idle_blocks(&self, now: u32) -> Vec<u32> {
        self.blocks
            .iter()
            .filter(|b| b.slots.iter().all(|s| !s.held(now) && !s.kept(now)))
            .map(|b| b.no)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(len: u64, bs: u32, blocks: &[u32]) -> PoolAlloc {
        let mut p = PoolAlloc::new(len, bs);
        for b in blocks {
            p.add_block(*b);
        }
        p
    }

    #[test]
    fn allocates_each_slot_once_until_exhausted() {
        let mut p = pool(10, 4, &[0, 1, 2]);
        p.reserved.insert(5);
        let mut got = HashSet::new();
        for u in 0..9 {
            let (slot, prev) = p.allocate(u, 100, 200).unwrap();
            assert_eq!(prev.state, FREE);
            assert!(got.insert(slot), "slot {slot} twice");
        }
        assert!(!got.contains(&5));
        assert_eq!(p.allocate(99, 100, 200), None);
        // Once the offers expire, their slots are free again.
        assert!(p.allocate(99, 200, 300).is_some());
    }

    #[test]
    fn subscribers_whose_hashes_share_32_bits_keep_their_own_addresses() {
        let mut p = pool(64, 64, &[0]);
        // Equal when folded to 32 bits, as the sticky map's key once was.
        let (u1, u2) = (1u64 << 32, 1u64);
        let a = p.allocate(u1, 0, 1000).unwrap().0;
        let b = p.allocate(u2, 0, 1000).unwrap().0;
        assert_ne!(a, b);
        for t in 1..5 {
            assert_eq!(p.allocate(u1, t, 1000).unwrap().0, a);
            assert_eq!(p.allocate(u2, t, 1000).unwrap().0, b);
        }
    }

    #[test]
    fn only_new_holds_take_from_the_free_count() {
        let mut p = pool(8, 8, &[0]);
        p.free_hint = 8;
        let (a, _) = p.allocate(1, 0, 10).unwrap();
        assert_eq!(p.free_hint, 7);
        // The same subscriber asking again while its offer stands: nothing more is used.
        for t in 1..5 {
            assert_eq!(p.allocate(1, t, 10 + t).unwrap().0, a);
        }
        assert_eq!(p.free_hint, 7);
        // Once the offer has lapsed, offering it again takes a free slot again.
        assert_eq!(p.allocate(1, 20, 30).unwrap().0, a);
        assert_eq!(p.free_hint, 6);
    }

    #[test]
    fn a_lapsed_offer_behind_the_cursor_is_found() {
        let mut p = pool(2, 4, &[0]);
        let (a, _) = p.allocate(1, 0, 100).unwrap();
        p.bind(a, 1, 0, 1000);
        p.allocate(2, 0, 5).unwrap();
        assert_eq!(p.allocate(3, 1, 10), None);
        assert!(p.allocate(3, 6, 10).is_some());
    }

    #[test]
    fn only_owned_blocks_are_used() {
        let mut p = pool(16, 4, &[2]);
        let slots: Vec<u64> = (0..4).map(|u| p.allocate(u, 0, 10).unwrap().0).collect();
        assert!(slots.iter().all(|s| (8..12).contains(s)), "{slots:?}");
        assert_eq!(p.allocate(9, 0, 10), None);
    }

    #[test]
    fn sticky_gives_the_last_address_back_while_it_is_free() {
        let mut p = pool(8, 8, &[0]);
        let (a, _) = p.allocate(1, 0, 10).unwrap();
        // A second Access-Request before the session starts: the same offer.
        assert_eq!(p.allocate(1, 1, 10).unwrap().0, a);
        assert_eq!(p.bind(a, 1, 2, 100), Report::Applied);
        // With a live session on it, another session of the same subscriber gets another.
        let (b, _) = p.allocate(1, 3, 10).unwrap();
        assert_ne!(a, b);
        p.restore(b, 1, Slot::default());
        assert_eq!(p.release(a, 1, 3, 50), Report::Applied);
        // Kept for subscriber 1: others get other slots while free ones remain.
        for u in 2..8 {
            assert_ne!(p.allocate(u, 4, 10).unwrap().0, a);
        }
        assert_eq!(p.allocate(1, 5, 10).unwrap().0, a);
    }

    #[test]
    fn kept_slots_are_taken_only_when_nothing_else_is_free() {
        let mut p = pool(2, 2, &[0]);
        let (a, _) = p.allocate(1, 0, 10).unwrap();
        p.bind(a, 1, 0, 100);
        p.release(a, 1, 0, 1000);
        let (b, _) = p.allocate(2, 1, 10).unwrap();
        assert_ne!(a, b);
        // Nothing free but the slot kept for 1: 3 takes it rather than be refused.
        assert_eq!(p.allocate(3, 2, 10).unwrap().0, a);
        // And 1 no longer gets it back.
        assert_eq!(p.allocate(1, 3, 10), None);
    }

    #[test]
    fn reports_of_other_subscribers_are_conflicts() {
        let mut p = pool(4, 4, &[0]);
        let (a, _) = p.allocate(1, 0, 10).unwrap();
        assert_eq!(p.bind(a, 2, 1, 100), Report::Conflict);
        assert_eq!(p.get(a).unwrap().user, 1);
        assert_eq!(p.release(a, 2, 1, 100), Report::Conflict);
        // An address nobody was given, reported in use: adopted, so it is not handed out.
        assert_eq!(p.bind(3, 7, 1, 100), Report::Adopted);
        assert!(p.get(3).unwrap().held(2));
    }

    #[test]
    fn restore_undoes_an_offer() {
        let mut p = pool(4, 4, &[0]);
        let (a, prev) = p.allocate(1, 0, 10).unwrap();
        p.restore(a, 1, prev);
        assert_eq!(p.get(a).unwrap(), Slot::default());
        assert_eq!(
            Slot::unpack(
                Slot {
                    user: 7,
                    expires: 9,
                    state: BOUND
                }
                .pack()
            )
            .user,
            7
        );
    }

    #[test]
    fn a_slot_is_sixteen_bytes() {
        assert_eq!(std::mem::size_of::<Slot>(), 16);
    }
}
