//! SCAN's shard-side part.

use super::ShardState;
use crate::glob::glob_match;

/// Scans whole owned slots of `db` from `start_slot` (inclusive) towards
/// `end_slot` (exclusive) until at least `count` keys were examined.
/// Returns the next slot to scan (`end_slot` when this range is done) and
/// the live keys found that match `pattern` and `type_filter`. Whole slots
/// only: a key present for the whole iteration is returned exactly once.
#[allow(clippy::too_many_arguments)]
pub fn scan_slots(
    shard: &mut ShardState,
    db: usize,
    start_slot: u16,
    end_slot: u16,
    count: usize,
    pattern: Option<&[u8]>,
    type_filter: Option<&[u8]>,
    now: i64,
) -> (u16, Vec<Vec<u8>>) {
    let mut out = Vec::new();
    let Some(d) = shard.keyspace.db_if_exists(db) else {
        return (end_slot, out);
    };
    let mut examined = 0;
    let mut slot = start_slot;
    while slot < end_slot && examined < count {
        for e in d.slot(slot).iter() {
            examined += 1;
            if e.is_expired(now) {
                continue;
            }
            if pattern.is_some_and(|p| !glob_match(p, e.key(), false)) {
                continue;
            }
            if type_filter.is_some_and(|t| !t.eq_ignore_ascii_case(e.type_name().as_bytes())) {
                continue;
            }
            out.push(e.key().to_vec());
        }
        slot += 1;
    }
    (slot, out)
}
