//! Values that do not fit inline in an entry block.
//!
//! Each data type adds its variant here (lists, hashes, sets, sorted sets, streams);
//! `type_name` and `encoding` give Redis's TYPE and OBJECT ENCODING names.

use crate::types::hash::Hash;
use crate::types::list::List;
use crate::types::set::Set;
use crate::types::stream::Stream;
use crate::types::zset::Zset;

#[derive(Clone, Debug)]
pub enum Object {
    /// A string too long to keep inline, or one grown by APPEND/SETRANGE
    /// (kept with spare capacity so repeated appends stay cheap).
    Str(Vec<u8>),
    List(List),
    Hash(Hash),
    Zset(Zset),
    Set(Set),
    /// Boxed: a stream's bookkeeping would make every object larger.
    Stream(Box<Stream>),
}

impl Object {
    pub fn type_name(&self) -> &'static str {
        match self {
            Object::Str(_) => "string",
            Object::List(_) => "list",
            Object::Hash(_) => "hash",
            Object::Zset(_) => "zset",
            Object::Set(_) => "set",
            Object::Stream(_) => "stream",
        }
    }

    /// Only called for non-string objects; strings' encodings are decided by
    /// the entry, which knows the "raw" hint.
    pub fn encoding(&self) -> &'static str {
        match self {
            Object::Str(_) => "raw",
            // Redis 7.0 reports every list as a quicklist.
            Object::List(_) => "quicklist",
            Object::Hash(h) => h.encoding(),
            Object::Zset(z) => z.encoding(),
            Object::Set(s) => s.encoding(),
            Object::Stream(_) => "stream",
        }
    }

    /// Roughly how many allocations freeing this object costs (Redis's
    /// lazyfreeGetFreeEffort): big ones are freed in slices (`lazy_free`).
    pub fn free_effort(&self) -> usize {
        match self {
            Object::Str(_) => 1,
            Object::List(l) => l.node_count(),
            Object::Hash(h) => match h {
                crate::types::hash::Hash::Small(_) => 1,
                crate::types::hash::Hash::Big(d) => d.len(),
            },
            Object::Zset(z) => z.free_effort(),
            Object::Set(s) => s.free_effort(),
            Object::Stream(s) => s.free_effort(),
        }
    }

    /// Frees up to about `budget` allocations of this object; true when
    /// nothing is left (the rest is freed by dropping it).
    pub fn free_some(&mut self, budget: usize) -> bool {
        match self {
            Object::List(l) => l.free_some(budget),
            Object::Hash(crate::types::hash::Hash::Big(d)) => d.free_some(budget),
            Object::Zset(z) => z.free_some(budget),
            Object::Set(s) => s.free_some(budget),
            Object::Stream(s) => s.free_some(budget),
            _ => true,
        }
    }
}
