//! The script bodies known to the server, shared by every shard.
//!
//! SCRIPT LOAD and EVAL put a body here; a shard compiles it into its own
//! VM the first time it runs it (EVALSHA on a shard that never saw the
//! script). The lock is taken only on such a miss, on SCRIPT LOAD/EXISTS/
//! FLUSH and on EVAL of a new body: never on the EVALSHA hit path, which
//! reads the shard's own cache and one atomic (the flush epoch).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

/// A script's id: its SHA1, 40 lowercase hex digits.
pub type Sha = [u8; 40];

struct Bodies {
    map: Mutex<HashMap<Sha, Arc<[u8]>>>,
    /// Moved by SCRIPT FLUSH: a shard whose cache is older drops it.
    epoch: AtomicU64,
}

static BODIES: LazyLock<Bodies> = LazyLock::new(|| Bodies {
    map: Mutex::new(HashMap::new()),
    epoch: AtomicU64::new(0),
});

/// The SHA1 of a body, in lowercase hex.
pub fn sha1_hex(body: &[u8]) -> Sha {
    let digest = sha1_smol::Sha1::from(body).digest().bytes();
    let mut out = [0u8; 40];
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in digest.iter().enumerate() {
        out[2 * i] = HEX[(b >> 4) as usize];
        out[2 * i + 1] = HEX[(b & 15) as usize];
    }
    out
}

/// A client-given SHA, lowercased (Redis matches SHAs case-insensitively);
/// None when it cannot be one.
pub fn parse_sha(s: &[u8]) -> Option<Sha> {
    if s.len() != 40 {
        return None;
    }
    let mut out = [0u8; 40];
    for (o, c) in out.iter_mut().zip(s) {
        *o = c.to_ascii_lowercase();
    }
    Some(out)
}

pub fn insert(sha: Sha, body: &[u8]) {
    let mut m = BODIES.map.lock().unwrap_or_else(|e| e.into_inner());
    m.entry(sha).or_insert_with(|| Arc::from(body));
}

pub fn get(sha: &Sha) -> Option<Arc<[u8]>> {
    let m = BODIES.map.lock().unwrap_or_else(|e| e.into_inner());
    m.get(sha).cloned()
}

pub fn exists(sha: &Sha) -> bool {
    let m = BODIES.map.lock().unwrap_or_else(|e| e.into_inner());
    m.contains_key(sha)
}

/// SCRIPT FLUSH: forgets every body; every shard drops its compiled
/// scripts before its next run.
pub fn flush() {
    let mut m = BODIES.map.lock().unwrap_or_else(|e| e.into_inner());
    m.clear();
    BODIES.epoch.fetch_add(1, Ordering::AcqRel);
}

pub fn epoch() -> u64 {
    BODIES.epoch.load(Ordering::Acquire)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_matches_redis() {
        assert_eq!(&sha1_hex(b""), b"da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            &sha1_hex(b"return x"),
            b"03c387736bb5cc009ff35151572cee04677aa374"
        );
    }

    #[test]
    fn parse_sha_lowercases_and_checks_length() {
        let up = b"DA39A3EE5E6B4B0D3255BFEF95601890AFD80709";
        assert_eq!(
            &parse_sha(up).unwrap(),
            b"da39a3ee5e6b4b0d3255bfef95601890afd80709"
        );
        assert!(parse_sha(b"abc").is_none());
    }
}
