//! CLIENT PAUSE: node-wide, so every shard's connections see it. A paused
//! client's commands are held (not refused) until CLIENT UNPAUSE or the
//! timeout: all of them in ALL mode; in WRITE mode the writes and the
//! commands that may replicate (EVAL, PUBLISH...), and EXEC of a
//! transaction holding one, as Redis 7.0 does.

use std::sync::atomic::{AtomicI64, AtomicU8, Ordering};

use tessera_shard::command::{flags, CommandSpec};

pub const OFF: u8 = 0;
pub const WRITE: u8 = 1;
pub const ALL: u8 = 2;

#[derive(Default)]
pub struct Pause {
    mode: AtomicU8,
    /// Unix ms when the pause ends.
    until_ms: AtomicI64,
}

impl Pause {
    /// Whether a pause was set (it may have run out): connections look
    /// closer only then (one load per batch otherwise).
    #[inline]
    pub fn set_now(&self) -> bool {
        self.mode.load(Ordering::Relaxed) != OFF
    }

    /// Pauses until `until_ms`; a pause already on keeps the stronger mode
    /// and the later end, as Redis combines them.
    pub fn pause(&self, mode: u8, until_ms: i64, now_ms: i64) {
        let (cur, end) = self.current(now_ms);
        self.until_ms.store(until_ms.max(end), Ordering::Relaxed);
        self.mode.store(mode.max(cur), Ordering::Release);
    }

    pub fn unpause(&self) {
        self.mode.store(OFF, Ordering::Release);
        self.until_ms.store(0, Ordering::Relaxed);
    }

    /// The mode in force now, and its end.
    pub fn current(&self, now_ms: i64) -> (u8, i64) {
        let mode = self.mode.load(Ordering::Acquire);
        let end = self.until_ms.load(Ordering::Relaxed);
        if mode == OFF || now_ms >= end {
            (OFF, 0)
        } else {
            (mode, end)
        }
    }

    /// Whether a command must wait now. `multi_writes`: for EXEC, whether
    /// its transaction holds a write.
    pub fn holds(&self, spec: &CommandSpec, multi_writes: bool, now_ms: i64) -> bool {
        match self.current(now_ms).0 {
            OFF => false,
            ALL => true,
            _ => {
                spec.has(flags::WRITE)
                    || spec.has(flags::MAY_REPLICATE)
                    || (spec.name == "exec" && multi_writes)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_shard::command::lookup;

    #[test]
    fn write_mode_holds_writes_only_until_the_end() {
        let p = Pause::default();
        let (get, set) = (lookup(b"get").unwrap(), lookup(b"set").unwrap());
        assert!(!p.holds(set, false, 0));
        p.pause(WRITE, 1000, 0);
        assert!(p.set_now());
        assert!(p.holds(set, false, 10));
        assert!(!p.holds(get, false, 10));
        assert!(!p.holds(set, false, 1000));
        // A later, weaker pause keeps ALL and the later end.
        p.pause(ALL, 2000, 10);
        p.pause(WRITE, 1500, 20);
        assert_eq!(p.current(30), (ALL, 2000));
        assert!(p.holds(get, false, 30));
        p.unpause();
        assert!(!p.holds(set, false, 30));
        assert!(!p.set_now());
    }
}
