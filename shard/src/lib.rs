//! One core's keyspace and everything that executes on it: the
//! slot-partitioned store, data types, expiry and per-shard stats. This crate
//! knows nothing about sockets: the server hands it parsed requests and takes
//! back encoded replies.

pub mod aof;
pub mod blocking;
pub mod changes;
pub mod command;
pub mod evict;
pub mod glob;
pub mod latency;
pub mod notify;
pub mod pubsub;
pub mod rdb;
pub mod slot;
pub mod slowlog;
pub mod stats;
pub mod store;
pub mod tracking;
pub mod types;
pub mod util;
