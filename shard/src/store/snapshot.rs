//! A database's part of a point-in-time snapshot (BGSAVE without fork).
//!
//! The snapshot walks the database's slot tables in order, a bounded step
//! at a time, encoding each entry as an RDB record. Slots before
//! `next_slot` are done; for the others, the first write to a key (any
//! `Db` method that could change or remove it) first encodes its value as
//! it was when the snapshot started, and remembers the key in `early`, so
//! the walk skips it later. A key created after the start is remembered
//! the same way (it was absent then). The hook costs one branch on the
//! `Option` when no snapshot runs.

use std::collections::{HashMap, HashSet};

use super::entry::Entry;
use crate::rdb::write_entry;

pub struct DbSnapshot {
    /// The database's index when the snapshot started (SWAPDB moves the
    /// whole `Db`, snapshot included, so records keep their database).
    pub db_index: usize,
    /// Slots below this one are written.
    pub next_slot: usize,
    /// Keys of slots not yet walked that were already written (or did not
    /// exist at the start), by slot.
    pub early: HashMap<u16, HashSet<Box<[u8]>>>,
    /// Bytes of keys held in `early` (reported as the snapshot's extra
    /// memory, with `out`).
    pub early_bytes: usize,
    /// Encoded records not yet handed to the writer.
    pub out: Vec<u8>,
    pub keys: u64,
    pub expires: u64,
    pub compress: bool,
}

impl DbSnapshot {
    pub fn new(db_index: usize, compress: bool) -> DbSnapshot {
        DbSnapshot {
            db_index,
            next_slot: 0,
            early: HashMap::new(),
            early_bytes: 0,
            out: Vec::new(),
            keys: 0,
            expires: 0,
            compress,
        }
    }

    /// Encodes one entry as it is now.
    pub fn write(&mut self, e: &Entry) {
        write_entry(&mut self.out, e, self.compress, None);
        self.keys += 1;
        self.expires += e.expire_at().is_some() as u64;
    }

    /// Whether `key` of `slot` still needs its pre-write value written;
    /// marks it written either way.
    pub fn claim(&mut self, slot: u16, key: &[u8]) -> bool {
        if (slot as usize) < self.next_slot {
            return false;
        }
        let set = self.early.entry(slot).or_default();
        if set.contains(key) {
            return false;
        }
        self.early_bytes += key.len() + 32;
        set.insert(key.into());
        true
    }

    /// Extra memory the snapshot holds now.
    pub fn extra_bytes(&self) -> usize {
        self.early_bytes + self.out.capacity()
    }
}
