//! One shard's pub/sub registry: the subscriptions of the connections that
//! live on this shard (channels, patterns, shard channels). PUBLISH and
//! SPUBLISH run on every shard (a fan-out); each delivers to its own
//! subscribers and answers how many received the message, and the
//! coordinator sums the answers.
//!
//! A message is encoded once per shard and per protocol (and per pattern
//! for pattern matches) into a shared `Bytes`; every subscriber's inbox
//! gets a reference to the same bytes.

use std::collections::HashMap;
use std::rc::Rc;

use bytes::Bytes;

use crate::glob::glob_match;

/// A connection that subscribes: the server's side of a client.
pub trait Subscriber {
    /// The connection's unique id (CLIENT ID).
    fn id(&self) -> u64;
    /// Whether messages go to it as RESP3 push frames (after HELLO 3).
    fn resp3(&self) -> bool;
    /// Queues an encoded message for the connection (never blocks: a
    /// connection over its output limit is closed instead).
    fn deliver(&self, msg: &Bytes);
}

pub type Sub = Rc<dyn Subscriber>;

/// The three kinds of subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Channel,
    Pattern,
    Shard,
}

impl Kind {
    /// The confirmation word of a subscribe, and of an unsubscribe.
    pub fn words(self) -> (&'static str, &'static str) {
        match self {
            Kind::Channel => ("subscribe", "unsubscribe"),
            Kind::Pattern => ("psubscribe", "punsubscribe"),
            Kind::Shard => ("ssubscribe", "sunsubscribe"),
        }
    }
}

type Table = HashMap<Box<[u8]>, Vec<Sub>, foldhash::fast::RandomState>;

/// The registry of one shard.
#[derive(Default)]
pub struct PubSub {
    channels: Table,
    patterns: Table,
    shard_channels: Table,
}

impl PubSub {
    fn table(&self, kind: Kind) -> &Table {
        match kind {
            Kind::Channel => &self.channels,
            Kind::Pattern => &self.patterns,
            Kind::Shard => &self.shard_channels,
        }
    }

    fn table_mut(&mut self, kind: Kind) -> &mut Table {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard_channels,
        }
    }

    /// Adds a subscription. The connection keeps its own set and calls
    /// this only for a name it was not subscribed to.
    pub fn subscribe(&mut self, kind: Kind, name: &[u8], sub: Sub) {
        let t = self.table_mut(kind);
        match t.get_mut(name) {
            Some(v) => v.push(sub),
            None => {
                t.insert(name.into(), vec![sub]);
            }
        }
    }

    /// Removes connection `id`'s subscription; a name left without
    /// subscribers goes, so the registry holds no dead entries.
    pub fn unsubscribe(&mut self, kind: Kind, name: &[u8], id: u64) {
        let t = self.table_mut(kind);
        if let Some(v) = t.get_mut(name) {
            if let Some(i) = v.iter().position(|s| s.id() == id) {
                v.swap_remove(i);
            }
            if v.is_empty() {
                t.remove(name);
            }
        }
    }

    /// Whether nothing is subscribed here.
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty() && self.patterns.is_empty() && self.shard_channels.is_empty()
    }

    /// PUBLISH on this shard: delivers to the channel's subscribers, then
    /// to every matching pattern's; returns the deliveries made.
    pub fn publish(&self, channel: &[u8], msg: &[u8]) -> usize {
        let mut n = 0;
        if let Some(subs) = self.channels.get(channel) {
            n += deliver_all(subs, b"message", None, channel, msg);
        }
        if !self.patterns.is_empty() {
            for (pat, subs) in &self.patterns {
                if glob_match(pat, channel, false) {
                    n += deliver_all(subs, b"pmessage", Some(pat), channel, msg);
                }
            }
        }
        n
    }

    /// SPUBLISH on this shard: delivers to the shard channel's subscribers.
    pub fn spublish(&self, channel: &[u8], msg: &[u8]) -> usize {
        match self.shard_channels.get(channel) {
            Some(subs) => deliver_all(subs, b"smessage", None, channel, msg),
            None => 0,
        }
    }

    /// The names of one kind with subscribers here, matching `pattern`.
    pub fn names(&self, kind: Kind, pattern: Option<&[u8]>) -> Vec<Vec<u8>> {
        self.table(kind)
            .keys()
            .filter(|k| pattern.is_none_or(|p| glob_match(p, k, false)))
            .map(|k| k.to_vec())
            .collect()
    }

    /// Subscribers of one name here.
    pub fn count(&self, kind: Kind, name: &[u8]) -> usize {
        self.table(kind).get(name).map_or(0, Vec::len)
    }
}

