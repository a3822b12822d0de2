//! The shard's keyspace: numbered databases of per-slot tables.

pub mod db;
pub mod entry;
pub mod object;
pub mod snapshot;

pub use db::{lru_clock, lru_seconds, Access, Db, SlotTable};
pub use entry::{Entry, ValueRef};
pub use object::Object;

/// All databases of one shard. Databases are created on first write, so a
/// shard that only ever sees db 0 pays for one.
pub struct Keyspace {
    dbs: Vec<Option<Box<Db>>>,
    /// Whether each database logs the keys it reclaims as expired (for
    /// `expired` keyspace notifications).
    log_expired: bool,
    /// How accesses update entries (the policy's LRU clock or LFU counter).
    lfu: Option<crate::evict::lfu::LfuParams>,
}

impl Keyspace {
    pub fn new(databases: usize) -> Keyspace {
        let mut dbs = Vec::with_capacity(databases);
        dbs.resize_with(databases, || None);
        Keyspace {
            dbs,
            log_expired: false,
            lfu: None,
        }
    }

    /// Makes every database keep an LFU counter (`Some`) or an LRU clock
    /// per entry; on the shard's own thread.
    pub fn set_access(&mut self, lfu: Option<crate::evict::lfu::LfuParams>) {
        self.lfu = lfu;
        for d in self.dbs.iter_mut().flatten() {
            d.set_access(lfu);
        }
        // New entries (of databases not created yet too) follow.
        db::set_stamp_lfu(lfu.is_some());
    }

    /// Starts or stops logging expired keys in every database.
    pub fn set_log_expired(&mut self, on: bool) {
        self.log_expired = on;
        for d in self.dbs.iter_mut().flatten() {
            d.expired_log = on.then(Vec::new);
        }
    }

