//! Sets, in three forms:
//!
//! * `Int`: Redis's "intset" (every member an integer, at most
//!   `set-max-intset-entries` of them): a sorted array, see `intset.rs`.
//! * `Small`: a listpack of members, for sets with a non-integer member
//!   while they are small (at most `SMALL_MAX_ENTRIES` members of at most
//!   `SMALL_MAX_VALUE` bytes). Redis 7.0 has no such encoding (7.2 added
//!   `listpack` sets), so OBJECT ENCODING reports it as "hashtable", what
//!   Redis 7.0 reports for the same commands; it exists because a table of
//!   three short members costs several times their bytes.
//! * `Big`: the chained table of `dict.rs` with empty values ("hashtable").
//! * `Ints`: sorted chunks of integers (`bigintset.rs`), what an intset
//!   becomes past `set-max-intset-entries`: Redis 7.0 reports a hash table
//!   there ("hashtable"), and the set becomes `Small`/`Big` on the first
//!   non-integer member, as Redis's would hold strings from then on.
//!
//! Like Redis, a set never converts back to a smaller form (SREM and SPOP
//! keep the encoding).

use super::bigintset::BigIntset;
use super::dict::Dict;
use super::intset::Intset;
use super::listpack::Listpack;
use crate::util::parse_i64_strict;

/// The internal compact form holds at most this many members...
pub const SMALL_MAX_ENTRIES: usize = 128;
/// ...of at most this many bytes.
pub const SMALL_MAX_VALUE: usize = 64;

/// Conversion threshold (`set-max-intset-entries`).
#[derive(Clone, Copy, Debug)]
pub struct SetLimits {
    pub max_intset_entries: usize,
}

impl Default for SetLimits {
    fn default() -> Self {
        SetLimits {
            max_intset_entries: 512,
        }
    }
}

/// One member as stored: an intset holds integers, not their bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Member<'a> {
    Int(i64),
    Str(&'a [u8]),
}

impl<'a> Member<'a> {
    /// The member's bytes, formatting an integer into `buf`.
    #[inline]
    pub fn bytes<'b>(&self, buf: &'b mut itoa::Buffer) -> &'b [u8]
    where
        'a: 'b,
    {
        match *self {
            Member::Int(i) => buf.format(i).as_bytes(),
            Member::Str(s) => s,
        }
    }

    pub fn to_vec(&self) -> Vec<u8> {
        self.bytes(&mut itoa::Buffer::new()).to_vec()
    }

    /// The member as an integer, if it is one in Redis's strict sense.
    #[inline]
    pub fn as_int(&self) -> Option<i64> {
        match *self {
            Member::Int(i) => Some(i),
            Member::Str(s) => parse_i64_strict(s),
        }
    }
}

#[derive(Clone, Debug)]
pub enum Set {
    Int(Intset),
    Small(Listpack),
    Big(Dict),
    Ints(BigIntset),
}

fn lp_find(lp: &Listpack, m: &[u8]) -> Option<usize> {
    let mut off = lp.first();
    while let Some(o) = off {
        if lp.get(o) == m {
            return Some(o);
        }
        off = lp.next(o);
    }
    None
}

/// Offsets of every entry of a listpack, in order.
fn lp_offsets(lp: &Listpack) -> Vec<usize> {
    let mut v = Vec::with_capacity(lp.len());
    let mut off = lp.first();
    while let Some(o) = off {
        v.push(o);
        off = lp.next(o);
    }
    v
}

/// Moves `count` distinct random indexes of `0..n` to the front of the
/// returned vector (a partial Fisher-Yates shuffle).
fn pick_indexes(n: usize, count: usize, rng: &mut impl rand::Rng) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    let count = count.min(n);
    for i in 0..count {
        let j = rng.random_range(i..n);
        idx.swap(i, j);
    }
    idx.truncate(count);
    idx
}

