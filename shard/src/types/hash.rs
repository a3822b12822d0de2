//! Hashes: a listpack of alternating fields and values while small (Redis's
//! "listpack" encoding: insertion order, in-place updates), a `Dict` past
//! `hash-max-listpack-entries` fields or once a field or value is longer than
//! `hash-max-listpack-value` bytes ("hashtable"). Like Redis, a hash never
//! converts back.

use super::dict::Dict;
use super::listpack::Listpack;

/// Conversion thresholds (hash-max-listpack-entries / -value).
#[derive(Clone, Copy, Debug)]
pub struct HashLimits {
    pub max_entries: usize,
    pub max_value: usize,
}

impl Default for HashLimits {
    fn default() -> Self {
        HashLimits {
            max_entries: 128,
            max_value: 64,
        }
    }
}

#[derive(Clone, Debug)]
pub enum Hash {
    Small(Listpack),
    Big(Dict),
}

impl Default for Hash {
    fn default() -> Self {
        Hash::Small(Listpack::new())
    }
}

/// Offset of `field`'s entry in a small hash.
fn lp_find(lp: &Listpack, field: &[u8]) -> Option<usize> {
    let mut off = lp.first();
    while let Some(o) = off {
        let v = lp.next(o).expect("value follows field");
        if lp.get(o) == field {
            return Some(o);
        }
        off = lp.next(v);
    }
    None
}

impl Hash {
    pub fn new() -> Hash {
        Hash::default()
    }

    pub fn len(&self) -> usize {
        match self {
            Hash::Small(lp) => lp.len() / 2,
            Hash::Big(d) => d.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn encoding(&self) -> &'static str {
        match self {
            Hash::Small(_) => "listpack",
            Hash::Big(_) => "hashtable",
        }
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match self {
            Hash::Small(lp) => lp_find(lp, field).map(|o| lp.get(lp.next(o).expect("value"))),
            Hash::Big(d) => d.get(field),
        }
    }

    pub fn contains(&self, field: &[u8]) -> bool {
        self.get(field).is_some()
    }

    /// Converts to a table if any of `lens` exceeds the value limit
    /// (Redis's hashTypeTryConversion, run before a write).
    pub fn try_convert_for(&mut self, lens: impl IntoIterator<Item = usize>, lim: HashLimits) {
        if let Hash::Small(_) = self {
            if lens.into_iter().any(|l| l > lim.max_value) {
                self.convert();
            }
        }
    }

    fn convert(&mut self) {
        if let Hash::Small(lp) = self {
            let mut d = Dict::with_capacity(lp.len() / 2);
            let mut it = lp.iter();
            while let (Some(f), Some(v)) = (it.next(), it.next()) {
                d.insert(f, v);
            }
            *self = Hash::Big(d);
        }
    }

    /// Sets a field; true when it is new.
    pub fn set(&mut self, field: &[u8], value: &[u8], lim: HashLimits) -> bool {
        if let Hash::Small(_) = self {
            if field.len() > lim.max_value || value.len() > lim.max_value {
                self.convert();
            }
        }
        match self {
            Hash::Small(lp) => {
                if let Some(o) = lp_find(lp, field) {
                    let v = lp.next(o).expect("value");
                    lp.replace_at(v, value);
                    false
                } else {
                    lp.push_back(field);
                    lp.push_back(value);
                    if lp.len() / 2 > lim.max_entries {
                        self.convert();
                    }
                    true
                }
            }
            Hash::Big(d) => d.insert(field, value),
        }
    }

    /// Removes a field; true when it was there.
    pub fn del(&mut self, field: &[u8]) -> bool {
        match self {
            Hash::Small(lp) => match lp_find(lp, field) {
                Some(o) => {
                    lp.delete_range(o, 2);
                    true
                }
                None => false,
            },
            Hash::Big(d) => d.remove(field),
        }
    }

    /// (field, value) pairs: insertion order while small, table order after.
    pub fn iter(&self) -> HashIter<'_> {
        match self {
            Hash::Small(lp) => HashIter::Small(lp.iter()),
            Hash::Big(d) => HashIter::Big(d.iter()),
        }
    }

    /// One HSCAN step: visits fields until about `count` buckets were
    /// covered; returns the next cursor. A small hash is returned whole.
    pub fn scan<'a>(
        &'a self,
        cursor: u64,
        count: usize,
        mut f: impl FnMut(&'a [u8], &'a [u8]),
    ) -> u64 {
        match self {
            Hash::Small(_) => {
                for (k, v) in self.iter() {
                    f(k, v);
                }
                0
            }
            Hash::Big(d) => d.scan(cursor, count, f),
        }
    }

    /// A random (field, value).
    pub fn random(&self, rng: &mut impl rand::Rng) -> Option<(&[u8], &[u8])> {
        match self {
            Hash::Small(lp) => {
                let n = lp.len() / 2;
                if n == 0 {
                    return None;
                }
                let i = rng.random_range(0..n);
                let o = lp.seek((2 * i) as isize)?;
                Some((lp.get(o), lp.get(lp.next(o)?)))
            }
            Hash::Big(d) => d.random(rng),
        }
    }

    /// Approximate heap bytes.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Hash::Small(lp) => lp.capacity(),
            Hash::Big(d) => d.heap_bytes(),
        }
    }
}

pub enum HashIter<'a> {
    Small(super::listpack::Iter<'a>),
    Big(super::dict::DictIter<'a>),
}

impl<'a> Iterator for HashIter<'a> {
    type Item = (&'a [u8], &'a [u8]);
    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            HashIter::Small(it) => {
                let f = it.next()?;
                let v = it.next()?;
                Some((f, v))
            }
            HashIter::Big(it) => it.next(),
        }
    }
}
