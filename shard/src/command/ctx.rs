//! What a handler sees: its shard's state and the request's context.

use std::collections::HashSet;

use rand::rngs::SmallRng;
use rand::SeedableRng;

use crate::changes::Changes;
use crate::stats::ShardStats;
use crate::store::{Db, Entry, Keyspace, Object, SlotTable};

/// Values costing more allocations than this to free go to the lazy-free
/// queue instead of being freed inline (Redis's LAZYFREE_THRESHOLD).
pub const LAZYFREE_THRESHOLD: usize = 64;

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
    /// Quicklist node limit (`list-max-listpack-size`: -1..-5 = 4..64 KiB,
    /// positive = entries per node).
    pub list_max_listpack_size: i64,
    /// A hash stays a listpack up to this many fields...
    pub hash_max_listpack_entries: usize,
    /// ...and while every field and value is at most this long.
    pub hash_max_listpack_value: usize,
    /// A sorted set stays a listpack up to this many members...
    pub zset_max_listpack_entries: usize,
    /// ...and while every member is at most this long.
    pub zset_max_listpack_value: usize,
    /// A set of integers stays an intset up to this many members.
    pub set_max_intset_entries: usize,
    /// `notify-keyspace-events`, as Redis's NOTIFY_* flags.
    pub notify_keyspace_events: u32,
    /// Strings in RDB files and DUMP payloads are LZF-compressed
    /// (`rdbcompression`).
    pub rdb_compression: bool,
    /// `tracking-table-max-keys`: keys one shard tracks for CLIENT
    /// TRACKING before it invalidates old ones (0: no limit).
    pub tracking_table_max_keys: usize,
    /// `cluster-enabled`: CLUSTER's shard-side subcommands answer only then.
    pub cluster_enabled: bool,
    /// `slowlog-log-slower-than` (µs; negative: off) and `slowlog-max-len`.
    pub slowlog_log_slower_than: i64,
    pub slowlog_max_len: usize,
    /// `latency-monitor-threshold` (ms; 0: off) and `latency-tracking`.
    pub latency_monitor_threshold: u64,
    pub latency_tracking: bool,
    /// `maxmemory` in bytes (0: no limit); the node's budget.
    pub maxmemory: u64,
    pub maxmemory_policy: crate::evict::Policy,
    pub maxmemory_samples: usize,
    pub maxmemory_eviction_tenacity: u32,
    /// `lfu-log-factor` and `lfu-decay-time`.
    pub lfu: crate::evict::lfu::LfuParams,
    /// A stream node takes entries up to this many bytes
    /// (`stream-node-max-bytes`, 0: no limit)...
    pub stream_node_max_bytes: usize,
    /// ...and this many entries (`stream-node-max-entries`, 0: no limit).
    pub stream_node_max_entries: usize,
}

impl ShardConfig {
    /// The stream node limits these settings give.
    pub fn stream_limits(&self) -> crate::types::stream::NodeLimits {
        crate::types::stream::NodeLimits {
            max_bytes: self.stream_node_max_bytes,
            max_entries: self.stream_node_max_entries,
        }
    }
}

