//! The cluster-mode check of a request's keys, before it runs (Redis's
//! getNodeByQuery): all keys in one slot (`-CROSSSLOT`), the slot served
//! here (`-MOVED` to its owner, `-CLUSTERDOWN` when unassigned or the
//! cluster is down), and, while a slot is being moved, `-ASK` for keys
//! already gone and `-TRYAGAIN` for requests whose keys are split. EXEC is
//! checked over the keys of every queued command.
//!
//! Fast path: the slots of the keys and one atomic flag per slot. The
//! state's mutex is taken only when that flag is off.

use tessera_protocol::Args;
use tessera_shard::command::{flags, CommandSpec, KeyPos, KeySpec};
use tessera_shard::slot::key_slot;

use super::describe::endpoint;
use super::state::{Settings, State};
use crate::conn::Conn;

/// A connection's cluster flags (READONLY, ASKING) and scratch space.
#[derive(Default)]
pub struct ConnState {
    /// ASKING ran just before: the next command may use an importing slot.
    pub asking: bool,
    /// READONLY: reads may be served by a replica (no replicas yet).
    pub readonly: bool,
    keypos: Vec<KeyPos>,
}

/// What the slow path decided.
enum Verdict {
    Serve,
    Error(String),
    /// The slot is being moved: which keys exist here decides.
    Moving {
        slot: u16,
        migrating: bool,
        importing: bool,
    },
}

/// The keys of a request (or of a whole transaction) for the slow path.
struct Keys {
    keys: Vec<Vec<u8>>,
    /// Whether any command among them writes.
    write: bool,
}

const CROSSSLOT: &str = "CROSSSLOT Keys in request don't hash to the same slot";
const TRYAGAIN: &str = "TRYAGAIN Multiple keys request during rehashing of slot";
const UNBOUND: &str = "CLUSTERDOWN Hash slot not served";

fn is_shard_pubsub(spec: &CommandSpec) -> bool {
    matches!(spec.name, "ssubscribe" | "sunsubscribe" | "spublish")
}

/// `-MOVED`/`-ASK` to a node.
fn redirect_error(kind: &str, slot: u16, st: &State, idx: usize, s: &Settings) -> String {
    let n = &st.nodes[idx];
    format!("{kind} {slot} {}:{}", endpoint(n, s).unwrap_or(""), n.port)
}

/// Redis's decision for keys that all passed the first checks, before the
/// existence of keys in a moving slot is known.
fn decide(st: &State, s: &Settings, spec: &CommandSpec, k: &Keys) -> Verdict {
    let Some(first) = k.keys.first() else {
        return Verdict::Serve;
    };
    let slot = key_slot(first);
    let Some(owner) = st.owner(slot as usize) else {
        return Verdict::Error(UNBOUND.into());
    };
    if k.keys.iter().any(|x| x != first && key_slot(x) != slot) {
        return Verdict::Error(CROSSSLOT.into());
    }
    let migrating = owner == 0 && st.migrating_to.contains_key(&slot);
    let importing = !migrating && st.importing_from.contains_key(&slot);
    if !st.ok {
        if is_shard_pubsub(spec) {
            if !s.allow_pubsubshard_when_down {
                return Verdict::Error("CLUSTERDOWN The cluster is down".into());
            }
        } else if !s.allow_reads_when_down {
            return Verdict::Error("CLUSTERDOWN The cluster is down".into());
        } else if k.write {
            return Verdict::Error(
                "CLUSTERDOWN The cluster is down and only accepts read commands".into(),
            );
        }
    }
    if (migrating || importing) && spec.name == "migrate" {
        return Verdict::Serve;
    }
    if (migrating || importing) && !is_shard_pubsub(spec) {
        return Verdict::Moving {
            slot,
            migrating,
            importing,
        };
    }
    if owner != 0 {
        return Verdict::Error(redirect_error("MOVED", slot, st, owner, s));
    }
    Verdict::Serve
}

