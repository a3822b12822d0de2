//! Persistence commands: SAVE, BGSAVE, BGREWRITEAOF, LASTSAVE. The server runs them
//! (`Route::Conn`: they coordinate every shard, see server/src/persist).

use super::acl::{ADMIN as A_ADMIN, DANGEROUS as A_DANGER, FAST as A_FAST, SLOW as A_SLOW};
use super::flags::*;
use super::table::NO_KEYS;
use super::{CommandSpec, Route};
use crate::cmd;

pub static COMMANDS: &[CommandSpec] = &[
    cmd!(
        "save",
        1,
        ADMIN | NOSCRIPT | NO_ASYNC_LOADING | NO_MULTI,
        A_ADMIN | A_SLOW | A_DANGER,
        "server",
        NO_KEYS,
        Route::Conn,
        "Synchronously save the dataset to disk",
        "1.0.0",
        "O(N) where N is the total number of keys in all databases"
    ),
    cmd!(
        "bgsave",
        -1,
        ADMIN | NOSCRIPT | NO_ASYNC_LOADING,
        A_ADMIN | A_SLOW | A_DANGER,
        "server",
        NO_KEYS,
        Route::Conn,
        "Asynchronously save the dataset to disk",
        "1.0.0",
        "O(1)"
    ),
    cmd!(
        "bgrewriteaof",
        1,
        ADMIN | NOSCRIPT | NO_ASYNC_LOADING,
        A_ADMIN | A_SLOW | A_DANGER,
        "server",
        NO_KEYS,
        Route::Conn,
        "Asynchronously rewrite the append-only file",
        "1.0.0",
        "O(1)"
    ),
    cmd!(
        "lastsave",
        1,
        LOADING | STALE | FAST,
        A_ADMIN | A_FAST | A_DANGER,
        "server",
        NO_KEYS,
        Route::Conn,
        "Get the UNIX time stamp of the last successful save to disk",
        "1.0.0",
        "O(1)"
    ),
];
