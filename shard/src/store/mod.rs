//! The shard's keyspace: numbered databases of per-slot tables.

pub mod db;
pub mod entry;
pub mod object;

pub use db::{lru_clock, Db, SlotTable};
pub use entry::{Entry, ValueRef};
pub use object::Object;

/// All databases of one shard. Databases are created on first write, so a
/// shard that only ever sees db 0 pays for one.
pub struct Keyspace {
    dbs: Vec<Option<Box<Db>>>,
    /// Whether each database logs the keys it reclaims as expired (for
    /// `expired` keyspace notifications).
    log_expired: bool,
}

impl Keyspace {
    pub fn new(databases: usize) -> Keyspace {
        let mut dbs = Vec::with_capacity(databases);
        dbs.resize_with(databases, || None);
        Keyspace {
            dbs,
            log_expired: false,
        }
    }

    /// Starts or stops logging expired keys in every database.
    pub fn set_log_expired(&mut self, on: bool) {
        self.log_expired = on;
        for d in self.dbs.iter_mut().flatten() {
            d.expired_log = on.then(Vec::new);
        }
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
        self.dbs[index].get_or_insert_with(|| {
            let mut d = Box::new(Db::new());
            d.expired_log = log.then(Vec::new);
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

    /// Swaps two databases (SWAPDB); both sides are created if needed.
    pub fn swap(&mut self, a: usize, b: usize) {
        self.dbs.swap(a, b);
    }
}
