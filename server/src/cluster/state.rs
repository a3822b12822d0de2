//! The node table and slot map of this node's view of the cluster, with
//! the rules that change them (slot assignment, SETSLOT, epochs, FORGET,
//! RESET) and the cluster health (`cluster_state`) computed from them as
//! Redis computes it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tessera_shard::slot::SLOTS;

use super::node::{flag, random_id, Node};

/// No owner in the slot map.
const NONE: u16 = u16::MAX;

/// Redis waits this long after startup before it may declare the cluster
/// up (CLUSTER_WRITABLE_DELAY).
const WRITABLE_DELAY: Duration = Duration::from_millis(2000);

/// The settings the state reads, copied from the configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    pub node_timeout_ms: u64,
    pub require_full_coverage: bool,
    pub allow_reads_when_down: bool,
    pub allow_pubsubshard_when_down: bool,
    /// `ip`, `hostname` or `unknown-endpoint`.
    pub endpoint_type: String,
    pub announce_ip: String,
    pub announce_hostname: String,
    /// Client port and bus port myself announces.
    pub port: u16,
    pub cport: u16,
}

pub struct State {
    /// Every known node; myself is always the first.
    pub nodes: Vec<Node>,
    /// Slot -> index in `nodes` of its owner, or NONE.
    owner: Box<[u16]>,
    /// Slots this node (their owner) is moving to another node.
    pub migrating_to: BTreeMap<u16, String>,
    /// Slots another node owns that this node is taking over.
    pub importing_from: BTreeMap<u16, String>,
    pub current_epoch: u64,
    pub last_vote_epoch: u64,
    /// `cluster_state:ok`.
    pub ok: bool,
    /// Masters serving at least one slot (`cluster_size`).
    pub size: usize,
    first_update: Option<Instant>,
    among_minority: Option<Instant>,
    /// nodes.conf must be rewritten.
    pub dirty: bool,
    /// Node ids FORGET banned from being re-added, until when.
    pub blacklist: Vec<(String, Instant)>,
}

impl State {
    /// A new node alone in its cluster.
    pub fn new_alone() -> State {
        let me = Node::new(random_id(), flag::MYSELF | flag::MASTER);
        State::with_nodes(vec![me])
    }

    /// A state from loaded nodes (myself first), with no slot map yet.
    pub fn with_nodes(mut nodes: Vec<Node>) -> State {
        nodes[0].linked = true;
        let mut st = State {
            nodes,
            owner: vec![NONE; SLOTS].into_boxed_slice(),
            migrating_to: BTreeMap::new(),
            importing_from: BTreeMap::new(),
            current_epoch: 0,
            last_vote_epoch: 0,
            ok: false,
            // Redis starts with a size of 1 until its first state update.
            size: 1,
            first_update: None,
            among_minority: None,
            dirty: false,
            blacklist: Vec::new(),
        };
        st.rebuild_owners();
        st
    }

    /// Recomputes the slot map from the nodes' bitmaps.
    pub fn rebuild_owners(&mut self) {
        self.owner.fill(NONE);
        for (i, n) in self.nodes.iter().enumerate() {
            for (a, b) in n.slots.ranges() {
                for s in a..=b {
                    self.owner[s] = i as u16;
                }
            }
        }
    }

    pub fn myself(&self) -> &Node {
        &self.nodes[0]
    }
    pub fn myself_mut(&mut self) -> &mut Node {
        &mut self.nodes[0]
    }

    /// Index of a node by its full id.
    pub fn find(&self, id: &[u8]) -> Option<usize> {
        self.nodes.iter().position(|n| n.id.as_bytes() == id)
    }

    /// The slot's owner, as an index in `nodes`.
    pub fn owner(&self, slot: usize) -> Option<usize> {
        let o = self.owner[slot];
        (o != NONE).then_some(o as usize)
    }

    /// Whether this node serves the slot without any second look: it owns
    /// it, the cluster is up and the slot is not being moved.
    pub fn serves_plainly(&self, slot: usize) -> bool {
        self.ok
            && self.owner[slot] == 0
            && !self.migrating_to.contains_key(&(slot as u16))
            && !self.importing_from.contains_key(&(slot as u16))
    }

