//! Member -> score lookup for a large sorted set, without a second copy of
//! the member: each slot holds 32 bits of the member's hash and the score's
//! bits (12 bytes). A candidate slot is confirmed by finding (score, member)
//! in the tree, so hash collisions cost a tree lookup, never a wrong answer.
//! Two members with equal hash bits and equal scores have identical slots,
//! so removing "either" slot leaves the multiset correct.

use std::sync::LazyLock;

use hashbrown::HashTable;

#[derive(Clone, Copy, Debug)]
struct Slot {
    h: u32,
    score: [u32; 2],
}

impl Slot {
    #[inline]
    fn score(&self) -> f64 {
        f64::from_bits((self.score[0] as u64) | ((self.score[1] as u64) << 32))
    }
}

/// One seed per process (members' hashes must agree across shard threads:
/// sets travel between shards), random so members cannot be chosen to
/// collide.
static SEED: LazyLock<u64> = LazyLock::new(rand::random);

#[inline]
pub fn member_hash(member: &[u8]) -> u32 {
    use std::hash::BuildHasher;
    (foldhash::fast::FixedState::with_seed(*SEED).hash_one(member) >> 32) as u32
}

/// Spreads 32 stored bits over the 64 hashbrown reads (its control byte
/// uses the top bits, its bucket index the low ones).
#[inline]
fn spread(h: u32) -> u64 {
    (h as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

#[derive(Clone, Debug, Default)]
pub struct Index {
    t: HashTable<Slot>,
}

impl Index {
    pub fn with_capacity(n: usize) -> Index {
        Index {
            t: HashTable::with_capacity(n),
        }
    }

    /// The score of the member hashed `h` for which `is_member(score)`
    /// confirms (the caller checks the tree).
    #[inline]
    pub fn find(&self, h: u32, mut is_member: impl FnMut(f64) -> bool) -> Option<f64> {
        let mut found = None;
        // `find` stops at the first slot the closure accepts.
        self.t.find(spread(h), |s| {
            if s.h == h && is_member(s.score()) {
                found = Some(s.score());
                true
            } else {
                false
            }
        })?;
        found
    }

    pub fn insert(&mut self, h: u32, score: f64) {
        let b = score.to_bits();
        let slot = Slot {
            h,
            score: [b as u32, (b >> 32) as u32],
        };
        self.t.insert_unique(spread(h), slot, |s| spread(s.h));
    }

    /// Removes one slot (h, score); true if there was one.
    pub fn remove(&mut self, h: u32, score: f64) -> bool {
        let b = score.to_bits();
        match self
            .t
            .find_entry(spread(h), |s| s.h == h && s.score().to_bits() == b)
        {
            Ok(e) => {
                e.remove();
                true
            }
            Err(_) => false,
        }
    }

    /// Changes the score of slot (h, old) to `new`.
    pub fn set_score(&mut self, h: u32, old: f64, new: f64) {
        let ob = old.to_bits();
        if let Some(s) = self
            .t
            .find_mut(spread(h), |s| s.h == h && s.score().to_bits() == ob)
        {
            let b = new.to_bits();
            s.score = [b as u32, (b >> 32) as u32];
        }
    }

    pub fn len(&self) -> usize {
        self.t.len()
    }
    pub fn is_empty(&self) -> bool {
        self.t.is_empty()
    }

    pub fn heap_bytes(&self) -> usize {
        self.t.capacity() * (std::mem::size_of::<Slot>() + 1)
    }
}