impl Default for ShardConfig {
    fn default() -> Self {
        ShardConfig {
            databases: 16,
            proto_max_bulk_len: 512 * 1024 * 1024,
            active_expire_effort: 1,
            hz: 10,
            list_max_listpack_size: -2,
            hash_max_listpack_entries: 512,
            hash_max_listpack_value: 64,
            zset_max_listpack_entries: 128,
            zset_max_listpack_value: 64,
            set_max_intset_entries: 512,
            notify_keyspace_events: 0,
            rdb_compression: true,
            tracking_table_max_keys: 1_000_000,
            cluster_enabled: false,
            slowlog_log_slower_than: 10_000,
            slowlog_max_len: 128,
            latency_monitor_threshold: 0,
            latency_tracking: true,
            maxmemory: 0,
            maxmemory_policy: crate::evict::Policy::NoEviction,
            maxmemory_samples: 5,
            maxmemory_eviction_tenacity: 10,
            lfu: crate::evict::lfu::LfuParams::default(),
            stream_node_max_bytes: 4096,
            stream_node_max_entries: 100,
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
    /// Big values removed by DEL/UNLINK, freed in slices by `lazy_free_step`.
    pub lazy_free_objects: Vec<Object>,
    /// Foreign keys whose entries (or absence) the running command sees in
    /// this shard's tables: set by the server's gather step for the length
    /// of one gathered command, empty otherwise. SORT's BY/GET patterns
    /// may read these besides the keys this shard owns.
    pub borrowed_keys: HashSet<Vec<u8>>,
    /// The change hook: every write reports the keys it touched here.
    pub changes: Changes,
    /// Pub/sub subscriptions of this shard's connections.
    pub pubsub: crate::pubsub::PubSub,
    /// Writes that changed something (Redis's `dirty`): save points and
    /// INFO's rdb_changes_since_last_save count them. Never reset.
    pub dirty: u64,
    /// Writes are refused (MISCONF) because the last background save
    /// failed and `stop-writes-on-bgsave-error` is on.
    pub misconf: bool,
    /// FLUSHALL ran: with save points set, a save follows (as Redis saves
    /// the emptied dataset at once).
    pub flushall_save: bool,
    /// SLOWLOG and the latency monitor (introspection), and the shortest
    /// duration (ns) either wants to hear of: the one comparison a command
    /// pays (u64::MAX while both are off).
    pub slowlog: crate::slowlog::SlowLog,
    pub latency: crate::latency::Latency,
    pub slow_ns: u64,
    /// Error replies by their code (INFO errorstats: ERR, WRONGTYPE...).
    pub errors: std::collections::BTreeMap<String, u64>,
    /// The append-only file's records not yet handed to its writer.
    pub aof: crate::aof::Feed,
    /// The memory limit: usage, eviction pool, evicted keys (`evict`).
    pub evict: crate::evict::Evictor,
}

impl ShardState {
    pub fn new(id: usize, config: ShardConfig, owned_slots: Vec<u16>) -> ShardState {
        let dbs = config.databases;
        let mut st = ShardState {
            id,
            keyspace: Keyspace::new(dbs),
            stats: ShardStats::new(),
            config,
            owned_slots,
            rng: SmallRng::from_os_rng(),
            expire_cursor: vec![0; dbs],
            lazy_free: Vec::new(),
            lazy_free_objects: Vec::new(),
            borrowed_keys: HashSet::new(),
            changes: Changes::default(),
            pubsub: Default::default(),
            dirty: 0,
            misconf: false,
            flushall_save: false,
            slowlog: Default::default(),
            latency: Default::default(),
            slow_ns: u64::MAX,
            errors: Default::default(),
            aof: Default::default(),
            evict: Default::default(),
        };
        st.apply_notify();
        st.apply_introspection();
        st.apply_evict();
        st
    }

    /// Takes a new configuration (CONFIG SET).
    pub fn set_config(&mut self, config: ShardConfig) {
        self.config = config;
        self.apply_notify();
        self.apply_introspection();
        self.apply_evict();
    }

    /// Counts an error reply under its code (its first word), as INFO
    /// errorstats shows them. Redis caps the table at 128 codes.
    pub fn note_error(&mut self, reply: &[u8]) {
        let body = reply.strip_prefix(b"-").unwrap_or(reply);
        let end = body
            .iter()
            .position(|&c| c == b' ' || c == b'\r')
            .unwrap_or(body.len());
        let code = String::from_utf8_lossy(&body[..end]).into_owned();
        if let Some(n) = self.errors.get_mut(&code) {
            *n += 1;
        } else if self.errors.len() < 128 {
            self.errors.insert(code, 1);
        }
    }

    /// The slow log and the latency monitor follow their parameters.
    fn apply_introspection(&mut self) {
        let c = &self.config;
        self.slowlog.set_max_len(c.slowlog_max_len);
        self.latency.threshold_ms = c.latency_monitor_threshold;
        self.latency.tracking = c.latency_tracking;
        let slow = u64::try_from(c.slowlog_log_slower_than)
            .map(|us| us.saturating_mul(1000))
            .unwrap_or(u64::MAX);
        self.slow_ns = slow.min(self.latency.threshold_ns());
    }

    /// The change hook and the store follow `notify-keyspace-events`.
    fn apply_notify(&mut self) {
        let flags = self.config.notify_keyspace_events;
        let wanted = flags & (crate::notify::class::KEYSPACE | crate::notify::class::KEYEVENT) != 0;
        self.changes.notify = if wanted { flags } else { 0 };
        self.changes.tracking.max_keys = self.config.tracking_table_max_keys;
        // The AOF logs expired keys as DEL too.
        self.keyspace
            .set_log_expired((wanted && flags & crate::notify::class::EXPIRED != 0) || self.aof.on);
    }

    /// Turns AOF logging on or off (expired keys are then logged too).
    pub fn set_aof(&mut self, on: bool) {
        if self.aof.on != on {
            self.aof.on = on;
            if !on {
                self.aof.log = Default::default();
                self.aof.captured = Default::default();
            }
            self.apply_notify();
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
                None => break,
            }
        }
        while freed < budget {
            let Some(o) = self.lazy_free_objects.last_mut() else {
                break;
            };
            let step = (budget - freed).max(1);
            if o.free_some(step) {
                self.lazy_free_objects.pop();
            }
            freed += step;
        }
        self.lazy_free.is_empty() && self.lazy_free_objects.is_empty()
    }

    /// Frees a removed entry, handing its value to the lazy-free queue when
    /// freeing it at once could stall the shard (Redis's threshold: more
    /// than 64 allocations).
    pub fn free_entry(&mut self, mut e: Entry) {
        if let Some(o) = e.object_mut() {
            if o.free_effort() > LAZYFREE_THRESHOLD {
                let o = std::mem::replace(o, Object::Str(Vec::new()));
                self.lazy_free_objects.push(o);
            }
        }
        drop(e);
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
    /// A blocking command (BLPOP...) that finds nothing to serve may
    /// block: it sets `blocked` and replies nothing. False inside MULTI,
    /// where it answers as if its timeout had passed, as Redis does.
    pub may_block: bool,
    pub blocked: bool,
}

impl<'a> Ctx<'a> {
    pub fn new(shard: &'a mut ShardState, db: usize, now: i64) -> Self {
        Ctx {
            shard,
            db,
            now,
            may_block: false,
            blocked: false,
        }
    }

    /// The selected database.
    #[inline]
    pub fn db(&mut self) -> &mut Db {
        self.shard.keyspace.db(self.db)
    }
}
