//! One core's keyspace.

pub mod slot;
