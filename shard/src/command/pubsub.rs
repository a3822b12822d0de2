//! Pub/sub: (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE and PUBSUB are run by the
//! connection (the server's `pubsub` module: a connection's subscriptions
//! live in its own shard's registry); PUBLISH and SPUBLISH run on every
//! shard, each delivering to its own subscribers, and their counts are
//! summed. The rows give Redis 7.0's arity, flags, key specs and ACL
//! categories (shard channels are declared as keys, as Redis does, so
//! COMMAND GETKEYS and cluster clients find their slot).

use tessera_protocol::{Args, Reply};

use super::acl::{FAST as A_FAST, PUBSUB as A_PUBSUB, SLOW as A_SLOW};
use super::flags::*;
use super::table::{CONTAINER, NO_KEYS};
use super::{CommandSpec, Ctx, KeySpec, Merge, Route, Writes};
use crate::cmd;

const SUB_FLAGS: u32 = PUBSUB | NOSCRIPT | LOADING | STALE;
const INFO_FLAGS: u32 = PUBSUB | LOADING | STALE;

/// Every argument from 1 on is a shard channel.
const SHARD_CHANNELS: KeySpec = KeySpec::Range {
    first: 1,
    last: -1,
    step: 1,
    writes: Writes::None,
};
/// The shard channel of SPUBLISH.
const SHARD_CHANNEL: KeySpec = KeySpec::Range {
    first: 1,
    last: 1,
    step: 1,
    writes: Writes::None,
};

pub static COMMANDS: &[CommandSpec] = &[
    cmd!(
        "subscribe",
        -2,
        SUB_FLAGS,
        A_PUBSUB | A_SLOW,
        "pubsub",
        NO_KEYS,
        Route::Conn,
        "Listens for messages published to channels.",
        "2.0.0",
        "O(N) where N is the number of channels to subscribe to."
    ),
    cmd!(
        "unsubscribe",
        -1,
        SUB_FLAGS,
        A_PUBSUB | A_SLOW,
        "pubsub",
        NO_KEYS,
        Route::Conn,
        "Stops listening to messages posted to channels.",
        "2.0.0",
        "O(N) where N is the number of clients already subscribed to a channel."
    ),
    cmd!(
        "psubscribe",
        -2,
        SUB_FLAGS,
        A_PUBSUB | A_SLOW,
        "pubsub",
        NO_KEYS,
        Route::Conn,
        "Listens for messages published to channels that match one or more patterns.",
        "2.0.0",
        "O(N) where N is the number of patterns the client is already subscribed to."
    ),
    cmd!(
        "punsubscribe",
        -1,
        SUB_FLAGS,
        A_PUBSUB | A_SLOW,
        "pubsub",
        NO_KEYS,
        Route::Conn,
        "Stops listening to messages published to channels that match one or more patterns.",
        "2.0.0",
        "O(N+M) where N is the number of patterns the client is already subscribed and M is the number of total patterns subscribed in the system (by any client)."
    ),
    cmd!(
        "publish",
        3,
        PUBSUB | LOADING | STALE | FAST,
        A_PUBSUB | A_FAST,
        "pubsub",
        NO_KEYS,
        Route::Fanout(publish, Merge::SumInt),
        "Posts a message to a channel.",
        "2.0.0",
        "O(N+M) where N is the number of clients subscribed to the receiving channel and M is the total number of subscribed patterns (by any client)."
    ),
    cmd!(
        "pubsub",
        -2,
        0,
        A_SLOW,
        "pubsub",
        NO_KEYS,
        CONTAINER,
        "A container for Pub/Sub commands.",
        "2.8.0",
        "Depends on subcommand.",
        PUBSUB_SUBS
    ),
    cmd!(
        "ssubscribe",
        -2,
        SUB_FLAGS,
        A_PUBSUB | A_SLOW,
        "pubsub",
        SHARD_CHANNELS,
        Route::Conn,
        "Listens for messages published to shard channels.",
        "7.0.0",
        "O(N) where N is the number of shard channels to subscribe to."
    ),
    cmd!(
        "sunsubscribe",
        -1,
        SUB_FLAGS,
        A_PUBSUB | A_SLOW,
        "pubsub",
        SHARD_CHANNELS,
        Route::Conn,
        "Stops listening to messages posted to shard channels.",
        "7.0.0",
        "O(N) where N is the number of clients already subscribed to a shard channel."
    ),
    cmd!(
        "spublish",
        3,
        PUBSUB | LOADING | STALE | FAST,
        A_PUBSUB | A_FAST,
        "pubsub",
        SHARD_CHANNEL,
        Route::Fanout(spublish, Merge::SumInt),
        "Post a message to a shard channel",
        "7.0.0",
        "O(N) where N is the number of clients subscribed to the receiving shard channel."
    ),
];

static PUBSUB_SUBS: &[CommandSpec] = &[
    cmd!(
        "pubsub|channels",
        -2,
        INFO_FLAGS,
        A_PUBSUB | A_SLOW,
        "pubsub",
        NO_KEYS,
        Route::Conn,
        "Returns the active channels.",
        "2.8.0",
        "O(N) where N is the number of active channels, and assuming constant time pattern matching (relatively short channels and patterns)"
    ),
    cmd!(
        "pubsub|help",
        2,
        LOADING | STALE,
        A_SLOW,
        "pubsub",
        NO_KEYS,
        Route::Conn,
        "Returns helpful text about the different subcommands.",
        "6.2.0",
        "O(1)"
    ),
    cmd!(
        "pubsub|numpat",
        2,
        INFO_FLAGS,
        A_PUBSUB | A_SLOW,
        "pubsub",
        NO_KEYS,
        Route::Conn,
        "Returns a count of unique pattern subscriptions.",
        "2.8.0",
        "O(1)"
    ),
    cmd!(
        "pubsub|numsub",
        -2,
        INFO_FLAGS,
        A_PUBSUB | A_SLOW,
        "pubsub",
        NO_KEYS,
        Route::Conn,
        "Returns a count of subscribers to channels.",
        "2.8.0",
        "O(N) for the NUMSUB subcommand, where N is the number of requested channels"
    ),
    cmd!(
        "pubsub|shardchannels",
        -2,
        INFO_FLAGS,
        A_PUBSUB | A_SLOW,
        "pubsub",
        NO_KEYS,
        Route::Conn,
        "Returns the active shard channels.",
        "7.0.0",
        "O(N) where N is the number of active shard channels, and assuming constant time pattern matching (relatively short shard channels)."
    ),
    cmd!(
        "pubsub|shardnumsub",
        -2,
        INFO_FLAGS,
        A_PUBSUB | A_SLOW,
        "pubsub",
        NO_KEYS,
        Route::Conn,
        "Returns the count of subscribers of shard channels.",
        "7.0.0",
        "O(N) for the SHARDNUMSUB subcommand, where N is the number of requested shard channels"
    ),
];

/// PUBLISH channel message, on one shard: its own subscribers' count.
fn publish(ctx: &mut Ctx, args: Args, r: &mut Reply) {
    let n = ctx.shard.pubsub.publish(args.get(1), args.get(2));
    r.int(n as i64);
}

/// SPUBLISH shardchannel message, on one shard.
fn spublish(ctx: &mut Ctx, args: Args, r: &mut Reply) {
    let n = ctx.shard.pubsub.spublish(args.get(1), args.get(2));
    r.int(n as i64);
}
