//! Data structures behind collection values: the compact listpack, lists
//! (quicklists of listpacks), hashes (listpack or chained table) and
//! Redis-compatible HyperLogLog strings; sorted sets (packed leaf or
//! order-statistic B+tree with a member index); streams (packed nodes in
//! a B-tree, with consumer groups).

pub mod bigintset;
pub mod dict;
pub mod geohash;
pub mod hash;
pub mod hll;
pub mod intset;
pub mod ldouble;
pub mod list;
pub mod listpack;
pub mod pqsort;
pub mod set;
pub mod stream;
pub mod varint;
pub mod zset;
