//! MULTI, EXEC, DISCARD, WATCH, UNWATCH: the connection runs them (its
//! coordinator queues, orders and executes the transaction: see the
//! server's `txn` module and docs/transactions.md); the table gives them
//! Redis's arity, flags, key positions and ACL categories.

use super::acl::{FAST as A_FAST, SLOW as A_SLOW, TRANSACTION as A_TXN};
use super::flags::*;
use super::table::{ALL_R, NO_KEYS};
use super::{CommandSpec, Route};
use crate::cmd;

const TXN_FLAGS: u32 = NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY;

pub static COMMANDS: &[CommandSpec] = &[
    cmd!(
        "multi",
        1,
        TXN_FLAGS,
        A_FAST | A_TXN,
        "transactions",
        NO_KEYS,
        Route::Conn,
        "Starts a transaction.",
        "1.2.0",
        "O(1)"
    ),
    cmd!(
        "exec",
        1,
        NOSCRIPT | LOADING | STALE | SKIP_SLOWLOG,
        A_SLOW | A_TXN,
        "transactions",
        NO_KEYS,
        Route::Conn,
        "Executes all commands in a transaction.",
        "1.2.0",
        "Depends on commands in the transaction"
    ),
    cmd!(
        "discard",
        1,
        TXN_FLAGS,
        A_FAST | A_TXN,
        "transactions",
        NO_KEYS,
        Route::Conn,
        "Discards a transaction.",
        "2.0.0",
        "O(N), when N is the number of queued commands"
    ),
    cmd!(
        "watch",
        -2,
        TXN_FLAGS,
        A_FAST | A_TXN,
        "transactions",
        ALL_R,
        Route::Conn,
        "Monitors changes to keys to determine the execution of a transaction.",
        "2.2.0",
        "O(1) for every key."
    ),
    cmd!(
        "unwatch",
        1,
        TXN_FLAGS,
        A_FAST | A_TXN,
        "transactions",
        NO_KEYS,
        Route::Conn,
        "Forgets about watched keys of a transaction.",
        "2.2.0",
        "O(1)"
    ),
];