    /// The keys reclaimed as expired and not yet taken, per database
    /// (left in place, for `take_expired`).
    pub fn expired_pending(&self) -> impl Iterator<Item = (usize, &[u8])> + '_ {
        self.dbs.iter().enumerate().flat_map(|(i, d)| {
            d.iter()
                .flat_map(|d| d.expired_log.iter().flatten())
                .map(move |k| (i, &k[..]))
        })
    }

    /// Whether `log_expired` is on.
    pub fn logs_expired(&self) -> bool {
        self.log_expired
    }

    /// The keys reclaimed as expired since the last call, per database.
    pub fn take_expired(&mut self) -> Vec<(usize, Box<[u8]>)> {
        let mut out = Vec::new();
        for (i, d) in self.dbs.iter_mut().enumerate() {
            if let Some(log) = d.as_mut().and_then(|d| d.expired_log.as_mut()) {
                out.extend(log.drain(..).map(|k| (i, k)));
            }
        }
        out
    }

    pub fn databases(&self) -> usize {
        self.dbs.len()
    }

    /// The database, created if needed.
    #[inline]
    pub fn db(&mut self, index: usize) -> &mut Db {
        let log = self.log_expired;
        let lfu = self.lfu;
        self.dbs[index].get_or_insert_with(|| {
            let mut d = Box::new(Db::new());
            d.expired_log = log.then(Vec::new);
            d.access.lfu = lfu;
            d
        })
    }

    /// The database if it was ever created.
    pub fn db_if_exists(&mut self, index: usize) -> Option<&mut Db> {
        self.dbs.get_mut(index).and_then(|d| d.as_deref_mut())
    }

    /// The database if it was ever created, read-only.
    pub fn get(&self, index: usize) -> Option<&Db> {
        self.dbs.get(index).and_then(|d| d.as_deref())
    }

    /// Whether `key` logically exists (is present and not expired) in `db`.
    pub fn exists(&self, db: usize, key: &[u8], now: i64) -> bool {
        self.get(db).is_some_and(|d| d.peek(key, now).is_some())
    }

    pub fn dbs(&self) -> impl Iterator<Item = (usize, &Db)> {
        self.dbs
            .iter()
            .enumerate()
            .filter_map(|(i, d)| d.as_deref().map(|d| (i, d)))
    }

    pub fn dbs_mut(&mut self) -> impl Iterator<Item = (usize, &mut Db)> {
        self.dbs
            .iter_mut()
            .enumerate()
            .filter_map(|(i, d)| d.as_deref_mut().map(|d| (i, d)))
    }

    /// Starts a snapshot of every database that exists now.
    pub fn snapshot_start(&mut self, compress: bool) {
        for (i, d) in self.dbs_mut() {
            d.snapshot_start(i, compress);
        }
    }

    /// One bounded step of the snapshot (about `budget` entries per
    /// database); true when every database is done.
    pub fn snapshot_step(&mut self, budget: usize) -> bool {
        let mut all = true;
        for (_, d) in self.dbs_mut() {
            all &= d.snapshot_step(budget);
        }
        all
    }

    /// Hands each database's encoded records of at least `min` bytes to
    /// `f` (with the database's index at the start), emptying them.
    pub fn snapshot_drain<E>(
        &mut self,
        min: usize,
        mut f: impl FnMut(usize, &[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        for (_, d) in self.dbs_mut() {
            if let Some((i, out)) = d.snapshot_output() {
                if !out.is_empty() && out.len() >= min {
                    let r = f(i, out);
                    out.clear();
                    if out.capacity() > 4 << 20 {
                        out.shrink_to(1 << 20);
                    }
                    r?;
                }
            }
        }
        Ok(())
    }

    /// Extra memory held by the snapshot in progress.
    pub fn snapshot_extra_bytes(&self) -> usize {
        self.dbs().map(|(_, d)| d.snapshot_extra_bytes()).sum()
    }

    /// Ends the snapshot: (database index, keys, keys with expiry) each.
    pub fn snapshot_end(&mut self) -> Vec<(usize, u64, u64)> {
        self.dbs_mut()
            .filter_map(|(_, d)| d.snapshot_end())
            .collect()
    }

    /// Swaps two databases (SWAPDB); both sides are created if needed.
    pub fn swap(&mut self, a: usize, b: usize) {
        self.dbs.swap(a, b);
    }
}

#[cfg(test)]
mod snapshot_tests {
    use super::*;
    use crate::rdb::{self, Limits};

    /// Decodes the records a snapshot wrote for one database.
    fn decode(records: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut f = Vec::new();
        rdb::write_header(&mut f, "7.0.15", 0, 0);
        rdb::write_select(&mut f, 0, 0, 0);
        f.extend_from_slice(records);
        f.push(rdb::OP_EOF);
        f.extend_from_slice(&[0; 8]);
        let mut out = Vec::new();
        rdb::load(&f[..], 16, &Limits::default(), |k| {
            let v = match k.value {
                rdb::Value::Str(s) => s,
                _ => b"?".to_vec(),
            };
            out.push((k.key, v));
            Ok(())
        })
        .unwrap();
        out.sort();
        out
    }

    #[test]
    fn writes_during_a_snapshot_do_not_change_it() {
        let mut ks = Keyspace::new(16);
        for i in 0..5000 {
            let k = format!("k{i}");
            ks.db(0).set_string(
                k.as_bytes(),
                b"old",
                if i % 7 == 0 { Some(10_000) } else { None },
                false,
                0,
            );
        }
        let before: Vec<(Vec<u8>, Vec<u8>)> = {
            let mut v: Vec<_> = (0..5000)
                .map(|i| (format!("k{i}").into_bytes(), b"old".to_vec()))
                .collect();
            v.sort();
            v
        };
        ks.snapshot_start(true);
        let mut records = Vec::new();
        let mut step = 0;
        loop {
            // Writes between steps: overwrite, delete, create, expire.
            for j in 0..50 {
                let i = (step * 97 + j * 31) % 6000;
                let k = format!("k{i}");
                match j % 4 {
                    0 => {
                        ks.db(0).set_string(k.as_bytes(), b"new", None, false, 1);
                    }
                    1 => {
                        ks.db(0).remove(k.as_bytes(), 1);
                    }
                    2 => {
                        ks.db(0).set_string(
                            format!("fresh{step}_{j}").as_bytes(),
                            b"x",
                            None,
                            false,
                            1,
                        );
                    }
                    _ => {
                        ks.db(0).expire_step(0, 20_000, 100_000);
                    }
                }
            }
            let done = ks.snapshot_step(100);
            ks.snapshot_drain::<()>(0, |db, b| {
                assert_eq!(db, 0);
                records.extend_from_slice(b);
                Ok(())
            })
            .unwrap();
            step += 1;
            if done {
                break;
            }
        }
        let ends = ks.snapshot_end();
        assert_eq!(ends, vec![(0, 5000, 715)]);
        assert_eq!(decode(&records), before);
        // After the end, writes cost nothing more and nothing is recorded.
        ks.db(0).set_string(b"k1", b"later", None, false, 2);
        assert_eq!(ks.snapshot_extra_bytes(), 0);
    }

    #[test]
    fn flush_during_a_snapshot_writes_the_rest_first() {
        let mut ks = Keyspace::new(16);
        for i in 0..1000 {
            ks.db(2)
                .set_string(format!("k{i}").as_bytes(), b"v", None, false, 0);
        }
        ks.snapshot_start(false);
        ks.snapshot_step(10);
        ks.db(2).take_all();
        ks.swap(2, 5);
        let mut records = Vec::new();
        while !ks.snapshot_step(10) {}
        ks.snapshot_drain::<()>(0, |db, b| {
            assert_eq!(db, 2);
            records.extend_from_slice(b);
            Ok(())
        })
        .unwrap();
        assert_eq!(decode(&records).len(), 1000);
        assert_eq!(ks.snapshot_end(), vec![(2, 1000, 0)]);
    }
}
