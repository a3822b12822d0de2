//! SLOWLOG and LATENCY: the connection runs them (`Route::Conn`), merging
//! what every shard recorded (server/src/commands/slowlog.rs, latency.rs).

use super::acl::{ADMIN as A_ADMIN, DANGEROUS as A_DANGER, SLOW as A_SLOW};
use super::flags::*;
use super::table::{CONTAINER, NO_KEYS};
use super::{CommandSpec, Route};
use crate::cmd;

const ADMIN_FLAGS: u32 = ADMIN | LOADING | STALE;
const ADMIN_ACL: u32 = A_ADMIN | A_SLOW | A_DANGER;
const LATENCY_FLAGS: u32 = ADMIN | NOSCRIPT | LOADING | STALE;

pub static COMMANDS: &[CommandSpec] = &[
    cmd!(
        "slowlog",
        -2,
        0,
        A_SLOW,
        "server",
        NO_KEYS,
        CONTAINER,
        "A container for slow log commands",
        "2.2.12",
        "Depends on subcommand.",
        SLOWLOG_SUBS
    ),
    cmd!(
        "latency",
        -2,
        0,
        A_SLOW,
        "server",
        NO_KEYS,
        CONTAINER,
        "A container for latency diagnostics commands",
        "2.8.13",
        "Depends on subcommand.",
        LATENCY_SUBS
    ),
    cmd!(
        "monitor",
        1,
        ADMIN | NOSCRIPT | LOADING | STALE,
        ADMIN_ACL,
        "server",
        NO_KEYS,
        Route::Conn,
        "Listen for all requests received by the server in real time",
        "1.0.0",
        ""
    ),
];

static SLOWLOG_SUBS: &[CommandSpec] = &[
    cmd!(
        "slowlog|get",
        -2,
        ADMIN_FLAGS,
        ADMIN_ACL,
        "server",
        NO_KEYS,
        Route::Conn,
        "Get the slow log's entries",
        "2.2.12",
        "O(N) where N is the number of entries returned"
    ),
    cmd!(
        "slowlog|len",
        2,
        ADMIN_FLAGS,
        ADMIN_ACL,
        "server",
        NO_KEYS,
        Route::Conn,
        "Get the slow log's length",
        "2.2.12",
        "O(1)"
    ),
    cmd!(
        "slowlog|reset",
        2,
        ADMIN_FLAGS,
        ADMIN_ACL,
        "server",
        NO_KEYS,
        Route::Conn,
        "Clear all entries from the slow log",
        "2.2.12",
        "O(N) where N is the number of entries in the slowlog"
    ),
    cmd!(
        "slowlog|help",
        2,
        LOADING | STALE,
        A_SLOW,
        "server",
        NO_KEYS,
        Route::Conn,
        "Show helpful text about the different subcommands",
        "6.2.0",
        "O(1)"
    ),
];

static LATENCY_SUBS: &[CommandSpec] = &[
    cmd!(
        "latency|doctor",
        2,
        LATENCY_FLAGS,
        ADMIN_ACL,
        "server",
        NO_KEYS,
        Route::Conn,
        "Return a human readable latency analysis report.",
        "2.8.13",
        "O(1)"
    ),
    cmd!(
        "latency|graph",
        3,
        LATENCY_FLAGS,
        ADMIN_ACL,
        "server",
        NO_KEYS,
        Route::Conn,
        "Return a latency graph for the event.",
        "2.8.13",
        "O(1)"
    ),
    cmd!(
        "latency|histogram",
        -2,
        LATENCY_FLAGS,
        ADMIN_ACL,
        "server",
        NO_KEYS,
        Route::Conn,
        "Return the cumulative distribution of latencies of a subset of commands or all.",
        "7.0.0",
        "O(N) where N is the number of commands with latency information being retrieved."
    ),
    cmd!(
        "latency|history",
        3,
        LATENCY_FLAGS,
        ADMIN_ACL,
        "server",
        NO_KEYS,
        Route::Conn,
        "Return timestamp-latency samples for the event.",
        "2.8.13",
        "O(1)"
    ),
    cmd!(
        "latency|latest",
        2,
        LATENCY_FLAGS,
        ADMIN_ACL,
        "server",
        NO_KEYS,
        Route::Conn,
        "Return the latest latency samples for all events.",
        "2.8.13",
        "O(1)"
    ),
    cmd!(
        "latency|reset",
        -2,
        LATENCY_FLAGS,
        ADMIN_ACL,
        "server",
        NO_KEYS,
        Route::Conn,
        "Reset latency data for one or more events.",
        "2.8.13",
        "O(1)"
    ),
    cmd!(
        "latency|help",
        2,
        LOADING | STALE,
        A_SLOW,
        "server",
        NO_KEYS,
        Route::Conn,
        "Show helpful text about the different subcommands.",
        "2.8.13",
        "O(1)"
    ),
];