    pub fn add_slot(&mut self, node: usize, slot: usize) {
        self.del_slot(slot);
        self.nodes[node].slots.set(slot);
        self.owner[slot] = node as u16;
    }

    pub fn del_slot(&mut self, slot: usize) {
        if let Some(o) = self.owner(slot) {
            self.nodes[o].slots.clear(slot);
            self.owner[slot] = NONE;
        }
    }

    pub fn slots_assigned(&self) -> usize {
        self.owner.iter().filter(|&&o| o != NONE).count()
    }

    /// Slots whose owner is flagged with any of `flags` (or with none of
    /// PFAIL/FAIL when `flags` is 0).
    pub fn slots_with(&self, flags: u16) -> usize {
        self.owner
            .iter()
            .filter(|&&o| o != NONE)
            .filter(|&&o| {
                let f = self.nodes[o as usize].flags & (flag::PFAIL | flag::FAIL);
                if flags == 0 {
                    f == 0
                } else {
                    f & flags != 0
                }
            })
            .count()
    }

    /// The highest config epoch any node has (or the current epoch).
    pub fn max_epoch(&self) -> u64 {
        self.nodes
            .iter()
            .map(|n| n.config_epoch)
            .max()
            .unwrap_or(0)
            .max(self.current_epoch)
    }

    /// Redis's clusterBumpConfigEpochWithoutConsensus: true when bumped.
    pub fn bump_epoch(&mut self) -> bool {
        let max = self.max_epoch();
        let me = &self.nodes[0];
        if me.config_epoch == 0 || me.config_epoch != max {
            self.current_epoch += 1;
            self.nodes[0].config_epoch = self.current_epoch;
            self.dirty = true;
            log::info!("New configEpoch set to {}", self.nodes[0].config_epoch);
            true
        } else {
            false
        }
    }

    /// Removes a node (never myself), its slots and the moves naming it.
    pub fn remove(&mut self, idx: usize) {
        if idx == 0 || idx >= self.nodes.len() {
            return;
        }
        let gone = self.nodes.remove(idx);
        self.migrating_to.retain(|_, to| *to != gone.id);
        self.importing_from.retain(|_, from| *from != gone.id);
        for n in &mut self.nodes {
            n.fail_reports.retain(|r| *r != gone.id);
            if n.master.as_deref() == Some(&gone.id) {
                n.master = None;
            }
        }
        self.rebuild_owners();
        self.dirty = true;
    }

    /// CLUSTER RESET: forget every other node and every slot; a hard reset
    /// also zeroes the epochs and takes a new id.
    pub fn reset(&mut self, hard: bool) {
        self.nodes.truncate(1);
        self.migrating_to.clear();
        self.importing_from.clear();
        let me = &mut self.nodes[0];
        me.slots = Default::default();
        me.flags = flag::MYSELF | flag::MASTER;
        me.master = None;
        if hard {
            me.config_epoch = 0;
            me.id = random_id();
            me.shard_id = random_id();
            self.current_epoch = 0;
            self.last_vote_epoch = 0;
            log::info!("Node hard reset, now I'm {}", self.nodes[0].id);
        }
        self.rebuild_owners();
        self.dirty = true;
    }

    /// Updates myself's address from the settings (announced ip, ports,
    /// hostname), as Redis does when they change.
    pub fn apply_settings(&mut self, s: &Settings) {
        let me = &mut self.nodes[0];
        if !s.announce_ip.is_empty() && me.ip != s.announce_ip {
            me.ip = s.announce_ip.clone();
            self.dirty = true;
        }
        if me.port != s.port || me.cport != s.cport || me.hostname != s.announce_hostname {
            me.port = s.port;
            me.cport = s.cport;
            me.hostname = s.announce_hostname.clone();
            self.dirty = true;
        }
    }

