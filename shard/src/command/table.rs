//! The table itself, and name lookup.
//!
//! Each family file (strings.rs, keys.rs...) exposes a `COMMANDS` slice; the
//! table is their concatenation. Adding a command = adding its entry there.

use std::collections::HashMap;
use std::sync::LazyLock;

use super::{CommandSpec, KeySpec, Route, Split, Writes};

/// Builds a `CommandSpec`. Arguments: name, arity, flags, acl, group,
/// keys, route, summary, since, complexity[, subcommands].
#[macro_export]
macro_rules! cmd {
    ($name:expr, $arity:expr, $flags:expr, $acl:expr, $group:expr, $keys:expr, $route:expr,
     $summary:expr, $since:expr, $complexity:expr) => {
        $crate::command::CommandSpec {
            name: $name,
            arity: $arity,
            flags: $flags,
            acl: $acl,
            group: $group,
            keys: $keys,
            route: $route,
            docs: $crate::command::Docs {
                summary: $summary,
                since: $since,
                complexity: $complexity,
            },
            subcommands: &[],
        }
    };
    ($name:expr, $arity:expr, $flags:expr, $acl:expr, $group:expr, $keys:expr, $route:expr,
     $summary:expr, $since:expr, $complexity:expr, $subs:expr) => {
        $crate::command::CommandSpec {
            name: $name,
            arity: $arity,
            flags: $flags,
            acl: $acl,
            group: $group,
            keys: $keys,
            route: $route,
            docs: $crate::command::Docs {
                summary: $summary,
                since: $since,
                complexity: $complexity,
            },
            subcommands: $subs,
        }
    };
}

/// Key specs used throughout the table.
pub const NO_KEYS: KeySpec = KeySpec::None;
/// One key at argument 1, read.
pub const KEY1_R: KeySpec = KeySpec::Range {
    first: 1,
    last: 1,
    step: 1,
    writes: Writes::None,
};
/// One key at argument 1, written.
pub const KEY1_W: KeySpec = KeySpec::Range {
    first: 1,
    last: 1,
    step: 1,
    writes: Writes::All,
};
/// Keys at arguments 1 and 2, both written (RENAME, LMOVE, SMOVE...).
pub const KEY12_W: KeySpec = KeySpec::Range {
    first: 1,
    last: 2,
    step: 1,
    writes: Writes::All,
};
/// Every argument from 1 on is a key, read.
pub const ALL_R: KeySpec = KeySpec::Range {
    first: 1,
    last: -1,
    step: 1,
    writes: Writes::None,
};
/// Every argument from 1 on is a key, written.
pub const ALL_W: KeySpec = KeySpec::Range {
    first: 1,
    last: -1,
    step: 1,
    writes: Writes::All,
};

/// A container command (CLIENT, CONFIG...) is routed by its subcommand.
pub const CONTAINER: Route = Route::Conn;

/// Every family's commands, in table order.
fn families() -> [&'static [CommandSpec]; 20] {
    [
        super::strings::COMMANDS,
        super::keys::COMMANDS,
        super::dump::COMMANDS,
        super::server::COMMANDS,
        super::persist::COMMANDS,
        super::txn::COMMANDS,
        super::lists::COMMANDS,
        super::blocking::COMMANDS,
        super::hashes::COMMANDS,
        super::bitmaps::COMMANDS,
        super::hll::COMMANDS,
        super::zsets::COMMANDS,
        super::geo::COMMANDS,
        super::sets::COMMANDS,
        super::sort::COMMANDS,
        super::pubsub::COMMANDS,
        super::cluster::COMMANDS,
        super::introspect::COMMANDS,
        super::scripting::COMMANDS,
        super::streams::COMMANDS,
    ]
}

/// All commands and subcommands, flattened; a command's id is its index.
static ALL: LazyLock<Vec<&'static CommandSpec>> = LazyLock::new(|| {
    let mut v = Vec::new();
    for fam in families() {
        for c in fam {
            v.push(c);
            for s in c.subcommands {
                v.push(s);
            }
        }
    }
    v
});