impl Set {
    /// An empty set in the form Redis's setTypeCreate picks for a set whose
    /// first member is `first`: an intset when it is an integer.
    pub fn new_for(first: &[u8]) -> Set {
        if parse_i64_strict(first).is_some() {
            Set::Int(Intset::new())
        } else if first.len() > SMALL_MAX_VALUE {
            Set::Big(Dict::new())
        } else {
            Set::Small(Listpack::new())
        }
    }

    /// An empty intset (the start of SINTERSTORE/SUNIONSTORE/SDIFFSTORE
    /// results in Redis: members convert it as they come).
    pub fn new_int() -> Set {
        Set::Int(Intset::new())
    }

    pub fn len(&self) -> usize {
        match self {
            Set::Int(s) => s.len(),
            Set::Small(lp) => lp.len(),
            Set::Big(d) => d.len(),
            Set::Ints(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Redis 7.0's OBJECT ENCODING name.
    pub fn encoding(&self) -> &'static str {
        match self {
            Set::Int(_) => "intset",
            Set::Small(_) | Set::Big(_) | Set::Ints(_) => "hashtable",
        }
    }

    pub fn contains(&self, m: &[u8]) -> bool {
        match self {
            Set::Int(s) => parse_i64_strict(m).is_some_and(|x| s.contains(x)),
            Set::Small(lp) => lp_find(lp, m).is_some(),
            Set::Big(d) => d.contains(m),
            Set::Ints(b) => parse_i64_strict(m).is_some_and(|x| b.contains(x)),
        }
    }

    /// Membership of a member of another set (no formatting when both are
    /// intsets).
    pub fn contains_member(&self, m: Member) -> bool {
        match (self, m) {
            (Set::Int(s), Member::Int(x)) => s.contains(x),
            (Set::Ints(b), Member::Int(x)) => b.contains(x),
            (_, Member::Str(b)) => self.contains(b),
            (_, Member::Int(x)) => self.contains(itoa::Buffer::new().format(x).as_bytes()),
        }
    }

    /// Leaves the intset form past the entry limit: the chunks of integers.
    fn convert_int_to_ints(&mut self) {
        if let Set::Int(is) = self {
            *self = Set::Ints(BigIntset::from_sorted(is.iter()));
        }
    }

    /// A non-integer member is coming: the members as strings, in the
    /// listpack when they (plus the one about to be added) fit it, else the
    /// table.
    fn convert_to_strings(&mut self) {
        let ints: Vec<i64> = match self {
            Set::Int(is) => is.iter().collect(),
            Set::Ints(b) => b.iter().copied().collect(),
            _ => return,
        };
        let mut b = itoa::Buffer::new();
        if ints.len() < SMALL_MAX_ENTRIES {
            let mut lp = Listpack::new();
            for &x in &ints {
                lp.push_back(b.format(x).as_bytes());
            }
            *self = Set::Small(lp);
        } else {
            let mut d = Dict::with_capacity(ints.len() + 1);
            for &x in &ints {
                d.insert(b.format(x).as_bytes(), b"");
            }
            *self = Set::Big(d);
        }
    }

    fn convert_small_to_big(&mut self) {
        let Set::Small(lp) = self else { return };
        let mut d = Dict::with_capacity(lp.len() + 1);
        for m in lp.iter() {
            d.insert(m, b"");
        }
        *self = Set::Big(d);
    }

    /// Adds a member; true when it is new.
    pub fn add(&mut self, m: &[u8], lim: SetLimits) -> bool {
        if let Set::Int(is) = self {
            match parse_i64_strict(m) {
                Some(x) => {
                    if !is.insert(x) {
                        return false;
                    }
                    if is.len() > lim.max_intset_entries {
                        self.convert_int_to_ints();
                    }
                    return true;
                }
                None => self.convert_to_strings(),
            }
        }
        if let Set::Ints(b) = self {
            match parse_i64_strict(m) {
                Some(x) => return b.insert(x),
                None => self.convert_to_strings(),
            }
        }
        if let Set::Small(lp) = self {
            if m.len() <= SMALL_MAX_VALUE {
                if lp_find(lp, m).is_some() {
                    return false;
                }
                lp.push_back(m);
                if lp.len() > SMALL_MAX_ENTRIES {
                    self.convert_small_to_big();
                }
                return true;
            }
            self.convert_small_to_big();
        }
        match self {
            Set::Big(d) => d.insert(m, b""),
            _ => unreachable!("converted above"),
        }
    }

    /// Adds a member of another set (no formatting intset to intset).
    pub fn add_member(&mut self, m: Member, lim: SetLimits) -> bool {
        match (&mut *self, m) {
            (Set::Int(is), Member::Int(x))
                if is.len() < lim.max_intset_entries || is.contains(x) =>
            {
                is.insert(x)
            }
            (Set::Ints(b), Member::Int(x)) => b.insert(x),
            (_, m) => self.add(m.bytes(&mut itoa::Buffer::new()), lim),
        }
    }

    /// Removes a member; true when it was there.
    pub fn remove(&mut self, m: &[u8]) -> bool {
        match self {
            Set::Int(s) => parse_i64_strict(m).is_some_and(|x| s.remove(x)),
            Set::Small(lp) => match lp_find(lp, m) {
                Some(o) => {
                    lp.delete_at(o);
                    true
                }
                None => false,
            },
            Set::Big(d) => d.remove(m),
            Set::Ints(b) => parse_i64_strict(m).is_some_and(|x| b.remove(x)),
        }
    }

    /// Members: ascending for an intset, insertion order for the listpack,
    /// table order for the table.
    pub fn iter(&self) -> SetIter<'_> {
        match self {
            Set::Int(s) => SetIter::Int(s, 0),
            Set::Small(lp) => SetIter::Small(lp.iter()),
            Set::Big(d) => SetIter::Big(d.iter()),
            Set::Ints(b) => SetIter::Ints(b.iter()),
        }
    }

    /// A random member, uniformly (see `Dict::random_fair`).
    pub fn random(&self, rng: &mut impl rand::Rng) -> Option<Member<'_>> {
        let n = self.len();
        if n == 0 {
            return None;
        }
        match self {
            Set::Int(s) => Some(Member::Int(s.get(rng.random_range(0..n)))),
            Set::Small(lp) => {
                let o = lp.seek(rng.random_range(0..n) as isize)?;
                Some(Member::Str(lp.get(o)))
            }
            Set::Big(d) => d.random_fair(rng).map(|(k, _)| Member::Str(k)),
            Set::Ints(b) => b.random(rng).map(Member::Int),
        }
    }

