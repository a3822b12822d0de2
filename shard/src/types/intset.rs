//! Redis's "intset" encoding: a set whose members are all integers, kept
//! sorted in one contiguous array so membership is a binary search and
//! SMEMBERS/SSCAN return members in ascending order, exactly as Redis does.
//!
//! Like Redis, the array is as wide as its widest member needs (2, 4 or 8
//! bytes per member) and only ever widens: a set of small integers costs 2
//! bytes a member.

#[derive(Clone, Debug, PartialEq, Eq)]
enum Store {
    W16(Vec<i16>),
    W32(Vec<i32>),
    W64(Vec<i64>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Intset {
    s: Store,
}

impl Default for Intset {
    fn default() -> Self {
        Intset {
            s: Store::W16(Vec::new()),
        }
    }
}

/// Runs `$body` with `$v` bound to the store's vector, whatever its width.
macro_rules! each_width {
    ($s:expr, $v:ident => $body:expr) => {
        match $s {
            Store::W16($v) => $body,
            Store::W32($v) => $body,
            Store::W64($v) => $body,
        }
    };
}

fn width_of(v: i64) -> u8 {
    if i16::try_from(v).is_ok() {
        2
    } else if i32::try_from(v).is_ok() {
        4
    } else {
        8
    }
}

impl Intset {
    pub fn new() -> Intset {
        Intset::default()
    }

    pub fn len(&self) -> usize {
        each_width!(&self.s, v => v.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn width(&self) -> u8 {
        match self.s {
            Store::W16(_) => 2,
            Store::W32(_) => 4,
            Store::W64(_) => 8,
        }
    }

    /// Re-encodes every member at the wider width `w`.
    fn widen(&mut self, w: u8) {
        let all: Vec<i64> = self.iter().collect();
        self.s = match w {
            4 => Store::W32(all.iter().map(|&x| x as i32).collect()),
            _ => Store::W64(all),
        };
    }

    /// The position of `x`: Ok(index) when present, Err(insertion point).
    fn search(&self, x: i64) -> Result<usize, usize> {
        match &self.s {
            Store::W16(v) => match i16::try_from(x) {
                Ok(x) => v.binary_search(&x),
                Err(_) => Err(if x < 0 { 0 } else { v.len() }),
            },
            Store::W32(v) => match i32::try_from(x) {
                Ok(x) => v.binary_search(&x),
                Err(_) => Err(if x < 0 { 0 } else { v.len() }),
            },
            Store::W64(v) => v.binary_search(&x),
        }
    }

    pub fn contains(&self, x: i64) -> bool {
        self.search(x).is_ok()
    }

    /// Adds `x`; true when it is new.
    pub fn insert(&mut self, x: i64) -> bool {
        let w = width_of(x);
        if w > self.width() {
            self.widen(w);
        }
        match self.search(x) {
            Ok(_) => false,
            Err(i) => {
                // The width check above makes every cast lossless.
                match &mut self.s {
                    Store::W16(v) => v.insert(i, x as i16),
                    Store::W32(v) => v.insert(i, x as i32),
                    Store::W64(v) => v.insert(i, x),
                }
                true
            }
        }
    }

    /// Removes `x`; true when it was there. Never narrows (as Redis).
    pub fn remove(&mut self, x: i64) -> bool {
        match self.search(x) {
            Ok(i) => {
                self.remove_at(i);
                true
            }
            Err(_) => false,
        }
    }

    /// The member at `i` (ascending order). Panics when out of range.
    pub fn get(&self, i: usize) -> i64 {
        match &self.s {
            Store::W16(v) => v[i].into(),
            Store::W32(v) => v[i].into(),
            Store::W64(v) => v[i],
        }
    }

    pub fn remove_at(&mut self, i: usize) -> i64 {
        match &mut self.s {
            Store::W16(v) => v.remove(i).into(),
            Store::W32(v) => v.remove(i).into(),
            Store::W64(v) => v.remove(i),
        }
    }

    /// Keeps only the members whose index `keep` accepts (batch removal in
    /// one pass, for SPOP with a count).
    pub fn retain_indexes(&mut self, mut keep: impl FnMut(usize) -> bool) {
        each_width!(&mut self.s, v => {
            let mut i = 0;
            v.retain(|_| {
                let k = keep(i);
                i += 1;
                k
            });
        })
    }

    pub fn iter(&self) -> impl Iterator<Item = i64> + '_ {
        (0..self.len()).map(move |i| self.get(i))
    }

    /// Bytes allocated.
    pub fn heap_bytes(&self) -> usize {
        each_width!(&self.s, v => v.capacity()) * self.width() as usize
    }

    pub fn shrink_to_fit(&mut self) {
        each_width!(&mut self.s, v => v.shrink_to_fit())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widens_and_stays_sorted() {
        let mut s = Intset::new();
        assert!(s.insert(5));
        assert!(s.insert(-3));
        assert!(!s.insert(5));
        assert_eq!(s.width(), 2);
        assert!(!s.contains(100_000));
        assert!(s.insert(100_000));
        assert_eq!(s.width(), 4);
        assert!(s.insert(i64::MIN));
        assert_eq!(s.width(), 8);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![i64::MIN, -3, 5, 100_000]);
        assert!(s.remove(i64::MIN));
        assert_eq!(s.width(), 8);
        assert!(!s.remove(7));
        assert_eq!(s.len(), 3);
    }
}
