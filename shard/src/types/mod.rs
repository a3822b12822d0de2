//! Data structures behind collection values: the compact listpack, lists
//! (quicklists of listpacks), hashes (listpack or chained table) and
//! Redis-compatible HyperLogLog strings.

pub mod bigintset;
pub mod dict;
pub mod hash;
pub mod hll;
pub mod intset;
pub mod ldouble;
pub mod list;
pub mod listpack;
pub mod set;
