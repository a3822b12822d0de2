//! What a handler sees: its shard's state and the request's context.

use rand::rngs::SmallRng;
use rand::SeedableRng;

use crate::stats::ShardStats;
use crate::store::{Db, Keyspace, SlotTable};

/// Settings that handlers need, copied into every shard (CONFIG SET sends
/// each shard its new copy; nothing here is shared between threads).
#[derive(Clone, Debug)]
pub struct ShardConfig {
    pub databases: usize,
    pub proto_max_bulk_len: usize,
    /// Active expiry effort, 1..=10 (Redis's `active-expire-effort`).
    pub active_expire_effort: u32,
    /// Expiry cycles per second (Redis's `hz`).
    pub hz: u32,
}

impl Default for ShardConfig {
    fn default() -> Self {
        ShardConfig {
            databases: 16,
            proto_max_bulk_len: 512 * 1024 * 1024,
            active_expire_effort: 1,
            hz: 10,
        }
    }
}

/// Everything one shard owns. Only its own thread ever touches it.
pub struct ShardState {
    pub id: usize,
    pub keyspace: Keyspace,
    pub stats: ShardStats,
    pub config: ShardConfig,
    /// The slots this shard owns, ascending.
    pub owned_slots: Vec<u16>,
    pub rng: SmallRng,
    /// Where the active expiry cycle resumes, per database.
    pub expire_cursor: Vec<usize>,
    /// Tables handed over by FLUSHALL/FLUSHDB ASYNC (and UNLINK of huge
    /// values), freed a little at a time so the shard never stalls.
    pub lazy_free: Vec<SlotTable>,
}

impl ShardState {
    pub fn new(id: usize, config: ShardConfig, owned_slots: Vec<u16>) -> ShardState {
        let dbs = config.databases;
        ShardState {
            id,
            keyspace: Keyspace::new(dbs),
            stats: ShardStats::new(),
            config,
            owned_slots,
            rng: SmallRng::from_os_rng(),
            expire_cursor: vec![0; dbs],
            lazy_free: Vec::new(),
        }
    }

    /// Frees queued tables until about `budget` keys were dropped; returns
    /// true when the queue is empty.
    pub fn lazy_free_step(&mut self, budget: usize) -> bool {
        let mut freed = 0;
        while freed < budget {
            match self.lazy_free.pop() {
                Some(t) => {
                    freed += t.len().max(1);
                    drop(t);
                }
                None => return true,
            }
        }
        self.lazy_free.is_empty()
    }

    /// Keys in all databases.
    pub fn total_keys(&self) -> usize {
        self.keyspace.dbs().map(|(_, d)| d.len()).sum()
    }
}

/// A request's context on its shard.
pub struct Ctx<'a> {
    pub shard: &'a mut ShardState,
    /// The connection's selected database.
    pub db: usize,
    /// Milliseconds since the Unix epoch, read once per batch.
    pub now: i64,
}

impl<'a> Ctx<'a> {
    pub fn new(shard: &'a mut ShardState, db: usize, now: i64) -> Self {
        Ctx { shard, db, now }
    }

    /// The selected database.
    #[inline]
    pub fn db(&mut self) -> &mut Db {
        self.shard.keyspace.db(self.db)
    }
}
