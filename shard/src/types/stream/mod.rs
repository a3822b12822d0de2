//! Streams: an append-only log of entries (an ID and field-value pairs)
//! plus its consumer groups.
//!
//! Entries live in packed nodes (`node.rs`) in a B-tree keyed by each
//! node's master ID, as Redis keeps listpacks in a radix tree: appending
//! touches only the last node, a range read seeks one node and walks on,
//! and trimming drops whole nodes from the front. A node takes entries
//! until `stream-node-max-entries` or `stream-node-max-bytes` (0: no
//! limit) would be passed. The bookkeeping Redis 7.0 keeps beside the
//! entries (last ID, first ID, the greatest deleted ID, entries ever
//! added) makes consumer groups' `entries-read` and lag computable.

pub mod group;
pub mod id;
pub mod node;

use std::collections::BTreeMap;

pub use group::{Consumer, Group, Nack};
pub use id::{parse_add_id, parse_id, AddId, ParsedId, StreamId};
pub use node::{EntryRef, Field, Node, Pairs};

/// `stream-node-max-bytes` and `stream-node-max-entries` (0: no limit).
#[derive(Clone, Copy, Debug)]
pub struct NodeLimits {
    pub max_bytes: usize,
    pub max_entries: usize,
}

impl Default for NodeLimits {
    fn default() -> Self {
        NodeLimits {
            max_bytes: 4096,
            max_entries: 100,
        }
    }
}

/// Redis's SCG_INVALID_ENTRIES_READ: a group's read counter is unknown.
pub const INVALID_ENTRIES_READ: i64 = -1;

/// How XADD/XTRIM trim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trim {
    MaxLen(u64),
    MinId(StreamId),
}

/// A stream's counters, as consumer groups' read counters need them.
#[derive(Clone, Copy, Debug)]
pub struct Meta {
    pub len: u64,
    pub last_id: StreamId,
    pub first_id: StreamId,
    pub max_deleted: StreamId,
    pub entries_added: u64,
}

impl Meta {
    /// Whether a deleted entry may lie in `start..=end` (Redis's
    /// streamRangeHasTombstones: judged from the greatest deleted ID).
    pub fn range_has_tombstones(&self, start: StreamId, end: StreamId) -> bool {
        if self.len == 0 || self.max_deleted.is_zero() || self.first_id > self.max_deleted {
            return false;
        }
        start <= self.max_deleted && self.max_deleted <= end
    }

    /// The logical read counter of `id` (how many entries were ever added
    /// up to it), when it can be known (Redis's
    /// streamEstimateDistanceFromFirstEverEntry).
    pub fn estimate_entries_read(&self, id: StreamId) -> i64 {
        if self.entries_added == 0 {
            return 0;
        }
        if self.len == 0 && id <= self.last_id {
            return self.entries_added as i64;
        }
        if id == self.last_id {
            return self.entries_added as i64;
        }
        if id > self.last_id {
            return INVALID_ENTRIES_READ;
        }
        if self.max_deleted.is_zero() || self.max_deleted < self.first_id {
            if id < self.first_id {
                return (self.entries_added - self.len) as i64;
            }
            if id == self.first_id {
                return (self.entries_added - self.len + 1) as i64;
            }
        }
        INVALID_ENTRIES_READ
    }

    /// A group's lag (entries not yet read by it), None when unknown.
    pub fn group_lag(&self, g: &Group) -> Option<i64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if g.entries_read != INVALID_ENTRIES_READ
            && !self.range_has_tombstones(g.last_id, StreamId::MAX)
        {
            return Some(self.entries_added as i64 - g.entries_read);
        }
        let read = self.estimate_entries_read(g.last_id);
        (read != INVALID_ENTRIES_READ).then(|| self.entries_added as i64 - read)
    }

    /// A group's counters after it was served `id` (beyond its last ID).
    pub fn advance_group(&self, g: &mut Group, id: StreamId) {
        if g.entries_read != INVALID_ENTRIES_READ && !self.range_has_tombstones(id, StreamId::MAX) {
            g.entries_read += 1;
        } else if self.entries_added > 0 {
            g.entries_read = self.estimate_entries_read(id);
        }
        g.last_id = id;
    }
}

#[derive(Clone, Debug, Default)]
pub struct Stream {
    nodes: BTreeMap<StreamId, Node>,
    len: u64,
    pub last_id: StreamId,
    pub first_id: StreamId,
    pub max_deleted: StreamId,
    pub entries_added: u64,
    /// Consumer groups by name (sorted, as Redis's radix tree lists them).
    pub groups: BTreeMap<Box<[u8]>, Group>,
}

