//! Lua scripting: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT.
//!
//! - `vm`: one Lua 5.1 VM per shard thread, built once, with Redis's
//!   sandbox, the `redis` library and the per-shard cache of compiled
//!   scripts;
//! - `store`: the script bodies every shard can compile (consulted only on
//!   a shard's cache miss);
//! - `call`: `redis.call` / `redis.pcall` (through the ordinary routes),
//!   and the error values of the sandbox (`error`, `pcall`);
//! - `convert`: RESP replies to Lua values and Lua values to RESP replies,
//!   with Redis 7.0's rules;
//! - `kill`: what a running script publishes for SCRIPT KILL;
//! - `tailcall`: compiled scripts' tail calls made ordinary calls, so
//!   errors name the script's line as Redis's do;
//! - `eval`: the commands, and how a script is made atomic across shards.
//!
//! docs/scripting.md explains the design.

pub mod call;
pub mod convert;
pub mod eval;
pub mod kill;
pub mod store;
pub mod tailcall;
pub mod vm;
