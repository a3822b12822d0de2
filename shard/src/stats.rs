//! Per-shard counters. The server sums them across shards for INFO.

/// One command's counters (INFO commandstats).
#[derive(Clone, Copy, Default, Debug)]
pub struct CmdStat {
    pub calls: u64,
    /// Time spent, in nanoseconds (INFO shows microseconds).
    pub nsec: u64,
    pub rejected_calls: u64,
    pub failed_calls: u64,
}

#[derive(Clone, Debug, Default)]
pub struct ShardStats {
    /// Indexed by command id (see `command::table::all`).
    pub commands: Vec<CmdStat>,
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    pub expired_keys_active: u64,
    pub expire_cycles: u64,
    pub total_commands: u64,
    pub forwarded_in: u64,
}

impl ShardStats {
    pub fn new() -> Self {
        ShardStats {
            commands: vec![CmdStat::default(); crate::command::table::count()],
            ..Default::default()
        }
    }

    #[inline]
    pub fn cmd(&mut self, id: u16) -> &mut CmdStat {
        &mut self.commands[id as usize]
    }

    /// Adds another shard's counters to these (for the server-wide view).
    pub fn merge(&mut self, other: &ShardStats) {
        if self.commands.len() < other.commands.len() {
            self.commands
                .resize(other.commands.len(), CmdStat::default());
        }
        for (a, b) in self.commands.iter_mut().zip(&other.commands) {
            a.calls += b.calls;
            a.nsec += b.nsec;
            a.rejected_calls += b.rejected_calls;
            a.failed_calls += b.failed_calls;
        }
        self.keyspace_hits += other.keyspace_hits;
        self.keyspace_misses += other.keyspace_misses;
        self.expired_keys_active += other.expired_keys_active;
        self.expire_cycles += other.expire_cycles;
        self.total_commands += other.total_commands;
        self.forwarded_in += other.forwarded_in;
    }

    /// CONFIG RESETSTAT.
    pub fn reset(&mut self) {
        let n = self.commands.len();
        *self = ShardStats::default();
        self.commands = vec![CmdStat::default(); n];
    }
}