    /// `count` distinct random members (fewer when the set is smaller), in
    /// random order.
    pub fn sample_distinct(&self, count: usize, rng: &mut impl rand::Rng) -> Vec<Member<'_>> {
        let n = self.len();
        if matches!(self, Set::Big(_) | Set::Ints(_)) && count.saturating_mul(3) <= n {
            // Few of many: draw until enough distinct ones came up (told
            // apart by value, or by node address in the table); else
            // shuffle them all.
            let mut seen = std::collections::HashSet::with_capacity(count);
            let mut out = Vec::with_capacity(count);
            while out.len() < count {
                let m = self.random(rng).expect("non-empty");
                let id = match m {
                    Member::Int(i) => i as u64,
                    Member::Str(s) => s.as_ptr() as u64,
                };
                if seen.insert(id) {
                    out.push(m);
                }
            }
            return out;
        }
        let all: Vec<Member> = self.iter().collect();
        pick_indexes(n, count, rng)
            .into_iter()
            .map(|i| all[i])
            .collect()
    }

    /// Removes `count` random members (all of them when `count >= len`),
    /// handing each to `f` before it goes.
    pub fn pop_many(&mut self, count: usize, rng: &mut impl rand::Rng, mut f: impl FnMut(Member)) {
        let n = self.len();
        let count = count.min(n);
        // Few of many (SPOP without a count above all): one at a time, with
        // no allocation; else one pass over the compact forms.
        let few = count.saturating_mul(4) <= n;
        match self {
            Set::Big(d) => {
                // The member is copied out before its node is freed; short
                // ones on the stack.
                let mut stack = [0u8; 64];
                let mut heap = Vec::new();
                for _ in 0..count {
                    let key: &[u8] = {
                        let (k, _) = d.random_fair(rng).expect("non-empty");
                        f(Member::Str(k));
                        if k.len() <= stack.len() {
                            stack[..k.len()].copy_from_slice(k);
                            &stack[..k.len()]
                        } else {
                            heap.clear();
                            heap.extend_from_slice(k);
                            &heap
                        }
                    };
                    d.remove(key);
                }
            }
            Set::Ints(b) => {
                for _ in 0..count {
                    f(Member::Int(b.pop_random(rng).expect("non-empty")));
                }
            }
            Set::Int(is) if few => {
                for _ in 0..count {
                    let i = rng.random_range(0..is.len());
                    f(Member::Int(is.remove_at(i)));
                }
            }
            Set::Small(lp) if few => {
                for _ in 0..count {
                    let i = rng.random_range(0..lp.len());
                    let o = lp.seek(i as isize).expect("index in range");
                    f(Member::Str(lp.get(o)));
                    lp.delete_at(o);
                }
            }
            Set::Int(is) => {
                let picked = pick_indexes(n, count, rng);
                let mut gone = vec![false; n];
                for &i in &picked {
                    f(Member::Int(is.get(i)));
                    gone[i] = true;
                }
                is.retain_indexes(|i| !gone[i]);
            }
            Set::Small(lp) => {
                let offs = lp_offsets(lp);
                let picked = pick_indexes(n, count, rng);
                let mut gone = vec![false; n];
                for &i in &picked {
                    f(Member::Str(lp.get(offs[i])));
                    gone[i] = true;
                }
                let mut kept = Listpack::new();
                for (i, &o) in offs.iter().enumerate() {
                    if !gone[i] {
                        kept.push_back(lp.get(o));
                    }
                }
                *lp = kept;
            }
        }
    }

    /// One SSCAN step: visits members until about `count` buckets were
    /// covered; returns the next cursor. The compact forms are returned
    /// whole with cursor 0, as Redis does.
    pub fn scan<'a>(&'a self, cursor: u64, count: usize, mut f: impl FnMut(Member<'a>)) -> u64 {
        match self {
            Set::Big(d) => d.scan(cursor, count, |k, _| f(Member::Str(k))),
            Set::Ints(b) => b.scan(cursor, count, |x| f(Member::Int(x))),
            _ => {
                for m in self.iter() {
                    f(m);
                }
                0
            }
        }
    }

    /// Roughly how many allocations freeing this set costs.
    pub fn free_effort(&self) -> usize {
        match self {
            Set::Big(d) => d.len(),
            Set::Ints(b) => b.chunk_count(),
            _ => 1,
        }
    }

    /// Frees up to about `budget` members (lazy free); true when done.
    pub fn free_some(&mut self, budget: usize) -> bool {
        match self {
            Set::Big(d) => d.free_some(budget),
            Set::Ints(b) => b.free_some(budget),
            _ => true,
        }
    }

    /// Approximate heap bytes.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Set::Int(s) => s.heap_bytes(),
            Set::Small(lp) => lp.capacity(),
            Set::Big(d) => d.heap_bytes(),
            Set::Ints(b) => b.heap_bytes(),
        }
    }
}

pub enum SetIter<'a> {
    Int(&'a Intset, usize),
    Small(super::listpack::Iter<'a>),
    Big(super::dict::DictIter<'a>),
    Ints(super::bigintset::Iter<'a>),
}

impl<'a> Iterator for SetIter<'a> {
    type Item = Member<'a>;
    #[inline]
    fn next(&mut self) -> Option<Member<'a>> {
        match self {
            SetIter::Int(s, i) => {
                if *i < s.len() {
                    *i += 1;
                    Some(Member::Int(s.get(*i - 1)))
                } else {
                    None
                }
            }
            SetIter::Small(it) => it.next().map(Member::Str),
            SetIter::Big(it) => it.next().map(|(k, _)| Member::Str(k)),
            SetIter::Ints(it) => it.next().map(|&x| Member::Int(x)),
        }
    }
}
