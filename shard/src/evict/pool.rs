//! The eviction pool, as Redis's: the best candidates seen by the last
//! samples, kept sorted by score (higher: evict first), so each eviction
//! picks the best of many samples rather than of the last few.

/// Candidates kept between evictions (Redis's EVPOOL_SIZE).
pub const POOL_SIZE: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Idle time, inverse frequency or inverse expiry: higher goes first.
    pub score: u64,
    pub db: usize,
    pub key: Box<[u8]>,
}

/// At most `POOL_SIZE` candidates, ascending by score.
#[derive(Default, Debug)]
pub struct Pool {
    items: Vec<Candidate>,
}

impl Pool {
    /// Offers a sampled key: kept if the pool has room or it beats the
    /// worst candidate (which then leaves). A key already there is kept
    /// once.
    pub fn offer(&mut self, score: u64, db: usize, key: &[u8]) {
        if self.items.len() == POOL_SIZE && score <= self.items[0].score {
            return;
        }
        if self.items.iter().any(|c| c.db == db && &*c.key == key) {
            return;
        }
        let pos = self.items.partition_point(|c| c.score < score);
        self.items.insert(
            pos,
            Candidate {
                score,
                db,
                key: key.into(),
            },
        );
        if self.items.len() > POOL_SIZE {
            self.items.remove(0);
        }
    }

    /// The best candidate, removed from the pool.
    pub fn pop_best(&mut self) -> Option<Candidate> {
        self.items.pop()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Forgets every candidate (the policy changed, a database was
    /// flushed: their scores mean nothing now).
    pub fn clear(&mut self) {
        self.items.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_best_sixteen_in_order() {
        let mut p = Pool::default();
        for i in 0..100u64 {
            // Scores in a scrambled order.
            let s = (i * 37) % 100;
            p.offer(s, 0, format!("k{s}").as_bytes());
        }
        assert_eq!(p.len(), POOL_SIZE);
        let mut got = Vec::new();
        while let Some(c) = p.pop_best() {
            got.push(c.score);
        }
        let want: Vec<u64> = (84..100).rev().collect();
        assert_eq!(got, want);
    }

    #[test]
    fn worse_than_a_full_pool_is_refused_and_duplicates_kept_once() {
        let mut p = Pool::default();
        for i in 0..POOL_SIZE as u64 {
            p.offer(100 + i, 0, format!("k{i}").as_bytes());
        }
        p.offer(5, 0, b"cold");
        assert!(p.items.iter().all(|c| &*c.key != b"cold"));
        p.offer(1000, 1, b"k0");
        p.offer(1000, 1, b"k0");
        assert_eq!(p.items.iter().filter(|c| c.db == 1).count(), 1);
        assert_eq!(p.len(), POOL_SIZE);
        let best = p.pop_best().unwrap();
        assert_eq!((best.score, best.db, &*best.key), (1000, 1, &b"k0"[..]));
        p.clear();
        assert!(p.is_empty());
    }
}
