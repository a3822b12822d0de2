//! Consumer groups: each group's last delivered ID and read counter, its
//! pending entries list (PEL: entries delivered and not yet acknowledged,
//! ordered by ID, each naming its consumer), and its consumers, each with
//! the IDs of its own pending entries. Redis 7.0 keeps one time per
//! consumer, `seen-time` (shown as `idle`), touched by every read attempt
//! and claim.

use std::collections::{BTreeMap, BTreeSet};

use super::id::StreamId;

/// One pending entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nack {
    /// When it was last delivered (ms).
    pub delivery_time: i64,
    pub delivery_count: u64,
    /// The consumer that holds it.
    pub consumer: Box<[u8]>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Consumer {
    pub seen_time: i64,
    pub pel: BTreeSet<StreamId>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub last_id: StreamId,
    /// Entries the group has read, logically (-1: unknown).
    pub entries_read: i64,
    pub pel: BTreeMap<StreamId, Nack>,
    pub consumers: BTreeMap<Box<[u8]>, Consumer>,
}

impl Group {
    pub fn new(last_id: StreamId, entries_read: i64) -> Group {
        Group {
            last_id,
            entries_read,
            pel: BTreeMap::new(),
            consumers: BTreeMap::new(),
        }
    }

    /// The consumer `name`, created (seen now) if missing; true if created.
    pub fn consumer(&mut self, name: &[u8], now: i64) -> (&mut Consumer, bool) {
        let created = !self.consumers.contains_key(name);
        let c = self
            .consumers
            .entry(name.into())
            .or_insert_with(|| Consumer {
                seen_time: now,
                pel: BTreeSet::new(),
            });
        (c, created)
    }

    /// Records a delivery of `id` to `consumer`: a new pending entry, or
    /// one moved to it with its count bumped (as XREADGROUP with `>` and
    /// XCLAIM do).
    pub fn deliver(&mut self, id: StreamId, consumer: &[u8], now: i64) {
        match self.pel.get_mut(&id) {
            Some(n) => {
                if &*n.consumer != consumer {
                    if let Some(old) = self.consumers.get_mut(&n.consumer) {
                        old.pel.remove(&id);
                    }
                    n.consumer = consumer.into();
                }
                n.delivery_time = now;
                n.delivery_count += 1;
            }
            None => {
                self.pel.insert(
                    id,
                    Nack {
                        delivery_time: now,
                        delivery_count: 1,
                        consumer: consumer.into(),
                    },
                );
            }
        }
        if let Some(c) = self.consumers.get_mut(consumer) {
            c.pel.insert(id);
        }
    }

    /// Records a delivery of a new entry (XREADGROUP `>`): a fresh pending
    /// entry with count 1, or, if the group was moved back and the entry
    /// is pending already, that one handed to `consumer` with count 1.
    pub fn deliver_new(&mut self, id: StreamId, consumer: &[u8], now: i64) {
        if let Some(n) = self.pel.get_mut(&id) {
            if &*n.consumer != consumer {
                if let Some(old) = self.consumers.get_mut(&n.consumer) {
                    old.pel.remove(&id);
                }
                n.consumer = consumer.into();
            }
            n.delivery_time = now;
            n.delivery_count = 1;
        } else {
            self.pel.insert(
                id,
                Nack {
                    delivery_time: now,
                    delivery_count: 1,
                    consumer: consumer.into(),
                },
            );
        }
        if let Some(c) = self.consumers.get_mut(consumer) {
            c.pel.insert(id);
        }
    }

    /// Acknowledges `id`; true if it was pending.
    pub fn ack(&mut self, id: StreamId) -> bool {
        match self.pel.remove(&id) {
            Some(n) => {
                if let Some(c) = self.consumers.get_mut(&n.consumer) {
                    c.pel.remove(&id);
                }
                true
            }
            None => false,
        }
    }

    /// Removes a consumer and its pending entries; how many it had, or
    /// None if there was no such consumer.
    pub fn remove_consumer(&mut self, name: &[u8]) -> Option<usize> {
        let c = self.consumers.remove(name)?;
        for id in &c.pel {
            self.pel.remove(id);
        }
        Some(c.pel.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pel_follows_deliveries_and_acks() {
        let mut g = Group::new(StreamId::MIN, 0);
        g.consumer(b"a", 1);
        g.consumer(b"b", 1);
        let id = StreamId::new(1, 1);
        g.deliver(id, b"a", 10);
        assert!(g.consumers[&b"a"[..]].pel.contains(&id));
        g.deliver(id, b"b", 20);
        assert!(!g.consumers[&b"a"[..]].pel.contains(&id));
        assert_eq!(g.pel[&id].delivery_count, 2);
        assert!(g.ack(id));
        assert!(!g.ack(id));
        assert!(g.consumers[&b"b"[..]].pel.is_empty());
        g.deliver(StreamId::new(2, 0), b"b", 30);
        assert_eq!(g.remove_consumer(b"b"), Some(1));
        assert!(g.pel.is_empty());
    }
}
