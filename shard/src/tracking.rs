//! Client-side caching (CLIENT TRACKING): which clients may hold a copy of
//! which of this shard's keys, and the invalidations writes cause.
//!
//! Default mode: a tracking client's reads record (key -> client) on the
//! shard that owns the key; the next write to the key (reported through
//! the change hook) invalidates it for each of them once, and forgets
//! them. BCAST mode: the client's prefixes are registered on every shard,
//! and every write to a matching key invalidates it. The server delivers
//! the invalidations (`out`) to each client's connection, or to the client
//! it redirects them to. As in Redis, keys are tracked across databases
//! by name alone.

use std::collections::HashMap;

/// Where a client's invalidations go: the connection (or redirect target)
/// by shard and client id. `redirected`: to another client, which (in
/// RESP2) gets them as `__redis__:invalidate` messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tracker {
    pub shard: u16,
    pub id: u64,
    /// The tracking client's own id (NOLOOP compares writers with it).
    pub owner: u64,
    pub redirected: bool,
}

/// One invalidation: to whom, and a key (None: "everything", FLUSHALL).
pub type Invalidation = (Tracker, Option<Box<[u8]>>);

/// One shard's tracking table.
#[derive(Default)]
pub struct Tracking {
    keys: HashMap<Box<[u8]>, Vec<Tracker>>,
    /// BCAST registrations: prefix ("" for every key), who, and NOLOOP.
    bcast: Vec<(Box<[u8]>, Tracker, bool)>,
    /// Invalidations to deliver.
    pub out: Vec<Invalidation>,
    /// The command running now: the reader whose reads are recorded, and
    /// the writer whose own writes a NOLOOP registration skips.
    pub reader: Option<Tracker>,
    pub noloop_writer: Option<u64>,
    /// `tracking-table-max-keys` (0: no limit).
    pub max_keys: usize,
    /// A FLUSHDB/FLUSHALL ran: every tracking client of this shard's
    /// connections is told to drop everything (each shard tells its own,
    /// so each client hears it once).
    pub flushed: bool,
}

impl Tracking {
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.bcast.is_empty()
    }

    /// Whether invalidations wait to be delivered.
    pub fn has_out(&self) -> bool {
        !self.out.is_empty() || self.flushed
    }

    /// Records that the current reader may now cache `key`.
    pub fn read(&mut self, key: &[u8]) {
        let Some(t) = self.reader else { return };
        match self.keys.get_mut(key) {
            Some(v) => {
                if !v.iter().any(|x| x.owner == t.owner) {
                    v.push(t);
                }
            }
            None => {
                if self.max_keys > 0 && self.keys.len() >= self.max_keys {
                    self.evict_one();
                }
                self.keys.insert(key.into(), vec![t]);
            }
        }
    }

    /// Over `tracking-table-max-keys`: one key is invalidated for its
    /// readers and forgotten, as Redis does.
    fn evict_one(&mut self) {
        let Some(k) = self.keys.keys().next().cloned() else {
            return;
        };
        if let Some(v) = self.keys.remove(&k) {
            for t in v {
                self.out.push((t, Some(k.clone())));
            }
        }
    }

    /// A write changed `key`: everyone who may cache it is told.
    pub fn touched(&mut self, key: &[u8]) {
        let skip = self.noloop_writer;
        if let Some(v) = self.keys.remove(key) {
            for t in v {
                // NOLOOP in default mode is the reader's own flag, checked
                // where its registration records it (the server keeps
                // NOLOOP readers' owner ids in `noloop_writer`).
                if Some(t.owner) != skip {
                    self.out.push((t, Some(key.into())));
                }
            }
        }
        for (p, t, noloop) in &self.bcast {
            if key.starts_with(p) && !(*noloop && Some(t.owner) == skip) {
                self.out.push((*t, Some(key.into())));
            }
        }
    }

    /// FLUSHDB/FLUSHALL: every client this shard tracks for is told to
    /// drop everything, and the table is emptied.
    pub fn flushed(&mut self) {
        self.keys.clear();
        self.flushed = true;
    }

    /// Registers a BCAST prefix for `t`.
    pub fn add_bcast(&mut self, prefix: &[u8], t: Tracker, noloop: bool) {
        self.bcast.push((prefix.into(), t, noloop));
    }

    /// Forgets client `owner` everywhere here (tracking turned off, or the
    /// client went away).
    pub fn forget(&mut self, owner: u64) {
        self.bcast.retain(|(_, t, _)| t.owner != owner);
        self.keys.retain(|_, v| {
            v.retain(|t| t.owner != owner);
            !v.is_empty()
        });
    }

    /// Keys in the table (INFO tracking_total_keys).
    pub fn len(&self) -> usize {
        self.keys.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(id: u64) -> Tracker {
        Tracker {
            shard: 0,
            id,
            owner: id,
            redirected: false,
        }
    }

    #[test]
    fn a_write_invalidates_each_reader_once() {
        let mut tr = Tracking {
            reader: Some(t(1)),
            ..Default::default()
        };
        tr.read(b"k");
        tr.read(b"k");
        tr.reader = Some(t(2));
        tr.read(b"k");
        tr.reader = None;
        tr.touched(b"k");
        assert_eq!(tr.out.len(), 2);
        tr.out.clear();
        tr.touched(b"k");
        assert!(tr.out.is_empty());
    }

    #[test]
    fn bcast_prefixes_and_noloop() {
        let mut tr = Tracking::default();
        tr.add_bcast(b"user:", t(1), true);
        tr.add_bcast(b"", t(2), false);
        tr.noloop_writer = Some(1);
        tr.touched(b"user:7");
        assert_eq!(tr.out, vec![(t(2), Some(b"user:7"[..].into()))]);
        tr.out.clear();
        tr.noloop_writer = None;
        tr.touched(b"user:8");
        assert_eq!(tr.out.len(), 2);
        tr.forget(1);
        tr.forget(2);
        assert!(tr.is_empty());
    }
}