    /// Redis's clusterUpdateState: the cluster is down when a slot is
    /// uncovered (with full coverage required) or when this node sees a
    /// minority of the masters; it comes back up only after a rejoin delay.
    pub fn update_state(&mut self, now: Instant, s: &Settings) {
        let first = *self.first_update.get_or_insert(now);
        if !self.ok && now.duration_since(first) < WRITABLE_DELAY {
            return;
        }
        let mut ok = true;
        if s.require_full_coverage {
            ok = (0..SLOTS).all(|slot| {
                self.owner(slot)
                    .is_some_and(|o| !self.nodes[o].has(flag::FAIL))
            });
        }
        let masters = self
            .nodes
            .iter()
            .filter(|n| n.is_master() && n.numslots() > 0);
        let (mut size, mut reachable) = (0, 0);
        for n in masters {
            size += 1;
            if !n.has(flag::FAIL | flag::PFAIL) {
                reachable += 1;
            }
        }
        self.size = size;
        if reachable < size / 2 + 1 {
            ok = false;
            self.among_minority = Some(now);
        }
        if ok != self.ok {
            let rejoin = Duration::from_millis(s.node_timeout_ms.clamp(500, 5000));
            if ok
                && self
                    .among_minority
                    .is_some_and(|t| now.duration_since(t) < rejoin)
            {
                return;
            }
            log::info!("Cluster state changed: {}", if ok { "ok" } else { "fail" });
            self.ok = ok;
        }
    }

    /// Drops handshakes that did not complete in time, and old bans.
    pub fn expire_handshakes(&mut self, now: Instant, s: &Settings) {
        let timeout = Duration::from_millis(s.node_timeout_ms.max(1000));
        while let Some(i) = self
            .nodes
            .iter()
            .position(|n| n.has(flag::HANDSHAKE) && now.duration_since(n.created) > timeout)
        {
            log::debug!(
                "Clearing expired handshake for {}:{}",
                self.nodes[i].ip,
                self.nodes[i].port
            );
            self.nodes.remove(i);
            self.rebuild_owners();
        }
        self.blacklist.retain(|(_, until)| *until > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            node_timeout_ms: 15000,
            require_full_coverage: true,
            allow_reads_when_down: false,
            allow_pubsubshard_when_down: true,
            endpoint_type: "ip".into(),
            announce_ip: String::new(),
            announce_hostname: String::new(),
            port: 6379,
            cport: 16379,
        }
    }

    #[test]
    fn state_needs_full_coverage_and_waits_after_minority() {
        let s = settings();
        let mut st = State::new_alone();
        let t0 = Instant::now();
        st.update_state(t0, &s);
        assert!(!st.ok);
        // After the writable delay, still no slots: down and in minority.
        let t1 = t0 + Duration::from_secs(3);
        st.update_state(t1, &s);
        assert!(!st.ok);
        assert_eq!(st.size, 0);
        for slot in 0..SLOTS {
            st.add_slot(0, slot);
        }
        // The rejoin delay (5 s at the default node timeout) holds it down.
        st.update_state(t1 + Duration::from_secs(1), &s);
        assert!(!st.ok);
        st.update_state(t1 + Duration::from_secs(6), &s);
        assert!(st.ok);
        assert_eq!(st.size, 1);
        st.del_slot(7);
        st.update_state(t1 + Duration::from_secs(7), &s);
        assert!(!st.ok);
        assert_eq!(st.slots_assigned(), SLOTS - 1);
    }

    #[test]
    fn bump_epoch_then_still() {
        let mut st = State::new_alone();
        assert!(st.bump_epoch());
        assert_eq!(st.myself().config_epoch, 1);
        assert!(!st.bump_epoch());
    }

    #[test]
    fn remove_node_frees_its_slots() {
        let mut st = State::new_alone();
        st.nodes.push(Node::new(random_id(), flag::MASTER));
        st.add_slot(1, 10);
        st.add_slot(0, 11);
        let other = st.nodes[1].id.clone();
        st.migrating_to.insert(11, other);
        st.remove(1);
        assert_eq!(st.owner(10), None);
        assert_eq!(st.owner(11), Some(0));
        assert!(st.migrating_to.is_empty());
    }
}