/// Delivers one message to `subs`, encoding it at most once per protocol.
fn deliver_all(
    subs: &[Sub],
    kind: &[u8],
    pattern: Option<&[u8]>,
    channel: &[u8],
    msg: &[u8],
) -> usize {
    let mut enc: [Option<Bytes>; 2] = [None, None];
    for s in subs {
        let r3 = s.resp3();
        let b = enc[r3 as usize].get_or_insert_with(|| encode(r3, kind, pattern, channel, msg));
        s.deliver(b);
    }
    subs.len()
}

/// A message as Redis sends it: `message`/`smessage` channel payload, or
/// `pmessage` pattern channel payload; an array in RESP2, a push in RESP3.
pub fn encode(
    resp3: bool,
    kind: &[u8],
    pattern: Option<&[u8]>,
    channel: &[u8],
    msg: &[u8],
) -> Bytes {
    let parts = 3 + pattern.is_some() as usize;
    let mut out = Vec::with_capacity(
        32 + kind.len() + pattern.map_or(0, |p| p.len() + 16) + channel.len() + msg.len(),
    );
    out.push(if resp3 { b'>' } else { b'*' });
    out.extend_from_slice(itoa::Buffer::new().format(parts).as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut bulk = |b: &[u8]| {
        out.push(b'$');
        out.extend_from_slice(itoa::Buffer::new().format(b.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(b);
        out.extend_from_slice(b"\r\n");
    };
    bulk(kind);
    if let Some(p) = pattern {
        bulk(p);
    }
    bulk(channel);
    bulk(msg);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    struct Probe {
        id: u64,
        r3: bool,
        got: RefCell<Vec<Bytes>>,
    }

    impl Subscriber for Probe {
        fn id(&self) -> u64 {
            self.id
        }
        fn resp3(&self) -> bool {
            self.r3
        }
        fn deliver(&self, msg: &Bytes) {
            self.got.borrow_mut().push(msg.clone());
        }
    }

    fn probe(id: u64, r3: bool) -> Rc<Probe> {
        Rc::new(Probe {
            id,
            r3,
            got: RefCell::new(Vec::new()),
        })
    }

    #[test]
    fn publish_reaches_channels_and_patterns_once_encoded() {
        let mut ps = PubSub::default();
        let (a, b, c) = (probe(1, false), probe(2, false), probe(3, true));
        ps.subscribe(Kind::Channel, b"news", a.clone());
        ps.subscribe(Kind::Channel, b"news", b.clone());
        ps.subscribe(Kind::Pattern, b"n*", c.clone());
        ps.subscribe(Kind::Channel, b"news", c.clone());
        assert_eq!(ps.publish(b"news", b"hi"), 4);
        assert_eq!(
            &a.got.borrow()[0][..],
            b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n"
        );
        // One encoding shared by both RESP2 subscribers.
        assert_eq!(a.got.borrow()[0].as_ptr(), b.got.borrow()[0].as_ptr());
        let got = c.got.borrow();
        assert_eq!(got.len(), 2);
        assert!(got
            .iter()
            .any(|m| &m[..] == b">3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n"));
        assert!(got
            .iter()
            .any(|m| &m[..] == b">4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$2\r\nhi\r\n"));
        assert_eq!(ps.publish(b"other", b"x"), 0);
        assert_eq!(ps.spublish(b"news", b"x"), 0);
    }

    #[test]
    fn unsubscribe_leaves_no_dead_entries() {
        let mut ps = PubSub::default();
        let a = probe(1, false);
        ps.subscribe(Kind::Shard, b"s", a.clone());
        ps.subscribe(Kind::Pattern, b"p*", a.clone());
        assert_eq!(ps.spublish(b"s", b"m"), 1);
        assert_eq!(
            &a.got.borrow()[0][..],
            b"*3\r\n$8\r\nsmessage\r\n$1\r\ns\r\n$1\r\nm\r\n"
        );
        assert_eq!(ps.names(Kind::Pattern, None), vec![b"p*".to_vec()]);
        ps.unsubscribe(Kind::Shard, b"s", 1);
        ps.unsubscribe(Kind::Pattern, b"p*", 1);
        ps.unsubscribe(Kind::Pattern, b"never", 1);
        assert!(ps.is_empty());
        assert_eq!(ps.count(Kind::Shard, b"s"), 0);
    }
}