/// Top-level name (uppercase) -> id.
/// Looked up once per request: foldhash rather than std's SipHash (names are
/// not attacker-chosen keys of a growing table, so DoS resistance is moot).
static BY_NAME: LazyLock<HashMap<Box<[u8]>, u16, foldhash::fast::FixedState>> =
    LazyLock::new(|| {
        let mut m = HashMap::with_hasher(foldhash::fast::FixedState::with_seed(0x7e55e4a));
        for (i, c) in ALL.iter().enumerate() {
            if !c.name.contains('|') {
                m.insert(
                    c.name.to_ascii_uppercase().into_bytes().into_boxed_slice(),
                    i as u16,
                );
            }
        }
        m
    });

/// Spec pointer -> id, for subcommands found through their parent.
static BY_PTR: LazyLock<HashMap<usize, u16>> = LazyLock::new(|| {
    ALL.iter()
        .enumerate()
        .map(|(i, c)| (*c as *const CommandSpec as usize, i as u16))
        .collect()
});

/// Number of commands and subcommands (the size of per-command stats).
pub fn count() -> usize {
    ALL.len()
}

/// Every command and subcommand, by id.
pub fn all() -> &'static [&'static CommandSpec] {
    &ALL
}

/// Top-level commands only (COMMAND, COMMAND COUNT).
pub fn top_level() -> impl Iterator<Item = &'static CommandSpec> {
    ALL.iter().copied().filter(|c| !c.name.contains('|'))
}

/// The id of a command (or subcommand).
pub fn id_of(spec: &'static CommandSpec) -> u16 {
    BY_PTR[&(spec as *const CommandSpec as usize)]
}

pub fn by_id(id: u16) -> &'static CommandSpec {
    ALL[id as usize]
}

/// Case-insensitive lookup of a top-level command, without allocating.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    lookup_id(name).map(by_id)
}

pub fn lookup_id(name: &[u8]) -> Option<u16> {
    let mut buf = [0u8; 32];
    if name.len() > buf.len() {
        return None;
    }
    let up = &mut buf[..name.len()];
    up.copy_from_slice(name);
    up.make_ascii_uppercase();
    BY_NAME.get(&*up).copied()
}

/// `Split` used by the common multi-key commands, re-exported for tables.
pub const GATHER: Split = Split::Gather;

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_protocol::args::OwnedArgs;

    #[test]
    fn lookup_is_case_insensitive() {
        assert_eq!(lookup(b"get").unwrap().name, "get");
        assert_eq!(lookup(b"GeT").unwrap().name, "get");
        assert!(lookup(b"nosuchcommand").is_none());
        assert!(lookup(&[b'a'; 100]).is_none());
    }

    #[test]
    fn ids_are_stable_and_unique() {
        for (i, c) in all().iter().enumerate() {
            assert_eq!(id_of(c) as usize, i, "{}", c.name);
        }
        let mut names: Vec<_> = all().iter().map(|c| c.name).collect();
        names.sort();
        let n = names.len();
        names.dedup();
        assert_eq!(n, names.len(), "duplicate command names");
    }

    #[test]
    fn key_positions_follow_the_spec() {
        let mut out = Vec::new();
        let a = OwnedArgs::from_parts(["MSET", "a", "1", "b", "2"]);
        lookup(b"mset")
            .unwrap()
            .key_positions(&a.args(), &mut out)
            .unwrap();
        assert_eq!(out.iter().map(|k| k.index).collect::<Vec<_>>(), vec![1, 3]);
        let a = OwnedArgs::from_parts(["GET", "a"]);
        lookup(b"get")
            .unwrap()
            .key_positions(&a.args(), &mut out)
            .unwrap();
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn subcommands_have_pipe_names() {
        for c in top_level() {
            for s in c.subcommands {
                assert!(s.name.starts_with(&format!("{}|", c.name)), "{}", s.name);
            }
        }
    }
}