/// Why an XADD ID was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdError {
    /// Not above the stream's last ID.
    TooSmall,
    /// 0-0 (never a valid entry ID).
    Zero,
}

impl Stream {
    pub fn new() -> Stream {
        Stream::default()
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Nodes in the tree (XINFO's radix-tree-keys).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The ID XADD gives a new entry, or why it cannot.
    pub fn next_id(&self, want: AddId, now_ms: u64) -> Result<StreamId, IdError> {
        let last = self.last_id;
        match want {
            AddId::Auto => {
                if now_ms > last.ms {
                    Ok(StreamId::new(now_ms, 0))
                } else {
                    last.incr().ok_or(IdError::TooSmall)
                }
            }
            AddId::AutoSeq(ms) => {
                if ms > last.ms {
                    Ok(StreamId::new(ms, 0))
                } else if ms == last.ms && last.seq < u64::MAX {
                    Ok(StreamId::new(ms, last.seq + 1))
                } else {
                    Err(IdError::TooSmall)
                }
            }
            AddId::Explicit(id) => {
                if id.is_zero() {
                    Err(IdError::Zero)
                } else if id <= last {
                    Err(IdError::TooSmall)
                } else {
                    Ok(id)
                }
            }
        }
    }

    /// Appends an entry with `id` (above `last_id`, as `next_id` gives).
    pub fn add<P: Pairs + ?Sized>(&mut self, id: StreamId, p: &P, lim: NodeLimits) {
        let pushed = match self.nodes.last_entry() {
            Some(mut last) if lim.max_entries == 0 || last.get().total() < lim.max_entries => {
                let master = *last.key();
                let pushed = last.get_mut().try_push(master, id, p, lim.max_bytes);
                if !pushed {
                    last.get_mut().seal();
                }
                pushed
            }
            Some(mut last) => {
                last.get_mut().seal();
                false
            }
            None => false,
        };
        if !pushed {
            let mut node = Node::new(p);
            node.push(id, id, p);
            // Size the node for the entries it is expected to take, so it
            // is allocated once (an entry like this one, times the limit).
            let head = node.header_bytes();
            let per = node.bytes() - head;
            let want = match (lim.max_entries, lim.max_bytes) {
                (0, 0) => 0,
                (0, b) => b,
                (e, 0) => head + per * e,
                (e, b) => (head + per * e).min(b),
            };
            node.reserve_exact(want.saturating_sub(node.bytes()).min(1 << 16));
            self.nodes.insert(id, node);
        }
        self.len += 1;
        if self.len == 1 {
            self.first_id = id;
        }
        self.last_id = id;
        self.entries_added += 1;
    }

    /// The first or last live entry's ID.
    fn edge_id(&self, first: bool) -> Option<StreamId> {
        if first {
            self.nodes
                .iter()
                .find_map(|(m, n)| n.iter(*m).find(|e| !e.deleted).map(|e| e.id))
        } else {
            self.nodes
                .iter()
                .rev()
                .find_map(|(m, n)| n.iter(*m).filter(|e| !e.deleted).last().map(|e| e.id))
        }
    }

    /// The first and last live entries' IDs (XINFO's first-entry/last-entry).
    pub fn first_entry(&self) -> Option<EntryRef<'_>> {
        self.nodes
            .iter()
            .find_map(|(m, n)| n.iter(*m).find(|e| !e.deleted))
    }

    pub fn last_entry(&self) -> Option<EntryRef<'_>> {
        self.nodes
            .iter()
            .rev()
            .find_map(|(m, n)| n.iter(*m).filter(|e| !e.deleted).last())
    }

    fn refresh_first_id(&mut self) {
        self.first_id = if self.len == 0 {
            StreamId::MIN
        } else {
            self.edge_id(true).unwrap_or_default()
        };
    }

    /// Deletes the entry `id`; false if there is none.
    pub fn delete(&mut self, id: StreamId) -> bool {
        let Some((&master, node)) = self.nodes.range_mut(..=id).next_back() else {
            return false;
        };
        let Some(at) = node
            .iter(master)
            .take_while(|e| e.id <= id)
            .find(|e| e.id == id && !e.deleted)
            .map(|e| e.at)
        else {
            return false;
        };
        node.delete_at(at);
        if node.live == 0 {
            self.nodes.remove(&master);
        }
        self.len -= 1;
        if id > self.max_deleted {
            self.max_deleted = id;
        }
        if id == self.first_id {
            self.refresh_first_id();
        }
        true
    }