impl Conn {
    /// The cluster check of one request; true when it was answered with a
    /// redirect or error and must not run. Only called in cluster mode.
    pub(crate) async fn cluster_check(
        &mut self,
        spec: &'static CommandSpec,
        args: &Args<'_>,
    ) -> bool {
        // ASKING holds for the one command after it.
        let asking = std::mem::take(&mut self.cluster.asking);
        let keys = if spec.name == "exec" {
            match self.co.multi.as_ref() {
                Some(q) if !q.aborted => {
                    let mut k = Keys {
                        keys: Vec::new(),
                        write: false,
                    };
                    q.each_key(|key, w| {
                        k.keys.push(key.to_vec());
                        k.write |= w;
                    });
                    k
                }
                _ => return false,
            }
        } else if matches!(spec.keys, KeySpec::None) {
            return false;
        } else {
            match self.plain_keys(spec, args) {
                None => return false,
                Some(k) => k,
            }
        };
        let verdict = {
            let s = super::current_settings(&self.rt.shared);
            let st = self.rt.shared.cluster.lock();
            decide(&st, &s, spec, &keys)
        };
        let err = match verdict {
            Verdict::Serve => None,
            Verdict::Error(e) => Some(e),
            Verdict::Moving {
                slot,
                migrating,
                importing,
            } => Box::pin(self.moving_slot(spec, keys, slot, migrating, importing, asking)).await,
        };
        let Some(e) = err else {
            return false;
        };
        if spec.name == "exec" {
            // Redis discards the whole transaction.
            self.co.multi = None;
            self.co.watching = None;
            crate::txn::multi::show(self);
        } else {
            self.co.flag_multi_error();
        }
        self.local_error(&e);
        true
    }

    /// The fast path: None when every key is in one slot that this node
    /// serves plainly (or the arguments are the command's own error);
    /// otherwise the keys, for the slow path.
    fn plain_keys(&mut self, spec: &'static CommandSpec, args: &Args) -> Option<Keys> {
        let mut keypos = std::mem::take(&mut self.cluster.keypos);
        let mut out = None;
        if spec.key_positions(args, &mut keypos).is_ok() && !keypos.is_empty() {
            let first = args.get(keypos[0].index);
            let slot = key_slot(first);
            let same = keypos[1..].iter().all(|k| {
                let key = args.get(k.index);
                key == first || key_slot(key) == slot
            });
            if !(same && self.rt.shared.cluster.serves(slot)) {
                out = Some(Keys {
                    keys: keypos.iter().map(|k| args.get(k.index).to_vec()).collect(),
                    write: spec.has(flags::WRITE),
                });
            }
        }
        keypos.clear();
        self.cluster.keypos = keypos;
        out
    }

    /// A slot being moved: counts which keys exist here (on the shard that
    /// owns the slot's keys), then redirects as Redis does. Some(error)
    /// when the request must not run here.
    async fn moving_slot(
        &mut self,
        spec: &'static CommandSpec,
        keys: Keys,
        slot: u16,
        migrating: bool,
        importing: bool,
        asking: bool,
    ) -> Option<String> {
        let multiple = keys.keys.iter().any(|k| *k != keys.keys[0]);
        let shard = self.rt.shared.owner(slot);
        let now = tessera_shard::util::now_ms();
        let list = keys.keys;
        let found = self
            .rt
            .call(
                shard,
                Box::new(move |rt| {
                    let st = rt.state.borrow();
                    let db = st.keyspace.get(0);
                    let n = list
                        .iter()
                        .filter(|k| db.is_some_and(|d| d.peek(k, now).is_some()))
                        .count();
                    Box::new((n, list.len()))
                }),
            )
            .await
            .and_then(|v| v.downcast::<(usize, usize)>().ok());
        let Some(found) = found else {
            return Some("ERR shard unavailable".into());
        };
        let (existing, total) = *found;
        let missing = total - existing;
        let s = super::current_settings(&self.rt.shared);
        let st = self.rt.shared.cluster.lock();
        if migrating && missing > 0 {
            if multiple && existing > 0 {
                return Some(TRYAGAIN.into());
            }
            let to = st
                .migrating_to
                .get(&slot)
                .and_then(|id| st.find(id.as_bytes()));
            return Some(match to {
                Some(i) => redirect_error("ASK", slot, &st, i, &s),
                None => UNBOUND.into(),
            });
        }
        if importing && (asking || spec.name == "restore-asking") {
            return (multiple && missing > 0).then(|| TRYAGAIN.into());
        }
        match st.owner(slot as usize) {
            Some(0) => None,
            Some(o) => Some(redirect_error("MOVED", slot, &st, o, &s)),
            None => Some(UNBOUND.into()),
        }
    }
}
