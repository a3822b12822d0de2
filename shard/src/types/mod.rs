//! Data structures behind collection values: the compact listpack, lists
//! (quicklists of listpacks), hashes (listpack or chained table) and
//! Redis-compatible HyperLogLog strings; sorted sets (packed leaf or
//! order-statistic B+tree with a member index).

pub mod dict;
pub mod geohash;
pub mod hash;
pub mod hll;
pub mod ldouble;
pub mod list;
pub mod listpack;
pub mod pqsort;
pub mod zset;