    /// Trims as XADD/XTRIM do; `approx` removes whole nodes only, at most
    /// `limit` entries (0: no limit). Returns how many entries went.
    pub fn trim(&mut self, how: Trim, approx: bool, limit: u64) -> u64 {
        let mut removed = 0u64;
        loop {
            if let Trim::MaxLen(max) = how {
                if self.len <= max {
                    break;
                }
            }
            let Some(mut first) = self.nodes.first_entry() else {
                break;
            };
            let master = *first.key();
            let node = first.get_mut();
            let live = node.live as u64;
            if limit > 0 && removed + live > limit {
                break;
            }
            let whole = match how {
                Trim::MaxLen(max) => self.len - live >= max,
                Trim::MinId(min) => node.last < min,
            };
            if whole {
                first.remove();
                self.len -= live;
                removed += live;
                continue;
            }
            if approx {
                break;
            }
            // Exact: tombstone entries of this node from its front.
            let ats: Vec<(usize, StreamId, bool)> =
                node.iter(master).map(|e| (e.at, e.id, e.deleted)).collect();
            for (at, id, deleted) in ats {
                let more = match how {
                    Trim::MaxLen(max) => self.len > max,
                    Trim::MinId(min) => id < min,
                };
                if !more {
                    break;
                }
                if !deleted {
                    node.delete_at(at);
                    self.len -= 1;
                    removed += 1;
                }
            }
            if node.live == 0 {
                first.remove();
            }
            break;
        }
        if removed > 0 {
            self.refresh_first_id();
        }
        removed
    }

    /// Calls `f` on each live entry with an ID in `start..=end`, ascending
    /// (descending when `rev`), until it returns false.
    pub fn range<'a>(
        &'a self,
        start: StreamId,
        end: StreamId,
        rev: bool,
        mut f: impl FnMut(EntryRef<'a>) -> bool,
    ) {
        if start > end {
            return;
        }
        if !rev {
            let from = self
                .nodes
                .range(..=start)
                .next_back()
                .map(|(k, _)| *k)
                .unwrap_or(start);
            for (m, n) in self.nodes.range(from..=end) {
                if n.last < start {
                    continue;
                }
                for e in n.iter(*m) {
                    if e.id > end {
                        return;
                    }
                    if e.deleted || e.id < start {
                        continue;
                    }
                    if !f(e) {
                        return;
                    }
                }
            }
        } else {
            let mut stack: Vec<EntryRef<'a>> = Vec::new();
            for (m, n) in self.nodes.range(..=end).rev() {
                if n.last < start {
                    return;
                }
                stack.clear();
                stack.extend(n.iter(*m).filter(|e| !e.deleted && e.id <= end));
                while let Some(e) = stack.pop() {
                    if e.id < start {
                        return;
                    }
                    if !f(e) {
                        return;
                    }
                }
            }
        }
    }

    /// The live entry `id`, if any.
    pub fn get(&self, id: StreamId) -> Option<EntryRef<'_>> {
        let (m, n) = self.nodes.range(..=id).next_back()?;
        n.iter(*m)
            .take_while(|e| e.id <= id)
            .find(|e| e.id == id && !e.deleted)
    }

    /// The counters group bookkeeping reads (a copy, so a group can be
    /// changed while they are read).
    pub fn meta(&self) -> Meta {
        Meta {
            len: self.len,
            last_id: self.last_id,
            first_id: self.first_id,
            max_deleted: self.max_deleted,
            entries_added: self.entries_added,
        }
    }

    pub fn estimate_entries_read(&self, id: StreamId) -> i64 {
        self.meta().estimate_entries_read(id)
    }

    pub fn group_lag(&self, g: &Group) -> Option<i64> {
        self.meta().group_lag(g)
    }

    /// Roughly how many allocations freeing the stream costs.
    pub fn free_effort(&self) -> usize {
        self.nodes.len()
            + self
                .groups
                .values()
                .map(|g| 1 + g.pel.len() + g.consumers.len())
                .sum::<usize>()
    }

    /// Frees up to `budget` nodes (lazy free); true when none are left.
    pub fn free_some(&mut self, budget: usize) -> bool {
        for _ in 0..budget {
            if self.nodes.pop_first().is_none() {
                break;
            }
        }
        self.nodes.is_empty()
    }

    /// Heap bytes of the entries (MEMORY USAGE), roughly.
    pub fn heap_bytes(&self) -> usize {
        self.nodes
            .values()
            .map(|n| n.heap_bytes() + 64)
            .sum::<usize>()
    }

    /// Every node with its master ID (RDB writing).
    pub fn nodes(&self) -> impl Iterator<Item = (StreamId, &Node)> {
        self.nodes.iter().map(|(k, n)| (*k, n))
    }
}

#[cfg(test)]
mod tests;
