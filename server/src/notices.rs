//! Publishing keyspace notifications (`notify-keyspace-events`).
//!
//! The shard that owns a key makes its notifications as the command that
//! touched it runs (`tessera_shard::notify`, from the change hook's view
//! of the command); right after, before anything else runs here, they are
//! published like a PUBLISH from this shard: delivered to this shard's
//! subscribers at once, and sent in one message to every other shard that
//! has subscribers (its ring keeps them in order after this shard's
//! earlier ones).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tessera_shard::notify::{self, Notice};

use crate::mesh::Request;
use crate::runtime::ShardRuntime;

impl ShardRuntime {
    /// Publishes the notifications the writes just run made.
    pub(crate) fn publish_notices(&self) {
        let notices = std::mem::take(&mut self.state.borrow_mut().changes.notices);
        if notices.is_empty() {
            return;
        }
        let notices = Arc::new(notices);
        for s in 0..self.nshards() {
            if !self.shared.pubsub_live[s].load(Ordering::Acquire) {
                continue;
            }
            if s == self.id {
                deliver(self, &notices);
            } else {
                let n = notices.clone();
                self.send_now(s, Request::Do(Box::new(move |rt| deliver(rt, &n))));
            }
        }
    }

    /// The `expired` events of keys the active expiry cycle reclaimed.
    pub(crate) fn notify_expired(&self) {
        {
            let mut st = self.state.borrow_mut();
            let flags = st.changes.notify;
            if flags == 0 {
                return;
            }
            for (db, key) in st.keyspace.take_expired() {
                notify::push_event(
                    &mut st.changes.notices,
                    flags,
                    db,
                    &key,
                    "expired",
                    notify::class::EXPIRED,
                );
            }
        }
        self.publish_notices();
    }
}

/// Delivers notifications to this shard's subscribers.
fn deliver(rt: &ShardRuntime, notices: &[Notice]) {
    let st = rt.state.borrow();
    for (channel, msg) in notices {
        st.pubsub.publish(channel, msg);
    }
}
