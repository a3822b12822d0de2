//! Looking a key up as one collection type: the WRONGTYPE and keyspace
//! hit/miss handling that every collection family shares.

use tessera_protocol::Reply;

use super::errors::WRONGTYPE;
use super::Ctx;
use crate::store::{Db, Object};
use crate::types::hash::Hash;
use crate::types::list::List;
use crate::types::set::Set;
use crate::types::stream::Stream;
use crate::types::zset::Zset;

/// A key looked up for writing as a `T`.
pub(crate) enum Found<'a, T> {
    Missing,
    Wrong,
    Ok(&'a mut T),
}

/// A collection type's view of an object. A new type adds its impl here.
pub(crate) trait Typed: Sized {
    fn of(o: &Object) -> Option<&Self>;
    fn of_mut(o: &mut Object) -> Option<&mut Self>;
}

macro_rules! typed {
    ($t:ty, $variant:ident) => {
        impl Typed for $t {
            #[inline]
            fn of(o: &Object) -> Option<&Self> {
                match o {
                    Object::$variant(x) => Some(x),
                    _ => None,
                }
            }
            #[inline]
            fn of_mut(o: &mut Object) -> Option<&mut Self> {
                match o {
                    Object::$variant(x) => Some(x),
                    _ => None,
                }
            }
        }
    };
}
typed!(List, List);
typed!(Hash, Hash);
typed!(Set, Set);
typed!(Zset, Zset);

impl Typed for Stream {
    #[inline]
    fn of(o: &Object) -> Option<&Self> {
        match o {
            Object::Stream(x) => Some(x),
            _ => None,
        }
    }
    #[inline]
    fn of_mut(o: &mut Object) -> Option<&mut Self> {
        match o {
            Object::Stream(x) => Some(x),
            _ => None,
        }
    }
}

/// A key's value for writing (lazy expiry and LRU through `Db::get`).
pub(crate) fn typed_mut<'a, T: Typed>(db: &'a mut Db, key: &[u8], now: i64) -> Found<'a, T> {
    match db.get(key, now) {
        None => Found::Missing,
        Some(e) => match e.object_mut().and_then(T::of_mut) {
            Some(x) => Found::Ok(x),
            None => Found::Wrong,
        },
    }
}

/// A key's value for reading, counting keyspace hits and misses. Ok(None)
/// when missing; Err(()) after replying WRONGTYPE.
pub(crate) fn typed_read<'c, T: Typed>(
    ctx: &'c mut Ctx,
    key: &[u8],
    reply: &mut Reply,
) -> Result<Option<&'c T>, ()> {
    let now = ctx.now;
    let db = ctx.shard.keyspace.db(ctx.db);
    match db.get(key, now) {
        None => {
            ctx.shard.stats.keyspace_misses += 1;
            Ok(None)
        }
        Some(e) => {
            ctx.shard.stats.keyspace_hits += 1;
            match e.object().and_then(T::of) {
                Some(x) => Ok(Some(x)),
                None => {
                    reply.error(WRONGTYPE);
                    Err(())
                }
            }
        }
    }
}
